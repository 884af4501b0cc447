//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of the server, written by hand.
//!
//! By hand rather than generated (utoipa): the bodies live in `stampede-api`, which stays
//! free of server dependencies, and the document is one declarative table. Two tests keep
//! it honest: one here holds its paths and methods to the router's [`routes`](crate::routes),
//! one in `tests/it/openapi.rs` checks real responses against its schemas.

use axum::Json;
use serde_json::{Map, Value, json};
use stampede_api::job::{JobState, STATUS_SCHEMA};

pub(crate) async fn serve() -> Json<Value> {
    Json(document())
}

/// The document.
pub(crate) fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Stampede job server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Submit, watch and control Stampede jobs, and keep test runs executed elsewhere (k6 cloudapi's shapes). Every call but /healthz, /v1/login and /v1/validate-token needs `Authorization: Token SECRET` (`stampede server token create`); a token sees only its project's jobs. Errors use k6's envelope."
        },
        "security": [{ "Token": [] }],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "Token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Token SECRET` (or `Bearer SECRET`)."
                }
            },
            "parameters": parameters(),
            "responses": error_responses(),
            "schemas": schemas()
        }
    })
}

fn paths() -> Value {
    json!({
        "/healthz": { "get": {
            "operationId": "healthz",
            "summary": "Whether the server answers; needs no token.",
            "security": [],
            "responses": { "200": text("`ok`", "text/plain") }
        }},
        "/metrics": { "get": operation(
            "metrics",
            "The token's project's jobs on this server by state (`stampede_jobs{project, state}`), and the server's HTTP request counts and durations, for Prometheus.",
            json!([]),
            json!({ "200": text("The OpenMetrics text format.", "application/openmetrics-text") }),
            &[],
        )},
        "/v1/version": { "get": operation(
            "version",
            "The server's version and id.",
            json!([]),
            json!({ "200": body("The version.", "VersionInfo") }),
            &[],
        )},
        "/v1/openapi.json": { "get": operation(
            "openapi",
            "This document.",
            json!([]),
            json!({ "200": { "description": "An OpenAPI 3.1 document.",
                "content": { "application/json": { "schema": { "type": "object" } } } } }),
            &[],
        )},
        "/v1/jobs": {
            "post": with_descriptor(operation(
                "submitJob",
                "Submit a job descriptor (YAML or JSON, native or ConTest); it starts at once, or waits queued while the server runs as many jobs as its policy allows (403 when the policy does not let the project run it, 429 when the queue is full). Its requestor is the token's user (a login token) or the token's name; `?requestor=` is refused with 400.",
                json!([param("IdempotencyKey")]),
                json!({
                    "201": body("The job was created.", "JobCreated"),
                    "200": body("The Idempotency-Key was seen before: the earlier job.", "JobCreated")
                }),
                &[400, 403, 413, 422, 429],
            )),
            "get": operation(
                "listJobs",
                "The project's jobs, by id, a page at a time.",
                json!([
                    query("state", "Comma-separated job states; a job in any of them matches.", json!({ "type": "string" })),
                    query("tag", "Comma-separated tags; a job with all of them matches.", json!({ "type": "string" })),
                    query("after", "The last job id of the previous page (its `next_after`).", json!({ "type": "integer", "minimum": 0 })),
                    param("Limit")
                ]),
                json!({ "200": body("A page of jobs.", "JobList") }),
                &[400],
            )
        },
        "/v1/jobs/{id}": { "get": operation(
            "jobStatus",
            "The job's status, rebuilt from its events.",
            json!([param("JobId")]),
            json!({ "200": body("The status.", "JobStatus") }),
            &[400, 404],
        )},
        "/v1/jobs/{id}/events": { "get": operation(
            "jobEvents",
            "The job's events, by sequence number, a page at a time.",
            json!([
                param("JobId"),
                query("after", "The last sequence number already read (the previous page's `next_after`).", json!({ "type": "integer", "minimum": 0 })),
                param("Limit")
            ]),
            json!({ "200": body("A page of events.", "EventPage") }),
            &[400, 404],
        )},
        "/v1/jobs/{id}/events/stream": { "get": operation(
            "streamJobEvents",
            "The job's events live, as server-sent events: `id` is the sequence number, `event` the event's name, `data` an ApiEvent. The stream ends after a final state event, or once the job stays paused; keep-alive comments are sent while it is idle.",
            json!([
                param("JobId"),
                query("after", "Start after this sequence number (a first connection; `Last-Event-ID` takes precedence).", json!({ "type": "integer", "minimum": 0 })),
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "description": "The id of the last event received: a reconnecting client gets exactly the events after it.",
                    "schema": { "type": "string", "pattern": "^[0-9]+$" }
                }
            ]),
            json!({
                "200": {
                    "description": "A stream of events; each `data` is an ApiEvent (#/components/schemas/ApiEvent).",
                    "content": { "text/event-stream": { "schema": { "type": "string" } } }
                },
                "204": { "description": "The job ended or is paused and has no events after the given one: nothing more will come (an EventSource stops reconnecting)." }
            }),
            &[400, 404],
        )},
        "/v1/jobs/{id}/cancel": { "post": control(
            "cancelJob",
            "Cancel a job this server runs; it records `cancelling`, then `cancelled`.",
        )},
        "/v1/jobs/{id}/pause": { "post": control(
            "pauseJob",
            "Pause a job this server runs; it records `paused` with where it was.",
        )},
        "/v1/jobs/{id}/resume": { "post": control(
            "resumeJob",
            "Resume a paused job from where it paused.",
        )},
        "/v1/jobs/{id}/retry": { "post": operation(
            "retryJob",
            "Submit a completed, failed, cancelled or paused job again, as a new job with the same descriptor, name, tags and project, requested by this token's user or name (the old job stays as it is).",
            json!([param("JobId"), param("IdempotencyKey")]),
            json!({
                "201": body("The new job was created.", "JobCreated"),
                "200": body("The Idempotency-Key was seen before: the earlier job.", "JobCreated")
            }),
            &[400, 403, 404, 409, 429],
        )},
        "/v1/tests": { "post": with_json(operation(
            "createTestRun",
            "Create a test run executed elsewhere (`stampede run --out cloud`, k6's CreateTestRun): a job of this store, tagged `_testrun`.",
            json!([]),
            json!({ "201": body("The run was created; `reference_id` names it.", "TestRunCreated") }),
            &[400, 413],
        ), "CreateTestRun")},
        "/v1/tests/{ref}": {
            "get": operation(
                "getTestRun",
                "The run, with its snapshots merged per step and target into the summary's shape.",
                json!([param("Ref")]),
                json!({ "200": body("The run.", "TestRun") }),
                &[400, 404, 409],
            ),
            "post": with_json(operation(
                "finishTestRun",
                "Finish the run (k6's TestFinished) with a final run status, the result status and per-threshold results.",
                json!([param("Ref")]),
                json!({ "200": { "description": "Finished." } }),
                &[400, 404, 409, 413],
            ), "TestFinished")
        },
        "/v1/tests/{ref}/metrics": { "post": with_json(operation(
            "pushMetrics",
            "Interval snapshots of the run, in order; `first` is how many were sent before, so a retried push stores nothing twice. The answer says whether the run was asked to stop.",
            json!([param("Ref")]),
            json!({ "200": body("Stored.", "MetricsAccepted") }),
            &[400, 404, 409, 413],
        ), "MetricsPush")},
        "/v1/tests/{ref}/stop": { "post": operation(
            "stopTestRun",
            "Stop the run: a run executed elsewhere is told at its next push; a job this server runs is cancelled.",
            json!([param("Ref")]),
            json!({ "202": { "description": "Asked for; watch the run's progress." } }),
            &[400, 404, 409],
        )},
        "/v1/test-progress/{ref}": { "get": operation(
            "testProgress",
            "k6's progress of a test run or of a job: run status (-2..10), result status (0 passed, 1 failed) and the share done.",
            json!([param("Ref")]),
            json!({ "200": body("The progress.", "TestProgress") }),
            &[400, 404],
        )},
        "/v1/validate-options": { "post": with_json(operation(
            "validateOptions",
            "Check a job descriptor without submitting it.",
            json!([]),
            json!({ "200": body("It is valid.", "OptionsValid") }),
            &[400, 403, 413, 422],
        ), "ValidateOptions")},
        "/v1/login": { "post": {
            "operationId": "login",
            "summary": "A user's name (`email`, as k6 calls it) and password for a new token of their project, which expires after the server's login token lifetime (default 30 days); needs no token. Limited per client address and per user name, with a growing wait after failures, and by how many passwords the server checks at once: past any of these, 429 with `Retry-After`.",
            "security": [],
            "requestBody": json_request("Login"),
            "responses": {
                "200": body("A new token's secret, shown once.", "LoggedIn"),
                "400": { "$ref": "#/components/responses/BadRequest" },
                "401": { "$ref": "#/components/responses/Unauthorized" },
                "429": { "$ref": "#/components/responses/TooMany" }
            }
        }},
        "/v1/validate-token": { "post": {
            "operationId": "validateToken",
            "summary": "Whether a token is valid, and whose it is; needs no token. An unknown, revoked or expired token is just `invalid`.",
            "security": [],
            "requestBody": json_request("ValidateToken"),
            "responses": {
                "200": body("The answer.", "TokenValidity"),
                "400": { "$ref": "#/components/responses/BadRequest" }
            }
        }}
    })
}

fn json_request(schema: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn with_json(mut operation: Value, schema: &str) -> Value {
    operation["requestBody"] = json_request(schema);
    operation
}

/// A token-protected operation: `ok` plus the given error statuses, and the ones any call
/// may get (401 without a valid token, 500 when the store fails, 503 when it is too slow).
fn operation(id: &str, summary: &str, parameters: Value, ok: Value, errors: &[u16]) -> Value {
    let mut responses = match ok {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    for code in errors.iter().chain(&[401, 500, 503]) {
        let name = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            429 => "TooMany",
            409 => "Conflict",
            413 => "TooLarge",
            422 => "Invalid",
            500 => "Internal",
            _ => "Unavailable",
        };
        responses.insert(
            code.to_string(),
            json!({ "$ref": format!("#/components/responses/{name}") }),
        );
    }
    json!({
        "operationId": id,
        "summary": summary,
        "parameters": parameters,
        "responses": responses
    })
}

/// A job control call: 202, or 409 when the job is not in a state that allows it.
fn control(id: &str, summary: &str) -> Value {
    operation(
        id,
        summary,
        json!([param("JobId")]),
        json!({ "202": { "description": "Asked for; watch the job's state." } }),
        &[400, 404, 409],
    )
}

fn with_descriptor(mut operation: Value) -> Value {
    operation["requestBody"] = json!({
        "required": true,
        "description": "A job descriptor, native or ConTest, at most 1 MiB.",
        "content": {
            "application/yaml": { "schema": { "type": "string" } },
            "application/json": { "schema": { "type": "object" } },
            "text/plain": { "schema": { "type": "string" } }
        }
    });
    operation
}

fn param(name: &str) -> Value {
    json!({ "$ref": format!("#/components/parameters/{name}") })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "description": description, "schema": schema })
}

fn body(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn text(description: &str, media: &str) -> Value {
    json!({ "description": description, "content": { media: { "schema": { "type": "string" } } } })
}

fn parameters() -> Value {
    json!({
        "JobId": {
            "name": "id", "in": "path", "required": true,
            "description": "The job's id.",
            "schema": { "type": "integer", "minimum": 1 }
        },
        "Ref": {
            "name": "ref", "in": "path", "required": true,
            "description": "The test run's reference id (its job id).",
            "schema": { "type": "integer", "minimum": 1 }
        },
        "Limit": {
            "name": "limit", "in": "query",
            "description": "At most this many (default and most 1000).",
            "schema": { "type": "integer", "minimum": 1, "maximum": 1000 }
        },
        "IdempotencyKey": {
            "name": "Idempotency-Key", "in": "header",
            "description": "Makes a retried request safe: a second request with the same key (in the project) creates nothing and answers the first job. At most 255 bytes (400 above); the same key with another descriptor is refused with 422.",
            "schema": { "type": "string", "maxLength": 255 }
        }
    })
}

fn error_responses() -> Value {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
        })
    };
    json!({
        "BadRequest": error("The request is wrong: the message says what to fix."),
        "Unauthorized": error("No token, or not a valid one."),
        "Forbidden": error("The server's policy does not let this token's project run the job: `details.refused` names each need (processes, a file, a host, a size over a limit), where it is in the descriptor, and the grant that allows it."),
        "NotFound": error("No such job for this token's project."),
        "Conflict": error("The job's state does not allow this."),
        "TooLarge": error("The body is larger than 1 MiB."),
        "Invalid": error("The descriptor parses but is invalid; `details.problems` lists every problem."),
        "Internal": error("The event store failed."),
        "Unavailable": error("The request took too long; try again."),
        "TooMany": {
            "description": "Too many attempts, or the server is busy: wait as long as `Retry-After` says (seconds) and try again.",
            "headers": { "Retry-After": { "schema": { "type": "integer", "minimum": 1 } } },
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
        }
    })
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn integer() -> Value {
    json!({ "type": "integer" })
}

fn strings() -> Value {
    json!({ "type": "array", "items": { "type": "string" } })
}

fn array_of(schema: &str) -> Value {
    json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{schema}") } })
}

fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

fn schemas() -> Value {
    let mut all = job_schemas();
    if let (Value::Object(all), Value::Object(more)) = (&mut all, test_run_schemas()) {
        all.extend(more);
    }
    all
}

fn job_schemas() -> Value {
    let states: Vec<&str> = JobState::ALL.iter().map(|s| s.name()).collect();
    let state = json!({ "$ref": "#/components/schemas/JobState" });
    let problems = json!({ "type": "object", "additionalProperties": strings() });
    json!({
        "Error": object(&["error"], json!({
            "error": object(&["code", "message"], json!({
                "code": integer(),
                "message": string(),
                "details": problems,
                "field_errors": problems
            }))
        })),
        "JobState": { "type": "string", "enum": states },
        "VersionInfo": object(&["version", "api", "server_id"], json!({
            "version": string(), "api": string(), "server_id": string()
        })),
        "JobCreated": object(&["job_id", "name", "created", "status_url"], json!({
            "job_id": integer(), "name": string(), "created": { "type": "boolean" },
            "status_url": string()
        })),
        "JobEntry": object(
            &["job_id", "name", "state", "tags", "requestor", "server_id", "requested_at_us"],
            json!({
                "job_id": integer(), "name": string(), "state": state, "tags": strings(),
                "requestor": string(), "server_id": string(), "requested_at_us": integer()
            }),
        ),
        "JobList": object(&["jobs"], json!({
            "jobs": array_of("JobEntry"), "next_after": integer()
        })),
        "ApiEvent": object(&["seq", "name", "at_us"], json!({
            "seq": integer(), "run": integer(), "test": string(), "attempt": integer(),
            "step": string(), "target": string(), "name": string(), "payload": {},
            "at_us": integer()
        })),
        "EventPage": object(&["events"], json!({
            "events": array_of("ApiEvent"), "next_after": integer()
        })),
        "JobStatus": object(&["schema", "job_id", "name", "state", "runs"], json!({
            "schema": { "const": STATUS_SCHEMA }, "job_id": integer(), "name": string(),
            "state": state, "error": string(), "started_at_us": integer(),
            "queued": { "type": "integer", "minimum": 1, "description": "Waiting for a slot on its server, at this place in the queue." },
            "ended_at_us": integer(), "runs": array_of("RunStatus"),
            "final_reports": array_of("Report")
        })),
        "RunStatus": object(&["run", "started_at_us", "tests"], json!({
            "run": integer(), "started_at_us": integer(), "tests": array_of("TestStatus"),
            "reports": array_of("Report")
        })),
        "TestStatus": object(&["name", "attempt", "targets", "steps"], json!({
            "name": string(), "attempt": integer(), "acquire_error": string(),
            "targets": array_of("TargetStatus"), "steps": array_of("StepStatus")
        })),
        "StepStatus": object(&["label", "targets"], json!({
            "label": string(), "events": array_of("StatusEvent"),
            "targets": array_of("TargetStatus")
        })),
        "TargetStatus": object(&["target"], json!({
            "target": string(), "step": string(), "in_at_us": integer(),
            "out_at_us": integer(), "error": string(), "events": array_of("StatusEvent")
        })),
        "StatusEvent": object(&["seq", "name", "at_us"], json!({
            "seq": integer(), "name": string(), "at_us": integer(), "payload": {}
        })),
        "Report": object(&["reporter", "success", "data"], json!({
            "reporter": string(), "success": { "type": "boolean" },
            "thresholds": { "type": "boolean" }, "data": {}
        }))
    })
}

/// The bodies of test runs, validate-options and validate-token.
fn test_run_schemas() -> Value {
    let counts = json!({ "type": "object", "additionalProperties": integer() });
    let run = json!({ "$ref": "#/components/schemas/RunStatusCode" });
    let result = json!({ "$ref": "#/components/schemas/ResultStatusCode" });
    let verdicts = json!({ "type": "object", "additionalProperties": {
        "type": "object", "additionalProperties": { "type": "boolean" } } });
    let mut schemas = json!({
        "RunStatusCode": { "type": "integer", "minimum": -2, "maximum": 10,
            "description": "k6's run status: -2 created, -1 validated, 0 queued, 1 initializing, 2 running, 3 finished, 4 timed out, 5 aborted by user, 6 aborted by system, 7 aborted by script error, 8 aborted by threshold, 9 aborted by limit, 10 archived." },
        "ResultStatusCode": { "type": "integer", "enum": [0, 1],
            "description": "0 passed, 1 failed." },
        "CreateTestRun": object(&["name"], json!({
            "name": string(), "vus": integer(),
            "thresholds": { "type": "object", "additionalProperties": strings() },
            "duration": { "type": "integer", "minimum": -1 }
        })),
        "TestRunCreated": object(&["reference_id", "results_url", "logs"], json!({
            "reference_id": string(), "results_url": string(),
            "logs": { "type": "array", "items": object(&["level", "message"], json!({
                "level": string(), "message": string()
            })) }
        })),
        "WireSnapshot": object(&["ok", "started", "interrupted", "response", "service", "lag"], json!({
            "ok": integer(), "started": integer(), "interrupted": integer(),
            "failures": counts.clone(), "dropped": counts,
            "response": string(), "service": string(), "lag": string()
        })),
        "StepSnapshot": object(&["step", "target", "elapsed_s", "snapshot"], json!({
            "step": string(), "target": string(), "elapsed_s": { "type": "number" },
            "snapshot": { "$ref": "#/components/schemas/WireSnapshot" }
        })),
        "MetricsPush": object(&["first", "snapshots"], json!({
            "first": integer(), "snapshots": array_of("StepSnapshot")
        })),
        "MetricsAccepted": object(&["stored", "stop"], json!({
            "stored": integer(), "stop": { "type": "boolean" }
        })),
        "TestFinished": object(&["result_status", "run_status"], json!({
            "result_status": result, "run_status": run, "thresholds": verdicts
        })),
        "TestProgress": object(&["run_status", "result_status", "progress"], json!({
            "run_status": run, "result_status": result,
            "progress": { "type": "number", "minimum": 0, "maximum": 1 }
        }))
    });
    let more = json!({
        "TestRun": object(
            &["reference_id", "name", "run_status", "result_status", "created", "thresholds", "snapshots", "steps"],
            json!({
                "reference_id": string(), "name": string(), "run_status": run,
                "result_status": result,
                "created": { "$ref": "#/components/schemas/CreateTestRun" },
                "thresholds": verdicts, "snapshots": integer(),
                "steps": { "type": "array", "items": object(&["step", "target", "summary"], json!({
                    "step": string(), "target": string(),
                    "summary": { "type": "object", "description": "A `stampede.summary/v1` document." }
                })) }
            }),
        ),
        "ValidateOptions": object(&["options"], json!({ "options": { "type": "object" } })),
        "OptionsValid": object(&["name", "tests"], json!({ "name": string(), "tests": integer() })),
        "ValidateToken": object(&["token"], json!({ "token": string() })),
        "Login": object(&["email", "password"], json!({ "email": string(), "password": string() })),
        "LoggedIn": object(&["token"], json!({ "token": string() })),
        "TokenValidity": object(&["is_valid", "message"], json!({
            "is_valid": { "type": "boolean" }, "message": string(),
            "token-info": object(&["name", "project"], json!({ "name": string(), "project": string() }))
        }))
    });
    if let (Value::Object(schemas), Value::Object(more)) = (&mut schemas, more) {
        schemas.extend(more);
    }
    schemas
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every route is documented with its method, and nothing else is: the router is built
    /// from [`crate::routes`], so a route added there without a document entry fails here.
    #[test]
    fn the_document_describes_every_route_and_only_those() {
        let document = document();
        let routed: BTreeSet<(String, String)> = crate::routes()
            .iter()
            .map(|r| (r.path.to_string(), r.method.as_str().to_lowercase()))
            .collect();
        let documented: BTreeSet<(String, String)> = document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| (path.clone(), method.clone()))
            })
            .collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "routed but not documented: {undocumented:?}; documented but not routed: {unrouted:?}"
        );
        // Only the routes without a token say so.
        for route in crate::routes() {
            let operation = &document["paths"][route.path][route.method.as_str().to_lowercase()];
            let open = operation["security"] == json!([]);
            assert_eq!(open, !route.token, "{} {}", route.method, route.path);
            // Every call with a token may be refused one; of the open ones only login is.
            let refusable = route.token || route.path == "/v1/login";
            assert_eq!(
                operation["responses"].get("401").is_some(),
                refusable,
                "{} {}",
                route.method,
                route.path
            );
        }
    }

    /// Every `$ref` points at something the document defines.
    #[test]
    fn every_reference_resolves() {
        fn walk(value: &Value, document: &Value, seen: &mut usize) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        let pointer = target.strip_prefix('#').expect("a local reference");
                        assert!(document.pointer(pointer).is_some(), "{target} dangles");
                        *seen += 1;
                    }
                    map.values().for_each(|v| walk(v, document, seen));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, document, seen)),
                _ => {}
            }
        }
        let document = document();
        let mut seen = 0;
        walk(&document, &document, &mut seen);
        assert!(seen > 50, "only {seen} references");
    }
}
