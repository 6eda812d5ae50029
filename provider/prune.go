package provider

import (
	"context"
	"log/slog"
	"time"
)

// Pruner is the part of the store the pruning job needs.
type Pruner interface {
	PruneExpired(ctx context.Context, now time.Time, batch int) (int64, error)
	// TryExclusive runs fn unless another process holds the job's lock
	// (a PostgreSQL advisory lock), so N replicas prune once per tick.
	TryExclusive(ctx context.Context, job string, fn func(ctx context.Context) error) (bool, error)
}

// RunPruner deletes expired codes, tokens, sessions and pending
// authorizations every `every`, in batches of `batch` rows per table so no
// single statement holds locks for long; while a batch comes back full it
// goes on at once (up to a bound), so a backlog drains without waiting for
// the next tick. It returns when ctx ends.
func RunPruner(ctx context.Context, store Pruner, every time.Duration, batch int, log *slog.Logger) {
	if every <= 0 || batch <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	prune := func(ctx context.Context) error {
		for range 100 {
			n, err := store.PruneExpired(ctx, time.Now().UTC(), batch)
			if err != nil {
				return err
			}
			if n > 0 {
				log.Debug("pruned expired rows", "rows", n)
			}
			if n < int64(batch) {
				break
			}
		}
		return nil
	}
	for {
		// Another replica pruning now is as good as pruning here; one
		// that died released its lock with its connection.
		if _, err := store.TryExclusive(ctx, "prune", prune); err != nil && ctx.Err() == nil {
			log.Warn("pruning expired rows", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
