// Package testdb gives tests their own database: a fresh PostgreSQL
// database per call (on the server named by LATCHKEY_TEST_DATABASE_URL,
// else 127.0.0.1:5432, else a throwaway cluster started from the installed
// server binaries) or a SQLite file in the test's temp dir.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq" // the "postgres" driver

	"github.com/latchkey/latchkey/migrations"
	"github.com/latchkey/latchkey/storage/sqlstore"
)

const defaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

var (
	serverOnce sync.Once
	serverURL  string // admin URL of the server to create databases on
	serverErr  error
)

// Postgres returns the DSN of a brand-new empty database, dropped when the
// test ends. It fails the test when no PostgreSQL can be found or started,
// or skips it when LATCHKEY_TEST_SKIP_POSTGRES=1.
func Postgres(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() { serverURL, serverErr = findServer() })
	if serverErr != nil {
		if os.Getenv("LATCHKEY_TEST_SKIP_POSTGRES") == "1" {
			t.Skipf("testdb: no PostgreSQL (LATCHKEY_TEST_SKIP_POSTGRES=1): %v", serverErr)
		}
		t.Fatalf("testdb: no PostgreSQL: %v\n(set LATCHKEY_TEST_DATABASE_URL, run one on 127.0.0.1:5432, "+
			"install the server binaries under /usr/lib/postgresql/*/bin, or set LATCHKEY_TEST_SKIP_POSTGRES=1)", serverErr)
	}
	name := dbName()
	admin, err := sql.Open("postgres", serverURL)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The name is generated from [a-z0-9_], so quoting it is enough.
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	t.Cleanup(func() { dropDB(t, name) })
	u, _ := url.Parse(serverURL)
	u.Path = "/" + name
	return u.String()
}

func dropDB(t testing.TB, name string) {
	admin, err := sql.Open("postgres", serverURL)
	if err != nil {
		t.Errorf("testdb: drop %s: %v", name, err)
		return
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// FORCE (PostgreSQL 13+) ends connections a test forgot to close.
	if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
		if _, err2 := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`"`); err2 != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	}
}

// dbName is "lk_<package>_<random>", the package being the directory the
// test runs in (go test runs each package in its own directory).
func dbName() string {
	pkg := "test"
	if wd, err := os.Getwd(); err == nil {
		pkg = filepath.Base(wd)
	}
	var b strings.Builder
	for _, r := range strings.ToLower(pkg) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	pkg = b.String()
	if len(pkg) > 40 {
		pkg = pkg[:40]
	}
	return "lk_" + pkg + "_" + randHex(6)
}

func randHex(n int) string {
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	return hex.EncodeToString(buf)
}

// findServer picks the server: the configured URL, the default local one,
// or a cluster started for this process.
func findServer() (string, error) {
	if u := os.Getenv("LATCHKEY_TEST_DATABASE_URL"); u != "" {
		if err := ping(u); err != nil {
			return "", fmt.Errorf("LATCHKEY_TEST_DATABASE_URL: %w", err)
		}
		return u, nil
	}
	if ping(defaultURL) == nil {
		return defaultURL, nil
	}
	return startCluster()
}

func ping(dsn string) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// startCluster runs initdb and postgres from the newest installed server
// into a temp dir, on a free port, as user postgres when we are root
// (postgres refuses to run as root). The server gets SIGTERM when this
// test process dies; its directory is left in the temp dir.
func startCluster() (string, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if p, err := exec.LookPath("initdb"); err == nil {
		bins = append(bins, p)
	}
	if len(bins) == 0 {
		return "", errors.New("nothing on 127.0.0.1:5432 and no initdb under /usr/lib/postgresql/*/bin or in PATH")
	}
	sort.Slice(bins, func(i, j int) bool { return pgVersion(bins[i]) > pgVersion(bins[j]) })
	binDir := filepath.Dir(bins[0])

	dir, err := os.MkdirTemp("", "latchkey-pg-")
	if err != nil {
		return "", err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root and there is no user postgres to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(binDir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	srv := exec.Command(filepath.Join(binDir, "postgres"), "-D", data, "-p", strconv.Itoa(port), "-h", "127.0.0.1",
		"-k", dir, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300")
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGTERM, Setpgid: true}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err == nil {
		srv.Stdout, srv.Stderr = logf, logf
	}
	if err := srv.Start(); err != nil {
		return "", fmt.Errorf("start postgres: %w", err)
	}
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err = ping(dsn); err == nil {
			return dsn, nil
		}
		if time.Now().After(deadline) {
			_ = srv.Process.Kill()
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			return "", fmt.Errorf("postgres did not start: %w\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pgVersion is the major version in /usr/lib/postgresql/<v>/bin.
func pgVersion(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// SQLite returns the DSN of a new SQLite file in the test's temp dir.
func SQLite(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "latchkey.db")
}

// OpenStore opens dsn with sqlstore.Open and opts, migrates it and closes
// it when the test ends. It returns the concrete store: tests may look at
// the tables behind it (DB).
func OpenStore(t testing.TB, dsn string, opts ...sqlstore.Option) *sqlstore.SQLStore {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, dsn, opts...)
	if err != nil {
		t.Fatalf("testdb: open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := migrations.Up(ctx, st.DB(), st.Dialect()); err != nil {
		t.Fatalf("testdb: migrate: %v", err)
	}
	return st
}
