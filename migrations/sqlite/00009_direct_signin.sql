-- A pending sign-in need not belong to an authorization request: a person
-- who signs in to the account page directly goes through the same
-- pipeline (password, then a second factor) before a session exists.
-- Such a row has no client; its form holds where to return. SQLite cannot
-- drop a NOT NULL constraint, so the table is rebuilt.

-- +goose Up
CREATE TABLE pending_authorizations_new (
    id             TEXT PRIMARY KEY,
    client_id      TEXT REFERENCES clients (id) ON DELETE CASCADE,
    form           TEXT NOT NULL DEFAULT '',
    csrf_token     TEXT NOT NULL DEFAULT '',
    user_id        TEXT REFERENCES users (id) ON DELETE CASCADE,
    session_id     TEXT NOT NULL DEFAULT '',
    auth_time      INTEGER,
    amr            TEXT NOT NULL DEFAULT '[]',
    consent_given  INTEGER NOT NULL DEFAULT 0,
    granted_scopes TEXT NOT NULL DEFAULT '[]',
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
INSERT INTO pending_authorizations_new SELECT id, client_id, form, csrf_token, user_id, session_id, auth_time,
    amr, consent_given, granted_scopes, created_at, expires_at FROM pending_authorizations;
DROP TABLE pending_authorizations;
ALTER TABLE pending_authorizations_new RENAME TO pending_authorizations;
CREATE INDEX pending_authorizations_expires_at_idx ON pending_authorizations (expires_at);
CREATE INDEX pending_authorizations_client_id_idx ON pending_authorizations (client_id);
CREATE INDEX pending_authorizations_user_id_idx ON pending_authorizations (user_id);

-- +goose Down
DELETE FROM pending_authorizations WHERE client_id IS NULL;
