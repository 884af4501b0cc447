//! What a harness run produced: coder's `harness.Results`, with its JSON field names and
//! its text layout.
//!
//! JSON: `total_runs, total_pass, total_fail, elapsed, elapsed_ms, runs`, where `runs` is
//! keyed by full id and each run is `full_id, test_name, id, logs, started_at, duration,
//! duration_ms, error`, in that order (Go puts the overriding `error` field last). Durations
//! are Go duration strings plus a `_ms` integer; `error` of a passing run is `"<nil>"`.
//!
//! One deliberate difference from coder's text: the last line of a failed run's log is
//! printed even when it has no trailing newline (coder's reader drops it, and that line is
//! usually the one that says what went wrong).

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, SystemTime};

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::gofmt;
use crate::run::RunFailure;

/// The results of all runs of a harness.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// Runs registered.
    pub total_runs: usize,
    /// Runs that ended without error.
    pub total_pass: usize,
    /// Runs that failed, panicked, timed out or never ran.
    pub total_fail: usize,
    /// Wall time of the whole harness run.
    pub elapsed: Duration,
    /// Every run, by full id.
    pub runs: BTreeMap<String, RunResult>,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// `<test name>/<id>`.
    pub full_id: String,
    /// The part before the slash.
    pub test_name: String,
    /// The part after the slash.
    pub id: String,
    /// Everything the run wrote to its log.
    pub logs: String,
    /// Why the run failed; `None` if it passed.
    pub error: Option<RunFailure>,
    /// When the run started; `None` if it never did.
    pub started_at: Option<SystemTime>,
    /// How long the run took.
    pub duration: Duration,
}

impl Results {
    /// Writes coder's text report: each failed run (error and indented log), then totals.
    pub fn write_text(&self, w: &mut impl io::Write) -> io::Result<()> {
        let mut total = Duration::ZERO;
        for run in self.runs.values() {
            total += run.duration;
            let Some(error) = &run.error else { continue };
            write!(w, "\n== FAIL: {}\n\n", run.full_id)?;
            write!(w, "\tError: {error}\n\n")?;
            writeln!(w, "\tLog:")?;
            for line in run.logs.split_inclusive('\n') {
                write!(w, "\t\t{line}")?;
                if !line.ends_with('\n') {
                    writeln!(w)?;
                }
            }
        }
        writeln!(w, "\n\nTest results:")?;
        if self.total_runs == 0 {
            return writeln!(w, "\tNo tests run");
        }
        writeln!(w, "\tPass:  {}", self.total_pass)?;
        writeln!(w, "\tFail:  {}", self.total_fail)?;
        writeln!(w, "\tTotal: {}", self.total_runs)?;
        writeln!(w)?;
        writeln!(w, "\tTotal duration: {}", gofmt::duration(self.elapsed))?;
        let average = total.as_nanos() / self.total_runs as u128;
        let average = Duration::from_nanos(u64::try_from(average).unwrap_or(u64::MAX));
        writeln!(w, "\tAvg. duration:  {}", gofmt::duration(average))
    }

    /// The text report as a string.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_text(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The JSON report indented with tabs and ending in a newline, as coder's CLI writes it.
    pub fn to_json_pretty(&self) -> String {
        to_json_tabs(self)
    }
}

/// `value` as JSON indented with tabs plus a final newline, like Go's `json.Encoder` with
/// `SetIndent("", "\t")`.
pub(crate) fn to_json_tabs(value: &impl Serialize) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Our types serialize only strings, integers and maps: this cannot fail.
    let _ = value.serialize(&mut ser);
    out.push(b'\n');
    String::from_utf8_lossy(&out).into_owned()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Serialize for Results {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Results", 6)?;
        st.serialize_field("total_runs", &self.total_runs)?;
        st.serialize_field("total_pass", &self.total_pass)?;
        st.serialize_field("total_fail", &self.total_fail)?;
        st.serialize_field("elapsed", &gofmt::duration(self.elapsed))?;
        st.serialize_field("elapsed_ms", &millis(self.elapsed))?;
        st.serialize_field("runs", &self.runs)?;
        st.end()
    }
}

impl Serialize for RunResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("RunResult", 8)?;
        st.serialize_field("full_id", &self.full_id)?;
        st.serialize_field("test_name", &self.test_name)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("logs", &self.logs)?;
        let started_at = match self.started_at {
            Some(t) => gofmt::rfc3339_nano(t),
            // Go's zero time.
            None => "0001-01-01T00:00:00Z".to_owned(),
        };
        st.serialize_field("started_at", &started_at)?;
        st.serialize_field("duration", &gofmt::duration(self.duration))?;
        st.serialize_field("duration_ms", &millis(self.duration))?;
        let error = match &self.error {
            Some(e) => e.to_string(),
            None => "<nil>".to_owned(),
        };
        st.serialize_field("error", &error)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_runs_reads_no_tests_run() {
        assert_eq!(
            Results::default().to_text(),
            "\n\nTest results:\n\tNo tests run\n"
        );
    }

    #[test]
    fn a_run_that_never_started_has_gos_zero_time() {
        let run = RunResult {
            full_id: "t/0".into(),
            test_name: "t".into(),
            id: "0".into(),
            logs: String::new(),
            error: Some(RunFailure::NotStarted),
            started_at: None,
            duration: Duration::ZERO,
        };
        let json = serde_json::to_value(&run).unwrap();
        assert_eq!(json["started_at"], "0001-01-01T00:00:00Z");
        assert_eq!(json["error"], "run did not start");
        assert_eq!(json["duration"], "0s");
    }
}
