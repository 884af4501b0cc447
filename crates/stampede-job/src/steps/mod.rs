//! The job crate's own small steps, each in its file: its config, documented field by
//! field (the JSON Schema comes from these structs), and how it runs on one target. The
//! binary registers them with the others ([`Registry`](crate::Registry)); the load, scale
//! and robustness steps live in crates of their own.

mod echo;
mod exec;
mod sleep;
mod wait_port;

pub use echo::{Echo, EchoConfig, RandEcho};
pub use exec::{Exec, ExecConfig};
pub use sleep::{Sleep, SleepConfig};
pub use wait_port::{WaitPort, WaitPortConfig};
