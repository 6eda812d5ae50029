-- Self-service account lifecycle: profile fields, soft delete, sign-in
-- lockout state (in the database so it holds across replicas) and the
-- single-use email tokens (verification, password reset, email change).

-- +goose Up
ALTER TABLE users ADD COLUMN picture_url    TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN locale         TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN deleted_at     INTEGER;
ALTER TABLE users ADD COLUMN failed_logins  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_failed_at INTEGER;
ALTER TABLE users ADD COLUMN locked_until   INTEGER;

CREATE TABLE user_tokens (
    token_hash BLOB PRIMARY KEY,
    purpose    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX user_tokens_user_id_idx ON user_tokens (user_id, purpose);
CREATE INDEX user_tokens_expires_at_idx ON user_tokens (expires_at);

-- +goose Down
DROP TABLE user_tokens;
ALTER TABLE users DROP COLUMN locked_until;
ALTER TABLE users DROP COLUMN last_failed_at;
ALTER TABLE users DROP COLUMN failed_logins;
ALTER TABLE users DROP COLUMN deleted_at;
ALTER TABLE users DROP COLUMN locale;
ALTER TABLE users DROP COLUMN picture_url;
