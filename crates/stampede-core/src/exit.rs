//! Process exit codes. They follow k6 where k6 has one, so CI scripts written for k6 keep
//! working (SPEC §3).

/// How a `stampede` command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitCode {
    /// Everything ran and every threshold held.
    Passed,
    /// Any other error (I/O, a bug, an unexpected state).
    Other,
    /// The run failed (k6's `CloudTestRunFailed`).
    RunFailed,
    /// No progress could be read from the server (k6's `CloudFailedToGetProgress`).
    NoProgress,
    /// At least one threshold was crossed (k6's `ThresholdsHaveFailed`).
    ThresholdsCrossed,
    /// The configuration is invalid (k6's `InvalidConfig`).
    InvalidConfig,
    /// A signal stopped the job: it was paused or cancelled (k6's `ExternalAbort`).
    Interrupted,
}

impl ExitCode {
    /// The numeric code the process exits with.
    pub const fn code(self) -> u8 {
        match self {
            ExitCode::Passed => 0,
            ExitCode::Other => 1,
            ExitCode::RunFailed => 97,
            ExitCode::NoProgress => 98,
            ExitCode::ThresholdsCrossed => 99,
            ExitCode::InvalidConfig => 104,
            ExitCode::Interrupted => 105,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCode;

    #[test]
    fn codes_match_k6() {
        let table = [
            (ExitCode::Passed, 0),
            (ExitCode::Other, 1),
            (ExitCode::RunFailed, 97),
            (ExitCode::NoProgress, 98),
            (ExitCode::ThresholdsCrossed, 99),
            (ExitCode::InvalidConfig, 104),
            (ExitCode::Interrupted, 105),
        ];
        for (exit, code) in table {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }
}
