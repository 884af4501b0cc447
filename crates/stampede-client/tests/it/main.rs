//! The client against real servers: the job server in-process on a loopback port over an
//! SQLite file, and small hand-written TCP servers that fail on purpose.

mod config;
mod fake;
mod retries;
mod server;
