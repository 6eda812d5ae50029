package main

import (
	"context"
	"time"

	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/storage/sqlstore"
)

// registerStoreMetrics exports the database pool and the outbox depth,
// read at each scrape so they are never stale.
func registerStoreMetrics(m *metrics.Metrics, store *sqlstore.SQLStore) {
	db := store.DB()
	m.GaugeFunc("latchkey_db_pool_in_use", "Database connections in use.", func() float64 { return float64(db.Stats().InUse) })
	m.GaugeFunc("latchkey_db_pool_idle", "Idle database connections.", func() float64 { return float64(db.Stats().Idle) })
	m.GaugeFunc("latchkey_db_pool_max_open", "The pool's connection limit.", func() float64 { return float64(db.Stats().MaxOpenConnections) })
	m.CounterFunc("latchkey_db_pool_wait_total", "Times a request waited for a free database connection.",
		func() float64 { return float64(db.Stats().WaitCount) })
	m.CounterFunc("latchkey_db_pool_wait_seconds_total", "Time spent waiting for free database connections.",
		func() float64 { return db.Stats().WaitDuration.Seconds() })
	// The outbox is shared: every replica reports the whole queue. A
	// scrape during an outage reports -1 rather than hang.
	m.GaugeFunc("latchkey_mail_outbox_pending", "Emails waiting in the durable outbox (all replicas); -1 when it cannot be read.",
		func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			pending, _, err := store.MailOutboxCounts(ctx)
			if err != nil {
				return -1
			}
			return float64(pending)
		})
}
