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

// startCluster runs a throwaway cluster for the tests that find no
// server, left running until this test process dies.
func startCluster() (string, error) {
	c, err := newCluster()
	if err != nil {
		return "", err
	}
	return c.DSN, c.start()
}

// Cluster is a PostgreSQL server of a test's own, which the test may stop
// and start again (a restart of the database under the server).
type Cluster struct {
	DSN     string // the postgres database, as the superuser
	binDir  string
	dir     string
	data    string
	port    int
	cred    *syscall.Credential
	mu      sync.Mutex
	srv     *exec.Cmd
	running bool
}

// PrivateCluster starts a cluster for t alone, stopped when t ends; it
// skips t when no server binaries are installed.
func PrivateCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := newCluster()
	if err != nil {
		t.Skipf("testdb: no private PostgreSQL cluster: %v", err)
	}
	if err := c.start(); err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

func newCluster() (*Cluster, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if p, err := exec.LookPath("initdb"); err == nil {
		bins = append(bins, p)
	}
	if len(bins) == 0 {
		return nil, errors.New("nothing on 127.0.0.1:5432 and no initdb under /usr/lib/postgresql/*/bin or in PATH")
	}
	sort.Slice(bins, func(i, j int) bool { return pgVersion(bins[i]) > pgVersion(bins[j]) })
	c := &Cluster{binDir: filepath.Dir(bins[0])}
	dir, err := os.MkdirTemp("", "latchkey-pg-")
	if err != nil {
		return nil, err
	}
	c.dir, c.data = dir, filepath.Join(dir, "data")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and there is no user postgres to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	initdb := exec.Command(filepath.Join(c.binDir, "initdb"), "-D", c.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if c.port, err = freePort(); err != nil {
		return nil, err
	}
	c.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	return c, nil
}

// start runs the server and waits until it answers.
func (c *Cluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return nil
	}
	srv := exec.Command(filepath.Join(c.binDir, "postgres"), "-D", c.data, "-p", strconv.Itoa(c.port), "-h", "127.0.0.1",
		"-k", c.dir, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300")
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGTERM, Setpgid: true}
	logf, err := os.OpenFile(filepath.Join(c.dir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err == nil {
		srv.Stdout, srv.Stderr = logf, logf
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	c.srv, c.running = srv, true
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err = ping(c.DSN); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			_ = srv.Process.Kill()
			log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
			return fmt.Errorf("postgres did not start: %w\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Start starts the cluster again after Stop, on the same port and data.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
}

// Stop shuts the server down the way an operator's restart does (fast
// shutdown: open sessions are terminated) and waits for it to exit.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return
	}
	_ = c.srv.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = c.srv.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = c.srv.Process.Kill()
		<-done
	}
	c.running = false
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
