//! Workspace build updates as the scale step reads them: coder's `WorkspaceBuildUpdate`,
//! decoded from a "watch all builds" server-sent-event stream (the one `stampede sut`
//! serves at `GET /ws/builds/watch`), and coder's `waitForBuild` over a runner's
//! [`Updates`].
//!
//! Nothing here speaks HTTP: [`build_updates`] takes the response body as a stream of
//! byte chunks, so any client fits, and its output goes straight into a [`Dispatcher`]
//! keyed by [`BuildUpdate::workspace_name`]:
//!
//! ```
//! use futures_util::stream;
//! use stampede_scale::{BuildUpdate, Ctx, Dispatcher, build_updates};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let body = stream::iter([Ok::<_, std::io::Error>(
//!     "event: build\ndata: {\"workspace_name\":\"scaletest-0\",\"build_number\":1,\"transition\":\"start\",\"status\":\"pending\"}\n\n",
//! )]);
//! let dispatcher = Dispatcher::new(["scaletest-0".to_owned()]);
//! let mut updates = dispatcher.subscribe(&"scaletest-0".to_owned()).unwrap();
//! dispatcher.start(Ctx::default(), build_updates(body), BuildUpdate::key).unwrap();
//! assert_eq!(updates.next().await.unwrap().build_number, 1);
//! assert!(updates.next().await.is_err()); // the body ended: "update stream closed"
//! # }
//! ```
//!
//! [`Dispatcher`]: crate::Dispatcher

use std::fmt;

use futures_util::Stream;
use serde::Deserialize;

use crate::ctx::Ctx;
use crate::dispatcher::{Updates, WaitError};
use crate::source::{Format, decoded};

/// What a build does to its workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Transition {
    /// Start the workspace.
    Start,
    /// Stop it.
    Stop,
    /// Delete it.
    Delete,
}

/// Where a build's job is (coder's provisioner job statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum BuildStatus {
    /// Queued for a provisioner.
    Pending,
    /// On a provisioner.
    Running,
    /// Done, the workspace is in its new state.
    Succeeded,
    /// Done, it did not work.
    Failed,
    /// Being canceled.
    Canceling,
    /// Canceled before it finished.
    Canceled,
}

/// One status change of one workspace build.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BuildUpdate {
    /// The workspace, and the key a [`Dispatcher`](crate::Dispatcher) routes by.
    pub workspace_name: String,
    /// The build's number within its workspace, from 1.
    pub build_number: u64,
    /// What the build does.
    pub transition: Transition,
    /// Its new status.
    pub status: BuildStatus,
}

impl BuildUpdate {
    /// The dispatcher key: the workspace name.
    pub fn key(&self) -> String {
        self.workspace_name.clone()
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transition::Start => "start",
            Transition::Stop => "stop",
            Transition::Delete => "delete",
        })
    }
}

impl fmt::Display for BuildStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuildStatus::Pending => "pending",
            BuildStatus::Running => "running",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
            BuildStatus::Canceling => "canceling",
            BuildStatus::Canceled => "canceled",
        })
    }
}

/// Decodes a server-sent-event body into build updates: events named `build` (or
/// unnamed) whose `data` is a [`BuildUpdate`]; comments and other events are skipped.
///
/// The stream ends when the body ends, when reading it fails, or at an event it cannot
/// decode: in every case the runners waiting on a dispatcher then see "update stream
/// closed", as coder's do when its watch fails.
pub fn build_updates<S, B, E>(body: S) -> impl Stream<Item = BuildUpdate> + Send + 'static
where
    S: Stream<Item = Result<B, E>> + Send + 'static,
    B: AsRef<[u8]>,
{
    let format = Format::Sse {
        event: Some("build".to_owned()),
    };
    decoded(body, format)
}

/// Why waiting for a build did not end in success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildWaitError {
    /// An update of another transition came first (coder's wording).
    #[error("unexpected transition: expected {expected}, got {got} (build_number={build_number})")]
    UnexpectedTransition {
        /// The transition waited for.
        expected: Transition,
        /// The one that came.
        got: Transition,
        /// Its build.
        build_number: u64,
    },
    /// The build ended `failed` or `canceled`.
    #[error("build {build_number} ({transition}) {status}")]
    Ended {
        /// Its build.
        build_number: u64,
        /// What it did.
        transition: Transition,
        /// How it ended.
        status: BuildStatus,
    },
    /// The stream closed or the context was done.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// Coder's `waitForBuild`: reads `updates` until a `transition` build succeeds. Pending,
/// running and canceling updates are skipped; another transition, a failed or canceled
/// build, the end of the stream or `ctx` being done is an error.
pub async fn wait_for_build(
    updates: &mut Updates<BuildUpdate>,
    ctx: &Ctx,
    transition: Transition,
) -> Result<BuildUpdate, BuildWaitError> {
    loop {
        let update = updates.next_within(ctx).await?;
        if update.transition != transition {
            return Err(BuildWaitError::UnexpectedTransition {
                expected: transition,
                got: update.transition,
                build_number: update.build_number,
            });
        }
        match update.status {
            BuildStatus::Succeeded => return Ok(update),
            BuildStatus::Failed | BuildStatus::Canceled => {
                return Err(BuildWaitError::Ended {
                    build_number: update.build_number,
                    transition: update.transition,
                    status: update.status,
                });
            }
            BuildStatus::Pending | BuildStatus::Running | BuildStatus::Canceling => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{StreamExt, stream};

    use super::*;

    fn update(name: &str, number: u64, transition: Transition, status: BuildStatus) -> BuildUpdate {
        BuildUpdate {
            workspace_name: name.to_owned(),
            build_number: number,
            transition,
            status,
        }
    }

    fn data(name: &str, number: u64, transition: &str, status: &str) -> String {
        format!(
            r#"{{"workspace_name":"{name}","build_number":{number},"transition":"{transition}","status":"{status}"}}"#
        )
    }

    /// Feeds `body` in chunks of every size from 1 to its length; all must decode to `want`.
    async fn check(body: &str, want: &[BuildUpdate]) {
        let format = Format::Sse {
            event: Some("build".to_owned()),
        };
        crate::source::tests::check(body, format, want).await;
    }

    #[tokio::test]
    async fn decodes_build_events_across_chunk_boundaries() {
        use BuildStatus::*;
        use Transition::*;
        let body = format!(
            ": watching\n\nevent: build\ndata: {}\n\nevent: build\r\ndata: {}\r\n\r\ndata: {}\n\n",
            data("a", 1, "start", "pending"),
            data("b", 2, "stop", "succeeded"),
            data("c", 3, "delete", "canceled"),
        );
        let want = [
            update("a", 1, Start, Pending),
            update("b", 2, Stop, Succeeded),
            update("c", 3, Delete, Canceled),
        ];
        check(&body, &want).await;
    }

    #[tokio::test]
    async fn skips_other_events_and_joins_data_lines() {
        let body = "event: ping\ndata: {}\n\nevent: build\ndata: {\"workspace_name\":\"a\",\ndata: \"build_number\":1,\"transition\":\"stop\",\"status\":\"running\"}\n\nid: 7\n\n";
        check(
            body,
            &[update("a", 1, Transition::Stop, BuildStatus::Running)],
        )
        .await;
    }

    #[tokio::test]
    async fn ends_at_a_bad_event_or_a_read_error() {
        let good = data("a", 1, "start", "pending");
        let body = format!("data: {good}\n\ndata: {{nope\n\ndata: {good}\n\n");
        check(
            &body,
            &[update("a", 1, Transition::Start, BuildStatus::Pending)],
        )
        .await;
        let chunks = vec![
            Ok(format!("data: {good}\n\n")),
            Err("reset"),
            Ok(format!("data: {good}\n\n")),
        ];
        let got: Vec<_> = build_updates(stream::iter(chunks)).collect().await;
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn wait_errors_read_like_coders() {
        let err = BuildWaitError::UnexpectedTransition {
            expected: Transition::Start,
            got: Transition::Stop,
            build_number: 2,
        };
        assert_eq!(
            err.to_string(),
            "unexpected transition: expected start, got stop (build_number=2)"
        );
        let err = BuildWaitError::Ended {
            build_number: 1,
            transition: Transition::Start,
            status: BuildStatus::Failed,
        };
        assert_eq!(err.to_string(), "build 1 (start) failed");
        assert_eq!(
            BuildWaitError::from(WaitError::Closed).to_string(),
            "update stream closed"
        );
    }
}
