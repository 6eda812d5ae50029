-- Multi-factor policy (issue 10 §3): a client or a tier may require a
-- second factor at sign-in. Off by default, so existing clients and tiers
-- keep signing people in as before. Booleans are INTEGER 0/1.

-- +goose Up
ALTER TABLE clients ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tiers ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE tiers DROP COLUMN require_mfa;
ALTER TABLE clients DROP COLUMN require_mfa;
