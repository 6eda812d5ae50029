-- Latchkey schema, SQLite. Timestamps are INTEGER unix nanoseconds (UTC),
-- booleans INTEGER 0/1, lists are
-- JSON text, fosite keys are SHA-256 hex of the signature/code/URI.

-- +goose Up
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL,
    email          TEXT NOT NULL DEFAULT '',
    email_verified INTEGER NOT NULL DEFAULT 0,
    display_name   TEXT NOT NULL DEFAULT '',
    password_hash  TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL DEFAULT 'active',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (username);
-- Emails are unique ignoring case; users without an email don't collide.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email)) WHERE email <> '';

CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,
    name                      TEXT NOT NULL DEFAULT '',
    secret_hash               BLOB,
    redirect_uris             TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    grant_types               TEXT NOT NULL DEFAULT '[]',
    response_types            TEXT NOT NULL DEFAULT '[]',
    scopes                    TEXT NOT NULL DEFAULT '[]',
    audience                  TEXT NOT NULL DEFAULT '[]',
    public                    INTEGER NOT NULL DEFAULT 0,
    first_party               INTEGER NOT NULL DEFAULT 0,
    access_token_format       TEXT NOT NULL DEFAULT 'opaque',
    created_at                INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    id           TEXT PRIMARY KEY,
    algorithm    TEXT NOT NULL,
    public_jwk   BLOB NOT NULL,
    private_key  BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    retired_at   INTEGER,
    expires_at   INTEGER
);

CREATE TABLE browser_sessions (
    id           TEXT PRIMARY KEY,
    token_hash   BLOB NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    INTEGER NOT NULL,
    amr          TEXT NOT NULL DEFAULT '[]',
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX browser_sessions_user_id_idx ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires_at_idx ON browser_sessions (expires_at);

CREATE TABLE pending_authorizations (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
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
CREATE INDEX pending_authorizations_expires_at_idx ON pending_authorizations (expires_at);
CREATE INDEX pending_authorizations_client_id_idx ON pending_authorizations (client_id);
CREATE INDEX pending_authorizations_user_id_idx ON pending_authorizations (user_id);

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL DEFAULT '[]',
    granted_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client_id_idx ON consents (client_id);

CREATE TABLE oauth2_jtis (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX oauth2_jtis_expires_at_idx ON oauth2_jtis (expires_at);

CREATE TABLE oauth2_authorize_codes (
    signature          TEXT PRIMARY KEY,
    request_id         TEXT NOT NULL,
    client_id          TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject            TEXT NOT NULL DEFAULT '',
    requested_at       INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    active             INTEGER NOT NULL DEFAULT 1,
    requested_scopes   TEXT NOT NULL DEFAULT '[]',
    granted_scopes     TEXT NOT NULL DEFAULT '[]',
    requested_audience TEXT NOT NULL DEFAULT '[]',
    granted_audience   TEXT NOT NULL DEFAULT '[]',
    form               TEXT NOT NULL DEFAULT '',
    session            TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX oauth2_authorize_codes_request_id_idx ON oauth2_authorize_codes (request_id);
CREATE INDEX oauth2_authorize_codes_expires_at_idx ON oauth2_authorize_codes (expires_at);
CREATE INDEX oauth2_authorize_codes_client_id_idx ON oauth2_authorize_codes (client_id);

CREATE TABLE oauth2_access_tokens (
    signature          TEXT PRIMARY KEY,
    request_id         TEXT NOT NULL,
    client_id          TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject            TEXT NOT NULL DEFAULT '',
    requested_at       INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    active             INTEGER NOT NULL DEFAULT 1,
    requested_scopes   TEXT NOT NULL DEFAULT '[]',
    granted_scopes     TEXT NOT NULL DEFAULT '[]',
    requested_audience TEXT NOT NULL DEFAULT '[]',
    granted_audience   TEXT NOT NULL DEFAULT '[]',
    form               TEXT NOT NULL DEFAULT '',
    session            TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX oauth2_access_tokens_request_id_idx ON oauth2_access_tokens (request_id);
CREATE INDEX oauth2_access_tokens_expires_at_idx ON oauth2_access_tokens (expires_at);
CREATE INDEX oauth2_access_tokens_client_id_idx ON oauth2_access_tokens (client_id);
CREATE INDEX oauth2_access_tokens_subject_idx ON oauth2_access_tokens (subject);

CREATE TABLE oauth2_refresh_tokens (
    signature          TEXT PRIMARY KEY,
    request_id         TEXT NOT NULL,
    client_id          TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject            TEXT NOT NULL DEFAULT '',
    requested_at       INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    active             INTEGER NOT NULL DEFAULT 1,
    requested_scopes   TEXT NOT NULL DEFAULT '[]',
    granted_scopes     TEXT NOT NULL DEFAULT '[]',
    requested_audience TEXT NOT NULL DEFAULT '[]',
    granted_audience   TEXT NOT NULL DEFAULT '[]',
    form               TEXT NOT NULL DEFAULT '',
    session            TEXT NOT NULL DEFAULT '{}',
    access_token_signature TEXT NOT NULL DEFAULT ''
);
CREATE INDEX oauth2_refresh_tokens_request_id_idx ON oauth2_refresh_tokens (request_id);
CREATE INDEX oauth2_refresh_tokens_expires_at_idx ON oauth2_refresh_tokens (expires_at);
CREATE INDEX oauth2_refresh_tokens_client_id_idx ON oauth2_refresh_tokens (client_id);
CREATE INDEX oauth2_refresh_tokens_subject_idx ON oauth2_refresh_tokens (subject);

CREATE TABLE oauth2_pkce (
    signature          TEXT PRIMARY KEY,
    request_id         TEXT NOT NULL,
    client_id          TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject            TEXT NOT NULL DEFAULT '',
    requested_at       INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    active             INTEGER NOT NULL DEFAULT 1,
    requested_scopes   TEXT NOT NULL DEFAULT '[]',
    granted_scopes     TEXT NOT NULL DEFAULT '[]',
    requested_audience TEXT NOT NULL DEFAULT '[]',
    granted_audience   TEXT NOT NULL DEFAULT '[]',
    form               TEXT NOT NULL DEFAULT '',
    session            TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX oauth2_pkce_expires_at_idx ON oauth2_pkce (expires_at);
CREATE INDEX oauth2_pkce_client_id_idx ON oauth2_pkce (client_id);

CREATE TABLE oauth2_oidc_sessions (
    signature          TEXT PRIMARY KEY,
    request_id         TEXT NOT NULL,
    client_id          TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject            TEXT NOT NULL DEFAULT '',
    requested_at       INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    active             INTEGER NOT NULL DEFAULT 1,
    requested_scopes   TEXT NOT NULL DEFAULT '[]',
    granted_scopes     TEXT NOT NULL DEFAULT '[]',
    requested_audience TEXT NOT NULL DEFAULT '[]',
    granted_audience   TEXT NOT NULL DEFAULT '[]',
    form               TEXT NOT NULL DEFAULT '',
    session            TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX oauth2_oidc_sessions_expires_at_idx ON oauth2_oidc_sessions (expires_at);
CREATE INDEX oauth2_oidc_sessions_client_id_idx ON oauth2_oidc_sessions (client_id);

-- PAR rows also keep the authorize-request-only fields (response types,
-- redirect URI, state, response mode) as JSON in "authorize".
CREATE TABLE oauth2_par_sessions (
    signature          TEXT PRIMARY KEY,
    request_id         TEXT NOT NULL,
    client_id          TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    subject            TEXT NOT NULL DEFAULT '',
    requested_at       INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    active             INTEGER NOT NULL DEFAULT 1,
    requested_scopes   TEXT NOT NULL DEFAULT '[]',
    granted_scopes     TEXT NOT NULL DEFAULT '[]',
    requested_audience TEXT NOT NULL DEFAULT '[]',
    granted_audience   TEXT NOT NULL DEFAULT '[]',
    form               TEXT NOT NULL DEFAULT '',
    session            TEXT NOT NULL DEFAULT '{}',
    authorize TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX oauth2_par_sessions_expires_at_idx ON oauth2_par_sessions (expires_at);
CREATE INDEX oauth2_par_sessions_client_id_idx ON oauth2_par_sessions (client_id);

-- +goose Down
DROP TABLE oauth2_par_sessions;
DROP TABLE oauth2_oidc_sessions;
DROP TABLE oauth2_pkce;
DROP TABLE oauth2_refresh_tokens;
DROP TABLE oauth2_access_tokens;
DROP TABLE oauth2_authorize_codes;
DROP TABLE oauth2_jtis;
DROP TABLE consents;
DROP TABLE pending_authorizations;
DROP TABLE browser_sessions;
DROP TABLE signing_keys;
DROP TABLE clients;
DROP TABLE users;
