//! Why a store operation failed, as an enum callers can match.
//!
//! Driver errors are kept as boxed sources so that the database library does not leak into
//! the public API; the messages say what was wrong and what to do about it.

use crate::types::JobId;

/// A boxed underlying error (a database driver's, an I/O error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store URL is not one this build understands.
    #[error(
        "unsupported store URL `{url}`: {problem}; write `memory:`, `sqlite://PATH` (a file, \
         created if missing) or `postgres://USER@HOST:PORT/DATABASE`"
    )]
    Url {
        /// The URL as given (passwords hidden).
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The database could not be opened or reached.
    #[error("cannot open the event store at `{url}`: {source}; {hint}")]
    Connect {
        /// The URL as given (passwords hidden).
        url: String,
        /// What to check.
        hint: &'static str,
        /// The driver's error.
        source: BoxError,
    },
    /// The database's schema could not be brought up to date.
    #[error(
        "cannot prepare the event store schema at `{url}`: {source}; the database may have been \
         written by a newer Stampede or edited by hand: point the store at a fresh database"
    )]
    Migrate {
        /// The URL as given (passwords hidden).
        url: String,
        /// The migrator's error.
        source: BoxError,
    },
    /// A statement failed; the operation changed nothing.
    #[error(
        "the event store failed to {operation}: {source}; nothing was changed, retry once the database is healthy"
    )]
    Query {
        /// What the store was doing ("append events", "list jobs").
        operation: &'static str,
        /// The driver's error.
        source: BoxError,
    },
    /// A job id that the store never assigned.
    #[error("job {0} does not exist in this event store; use an id returned by create_job")]
    NotFound(JobId),
    /// A text value contains a NUL character, which PostgreSQL cannot store; every backend
    /// refuses it so that they all behave alike.
    #[error(
        "{field} contains a NUL character, which the event store cannot keep; escape it (JSON writes it as \\u0000)"
    )]
    NulInText {
        /// Which value ("job descriptor", "event payload").
        field: &'static str,
    },
    /// The runtime that does the store's I/O (see [`on_runtime`](crate::on_runtime)) has
    /// shut down or the operation panicked there; the operation may or may not have run.
    #[error("the event store's runtime stopped before the operation finished: {0}")]
    Runtime(String),
    /// A new token clashes with a stored one; nothing was written.
    #[error("cannot create the API token `{name}`: {clash}")]
    DuplicateToken {
        /// The new token's name.
        name: String,
        /// What it clashes with.
        clash: TokenClash,
    },
    /// A user of that name exists; nothing was written.
    #[error("cannot create the user `{name}`: a user of that name exists")]
    DuplicateUser {
        /// The name.
        name: String,
    },
}

/// What a new token clashes with (see [`StoreError::DuplicateToken`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenClash {
    /// A token of the same name that is not revoked.
    Name,
    /// A token, revoked or not, with the same secret hash.
    Hash,
}

impl std::fmt::Display for TokenClash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Name => {
                "a token of that name exists and is not revoked; choose another name or revoke \
                 that token first"
            }
            Self::Hash => {
                "a token with the same secret (hash) already exists; create it with a new secret"
            }
        })
    }
}

impl StoreError {
    /// A closure that wraps a driver error as [`StoreError::Query`] for `operation`.
    pub(crate) fn query<E>(operation: &'static str) -> impl Fn(E) -> Self + Copy
    where
        E: Into<BoxError>,
    {
        move |source| Self::Query {
            operation,
            source: source.into(),
        }
    }
}
