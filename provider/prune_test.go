package provider_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

// The pruning job drains a backlog larger than one batch in one pass and
// leaves live rows alone.
func TestRunPrunerDrainsBacklogInBatches(t *testing.T) {
	store := testdb.OpenStore(t, testdb.SQLite(t))
	ctx := context.Background()
	if err := store.CreateClient(ctx, &storage.Client{ID: "c", Name: "c", GrantTypes: []string{"authorization_code"}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	add := func(id string, expires time.Time) {
		t.Helper()
		if err := store.CreatePendingAuthorization(ctx, &storage.PendingAuthorization{
			ID: id, ClientID: "c", Form: "x=1", CSRFToken: "h", CreatedAt: now.Add(-time.Hour), ExpiresAt: expires,
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 25 {
		add(fmt.Sprintf("old-%d", i), now.Add(-time.Minute))
	}
	add("live", now.Add(time.Hour))

	counting := &countingPruner{Pruner: store}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		provider.RunPruner(ctx, counting, time.Hour, 10, slog.New(slog.DiscardHandler))
		close(done)
	}()
	// The ticker is an hour: only the first pass can run, and it must
	// drain all 25 rows in batches of 10.
	rows := func() int {
		var n int
		if err := store.DB().QueryRow(`SELECT COUNT(*) FROM pending_authorizations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for rows() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("backlog not drained: %d rows left after %d calls", rows(), counting.calls.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if n := counting.calls.Load(); n < 3 {
		t.Fatalf("drained in %d calls, want batches of at most 10", n)
	}
	if _, err := store.GetPendingAuthorization(context.Background(), "live"); err != nil {
		t.Fatalf("live row pruned: %v", err)
	}
}

type countingPruner struct {
	provider.Pruner
	calls atomic.Int64
}

func (p *countingPruner) PruneExpired(ctx context.Context, now time.Time, batch int) (int64, error) {
	p.calls.Add(1)
	return p.Pruner.PruneExpired(ctx, now, batch)
}
