package sqlstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/sqlstore"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// The conformance suite runs on the store as serve opens it: client cache
// on (with a TTL no subtest outlives).
func TestSQLite(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return testdb.OpenStore(t, testdb.SQLite(t), sqlstore.WithClientCacheTTL(time.Hour))
	})
}

func TestPostgres(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return testdb.OpenStore(t, testdb.Postgres(t), sqlstore.WithClientCacheTTL(time.Hour))
	})
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name, dsn, dialect string
	}{
		{"sqlite", testdb.SQLite(t), "sqlite"},
		{"file", "file:" + t.TempDir() + "/x.db", "sqlite"},
		{"postgres", testdb.Postgres(t), "postgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := sqlstore.Open(ctx, tc.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if st.Dialect() != tc.dialect {
				t.Errorf("Dialect() = %q, want %q", st.Dialect(), tc.dialect)
			}
			if _, ok := sqlstore.NewSessionOf(st).(*openid.DefaultSession); !ok {
				t.Errorf("default session = %T, want *openid.DefaultSession", sqlstore.NewSessionOf(st))
			}
			if tc.dialect == "sqlite" {
				for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000"} {
					var got string
					if err := st.DB().QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
						t.Fatal(err)
					}
					if got != want {
						t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
					}
				}
			}
		})
	}
	if _, err := sqlstore.Open(ctx, "mysql://root@localhost/x"); err == nil {
		t.Error("Open accepted an unsupported URL")
	}
	if _, err := sqlstore.Open(ctx, "postgres://u:secret@127.0.0.1:1/x?sslmode=disable&connect_timeout=1"); err == nil {
		t.Error("Open did not report an unreachable server")
	} else if strings.Contains(err.Error(), "secret") {
		t.Errorf("error leaks the password: %v", err)
	}
}

// Timestamps must round-trip exactly (at the stored microsecond precision)
// and come back in UTC whatever zone they were written in.
func TestTimeRoundTrip(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": testdb.SQLite, "postgres": testdb.Postgres} {
		t.Run(name, func(t *testing.T) {
			st := testdb.OpenStore(t, dsn(t))
			zone := time.FixedZone("X", 5*3600+30*60)
			in := time.Date(2031, 7, 4, 23, 59, 58, 123456789, zone)
			u := &storage.User{ID: "t", Username: "t", CreatedAt: in, UpdatedAt: in}
			if err := st.CreateUser(context.Background(), u); err != nil {
				t.Fatal(err)
			}
			got, err := st.GetUser(context.Background(), "t")
			if err != nil {
				t.Fatal(err)
			}
			want := in.UTC().Truncate(time.Microsecond)
			if got.CreatedAt != want || got.CreatedAt.Location() != time.UTC {
				t.Fatalf("CreatedAt = %v, want %v", got.CreatedAt, want)
			}
		})
	}
}

func TestSQLiteMemory(t *testing.T) {
	st := testdb.OpenStore(t, "sqlite::memory:")
	if err := st.CreateUser(context.Background(), &storage.User{ID: "m", Username: "m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetUser(context.Background(), "m"); err != nil {
		t.Fatal(err)
	}
}

// With the client cache on, a client read once is served without the
// database until its TTL ends, and a delete through the same store takes
// effect at once.
func TestClientCache(t *testing.T) {
	ctx := context.Background()
	st := testdb.OpenStore(t, testdb.SQLite(t), sqlstore.WithClientCacheTTL(time.Hour))
	c := &storage.Client{ID: "c1", Name: "one", GrantTypes: []string{"client_credentials"}, AccessTokenFormat: storage.AccessTokenOpaque}
	if err := st.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetClient(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	// Changed behind the store's back (as another replica would): the
	// cached record is still served.
	if _, err := st.DB().ExecContext(ctx, `UPDATE clients SET name = 'renamed' WHERE id = 'c1'`); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetClient(ctx, "c1")
	if err != nil || got.(*storage.Client).Name != "one" {
		t.Fatalf("cached client: %v %v", got, err)
	}
	if err := st.DeleteClient(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetClient(ctx, "c1"); err == nil {
		t.Fatal("deleted client still served from the cache")
	}
}

// Open's options reach the store: the session factory makes the session
// a pushed request is read into, and the pool cap replaces the default.
func TestOptions(t *testing.T) {
	type mySession struct{ *openid.DefaultSession }
	st := testdb.OpenStore(t, testdb.SQLite(t),
		sqlstore.WithSessionFactory(func() fosite.Session { return mySession{openid.NewDefaultSession()} }),
		sqlstore.WithMaxOpenConns(3))
	if _, ok := sqlstore.NewSessionOf(st).(mySession); !ok {
		t.Errorf("session = %T, want the factory's", sqlstore.NewSessionOf(st))
	}
	if n := st.DB().Stats().MaxOpenConnections; n != 3 {
		t.Errorf("MaxOpenConnections = %d, want 3", n)
	}
	// A nil factory keeps the default.
	def := testdb.OpenStore(t, testdb.SQLite(t), sqlstore.WithSessionFactory(nil))
	if _, ok := sqlstore.NewSessionOf(def).(*openid.DefaultSession); !ok {
		t.Errorf("session = %T, want the default", sqlstore.NewSessionOf(def))
	}
}
