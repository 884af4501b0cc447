-- What the job server shares between its instances: the project each job belongs to, API
-- tokens and idempotency keys. Keep in step with ../sqlite/0003_server.sql.

-- Jobs stored before projects existed belong to the default project.
ALTER TABLE jobs ADD COLUMN project TEXT NOT NULL DEFAULT 'default';
CREATE INDEX jobs_project ON jobs (project, id);

-- Only the hash of a token's secret is kept. Tokens are revoked, never deleted; a name is
-- unique among the tokens that are not revoked, a hash among all of them.
CREATE TABLE tokens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    project TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at_us BIGINT NOT NULL,
    revoked_at_us BIGINT
);
CREATE UNIQUE INDEX tokens_live_name ON tokens (name) WHERE revoked_at_us IS NULL;

-- The job created for each idempotency key of a project. The key is inserted first, so that
-- the primary key decides between concurrent creations (ON CONFLICT DO NOTHING waits for the
-- transaction holding the same key); job_id is NULL only inside the transaction that claims
-- the key and then creates its job.
CREATE TABLE job_keys (
    project TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    job_id BIGINT REFERENCES jobs (id),
    PRIMARY KEY (project, idempotency_key)
);
