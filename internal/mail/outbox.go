package mail

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/storage"
)

// OutboxStore keeps the outbox's rows (storage.MailOutbox).
type OutboxStore interface {
	EnqueueMail(ctx context.Context, m storage.OutboxMail) error
	ClaimMail(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]storage.OutboxMail, error)
	MailSent(ctx context.Context, id string) error
	RetryMail(ctx context.Context, id string, next time.Time, reason string) error
	FailMail(ctx context.Context, id, reason string, expires time.Time) error
}

// BodySealer encrypts message bodies at rest (secret.Sealer): they hold
// sign-in and reset links.
type BodySealer interface {
	Seal(rnd io.Reader, aad string, plaintext []byte) ([]byte, error)
	Open(aad string, sealed []byte) ([]byte, error)
}

// Outbox defaults.
const (
	DefaultOutboxWorkers = 2
	DefaultOutboxBatch   = 5
	DefaultOutboxPoll    = time.Second
	DefaultOutboxLease   = 30 * time.Second
	DefaultMaxAttempts   = 8
	DefaultOutboxBackoff = 5 * time.Second
	DefaultKeepFailed    = 30 * 24 * time.Hour
	maxOutboxBackoff     = 30 * time.Minute
	maxReasonLen         = 500
)

// OutboxOptions configures an Outbox. Zero values take the defaults.
type OutboxOptions struct {
	// Workers is the number of concurrent deliveries in this process.
	Workers int
	// Batch is how many emails a worker claims at a time.
	Batch int
	// Poll is how often an idle worker looks for due emails (other
	// processes' emails, retries); an email enqueued here wakes the
	// workers at once.
	Poll time.Duration
	// Lease is how long a claimed email is reserved for its worker; a
	// worker that dies leaves it due again after that. A send is cut off
	// at half of it, so a slow send never outlives its lease.
	Lease time.Duration
	// MaxAttempts bounds deliveries; after the last the email is given up
	// with the reason recorded.
	MaxAttempts int
	// Backoff is the wait before the first retry, doubling for each
	// further one (at most 30 minutes).
	Backoff time.Duration
	// KeepFailed is how long an email given up on stays (without its
	// body) for an operator to see why.
	KeepFailed time.Duration
	Logger     *slog.Logger
	// OnSent and OnFailed are called per email delivered or given up on
	// (metrics).
	OnSent, OnFailed func()
	// Now is the clock (tests).
	Now func() time.Time
}

// Outbox is the durable mail queue: Enqueue writes an email as a row in
// the caller's transaction, and Run's workers, in every process on the
// database, claim due rows and send them. A committed email survives a
// crash of the process that wrote it; a rolled-back one is never sent. A
// worker that dies after sending but before recording it makes the email
// go out again after the lease: delivery is at least once, and exactly
// once unless a process dies in that window.
type Outbox struct {
	store  OutboxStore
	sealer BodySealer
	sender Sender
	o      OutboxOptions
	log    *slog.Logger
	kick   chan struct{}
}

// NewOutbox returns an outbox keeping rows in store, bodies sealed by
// sealer, delivering through sender.
func NewOutbox(store OutboxStore, sealer BodySealer, sender Sender, o OutboxOptions) *Outbox {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Workers, DefaultOutboxWorkers)
	def(&o.Batch, DefaultOutboxBatch)
	def(&o.MaxAttempts, DefaultMaxAttempts)
	defDur(&o.Poll, DefaultOutboxPoll)
	defDur(&o.Lease, DefaultOutboxLease)
	defDur(&o.Backoff, DefaultOutboxBackoff)
	defDur(&o.KeepFailed, DefaultKeepFailed)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Outbox{store: store, sealer: sealer, sender: sender, o: o, log: o.Logger, kick: make(chan struct{}, 1)}
}

// body is what is sealed: everything of the message but the recipient.
type body struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html,omitempty"`
}

// Enqueue writes m to the outbox in ctx's transaction, so it is sent if
// and only if that transaction commits, and wakes the workers.
func (o *Outbox) Enqueue(ctx context.Context, kind Kind, m Message) error {
	plain, err := json.Marshal(body{Subject: m.Subject, Text: m.Text, HTML: m.HTML})
	if err != nil {
		return fmt.Errorf("mail outbox: %w", err)
	}
	id := "m_" + secret.Token(16)
	sealed, err := o.sealer.Seal(rand.Reader, id, plain)
	if err != nil {
		return fmt.Errorf("mail outbox: %w", err)
	}
	row := storage.OutboxMail{ID: id, Kind: string(kind), Recipient: m.To, Body: sealed, CreatedAt: o.o.Now().UTC()}
	if err := o.store.EnqueueMail(ctx, row); err != nil {
		return fmt.Errorf("mail outbox: %w", err)
	}
	select {
	case o.kick <- struct{}{}:
	default:
	}
	return nil
}

// Run delivers due emails with Workers workers until ctx is done. A send
// under way when ctx ends is finished (within its timeout), not cut off:
// cutting an SMTP conversation can deliver a message and still report
// failure. What is left stays in the outbox for the next start or another
// process.
func (o *Outbox) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range o.o.Workers {
		wg.Go(func() { o.work(ctx) })
	}
	wg.Wait()
}

func (o *Outbox) work(ctx context.Context) {
	t := time.NewTicker(o.o.Poll)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			n, err := o.DeliverDue(ctx)
			if err != nil {
				if ctx.Err() == nil {
					o.log.Warn("mail outbox: claiming emails", "err", err)
				}
				break
			}
			if n < o.o.Batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-o.kick:
			// The enqueuing transaction may not have committed yet; the
			// next poll finds the row if this claim does not.
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		case <-t.C:
		}
	}
}

// DeliverDue claims up to Batch due emails and delivers them, reporting
// how many it claimed. Run calls it; tests and tools may too.
func (o *Outbox) DeliverDue(ctx context.Context) (int, error) {
	rows, err := o.store.ClaimMail(ctx, o.o.Now().UTC(), o.o.Batch, o.o.Lease)
	if err != nil {
		return 0, fmt.Errorf("mail outbox: %w", err)
	}
	for _, m := range rows {
		o.deliver(context.WithoutCancel(ctx), m)
	}
	return len(rows), nil
}

func (o *Outbox) deliver(ctx context.Context, row storage.OutboxMail) {
	attrs := []any{slog.String("id", row.ID), slog.String("kind", row.Kind), slog.String("to", row.Recipient),
		slog.Int("attempt", row.Attempts)}
	plain, err := o.sealer.Open(row.ID, row.Body)
	if err != nil {
		// Sealed under a secret this process no longer has: no retry helps.
		o.fail(ctx, row, attrs, fmt.Errorf("cannot open the sealed message (was LATCHKEY_SECRET changed without LATCHKEY_PREVIOUS_SECRETS?): %w", err))
		return
	}
	var b body
	if err := json.Unmarshal(plain, &b); err != nil {
		o.fail(ctx, row, attrs, fmt.Errorf("decoding the message: %w", err))
		return
	}
	sendCtx, cancel := context.WithTimeout(ctx, o.o.Lease/2)
	err = o.sender.Send(sendCtx, Message{To: row.Recipient, Subject: b.Subject, Text: b.Text, HTML: b.HTML})
	cancel()
	switch {
	case err == nil:
		if err := o.store.MailSent(ctx, row.ID); err != nil {
			// It will go out again after the lease; say so.
			o.log.Error("mail outbox: sent, but recording it failed; it may be sent twice", append(attrs, "err", err)...)
		}
		if o.o.OnSent != nil {
			o.o.OnSent()
		}
		o.log.Debug("mail outbox: sent", attrs...)
	case errors.Is(err, ErrPermanent) || row.Attempts >= o.o.MaxAttempts:
		o.fail(ctx, row, attrs, err)
	default:
		wait := o.o.Backoff << min(row.Attempts-1, 20)
		wait = min(wait, maxOutboxBackoff)
		next := o.o.Now().UTC().Add(wait)
		o.log.Warn("mail outbox: delivery failed; will retry", append(attrs, "retry_in", wait, "err", err)...)
		if err := o.store.RetryMail(ctx, row.ID, next, reason(err)); err != nil {
			o.log.Warn("mail outbox: scheduling a retry (it stays due after its lease)", append(attrs, "err", err)...)
		}
	}
}

func (o *Outbox) fail(ctx context.Context, row storage.OutboxMail, attrs []any, cause error) {
	o.log.Error("mail outbox: giving up on an email", append(attrs, "err", cause)...)
	if err := o.store.FailMail(ctx, row.ID, reason(cause), o.o.Now().UTC().Add(o.o.KeepFailed)); err != nil {
		o.log.Warn("mail outbox: recording a failure", append(attrs, "err", err)...)
	}
	if o.o.OnFailed != nil {
		o.o.OnFailed()
	}
}

// reason is an error as kept in the outbox: bounded, and never the body
// (errors from senders name the server's reply, not the message).
func reason(err error) string {
	s := err.Error()
	if len(s) > maxReasonLen {
		s = s[:maxReasonLen]
	}
	return s
}
