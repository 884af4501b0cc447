//! Success expressions: ConTest's `>80%`, `>=3`, `=100%`, which the `TargetSuccess`
//! reporter evaluates against how many targets of a test passed.
//!
//! The syntax and the verdict text follow ConTest's `pkg/lib/comparison`, so a
//! descriptor written for ConTest means the same here and its report reads the same:
//! `"100.00% > 80.00%"` when it holds, `"50.00% is not > 80.00%"` when it does not.
//!
//! ```
//! use stampede_job::comparison::Expression;
//!
//! let expr = Expression::parse(">80%").unwrap();
//! let verdict = expr.evaluate(9, 10).unwrap();
//! assert!(verdict.passed);
//! assert_eq!(verdict.text, "90.00% > 80.00%");
//! ```

use std::fmt;

/// The operators in the order they are tried, so that `>=` wins over `>`.
const OPERATORS: [Operator; 5] = [
    Operator::Ge,
    Operator::Le,
    Operator::Lt,
    Operator::Gt,
    Operator::Eq,
];

/// What every parse error ends with.
const FORMS: &str = "write an operator (>=, <=, <, >, =) and a number of successful targets or \
                     a percentage of all targets, like >80%, >=90%, =100% or >=3";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    Ge,
    Le,
    Lt,
    Gt,
    Eq,
}

impl Operator {
    fn symbol(self) -> &'static str {
        match self {
            Operator::Ge => ">=",
            Operator::Le => "<=",
            Operator::Lt => "<",
            Operator::Gt => ">",
            Operator::Eq => "=",
        }
    }

    fn holds(self, lhs: f64, rhs: f64) -> bool {
        match self {
            Operator::Ge => lhs >= rhs,
            Operator::Le => lhs <= rhs,
            Operator::Lt => lhs < rhs,
            Operator::Gt => lhs > rhs,
            Operator::Eq => lhs == rhs,
        }
    }
}

/// A parsed success expression such as `>80%` or `>=3`.
#[derive(Clone, Debug, PartialEq)]
pub struct Expression {
    /// The text as written, for [`Display`](fmt::Display).
    text: String,
    op: Operator,
    /// The right-hand side: a percentage when `percent`, else a count of successes.
    rhs: f64,
    percent: bool,
}

/// The outcome of evaluating an [`Expression`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the expression holds.
    pub passed: bool,
    /// The comparison as ConTest words it: `"90.00% > 80.00%"`, or
    /// `"50.00% is not > 80.00%"` when it does not hold.
    pub text: String,
}

impl Expression {
    /// Parses an operator (`>=`, `<=`, `<`, `>` or `=`, tried in that order) followed by
    /// a number, which is a percentage of successes when it ends in `%` and an absolute
    /// count of successes otherwise.
    ///
    /// As in ConTest, the operator's characters are trimmed from both ends of the rest
    /// (so `>80%>` reads as `>80%`); unlike ConTest, whitespace around the parts is
    /// allowed and numbers that are not finite are refused.
    pub fn parse(text: &str) -> Result<Expression, String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(format!("the success expression is empty; {FORMS}"));
        }
        let Some(op) = OPERATORS
            .into_iter()
            .find(|op| trimmed.starts_with(op.symbol()))
        else {
            return Err(format!(
                "success expression {text:?} does not start with a comparison operator; {FORMS}"
            ));
        };
        let operand = trimmed.trim_matches(|c| op.symbol().contains(c)).trim();
        let (number, percent) = match operand.strip_suffix('%') {
            Some(number) => (number.trim_end_matches('%').trim(), true),
            None => (operand, false),
        };
        let rhs: f64 = number.parse().map_err(|_| {
            let what = if percent { "percentage" } else { "number" };
            format!("success expression {text:?}: {number:?} is not a {what}; {FORMS}")
        })?;
        if !rhs.is_finite() {
            return Err(format!(
                "success expression {text:?}: {number:?} is not a finite number; {FORMS}"
            ));
        }
        Ok(Expression {
            text: text.to_owned(),
            op,
            rhs,
            percent,
        })
    }

    /// Compares `successes` (as a percentage of `total` when the expression is a
    /// percentage) with the expression's right-hand side.
    ///
    /// A percentage of zero targets is undefined, so `total == 0` is an error for a
    /// percentage expression.
    pub fn evaluate(&self, successes: u64, total: u64) -> Result<Verdict, String> {
        let (lhs, unit) = if self.percent {
            if total == 0 {
                return Err(format!(
                    "cannot evaluate success expression {:?}: there are no targets, so no \
                     success rate",
                    self.text
                ));
            }
            (successes as f64 / total as f64 * 100.0, "%")
        } else {
            (successes as f64, "")
        };
        let passed = self.op.holds(lhs, self.rhs);
        let not = if passed { "" } else { "is not " };
        let (op, rhs) = (self.op.symbol(), self.rhs);
        Ok(Verdict {
            passed,
            text: format!("{lhs:.2}{unit} {not}{op} {rhs:.2}{unit}"),
        })
    }
}

impl fmt::Display for Expression {
    /// The expression as it was written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(expr: &str, successes: u64, total: u64, passed: bool, text: &str) {
        let verdict = Expression::parse(expr)
            .unwrap_or_else(|e| panic!("{expr:?}: {e}"))
            .evaluate(successes, total)
            .unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        assert_eq!(
            verdict,
            Verdict {
                passed,
                text: text.to_owned()
            },
            "{expr:?} with {successes}/{total}"
        );
    }

    #[test]
    fn percentages() {
        check(">80%", 10, 10, true, "100.00% > 80.00%");
        check(">80%", 5, 10, false, "50.00% is not > 80.00%");
        check(">80%", 8, 10, false, "80.00% is not > 80.00%");
        check(">=80%", 8, 10, true, "80.00% >= 80.00%");
        check("<20%", 1, 10, true, "10.00% < 20.00%");
        check("<=10%", 2, 10, false, "20.00% is not <= 10.00%");
        check("=100%", 3, 3, true, "100.00% = 100.00%");
        check("=100%", 2, 3, false, "66.67% is not = 100.00%");
        check(">12.5%", 1, 3, true, "33.33% > 12.50%");
    }

    #[test]
    fn absolute_counts() {
        check(">=3", 3, 10, true, "3.00 >= 3.00");
        check(">3", 3, 10, false, "3.00 is not > 3.00");
        check("=0", 0, 0, true, "0.00 = 0.00");
        check("<2.5", 2, 2, true, "2.00 < 2.50");
    }

    #[test]
    fn operator_characters_are_trimmed_from_both_ends_as_in_contest() {
        check(">80%>", 9, 10, true, "90.00% > 80.00%");
        check(">=>=80%", 9, 10, true, "90.00% >= 80.00%");
        check(" >= 80 % ", 9, 10, true, "90.00% >= 80.00%");
        check(">80%%", 9, 10, true, "90.00% > 80.00%");
        check(">-1", 0, 0, true, "0.00 > -1.00");
    }

    #[test]
    fn zero_targets_have_no_rate() {
        let err = Expression::parse(">80%")
            .unwrap()
            .evaluate(0, 0)
            .unwrap_err();
        assert!(err.contains("no targets"), "{err}");
    }

    #[test]
    fn refusals_name_the_input_and_the_forms() {
        for (text, want) in [
            ("", "empty"),
            ("deadbeef", "does not start with a comparison operator"),
            ("80%", "does not start with a comparison operator"),
            ("!=80%", "does not start with a comparison operator"),
            (">abc", "\"abc\" is not a number"),
            (">abc%", "\"abc\" is not a percentage"),
            ("=>80", "\">80\" is not a number"),
            (">", "\"\" is not a number"),
            (">inf", "not a finite number"),
            (">NaN%", "not a finite number"),
        ] {
            let err = Expression::parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.contains(">=90%"), "{text:?}: {err}");
        }
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(Expression::parse("=100%").unwrap().to_string(), "=100%");
    }
}
