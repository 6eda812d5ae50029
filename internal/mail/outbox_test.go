package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/mail/mailtest"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/sqlstore"
)

const outboxMaster = "outbox-test-master-secret-0123456789abcdef"

func newSealer(t *testing.T, master string) *secret.Sealer {
	t.Helper()
	s, err := secret.NewSealer([]byte(master), secret.PurposeMailOutbox)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixture is an outbox on a real store delivering to a real SMTP server,
// with a clock the test moves.
type fixture struct {
	store  *sqlstore.SQLStore
	smtp   *mailtest.Server
	outbox *mail.Outbox
	logs   *logBuffer
	mu     sync.Mutex
	now    time.Time
}

func (f *fixture) Now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func newFixture(t *testing.T, dsn string, o mail.OutboxOptions) *fixture {
	t.Helper()
	f := &fixture{store: testdb.OpenStore(t, dsn), smtp: mailtest.NewServer(t), now: time.Now().UTC()}
	sender, err := mail.NewSMTP(f.smtp.URL(), "Latchkey <no-reply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	var logger = o.Logger
	if logger == nil {
		logger, f.logs = newLogger()
	}
	o.Logger, o.Now = logger, f.Now
	f.outbox = mail.NewOutbox(f.store, newSealer(t, outboxMaster), sender, o)
	return f
}

func msg(to, subject string) mail.Message {
	return mail.Message{To: to, Subject: subject, Text: "Follow https://id.example/reset?token=SECRET-" + subject}
}

func (f *fixture) counts(t *testing.T) (pending, failed int) {
	t.Helper()
	p, fl, err := f.store.MailOutboxCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p, fl
}

func forBackends(t *testing.T, fn func(t *testing.T, dsn func(t *testing.T) string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, func(t *testing.T) string { return testdb.SQLite(t) }) })
	t.Run("postgres", func(t *testing.T) { fn(t, func(t *testing.T) string { return testdb.Postgres(t) }) })
}

// TestOutboxTransactional: an email belongs to its change: rolled back
// with it, sent once it commits, and sealed at rest.
func TestOutboxTransactional(t *testing.T) {
	forBackends(t, func(t *testing.T, dsn func(t *testing.T) string) {
		f := newFixture(t, dsn(t), mail.OutboxOptions{})
		ctx := context.Background()
		boom := errors.New("boom")
		err := f.store.InTx(ctx, func(ctx context.Context) error {
			if err := f.outbox.Enqueue(ctx, mail.KindPasswordReset, msg("gone@example.com", "rolled back")); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if err := f.store.InTx(ctx, func(ctx context.Context) error {
			return f.outbox.Enqueue(ctx, mail.KindPasswordReset, msg("ada@example.com", "committed"))
		}); err != nil {
			t.Fatal(err)
		}
		// At rest the body is sealed: the link is not in the row.
		var body []byte
		if err := f.store.DB().QueryRow(`SELECT body FROM mail_outbox`).Scan(&body); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(body, []byte("SECRET")) || bytes.Contains(body, []byte("committed")) {
			t.Fatal("the outbox row holds the message in clear")
		}
		if n, err := f.outbox.DeliverDue(ctx); err != nil || n != 1 {
			t.Fatalf("DeliverDue = %d, %v; want 1", n, err)
		}
		got := f.smtp.Messages()
		if len(got) != 1 || got[0].Subject != "committed" || !bytes.Contains([]byte(got[0].Text), []byte("SECRET-committed")) {
			t.Fatalf("delivered %+v", got)
		}
		if p, fl := f.counts(t); p != 0 || fl != 0 {
			t.Fatalf("after delivery: %d pending, %d failed; want none (a sent row is deleted)", p, fl)
		}
	})
}

// TestOutboxRetries: temporary failures are retried with a doubling
// backoff; permanent ones, and the last attempt, give up with the reason.
func TestOutboxRetries(t *testing.T) {
	ctx := context.Background()
	enqueue := func(t *testing.T, f *fixture, to string) {
		t.Helper()
		if err := f.outbox.Enqueue(ctx, mail.KindVerifyEmail, msg(to, to)); err != nil {
			t.Fatal(err)
		}
	}
	deliver := func(t *testing.T, f *fixture, want int) {
		t.Helper()
		if n, err := f.outbox.DeliverDue(ctx); err != nil || n != want {
			t.Fatalf("DeliverDue = %d, %v; want %d", n, err, want)
		}
	}
	t.Run("temporary then delivered", func(t *testing.T) {
		f := newFixture(t, testdb.SQLite(t), mail.OutboxOptions{Backoff: time.Minute})
		enqueue(t, f, "ada@example.com")
		f.smtp.SetFailures(2)
		deliver(t, f, 1)       // 451: retry in 1m
		deliver(t, f, 0)       // not due yet
		f.advance(time.Minute) //
		deliver(t, f, 1)       // 451 again: retry in 2m
		f.advance(time.Minute + 59*time.Second)
		deliver(t, f, 0)
		f.advance(time.Second)
		deliver(t, f, 1) // delivered
		if n := len(f.smtp.Messages()); n != 1 {
			t.Fatalf("%d messages delivered, want 1", n)
		}
		if p, fl := f.counts(t); p != 0 || fl != 0 {
			t.Fatalf("%d pending, %d failed", p, fl)
		}
	})
	t.Run("gives up after MaxAttempts with the reason", func(t *testing.T) {
		f := newFixture(t, testdb.SQLite(t), mail.OutboxOptions{Backoff: time.Second, MaxAttempts: 3})
		failed := 0
		f.outbox = mail.NewOutbox(f.store, newSealer(t, outboxMaster), mustSMTP(t, f.smtp), mail.OutboxOptions{
			Backoff: time.Second, MaxAttempts: 3, Now: f.Now, OnFailed: func() { failed++ }})
		enqueue(t, f, "bob@example.com")
		f.smtp.SetFailures(10)
		for range 3 {
			deliver(t, f, 1)
			f.advance(time.Hour)
		}
		deliver(t, f, 0)
		if p, fl := f.counts(t); p != 0 || fl != 1 || failed != 1 {
			t.Fatalf("%d pending, %d failed, OnFailed %d; want 0, 1, 1", p, fl, failed)
		}
		var reason string
		var body []byte
		if err := f.store.DB().QueryRow(`SELECT last_error, body FROM mail_outbox`).Scan(&reason, &body); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains([]byte(reason), []byte("451")) || body != nil {
			t.Fatalf("reason %q, body %d bytes; want the 451 reply and no body", reason, len(body))
		}
	})
	t.Run("a body sealed under another secret is given up at once", func(t *testing.T) {
		f := newFixture(t, testdb.SQLite(t), mail.OutboxOptions{})
		other := mail.NewOutbox(f.store, newSealer(t, "another-master-secret-0123456789abcdefgh"), mustSMTP(t, f.smtp), mail.OutboxOptions{Now: f.Now})
		if err := other.Enqueue(ctx, mail.KindVerifyEmail, msg("eve@example.com", "x")); err != nil {
			t.Fatal(err)
		}
		deliver(t, f, 1)
		if p, fl := f.counts(t); p != 0 || fl != 1 {
			t.Fatalf("%d pending, %d failed", p, fl)
		}
		if f.logs.Count("LATCHKEY_PREVIOUS_SECRETS") == 0 {
			t.Fatalf("the log does not say how to fix it:\n%s", f.logs)
		}
	})
}

func mustSMTP(t *testing.T, s *mailtest.Server) *mail.SMTP {
	t.Helper()
	sender, err := mail.NewSMTP(s.URL(), "Latchkey <no-reply@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	return sender
}

// TestOutboxWorkersShareTheRows: outboxes of several processes on one
// database, running at once, send every email exactly once.
func TestOutboxWorkersShareTheRows(t *testing.T) {
	forBackends(t, func(t *testing.T, dsn func(t *testing.T) string) {
		d := dsn(t)
		smtp := mailtest.NewServer(t)
		const n = 40
		var outboxes []*mail.Outbox
		for range 3 {
			store := testdb.OpenStore(t, d)
			outboxes = append(outboxes, mail.NewOutbox(store, newSealer(t, outboxMaster), mustSMTP(t, smtp),
				mail.OutboxOptions{Poll: 10 * time.Millisecond, Workers: 2, Batch: 2}))
		}
		for i := range n {
			if err := outboxes[i%3].Enqueue(context.Background(), mail.KindVerifyEmail, msg(fmt.Sprintf("u%d@example.com", i), fmt.Sprint("m", i))); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, o := range outboxes {
			wg.Go(func() { o.Run(ctx) })
		}
		for i := range n {
			smtp.Wait(t, fmt.Sprintf("u%d@example.com", i), fmt.Sprint("m", i), 30*time.Second)
		}
		cancel()
		wg.Wait()
		if got := len(smtp.Messages()); got != n {
			t.Fatalf("%d messages delivered for %d emails", got, n)
		}
		store := testdb.OpenStore(t, d)
		if p, f, err := store.MailOutboxCounts(context.Background()); err != nil || p+f != 0 {
			t.Fatalf("left in the outbox: %d pending, %d failed, %v", p, f, err)
		}
	})
}

var _ storage.MailOutbox = (*sqlstore.SQLStore)(nil)
