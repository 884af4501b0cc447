//! Latency percentiles over successful runs: coder's autostart `RunResults`, generalised
//! from its two fixed latencies to any named ones.
//!
//! The rule is coder's, nearest rank rounded down, no interpolation: the `p` percentile of
//! `n` sorted values is `sorted[floor((n - 1) * p)]`. So 10 s, 20 s, 30 s give
//! p50 = p95 = p99 = 20 s. (Thresholds use k6's interpolating percentiles instead; each
//! report says which it shows.)
//!
//! The text and JSON layouts are coder's with the latency names filled in; with
//! [`Layout::autostart`] they are byte for byte coder's autostart report:
//!
//! * text: the title underlined with `=`, the three counts, for each latency (when some
//!   run succeeded) its heading underlined with `-` and `P50/P95/P99` rounded to the
//!   millisecond, then `Failed Runs` with `- <name> (<id>): <error>` lines;
//! * JSON: `total_runs, successful_runs, failed_runs`, `<key>_p{50,95,99}_ms` for each
//!   latency, then `runs: [{<entity>_id, <entity>_name, success, error (omitted when
//!   empty), <key>_ms…}]`, all durations as whole milliseconds.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::gofmt;
use crate::results::to_json_tabs;

/// The `p` percentile (0.0–1.0) of `sorted` values by coder's rule; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let Some(last) = sorted.len().checked_sub(1) else {
        return Duration::ZERO;
    };
    // `as` saturates: NaN and negative products give 0, huge ones give usize::MAX.
    let index = ((last as f64) * p) as usize;
    sorted[index.min(last)]
}

/// The three percentiles coder reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// The median.
    pub p50: Duration,
    /// The 95th percentile.
    pub p95: Duration,
    /// The 99th percentile.
    pub p99: Duration,
}

impl Percentiles {
    /// The percentiles of `values`, in any order; `None` when there are none.
    pub fn of(values: &[Duration]) -> Option<Percentiles> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        Some(Percentiles {
            p50: percentile(&sorted, 0.50),
            p95: percentile(&sorted, 0.95),
            p99: percentile(&sorted, 0.99),
        })
    }

    /// The percentiles of each named list of durations.
    pub fn by_name(named: &BTreeMap<String, Vec<Duration>>) -> BTreeMap<String, Percentiles> {
        named
            .iter()
            .filter_map(|(name, values)| Some((name.clone(), Percentiles::of(values)?)))
            .collect()
    }
}

/// One named latency of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latency {
    /// The JSON stem: `<key>_p50_ms`, and `<key>_ms` in each run.
    pub key: String,
    /// The text heading, e.g. `End-to-End Latency (Config → Completion)`.
    pub heading: String,
}

impl Latency {
    /// A latency with its key and heading.
    pub fn new(key: &str, heading: &str) -> Self {
        Latency {
            key: key.to_owned(),
            heading: heading.to_owned(),
        }
    }
}

/// The names a report prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The text title, e.g. `Autostart Scale Test Results`.
    pub title: String,
    /// What a run is about; its JSON fields are `<entity>_id` and `<entity>_name`.
    pub entity: String,
    /// The latencies, in the order printed.
    pub latencies: Vec<Latency>,
}

impl Layout {
    /// Coder's autostart report.
    pub fn autostart() -> Self {
        Layout {
            title: "Autostart Scale Test Results".into(),
            entity: "workspace".into(),
            latencies: vec![
                Latency::new(
                    "end_to_end_latency",
                    "End-to-End Latency (Config → Completion)",
                ),
                Latency::new(
                    "trigger_to_completion",
                    "Trigger to Completion Latency (Scheduled Time → Completion)",
                ),
            ],
        }
    }
}

/// One runner's outcome and latencies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyRun {
    /// The entity's id.
    pub id: String,
    /// The entity's name.
    pub name: String,
    /// Why the runner failed; `None` if it succeeded.
    pub error: Option<String>,
    /// The latencies it measured, by key; a latency it never reached is absent.
    pub latencies: BTreeMap<String, Duration>,
}

/// Counts and percentiles of a set of runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyResults {
    /// The names to print.
    pub layout: Layout,
    /// Runs in all.
    pub total_runs: usize,
    /// Runs without error.
    pub successful_runs: usize,
    /// Runs with an error.
    pub failed_runs: usize,
    /// Percentiles by latency key, over successful runs that measured that latency;
    /// a key no successful run measured is absent (and prints as zero, like coder).
    pub percentiles: BTreeMap<String, Percentiles>,
    /// Every run, in the order given.
    pub runs: Vec<LatencyRun>,
}

impl LatencyResults {
    /// Counts the runs and computes each latency's percentiles over the successful ones.
    pub fn new(layout: Layout, runs: Vec<LatencyRun>) -> Self {
        let mut named: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
        let successful_runs = runs.iter().filter(|r| r.error.is_none()).count();
        for run in runs.iter().filter(|r| r.error.is_none()) {
            for (key, latency) in &run.latencies {
                named.entry(key.clone()).or_default().push(*latency);
            }
        }
        LatencyResults {
            layout,
            total_runs: runs.len(),
            successful_runs,
            failed_runs: runs.len() - successful_runs,
            percentiles: Percentiles::by_name(&named),
            runs,
        }
    }

    fn percentiles_of(&self, key: &str) -> Percentiles {
        self.percentiles.get(key).copied().unwrap_or_default()
    }

    /// Writes the text report.
    pub fn write_text(&self, w: &mut impl io::Write) -> io::Result<()> {
        let title = &self.layout.title;
        writeln!(w, "{title}")?;
        writeln!(w, "{}\n", underline('=', title))?;
        writeln!(w, "Total Runs:      {}", self.total_runs)?;
        writeln!(w, "Successful:      {}", self.successful_runs)?;
        writeln!(w, "Failed:          {}\n", self.failed_runs)?;
        if self.successful_runs > 0 {
            let ms = Duration::from_millis(1);
            for latency in &self.layout.latencies {
                let p = self.percentiles_of(&latency.key);
                writeln!(w, "{}", latency.heading)?;
                writeln!(w, "{}", underline('-', &latency.heading))?;
                writeln!(w, "P50: {}", gofmt::duration(gofmt::round(p.p50, ms)))?;
                writeln!(w, "P95: {}", gofmt::duration(gofmt::round(p.p95, ms)))?;
                writeln!(w, "P99: {}\n", gofmt::duration(gofmt::round(p.p99, ms)))?;
            }
        }
        if self.failed_runs > 0 {
            writeln!(w, "Failed Runs")?;
            writeln!(w, "-----------")?;
            for run in &self.runs {
                if let Some(error) = &run.error {
                    writeln!(w, "- {} ({}): {error}", run.name, run.id)?;
                }
            }
        }
        Ok(())
    }

    /// The text report as a string.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_text(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The JSON report indented with tabs and ending in a newline.
    pub fn to_json_pretty(&self) -> String {
        to_json_tabs(self)
    }
}

/// Coder's underlines are one character longer than what they underline.
fn underline(c: char, text: &str) -> String {
    std::iter::repeat_n(c, text.chars().count() + 1).collect()
}

/// Whole milliseconds, truncated like Go's `Duration.Milliseconds`.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Serialize for LatencyResults {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("total_runs", &self.total_runs)?;
        map.serialize_entry("successful_runs", &self.successful_runs)?;
        map.serialize_entry("failed_runs", &self.failed_runs)?;
        for latency in &self.layout.latencies {
            let p = self.percentiles_of(&latency.key);
            let key = &latency.key;
            map.serialize_entry(&format!("{key}_p50_ms"), &millis(p.p50))?;
            map.serialize_entry(&format!("{key}_p95_ms"), &millis(p.p95))?;
            map.serialize_entry(&format!("{key}_p99_ms"), &millis(p.p99))?;
        }
        let runs: Vec<RunJson<'_>> = self
            .runs
            .iter()
            .map(|run| RunJson {
                run,
                layout: &self.layout,
            })
            .collect();
        map.serialize_entry("runs", &runs)?;
        map.end()
    }
}

struct RunJson<'a> {
    run: &'a LatencyRun,
    layout: &'a Layout,
}

impl Serialize for RunJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (run, entity) = (self.run, &self.layout.entity);
        let mut map = s.serialize_map(None)?;
        map.serialize_entry(&format!("{entity}_id"), &run.id)?;
        map.serialize_entry(&format!("{entity}_name"), &run.name)?;
        map.serialize_entry("success", &run.error.is_none())?;
        if let Some(error) = run.error.as_deref().filter(|e| !e.is_empty()) {
            map.serialize_entry("error", error)?;
        }
        for latency in &self.layout.latencies {
            let value = run.latencies.get(&latency.key).copied().unwrap_or_default();
            map.serialize_entry(&format!("{}_ms", latency.key), &millis(value))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(values_ms: &[u64], p: f64, expected_ms: u64) {
        let sorted: Vec<Duration> = values_ms
            .iter()
            .map(|&v| Duration::from_millis(v))
            .collect();
        assert_eq!(
            percentile(&sorted, p),
            Duration::from_millis(expected_ms),
            "p{p} of {values_ms:?}"
        );
    }

    #[test]
    fn nearest_rank_rounded_down() {
        check(&[], 0.5, 0);
        check(&[7], 0.99, 7);
        check(&[10, 20, 30], 0.50, 20);
        check(&[10, 20, 30], 0.95, 20); // floor(2 * 0.95) = 1
        check(&[10, 20, 30], 0.99, 20);
        check(&[10, 20], 0.99, 10); // no interpolation: floor(0.99) = 0
        check(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5, 5); // floor(4.5) = 4
        check(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95, 9); // floor(8.55) = 8
        check(&[10, 20, 30], 1.0, 30);
        check(&[10, 20, 30], 7.0, 30); // clamped
        check(&[10, 20, 30], -1.0, 10);
        check(&[10, 20, 30], f64::NAN, 10);
    }

    #[test]
    fn percentiles_sort_their_input() {
        let d = Duration::from_secs;
        let p = Percentiles::of(&[d(30), d(10), d(20)]).unwrap();
        assert_eq!((p.p50, p.p95, p.p99), (d(20), d(20), d(20)));
        assert_eq!(Percentiles::of(&[]), None);
    }

    #[test]
    fn underlines_are_one_longer() {
        assert_eq!(underline('-', "a → b"), "------");
    }
}
