//! The threshold parser and its errors, kept apart from evaluation because k6's grammar has
//! quirks (operator scan order, `==` vs `===`, per-kind aggregations) worth testing on their
//! own.

use std::time::Duration;

use super::{Aggregation, Expr, Metric, Op, Threshold};

/// Operators in k6's scan order: the first one found in the text splits it. A longer token
/// must come before any shorter token it contains (`<=` before `<`, `===` before `==`).
const OPERATORS: [(&str, Op); 7] = [
    ("<=", Op::Lte),
    ("<", Op::Lt),
    (">=", Op::Gte),
    (">", Op::Gt),
    ("===", Op::Eq),
    ("==", Op::Eq),
    ("!=", Op::Ne),
];

const EXAMPLE: &str = "\"latency: p(99)<50\"";

/// Why a threshold could not be read. Every message names the input and says what to write
/// instead; all of them are configuration errors (exit code 104).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdError {
    /// The command-line form has no `:` between the metric and the expression.
    #[error(
        "threshold {input:?}: expected METRIC: EXPRESSION, e.g. {EXAMPLE}; the metrics are {}",
        metric_names()
    )]
    MissingColon {
        /// The text as given.
        input: String,
    },
    /// The metric name is not one Stampede measures.
    #[error(
        "threshold {input:?}: unknown metric {name:?}; use one of {}",
        metric_names()
    )]
    UnknownMetric {
        /// The whole threshold, `METRIC: EXPRESSION`.
        input: String,
        /// The metric name as given, trimmed.
        name: String,
    },
    /// The metric has a k6 tag selector such as `latency{status:200}`.
    #[error(
        "threshold {input:?}: tag selectors such as {selector:?} are not supported yet; \
         use the bare metric name, e.g. {EXAMPLE}"
    )]
    TagSelector {
        /// The whole threshold, `METRIC: EXPRESSION`.
        input: String,
        /// The selector, from `{` to `}`.
        selector: String,
    },
    /// No operator splits the expression into two non-empty sides.
    #[error(
        "threshold {input:?}: malformed threshold expression; write AGGREGATION OPERATOR \
         NUMBER, e.g. \"p(95)<200\", with one of the operators <=, <, >=, >, ==, ===, !="
    )]
    Malformed {
        /// The whole threshold, or the expression alone when parsed with [`Expr::parse`].
        input: String,
    },
    /// The left-hand side is not an aggregation k6 knows.
    #[error("threshold {input:?}: unknown aggregation {token:?}; {}", aggregation_hint(*.metric))]
    UnknownAggregation {
        /// The whole threshold, or the expression alone when parsed with [`Expr::parse`].
        input: String,
        /// The left-hand side as given, trimmed.
        token: String,
        /// The metric, when known, to list only the aggregations it supports.
        metric: Option<Metric>,
    },
    /// `p(N)` where N is not a number from 0 to 100.
    #[error(
        "threshold {input:?}: invalid percentile {token:?}; write p(N) with N a number from 0 \
         to 100, e.g. p(99) or p(99.9)"
    )]
    InvalidPercentile {
        /// The whole threshold, or the expression alone when parsed with [`Expr::parse`].
        input: String,
        /// The percentile as given, e.g. `p(101)`.
        token: String,
    },
    /// The right-hand side is not a number.
    #[error(
        "threshold {input:?}: invalid number {value:?} after the operator; write a plain \
         number in the metric's unit, e.g. 200 (ms) or 0.01"
    )]
    InvalidValue {
        /// The whole threshold, or the expression alone when parsed with [`Expr::parse`].
        input: String,
        /// The right-hand side as given, trimmed.
        value: String,
    },
    /// The aggregation exists but not for this kind of metric, e.g. `count` on `latency`.
    #[error(
        "threshold {input:?}: the {} metric {metric} has no {aggregation} aggregation; use \
         one of {}",
        .metric.kind(),
        .metric.kind().aggregations()
    )]
    UnsupportedAggregation {
        /// The whole threshold, `METRIC: EXPRESSION`.
        input: String,
        /// The aggregation used.
        aggregation: Aggregation,
        /// The metric it was used on.
        metric: Metric,
    },
}

impl ThresholdError {
    /// Puts an expression's error in the context of its whole threshold.
    fn within(mut self, whole: &str, on: Metric) -> Self {
        match &mut self {
            ThresholdError::Malformed { input }
            | ThresholdError::InvalidPercentile { input, .. }
            | ThresholdError::InvalidValue { input, .. }
            | ThresholdError::MissingColon { input }
            | ThresholdError::UnknownMetric { input, .. }
            | ThresholdError::TagSelector { input, .. }
            | ThresholdError::UnsupportedAggregation { input, .. } => whole.clone_into(input),
            ThresholdError::UnknownAggregation { input, metric, .. } => {
                whole.clone_into(input);
                *metric = Some(on);
            }
        }
        self
    }
}

/// A name that is not one of [`Metric::ALL`]; the error of `Metric::from_str`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metric {name:?}; use one of {}", metric_names())]
pub struct UnknownMetricError {
    /// The name as given.
    pub name: String,
}

impl std::str::FromStr for Metric {
    type Err = UnknownMetricError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Metric::ALL
            .into_iter()
            .find(|metric| metric.name() == s)
            .ok_or_else(|| UnknownMetricError { name: s.to_owned() })
    }
}

fn metric_names() -> String {
    Metric::ALL.map(Metric::name).join(", ")
}

fn aggregation_hint(metric: Option<Metric>) -> String {
    match metric {
        Some(metric) => {
            let kind = metric.kind();
            format!(
                "use one of {} for the {kind} metric {metric}",
                kind.aggregations()
            )
        }
        None => "use one of value, count, rate, avg, min, med, max, p(N)".to_owned(),
    }
}

/// k6's scan: the first operator of [`OPERATORS`] found splits the text; when it leaves the
/// right side empty the next operator is tried.
fn scan(input: &str) -> Option<(&str, Op, &str)> {
    OPERATORS.iter().find_map(|&(token, op)| {
        let (lhs, rhs) = input.split_once(token)?;
        let rhs = rhs.trim();
        (!rhs.is_empty()).then(|| (lhs.trim(), op, rhs))
    })
}

fn aggregation(token: &str, input: &str) -> Result<Aggregation, ThresholdError> {
    let aggregation = match token {
        "value" => Aggregation::Value,
        "count" => Aggregation::Count,
        "rate" => Aggregation::Rate,
        "avg" => Aggregation::Avg,
        "min" => Aggregation::Min,
        "med" => Aggregation::Med,
        "max" => Aggregation::Max,
        _ => {
            let Some(pct) = token
                .strip_prefix("p(")
                .and_then(|rest| rest.strip_suffix(')'))
            else {
                return Err(ThresholdError::UnknownAggregation {
                    input: input.to_owned(),
                    token: token.to_owned(),
                    metric: None,
                });
            };
            // k6 takes any float here and would index out of range above 100; we refuse.
            match pct.parse::<f64>() {
                Ok(pct) if (0.0..=100.0).contains(&pct) => Aggregation::P(pct),
                _ => {
                    return Err(ThresholdError::InvalidPercentile {
                        input: input.to_owned(),
                        token: token.to_owned(),
                    });
                }
            }
        }
    };
    Ok(aggregation)
}

pub(super) fn expr(input: &str) -> Result<Expr, ThresholdError> {
    let source = input.trim();
    let malformed = || ThresholdError::Malformed {
        input: source.to_owned(),
    };
    let (lhs, op, rhs) = scan(source).ok_or_else(malformed)?;
    let aggregation = aggregation(lhs, source)?;
    let value = rhs
        .parse::<f64>()
        .map_err(|_| ThresholdError::InvalidValue {
            input: source.to_owned(),
            value: rhs.to_owned(),
        })?;
    Ok(Expr {
        aggregation,
        op,
        value,
        source: source.to_owned(),
    })
}

pub(super) fn flag(input: &str) -> Result<Threshold, ThresholdError> {
    let input = input.trim();
    let Some((metric, expr)) = input.split_once(':') else {
        return Err(ThresholdError::MissingColon {
            input: input.to_owned(),
        });
    };
    build(input, metric, expr, false, None)
}

pub(super) fn threshold(
    metric: &str,
    expr: &str,
    abort_on_fail: bool,
    delay_abort_eval: Option<Duration>,
) -> Result<Threshold, ThresholdError> {
    let whole = format!("{}: {}", metric.trim(), expr.trim());
    build(&whole, metric, expr, abort_on_fail, delay_abort_eval)
}

/// Shared by both entry points; `whole` is the threshold as the user should see it in errors.
fn build(
    whole: &str,
    metric: &str,
    expr: &str,
    abort_on_fail: bool,
    delay_abort_eval: Option<Duration>,
) -> Result<Threshold, ThresholdError> {
    let name = metric.trim();
    if name.contains('{') {
        // The selector may contain the `:` the flag form was split at, so cut it from the whole.
        let start = whole.find('{').unwrap_or(0);
        let selector = &whole[start..];
        let end = selector.find('}').map_or(selector.len(), |i| i + 1);
        return Err(ThresholdError::TagSelector {
            input: whole.to_owned(),
            selector: selector[..end].to_owned(),
        });
    }
    let metric: Metric = name.parse().map_err(|_| ThresholdError::UnknownMetric {
        input: whole.to_owned(),
        name: name.to_owned(),
    })?;
    let expr = self::expr(expr).map_err(|e| e.within(whole, metric))?;
    if !metric.kind().supports(&expr.aggregation) {
        return Err(ThresholdError::UnsupportedAggregation {
            input: whole.to_owned(),
            aggregation: expr.aggregation,
            metric,
        });
    }
    Ok(Threshold {
        metric,
        expr,
        abort_on_fail,
        delay_abort_eval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a parse should give: the parts of the expression, or the error message.
    #[derive(Debug, PartialEq)]
    enum Parsed {
        Ok(Aggregation, Op, f64),
        Err(String),
    }

    fn parts(result: Result<Expr, ThresholdError>) -> Parsed {
        match result {
            Ok(expr) => Parsed::Ok(expr.aggregation, expr.op, expr.value),
            Err(err) => Parsed::Err(err.to_string()),
        }
    }

    fn check_expr(input: &str, expected: Parsed) {
        assert_eq!(
            parts(Expr::parse(input)),
            expected,
            "Expr::parse({input:?})"
        );
    }

    fn check_flag(input: &str, expected: Result<(Metric, Aggregation, Op, f64), &str>) {
        let got = Threshold::parse_flag(input)
            .map(|t| (t.metric, t.expr.aggregation, t.expr.op, t.expr.value))
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            expected.map_err(str::to_owned),
            "parse_flag({input:?})"
        );
    }

    #[test]
    fn expressions_split_in_k6_operator_order() {
        use Aggregation as A;
        let ok = |a, op, v| Parsed::Ok(a, op, v);
        check_expr("p(95)<=200", ok(A::P(95.0), Op::Lte, 200.0));
        check_expr("p(95)<200", ok(A::P(95.0), Op::Lt, 200.0));
        check_expr("med>=1", ok(A::Med, Op::Gte, 1.0));
        check_expr("max>1.5", ok(A::Max, Op::Gt, 1.5));
        check_expr("avg==3", ok(A::Avg, Op::Eq, 3.0));
        check_expr("avg===3", ok(A::Avg, Op::Eq, 3.0));
        check_expr("count!=0", ok(A::Count, Op::Ne, 0.0));
        check_expr("rate<0.01", ok(A::Rate, Op::Lt, 0.01));
        check_expr("value>-1", ok(A::Value, Op::Gt, -1.0));
        check_expr("min<1e3", ok(A::Min, Op::Lt, 1000.0));
        check_expr("  p(99.9) <  5 ", ok(A::P(99.9), Op::Lt, 5.0));
        check_expr("p(0)>=0", ok(A::P(0.0), Op::Gte, 0.0));
        check_expr("p(100)<=9", ok(A::P(100.0), Op::Lte, 9.0));
    }

    #[test]
    fn malformed_expressions_say_what_to_write() {
        let err = |s: &str| Parsed::Err(s.to_owned());
        let malformed = |input: &str| {
            err(&format!(
                "threshold {input:?}: malformed threshold expression; write AGGREGATION \
                 OPERATOR NUMBER, e.g. \"p(95)<200\", with one of the operators <=, <, >=, >, \
                 ==, ===, !="
            ))
        };
        check_expr("p(95)", malformed("p(95)"));
        check_expr("p(95)<", malformed("p(95)<"));
        check_expr("  ", malformed(""));
        check_expr("avg = 3", malformed("avg = 3"));
        check_expr(
            "p99<50",
            err(
                "threshold \"p99<50\": unknown aggregation \"p99\"; use one of value, count, \
                 rate, avg, min, med, max, p(N)",
            ),
        );
        check_expr(
            "<5",
            err(
                "threshold \"<5\": unknown aggregation \"\"; use one of value, count, rate, avg, \
                 min, med, max, p(N)",
            ),
        );
        check_expr(
            "p(101)<5",
            err(
                "threshold \"p(101)<5\": invalid percentile \"p(101)\"; write p(N) with N a \
                 number from 0 to 100, e.g. p(99) or p(99.9)",
            ),
        );
        check_expr(
            "p(abc)<5",
            err(
                "threshold \"p(abc)<5\": invalid percentile \"p(abc)\"; write p(N) with N a \
                 number from 0 to 100, e.g. p(99) or p(99.9)",
            ),
        );
        check_expr(
            "avg<5ms",
            err(
                "threshold \"avg<5ms\": invalid number \"5ms\" after the operator; write a \
                 plain number in the metric's unit, e.g. 200 (ms) or 0.01",
            ),
        );
        // `<=` is scanned first, so `a<b<=c` splits at `<=` and its left side is bad.
        check_expr(
            "avg<1<=2",
            err(
                "threshold \"avg<1<=2\": unknown aggregation \"avg<1\"; use one of value, \
                 count, rate, avg, min, med, max, p(N)",
            ),
        );
    }

    #[test]
    fn source_is_kept_trimmed_and_aggregations_print_as_k6_text() {
        let expr = Expr::parse("  p(99.9) <  5 ").expect("valid");
        assert_eq!(expr.source(), "p(99.9) <  5");
        for (aggregation, text) in [
            (Aggregation::P(99.0), "p(99)"),
            (Aggregation::P(99.9), "p(99.9)"),
            (Aggregation::P(0.5), "p(0.5)"),
            (Aggregation::Med, "med"),
            (Aggregation::Value, "value"),
        ] {
            assert_eq!(aggregation.to_string(), text);
        }
    }

    #[test]
    fn flags_name_a_metric_and_an_expression_it_supports() {
        use Aggregation as A;
        check_flag(
            "latency: p(99)<50",
            Ok((Metric::Latency, A::P(99.0), Op::Lt, 50.0)),
        );
        check_flag(
            " service_time:avg<=10 ",
            Ok((Metric::ServiceTime, A::Avg, Op::Lte, 10.0)),
        );
        check_flag("lag: max < 5", Ok((Metric::Lag, A::Max, Op::Lt, 5.0)));
        check_flag(
            "errors: rate<0.01",
            Ok((Metric::Errors, A::Rate, Op::Lt, 0.01)),
        );
        check_flag(
            "requests: count>=100",
            Ok((Metric::Requests, A::Count, Op::Gte, 100.0)),
        );
        check_flag(
            "dropped: rate==0",
            Ok((Metric::Dropped, A::Rate, Op::Eq, 0.0)),
        );
        check_flag(
            "latency: p99<50",
            Err(
                "threshold \"latency: p99<50\": unknown aggregation \"p99\"; use one of avg, \
                 min, max, med, p(N) for the trend metric latency",
            ),
        );
        check_flag(
            "latency: count<50",
            Err(
                "threshold \"latency: count<50\": the trend metric latency has no count \
                 aggregation; use one of avg, min, max, med, p(N)",
            ),
        );
        check_flag(
            "errors: avg<0.1",
            Err(
                "threshold \"errors: avg<0.1\": the rate metric errors has no avg aggregation; \
                 use one of rate",
            ),
        );
        check_flag(
            "requests: p(99)<5",
            Err(
                "threshold \"requests: p(99)<5\": the counter metric requests has no p(99) \
                 aggregation; use one of count, rate",
            ),
        );
        check_flag(
            "dropped: value<5",
            Err(
                "threshold \"dropped: value<5\": the counter metric dropped has no value \
                 aggregation; use one of count, rate",
            ),
        );
        check_flag(
            "latency: p(95)",
            Err(
                "threshold \"latency: p(95)\": malformed threshold expression; write \
                 AGGREGATION OPERATOR NUMBER, e.g. \"p(95)<200\", with one of the operators \
                 <=, <, >=, >, ==, ===, !=",
            ),
        );
        check_flag(
            "http_req_duration: p(95)<200",
            Err(
                "threshold \"http_req_duration: p(95)<200\": unknown metric \
                 \"http_req_duration\"; use one of latency, service_time, lag, errors, \
                 requests, dropped",
            ),
        );
        check_flag(
            "p(95)<200",
            Err(
                "threshold \"p(95)<200\": expected METRIC: EXPRESSION, e.g. \"latency: \
                 p(99)<50\"; the metrics are latency, service_time, lag, errors, requests, \
                 dropped",
            ),
        );
        check_flag(
            "latency{status:200}: p(95)<200",
            Err(
                "threshold \"latency{status:200}: p(95)<200\": tag selectors such as \
                 \"{status:200}\" are not supported yet; use the bare metric name, e.g. \
                 \"latency: p(99)<50\"",
            ),
        );
    }

    #[test]
    fn new_reads_file_parts_with_abort_options() {
        let delay = Some(Duration::from_secs(10));
        let threshold = Threshold::new(" errors ", " rate<0.01 ", true, delay).expect("valid");
        assert_eq!(threshold.metric, Metric::Errors);
        assert_eq!(threshold.expr.source(), "rate<0.01");
        assert!(threshold.abort_on_fail);
        assert_eq!(threshold.delay_abort_eval, delay);
        assert_eq!(threshold.to_string(), "errors: rate<0.01");

        let err = Threshold::new("latency", "p(95)<", false, None).expect_err("malformed");
        assert_eq!(
            err,
            ThresholdError::Malformed {
                input: "latency: p(95)<".to_owned()
            }
        );
        let err = Threshold::new("latency{url:/}", "p(95)<1", false, None).expect_err("tags");
        assert!(
            matches!(err, ThresholdError::TagSelector { selector, .. } if selector == "{url:/}")
        );
    }

    #[test]
    fn metric_names_round_trip() {
        for metric in Metric::ALL {
            assert_eq!(metric.name().parse(), Ok(metric));
        }
        let err = "Latency"
            .parse::<Metric>()
            .expect_err("names are case-sensitive");
        assert_eq!(
            err.to_string(),
            "unknown metric \"Latency\"; use one of latency, service_time, lag, errors, \
             requests, dropped"
        );
    }
}
