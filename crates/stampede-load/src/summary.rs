//! The load step's result as the versioned summary document.

use stampede_api::{Summary, ThresholdOutcome};
use stampede_metrics::summary_document;

use crate::run::LoadResult;

impl LoadResult {
    /// The summary document of this step.
    pub fn summary(&self) -> Summary {
        let stopped_early = match (&self.aborted, self.interrupted) {
            (Some(abort), _) => Some(abort.to_string()),
            (None, true) => Some("interrupted by the user".to_string()),
            (None, false) => None,
        };
        let mut summary = summary_document(&self.metrics, self.passed(), self.report.interrupted);
        summary.rate.target = self.target_rate;
        summary.stopped_early = stopped_early;
        summary.reasons = self.reasons();
        summary.thresholds = self
            .thresholds
            .iter()
            .map(|t| ThresholdOutcome {
                metric: t.metric.name().to_string(),
                expr: t.expr.clone(),
                ok: t.ok,
                value: t.value,
            })
            .collect();
        summary
    }
}
