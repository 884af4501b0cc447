-- The test attempt (from 0) of test events, so a status shows only each test's latest
-- attempt; NULL for job-level events and for events written before this migration. Keep in
-- step with ../postgres/0002_event_attempt.sql.

ALTER TABLE events ADD COLUMN attempt INTEGER;
