//! Thresholds: pass/fail expressions on the run's metrics, in k6's language.
//!
//! A load test in CI needs a verdict, not just numbers. k6 users already write that verdict as
//! `p(95)<200` or `rate<0.01`, so Stampede reads the same language and evaluates it by the
//! same rules (`../shared/research/seeds-spec.md` §3.5, beside this repository): a threshold means the same thing here as in
//! k6, down to the operator scan order, the aggregations each kind of metric allows, "a
//! missing value passes", the 2 s evaluation tick that skips empty metrics, and `abortOnFail`
//! with `delayAbortEval`.
//!
//! * [`Threshold`] — one parsed expression on one [`Metric`], from the CLI form
//!   `latency: p(99)<50` ([`Threshold::parse_flag`]) or a job file ([`Threshold::new`]).
//! * [`ThresholdSet`] — all of a run's thresholds with their last results; it asks a
//!   [`MetricValues`] for numbers, so it does not care how the metrics are stored.
//!
//! ```
//! # use stampede_metrics::{Threshold, Metric, Aggregation, Op};
//! let threshold = Threshold::parse_flag("latency: p(99.9) < 50").unwrap();
//! assert_eq!(threshold.metric, Metric::Latency);
//! assert_eq!(threshold.expr.aggregation, Aggregation::P(99.9));
//! assert_eq!(threshold.expr.op, Op::Lt);
//! assert_eq!(threshold.to_string(), "latency: p(99.9) < 50");
//! ```

mod parse;

use std::fmt;
use std::time::Duration;

pub use parse::{ThresholdError, UnknownMetricError};

/// How often [`ThresholdSet::evaluate_running`] is meant to be called during a run (k6's
/// `thresholdsRate`).
pub const EVALUATION_INTERVAL: Duration = Duration::from_secs(2);

/// The kind of a metric, which decides the aggregations a threshold may use on it (k6's
/// metric types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// A distribution of values: `avg`, `min`, `max`, `med`, `p(N)`.
    Trend,
    /// The share of non-zero samples: `rate`.
    Rate,
    /// A running sum: `count`, and `rate` = count per second of the run.
    Counter,
    /// The last value seen: `value`. No Stampede metric is a gauge yet.
    Gauge,
}

impl MetricKind {
    /// The kind's name as k6 prints it: `trend`, `rate`, `counter`, `gauge`.
    pub const fn name(self) -> &'static str {
        match self {
            MetricKind::Trend => "trend",
            MetricKind::Rate => "rate",
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        }
    }

    /// Whether a threshold on a metric of this kind may use `aggregation`.
    pub fn supports(self, aggregation: &Aggregation) -> bool {
        use Aggregation as A;
        match self {
            MetricKind::Trend => matches!(aggregation, A::Avg | A::Min | A::Max | A::Med | A::P(_)),
            MetricKind::Rate => matches!(aggregation, A::Rate),
            MetricKind::Counter => matches!(aggregation, A::Count | A::Rate),
            MetricKind::Gauge => matches!(aggregation, A::Value),
        }
    }

    /// The aggregations of [`MetricKind::supports`], as a list for error messages.
    fn aggregations(self) -> &'static str {
        match self {
            MetricKind::Trend => "avg, min, max, med, p(N)",
            MetricKind::Rate => "rate",
            MetricKind::Counter => "count, rate",
            MetricKind::Gauge => "value",
        }
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A metric a threshold can be set on. The set is fixed: these are what the engine measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Response time from the intended start, in ms (coordinated-omission corrected).
    Latency,
    /// Time from sending the request to its response, in ms.
    ServiceTime,
    /// Time from the intended start to the actual send, in ms.
    Lag,
    /// Failed requests / all requests.
    Errors,
    /// Requests made; `rate` is per second of the run.
    Requests,
    /// Calls that were scheduled but never made; `rate` is per second of the run.
    Dropped,
}

impl Metric {
    /// Every metric, in the order they are listed to users.
    pub const ALL: [Metric; 6] = [
        Metric::Latency,
        Metric::ServiceTime,
        Metric::Lag,
        Metric::Errors,
        Metric::Requests,
        Metric::Dropped,
    ];

    /// The name users write in thresholds and see in reports, e.g. `service_time`.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::Latency => "latency",
            Metric::ServiceTime => "service_time",
            Metric::Lag => "lag",
            Metric::Errors => "errors",
            Metric::Requests => "requests",
            Metric::Dropped => "dropped",
        }
    }

    /// The metric's kind, which decides the aggregations its thresholds may use.
    pub const fn kind(self) -> MetricKind {
        match self {
            Metric::Latency | Metric::ServiceTime | Metric::Lag => MetricKind::Trend,
            Metric::Errors => MetricKind::Rate,
            Metric::Requests | Metric::Dropped => MetricKind::Counter,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which number of a metric a threshold compares: the left-hand side of `p(95)<200`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    /// `value`: a gauge's last value.
    Value,
    /// `count`: a counter's sum.
    Count,
    /// `rate`: a counter's sum per second of the run, or a rate metric's share of non-zero
    /// samples.
    Rate,
    /// `avg`: a trend's mean.
    Avg,
    /// `min`: a trend's smallest value.
    Min,
    /// `med`: a trend's median, i.e. `p(50)`.
    Med,
    /// `max`: a trend's largest value.
    Max,
    /// `p(N)`: a trend's N-th percentile, N in percent (0 to 100) as written, e.g. 99.9.
    P(f64),
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aggregation::Value => f.write_str("value"),
            Aggregation::Count => f.write_str("count"),
            Aggregation::Rate => f.write_str("rate"),
            Aggregation::Avg => f.write_str("avg"),
            Aggregation::Min => f.write_str("min"),
            Aggregation::Med => f.write_str("med"),
            Aggregation::Max => f.write_str("max"),
            Aggregation::P(pct) => write!(f, "p({pct})"),
        }
    }
}

/// A threshold's comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<=`
    Lte,
    /// `<`
    Lt,
    /// `>=`
    Gte,
    /// `>`
    Gt,
    /// `==` or `===`: both are float equality, as in k6.
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    /// Whether `lhs OP rhs` holds, with IEEE float comparison (NaN compares false, except
    /// for `!=`).
    pub fn holds(self, lhs: f64, rhs: f64) -> bool {
        match self {
            Op::Lte => lhs <= rhs,
            Op::Lt => lhs < rhs,
            Op::Gte => lhs >= rhs,
            Op::Gt => lhs > rhs,
            Op::Eq => lhs == rhs,
            Op::Ne => lhs != rhs,
        }
    }

    /// The operator's text; `Eq` gives `==`.
    pub const fn token(self) -> &'static str {
        match self {
            Op::Lte => "<=",
            Op::Lt => "<",
            Op::Gte => ">=",
            Op::Gt => ">",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// A parsed threshold expression, `AGGREGATION OPERATOR NUMBER`, e.g. `p(95)<200`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// The left-hand side: which number of the metric to compare.
    pub aggregation: Aggregation,
    /// The comparison.
    pub op: Op,
    /// The right-hand side.
    pub value: f64,
    /// The text as the user wrote it, trimmed; reports and k6's cloud API show this.
    source: String,
}

impl Expr {
    /// Parses an expression the way k6 does. Which aggregations are allowed depends on the
    /// metric, so that is checked by [`Threshold::new`], not here.
    ///
    /// # Errors
    ///
    /// [`ThresholdError`] when no operator splits the text, the aggregation is unknown or
    /// the number does not parse.
    pub fn parse(s: &str) -> Result<Expr, ThresholdError> {
        parse::expr(s)
    }

    /// The text as the user wrote it, trimmed of surrounding whitespace.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the metric's `value` satisfies the expression. A missing value (no samples,
    /// nothing to divide by) passes, as in k6.
    pub fn passes(&self, value: Option<f64>) -> bool {
        value.is_none_or(|lhs| self.op.holds(lhs, self.value))
    }
}

impl std::str::FromStr for Expr {
    type Err = ThresholdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expr::parse(s)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// One threshold: an expression on one metric, and whether crossing it stops the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The metric the expression reads.
    pub metric: Metric,
    /// The pass/fail expression.
    pub expr: Expr,
    /// Stop the run as soon as this threshold fails a periodic evaluation (k6's
    /// `abortOnFail`).
    pub abort_on_fail: bool,
    /// With `abort_on_fail`: only abort once the run has lasted longer than this (k6's
    /// `delayAbortEval`), so that a noisy start does not stop it.
    pub delay_abort_eval: Option<Duration>,
}

impl Threshold {
    /// Parses the command-line form `METRIC: EXPRESSION`, e.g. `latency: p(99)<50`. The
    /// threshold does not abort the run.
    ///
    /// # Errors
    ///
    /// [`ThresholdError`] when the colon or the metric is missing or unknown, the metric has
    /// a tag selector, or the expression does not parse or does not fit the metric's kind.
    pub fn parse_flag(s: &str) -> Result<Threshold, ThresholdError> {
        parse::flag(s)
    }

    /// Builds a threshold from a job file's parts: the metric name (the key) and one
    /// expression with its abort options.
    ///
    /// # Errors
    ///
    /// As for [`Threshold::parse_flag`], except that no colon is needed.
    pub fn new(
        metric: &str,
        expr: &str,
        abort_on_fail: bool,
        delay_abort_eval: Option<Duration>,
    ) -> Result<Threshold, ThresholdError> {
        parse::threshold(metric, expr, abort_on_fail, delay_abort_eval)
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.metric, self.expr)
    }
}

/// What the evaluator asks the metrics for, so that thresholds work on histograms, exact
/// sample lists or merged snapshots alike.
pub trait MetricValues {
    /// The metric's current `aggregation`, or `None` when it has no value (no samples yet, or
    /// a rate metric with no samples to divide by); a threshold whose value is missing
    /// passes. Implementations follow k6's sinks: a counter's `rate` is its count divided by
    /// the seconds the run has lasted, `med` is `p(50)`, and `P(n)` is in percent.
    fn value(&self, metric: Metric, aggregation: &Aggregation) -> Option<f64>;

    /// Whether the metric has had no samples at all; periodic evaluation skips such metrics.
    fn is_empty(&self, metric: Metric) -> bool;
}

/// The outcome of one threshold in an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdResult {
    /// The metric the threshold is on.
    pub metric: Metric,
    /// The expression as the user wrote it, trimmed, e.g. `p(99)<50`.
    pub expr: String,
    /// Whether the threshold held.
    pub ok: bool,
    /// The value compared, or `None` when the metric had none (which passes).
    pub value: Option<f64>,
}

/// Why a periodic evaluation stops the run: a failing threshold had `abort_on_fail` set and
/// its delay, if any, had passed. Its message is k6's, word for word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "thresholds on metrics '{}' were crossed; at least one has abortOnFail enabled, stopping \
     test prematurely",
    join_names(.metrics)
)]
pub struct Abort {
    /// Every metric with a failing threshold in that evaluation, sorted by name, not only
    /// those that asked to abort (as k6 reports it).
    pub metrics: Vec<Metric>,
}

fn join_names(metrics: &[Metric]) -> String {
    metrics
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A run's thresholds and the result each had when last evaluated.
#[derive(Debug, Clone, Default)]
pub struct ThresholdSet {
    entries: Vec<Entry>,
    /// Distinct metrics in order of first appearance: k6 evaluates metric by metric.
    metrics: Vec<Metric>,
    /// Metrics whose abort flag is set. As in k6 the flag is per metric and, once set, stays.
    aborting: Vec<Metric>,
}

#[derive(Debug, Clone)]
struct Entry {
    threshold: Threshold,
    /// `None` until the threshold's metric is first evaluated.
    last: Option<LastRun>,
}

#[derive(Debug, Clone, Copy)]
struct LastRun {
    ok: bool,
    value: Option<f64>,
}

/// When an evaluation happens, which decides whether empty metrics are skipped and whether
/// abort flags can be set.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Running { elapsed: Duration },
    Final,
}

impl ThresholdSet {
    /// Holds `thresholds`, in the order given; none has been evaluated yet.
    pub fn new(thresholds: Vec<Threshold>) -> Self {
        let mut metrics: Vec<Metric> = Vec::new();
        for threshold in &thresholds {
            if !metrics.contains(&threshold.metric) {
                metrics.push(threshold.metric);
            }
        }
        let entries = thresholds.into_iter().map(|threshold| Entry {
            threshold,
            last: None,
        });
        ThresholdSet {
            entries: entries.collect(),
            metrics,
            aborting: Vec::new(),
        }
    }

    /// Whether there are no thresholds at all (then the run needs no evaluation tick).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The thresholds, in the order given.
    pub fn thresholds(&self) -> impl Iterator<Item = &Threshold> {
        self.entries.iter().map(|entry| &entry.threshold)
    }

    /// The periodic evaluation during the run, meant to be called every
    /// [`EVALUATION_INTERVAL`] with the time the run has lasted. Metrics without samples are
    /// skipped (their thresholds keep their last result). Returns an [`Abort`] when a metric
    /// has a failing threshold and its abort flag is set; the flag is set by a failing
    /// threshold with `abort_on_fail` when it has no `delay_abort_eval` or `elapsed` is
    /// strictly greater than it (k6 compares `delay < elapsed`).
    pub fn evaluate_running(
        &mut self,
        values: &dyn MetricValues,
        elapsed: Duration,
    ) -> Option<Abort> {
        let (breached, abort) = self.evaluate(values, Mode::Running { elapsed });
        abort.then_some(Abort { metrics: breached })
    }

    /// The final evaluation at the end of the run: every threshold, including those on
    /// metrics without samples (whose missing values pass). Returns one result per threshold,
    /// in the order given. Abort flags are not touched: the run is over.
    pub fn evaluate_final(&mut self, values: &dyn MetricValues) -> Vec<ThresholdResult> {
        self.evaluate(values, Mode::Final);
        self.entries
            .iter()
            .map(|entry| {
                let last = entry.last.unwrap_or(LastRun {
                    ok: true,
                    value: None,
                });
                ThresholdResult {
                    metric: entry.threshold.metric,
                    expr: entry.threshold.expr.source().to_owned(),
                    ok: last.ok,
                    value: last.value,
                }
            })
            .collect()
    }

    /// Whether any threshold failed the last time it was evaluated; at the end of a run this
    /// means exit code 99.
    pub fn crossed(&self) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.last.is_some_and(|last| !last.ok))
    }

    /// Evaluates metric by metric, as k6's metrics engine does. Returns the metrics with a
    /// failing threshold, sorted by name, and whether one of them has its abort flag set.
    fn evaluate(&mut self, values: &dyn MetricValues, mode: Mode) -> (Vec<Metric>, bool) {
        let mut breached = Vec::new();
        let mut abort = false;
        for &metric in &self.metrics {
            if matches!(mode, Mode::Running { .. }) && values.is_empty(metric) {
                continue;
            }
            let mut failed = false;
            for entry in self
                .entries
                .iter_mut()
                .filter(|e| e.threshold.metric == metric)
            {
                let threshold = &entry.threshold;
                let value = values.value(metric, &threshold.expr.aggregation);
                let ok = threshold.expr.passes(value);
                entry.last = Some(LastRun { ok, value });
                if ok {
                    continue;
                }
                failed = true;
                if let Mode::Running { elapsed } = mode
                    && threshold.abort_on_fail
                    && !self.aborting.contains(&metric)
                    && threshold
                        .delay_abort_eval
                        .is_none_or(|delay| delay < elapsed)
                {
                    self.aborting.push(metric);
                }
            }
            if failed {
                breached.push(metric);
                abort |= self.aborting.contains(&metric);
            }
        }
        breached.sort_by_key(|metric| metric.name());
        (breached, abort)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metric values for tests: `(metric, aggregation, value)` rows; a metric without rows is
    /// empty.
    struct Values(Vec<(Metric, Aggregation, f64)>);

    impl MetricValues for Values {
        fn value(&self, metric: Metric, aggregation: &Aggregation) -> Option<f64> {
            let row = self
                .0
                .iter()
                .find(|(m, a, _)| *m == metric && a == aggregation);
            row.map(|&(_, _, value)| value)
        }

        fn is_empty(&self, metric: Metric) -> bool {
            !self.0.iter().any(|(m, _, _)| *m == metric)
        }
    }

    fn flag(s: &str) -> Threshold {
        Threshold::parse_flag(s).expect("valid threshold")
    }

    fn aborting(s: &str, delay: Option<u64>) -> Threshold {
        let (metric, expr) = s.split_once(':').expect("METRIC: EXPR");
        Threshold::new(metric, expr, true, delay.map(Duration::from_secs)).expect("valid")
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// `(metric, expr, ok, value)` per threshold.
    fn summary(results: &[ThresholdResult]) -> Vec<(Metric, &str, bool, Option<f64>)> {
        results
            .iter()
            .map(|r| (r.metric, r.expr.as_str(), r.ok, r.value))
            .collect()
    }

    #[test]
    fn operators_compare_as_floats() {
        let table = [
            ("avg<=2", 2.0, true),
            ("avg<2", 2.0, false),
            ("avg>=2", 2.0, true),
            ("avg>2", 2.0, false),
            ("avg==2", 2.0, true),
            ("avg===2", 2.0000001, false),
            ("avg!=2", 2.0, false),
            ("avg!=2", f64::NAN, true),
            ("avg<2", f64::NAN, false),
        ];
        for (expr, value, ok) in table {
            assert_eq!(
                Expr::parse(expr).expect("valid").passes(Some(value)),
                ok,
                "{expr} {value}"
            );
        }
    }

    #[test]
    fn a_missing_value_passes() {
        let mut set = ThresholdSet::new(vec![flag("errors: rate<0.01"), flag("latency: avg<1")]);
        // `errors` has samples but no rate (k6 leaves the sink key out when total is 0).
        let values = Values(vec![(Metric::Errors, Aggregation::Count, 0.0)]);
        assert_eq!(set.evaluate_running(&values, secs(2)), None);
        let results = set.evaluate_final(&values);
        assert_eq!(
            summary(&results),
            [
                (Metric::Errors, "rate<0.01", true, None),
                (Metric::Latency, "avg<1", true, None)
            ]
        );
        assert!(!set.crossed());
    }

    #[test]
    fn running_skips_empty_metrics_but_final_does_not() {
        // An empty metric's value would fail here, to show whether it was evaluated at all.
        struct EmptyButFailing;
        impl MetricValues for EmptyButFailing {
            fn value(&self, _: Metric, _: &Aggregation) -> Option<f64> {
                Some(100.0)
            }
            fn is_empty(&self, _: Metric) -> bool {
                true
            }
        }
        let mut set = ThresholdSet::new(vec![aborting("latency: p(99)<50", None)]);
        assert_eq!(set.evaluate_running(&EmptyButFailing, secs(2)), None);
        assert!(!set.crossed(), "skipped, so no result yet");
        let results = set.evaluate_final(&EmptyButFailing);
        assert_eq!(
            summary(&results),
            [(Metric::Latency, "p(99)<50", false, Some(100.0))]
        );
        assert!(set.crossed());
    }

    #[test]
    fn abort_on_fail_without_delay_stops_at_the_first_failure() {
        let mut set = ThresholdSet::new(vec![
            flag("latency: p(99)<50"),
            aborting("errors: rate<0.01", None),
        ]);
        let passing = Values(vec![
            (Metric::Latency, Aggregation::P(99.0), 10.0),
            (Metric::Errors, Aggregation::Rate, 0.0),
        ]);
        assert_eq!(set.evaluate_running(&passing, secs(2)), None);
        let failing = Values(vec![
            (Metric::Latency, Aggregation::P(99.0), 60.0),
            (Metric::Errors, Aggregation::Rate, 0.5),
        ]);
        let abort = set
            .evaluate_running(&failing, secs(4))
            .expect("errors aborts");
        // Every breached metric is named, sorted, not only the one that asked to abort.
        assert_eq!(abort.metrics, [Metric::Errors, Metric::Latency]);
        assert_eq!(
            abort.to_string(),
            "thresholds on metrics 'errors, latency' were crossed; at least one has abortOnFail \
             enabled, stopping test prematurely"
        );
    }

    #[test]
    fn a_failure_without_abort_on_fail_does_not_stop_the_run() {
        let mut set = ThresholdSet::new(vec![flag("latency: max<1")]);
        let values = Values(vec![(Metric::Latency, Aggregation::Max, 5.0)]);
        assert_eq!(set.evaluate_running(&values, secs(2)), None);
        assert!(set.crossed());
    }

    #[test]
    fn delay_abort_eval_waits_until_the_run_is_longer_than_the_delay() {
        let failing = Values(vec![(Metric::Errors, Aggregation::Rate, 0.5)]);
        // (elapsed seconds, aborts): k6 aborts only when delay < elapsed, strictly.
        for (elapsed, aborts) in [(2, false), (9, false), (10, false), (11, true), (60, true)] {
            let mut set = ThresholdSet::new(vec![aborting("errors: rate<0.01", Some(10))]);
            let abort = set.evaluate_running(&failing, secs(elapsed));
            assert_eq!(abort.is_some(), aborts, "elapsed {elapsed}s");
            assert!(set.crossed(), "elapsed {elapsed}s");
        }
        // The same set keeps evaluating until the delay has passed.
        let mut set = ThresholdSet::new(vec![aborting("errors: rate<0.01", Some(10))]);
        let runs: Vec<bool> = (1..=6)
            .map(|tick| set.evaluate_running(&failing, secs(2 * tick)).is_some())
            .collect();
        assert_eq!(runs, [false, false, false, false, false, true]);
    }

    #[test]
    fn abort_needs_the_aborting_metric_to_fail_in_that_evaluation() {
        let mut set = ThresholdSet::new(vec![
            aborting("errors: rate<0.01", Some(10)),
            flag("latency: avg<5"),
        ]);
        let both_fail = Values(vec![
            (Metric::Errors, Aggregation::Rate, 0.5),
            (Metric::Latency, Aggregation::Avg, 9.0),
        ]);
        // Before the delay: both breached, no abort flag yet.
        assert_eq!(set.evaluate_running(&both_fail, secs(4)), None);
        let only_latency_fails = Values(vec![
            (Metric::Errors, Aggregation::Rate, 0.0),
            (Metric::Latency, Aggregation::Avg, 9.0),
        ]);
        assert_eq!(set.evaluate_running(&only_latency_fails, secs(12)), None);
        let abort = set
            .evaluate_running(&both_fail, secs(14))
            .expect("errors fails after delay");
        assert_eq!(abort.metrics, [Metric::Errors, Metric::Latency]);
    }

    #[test]
    fn crossed_reflects_the_last_evaluation() {
        let mut set = ThresholdSet::new(vec![flag("requests: count>=10"), flag("lag: avg<1")]);
        assert!(!set.crossed(), "nothing evaluated yet");
        let few = Values(vec![
            (Metric::Requests, Aggregation::Count, 3.0),
            (Metric::Lag, Aggregation::Avg, 0.1),
        ]);
        assert_eq!(set.evaluate_running(&few, secs(2)), None);
        assert!(set.crossed());
        let enough = Values(vec![
            (Metric::Requests, Aggregation::Count, 30.0),
            (Metric::Lag, Aggregation::Avg, 0.1),
        ]);
        assert_eq!(set.evaluate_running(&enough, secs(4)), None);
        assert!(!set.crossed());
        let results = set.evaluate_final(&enough);
        assert_eq!(
            summary(&results),
            [
                (Metric::Requests, "count>=10", true, Some(30.0)),
                (Metric::Lag, "avg<1", true, Some(0.1)),
            ]
        );
    }

    #[test]
    fn an_empty_set_has_nothing_to_evaluate() {
        let mut set = ThresholdSet::default();
        assert!(set.is_empty());
        assert_eq!(set.evaluate_running(&Values(Vec::new()), secs(2)), None);
        assert!(set.evaluate_final(&Values(Vec::new())).is_empty());
        assert!(!set.crossed());
        assert!(!ThresholdSet::new(vec![flag("lag: max<1")]).is_empty());
    }
}
