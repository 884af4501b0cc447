//! The one list of built-in steps. A new step is its own file (or crate) and one line
//! here; `run`, `validate`, `schema`, `demo` and the job server all take this registry.

use stampede_job::Registry;

/// Every built-in step, in the order the schema and messages list them.
pub(crate) fn registry() -> Registry {
    Registry::new()
        .with(stampede_load::Load)
        .with(stampede_job::steps::Exec)
        .with(stampede_job::steps::Sleep)
        .with(stampede_load::Http)
        .with(stampede_job::steps::WaitPort)
        .with(stampede_job::steps::Echo)
        .with(stampede_job::steps::RandEcho)
        .with(stampede_scale::step::Scale)
        .with(stampede_robust::step::Robustness)
}
