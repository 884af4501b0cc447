//! The one error type of the crate: everything that can stop the server from starting.
//!
//! Once the server is listening nothing aborts it any more (accept errors are retried,
//! bad requests get a 4xx), so these are all setup failures.

use std::io;
use std::net::SocketAddr;

/// Why the system under test could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SutError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}; {hint}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
        /// What to try instead.
        hint: &'static str,
    },
    /// A field of [`Config`](crate::Config) holds a value the server cannot use.
    #[error("invalid sut config: {field}: {reason}")]
    InvalidConfig {
        /// The config field at fault.
        field: &'static str,
        /// What is wrong with it and what would be accepted.
        reason: String,
    },
    /// The server's own runtime or thread could not be started.
    #[error("cannot start the sut's runtime threads: {0}")]
    Runtime(#[source] io::Error),
    /// The snapshot store's data directory could not be opened.
    #[error("cannot open the snapshot store in {}: {source}; check that the directory is writable", dir.display())]
    Store {
        /// The data directory.
        dir: std::path::PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The self-signed certificate or the TLS configuration could not be built.
    #[error("cannot set up TLS for the sut: {0}")]
    Tls(String),
}

impl SutError {
    /// Builds a [`SutError::Bind`] with a hint matching the kind of failure.
    pub(crate) fn bind(addr: SocketAddr, source: io::Error) -> Self {
        let hint = match source.kind() {
            io::ErrorKind::AddrInUse => {
                "another process already listens there; pick another port, or port 0 for any free one"
            }
            io::ErrorKind::PermissionDenied => {
                "ports below 1024 need privileges; use a higher port, or port 0 for any free one"
            }
            io::ErrorKind::AddrNotAvailable => {
                "that address is not on this machine; use 127.0.0.1 or 0.0.0.0"
            }
            _ => "check the address, or use 127.0.0.1:0 for any free local port",
        };
        SutError::Bind { addr, source, hint }
    }
}
