-- Users who log in with a name and a password for a token (`POST /v1/login`). Only the
-- password's hash is kept, as a PHC string. Keep in step with ../sqlite/0004_users.sql.
CREATE TABLE users (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    project TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);
