//! The job file: `version`, `name`, and tests made of named steps.
//!
//! ```yaml
//! version: "1.0"
//! name: checkout
//! tests:
//!   - name: api
//!     steps:
//!       - name: warm-up
//!         load: { url: "http://127.0.0.1:8080/", rate: 100, duration: 10s }
//! ```

use serde::Deserialize;
use thiserror::Error;

use crate::steps::load::LoadStep;

/// The descriptor version this build writes and reads (`major.minor`).
pub const CURRENT_VERSION: &str = "1.0";

/// A job file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// `major.minor`; another major is refused. Absent means the current version.
    #[serde(default)]
    pub version: Option<String>,
    /// The job's name.
    pub name: String,
    /// The tests, run in order.
    pub tests: Vec<TestSpec>,
}

/// A test: a pipeline of steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    /// The test's name.
    pub name: String,
    /// The steps, run in order.
    pub steps: Vec<StepEntry>,
}

/// One named step; exactly one kind of step is given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepEntry {
    /// The step's name, unique within its test.
    pub name: String,
    /// Skip this step.
    #[serde(default)]
    pub disabled: bool,
    /// A load step.
    #[serde(default)]
    pub load: Option<LoadStep>,
}

/// Why a job file cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// The YAML or JSON does not parse, or does not fit the schema.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file's major version is not this build's.
    #[error(
        "{path}: version {found:?} is not supported: this stampede reads version {CURRENT_VERSION} (major 1); convert the file or use a matching stampede"
    )]
    Version {
        /// The file.
        path: String,
        /// The version in the file.
        found: String,
    },
    /// Problems found after parsing, each with its path in the file.
    #[error("{path}: {}", problems.join("; "))]
    Invalid {
        /// The file.
        path: String,
        /// `tests[0].steps[1].load.rate: must be positive`, ...
        problems: Vec<String>,
    },
}

impl JobFile {
    /// Parses a YAML (or JSON, which is YAML) job file. `path` is only used in messages.
    pub fn parse(text: &str, path: &str) -> Result<JobFile, DescriptorError> {
        let job: JobFile = serde_saphyr::from_str(text).map_err(|e| DescriptorError::Syntax {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        if let Some(version) = &job.version {
            let major = version.split('.').next().unwrap_or_default().trim();
            let minor_ok = version
                .split('.')
                .nth(1)
                .is_none_or(|m| m.trim().parse::<u32>().is_ok());
            if major != "1" || !minor_ok {
                return Err(DescriptorError::Version {
                    path: path.into(),
                    found: version.clone(),
                });
            }
        }
        let mut problems = Vec::new();
        if job.tests.is_empty() {
            problems.push("tests: give at least one test".to_string());
        }
        for (t, test) in job.tests.iter().enumerate() {
            if test.steps.is_empty() {
                problems.push(format!("tests[{t}].steps: give at least one step"));
            }
            for (s, step) in test.steps.iter().enumerate() {
                let at = format!("tests[{t}].steps[{s}]");
                if test.steps[..s].iter().any(|other| other.name == step.name) {
                    problems.push(format!(
                        "{at}.name: {:?} is used twice in this test",
                        step.name
                    ));
                }
                match &step.load {
                    None => problems.push(format!("{at}: say what the step does, e.g. `load:`")),
                    Some(load) => {
                        if let Err(errors) = load.settings() {
                            problems.extend(errors.into_iter().map(|e| format!("{at}.load.{e}")));
                        }
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(job)
        } else {
            Err(DescriptorError::Invalid {
                path: path.into(),
                problems,
            })
        }
    }

    /// The enabled steps with their `test/step` names.
    pub fn load_steps(&self) -> impl Iterator<Item = (String, &LoadStep)> {
        self.tests.iter().flat_map(|test| {
            test.steps
                .iter()
                .filter(|s| !s.disabled)
                .filter_map(move |step| {
                    step.load
                        .as_ref()
                        .map(|load| (format!("{}/{}", test.name, step.name), load))
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> String {
        JobFile::parse(text, "job.yaml").unwrap_err().to_string()
    }

    #[test]
    fn parses_a_minimal_job() {
        let job = JobFile::parse(
            "name: j\ntests:\n  - name: t\n    steps:\n      - name: s\n        load: { url: 'http://127.0.0.1:1/', rate: 10, duration: 1s }\n",
            "job.yaml",
        )
        .unwrap();
        let steps: Vec<_> = job.load_steps().map(|(name, _)| name).collect();
        assert_eq!(steps, ["t/s"]);
    }

    #[test]
    fn the_example_in_the_repository_is_valid() {
        let text = include_str!("../../../examples/smoke.yaml");
        let job = JobFile::parse(text, "examples/smoke.yaml").unwrap();
        let names: Vec<_> = job.load_steps().map(|(name, _)| name).collect();
        assert_eq!(names, ["api/ramp", "api/mixed"]);
    }

    #[test]
    fn refuses_other_majors_and_says_why() {
        let err = problems("version: '2.0'\nname: j\ntests: []\n");
        assert!(err.contains("version \"2.0\" is not supported"), "{err}");
    }

    #[test]
    fn yaml_errors_have_line_and_column() {
        let err = problems("name: j\ntests:\n  - name: t\n    stepz: []\n");
        assert!(err.contains("stepz"), "{err}");
        assert!(err.contains("line 4") || err.contains("4:"), "{err}");
    }

    #[test]
    fn every_problem_has_its_path() {
        let err = problems(
            "name: j\ntests:\n  - name: t\n    steps:\n      - name: a\n        load: { url: 'http://x/', rate: 0, duration: 1s }\n      - name: a\n        load: { url: 'http://x/', vus: 1 }\n",
        );
        assert!(
            err.contains("tests[0].steps[0].load.rate: must be positive"),
            "{err}"
        );
        assert!(
            err.contains("tests[0].steps[1].name: \"a\" is used twice"),
            "{err}"
        );
        assert!(err.contains("tests[0].steps[1].load.duration"), "{err}");
    }
}
