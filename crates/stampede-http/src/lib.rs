//! The HTTP action: what a load step calls.
//!
//! * [`HttpPlan`] — the requests of a step, checked once (URL, method, headers, body,
//!   checks, timeout, TLS settings). It is `Send + Sync` and shared by every engine thread.
//! * [`HttpAction`] — one per engine thread: owns that thread's connections (no shared pool
//!   on the hot path), keeps them alive, and turns every response or error into a
//!   [`Completion`](stampede_engine::Completion) with its failure kind.
//!
//! HTTP/1.1 uses our own minimal client (the `h1` module: one write and usually one read
//! per request, on the virtual user's own task) and gives each request a connection of its own
//! for the length of the exchange; a
//! request that holds a concurrency slot but finds every connection busy waits, and since
//! it keeps its intended start, that wait shows in `latency` and `lag`. HTTP/2 (h2c with
//! prior knowledge, or TLS with ALPN `h2`) multiplexes requests over the connections.

mod action;
mod config;
mod h1;
mod tls;

pub use action::HttpAction;
pub use config::{Checks, HttpConfigError, HttpPlan, RequestSpec};
