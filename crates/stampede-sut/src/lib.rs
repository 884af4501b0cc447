//! `stampede-sut`: the built-in system under test, a fast HTTP server that load tests,
//! benchmarks and `stampede sut` point the load generator at.
//!
//! [`Server::start`] binds (port 0 allowed) and serves on its own runtime threads;
//! [`run_blocking`] does the same for a CLI until a cancellation token fires. One port
//! speaks HTTP/1.1 with keep-alive and HTTP/2 with prior knowledge (h2c), or both over
//! TLS with a self-signed certificate when [`Config::tls`] is set.
//!
//! | route | answer |
//! |---|---|
//! | `/` | 200 `ok` |
//! | `/delay/{ms}` | 200 `ok` after `ms` milliseconds (at most 3,600,000) |
//! | `/status/{code}` | that status (200..=999), empty body |
//! | `/bytes/{n}` | 200 with `n` bytes (at most 64 MiB) |
//! | `/echo` | 200 with the request body and content-type |
//! | `/snap/...` | the snapshot store, when started with [`Server::start_with_store`] (see [`SnapConfig`]) |
//! | anything else | 404 `not found`; a bad parameter gives 400 with a one-line reason |
//!
//! With [`Config::stall_every`] set, the whole server holds every answer during periodic
//! windows, to show how a load generator copes with a target that freezes.
//!
//! ## The workspace service (`/ws/`)
//!
//! A miniature of coder's workspace API, the target of scale tests such as the autostart
//! "thundering herd": in memory, configured by [`Config::workspaces`] ([`WorkspaceConfig`]:
//! provisioner pool P, build time B, failure rate, seed). Builds wait in one FIFO queue;
//! at most P run at once and each takes B, so N builds queued together finish in waves of
//! P every B. A build goes `pending` -> `running` -> `succeeded` (or `failed`). Bodies are
//! JSON; every error is `{"error": "<what is wrong and what to do>"}` with a 4xx status.
//! Calls marked "token" need `Authorization: Bearer <token>` (or `Session-Token: <token>`)
//! from `POST /ws/login`, else 401. Workspace names are global; another user's workspace
//! answers 404 like a missing one. Stall windows do not apply to `/ws/`.
//!
//! | method and path | token | body | answer |
//! |---|---|---|---|
//! | `POST /ws/users` | no | `{"name", "password"}` | 201 `{"name"}`; 409 if taken |
//! | `POST /ws/login` | no | `{"name", "password"}` | 200 `{"token"}`; 401 if wrong |
//! | `POST /ws/workspaces` | yes | `{"name"}` | 201 workspace; queues start build 1 |
//! | `GET /ws/workspaces/{name}` | yes | | 200 workspace |
//! | `POST /ws/workspaces/{name}/stop` | yes | | 201 build; queues a `stop` build |
//! | `POST /ws/workspaces/{name}/start` | yes | | 201 build; queues a `start` build |
//! | `DELETE /ws/workspaces/{name}` | yes | | 201 build; a `delete` build, then the workspace is gone |
//! | `PUT /ws/workspaces/{name}/autostart` | yes | `{"schedule": S}` | 200 workspace |
//! | `GET /ws/builds/watch` | yes | | 200 `text/event-stream` of every build change |
//! | `POST /ws/admin/close-streams` | no | | 200 `{"closed": n}`: ends every open watch stream |
//!
//! * A workspace is `{"name", "owner", "latest_build", "autostart"}`; a build is
//!   `{"workspace_name", "build_number", "transition", "status", "reason"}` with
//!   transition `start` / `stop` / `delete` and reason `initiator` / `autostart`. A new
//!   build while the latest is `pending` or `running` gets 409.
//! * A schedule `S` is coder's daily `"CRON_TZ=UTC <minute> <hour> * * *"`, one RFC 3339
//!   instant in UTC (`"2026-01-02T15:04:05.250Z"`, honoured to the millisecond, fires once
//!   then reads back as `null`; a past instant is a 400), or `null` to clear. When it
//!   fires, a workspace whose latest build is a succeeded `stop` gets a `start` build with
//!   reason `autostart`; any other workspace is left alone (as coder skips it).
//! * The watch stream opens with an SSE comment, then sends one
//!   `event: build` / `data: {"workspace_name", "build_number", "transition", "status"}`
//!   per change, in the order of the changes, to every watcher. It ends cleanly (the
//!   response completes) on `POST /ws/admin/close-streams` and when the server shuts down,
//!   which a scale runner reads as "update stream closed".
//!
//! ```no_run
//! use std::time::Duration;
//! use stampede_sut::{Config, Server};
//!
//! let server = Server::start(Config {
//!     stall_every: Some(Duration::from_secs(10)),
//!     stall_for: Duration::from_secs(1),
//!     ..Config::default()
//! })?;
//! println!("listening on {}", server.url());
//! server.shutdown();
//! # Ok::<(), stampede_sut::SutError>(())
//! ```

mod body;
mod config;
mod error;
mod routes;
mod server;
mod snap;
mod stall;
mod tls;
mod workspace;

pub use config::Config;
pub use error::SutError;
pub use server::{Server, run_blocking, run_blocking_with_store};
pub use snap::{SnapBugs, SnapConfig};
pub use workspace::WorkspaceConfig;
