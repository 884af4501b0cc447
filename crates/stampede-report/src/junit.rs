//! JUnit XML, so CI systems can show a job run as test results.
//!
//! The job runner writes one [`JunitReport`] (one file) per job run, one [`JunitSuite`] per
//! test and one [`JunitCase`] per target per step (classname `test.target`, name = the step
//! label). This module only maps that small model onto [`quick_junit`], which does the XML:
//! escaping, the `tests`/`failures`/`errors`/`skipped` counts, and dropping what XML 1.0
//! cannot carry (ANSI escapes, control characters). quick-junit drops tabs too, so tabs in
//! messages and output are expanded to spaces first (tab stops every 8 columns).
//!
//! ```
//! use std::time::Duration;
//! use stampede_report::junit::{CaseOutcome, JunitCase, JunitReport, JunitSuite, to_xml};
//!
//! let report = JunitReport {
//!     name: "job 7 run 1".into(),
//!     suites: vec![JunitSuite {
//!         name: "smoke".into(),
//!         cases: vec![JunitCase {
//!             classname: "smoke.host1".into(),
//!             name: "ping".into(),
//!             time: Duration::from_millis(1500),
//!             outcome: CaseOutcome::Passed,
//!             output: None,
//!         }],
//!     }],
//! };
//! let xml = to_xml(&report).unwrap();
//! assert!(xml.contains(r#"tests="1""#));
//! ```

use std::borrow::Cow;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

/// One JUnit file: everything one job run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JunitReport {
    /// The `name` of the root `<testsuites>` element, e.g. the job name and run number.
    pub name: String,
    /// The suites, in order; usually one per test.
    pub suites: Vec<JunitSuite>,
}

/// A `<testsuite>`: usually one test of the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JunitSuite {
    /// The suite's name, e.g. the test name.
    pub name: String,
    /// Its cases, in order.
    pub cases: Vec<JunitCase>,
}

/// A `<testcase>`: usually one target going through one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JunitCase {
    /// Where the case belongs, e.g. `test.target`.
    pub classname: String,
    /// The case's own name, e.g. the step label.
    pub name: String,
    /// How long it took; written in seconds with millisecond precision.
    pub time: Duration,
    /// Whether it passed, and why not.
    pub outcome: CaseOutcome,
    /// What it printed or logged, written as `<system-out>`.
    pub output: Option<String>,
}

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseOutcome {
    /// It passed.
    Passed,
    /// It ran and did not meet its expectation (`<failure>`).
    Failed {
        /// What went wrong.
        message: String,
        /// A short machine-readable kind, written as the `type` attribute.
        kind: String,
    },
    /// It could not run properly (`<error>`), e.g. the target was unreachable.
    Errored {
        /// What went wrong.
        message: String,
    },
    /// It did not run (`<skipped>`).
    Skipped {
        /// Why not.
        message: String,
    },
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JunitError {
    /// The XML writer failed; with an in-memory buffer this points at a bug.
    #[error("could not write the JUnit report {name:?} as XML")]
    Serialize {
        /// The report's name.
        name: String,
        /// What the writer said.
        #[source]
        source: quick_junit::SerializeError,
    },
}

/// The report as a JUnit XML document (UTF-8, with an XML declaration).
pub fn to_xml(report: &JunitReport) -> Result<String, JunitError> {
    to_quick_junit(report)
        .to_string()
        .map_err(|source| JunitError::Serialize {
            name: report.name.clone(),
            source,
        })
}

fn to_quick_junit(report: &JunitReport) -> Report {
    let mut out = Report::new(report.name.as_str());
    let mut total = Duration::ZERO;
    for suite in &report.suites {
        let mut ts = TestSuite::new(suite.name.as_str());
        let mut suite_time = Duration::ZERO;
        for case in &suite.cases {
            suite_time += case.time;
            ts.add_test_case(test_case(case));
        }
        ts.set_time(suite_time);
        total += suite_time;
        out.add_test_suite(ts);
    }
    out.set_time(total);
    out
}

fn test_case(case: &JunitCase) -> TestCase {
    let status = match &case.outcome {
        CaseOutcome::Passed => TestCaseStatus::success(),
        CaseOutcome::Failed { message, kind } => {
            let mut status = non_success(NonSuccessKind::Failure, message);
            status.set_type(kind.as_str());
            status
        }
        CaseOutcome::Errored { message } => non_success(NonSuccessKind::Error, message),
        CaseOutcome::Skipped { message } => {
            let mut status = TestCaseStatus::skipped();
            set_message(&mut status, message);
            status
        }
    };
    let mut tc = TestCase::new(case.name.as_str(), status);
    tc.set_classname(case.classname.as_str())
        .set_time(case.time);
    if let Some(output) = &case.output {
        tc.set_system_out(expand_tabs(output));
    }
    tc
}

fn non_success(kind: NonSuccessKind, message: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(kind);
    set_message(&mut status, message);
    status
}

/// XML parsers turn newlines inside attributes into spaces, so a multi-line message keeps its
/// first line in the `message` attribute (what CI tools show in lists) and goes whole into the
/// element's text.
fn set_message(status: &mut TestCaseStatus, message: &str) {
    let first_line = message.lines().next().unwrap_or_default();
    status.set_message(first_line);
    if first_line.len() != message.trim_end().len() {
        status.set_description(expand_tabs(message));
    }
}

fn expand_tabs(text: &str) -> Cow<'_, str> {
    if !text.contains('\t') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut column = 0;
    for c in text.chars() {
        match c {
            '\t' => {
                let width = TAB_WIDTH - column % TAB_WIDTH;
                out.extend(std::iter::repeat_n(' ', width));
                column += width;
            }
            '\n' => {
                out.push(c);
                column = 0;
            }
            _ => {
                out.push(c);
                column += 1;
            }
        }
    }
    Cow::Owned(out)
}

const TAB_WIDTH: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, outcome: CaseOutcome) -> JunitCase {
        JunitCase {
            classname: "smoke.host1".into(),
            name: name.into(),
            time: Duration::from_millis(250),
            outcome,
            output: None,
        }
    }

    fn sample() -> JunitReport {
        JunitReport {
            name: "job 7 run 1".into(),
            suites: vec![
                JunitSuite {
                    name: "smoke".into(),
                    cases: vec![
                        case("ping", CaseOutcome::Passed),
                        case(
                            "load",
                            CaseOutcome::Failed {
                                message: "p(99)<50 not met: 75.5".into(),
                                kind: "threshold".into(),
                            },
                        ),
                        case(
                            "ssh",
                            CaseOutcome::Errored {
                                message: "connection refused".into(),
                            },
                        ),
                    ],
                },
                JunitSuite {
                    name: "soak".into(),
                    cases: vec![
                        case("ping", CaseOutcome::Passed),
                        case(
                            "load",
                            CaseOutcome::Skipped {
                                message: "job cancelled".into(),
                            },
                        ),
                    ],
                },
            ],
        }
    }

    fn parse(xml: &str) -> Report {
        Report::deserialize_from_str(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"))
    }

    #[test]
    fn counts_are_right_in_the_xml() {
        let xml = to_xml(&sample()).unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(
            xml.contains(
                r#"<testsuites name="job 7 run 1" tests="5" skipped="1" failures="1" errors="1""#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"<testsuite name="smoke" tests="3" skipped="0" errors="1" failures="1""#
            ),
            "{xml}"
        );
        let back = parse(&xml);
        assert_eq!(
            (back.tests, back.failures, back.errors, back.skipped),
            (5, 1, 1, 1)
        );
        let counts: Vec<_> = back
            .test_suites
            .iter()
            .map(|s| (s.name.as_str(), s.tests, s.failures, s.errors, s.skipped))
            .collect();
        assert_eq!(counts, [("smoke", 3, 1, 1, 0), ("soak", 2, 0, 0, 1)]);
        assert_eq!(back.time, Some(Duration::from_millis(1250)));
    }

    #[test]
    fn round_trips_through_quick_junits_parser() {
        let report = sample();
        let built = to_quick_junit(&report);
        let back = parse(&to_xml(&report).unwrap());
        assert_eq!(back, built);
        let failed = &back.test_suites[0].test_cases[1];
        assert_eq!(failed.classname.as_deref(), Some("smoke.host1"));
        assert_eq!(failed.name.as_str(), "load");
        assert_eq!(failed.time, Some(Duration::from_millis(250)));
        match &failed.status {
            TestCaseStatus::NonSuccess {
                kind, message, ty, ..
            } => {
                assert_eq!(*kind, NonSuccessKind::Failure);
                assert_eq!(message.as_deref(), Some("p(99)<50 not met: 75.5"));
                assert_eq!(ty.as_deref(), Some("threshold"));
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn special_characters_are_escaped_and_control_characters_dropped() {
        let nasty = "a<b && c>\"d\" 'e'\u{1b}[31mred\u{1b}[0m\u{0}\u{7}\u{1f}end";
        let report = JunitReport {
            name: nasty.into(),
            suites: vec![JunitSuite {
                name: nasty.into(),
                cases: vec![JunitCase {
                    classname: nasty.into(),
                    name: nasty.into(),
                    time: Duration::ZERO,
                    outcome: CaseOutcome::Failed {
                        message: format!("{nasty}\nsecond line\tof {nasty}"),
                        kind: nasty.into(),
                    },
                    output: Some(format!("]]> <![CDATA[ {nasty}")),
                }],
            }],
        };
        let xml = to_xml(&report).unwrap();
        for raw in ['\u{0}', '\u{7}', '\u{1b}', '\u{1f}'] {
            assert!(!xml.contains(raw), "{raw:?} left in {xml:?}");
        }
        assert!(!xml.contains("a<b"), "{xml}");
        assert!(xml.contains("a&lt;b &amp;&amp; c&gt;"), "{xml}");

        let clean = "a<b && c>\"d\" 'e'redend";
        let back = parse(&xml);
        assert_eq!(back.name.as_deref(), Some(clean));
        let suite = &back.test_suites[0];
        assert_eq!(suite.name.as_str(), clean);
        let tc = &suite.test_cases[0];
        assert_eq!(tc.name.as_str(), clean);
        assert_eq!(tc.classname.as_deref(), Some(clean));
        assert_eq!(
            tc.system_out.as_deref(),
            Some(format!("]]> <![CDATA[ {clean}").as_str())
        );
        match &tc.status {
            TestCaseStatus::NonSuccess {
                message,
                ty,
                description,
                ..
            } => {
                assert_eq!(message.as_deref(), Some(clean));
                assert_eq!(ty.as_deref(), Some(clean));
                assert_eq!(
                    description.as_deref(),
                    Some(format!("{clean}\nsecond line     of {clean}").as_str())
                );
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn tabs_expand_to_the_next_tab_stop() {
        assert_eq!(expand_tabs("none"), "none");
        assert_eq!(expand_tabs("\ta\tb"), "        a       b");
        assert_eq!(
            expand_tabs("12345678\tx\n1\ty"),
            "12345678        x\n1       y"
        );
    }

    #[test]
    fn an_empty_report_is_valid() {
        let report = JunitReport {
            name: "empty".into(),
            suites: vec![],
        };
        let back = parse(&to_xml(&report).unwrap());
        assert_eq!((back.tests, back.test_suites.len()), (0, 0));
    }

    /// A second, independent parser: Python's standard library, where it is installed.
    #[test]
    fn python_elementtree_accepts_the_file() {
        use std::io::Write;
        use std::process::{Command, Stdio};

        let Ok(mut child) = Command::new("python3")
            .args([
                "-c",
                "import sys, xml.etree.ElementTree as ET\n\
                 root = ET.fromstring(sys.stdin.buffer.read())\n\
                 cases = root.findall('./testsuite/testcase')\n\
                 print(root.tag, root.get('tests'), len(cases), len(root.findall('.//failure')))",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        else {
            eprintln!("python3 not found; skipping the ElementTree check");
            return;
        };
        let xml = to_xml(&sample()).unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(xml.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ElementTree rejected the report: {}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "testsuites 5 5 1"
        );
    }
}
