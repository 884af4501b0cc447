//! Store URLs: which backend a URL names, and how to show a URL without its password.
//!
//! Parsing is separate from connecting so that a typo is reported before any I/O, with the
//! forms this build accepts.

use std::path::PathBuf;

use crate::error::StoreError;

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// `memory:`: in this process only.
    Memory,
    /// `sqlite://PATH` (or `sqlite:PATH`): a file, created if missing. `sqlite:///abs/path`
    /// is absolute, `sqlite://rel/path` relative to the working directory. The path is used
    /// as written: no percent-decoding, no query parameters.
    Sqlite(PathBuf),
    /// `postgres://...` or `postgresql://...`, passed to the PostgreSQL driver as is.
    Postgres,
}

impl Location {
    /// Which backend `url` names.
    pub(crate) fn parse(url: &str) -> Result<Self, StoreError> {
        let bad = |problem: &str| StoreError::Url {
            url: redact(url),
            problem: problem.to_owned(),
        };
        if url == "memory:" || url == "memory://" {
            return Ok(Self::Memory);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres);
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(bad("the SQLite URL has no file path"));
            }
            if path == ":memory:" {
                return Err(bad(
                    "an in-memory SQLite database would vanish between connections; use `memory:`",
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        match url.split_once(':') {
            Some((scheme, _)) => Err(bad(&format!("the scheme `{scheme}` is not supported"))),
            None => Err(bad("it has no scheme")),
        }
    }
}

/// `url` with the password of its user info (if any) replaced by `***`, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expected: Option<Location>) {
        let parsed = Location::parse(url).ok();
        assert_eq!(parsed, expected, "{url}");
    }

    #[test]
    fn urls_name_backends() {
        check("memory:", Some(Location::Memory));
        check(
            "sqlite:///var/lib/stampede.db",
            Some(Location::Sqlite("/var/lib/stampede.db".into())),
        );
        check(
            "sqlite://runs/stampede.db",
            Some(Location::Sqlite("runs/stampede.db".into())),
        );
        check(
            "sqlite:stampede.db",
            Some(Location::Sqlite("stampede.db".into())),
        );
        check(
            "postgres://postgres@127.0.0.1:5432/test",
            Some(Location::Postgres),
        );
        check("postgresql://u:p@h/db", Some(Location::Postgres));
        check("sqlite://", None);
        check("sqlite::memory:", None);
        check("mysql://root@localhost/db", None);
        check("stampede.db", None);
    }

    #[test]
    fn errors_name_the_accepted_forms() {
        let message = Location::parse("mysql://root:hunter2@localhost/db")
            .unwrap_err()
            .to_string();
        assert!(message.contains("`mysql` is not supported"), "{message}");
        assert!(message.contains("sqlite://PATH"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgres://h/db?user=a@b"),
            "postgres://h/db?user=a@b"
        );
        assert_eq!(redact("memory:"), "memory:");
    }
}
