package migrations_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/migrations"
	"github.com/latchkey/latchkey/storage/sqlstore"
)

func TestStatusRoundTrip(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": testdb.SQLite, "postgres": testdb.Postgres} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st, err := sqlstore.Open(ctx, dsn(t))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()

			before, err := migrations.Status(ctx, st.DB(), st.Dialect())
			if err != nil {
				t.Fatal(err)
			}
			if len(before) == 0 {
				t.Fatal("no migrations embedded")
			}
			for _, s := range before {
				if s.Applied || !s.AppliedAt.IsZero() {
					t.Errorf("fresh database: %+v applied", s)
				}
			}
			start := time.Now().Add(-time.Minute)
			if err := migrations.Up(ctx, st.DB(), st.Dialect()); err != nil {
				t.Fatal(err)
			}
			// Up is idempotent.
			if err := migrations.Up(ctx, st.DB(), st.Dialect()); err != nil {
				t.Fatalf("second Up: %v", err)
			}
			after, err := migrations.Status(ctx, st.DB(), st.Dialect())
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Fatalf("status: %d migrations, then %d", len(before), len(after))
			}
			for i, s := range after {
				if s.Version != before[i].Version || s.Name != before[i].Name {
					t.Errorf("migration %d: %+v then %+v", i, before[i], s)
				}
				if !s.Applied || s.AppliedAt.Before(start) || s.AppliedAt.After(time.Now().Add(time.Minute)) {
					t.Errorf("after Up: %+v", s)
				}
			}
			if after[0].Version != 1 || after[0].Name != "00001_init.sql" {
				t.Errorf("first migration = %+v", after[0])
			}
		})
	}
}

// Several processes starting at once must not trip over each other: the
// PostgreSQL session lock serialises them.
func TestConcurrentUpPostgres(t *testing.T) {
	dsn := testdb.Postgres(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := sql.Open("postgres", dsn)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			errs[i] = migrations.Up(ctx, db, "postgres")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Up #%d: %v", i, err)
		}
	}
}

func TestUnknownDialect(t *testing.T) {
	if err := migrations.Up(context.Background(), nil, "oracle"); err == nil {
		t.Fatal("Up accepted an unknown dialect")
	}
}
