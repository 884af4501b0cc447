-- The event store, SQLite flavour. Keep in step with ../postgres/0001_event_store.sql: the
-- two differ only in how ids are generated and in integer type names.
-- Ids and sequence numbers are rowid aliases (no AUTOINCREMENT): rows are never deleted, so
-- they only grow. Times are microseconds since the Unix epoch; payloads are JSON text.

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    requestor TEXT NOT NULL,
    server_id TEXT NOT NULL,
    requested_at_us INTEGER NOT NULL,
    descriptor TEXT NOT NULL,
    extended_descriptor TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_server_id ON jobs (server_id, id);

-- pos keeps the tags in the order they were given.
CREATE TABLE job_tags (
    job_id INTEGER NOT NULL REFERENCES jobs (id),
    pos INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (job_id, pos)
) WITHOUT ROWID;
CREATE INDEX job_tags_tag ON job_tags (tag, job_id);

-- No foreign key on job_id: the store checks the jobs inside each append's transaction
-- (jobs are never deleted), and the key's per-row check cost PostgreSQL a third of its
-- append rate.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    run INTEGER,
    test TEXT,
    step TEXT,
    target TEXT,
    name TEXT NOT NULL,
    payload TEXT,
    emitted_at_us INTEGER NOT NULL
);
CREATE INDEX events_job_seq ON events (job_id, seq);
