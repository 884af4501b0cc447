//! Exact, flat-memory metrics for load runs.
//!
//! * [`Recorder`] — the [`Sink`](stampede_core::Sink) one engine thread writes to: HDR
//!   histograms for the three latency views of every call ([`Views`]) and counters, with no
//!   lock and no allocation per sample.
//! * [`Snapshot`] — what a recorder saw in one interval (1 s); snapshots [`merge`
//!   ](Snapshot::merge) exactly, so per-thread, per-second and per-agent data add up to the
//!   same histogram a single recorder would have built.
//! * [`RunMetrics`] — the run so far: the merged total plus one small row per second, so
//!   memory stays flat however long the run. It answers threshold queries.
//! * Wire snapshots ([`Snapshot::to_wire`]) — an interval as `stampede run --out cloud`
//!   sends it, read back exactly by [`Snapshot::from_wire`].
//! * Thresholds ([`ThresholdSet`]) — k6's grammar and evaluation rules.
//! * [`Progress`] and its [`Observer`] — a run once a second; [`summary_document`] — a
//!   run as the summary JSON.

mod progress;
mod recorder;
mod run;
mod snapshot;
mod stats;
mod summary;
mod threshold;
mod wire;

pub use progress::{Observer, Progress};
pub use recorder::Recorder;
pub use run::{IntervalRow, RunMetrics};
pub use snapshot::{Snapshot, Views};
pub use stats::latency_stats;
pub use summary::{streamed_summary, summary_document};
pub use threshold::*;
pub use wire::WireError;
