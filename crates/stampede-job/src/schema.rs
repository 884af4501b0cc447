//! `stampede schema`: the JSON Schema of the native job descriptor, generated from the
//! config structs themselves, so it cannot drift from what the parser accepts.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::descriptor::spec::JobSpec;

/// How durations are written: `10s`, `1m30s`, `500ms`, `1.5h`, or a number of seconds.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Only its schema is used; durations are parsed by `crate::duration`.
pub(crate) enum DurationText {
    /// `10s`, `1m30s`, `500ms`, `1.5h`.
    Text(String),
    /// Seconds.
    Seconds(f64),
}

/// The JSON Schema (2020-12) of the native job descriptor, pretty-printed.
pub fn job_schema() -> String {
    let schema = schemars::schema_for!(JobSpec);
    serde_json::to_string_pretty(&schema).expect("a schema always serializes")
}
