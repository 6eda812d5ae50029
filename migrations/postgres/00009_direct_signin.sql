-- A pending sign-in need not belong to an authorization request: a person
-- who signs in to the account page directly goes through the same
-- pipeline (password, then a second factor) before a session exists.
-- Such a row has no client; its form holds where to return.

-- +goose Up
ALTER TABLE pending_authorizations ALTER COLUMN client_id DROP NOT NULL;

-- +goose Down
DELETE FROM pending_authorizations WHERE client_id IS NULL;
ALTER TABLE pending_authorizations ALTER COLUMN client_id SET NOT NULL;
