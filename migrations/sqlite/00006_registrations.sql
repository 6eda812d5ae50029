-- Self-service registrations waiting for their address to be confirmed.
-- The account (and its username) exists only once the link is used, so
-- registering tells nobody whether an address already had an account.
-- Only the SHA-256 of the emailed token is stored.

-- +goose Up
CREATE TABLE registrations (
    id            TEXT PRIMARY KEY,
    token_hash    BLOB NOT NULL UNIQUE,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL,
    email_fold    TEXT NOT NULL,
    display_name  TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX registrations_email_fold_idx ON registrations (email_fold, created_at);
CREATE INDEX registrations_expires_at_idx ON registrations (expires_at);

-- +goose Down
DROP TABLE registrations;
