//! `stampede schema`: the JSON Schema of the native job descriptor, generated from the
//! config structs themselves and the registry's steps, so it cannot drift from what the
//! parser accepts.

use schemars::SchemaGenerator;
use serde_json::{Map, Value, json};

use crate::descriptor::spec::JobSpec;
use crate::registry::Registry;

/// The JSON Schema (2020-12) of the native job descriptor with `registry`'s steps,
/// pretty-printed.
pub fn job_schema(registry: &Registry) -> String {
    let mut generator = SchemaGenerator::default();
    let steps: Vec<(&str, Value)> = registry
        .steps()
        .iter()
        .map(|plugin| {
            let config = plugin.schema(&mut generator).to_value();
            let property = json!({
                "description": plugin.summary(),
                "anyOf": [config, {"type": "null"}],
            });
            (plugin.key(), property)
        })
        .collect();
    let mut schema = generator.into_root_schema_for::<JobSpec>().to_value();
    if let Some(entry) = schema.pointer_mut("/$defs/StepEntry")
        && let Some(Value::Object(properties)) = entry.get_mut("properties")
    {
        let mut all: Vec<(String, Value)> = std::mem::take(properties).into_iter().collect();
        all.extend(steps.into_iter().map(|(k, v)| (k.to_string(), v)));
        all.sort_by(|a, b| a.0.cmp(&b.0));
        *properties = all.into_iter().collect::<Map<_, _>>();
        entry["additionalProperties"] = Value::Bool(false);
    }
    // Serialized as a schema again, which writes each object's keywords in schemars'
    // order (`$schema`, `title`, `description`, `type` ... first).
    let schema = schemars::Schema::try_from(schema).expect("still a schema");
    serde_json::to_string_pretty(&schema).expect("a schema always serializes")
}
