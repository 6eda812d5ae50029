-- Multi-factor policy (issue 10 §3): a client or a tier may require a
-- second factor at sign-in. Off by default, so existing clients and tiers
-- keep signing people in as before.

-- +goose Up
ALTER TABLE clients ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tiers ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;

-- +goose Down
ALTER TABLE tiers DROP COLUMN require_mfa;
ALTER TABLE clients DROP COLUMN require_mfa;
