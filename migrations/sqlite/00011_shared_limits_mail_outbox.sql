-- State that must be shared by every replica (issue 12).
--
-- rate_limits: one row per limited key (e.g. "login:ip:203.0.113.9"),
-- holding the GCRA theoretical arrival time in nanoseconds since the Unix
-- epoch. One upsert per check decides and records the event; a row whose
-- tat has passed carries no state and is pruned.
--
-- mail_outbox: every email, written in the transaction of the change that
-- causes it, so a rolled-back change sends nothing and a committed one is
-- sent even if the process dies. Workers on every replica claim due rows
-- (FOR UPDATE SKIP LOCKED), pushing next_attempt_at forward by a lease so a
-- dead worker's rows become due again. The body (subject, text, HTML) is
-- sealed under LATCHKEY_SECRET: it holds sign-in links. A sent row is
-- deleted; a row given up on keeps why (last_error) without its body.

-- +goose Up
CREATE TABLE rate_limits (
    key     TEXT PRIMARY KEY,
    tat     BIGINT NOT NULL,
    allowed INTEGER NOT NULL
);
CREATE INDEX rate_limits_tat_idx ON rate_limits (tat);

CREATE TABLE mail_outbox (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    body            BLOB,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    expires_at      INTEGER
);
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX mail_outbox_expires_at_idx ON mail_outbox (expires_at) WHERE expires_at IS NOT NULL;

-- +goose Down
DROP TABLE mail_outbox;
DROP TABLE rate_limits;
