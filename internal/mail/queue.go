package mail

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrQueueFull is returned by Queue.Enqueue when the buffer is full; the
	// message was not queued.
	ErrQueueFull = errors.New("mail: queue is full")
	// ErrQueueClosed is returned by Queue.Enqueue once Run's context is done;
	// the message was not queued.
	ErrQueueClosed = errors.New("mail: queue is shut down")
)

// Queue defaults.
const (
	DefaultQueueSize    = 100
	DefaultWorkers      = 2
	DefaultRetries      = 5
	DefaultBackoff      = 2 * time.Second
	DefaultDrainTimeout = 5 * time.Second

	maxBackoff = 5 * time.Minute
)

// QueueOptions configures a Queue. Zero values take the defaults.
type QueueOptions struct {
	// Size is the number of messages buffered before Enqueue fails with
	// ErrQueueFull (default 100).
	Size int
	// Workers is the number of concurrent deliveries (default 2).
	Workers int
	// Retries is the number of retries after a failed Send (default 5);
	// negative means none.
	Retries int
	// Backoff is the wait before the first retry (default 2s); it doubles for
	// every further retry.
	Backoff time.Duration
	// DrainTimeout bounds delivering what is still queued once Run's context
	// is done (default 5s); negative means drop it immediately.
	DrainTimeout time.Duration
	// Logger receives delivery failures (default slog.Default()). Only the
	// recipient and subject are logged, never the body: it contains tokens.
	Logger *slog.Logger
}

// Queue sends mail asynchronously, so a request never waits on the mail
// server. Enqueue messages from request handlers; Run delivers them.
type Queue struct {
	s   Sender
	o   QueueOptions
	log *slog.Logger
	ch  chan Message

	mu     sync.Mutex // orders Enqueue against shutdown
	closed bool

	started atomic.Bool
}

// NewQueue returns a queue delivering through s. Call Run to start delivery;
// messages enqueued before that wait in the buffer.
func NewQueue(s Sender, o QueueOptions) *Queue {
	if o.Size <= 0 {
		o.Size = DefaultQueueSize
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Queue{s: s, o: o, log: o.Logger, ch: make(chan Message, o.Size)}
}

// Enqueue queues m for delivery. It never blocks: it returns ErrQueueFull
// when the buffer is full and ErrQueueClosed after shutdown began; the caller
// should log the failure.
func (q *Queue) Enqueue(m Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrQueueClosed
	}
	select {
	case q.ch <- m:
		return nil
	default:
		return ErrQueueFull
	}
}

func (q *Queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// Run delivers queued messages with Workers concurrent senders until ctx is
// done. A failed Send is retried with exponential backoff, logged at Warn
// each time; after the last retry, or on a permanent failure (ErrPermanent),
// the message is logged at Error and dropped.
//
// When ctx is done, Enqueue starts failing with ErrQueueClosed and Run keeps
// delivering what is queued (including messages waiting for a retry) for up to
// DrainTimeout; whatever is left then is logged at Error and dropped. Run
// returns after that. Call Run once.
func (q *Queue) Run(ctx context.Context) {
	if !q.started.CompareAndSwap(false, true) {
		q.log.Error("mail queue: Run called more than once; ignoring")
		return
	}
	// Sends use drainCtx, which ends DrainTimeout after ctx: ctx itself never
	// interrupts a conversation with the server (which could deliver a message
	// and still report failure).
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()
	var drainTimer atomic.Pointer[time.Timer]
	stop := context.AfterFunc(ctx, func() {
		q.close()
		if q.o.DrainTimeout < 0 {
			cancelDrain()
			return
		}
		drainTimer.Store(time.AfterFunc(q.o.DrainTimeout, cancelDrain))
	})
	defer func() {
		stop()
		if t := drainTimer.Load(); t != nil {
			t.Stop()
		}
	}()

	var wg sync.WaitGroup
	for range q.o.Workers {
		wg.Go(func() { q.work(ctx, drainCtx) })
	}
	wg.Wait()

	// Drain timed out: report what is left.
	for {
		select {
		case m := <-q.ch:
			q.log.Error("mail queue: shutting down; message dropped undelivered",
				slog.String("to", m.To), slog.String("subject", m.Subject))
		default:
			return
		}
	}
}

func (q *Queue) work(ctx, drainCtx context.Context) {
	for {
		select {
		case m := <-q.ch:
			q.deliver(ctx, drainCtx, m)
		case <-ctx.Done():
			for drainCtx.Err() == nil {
				select {
				case m := <-q.ch:
					q.deliver(ctx, drainCtx, m)
				default:
					return
				}
			}
			return
		}
	}
}

func (q *Queue) deliver(ctx, drainCtx context.Context, m Message) {
	attrs := func(extra ...any) []any {
		return append([]any{slog.String("to", m.To), slog.String("subject", m.Subject)}, extra...)
	}
	backoff := q.o.Backoff
	for attempt := 1; ; attempt++ {
		if drainCtx.Err() != nil {
			q.log.Error("mail queue: shutting down; message dropped undelivered",
				attrs(slog.Int("attempts", attempt-1))...)
			return
		}
		err := q.s.Send(drainCtx, m)
		if err == nil {
			if attempt > 1 {
				q.log.Info("mail queue: message delivered after retrying", attrs(slog.Int("attempts", attempt))...)
			} else {
				q.log.Debug("mail queue: message delivered", attrs()...)
			}
			return
		}
		switch {
		case errors.Is(err, ErrPermanent):
			q.log.Error("mail queue: delivery failed permanently; message dropped",
				attrs(slog.Int("attempts", attempt), slog.Any("error", err))...)
			return
		case attempt > q.o.Retries:
			q.log.Error("mail queue: delivery failed; giving up, message dropped",
				attrs(slog.Int("attempts", attempt), slog.Any("error", err))...)
			return
		}
		q.log.Warn("mail queue: delivery failed; will retry",
			attrs(slog.Int("attempt", attempt), slog.Duration("retry_in", backoff), slog.Any("error", err))...)

		// Wait for the backoff. If shutdown begins meanwhile, retry right
		// away (within the drain time); during shutdown, wait normally but no
		// longer than the drain time.
		var stopping <-chan struct{}
		if ctx.Err() == nil {
			stopping = ctx.Done()
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-stopping:
		case <-drainCtx.Done():
		}
		t.Stop()
		backoff = min(backoff*2, maxBackoff)
	}
}
