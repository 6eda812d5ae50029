-- Emails are unique ignoring case, with Unicode case folding done in Go
-- (SQLite's lower() folds ASCII only, so "Ünal@" and "ünal@" would both
-- be accepted and a lookup by one could find the other's account).

-- +goose Up
ALTER TABLE users ADD COLUMN email_fold TEXT NOT NULL DEFAULT '';
UPDATE users SET email_fold = lower(email);
CREATE UNIQUE INDEX users_email_fold_key ON users (email_fold) WHERE email_fold <> '';

-- +goose Down
DROP INDEX users_email_fold_key;
ALTER TABLE users DROP COLUMN email_fold;
