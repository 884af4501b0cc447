-- Tokens that expire (login tokens, after the server's --login-token-ttl) and the user a
-- login token was issued to (removing the user revokes them). Both NULL for the tokens made
-- before. Keep in step with ../postgres/0005_token_expiry.sql.
ALTER TABLE tokens ADD COLUMN expires_at_us INTEGER;
ALTER TABLE tokens ADD COLUMN user_name TEXT;
CREATE INDEX tokens_user_name ON tokens (user_name) WHERE user_name IS NOT NULL;
