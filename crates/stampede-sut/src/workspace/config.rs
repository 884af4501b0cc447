//! The workspace service's knobs: provisioner pool size, build time, failure rate and seed.

use std::time::Duration;

use crate::SutError;

/// Longest build time accepted: one hour.
const MAX_BUILD_TIME: Duration = Duration::from_secs(3600);
/// Most provisioners accepted; each is one task, so this is a sanity bound, not a cost.
const MAX_PROVISIONERS: usize = 100_000;

/// How the miniature workspace service under `/ws/` builds workspaces
/// (the field [`Config::workspaces`](crate::Config::workspaces)).
///
/// Builds wait in one FIFO queue for one of `provisioners` slots; each takes `build_time`,
/// so N builds queued together finish in waves of `provisioners` every `build_time`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceConfig {
    /// Builds that run at once (the provisioner pool, P). At least 1. Default 4.
    pub provisioners: usize,
    /// How long each build runs once a provisioner takes it (B). At most one hour;
    /// zero finishes builds as soon as they are taken. Default 1 s.
    pub build_time: Duration,
    /// Share of builds that end `failed` instead of `succeeded`, from 0.0 to 1.0. Default 0.
    pub failure_rate: f64,
    /// Seed of the random numbers that pick failed builds, so a run can be repeated. Default 0.
    pub seed: u64,
}

// `failure_rate` is never NaN once validated, so equality is an equivalence.
impl Eq for WorkspaceConfig {}

impl Default for WorkspaceConfig {
    fn default() -> Self {
        WorkspaceConfig {
            provisioners: 4,
            build_time: Duration::from_secs(1),
            failure_rate: 0.0,
            seed: 0,
        }
    }
}

impl WorkspaceConfig {
    /// Checks each value; [`Config::validate`](crate::Config::validate) calls it.
    pub fn validate(&self) -> Result<(), SutError> {
        let bad = |field, reason: String| Err(SutError::InvalidConfig { field, reason });
        if self.provisioners == 0 || self.provisioners > MAX_PROVISIONERS {
            return bad(
                "workspaces.provisioners",
                format!(
                    "{} is not a pool size; expected 1 to {MAX_PROVISIONERS} builds at once",
                    self.provisioners
                ),
            );
        }
        if self.build_time > MAX_BUILD_TIME {
            return bad(
                "workspaces.build_time",
                format!(
                    "{:?} is longer than the longest build accepted (1h)",
                    self.build_time
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return bad(
                "workspaces.failure_rate",
                format!(
                    "{} is not a share of builds; expected 0.0 (never fail) to 1.0 (always fail)",
                    self.failure_rate
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(config: WorkspaceConfig, bad_field: Option<&str>, mentions: &str) {
        match (config.validate(), bad_field) {
            (Ok(()), None) => {}
            (Err(SutError::InvalidConfig { field, reason }), Some(want)) => {
                assert_eq!(field, want);
                assert!(reason.contains(mentions), "{reason}");
            }
            (got, want) => panic!("{config:?}: got {got:?}, wanted error on {want:?}"),
        }
    }

    #[test]
    fn validation() {
        let ok = WorkspaceConfig::default;
        check(ok(), None, "");
        check(
            WorkspaceConfig {
                provisioners: 1,
                build_time: Duration::ZERO,
                failure_rate: 1.0,
                seed: 7,
            },
            None,
            "",
        );
        let field = "workspaces.provisioners";
        check(
            WorkspaceConfig {
                provisioners: 0,
                ..ok()
            },
            Some(field),
            "1 to",
        );
        let field = "workspaces.build_time";
        let long = Duration::from_secs(3601);
        check(
            WorkspaceConfig {
                build_time: long,
                ..ok()
            },
            Some(field),
            "1h",
        );
        let field = "workspaces.failure_rate";
        for rate in [-0.1, 1.5, f64::NAN] {
            check(
                WorkspaceConfig {
                    failure_rate: rate,
                    ..ok()
                },
                Some(field),
                "0.0",
            );
        }
    }
}
