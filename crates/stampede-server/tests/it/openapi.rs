//! `GET /v1/openapi.json` against the server itself: every documented operation is served,
//! no other method is, and real responses fit the documented statuses and schemas.

use serde_json::Value;

use super::{Fixture, QUICK, Reply, SLOW, call, on_every_backend};

on_every_backend!(
    the_server_answers_every_documented_operation_and_no_other_method,
    real_responses_fit_the_documented_statuses_and_schemas,
);

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

async fn document(f: &Fixture) -> Value {
    let reply = f.get("/v1/openapi.json").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["openapi"], "3.1.0");
    reply.body
}

/// Each documented path and its methods (upper case).
fn operations(document: &Value) -> Vec<(String, Vec<String>)> {
    document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .map(|m| m.to_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

async fn the_server_answers_every_documented_operation_and_no_other_method(f: &Fixture) {
    let document = document(f).await;
    let id = f.submit(QUICK).await;
    f.wait_for(id, "completed").await;
    for (template, methods) in operations(&document) {
        let path = template.replace("{id}", &id.to_string());
        for method in METHODS {
            let reply = f.send(method, &path, "", &[]).await;
            if methods.iter().any(|m| m == method) {
                assert_ne!(reply.status, 405, "{method} {template}: {}", reply.body);
                let unrouted = reply.body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("no such endpoint"));
                assert!(
                    !unrouted,
                    "{method} {template} is documented but not routed"
                );
            } else {
                assert_eq!(
                    reply.status, 405,
                    "{method} {template} is routed but not documented"
                );
                assert_eq!(reply.body["error"]["code"], 405);
            }
        }
    }
    let unknown = f.get("/v1/jobs/1/explode").await;
    assert_eq!(unknown.status, 404);
}

/// The schema `schema` refers to, following `$ref`s.
fn resolve<'a>(document: &'a Value, mut schema: &'a Value) -> &'a Value {
    while let Some(target) = schema["$ref"].as_str() {
        schema = document
            .pointer(target.strip_prefix('#').unwrap())
            .unwrap_or_else(|| panic!("{target} dangles"));
    }
    schema
}

/// Checks `value` against `schema` (the keywords the document uses: `type`, `required`,
/// `properties`, `additionalProperties`, `items`, `enum`, `const`); returns the problems.
fn validate(document: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(document, schema);
    let mut problems = Vec::new();
    if let Some(expected) = schema["const"].as_str()
        && value != expected
    {
        problems.push(format!("{at}: {value} is not {expected:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let fits = match schema["type"].as_str() {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some(other) => panic!("the test does not know type {other}"),
    };
    if !fits {
        problems.push(format!("{at}: {value} is not of type {}", schema["type"]));
        return problems;
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) {
                problems.push(format!("{at}: `{name}` is missing"));
            }
        }
        for (name, field) in object {
            let field_schema = match schema["properties"].get(name) {
                Some(s) => s,
                None => match schema.get("additionalProperties") {
                    Some(s) => s,
                    None if schema.get("properties").is_some() => {
                        problems.push(format!("{at}: `{name}` is not documented"));
                        continue;
                    }
                    None => continue,
                },
            };
            problems.extend(validate(
                document,
                field_schema,
                field,
                &format!("{at}.{name}"),
            ));
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, item) in values.iter().enumerate() {
            problems.extend(validate(document, items, item, &format!("{at}[{i}]")));
        }
    }
    problems
}

/// Checks that `reply` to `method template` is a documented response and fits its schema.
fn conforms(document: &Value, method: &str, template: &str, reply: &Reply) {
    let operation = &document["paths"][template][method.to_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {template} is not documented"
    );
    let status = reply.status.to_string();
    let response = operation["responses"].get(&status).unwrap_or_else(|| {
        panic!("{method} {template} answered {status}, which is not documented")
    });
    let response = resolve(document, response);
    let Some(content) = response["content"].as_object() else {
        assert!(
            reply.body.as_str().is_some_and(str::is_empty),
            "{method} {template} {status} has no documented body but sent {}",
            reply.body
        );
        return;
    };
    let media = reply.content_type.split(';').next().unwrap().trim();
    let documented = &content
        .get(media)
        .unwrap_or_else(|| panic!("{method} {template} {status}: {media} is not documented"))["schema"];
    let problems = validate(document, documented, &reply.body, "body");
    assert!(
        problems.is_empty(),
        "{method} {template} {status}: {problems:#?}"
    );
    if reply.status >= 400 {
        assert_eq!(reply.body["error"]["code"], reply.status);
    }
}

async fn real_responses_fit_the_documented_statuses_and_schemas(f: &Fixture) {
    let document = document(f).await;
    let key = [("idempotency-key", "k")];
    let submitted = f.send("POST", "/v1/jobs", QUICK, &key).await;
    let id = submitted.body["job_id"].as_u64().unwrap();
    f.wait_for(id, "completed").await;
    let slow = f.submit(SLOW).await;
    f.wait_for(slow, "started").await;
    let job = format!("/v1/jobs/{id}");
    let last = f.seqs(id).await.last().unwrap().to_string();
    let cases: Vec<(&str, &str, Reply)> = vec![
        (
            "GET",
            "/healthz",
            call(f.addr(), "GET", "/healthz", None, b"", &[]).await,
        ),
        ("GET", "/metrics", f.get("/metrics").await),
        (
            "GET",
            "/metrics",
            call(f.addr(), "GET", "/metrics", None, b"", &[]).await,
        ),
        ("GET", "/v1/version", f.get("/v1/version").await),
        ("GET", "/v1/openapi.json", f.get("/v1/openapi.json").await),
        ("POST", "/v1/jobs", submitted),
        (
            "POST",
            "/v1/jobs",
            f.send("POST", "/v1/jobs", QUICK, &key).await,
        ),
        ("POST", "/v1/jobs", f.post("/v1/jobs", "").await),
        (
            "POST",
            "/v1/jobs",
            f.post("/v1/jobs", "name: j\ntests: []\n").await,
        ),
        (
            "POST",
            "/v1/jobs",
            f.post("/v1/jobs", &"#".repeat(2 << 20)).await,
        ),
        ("GET", "/v1/jobs", f.get("/v1/jobs").await),
        ("GET", "/v1/jobs", f.get("/v1/jobs?limit=1").await),
        ("GET", "/v1/jobs", f.get("/v1/jobs?limit=many").await),
        (
            "GET",
            "/v1/jobs",
            call(f.addr(), "GET", "/v1/jobs", Some("nope"), b"", &[]).await,
        ),
        ("GET", "/v1/jobs/{id}", f.get(&job).await),
        ("GET", "/v1/jobs/{id}", f.get("/v1/jobs/999").await),
        ("GET", "/v1/jobs/{id}", f.get("/v1/jobs/abc").await),
        (
            "GET",
            "/v1/jobs/{id}/events",
            f.get(&format!("{job}/events?limit=5")).await,
        ),
        (
            "GET",
            "/v1/jobs/{id}/events/stream",
            f.get(&format!("{job}/events/stream")).await,
        ),
        (
            "GET",
            "/v1/jobs/{id}/events/stream",
            f.get(&format!("{job}/events/stream?after={last}")).await,
        ),
        (
            "POST",
            "/v1/jobs/{id}/cancel",
            f.post(&format!("{job}/cancel"), "").await,
        ),
        (
            "POST",
            "/v1/jobs/{id}/resume",
            f.post(&format!("{job}/resume"), "").await,
        ),
        (
            "POST",
            "/v1/jobs/{id}/retry",
            f.post(&format!("/v1/jobs/{slow}/retry"), "").await,
        ),
        (
            "POST",
            "/v1/jobs/{id}/retry",
            f.post(&format!("{job}/retry"), "").await,
        ),
        (
            "POST",
            "/v1/jobs/{id}/pause",
            f.post(&format!("/v1/jobs/{slow}/pause"), "").await,
        ),
    ];
    let mut cases = cases;
    cases.extend(test_run_cases(f, id).await);
    let statuses: Vec<u16> = cases.iter().map(|(_, _, r)| r.status).collect();
    for code in [200, 201, 202, 204, 400, 401, 404, 409, 413, 422] {
        assert!(
            statuses.contains(&code),
            "no case answered {code}: {statuses:?}"
        );
    }
    for (method, template, reply) in &cases {
        conforms(&document, method, template, reply);
    }
}

const VALID: &str = r#"{"options": {"name": "v", "tests": [{"name": "t", "steps": [{"name": "e", "echo": {"text": "hi"}}]}]}}"#;

/// Replies of the test-run, validate-options and validate-token calls.
async fn test_run_cases(f: &Fixture, job: u64) -> Vec<(&'static str, &'static str, Reply)> {
    let created = f
        .post(
            "/v1/tests",
            r#"{"name": "r", "vus": 2, "duration": 3, "thresholds": {"latency": ["p(99) < 9"]}}"#,
        )
        .await;
    let r = created.body["reference_id"].as_str().unwrap().to_string();
    let snapshot = serde_json::to_value(stampede_metrics::Snapshot::default().to_wire()).unwrap();
    let push = serde_json::json!({ "first": 0, "snapshots": [
        { "step": "t/s", "target": "x", "elapsed_s": 1.0, "snapshot": snapshot }
    ] })
    .to_string();
    let finished =
        r#"{"result_status": 0, "run_status": 3, "thresholds": {"latency": {"p(99) < 9": false}}}"#;
    let token = format!(r#"{{"token": "{}"}}"#, f.token);
    vec![
        ("POST", "/v1/tests", created),
        ("POST", "/v1/tests", f.post("/v1/tests", "[]").await),
        (
            "POST",
            "/v1/tests/{ref}/metrics",
            f.post(&format!("/v1/tests/{r}/metrics"), &push).await,
        ),
        (
            "GET",
            "/v1/test-progress/{ref}",
            f.get(&format!("/v1/test-progress/{r}")).await,
        ),
        (
            "GET",
            "/v1/test-progress/{ref}",
            f.get(&format!("/v1/test-progress/{job}")).await,
        ),
        (
            "POST",
            "/v1/tests/{ref}/stop",
            f.post(&format!("/v1/tests/{r}/stop"), "").await,
        ),
        (
            "POST",
            "/v1/tests/{ref}",
            f.post(&format!("/v1/tests/{r}"), finished).await,
        ),
        (
            "POST",
            "/v1/tests/{ref}",
            f.post(&format!("/v1/tests/{r}"), finished).await,
        ),
        (
            "GET",
            "/v1/tests/{ref}",
            f.get(&format!("/v1/tests/{r}")).await,
        ),
        (
            "GET",
            "/v1/tests/{ref}",
            f.get(&format!("/v1/tests/{job}")).await,
        ),
        (
            "POST",
            "/v1/tests/{ref}/stop",
            f.post(&format!("/v1/tests/{r}/stop"), "").await,
        ),
        (
            "POST",
            "/v1/validate-options",
            f.post("/v1/validate-options", VALID).await,
        ),
        (
            "POST",
            "/v1/validate-options",
            f.post(
                "/v1/validate-options",
                r#"{"options": {"name": "x", "tests": []}}"#,
            )
            .await,
        ),
        (
            "POST",
            "/v1/validate-token",
            call(
                f.addr(),
                "POST",
                "/v1/validate-token",
                None,
                token.as_bytes(),
                &[],
            )
            .await,
        ),
        (
            "POST",
            "/v1/validate-token",
            call(f.addr(), "POST", "/v1/validate-token", None, b"{}", &[]).await,
        ),
    ]
}

#[test]
fn the_validator_finds_problems() {
    let document = serde_json::json!({ "components": { "schemas": {
        "T": { "type": "object", "required": ["a"], "properties": {
            "a": { "type": "integer" }, "b": { "type": "array", "items": { "enum": ["x"] } }
        } }
    } } });
    let schema = serde_json::json!({ "$ref": "#/components/schemas/T" });
    let check = |value: Value, expected: usize| {
        let problems = validate(&document, &schema, &value, "body");
        assert_eq!(problems.len(), expected, "{value}: {problems:?}");
    };
    check(serde_json::json!({ "a": 1, "b": ["x"] }), 0);
    check(serde_json::json!({ "b": ["y"] }), 2);
    check(serde_json::json!({ "a": "1", "c": true }), 2);
    check(serde_json::json!([]), 1);
}
