-- Second factors. A TOTP factor keeps its secret sealed (AES-256-GCM under
-- a key derived from LATCHKEY_SECRET, the factor id as associated data)
-- and the last time step it accepted, so that a code is accepted once.
-- WebAuthn credentials (passkeys) keep their id and the library's record.
-- A factor with no confirmed_at is an enrolment in progress.
-- Recovery codes are stored only as SHA-256 hashes.

-- +goose Up
CREATE TABLE factors (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type          TEXT NOT NULL CHECK (type IN ('totp', 'webauthn')),
    name          TEXT NOT NULL DEFAULT '',
    secret        BYTEA,
    last_step     BIGINT,
    credential_id BYTEA UNIQUE,
    credential    TEXT NOT NULL DEFAULT '',
    confirmed_at  TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ
);
CREATE INDEX factors_user_id_idx ON factors (user_id, created_at);

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);

-- +goose Down
DROP TABLE recovery_codes;
DROP TABLE factors;
