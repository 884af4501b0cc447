//! "Nothing to do" is a first-class result: deleting from an empty tree or restoring when
//! no snapshot exists is an [`Outcome::NoOp`], counted apart from successes and errors,
//! never an `Err` (kopia's `ErrNoOp`).

use serde::{Deserialize, Serialize};

/// The result of an operation that may legitimately have nothing to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome<T> {
    /// The operation did its work.
    Done(T),
    /// There was nothing to do; the text says why.
    NoOp(String),
}

impl<T> Outcome<T> {
    /// A no-op with a reason.
    pub fn noop(reason: impl Into<String>) -> Self {
        Outcome::NoOp(reason.into())
    }

    /// True for [`Outcome::NoOp`].
    pub fn is_noop(&self) -> bool {
        matches!(self, Outcome::NoOp(_))
    }

    /// The value of a [`Outcome::Done`].
    pub fn done(self) -> Option<T> {
        match self {
            Outcome::Done(v) => Some(v),
            Outcome::NoOp(_) => None,
        }
    }

    /// Maps the value of a [`Outcome::Done`].
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Done(v) => Outcome::Done(f(v)),
            Outcome::NoOp(r) => Outcome::NoOp(r),
        }
    }
}
