package storage

import (
	"context"
	"time"
)

// RateLimits is the state of the credential endpoints' rate limits, shared
// by every process on the database so that a limit holds for the cluster.
type RateLimits interface {
	// TakeRate records one event for key under GCRA (a token bucket of
	// window/interval tokens refilled one per interval) in one atomic
	// statement. It reports whether the event was allowed; when it was not,
	// nothing is consumed and wait is how long until one would be.
	TakeRate(ctx context.Context, key string, now time.Time, interval, window time.Duration) (ok bool, wait time.Duration, err error)
	// ResetRate forgets key, restoring its full budget.
	ResetRate(ctx context.Context, key string) error
}

// Mail statuses in the outbox.
const (
	MailPending = "pending"
	MailFailed  = "failed"
)

// OutboxMail is one email in the durable outbox.
type OutboxMail struct {
	ID        string
	Kind      string
	Recipient string
	// Body is the sealed message; nil once the mail was given up on.
	Body          []byte
	Status        string
	Attempts      int
	LastError     string
	CreatedAt     time.Time
	NextAttemptAt time.Time
}

// MailOutbox is the durable queue of outgoing email. An email is enqueued
// in the transaction of the change that causes it (the ctx's), so it is
// sent exactly when that change commits; workers in every process claim
// due rows without blocking each other.
type MailOutbox interface {
	// EnqueueMail adds m (ID, Kind, Recipient, Body, CreatedAt) as pending,
	// due at once.
	EnqueueMail(ctx context.Context, m OutboxMail) error
	// ClaimMail takes up to limit pending emails due at now, skipping rows
	// another worker holds, and makes them due again at now+lease (so a
	// worker that dies mid-send leaves them to another); Attempts counts
	// this claim.
	ClaimMail(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]OutboxMail, error)
	// MailSent deletes a delivered email.
	MailSent(ctx context.Context, id string) error
	// RetryMail makes a claimed email due again at next, recording why it
	// failed.
	RetryMail(ctx context.Context, id string, next time.Time, reason string) error
	// FailMail gives up on an email: its body is dropped, the reason kept
	// until it is pruned at expires.
	FailMail(ctx context.Context, id, reason string, expires time.Time) error
	// MailOutboxCounts reports how many emails are pending and failed.
	MailOutboxCounts(ctx context.Context) (pending, failed int, err error)
}

// Locker runs background jobs once across every process on the database.
type Locker interface {
	// TryExclusive runs fn while holding the lock named job, if no other
	// process holds it, and reports whether fn ran. The lock is released
	// when fn returns, or when the holding process dies.
	TryExclusive(ctx context.Context, job string, fn func(ctx context.Context) error) (ran bool, err error)
}

// The columns holding values sealed under LATCHKEY_SECRET, for Reseal.
// Each row's id is the sealing's associated data.
const (
	SealedSigningKeys = "signing_keys.private_key"
	SealedTOTP        = "factors.secret"
	SealedMail        = "mail_outbox.body"
	SealedClientJWT   = "clients.sealed_secret"
)

// SealedColumns lists every sealed column.
var SealedColumns = []string{SealedSigningKeys, SealedTOTP, SealedMail, SealedClientJWT}

// Resealer rewrites sealed values after a rotation of LATCHKEY_SECRET.
type Resealer interface {
	// Reseal passes every non-NULL value of column (one of SealedColumns)
	// to fn with its row's id and stores what fn returns when it reports a
	// change, in one transaction (ctx's, if any); it reports how many rows
	// changed. An error from fn rolls everything back.
	Reseal(ctx context.Context, column string, fn func(id string, sealed []byte) (out []byte, changed bool, err error)) (int, error)
}
