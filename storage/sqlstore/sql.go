// Package sqlstore is the SQL implementation of storage.Store (sqlx), on
// PostgreSQL (lib/pq) and SQLite (modernc.org/sqlite), including fosite's
// storage interfaces.
//
// It stores and loads exactly what it is given: no HTTP, no business
// rules (those live in provider/accounts).
package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkey/latchkey/storage"
)

// Dialect names, as returned by SQLStore.Dialect and accepted by
// migrations.Up.
const (
	DialectPostgres = "postgres"
	DialectSQLite   = "sqlite"
)

// SQLStore is the one implementation of Store, on PostgreSQL or SQLite.
//
// Every query is written once with '?' placeholders and rebound for the
// dialect. Timestamps are kept in UTC with microsecond precision on both
// dialects (PostgreSQL TIMESTAMPTZ cannot hold more), as TIMESTAMPTZ on
// PostgreSQL and as INTEGER unix nanoseconds on SQLite, so that ordering
// and range comparisons happen in SQL on either.
type SQLStore struct {
	db      *sqlx.DB
	dialect string
	clients *clientCache // nil: off (see WithClientCacheTTL)

	// newSession makes the empty session a stored pushed authorization
	// request is unmarshalled into (see WithSessionFactory).
	newSession func() fosite.Session
	tracer     trace.Tracer // nil: no spans

	// jobs are the in-process locks TryExclusive uses on SQLite.
	jobsMu sync.Mutex
	jobs   map[string]*sync.Mutex
}

// Compile-time proof that SQLStore is everything fosite and Latchkey need.
var (
	_ storage.Store                      = (*SQLStore)(nil)
	_ storage.FositeStore                = (*SQLStore)(nil)
	_ fosite.ClientManager               = (*SQLStore)(nil)
	_ fosite.PARStorage                  = (*SQLStore)(nil)
	_ oauth2.CoreStorage                 = (*SQLStore)(nil)
	_ oauth2.TokenRevocationStorage      = (*SQLStore)(nil)
	_ openid.OpenIDConnectRequestStorage = (*SQLStore)(nil)
	_ pkce.PKCERequestStorage            = (*SQLStore)(nil)
	_ fositestorage.Transactional        = (*SQLStore)(nil)
	_ oauth2.AuthorizeCodeStorage        = (*SQLStore)(nil)
	_ oauth2.AccessTokenStorage          = (*SQLStore)(nil)
	_ oauth2.RefreshTokenStorage         = (*SQLStore)(nil)
	_ storage.Tiers                      = (*SQLStore)(nil)
	_ storage.Audit                      = (*SQLStore)(nil)
	_ storage.Directory                  = (*SQLStore)(nil)
)

// Open connects to dsn: "postgres://…" or "postgresql://…" selects
// PostgreSQL, "sqlite:PATH" or "file:PATH" a SQLite file, configured by
// opts. It does not migrate; run migrations.Up on DB() first.
func Open(ctx context.Context, dsn string, opts ...Option) (*SQLStore, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	var (
		driverName, dialect, connStr string
	)
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		driverName, dialect, connStr = "postgres", DialectPostgres, postgresDSN(dsn)
	case strings.HasPrefix(dsn, "sqlite:"), strings.HasPrefix(dsn, "file:"):
		driverName, dialect = "sqlite", DialectSQLite
		connStr = sqliteDSN(dsn)
	default:
		return nil, fmt.Errorf("storage: unsupported database URL %q (want postgres://… or sqlite:PATH)", redact(dsn))
	}
	db, err := sqlx.Open(driverName, connStr)
	if err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dialect, err)
	}
	if dialect == DialectPostgres {
		// Enough for bursts of token requests; idle == open so that a busy
		// server does not churn connections.
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(20)
		db.SetConnMaxIdleTime(5 * time.Minute)
	} else {
		// WAL lets readers run beside the one writer; writers queue on the
		// file lock (BEGIN IMMEDIATE + busy_timeout), so more connections
		// than a handful only add contention. More than one is needed so
		// that reads are not stuck behind a long write transaction.
		n := max(4, runtime.GOMAXPROCS(0))
		if strings.Contains(connStr, ":memory:") {
			// Every connection to :memory: is its own empty database.
			n = 1
		}
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		db.SetConnMaxLifetime(0)
	}
	if o.maxOpenConns > 0 {
		db.SetMaxOpenConns(o.maxOpenConns)
		db.SetMaxIdleConns(o.maxOpenConns)
	}
	s := &SQLStore{
		db:         db,
		dialect:    dialect,
		clients:    newClientCache(o.clientCacheTTL),
		newSession: o.newSession,
		tracer:     o.tracer,
	}
	if err := s.Ping(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// postgresDSN adds binary_parameters=yes unless the URL sets it: without
// it lib/pq prepares every statement that has arguments in a separate round
// trip (Parse/Describe, then Bind/Execute); with it a statement is one round
// trip, which halves the database time of the token endpoint.
func postgresDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn // lib/pq reports the error
	}
	q := u.Query()
	if q.Get("binary_parameters") == "" {
		q.Set("binary_parameters", "yes")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// sqliteDSN turns "sqlite:PATH[?query]" into a modernc DSN with the pragmas
// every connection needs: WAL, a busy timeout, foreign keys, and
// BEGIN IMMEDIATE so a transaction takes the write lock up front instead of
// failing (or deadlocking) when it upgrades from read to write.
func sqliteDSN(dsn string) string {
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	path = strings.TrimPrefix(path, "//")
	q := url.Values{}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		q, _ = url.ParseQuery(path[i+1:])
		path = path[:i]
	}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "wal_autocheckpoint(8000)")
	q.Add("_pragma", "foreign_keys(1)")
	if q.Get("_txlock") == "" {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// redact hides a password in a URL for error messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.Redacted()
}

// Dialect is "postgres" or "sqlite".
func (s *SQLStore) Dialect() string { return s.dialect }

// DB is the underlying pool, for migrations and health checks.
func (s *SQLStore) DB() *sql.DB { return s.db.DB }

// Ping checks the database is reachable.
func (s *SQLStore) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("storage: ping: %w", err)
	}
	return nil
}

// Close closes the pool.
func (s *SQLStore) Close() error { return s.db.Close() }

// ---- transactions ----

type txKey struct{}

// txState is the transaction carried in a context. depth counts the nested
// BeginTX calls joined to it, so only the outermost Commit/Rollback acts.
type txState struct {
	mu           sync.Mutex
	tx           *sqlx.Tx
	depth        int
	done         bool
	rollbackOnly bool
}

func txFrom(ctx context.Context) *txState {
	st, _ := ctx.Value(txKey{}).(*txState)
	return st
}

// BeginTX starts a transaction and returns a context carrying it. When ctx
// already carries one, the new "transaction" joins it.
func (s *SQLStore) BeginTX(ctx context.Context) (context.Context, error) {
	if st := txFrom(ctx); st != nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		if !st.done {
			st.depth++
			return ctx, nil
		}
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return ctx, fmt.Errorf("storage: begin: %w", s.mapErr(err))
	}
	return context.WithValue(ctx, txKey{}, &txState{tx: tx}), nil
}

// Commit commits the transaction in ctx; a nested Commit only leaves its
// level. If an inner level rolled back, the outer Commit rolls back and
// reports ErrConflict, since part of the work was abandoned.
func (s *SQLStore) Commit(ctx context.Context) error {
	st := txFrom(ctx)
	if st == nil {
		return errors.New("storage: commit: no transaction in context")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return fmt.Errorf("storage: commit: %w", sql.ErrTxDone)
	}
	if st.depth > 0 {
		st.depth--
		return nil
	}
	st.done = true
	if st.rollbackOnly {
		_ = st.tx.Rollback()
		return fmt.Errorf("storage: commit: an inner transaction rolled back: %w", storage.ErrConflict)
	}
	if err := st.tx.Commit(); err != nil {
		return fmt.Errorf("storage: commit: %w", s.mapFositeErr(err))
	}
	return nil
}

// Rollback abandons the transaction in ctx. A nested Rollback marks the
// outer transaction as doomed. Rolling back a finished transaction is a
// no-op, so callers may defer it unconditionally.
func (s *SQLStore) Rollback(ctx context.Context) error {
	st := txFrom(ctx)
	if st == nil {
		return errors.New("storage: rollback: no transaction in context")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return nil
	}
	if st.depth > 0 {
		st.depth--
		st.rollbackOnly = true
		return nil
	}
	st.done = true
	if err := st.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("storage: rollback: %w", err)
	}
	return nil
}

// InTx runs fn in a transaction (joining the one in ctx) and commits when
// fn returns nil; otherwise it rolls back and returns fn's error.
func (s *SQLStore) InTx(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			_ = s.Rollback(txCtx)
		}
	}()
	if err := fn(txCtx); err != nil {
		return err
	}
	committed = true
	return s.Commit(txCtx)
}

// ext returns what queries run on: the transaction in ctx, else the pool.
// Never the pool while a transaction is open, so a caller holding a
// transaction never waits for a second connection.
func (s *SQLStore) ext(ctx context.Context) sqlx.ExtContext {
	if st := txFrom(ctx); st != nil {
		st.mu.Lock()
		done := st.done
		st.mu.Unlock()
		if !done {
			return st.tx
		}
	}
	return s.db
}

func (s *SQLStore) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	q = s.db.Rebind(q)
	if s.tracer != nil {
		var end func(error)
		ctx, end = s.span(ctx, q)
		res, err := s.ext(ctx).ExecContext(ctx, q, args...)
		end(err)
		return res, err
	}
	return s.ext(ctx).ExecContext(ctx, q, args...)
}

func (s *SQLStore) queryRow(ctx context.Context, q string, args ...any) *sqlx.Row {
	q = s.db.Rebind(q)
	if s.tracer != nil {
		var end func(error)
		ctx, end = s.span(ctx, q)
		row := s.ext(ctx).QueryRowxContext(ctx, q, args...) // runs the statement
		end(row.Err())
		return row
	}
	return s.ext(ctx).QueryRowxContext(ctx, q, args...)
}

func (s *SQLStore) query(ctx context.Context, q string, args ...any) (*sqlx.Rows, error) {
	q = s.db.Rebind(q)
	if s.tracer != nil {
		var end func(error)
		ctx, end = s.span(ctx, q)
		rows, err := s.ext(ctx).QueryxContext(ctx, q, args...)
		end(err)
		return rows, err
	}
	return s.ext(ctx).QueryxContext(ctx, q, args...)
}

// span starts a client span for statement q, named after its first word
// ("db SELECT"); the returned func ends it with err's outcome.
func (s *SQLStore) span(ctx context.Context, q string) (context.Context, func(error)) {
	verb, _, _ := strings.Cut(strings.TrimSpace(q), " ")
	ctx, sp := s.tracer.Start(ctx, "db "+strings.ToUpper(verb), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system", s.dialect), attribute.String("db.statement", q)))
	return ctx, func(err error) {
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			sp.RecordError(err)
			sp.SetStatus(codes.Error, "statement failed")
		}
		sp.End()
	}
}

// ---- errors ----

// mapErr turns driver errors into ErrDuplicate / ErrConflict /
// ErrNotFound, keeping the driver error in the chain for logs.
func (s *SQLStore) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return fmt.Errorf("%w: %w", storage.ErrDuplicate, err)
		case "40001", "40P01":
			return fmt.Errorf("%w: %w", storage.ErrConflict, err)
		}
		switch pe.Code.Class() {
		// connection exception, insufficient resources, operator
		// intervention (shutdown, cannot connect now), system error,
		// internal error: the server's state, not the request's.
		case "08", "53", "57", "58", "XX":
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", storage.ErrDuplicate, err)
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_BUSY_SNAPSHOT:
			return fmt.Errorf("%w: %w", storage.ErrConflict, err)
		}
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM,
			sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
		}
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return fmt.Errorf("%w: %w", storage.ErrDuplicate, err)
		}
		return err
	}
	if strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return fmt.Errorf("%w: %w", storage.ErrDuplicate, err)
	}
	if errors.Is(err, context.Canceled) {
		return err // the caller went away; nothing is down
	}
	// Neither driver answered: the connection could not be made or was
	// lost (refused, reset, timed out, pool closed).
	return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
}

// mapFositeErr is mapErr for fosite's methods, which must speak fosite's
// errors: a concurrent update is fosite.ErrSerializationFailure and a
// missing row fosite.ErrNotFound.
func (s *SQLStore) mapFositeErr(err error) error {
	err = s.mapErr(err)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return fosite.ErrNotFound
	case errors.Is(err, storage.ErrConflict):
		return fmt.Errorf("%w: %w", fosite.ErrSerializationFailure, err)
	}
	return err
}

// ---- value helpers ----

// normTime is how every timestamp is stored: UTC, microseconds.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// ts converts a time to the dialect's column value.
func (s *SQLStore) ts(t time.Time) any {
	t = normTime(t)
	if s.dialect == DialectSQLite {
		return t.UnixNano()
	}
	return t
}

// tsPtr is ts for nullable columns.
func (s *SQLStore) tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.ts(*t)
}

// timeDest scans a timestamp column of either dialect into a time.Time.
type timeDest struct{ t *time.Time }

func (d timeDest) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		*d.t = x.UTC()
	case int64:
		*d.t = time.Unix(0, x).UTC()
	case nil:
		*d.t = time.Time{}
	default:
		return fmt.Errorf("storage: cannot scan %T into a timestamp", v)
	}
	return nil
}

// nullTimeDest scans a nullable timestamp into a *time.Time.
type nullTimeDest struct{ t **time.Time }

func (d nullTimeDest) Scan(v any) error {
	if v == nil {
		*d.t = nil
		return nil
	}
	var t time.Time
	if err := (timeDest{&t}).Scan(v); err != nil {
		return err
	}
	*d.t = &t
	return nil
}

// listDest scans a JSON text column into a []string.
type listDest struct{ l *[]string }

func (d listDest) Scan(v any) error { return scanJSONText(v, d.l, "list") }

// scanJSONText decodes a JSON text column of either dialect into dst (a
// pointer to a slice or map); NULL and an empty value scan as nil.
func scanJSONText[T ~[]string | ~map[string]any](v any, dst *T, what string) error {
	var b []byte
	switch x := v.(type) {
	case nil:
		*dst = nil
		return nil
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		return fmt.Errorf("storage: cannot scan %T into a %s", v, what)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Errorf("storage: decode %s: %w", what, err)
	}
	if len(out) == 0 {
		out = nil
	}
	*dst = out
	return nil
}

// listVal is how a []string is stored: JSON text, "[]" for empty.
type listVal []string

func (l listVal) Value() (driver.Value, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal([]string(l))
	return string(b), err
}

// nullStr stores "" as NULL, for optional foreign keys.
func nullStr(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// strDest scans a nullable text column into a string ("" for NULL).
type strDest struct{ s *string }

func (d strDest) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*d.s = ""
	case string:
		*d.s = x
	case []byte:
		*d.s = string(x)
	default:
		return fmt.Errorf("storage: cannot scan %T into a string", v)
	}
	return nil
}

// hashKey is how fosite signatures, codes, request URIs and JTIs are
// stored: a SHA-256 in hex, so a database dump holds no usable token.
func hashKey(k string) string {
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:])
}

// affected reports whether a write touched a row.
func affected(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n > 0, nil
}

// rawDest scans a JSON object text column into its bytes; "{}" and ""
// scan as nil (no metadata).
type rawDest struct{ b *[]byte }

func (d rawDest) Scan(v any) error {
	var b []byte
	switch x := v.(type) {
	case nil:
	case string:
		b = []byte(x)
	case []byte:
		b = append([]byte(nil), x...)
	default:
		return fmt.Errorf("storage: cannot scan %T into a JSON object", v)
	}
	if s := strings.TrimSpace(string(b)); s == "" || s == "{}" {
		b = nil
	}
	*d.b = b
	return nil
}

// objectVal is how a JSON object is stored: its text, "{}" for none.
func objectVal(b []byte) string {
	if len(b) == 0 {
		return "{}"
	}
	return string(b)
}

// addressDest scans the address column (JSON text, "" for none).
type addressDest struct{ a **storage.Address }

func (d addressDest) Scan(v any) error {
	var b []byte
	switch x := v.(type) {
	case nil:
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		return fmt.Errorf("storage: cannot scan %T into an address", v)
	}
	if len(b) == 0 {
		*d.a = nil
		return nil
	}
	var a storage.Address
	if err := json.Unmarshal(b, &a); err != nil {
		return fmt.Errorf("storage: decode address: %w", err)
	}
	*d.a = &a
	return nil
}

func addressVal(a *storage.Address) (string, error) {
	if a == nil || *a == (storage.Address{}) {
		return "", nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("encode address: %w", err)
	}
	return string(b), nil
}

// claimsDest scans a client's claim mapping (JSON object of strings).
type claimsDest struct{ m *map[string]string }

func (d claimsDest) Scan(v any) error {
	var b []byte
	switch x := v.(type) {
	case nil:
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		return fmt.Errorf("storage: cannot scan %T into claims", v)
	}
	var m map[string]string
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("storage: decode claims: %w", err)
		}
	}
	if len(m) == 0 {
		m = nil
	}
	*d.m = m
	return nil
}

func claimsVal(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	return string(b), nil
}

// metaDest scans a client's registration metadata (a JSON object).
type metaDest struct{ m *storage.ClientMeta }

func (d metaDest) Scan(v any) error {
	var b []byte
	switch x := v.(type) {
	case nil:
	case string:
		b = []byte(x)
	case []byte:
		b = x
	default:
		return fmt.Errorf("storage: cannot scan %T into client metadata", v)
	}
	*d.m = storage.ClientMeta{}
	if len(b) > 0 {
		if err := json.Unmarshal(b, d.m); err != nil {
			return fmt.Errorf("storage: decode client metadata: %w", err)
		}
	}
	return nil
}

// nullBytes is NULL for an empty slice.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
