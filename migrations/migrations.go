// Package migrations holds Latchkey's versioned schema, one folder of goose
// SQL files per dialect, embedded in the binary.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// MigrationStatus is one migration and whether it has been applied. (It
// cannot be called Status: that name is the function.)
type MigrationStatus struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// lockID is the PostgreSQL advisory lock that serialises migrations when
// several Latchkey processes start at once (crc32 of "latchkey").
const lockID = 0x4c4b4d47

func newProvider(db *sql.DB, dialect string) (*goose.Provider, error) {
	var (
		gd   goose.Dialect
		opts = []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	)
	switch dialect {
	case "postgres":
		gd = goose.DialectPostgres
		// A session (advisory) lock rather than a lock table: it dies with
		// the connection, so a crashed process never leaves it held. Probe
		// every second so a process that lost the race starts promptly.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID), lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, fmt.Errorf("migrations: locker: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	case "sqlite":
		// SQLite serialises writers on the file lock; goose's transaction
		// per migration is enough.
		gd = goose.DialectSQLite3
	default:
		return nil, fmt.Errorf("migrations: unknown dialect %q", dialect)
	}
	sub, err := fs.Sub(files, dialect)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(gd, db, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Up applies every pending migration for dialect ("postgres" or "sqlite").
// It is safe to call from several processes at once.
func Up(ctx context.Context, db *sql.DB, dialect string) error {
	p, err := newProvider(db, dialect)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil && !errors.Is(err, goose.ErrNoNextVersion) {
		return fmt.Errorf("migrations: up: %w", err)
	}
	return nil
}

// Status lists every known migration, oldest first, with whether and when
// it was applied.
func Status(ctx context.Context, db *sql.DB, dialect string) ([]MigrationStatus, error) {
	p, err := newProvider(db, dialect)
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: status: %w", err)
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, m := range st {
		s := MigrationStatus{Version: m.Source.Version, Name: baseName(m.Source.Path), Applied: m.State == goose.StateApplied}
		if s.Applied {
			s.AppliedAt = m.AppliedAt.UTC()
		}
		out = append(out, s)
	}
	return out, nil
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
