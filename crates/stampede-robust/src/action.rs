//! The closed set of robustness actions ([`ActionKind`]), their [`Weights`] for random
//! choice, and per-action statistics ([`Stats`]): count, errors, no-ops and run times.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rand::{Rng, RngExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
pub use stampede_api::robustness::ActionStats;

/// One thing a client can do (kopia's action keys, renamed to say what they do).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// Fingerprint the data directory, snapshot it, record the metadata
    /// (kopia's `snapshot-root`).
    Snapshot,
    /// Restore one of the client's live snapshots into a fresh directory and compare it
    /// with its fingerprint (`restore-random-snapID`).
    RestoreCompare,
    /// Delete one of the client's live snapshots, if it has more than one
    /// (`delete-random-snapID`).
    DeleteSnapshot,
    /// Write a random batch of files (`write-random-files`).
    WriteFiles,
    /// Delete a random subdirectory (`delete-random-subdirectory`).
    DeleteSubdirectory,
    /// Delete a share of one directory's entries (`delete-files`).
    DeleteFiles,
    /// Empty the data directory, restore a live snapshot into it and compare
    /// (`restore-into-data-dir`).
    RestoreIntoDataDir,
    /// Collect garbage on the server (`run-gc`).
    Gc,
    /// Kill the server under test and start it again (fault injection). It waits until no
    /// other client of the harness is inside an action and holds them back until the
    /// server is back, so the fault lands between actions.
    RestartServer,
}

impl ActionKind {
    /// Every action, in declaration order.
    pub const ALL: [ActionKind; 9] = [
        ActionKind::Snapshot,
        ActionKind::RestoreCompare,
        ActionKind::DeleteSnapshot,
        ActionKind::WriteFiles,
        ActionKind::DeleteSubdirectory,
        ActionKind::DeleteFiles,
        ActionKind::RestoreIntoDataDir,
        ActionKind::Gc,
        ActionKind::RestartServer,
    ];

    /// The name used in configuration and reports.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Snapshot => "snapshot",
            ActionKind::RestoreCompare => "restore-compare",
            ActionKind::DeleteSnapshot => "delete-snapshot",
            ActionKind::WriteFiles => "write-files",
            ActionKind::DeleteSubdirectory => "delete-subdirectory",
            ActionKind::DeleteFiles => "delete-files",
            ActionKind::RestoreIntoDataDir => "restore-into-data-dir",
            ActionKind::Gc => "gc",
            ActionKind::RestartServer => "restart-server",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Relative weights for random choice; an action missing from the map has weight 0.
///
/// The default is kopia's: 1 for every action except `restore-into-data-dir` (0); the
/// fault `restart-server` is 0 too, so faults are always asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Weights(pub BTreeMap<ActionKind, u32>);

impl Default for Weights {
    fn default() -> Self {
        let mut w: BTreeMap<_, _> = ActionKind::ALL.iter().map(|&k| (k, 1)).collect();
        w.insert(ActionKind::RestoreIntoDataDir, 0);
        w.insert(ActionKind::RestartServer, 0);
        Self(w)
    }
}

impl Weights {
    /// Weights from `(action, weight)` pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (ActionKind, u32)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// Picks an action with probability weight / total; `None` when every weight is 0.
    pub fn choose<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<ActionKind> {
        let total: u64 = self.0.values().map(|&w| u64::from(w)).sum();
        if total == 0 {
            return None;
        }
        let mut r = rng.random_range(0..total);
        for (&kind, &w) in &self.0 {
            let w = u64::from(w);
            if r < w {
                return Some(kind);
            }
            r -= w;
        }
        None
    }
}

/// How a run ended, for [`Stats::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    /// The action did its work.
    Done,
    /// Nothing to do.
    NoOp,
    /// It failed.
    Error,
}

/// Per-action statistics of one client (or, merged, of a run).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Stats(pub BTreeMap<ActionKind, ActionStats>);

impl Stats {
    /// Adds one run.
    pub fn record(&mut self, kind: ActionKind, took: Duration, result: RunResult) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let s = self.0.entry(kind).or_default();
        s.min_us = if s.count == 0 { us } else { s.min_us.min(us) };
        s.max_us = s.max_us.max(us);
        s.count += 1;
        s.total_us = s.total_us.saturating_add(us);
        match result {
            RunResult::Done => {}
            RunResult::NoOp => s.no_ops += 1,
            RunResult::Error => s.errors += 1,
        }
    }

    /// Adds another client's statistics to these.
    pub fn merge(&mut self, other: &Stats) {
        for (&kind, o) in &other.0 {
            let s = self.0.entry(kind).or_default();
            s.min_us = if s.count == 0 {
                o.min_us
            } else if o.count == 0 {
                s.min_us
            } else {
                s.min_us.min(o.min_us)
            };
            s.max_us = s.max_us.max(o.max_us);
            s.count += o.count;
            s.errors += o.errors;
            s.no_ops += o.no_ops;
            s.total_us = s.total_us.saturating_add(o.total_us);
        }
    }

    /// Runs of every action together.
    pub fn total_count(&self) -> u64 {
        self.0.values().map(|s| s.count).sum()
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (kind, s) in &self.0 {
            let mean = s.total_us.checked_div(s.count).unwrap_or(0);
            writeln!(
                f,
                "{kind:<22} count {:>5}  errors {:>3}  no-ops {:>4}  min {:>9}us  mean {:>9}us  max {:>9}us",
                s.count, s.errors, s.no_ops, s.min_us, mean, s.max_us
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    #[test]
    fn default_weights_skip_restore_into_data_dir() {
        let w = Weights::default();
        assert_eq!(w.0[&ActionKind::RestoreIntoDataDir], 0);
        assert_eq!(w.0.values().sum::<u32>(), 7);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0);
        assert!((0..1000).all(|_| w.choose(&mut rng) != Some(ActionKind::RestoreIntoDataDir)));
    }

    #[test]
    fn all_zero_weights_pick_nothing() {
        let w = Weights::from_pairs([(ActionKind::Gc, 0)]);
        assert_eq!(w.choose(&mut Xoshiro256PlusPlus::seed_from_u64(0)), None);
        assert_eq!(
            Weights(BTreeMap::new()).choose(&mut Xoshiro256PlusPlus::seed_from_u64(0)),
            None
        );
    }

    #[test]
    fn weights_parse_from_names() {
        let w: Weights = serde_json::from_str(r#"{"snapshot": 2, "gc": 1}"#).unwrap();
        assert_eq!(
            w,
            Weights::from_pairs([(ActionKind::Snapshot, 2), (ActionKind::Gc, 1)])
        );
        assert!(serde_json::from_str::<Weights>(r#"{"snapshots": 2}"#).is_err());
    }

    #[test]
    fn stats_record_and_merge() {
        let mut a = Stats::default();
        a.record(ActionKind::Gc, Duration::from_micros(30), RunResult::Done);
        a.record(ActionKind::Gc, Duration::from_micros(10), RunResult::NoOp);
        let mut b = Stats::default();
        b.record(ActionKind::Gc, Duration::from_micros(50), RunResult::Error);
        a.merge(&b);
        let want = ActionStats {
            count: 3,
            errors: 1,
            no_ops: 1,
            total_us: 90,
            min_us: 10,
            max_us: 50,
        };
        assert_eq!(a.0[&ActionKind::Gc], want);
        assert!(a.to_string().starts_with("gc "));
    }
}
