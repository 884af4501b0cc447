//! What can go wrong in a call, told the way k6's cloud client tells it.

use std::collections::BTreeMap;

use hyper::StatusCode;
use stampede_api::server::ErrorBody;

use crate::config::ConfigError;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error (after the retries, for 5xx and 429). Shown as
    /// k6 shows a `ResponseError`: `(STATUS) message`, then one `topic: a, b` line per detail.
    #[error("{}", api_text(*.status, .message, .details))]
    Api {
        /// The HTTP status.
        status: u16,
        /// What went wrong and what to do, as the server said it.
        message: String,
        /// More lines by topic (`problems` of an invalid descriptor; field errors too).
        details: BTreeMap<String, Vec<String>>,
    },
    /// No answer after every attempt.
    #[error(
        "could not reach the server at {url} after {attempts} attempt{}: {last}",
        if *.attempts == 1 { "" } else { "s" }
    )]
    Network {
        /// The server's base URL.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// Why the last one failed.
        last: String,
    },
    /// A 2xx answer this client cannot read (a server of another version?).
    #[error("cannot read the server's answer to {what}: {error}")]
    Decode {
        /// The call, like `GET /v1/jobs/3`.
        what: String,
        /// What did not fit.
        error: String,
    },
    /// The settings cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

fn api_text(status: u16, message: &str, details: &BTreeMap<String, Vec<String>>) -> String {
    let mut text = format!("({status}) {message}");
    for (topic, lines) in details {
        text.push_str(&format!("\n  {topic}: {}", lines.join(", ")));
    }
    text
}

/// The error a non-2xx answer carries: k6's envelope if the body is one, else a message
/// made from the status (k6's fallbacks for 401 and 403).
pub(crate) fn api_error(status: StatusCode, body: &[u8], server: &str, path: &str) -> ClientError {
    if let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) {
        let mut details = error.details;
        for (field, problems) in error.field_errors {
            let lines = details.entry(field).or_default();
            for problem in problems {
                if !lines.contains(&problem) {
                    lines.push(problem);
                }
            }
        }
        return ClientError::Api {
            status: status.as_u16(),
            message: error.message,
            details,
        };
    }
    let message = match status {
        StatusCode::UNAUTHORIZED => format!(
            "failed to authenticate with the server at {server}: check the token (STAMPEDE_TOKEN or `stampede login`)"
        ),
        StatusCode::FORBIDDEN => format!("this token is not allowed to do that at {server}"),
        _ => {
            let url = format!("{server}{path}");
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(200).collect();
            let reason = status.canonical_reason().unwrap_or("");
            if text.is_empty() {
                format!(
                    "unexpected HTTP error from {url}: {} {reason}",
                    status.as_u16()
                )
            } else {
                format!(
                    "unexpected HTTP error from {url}: {} {reason}: {text}",
                    status.as_u16()
                )
            }
        }
    };
    ClientError::Api {
        status: status.as_u16(),
        message,
        details: BTreeMap::new(),
    }
}
