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

pub use config::Config;
pub use error::SutError;
pub use server::{Server, run_blocking, run_blocking_with_store};
pub use snap::{SnapBugs, SnapConfig};
