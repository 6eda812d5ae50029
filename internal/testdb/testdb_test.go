package testdb

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
)

func TestPostgresFreshDatabase(t *testing.T) {
	a, b := Postgres(t), Postgres(t)
	if a == b {
		t.Fatal("two calls returned the same database")
	}
	if !strings.Contains(a, "/lk_testdb_") {
		t.Errorf("database not named after the package: %s", a)
	}
	db, err := sql.Open("postgres", a)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("new database has %d tables", n)
	}
}

// TestThrowawayCluster starts a cluster from the installed binaries, the
// fallback when no server is reachable. It takes a few seconds, so it only
// runs when asked.
func TestThrowawayCluster(t *testing.T) {
	if os.Getenv("LATCHKEY_TEST_CLUSTER") != "1" {
		t.Skip("set LATCHKEY_TEST_CLUSTER=1 to start a throwaway cluster")
	}
	dsn, err := startCluster()
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(context.Background(), "SHOW server_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	t.Logf("started PostgreSQL %s at %s", v, dsn)
}

func TestSQLiteAndOpenStore(t *testing.T) {
	for _, dsn := range []string{SQLite(t), Postgres(t)} {
		st := OpenStore(t, dsn)
		if err := st.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
