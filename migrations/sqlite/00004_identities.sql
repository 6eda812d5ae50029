-- Upstream identities: an account at an upstream identity provider
-- (upstream id + subject) linked to a Latchkey user.

-- +goose Up
CREATE TABLE identities (
    upstream_id  TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email        TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    PRIMARY KEY (upstream_id, subject)
);
CREATE INDEX identities_user_id_idx ON identities (user_id);

-- +goose Down
DROP TABLE identities;
