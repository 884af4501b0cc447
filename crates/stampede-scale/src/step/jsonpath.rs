//! The JSON paths phases save values by and conditions test: `$`, then `.name`,
//! `['name']` or `[index]` steps, e.g. `$.latest_build.status` or `$.items[0].id`.
//! That is all the scale step needs (no wildcards, filters or slices), so it is read
//! here rather than with a full JSONPath engine.

use std::fmt;

use serde_json::Value;

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl JsonPath {
    /// Parses `text`; the error says what is wrong and how paths are written.
    pub(crate) fn parse(text: &str) -> Result<JsonPath, String> {
        let bad = |why: &str| {
            format!("JSON path {text:?}: {why}; write it like $.name, $.items[0].id or $['a b']")
        };
        let mut rest = text
            .strip_prefix('$')
            .ok_or_else(|| bad("start it with $"))?;
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let name = &after[..end];
                if name.is_empty() {
                    return Err(bad("a name is missing after a dot"));
                }
                steps.push(Step::Key(name.to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix("['") {
                let end = after
                    .find("']")
                    .ok_or_else(|| bad("close ['name' with ']"))?;
                steps.push(Step::Key(after[..end].to_owned()));
                rest = &after[end + 2..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after.find(']').ok_or_else(|| bad("close [ with ]"))?;
                let index = after[..end]
                    .parse()
                    .map_err(|_| bad("an index is a whole number, like [0]"))?;
                steps.push(Step::Index(index));
                rest = &after[end + 1..];
            } else {
                return Err(bad("expected . or [ here"));
            }
        }
        Ok(JsonPath {
            text: text.to_owned(),
            steps,
        })
    }

    /// The value at this path in `value`, if there is one.
    pub(crate) fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.steps.iter().try_fold(value, |v, step| match step {
            Step::Key(key) => v.get(key),
            Step::Index(i) => v.get(i),
        })
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A value as saved text: a string as it is, anything else as JSON.
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(path: &str, want: Option<Value>) {
        let doc = json!({"a": {"b c": [10, {"d": "x"}]}, "n": 1});
        let got = JsonPath::parse(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.get(&doc).cloned(), want, "{path}");
    }

    #[test]
    fn reads_keys_quoted_keys_and_indexes() {
        check("$", Some(json!({"a": {"b c": [10, {"d": "x"}]}, "n": 1})));
        check("$.n", Some(json!(1)));
        check("$.a['b c'][0]", Some(json!(10)));
        check("$.a['b c'][1].d", Some(json!("x")));
        check("$.a['b c'][2]", None);
        check("$.missing.deeper", None);
    }

    #[test]
    fn bad_paths_say_how_to_write_them() {
        for (path, why) in [
            ("a.b", "start it with $"),
            ("$.", "a name is missing"),
            ("$[x]", "whole number"),
            ("$['a", "close ['name'"),
            ("$a", "expected . or ["),
        ] {
            let err = JsonPath::parse(path).unwrap_err();
            assert!(err.contains(why) && err.contains("$.items[0].id"), "{err}");
        }
    }
}
