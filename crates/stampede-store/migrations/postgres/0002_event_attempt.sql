-- The test attempt (from 0) of test events, so a status shows only each test's latest
-- attempt; NULL for job-level events and for events written before this migration. Keep in
-- step with ../sqlite/0002_event_attempt.sql. BIGINT like `run`: attempts are u32, which
-- PostgreSQL's INTEGER (i32) cannot hold whole.

ALTER TABLE events ADD COLUMN attempt BIGINT;
