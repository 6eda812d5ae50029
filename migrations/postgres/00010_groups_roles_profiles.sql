-- Groups, roles and full profiles (issue 11).
--
-- Roles are names, global (client_id NULL) or belonging to one client.
-- Groups hold members and carry roles; a group may have a parent, whose
-- roles apply to the members of its children. The hierarchy is kept
-- acyclic and at most storage.MaxGroupDepth deep by the store. Built-in
-- roles (latchkey:admin and one per admin scope) are seeded here: holding
-- one lets a person obtain that admin scope.
--
-- The user gets the standard OIDC profile claims, two JSON metadata
-- objects (user_metadata: the person's; app_metadata: admins' only) and
-- the time of the last sign-in. A client may map metadata into its tokens
-- (claims, a JSON object claim name → source path, emitted when
-- claims_scope is granted).

-- +goose Up
CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    parent_id   TEXT REFERENCES groups (id),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX groups_name_lower_key ON groups (lower(name));
CREATE INDEX groups_parent_id_idx ON groups (parent_id);

CREATE TABLE group_members (
    group_id   TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_id_idx ON group_members (user_id, group_id);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    client_id   TEXT REFERENCES clients (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
-- A name is unique among the global roles and among each client's roles.
CREATE UNIQUE INDEX roles_name_key ON roles (coalesce(client_id, ''), name);
CREATE INDEX roles_client_id_idx ON roles (client_id);

CREATE TABLE group_roles (
    group_id   TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (group_id, role_id)
);
CREATE INDEX group_roles_role_id_idx ON group_roles (role_id, group_id);

CREATE TABLE user_roles (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id    TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_id_idx ON user_roles (role_id, user_id);

INSERT INTO roles (id, name, description, created_at, updated_at) VALUES
    ('role_latchkey_admin', 'latchkey:admin', 'Every admin API scope (built in)', now(), now()),
    ('role_latchkey_admin_users_read', 'latchkey:admin:users.read', 'Admin scope admin:users.read (built in)', now(), now()),
    ('role_latchkey_admin_users_write', 'latchkey:admin:users.write', 'Admin scope admin:users.write (built in)', now(), now()),
    ('role_latchkey_admin_users_search_basic', 'latchkey:admin:users.search.basic', 'Admin scope admin:users.search.basic (built in)', now(), now()),
    ('role_latchkey_admin_tiers', 'latchkey:admin:tiers', 'Admin scope admin:tiers (built in)', now(), now()),
    ('role_latchkey_admin_clients', 'latchkey:admin:clients', 'Admin scope admin:clients (built in)', now(), now()),
    ('role_latchkey_admin_keys', 'latchkey:admin:keys', 'Admin scope admin:keys (built in)', now(), now()),
    ('role_latchkey_admin_audit', 'latchkey:admin:audit', 'Admin scope admin:audit (built in)', now(), now()),
    ('role_latchkey_admin_groups', 'latchkey:admin:groups', 'Admin scope admin:groups (built in)', now(), now());

ALTER TABLE users ADD COLUMN given_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN family_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN middle_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN nickname TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN website TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN zoneinfo TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN birthdate TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone_number TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone_number_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN address TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN user_metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN app_metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN last_login_at TIMESTAMPTZ;
-- Sorting by last sign-in puts those who never signed in at the epoch.
CREATE INDEX users_last_login_idx ON users ((coalesce(last_login_at, timestamptz '1970-01-01 00:00:00+00')), id);

ALTER TABLE clients ADD COLUMN claims TEXT NOT NULL DEFAULT '{}';
ALTER TABLE clients ADD COLUMN claims_scope TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE clients DROP COLUMN claims_scope;
ALTER TABLE clients DROP COLUMN claims;
DROP INDEX users_last_login_idx;
ALTER TABLE users DROP COLUMN last_login_at;
ALTER TABLE users DROP COLUMN app_metadata;
ALTER TABLE users DROP COLUMN user_metadata;
ALTER TABLE users DROP COLUMN address;
ALTER TABLE users DROP COLUMN phone_number_verified;
ALTER TABLE users DROP COLUMN phone_number;
ALTER TABLE users DROP COLUMN birthdate;
ALTER TABLE users DROP COLUMN zoneinfo;
ALTER TABLE users DROP COLUMN website;
ALTER TABLE users DROP COLUMN nickname;
ALTER TABLE users DROP COLUMN middle_name;
ALTER TABLE users DROP COLUMN family_name;
ALTER TABLE users DROP COLUMN given_name;
DROP TABLE user_roles;
DROP TABLE group_roles;
DROP TABLE roles;
DROP TABLE group_members;
DROP TABLE groups;
