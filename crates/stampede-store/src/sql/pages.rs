//! Reading SQLite events as JSON pages.
//!
//! sqlx's SQLite driver copies every column of every row (`sqlite3_value_dup`) on its worker
//! thread and frees the copies on ours, so both threads contend on SQLite's allocator lock
//! and hand each row over a channel: a million events took 5.5 s to read row by row. Asking
//! SQLite for one JSON text per page of events (`statement::select_event_page`) costs one
//! value and one hand-off per page instead (1.5 s), and a page is parsed on a blocking
//! thread ([`PageParser`]) while SQLite builds the next one.

use crate::error::StoreError;
use crate::types::{Event, JobId};

use super::stored_id;

/// Events per JSON page: about a megabyte of text.
pub(super) const EVENTS_PER_PAGE: usize = 10_000;

/// One event as a JSON page holds it.
type EventRow = (
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    i64,
);

/// Appends the events of one JSON page to `events`, by seq.
fn append_page(events: &mut Vec<Event>, json: &str, job_id: JobId) -> serde_json::Result<()> {
    let rows: Vec<EventRow> = serde_json::from_str(json)?;
    let start = events.len();
    events.extend(rows.into_iter().map(
        |(seq, run, test, attempt, step, target, name, payload, emitted_at_us)| Event {
            seq: stored_id(seq),
            job_id,
            run: run.and_then(|run| u32::try_from(run).ok()),
            test,
            attempt: attempt.and_then(|attempt| u32::try_from(attempt).ok()),
            step,
            target,
            name,
            payload,
            emitted_at_us,
        },
    ));
    // SQLite aggregates in the subquery's order; sorting keeps that a check, not a promise.
    let page = &mut events[start..];
    if !page.is_sorted_by_key(|event| event.seq) {
        page.sort_by_key(|event| event.seq);
    }
    Ok(())
}

/// Events read so far, being extended by a page on a blocking thread.
pub(super) struct PageParser {
    parsing: tokio::task::JoinHandle<serde_json::Result<Vec<Event>>>,
}

impl PageParser {
    /// Appends the page `json` to `events` on a blocking thread. The vector travels with the
    /// work, so moving events into it overlaps with the database building the next page.
    pub(super) fn start(mut events: Vec<Event>, json: String, job_id: JobId) -> Self {
        let parsing = tokio::task::spawn_blocking(move || {
            append_page(&mut events, &json, job_id)?;
            Ok(events)
        });
        Self { parsing }
    }

    /// The events read so far, this parser's page included.
    pub(super) async fn finish(self) -> Result<Vec<Event>, StoreError> {
        let operation = "decode events";
        self.parsing
            .await
            .map_err(StoreError::query(operation))?
            .map_err(StoreError::query(operation))
    }
}
