//! The SQL text both SQL backends run, with placeholders written by hand.
//!
//! The text is the same for both but for its placeholders: PostgreSQL numbers them (`$1`);
//! for SQLite the builder writes plain `?`, bound in order, because SQLite looks every named
//! or numbered parameter up in a list, which makes binding a 1,000-row insert quadratic (it
//! was 4 times slower than 100-row inserts). A [`Statement`] keeps its text and arguments
//! together so that placeholders and binds cannot drift apart. (sqlx's `QueryBuilder` is
//! not used: its `Any` form writes `?`, which PostgreSQL refuses.)

use std::fmt::Write as _;

use crate::types::{EventQuery, JobQuery, NewEvent, NewJob};

/// Columns bound per inserted event.
pub(crate) const EVENT_COLUMNS: usize = 9;

/// Columns bound per inserted tag.
pub(crate) const TAG_COLUMNS: usize = 3;

/// The job columns every job query selects, in the order `job_from_row` reads them.
pub(crate) const JOB_COLUMNS: &str = "id, name, requestor, server_id, requested_at_us, \
     descriptor, extended_descriptor, state, project";

/// One bound value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
}

/// How a database wants its placeholders written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholders {
    /// `$1`, `$2`, ... (PostgreSQL).
    Numbered,
    /// `?`, bound in order (SQLite).
    InOrder,
}

/// SQL text and the values for its placeholders, in order.
#[derive(Debug)]
pub(crate) struct Statement<'a> {
    pub(crate) sql: String,
    pub(crate) args: Vec<Arg<'a>>,
    style: Placeholders,
}

impl<'a> Statement<'a> {
    fn new(style: Placeholders, sql: &str) -> Self {
        Self {
            sql: sql.to_owned(),
            args: Vec::new(),
            style,
        }
    }

    fn sql(&mut self, text: &str) -> &mut Self {
        self.sql.push_str(text);
        self
    }

    /// Writes the next placeholder and remembers its value.
    fn arg(&mut self, arg: Arg<'a>) -> &mut Self {
        self.args.push(arg);
        match self.style {
            Placeholders::Numbered => {
                write!(self.sql, "${}", self.args.len()).expect("writing to a String cannot fail")
            }
            Placeholders::InOrder => self.sql.push('?'),
        }
        self
    }

    /// Writes `(p1, p2, ...)` for `args`.
    fn tuple(&mut self, args: impl IntoIterator<Item = Arg<'a>>) -> &mut Self {
        self.sql.push('(');
        for (i, arg) in args.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.arg(arg);
        }
        self.sql.push(')');
        self
    }
}

/// A job id as the database stores it; ids beyond `i64::MAX` cannot exist.
pub(crate) fn db_id(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

pub(crate) fn insert_job(style: Placeholders, job: &NewJob) -> Statement<'_> {
    let mut s = Statement::new(
        style,
        "INSERT INTO jobs (name, requestor, server_id, requested_at_us, descriptor, \
         extended_descriptor, state, project) VALUES ",
    );
    s.tuple([
        Arg::Text(&job.name),
        Arg::Text(&job.requestor),
        Arg::Text(&job.server_id),
        Arg::Int(job.requested_at_us),
        Arg::Text(&job.descriptor),
        Arg::Text(&job.extended_descriptor),
        Arg::Text(&job.state),
        Arg::Text(&job.project),
    ]);
    s.sql(" RETURNING id");
    s
}

/// Inserts `tags` (numbered from `first_pos`) for job `id`.
pub(crate) fn insert_tags(
    style: Placeholders,
    id: i64,
    first_pos: usize,
    tags: &[String],
) -> Statement<'_> {
    let mut s = Statement::new(style, "INSERT INTO job_tags (job_id, pos, tag) VALUES ");
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            s.sql(", ");
        }
        let pos = i64::try_from(first_pos + i).unwrap_or(i64::MAX);
        s.tuple([Arg::Int(id), Arg::Int(pos), Arg::Text(tag)]);
    }
    s
}

pub(crate) fn select_job(style: Placeholders, id: i64) -> Statement<'static> {
    let mut s = Statement::new(
        style,
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = "),
    );
    s.arg(Arg::Int(id));
    s
}

pub(crate) fn select_jobs(style: Placeholders, query: &JobQuery) -> Statement<'_> {
    let mut s = Statement::new(
        style,
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id > "),
    );
    s.arg(Arg::Int(
        query
            .after_id
            .map_or(0, |after| db_id(after).unwrap_or(i64::MAX)),
    ));
    if !query.states.is_empty() {
        s.sql(" AND state IN ")
            .tuple(query.states.iter().map(|state| Arg::Text(state)));
    }
    if let Some(server_id) = &query.server_id {
        s.sql(" AND server_id = ").arg(Arg::Text(server_id));
    }
    if let Some(project) = &query.project {
        s.sql(" AND project = ").arg(Arg::Text(project));
    }
    for tag in &query.tags {
        s.sql(" AND EXISTS (SELECT 1 FROM job_tags t WHERE t.job_id = jobs.id AND t.tag = ")
            .arg(Arg::Text(tag))
            .sql(")");
    }
    s.sql(" ORDER BY id");
    if query.limit > 0 {
        s.sql(" LIMIT ").arg(Arg::Int(query.limit.into()));
    }
    s
}

/// The ids among `ids` that have a job.
pub(crate) fn select_job_ids(style: Placeholders, ids: &[i64]) -> Statement<'static> {
    let mut s = Statement::new(style, "SELECT id FROM jobs WHERE id IN ");
    s.tuple(ids.iter().map(|&id| Arg::Int(id)));
    s
}

/// `(job_id, tag)` rows for the jobs `ids`, by job then position.
pub(crate) fn select_tags(style: Placeholders, ids: &[i64]) -> Statement<'static> {
    let mut s = Statement::new(style, "SELECT job_id, tag FROM job_tags WHERE job_id IN ");
    s.tuple(ids.iter().map(|&id| Arg::Int(id)));
    s.sql(" ORDER BY job_id, pos");
    s
}

/// Inserts `events` and returns their sequence numbers, in no particular order.
pub(crate) fn insert_events(style: Placeholders, events: &[NewEvent]) -> Statement<'_> {
    let mut s = Statement {
        style,
        sql: String::with_capacity(120 + events.len() * EVENT_COLUMNS * 8),
        args: Vec::with_capacity(events.len() * EVENT_COLUMNS),
    };
    s.sql(
        "INSERT INTO events (job_id, run, test, attempt, step, target, name, payload, \
         emitted_at_us) VALUES ",
    );
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            s.sql(", ");
        }
        s.tuple([
            // The caller has checked that every job id fits.
            Arg::Int(db_id(event.job_id).unwrap_or(i64::MAX)),
            Arg::OptInt(event.run.map(i64::from)),
            Arg::OptText(event.test.as_deref()),
            Arg::OptInt(event.attempt.map(i64::from)),
            Arg::OptText(event.step.as_deref()),
            Arg::OptText(event.target.as_deref()),
            Arg::Text(&event.name),
            Arg::OptText(event.payload.as_deref()),
            Arg::Int(event.emitted_at_us),
        ]);
    }
    s.sql(" RETURNING seq");
    s
}

/// The columns `event_from_row` reads, for the job `query.job_id` (= `id`).
pub(crate) fn select_events(style: Placeholders, query: &EventQuery, id: i64) -> Statement<'_> {
    let mut s = Statement::new(
        style,
        "SELECT seq, run, test, attempt, step, target, name, payload, emitted_at_us \
         FROM events WHERE job_id = ",
    );
    s.arg(Arg::Int(id));
    if let Some(after) = query.after_seq {
        s.sql(" AND seq > ")
            .arg(Arg::Int(db_id(after).unwrap_or(i64::MAX)));
    }
    if !query.names.is_empty() {
        s.sql(" AND name IN ")
            .tuple(query.names.iter().map(|name| Arg::Text(name)));
    }
    s.sql(" ORDER BY seq");
    if let Some(limit) = query.limit {
        s.sql(" LIMIT ").arg(Arg::Int(limit.into()));
    }
    s
}

/// At most `page` events of `query` after `after` (SQLite only), as one row: a JSON array of
/// `[seq, run, test, attempt, step, target, name, payload, emitted_at_us]` arrays, the greatest seq
/// and the count (why: `pages.rs`).
pub(crate) fn select_event_page<'a>(
    style: Placeholders,
    query: &'a EventQuery,
    id: i64,
    after: Option<i64>,
    page: i64,
) -> Statement<'a> {
    let mut s = Statement::new(
        style,
        "SELECT json_group_array(json_array(seq, run, test, attempt, step, target, name, \
         payload, emitted_at_us)), max(seq), count(*) FROM (SELECT seq, run, test, attempt, \
         step, target, name, payload, emitted_at_us FROM events WHERE job_id = ",
    );
    s.arg(Arg::Int(id));
    if let Some(after) = after {
        s.sql(" AND seq > ").arg(Arg::Int(after));
    }
    if !query.names.is_empty() {
        s.sql(" AND name IN ")
            .tuple(query.names.iter().map(|name| Arg::Text(name)));
    }
    s.sql(" ORDER BY seq LIMIT ").arg(Arg::Int(page)).sql(")");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_arguments() {
        let query = JobQuery {
            states: vec!["started".into(), "paused".into()],
            tags: vec!["nightly".into()],
            server_id: Some("srv".into()),
            project: Some("web".into()),
            after_id: Some(7),
            limit: 10,
        };
        let s = select_jobs(Placeholders::Numbered, &query);
        assert_eq!(
            s.sql,
            format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE id > $1 AND state IN ($2, $3) AND \
                 server_id = $4 AND project = $5 AND EXISTS (SELECT 1 FROM job_tags t WHERE \
                 t.job_id = jobs.id AND t.tag = $6) ORDER BY id LIMIT $7"
            )
        );
        assert_eq!(
            s.args,
            [
                Arg::Int(7),
                Arg::Text("started"),
                Arg::Text("paused"),
                Arg::Text("srv"),
                Arg::Text("web"),
                Arg::Text("nightly"),
                Arg::Int(10)
            ]
        );
    }

    #[test]
    fn sqlite_placeholders_are_bound_in_order() {
        let query = EventQuery {
            job_id: 3,
            after_seq: Some(9),
            limit: Some(5),
            ..EventQuery::default()
        };
        let s = select_events(Placeholders::InOrder, &query, 3);
        assert!(
            s.sql
                .ends_with("WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?"),
            "{}",
            s.sql
        );
        assert_eq!(s.args, [Arg::Int(3), Arg::Int(9), Arg::Int(5)]);
    }

    #[test]
    fn event_rows_take_nine_placeholders_each() {
        let events = vec![
            NewEvent {
                job_id: 1,
                name: "a".into(),
                ..NewEvent::default()
            };
            2
        ];
        let s = insert_events(Placeholders::Numbered, &events);
        assert!(
            s.sql
                .ends_with("($10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING seq"),
            "{}",
            s.sql
        );
        assert_eq!(s.args.len(), 2 * EVENT_COLUMNS);
        assert_eq!(s.args[1], Arg::OptInt(None));
    }
}
