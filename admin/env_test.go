package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/admin"
	"github.com/latchkey/latchkey/internal/metrics"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/provider/keys"
	"github.com/latchkey/latchkey/storage"
)

// These tests run the admin API over HTTP against real storage (SQLite
// and PostgreSQL), a real accounts.Service and a real keys.Manager. Only
// the bearer-token check is faked: fixed tokens map to a client id and
// scopes (the provider's real check is tested end to end elsewhere).

const goodPW = "correct horse battery"

// Test tokens: each names the client it stands for and its scopes.
var testTokens = map[string]struct {
	client string
	scopes []string
}{
	"tok-admin":   {"c_admin", []string{admin.ScopeAdmin}},
	"tok-read":    {"c_read", []string{admin.ScopeUsersRead}},
	"tok-write":   {"c_write", []string{admin.ScopeUsersWrite}},
	"tok-basic":   {"c_basic", []string{admin.ScopeUsersBasic}},
	"tok-tiers":   {"c_tiers", []string{admin.ScopeTiers}},
	"tok-clients": {"c_clients", []string{admin.ScopeClients}},
	"tok-keys":    {"c_keys", []string{admin.ScopeKeys}},
	"tok-audit":   {"c_audit", []string{admin.ScopeAudit}},
	"tok-none":    {"c_none", []string{"openid"}},
	"tok-groups":  {"c_groups", []string{admin.ScopeGroups}},
}

type fakeTokens struct{}

func (fakeTokens) CheckAdminToken(_ context.Context, token string) (accounts.Actor, []string, error) {
	t, ok := testTokens[token]
	if !ok {
		return accounts.Actor{}, nil, errors.New("unknown token")
	}
	return accounts.Actor{Type: storage.ActorClient, ID: t.client}, t.scopes, nil
}

// clock is accounts' clock: real time plus an offset tests can advance.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

type env struct {
	t     *testing.T
	ctx   context.Context
	st    storage.Store
	acc   *accounts.Service
	keys  *keys.Manager
	clock *clock
	srv   *httptest.Server
}

const (
	deleteGrace = 7 * 24 * time.Hour
	keySecret   = "0123456789abcdef0123456789abcdef-admin-tests"
)

func newEnv(t *testing.T, dsn string) *env {
	t.Helper()
	ctx := context.Background()
	st := testdb.OpenStore(t, dsn)
	clk := &clock{}
	acc := accounts.New(st, accounts.Options{
		Hasher:      accounts.NewArgon2id(accounts.Argon2Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, 4),
		Now:         clk.Now,
		DeleteGrace: deleteGrace,
	})
	km, err := keys.New(st, keys.Config{Secret: []byte(keySecret)})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Init(ctx); err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	srv := httptest.NewServer(admin.NewServer(admin.Deps{
		DB: st, Metrics: m.Handler(), Accounts: acc, Tokens: fakeTokens{}, Keys: km,
		Logger: slog.New(slog.DiscardHandler), Middleware: m.Middleware,
	}))
	t.Cleanup(srv.Close)
	return &env{t: t, ctx: ctx, st: st, acc: acc, keys: km, clock: clk, srv: srv}
}

// backends runs fn on SQLite and on PostgreSQL, each with a fresh env.
func backends(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, b := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"sqlite", testdb.SQLite}, {"postgres", testdb.Postgres}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, b.dsn(t)))
		})
	}
}

// resp is an answer as the tests look at it.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r *resp) String() string { return http.StatusText(r.status) + " " + string(r.body) }

// json decodes the body into v.
func (r *resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r, err)
	}
}

// obj decodes the body as a JSON object.
func (r *resp) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.json(t, &m)
	return m
}

// req is a request: body is JSON-encoded unless it is a string or
// []byte (sent as is); Content-Type is application/json unless hdr says.
type req struct {
	method, path, token string
	body                any
	hdr                 map[string]string
}

func (e *env) send(t *testing.T, rq req) *resp {
	t.Helper()
	var body io.Reader
	switch b := rq.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	hr, err := http.NewRequest(rq.method, e.srv.URL+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if rq.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if rq.token != "" {
		hr.Header.Set("Authorization", "Bearer "+rq.token)
	}
	hr.Header.Set("User-Agent", "admin-test/1")
	for k, v := range rq.hdr {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	res, err := e.srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &resp{status: res.StatusCode, header: res.Header, body: b}
}

// do sends a request with the admin token.
func (e *env) do(t *testing.T, method, path string, body any) *resp {
	t.Helper()
	return e.send(t, req{method: method, path: path, token: "tok-admin", body: body})
}

// want fails unless the answer has the status.
func want(t *testing.T, r *resp, status int) *resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// problemOf checks an error answer is an RFC 9457 problem of the status
// and returns it.
func problemOf(t *testing.T, r *resp, status int) problemBody {
	t.Helper()
	want(t, r, status)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json: %s", ct, r.body)
	}
	var p problemBody
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if !strings.HasPrefix(p.Type, "https://latchkey.dev/problems/") || p.Title == "" || p.Status != status {
		t.Fatalf("problem shape: %+v", p)
	}
	return p
}

type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// field is the first field the problem names.
func (p problemBody) field() string {
	if len(p.Errors) == 0 {
		return ""
	}
	return p.Errors[0].Field
}

// wantField checks a problem of the status names the field.
func wantField(t *testing.T, r *resp, status int, field string) problemBody {
	t.Helper()
	p := problemOf(t, r, status)
	if p.field() != field {
		t.Fatalf("problem names field %q, want %q: %s", p.field(), field, r.body)
	}
	return p
}

// userJSON is a user as the API shows it.
type userJSON struct {
	ID            string     `json:"id"`
	Username      string     `json:"username"`
	Email         string     `json:"email"`
	EmailVerified bool       `json:"email_verified"`
	DisplayName   string     `json:"display_name"`
	PictureURL    string     `json:"picture_url"`
	Locale        string     `json:"locale"`
	Status        string     `json:"status"`
	Tier          *string    `json:"tier"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	DeletedAt     *time.Time `json:"deleted_at"`
	LockedUntil   *time.Time `json:"locked_until"`
	FailedLogins  int        `json:"failed_logins"`
	HasPassword   bool       `json:"has_password"`
}

// createUser creates a user through the API.
func (e *env) createUser(t *testing.T, username string, extra ...map[string]any) userJSON {
	t.Helper()
	body := map[string]any{"username": username, "email": username + "@example.com", "display_name": "User " + username}
	for _, x := range extra {
		for k, v := range x {
			body[k] = v
		}
	}
	var u userJSON
	want(t, e.do(t, http.MethodPost, "/v1/users", body), http.StatusCreated).json(t, &u)
	return u
}

// events returns the audit events of a target, newest first.
func (e *env) events(t *testing.T, target string) []storage.AuditEvent {
	t.Helper()
	evs, err := e.acc.ListAudit(e.ctx, storage.AuditQuery{TargetID: target, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// wantEvent finds the newest event of the action on target and checks it
// was done by the admin client.
func (e *env) wantEvent(t *testing.T, target, action, client string) storage.AuditEvent {
	t.Helper()
	for _, ev := range e.events(t, target) {
		if ev.Action == action {
			if ev.ActorType != storage.ActorClient || ev.ActorID != client || ev.UserAgent != "admin-test/1" || ev.IP == "" {
				t.Fatalf("event %s on %s: actor %s:%s ip %q ua %q", action, target, ev.ActorType, ev.ActorID, ev.IP, ev.UserAgent)
			}
			return ev
		}
	}
	t.Fatalf("no %s event on %s in %+v", action, target, e.events(t, target))
	return storage.AuditEvent{}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
