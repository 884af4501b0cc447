//! How each database inserts a batch of events, the one statement where the two differ
//! for speed rather than syntax.
//!
//! SQLite takes a multi-row `INSERT ... VALUES` with one `?` per value. PostgreSQL takes
//! nine arrays and `UNNEST`s them: nine parameters instead of nine per row make the
//! statement cheap to parse and bind on the server, which bounds the append rate there
//! (batches of 1,000 on the 2-vCPU VM: about 105,000 events/s, against 69,000 with rows of
//! `$N`s). Both return the new sequence numbers (`RETURNING seq`).

use sqlx::Database;
use sqlx::postgres::Postgres;
use sqlx::query::Query;
use sqlx::sqlite::Sqlite;

use super::prepare;
use super::statement::{self, EVENT_COLUMNS, Placeholders, db_id};
use crate::types::NewEvent;

/// Inserting a chunk of events.
pub(crate) trait EventInserts: Database {
    /// Events per statement (a transaction runs as many statements as a batch needs).
    const EVENTS_PER_STATEMENT: usize;

    /// The statement inserting `events` (at most [`Self::EVENTS_PER_STATEMENT`]) and
    /// returning their sequence numbers, in no promised order.
    fn insert_events(events: &[NewEvent]) -> Query<'static, Self, Self::Arguments>;
}

const _: () = assert!(Sqlite::EVENTS_PER_STATEMENT * EVENT_COLUMNS <= 32_766);

impl EventInserts for Sqlite {
    /// 9,000 values, within SQLITE_MAX_VARIABLE_NUMBER (32,766); larger statements cost
    /// more to parse than they save.
    const EVENTS_PER_STATEMENT: usize = 1000;

    fn insert_events(events: &[NewEvent]) -> Query<'static, Self, Self::Arguments> {
        prepare(statement::insert_events(Placeholders::InOrder, events))
    }
}

impl EventInserts for Postgres {
    /// Arrays have no bind limit; this keeps one statement's arrays near a megabyte.
    const EVENTS_PER_STATEMENT: usize = 5000;

    fn insert_events(events: &[NewEvent]) -> Query<'static, Self, Self::Arguments> {
        let column = |get: fn(&NewEvent) -> Option<&str>| -> Vec<Option<&str>> {
            events.iter().map(get).collect()
        };
        let query = sqlx::query(
            "INSERT INTO events (job_id, run, test, attempt, step, target, name, payload, \
             emitted_at_us) SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], \
             $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[]) \
             RETURNING seq",
        );
        // The caller has checked that every job id fits.
        let job_ids: Vec<i64> = events
            .iter()
            .map(|event| db_id(event.job_id).unwrap_or(i64::MAX))
            .collect();
        let number = |get: fn(&NewEvent) -> Option<u32>| -> Vec<Option<i64>> {
            events
                .iter()
                .map(|event| get(event).map(i64::from))
                .collect()
        };
        let names: Vec<&str> = events.iter().map(|event| event.name.as_str()).collect();
        let times: Vec<i64> = events.iter().map(|event| event.emitted_at_us).collect();
        query
            .bind(job_ids)
            .bind(number(|event| event.run))
            .bind(column(|event| event.test.as_deref()))
            .bind(number(|event| event.attempt))
            .bind(column(|event| event.step.as_deref()))
            .bind(column(|event| event.target.as_deref()))
            .bind(names)
            .bind(column(|event| event.payload.as_deref()))
            .bind(times)
    }
}
