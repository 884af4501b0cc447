//! The one list of built-in steps. A new step is its own file (or crate) and one line
//! here; `run`, `validate`, `schema`, `demo` and the job server all take this registry.

use stampede_job::Registry;
use stampede_job::steps::{Echo, Exec, RandEcho, Sleep, WaitPort};
use stampede_load::{Http, Load};
use stampede_robust::step::Robustness;
use stampede_scale::step::Scale;

/// Every built-in step, in the order the schema and messages list them.
pub(crate) fn registry() -> Registry {
    Registry::new()
        .with(Load)
        .with(Exec)
        .with(Sleep)
        .with(Http)
        .with(WaitPort)
        .with(Echo)
        .with(RandEcho)
        .with(Scale)
        .with(Robustness)
}
