package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey/storage"
)

var (
	_ storage.RateLimits = (*SQLStore)(nil)
	_ storage.MailOutbox = (*SQLStore)(nil)
	_ storage.Locker     = (*SQLStore)(nil)
)

// TakeRate is GCRA in one upsert: the new theoretical arrival time is
// max(tat, now) + interval, allowed when it lies at most window ahead of
// now. A refused event leaves tat as it was; allowed says which happened,
// since RETURNING sees only the new row.
func (s *SQLStore) TakeRate(ctx context.Context, key string, now time.Time, interval, window time.Duration) (bool, time.Duration, error) {
	greatest := "GREATEST"
	if s.dialect == DialectSQLite {
		greatest = "MAX"
	}
	n, iv, win := now.UnixNano(), int64(interval), int64(window)
	next := greatest + `(r.tat, CAST(? AS BIGINT)) + CAST(? AS BIGINT)`
	fits := next + ` - CAST(? AS BIGINT) <= CAST(? AS BIGINT)`
	q := `INSERT INTO rate_limits AS r (key, tat, allowed) VALUES (?, CAST(? AS BIGINT), ?)
ON CONFLICT (key) DO UPDATE SET
  allowed = ` + fits + `,
  tat = CASE WHEN ` + fits + ` THEN ` + next + ` ELSE r.tat END
RETURNING tat, allowed`
	args := []any{key, n + iv, iv <= win,
		n, iv, n, win, // allowed
		n, iv, n, win, // the CASE's condition
		n, iv} // the new tat
	var (
		tat     int64
		allowed bool
	)
	if err := s.queryRow(ctx, q, args...).Scan(&tat, &allowed); err != nil {
		return false, 0, fmt.Errorf("storage: rate limit: %w", s.mapErr(err))
	}
	if allowed {
		return true, 0, nil
	}
	return false, time.Duration(tat + iv - n - win), nil
}

// ResetRate deletes key's row.
func (s *SQLStore) ResetRate(ctx context.Context, key string) error {
	if _, err := s.exec(ctx, `DELETE FROM rate_limits WHERE key = ?`, key); err != nil {
		return fmt.Errorf("storage: reset rate limit: %w", s.mapErr(err))
	}
	return nil
}

// pruneRateLimits deletes up to batch rows whose bucket is full again.
func (s *SQLStore) pruneRateLimits(ctx context.Context, now time.Time, batch int) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits WHERE tat < ? LIMIT ?)`,
		now.UnixNano(), batch)
	if err != nil {
		return 0, fmt.Errorf("storage: prune rate_limits: %w", s.mapErr(err))
	}
	return res.RowsAffected()
}

// EnqueueMail inserts m as pending, in ctx's transaction if there is one.
func (s *SQLStore) EnqueueMail(ctx context.Context, m storage.OutboxMail) error {
	_, err := s.exec(ctx, `INSERT INTO mail_outbox (id, kind, recipient, body, status, attempts, last_error, created_at, next_attempt_at)
VALUES (?, ?, ?, ?, ?, 0, '', ?, ?)`, m.ID, m.Kind, m.Recipient, m.Body, storage.MailPending, s.ts(m.CreatedAt), s.ts(m.CreatedAt))
	if err != nil {
		return fmt.Errorf("storage: enqueue mail: %w", s.mapErr(err))
	}
	return nil
}

// ClaimMail leases due rows in one statement. On PostgreSQL the inner
// SELECT locks the rows it picks and skips rows another worker has locked,
// so concurrent workers never take the same email; SQLite has one writer
// at a time, which gives the same.
func (s *SQLStore) ClaimMail(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]storage.OutboxMail, error) {
	lock := ""
	if s.dialect == DialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	rows, err := s.query(ctx, `UPDATE mail_outbox SET next_attempt_at = ?, attempts = attempts + 1
WHERE id IN (SELECT id FROM mail_outbox WHERE status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`+lock+`)
RETURNING id, kind, recipient, body, status, attempts, last_error, created_at, next_attempt_at`,
		s.ts(now.Add(lease)), storage.MailPending, s.ts(now), limit)
	if err != nil {
		return nil, fmt.Errorf("storage: claim mail: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.OutboxMail
	for rows.Next() {
		var m storage.OutboxMail
		if err := rows.Scan(&m.ID, &m.Kind, &m.Recipient, &m.Body, &m.Status, &m.Attempts, &m.LastError,
			timeDest{&m.CreatedAt}, timeDest{&m.NextAttemptAt}); err != nil {
			return nil, fmt.Errorf("storage: claim mail: %w", s.mapErr(err))
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: claim mail: %w", s.mapErr(err))
	}
	// RETURNING has no order: oldest first, as they were picked.
	slices.SortFunc(out, func(a, b storage.OutboxMail) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// MailSent deletes a delivered email: its body holds live links.
func (s *SQLStore) MailSent(ctx context.Context, id string) error {
	if _, err := s.exec(ctx, `DELETE FROM mail_outbox WHERE id = ?`, id); err != nil {
		return fmt.Errorf("storage: mail sent: %w", s.mapErr(err))
	}
	return nil
}

// RetryMail makes an email due again at next.
func (s *SQLStore) RetryMail(ctx context.Context, id string, next time.Time, reason string) error {
	res, err := s.exec(ctx, `UPDATE mail_outbox SET next_attempt_at = ?, last_error = ? WHERE id = ? AND status = ?`,
		s.ts(next), reason, id, storage.MailPending)
	if err != nil {
		return fmt.Errorf("storage: retry mail: %w", s.mapErr(err))
	}
	return foundRow(res)
}

// FailMail gives up on an email, dropping its body.
func (s *SQLStore) FailMail(ctx context.Context, id, reason string, expires time.Time) error {
	res, err := s.exec(ctx, `UPDATE mail_outbox SET status = ?, body = NULL, last_error = ?, expires_at = ? WHERE id = ?`,
		storage.MailFailed, reason, s.ts(expires), id)
	if err != nil {
		return fmt.Errorf("storage: fail mail: %w", s.mapErr(err))
	}
	return foundRow(res)
}

// foundRow is ErrNotFound when a write touched no row.
func foundRow(res sql.Result) error {
	ok, err := affected(res)
	if err != nil {
		return err
	}
	if !ok {
		return storage.ErrNotFound
	}
	return nil
}

// MailOutboxCounts counts pending and failed emails.
func (s *SQLStore) MailOutboxCounts(ctx context.Context) (pending, failed int, err error) {
	err = s.queryRow(ctx, `SELECT
  COALESCE(SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), 0),
  COALESCE(SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), 0)
FROM mail_outbox`, storage.MailPending, storage.MailFailed).Scan(&pending, &failed)
	if err != nil {
		return 0, 0, fmt.Errorf("storage: count mail: %w", s.mapErr(err))
	}
	return pending, failed, nil
}

// TryExclusive holds a PostgreSQL session advisory lock on a connection of
// its own while fn runs: the lock goes with the connection, so a process
// that dies releases it and another takes the job over. A SQLite database
// belongs to one process, where an in-process lock is the same.
func (s *SQLStore) TryExclusive(ctx context.Context, job string, fn func(ctx context.Context) error) (bool, error) {
	if s.dialect != DialectPostgres {
		mu := s.jobLock(job)
		if !mu.TryLock() {
			return false, nil
		}
		defer mu.Unlock()
		return true, fn(ctx)
	}
	key := jobLockKey(job)
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return false, fmt.Errorf("storage: lock %s: %w", job, s.mapErr(err))
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowxContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return false, fmt.Errorf("storage: lock %s: %w", job, s.mapErr(err))
	}
	if !got {
		return false, nil
	}
	defer func() {
		// Unlock even when ctx is done; if that fails the connection is
		// closed below, which releases the lock too.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			// Returning ErrBadConn from Raw discards the connection.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return true, fn(ctx)
}

// jobLockKey is the advisory lock id of a job: 64 bits of FNV-1a of its
// name in a namespace of Latchkey's own ("latchkey job ").
func jobLockKey(job string) int64 {
	h := fnv.New64a()
	h.Write([]byte("latchkey job " + job))
	return int64(h.Sum64())
}

func (s *SQLStore) jobLock(job string) *sync.Mutex {
	s.jobsMu.Lock()
	defer s.jobsMu.Unlock()
	if s.jobs == nil {
		s.jobs = make(map[string]*sync.Mutex)
	}
	mu := s.jobs[job]
	if mu == nil {
		mu = new(sync.Mutex)
		s.jobs[job] = mu
	}
	return mu
}

var _ storage.Resealer = (*SQLStore)(nil)

// Reseal reads the column's rows (locked against concurrent writers on
// PostgreSQL) and writes back the changed ones, in one transaction.
func (s *SQLStore) Reseal(ctx context.Context, column string, fn func(id string, sealed []byte) ([]byte, bool, error)) (int, error) {
	table, col, ok := strings.Cut(column, ".")
	if !ok || !slices.Contains(storage.SealedColumns, column) {
		return 0, fmt.Errorf("storage: reseal: unknown column %q", column)
	}
	lock := ""
	if s.dialect == DialectPostgres {
		lock = " FOR UPDATE"
	}
	changed := 0
	err := s.InTx(ctx, func(ctx context.Context) error {
		type row struct {
			id     string
			sealed []byte
		}
		var rows []row
		q, err := s.query(ctx, `SELECT id, `+col+` FROM `+table+` WHERE `+col+` IS NOT NULL ORDER BY id`+lock)
		if err != nil {
			return s.mapErr(err)
		}
		for q.Next() {
			var r row
			if err := q.Scan(&r.id, &r.sealed); err != nil {
				q.Close()
				return s.mapErr(err)
			}
			rows = append(rows, r)
		}
		q.Close()
		if err := q.Err(); err != nil {
			return s.mapErr(err)
		}
		for _, r := range rows {
			out, ch, err := fn(r.id, r.sealed)
			if err != nil {
				return fmt.Errorf("%s %s: %w", table, r.id, err)
			}
			if !ch {
				continue
			}
			if _, err := s.exec(ctx, `UPDATE `+table+` SET `+col+` = ? WHERE id = ?`, out, r.id); err != nil {
				return s.mapErr(err)
			}
			changed++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("storage: reseal %s: %w", column, err)
	}
	return changed, nil
}
