package mail_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/mail/mailtest"
)

// runQueue starts q.Run and returns a stop function that cancels it and
// waits for Run to return (failing if it takes longer than limit).
func runQueue(t *testing.T, q *mail.Queue, limit time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		q.Run(ctx)
		close(done)
	}()
	var once sync.Once
	stop = func() {
		t.Helper()
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(limit):
				t.Fatalf("Run did not return within %v of cancel", limit)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func msg(i int) mail.Message {
	return mail.Message{
		To:      fmt.Sprintf("user%d@example.com", i),
		Subject: fmt.Sprintf("message %d", i),
		Text:    fmt.Sprintf("secret body with token tok-%d\n", i),
	}
}

// funcSender adapts a function to mail.Sender.
type funcSender func(ctx context.Context, m mail.Message) error

func (f funcSender) Send(ctx context.Context, m mail.Message) error { return f(ctx, m) }

func TestQueueDelivers(t *testing.T) {
	srv := mailtest.NewServer(t)
	s, err := mail.NewSMTP(srv.URL(), testFrom)
	if err != nil {
		t.Fatal(err)
	}
	logger, _ := newLogger()
	q := mail.NewQueue(s, mail.QueueOptions{Logger: logger})
	runQueue(t, q, 5*time.Second)
	for i := range 5 {
		if err := q.Enqueue(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		got := srv.Wait(t, msg(i).To, msg(i).Subject, 5*time.Second)
		if got.Text != msg(i).Text {
			t.Errorf("Text = %q", got.Text)
		}
	}
}

func TestQueueEnqueueDoesNotWaitForStalledServer(t *testing.T) {
	s, err := mail.NewSMTP(stallServer(t), testFrom)
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := newLogger()
	q := mail.NewQueue(s, mail.QueueOptions{Size: 10, Workers: 2, DrainTimeout: 200 * time.Millisecond, Logger: logger})
	stop := runQueue(t, q, 3*time.Second)

	start := time.Now()
	for i := range 10 {
		if err := q.Enqueue(msg(i)); err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("10 Enqueue calls took %v", d)
	}
	time.Sleep(50 * time.Millisecond) // workers are now stuck in Send
	start = time.Now()
	stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run returned %v after cancel; DrainTimeout is 200ms", d)
	}
	if n := logs.Count("dropped undelivered"); n != 10 {
		t.Errorf("%d messages logged as dropped, want 10:\n%s", n, logs)
	}
	if err := q.Enqueue(msg(99)); !errors.Is(err, mail.ErrQueueClosed) {
		t.Errorf("Enqueue after shutdown = %v, want ErrQueueClosed", err)
	}
}

func TestQueueRetriesThenDelivers(t *testing.T) {
	srv := mailtest.NewServer(t)
	srv.SetFailures(2)
	s, err := mail.NewSMTP(srv.URL(), testFrom)
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := newLogger()
	q := mail.NewQueue(s, mail.QueueOptions{Backoff: 20 * time.Millisecond, Logger: logger})
	runQueue(t, q, 5*time.Second)

	start := time.Now()
	m := msg(1)
	if err := q.Enqueue(m); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, m.To, m.Subject, 5*time.Second)
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("delivered after %v; backoff 20ms+40ms was not honored", d)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages delivered, want 1", n)
	}
	time.Sleep(20 * time.Millisecond) // let the success log line be written
	out := logs.String()
	if n := logs.Count("will retry"); n != 2 {
		t.Errorf("%d retry log lines, want 2:\n%s", n, out)
	}
	if logs.Count("delivered after retrying") != 1 || logs.Count("to="+m.To) != 3 || logs.Count(`subject="`+m.Subject+`"`) != 3 {
		t.Errorf("log lines lack recipient or subject:\n%s", out)
	}
	if logs.Count("tok-1") != 0 || logs.Count("secret body") != 0 {
		t.Errorf("log contains the message body:\n%s", out)
	}
}

func TestQueueGivesUpAfterRetries(t *testing.T) {
	srv := mailtest.NewServer(t)
	srv.SetFailures(100)
	s, err := mail.NewSMTP(srv.URL(), testFrom)
	if err != nil {
		t.Fatal(err)
	}
	logger, logs := newLogger()
	q := mail.NewQueue(s, mail.QueueOptions{Retries: 2, Backoff: 5 * time.Millisecond, Logger: logger})
	runQueue(t, q, 5*time.Second)
	if err := q.Enqueue(msg(1)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for logs.Count("giving up") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if logs.Count("level=ERROR") != 1 || logs.Count("giving up") != 1 || logs.Count("attempts=3") != 1 {
		t.Fatalf("want one Error line after 3 attempts:\n%s", logs)
	}
	if logs.Count("will retry") != 2 {
		t.Errorf("want 2 retries:\n%s", logs)
	}
	if logs.Count("tok-1") != 0 {
		t.Errorf("log contains the message body:\n%s", logs)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages delivered", n)
	}
}

func TestQueueDoesNotRetryPermanentFailures(t *testing.T) {
	var calls atomic.Int32
	s := funcSender(func(context.Context, mail.Message) error {
		calls.Add(1)
		return fmt.Errorf("550 no such user: %w", mail.ErrPermanent)
	})
	logger, logs := newLogger()
	q := mail.NewQueue(s, mail.QueueOptions{Backoff: time.Millisecond, Logger: logger})
	stop := runQueue(t, q, 5*time.Second)
	if err := q.Enqueue(msg(1)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for logs.Count("failed permanently") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if n := calls.Load(); n != 1 {
		t.Errorf("Send called %d times, want 1", n)
	}
	if logs.Count("level=ERROR") != 1 {
		t.Errorf("want one Error line:\n%s", logs)
	}
}

func TestQueueFull(t *testing.T) {
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	var sent atomic.Int32
	s := funcSender(func(ctx context.Context, m mail.Message) error {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		sent.Add(1)
		return nil
	})
	logger, _ := newLogger()
	q := mail.NewQueue(s, mail.QueueOptions{Size: 2, Workers: 1, Logger: logger})
	stop := runQueue(t, q, 5*time.Second)

	if err := q.Enqueue(msg(0)); err != nil {
		t.Fatal(err)
	}
	<-started // the worker holds message 0 and is blocked
	for i := 1; i <= 2; i++ {
		if err := q.Enqueue(msg(i)); err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
	}
	start := time.Now()
	if err := q.Enqueue(msg(3)); !errors.Is(err, mail.ErrQueueFull) {
		t.Fatalf("Enqueue beyond Size = %v, want ErrQueueFull", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("Enqueue on a full queue took %v", d)
	}
	close(release)
	stop()
	if n := sent.Load(); n != 3 {
		t.Errorf("%d messages sent, want 3", n)
	}
}

func TestQueueFullBeforeRun(t *testing.T) {
	q := mail.NewQueue(funcSender(func(context.Context, mail.Message) error { return nil }), mail.QueueOptions{Size: 3})
	for i := range 3 {
		if err := q.Enqueue(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Enqueue(msg(3)); !errors.Is(err, mail.ErrQueueFull) {
		t.Fatalf("Enqueue = %v, want ErrQueueFull", err)
	}
}

func TestQueueDrainsOnCancel(t *testing.T) {
	srv := mailtest.NewServer(t)
	s, err := mail.NewSMTP(srv.URL(), testFrom)
	if err != nil {
		t.Fatal(err)
	}
	slow := funcSender(func(ctx context.Context, m mail.Message) error {
		time.Sleep(10 * time.Millisecond)
		return s.Send(ctx, m)
	})
	logger, logs := newLogger()
	q := mail.NewQueue(slow, mail.QueueOptions{Workers: 1, Logger: logger})
	for i := range 20 {
		if err := q.Enqueue(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	stop := runQueue(t, q, 5*time.Second)
	stop() // immediately: nearly everything is still queued
	if n := len(srv.Messages()); n != 20 {
		t.Fatalf("%d of 20 messages delivered after Run returned:\n%s", n, logs)
	}
	if err := q.Enqueue(msg(20)); !errors.Is(err, mail.ErrQueueClosed) {
		t.Errorf("Enqueue after shutdown = %v, want ErrQueueClosed", err)
	}
}

func TestQueueShutdownCutsBackoffShort(t *testing.T) {
	var calls atomic.Int32
	s := funcSender(func(context.Context, mail.Message) error {
		if calls.Add(1) == 1 {
			return errors.New("421 try again later")
		}
		return nil
	})
	logger, logs := newLogger()
	q := mail.NewQueue(s, mail.QueueOptions{Backoff: time.Hour, Logger: logger})
	stop := runQueue(t, q, 5*time.Second)
	if err := q.Enqueue(msg(1)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for logs.Count("will retry") == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stop() // the hour-long backoff must not delay shutdown; the retry happens in the drain
	if n := calls.Load(); n != 2 {
		t.Errorf("Send called %d times, want 2 (the retry during the drain)", n)
	}
	if logs.Count("delivered after retrying") != 1 {
		t.Errorf("no delivery after retrying:\n%s", logs)
	}
}

func TestQueueDrainTimeout(t *testing.T) {
	s := funcSender(func(ctx context.Context, m mail.Message) error {
		<-ctx.Done() // a server that never answers
		return ctx.Err()
	})
	logger, logs := newLogger()
	q := mail.NewQueue(s, mail.QueueOptions{Workers: 1, DrainTimeout: 100 * time.Millisecond, Logger: logger})
	for i := range 3 {
		if err := q.Enqueue(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	stop := runQueue(t, q, 2*time.Second)
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	stop()
	if d := time.Since(start); d < 100*time.Millisecond || d > time.Second {
		t.Errorf("Run returned %v after cancel, want about DrainTimeout (100ms)", d)
	}
	if n := logs.Count("dropped undelivered"); n != 3 {
		t.Errorf("%d messages logged as dropped, want 3:\n%s", n, logs)
	}
}

func TestQueueNegativeDrainTimeoutDropsImmediately(t *testing.T) {
	var calls atomic.Int32
	s := funcSender(func(context.Context, mail.Message) error { calls.Add(1); return nil })
	logger, logs := newLogger()
	q := mail.NewQueue(s, mail.QueueOptions{DrainTimeout: -1, Logger: logger})
	for i := range 3 {
		if err := q.Enqueue(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.Run(ctx)
	if n := calls.Load() + int32(logs.Count("dropped undelivered")); n != 3 {
		t.Errorf("sent+dropped = %d, want 3:\n%s", n, logs)
	}
}
