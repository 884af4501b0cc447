//! Diagnostic logs: `tracing` events from the server, the runner and the steps, written to
//! standard error as text or JSON lines. What users read (progress, summaries, verdicts)
//! is printed, not logged, and does not depend on the level.

use tracing_subscriber::EnvFilter;

use crate::Failed;
use crate::cli::LogFormat;

/// Starts the log writer: `RUST_LOG` when set, else `level`.
pub(crate) fn init(level: &str, format: LogFormat) -> Result<(), Failed> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => EnvFilter::try_new(&spec).map_err(|e| {
            Failed::config(format!(
                "RUST_LOG={spec:?}: {e}; write a level (error, warn, info, debug, trace) or \
                 target=level pairs, e.g. stampede_job=debug"
            ))
        })?,
        Err(_) => EnvFilter::try_new(level).map_err(|e| {
            Failed::config(format!(
                "--log-level {level:?}: {e}; use error, warn, info, debug or trace"
            ))
        })?,
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => logs.try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
    installed.map_err(|e| Failed::other(format!("cannot start the log writer: {e}")))
}
