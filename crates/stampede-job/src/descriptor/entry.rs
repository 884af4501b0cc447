//! A step entry's shape: a label, `disabled`, `timeout`, and configs under registered
//! keys, each decoded by its step's own config type so that its problem has its full path
//! (`tests[0].steps[1].sleep.extra: unknown field ...`). The entry's keys are checked as
//! serde would check a struct with one optional field per registered step, and in the
//! document's order, so the first problem of an entry is the one reported.

use serde_json::Value;

use super::spec::StepEntry;
use crate::registry::{Registry, decode};
use crate::step::{Problem, join};

/// The entry's own fields, before the step keys.
const FIELDS: [&str; 3] = ["name", "disabled", "timeout"];

/// Checks the shape of the step entry `value` at `at`: the first problem found.
pub(super) fn check(value: &Value, at: &str, registry: &Registry) -> Result<(), Problem> {
    if let Value::Object(entry) = value {
        for (key, config) in entry {
            if FIELDS.contains(&key.as_str()) {
                continue;
            }
            match registry.get(key) {
                Some(plugin) => plugin.shape(config, &join(at, key))?,
                None => return Err(Problem::new(join(at, key), unknown_field(key, registry))),
            }
        }
    }
    // The entry's own fields (and a value that is not a mapping at all).
    decode::<StepEntry>(value, at).map(drop)
}

/// serde's words for a key no field has, listing the fields there are.
fn unknown_field(key: &str, registry: &Registry) -> String {
    let fields: Vec<String> = FIELDS
        .iter()
        .copied()
        .chain(registry.keys())
        .map(|f| format!("`{f}`"))
        .collect();
    format!(
        "unknown field `{key}`, expected one of {}",
        fields.join(", ")
    )
}
