-- Client registration metadata beyond the core columns (issue 13): how a
-- client authenticates (token_endpoint_auth_method, jwks, jwks_uri), how
-- its tokens are signed, request objects, pairwise subjects, logout URIs,
-- DPoP. One JSON document (OpenID Connect Dynamic Client Registration
-- names): no query filters on any of it, and each protocol feature adds
-- its fields without a schema change.
--
-- sealed_secret: the client secret sealed under LATCHKEY_SECRET, kept only
-- for client_secret_jwt, where the server must know the secret itself to
-- check the HMAC; every other client keeps only secret_hash.

-- +goose Up
ALTER TABLE clients ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
ALTER TABLE clients ADD COLUMN sealed_secret BLOB;

-- +goose Down
ALTER TABLE clients DROP COLUMN sealed_secret;
ALTER TABLE clients DROP COLUMN metadata;
