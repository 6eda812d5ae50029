-- Admin API: service tiers and their published rate limits, the audit log,
-- the archive of hard-deleted users, per-client token lifetimes, and the
-- indexes for user search (a substring search is a scan on SQLite, which
-- is fine for the embedded default).

-- +goose Up
CREATE TABLE tiers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    is_default  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
-- Names are unique ignoring case.
CREATE UNIQUE INDEX tiers_name_lower_key ON tiers (lower(name));
-- At most one default tier.
CREATE UNIQUE INDEX tiers_default_key ON tiers (is_default) WHERE is_default;

CREATE TABLE tier_rate_limits (
    tier_id     TEXT NOT NULL REFERENCES tiers (id) ON DELETE CASCADE,
    match       TEXT NOT NULL,
    limit_count INTEGER NOT NULL,
    period_ns   INTEGER NOT NULL,
    PRIMARY KEY (tier_id, match)
);

ALTER TABLE users ADD COLUMN tier_id TEXT REFERENCES tiers (id);
CREATE INDEX users_tier_id_idx ON users (tier_id);

-- Per-client token lifetimes in nanoseconds; 0 is the server default.
ALTER TABLE clients ADD COLUMN access_token_ttl_ns  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN refresh_token_ttl_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN id_token_ttl_ns      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN auth_code_ttl_ns     INTEGER NOT NULL DEFAULT 0;

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time       INTEGER NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id   TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    target_id  TEXT NOT NULL DEFAULT '',
    ip         TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL DEFAULT '',
    changes    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_target_idx ON audit_events (target_id, id);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, id);
CREATE INDEX audit_events_action_idx ON audit_events (action, id);
CREATE INDEX audit_events_time_idx ON audit_events (time);

CREATE TABLE user_archive (
    user_id      TEXT PRIMARY KEY,
    username     TEXT NOT NULL,
    email        TEXT NOT NULL DEFAULT '',
    display_name TEXT NOT NULL DEFAULT '',
    profile      TEXT NOT NULL DEFAULT '{}',
    reason       TEXT NOT NULL DEFAULT '',
    deleted_by   TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    deleted_at   INTEGER NOT NULL
);

CREATE INDEX users_created_idx ON users (created_at, id);
CREATE INDEX users_status_created_idx ON users (status, created_at, id);
CREATE INDEX users_tier_created_idx ON users (tier_id, created_at, id);

-- +goose Down
DROP INDEX users_tier_created_idx;
DROP INDEX users_status_created_idx;
DROP INDEX users_created_idx;
DROP TABLE user_archive;
DROP TABLE audit_events;
ALTER TABLE clients DROP COLUMN auth_code_ttl_ns;
ALTER TABLE clients DROP COLUMN id_token_ttl_ns;
ALTER TABLE clients DROP COLUMN refresh_token_ttl_ns;
ALTER TABLE clients DROP COLUMN access_token_ttl_ns;
DROP INDEX users_tier_id_idx;
ALTER TABLE users DROP COLUMN tier_id;
DROP TABLE tier_rate_limits;
DROP TABLE tiers;
