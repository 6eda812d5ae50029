package admin_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/admin"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/provider/accounts"
)

func TestAuthentication(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		long := strings.Repeat("x", 5000)
		tests := []struct {
			name      string
			authz     string
			status    int
			challenge string // in WWW-Authenticate
		}{
			{"no token", "", 401, `Bearer realm="latchkey-admin"`},
			{"basic scheme", "Basic dXNlcjpwYXNz", 401, `Bearer realm="latchkey-admin"`},
			{"empty bearer", "Bearer ", 401, `Bearer realm="latchkey-admin"`},
			{"bad token", "Bearer nope", 401, `error="invalid_token"`},
			{"token too long", "Bearer " + long, 401, `error="invalid_token"`},
			{"no admin scope", "Bearer tok-none", 403, `error="insufficient_scope"`},
			{"wrong admin scope", "Bearer tok-tiers", 403, `scope="admin:users.read admin:users.search.basic"`},
			{"scheme is case-insensitive", "bearer tok-admin", 200, ""},
			{"admin", "Bearer tok-admin", 200, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := e.send(t, req{method: "GET", path: "/v1/users", hdr: map[string]string{"Authorization": tt.authz}})
				if tt.status == 200 {
					want(t, r, 200)
					return
				}
				p := problemOf(t, r, tt.status)
				if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, tt.challenge) {
					t.Fatalf("WWW-Authenticate %q, want it to contain %q", got, tt.challenge)
				}
				if tt.status == 403 && !strings.Contains(p.Detail, admin.ScopeUsersRead) {
					t.Fatalf("403 does not name the scope needed: %q", p.Detail)
				}
			})
		}
	})
}

// TestScopeReach calls every route with every token: a token reaches
// exactly the routes of its scopes (admin reaches all). Requests that get
// through are made harmless (unknown ids, bodies that fail validation), so
// only "was it let in" is judged here.
func TestScopeReach(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		routes := []struct {
			method, path string
			body         any
			scopes       []string
		}{
			{"GET", "/v1/users", nil, []string{admin.ScopeUsersRead, admin.ScopeUsersBasic}},
			{"POST", "/v1/users", `{}`, []string{admin.ScopeUsersWrite}},
			{"POST", "/v1/users:import", nil, []string{admin.ScopeUsersWrite}},
			{"GET", "/v1/users/u_nope", nil, []string{admin.ScopeUsersRead}},
			{"PATCH", "/v1/users/u_nope", `{"display_name":"x"}`, []string{admin.ScopeUsersWrite}},
			{"DELETE", "/v1/users/u_nope", nil, []string{admin.ScopeUsersWrite}},
			{"GET", "/v1/users/u_nope/archive", nil, []string{admin.ScopeUsersRead}},
			{"POST", "/v1/users/u_nope/suspend", `{"reason":"x"}`, []string{admin.ScopeUsersWrite}},
			{"POST", "/v1/users/u_nope/unsuspend", `{"reason":"x"}`, []string{admin.ScopeUsersWrite}},
			{"POST", "/v1/users/u_nope/restore", nil, []string{admin.ScopeUsersWrite}},
			{"PUT", "/v1/users/u_nope/password", `{"password":"correct horse battery"}`, []string{admin.ScopeUsersWrite}},
			{"GET", "/v1/users/u_nope/sessions", nil, []string{admin.ScopeUsersRead}},
			{"DELETE", "/v1/users/u_nope/sessions", nil, []string{admin.ScopeUsersWrite}},
			{"DELETE", "/v1/users/u_nope/lockout", nil, []string{admin.ScopeUsersWrite}},
			{"GET", "/v1/users/u_nope/export", nil, []string{admin.ScopeUsersRead}},
			{"GET", "/v1/users/u_nope/rate-limits", nil, []string{admin.ScopeUsersRead}},
			{"PUT", "/v1/users/u_nope/tier", `{"tier":null}`, []string{admin.ScopeUsersWrite}},
			{"GET", "/v1/stats", nil, []string{admin.ScopeUsersRead}},
			{"GET", "/v1/tiers", nil, []string{admin.ScopeTiers}},
			{"POST", "/v1/tiers", `{}`, []string{admin.ScopeTiers}},
			{"GET", "/v1/tiers/t_nope", nil, []string{admin.ScopeTiers}},
			{"PATCH", "/v1/tiers/t_nope", `{"name":"x"}`, []string{admin.ScopeTiers}},
			{"DELETE", "/v1/tiers/t_nope", nil, []string{admin.ScopeTiers}},
			{"GET", "/v1/tiers/t_nope/rate-limits", nil, []string{admin.ScopeTiers}},
			{"PUT", "/v1/tiers/t_nope/rate-limits", `{"rate_limits":[]}`, []string{admin.ScopeTiers}},
			{"GET", "/v1/clients", nil, []string{admin.ScopeClients}},
			{"POST", "/v1/clients", `{}`, []string{admin.ScopeClients}},
			{"GET", "/v1/clients/c_nope", nil, []string{admin.ScopeClients}},
			{"PATCH", "/v1/clients/c_nope", `{"name":"x"}`, []string{admin.ScopeClients}},
			{"DELETE", "/v1/clients/c_nope", nil, []string{admin.ScopeClients}},
			{"POST", "/v1/clients/c_nope/rotate-secret", nil, []string{admin.ScopeClients}},
			{"GET", "/v1/keys", nil, []string{admin.ScopeKeys}},
			{"POST", "/v1/keys/rotate", `{"now":"not a boolean"}`, []string{admin.ScopeKeys}},
			{"POST", "/v1/keys/k_nope/retire", nil, []string{admin.ScopeKeys}},
			{"GET", "/v1/audit-events", nil, []string{admin.ScopeAudit}},
		}
		for _, rt := range routes {
			for token, tk := range testTokens {
				t.Run(rt.method+" "+rt.path+" "+token, func(t *testing.T) {
					r := e.send(t, req{method: rt.method, path: rt.path, token: token, body: rt.body})
					allowed := slices.Contains(tk.scopes, admin.ScopeAdmin)
					for _, s := range rt.scopes {
						allowed = allowed || slices.Contains(tk.scopes, s)
					}
					switch {
					case allowed && (r.status == 401 || r.status == 403):
						t.Fatalf("%s was refused: %s", token, r)
					case allowed && r.status >= 500:
						t.Fatalf("%s: %s", token, r)
					case !allowed:
						p := problemOf(t, r, 403)
						if p.Type != "https://latchkey.dev/problems/insufficient-scope" || !strings.Contains(p.Detail, rt.scopes[0]) {
							t.Fatalf("403 problem %+v does not name %s", p, rt.scopes[0])
						}
					}
				})
			}
		}
	})
}

func TestRoutingProblems(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		t.Run("unknown route", func(t *testing.T) {
			for _, tok := range []string{"", "tok-admin"} {
				p := problemOf(t, e.send(t, req{method: "GET", path: "/v1/nope", token: tok}), 404)
				if p.Type != "https://latchkey.dev/problems/not-found" {
					t.Fatalf("%+v", p)
				}
			}
		})
		t.Run("unknown method", func(t *testing.T) {
			r := e.send(t, req{method: "PUT", path: "/v1/users", token: "tok-admin", body: `{}`})
			problemOf(t, r, 405)
			if allow := r.header.Get("Allow"); allow != "GET, POST" {
				t.Fatalf("Allow %q", allow)
			}
		})
		t.Run("import is its own route", func(t *testing.T) {
			// Not taken for a user id: GET has no such route, and a POST
			// reaches the importer (which wants JSON Lines).
			problemOf(t, e.send(t, req{method: "GET", path: "/v1/users:import", token: "tok-admin"}), 405)
			p := problemOf(t, e.send(t, req{method: "POST", path: "/v1/users:import", token: "tok-admin", body: `{}`}), 415)
			if !strings.Contains(p.Detail, "application/x-ndjson") {
				t.Fatalf("%+v", p)
			}
		})
		t.Run("openapi without auth", func(t *testing.T) {
			r := want(t, e.send(t, req{method: "GET", path: "/openapi.yaml"}), 200)
			if !strings.HasPrefix(string(r.body), "openapi: 3.1") || r.header.Get("Content-Type") != "application/yaml" {
				t.Fatalf("%s %q", r.body[:40], r.header.Get("Content-Type"))
			}
		})
		t.Run("metrics count API routes by template", func(t *testing.T) {
			want(t, e.do(t, "GET", "/v1/users/u_123", nil), 404)
			r := want(t, e.send(t, req{method: "GET", path: "/metrics"}), 200)
			if !strings.Contains(string(r.body), `route="/v1/users/{id}"`) {
				t.Fatal("no request counted under /v1/users/{id}")
			}
		})
	})
}

// Without accounts and a token checker there is no API, only the probes
// (and the spec).
func TestNoAPIWithoutDeps(t *testing.T) {
	store := testdb.OpenStore(t, testdb.SQLite(t))
	srv := httptest.NewServer(admin.NewServer(admin.Deps{DB: store}))
	defer srv.Close()
	for path, status := range map[string]int{"/v1/users": 404, "/healthz": 200, "/openapi.yaml": 200, "/metrics": 404} {
		res, err := srv.Client().Get(srv.URL + path)
		must(t, err)
		res.Body.Close()
		if res.StatusCode != status {
			t.Fatalf("GET %s = %d, want %d", path, res.StatusCode, status)
		}
	}
}

// A closed database is an outage: 503 with Retry-After and a problem
// that says nothing of the cause, which goes to the log instead.
func TestInternalError(t *testing.T) {
	store := testdb.OpenStore(t, testdb.SQLite(t))
	acc := accounts.New(store, accounts.Options{})
	var logs bytes.Buffer
	srv := httptest.NewServer(admin.NewServer(admin.Deps{DB: store, Accounts: acc, Tokens: fakeTokens{},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}))
	defer srv.Close()
	e := &env{srv: srv}
	must(t, store.Close()) // every query now fails
	r := e.do(t, "GET", "/v1/users", nil)
	p := problemOf(t, r, 503)
	if p.Type != "https://latchkey.dev/problems/unavailable" || strings.Contains(strings.ToLower(string(r.body)), "sql") ||
		strings.Contains(string(r.body), "closed") {
		t.Fatalf("%s", r.body)
	}
	if !strings.Contains(logs.String(), "database unavailable") || !strings.Contains(logs.String(), "/v1/users") {
		t.Fatalf("not logged: %q", logs.String())
	}
	// Key routes without a key manager are unavailable, not broken.
	p = problemOf(t, e.do(t, "GET", "/v1/keys", nil), 503)
	if p.Type != "https://latchkey.dev/problems/unavailable" {
		t.Fatalf("%+v", p)
	}
}

// With a metrics token, /metrics wants exactly that bearer token; the
// probes stay open. Without one it is open (TestNoAPIWithoutDeps).
func TestMetricsToken(t *testing.T) {
	const token = "scrape-0123456789abcdef"
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics\n")) })
	srv := httptest.NewServer(admin.NewServer(admin.Deps{DB: pingOK{}, Metrics: metrics, MetricsToken: token}))
	defer srv.Close()
	for _, tt := range []struct {
		name, path, authz string
		status            int
		challenge         string
	}{
		{"no token", "/metrics", "", 401, `Bearer realm="latchkey-metrics"`},
		{"basic scheme", "/metrics", "Basic " + token, 401, `Bearer realm="latchkey-metrics"`},
		{"empty bearer", "/metrics", "Bearer ", 401, `Bearer realm="latchkey-metrics"`},
		{"wrong token", "/metrics", "Bearer scrape-0123456789abcdeF", 401, `error="invalid_token"`},
		{"prefix", "/metrics", "Bearer scrape-", 401, `error="invalid_token"`},
		{"longer", "/metrics", "Bearer " + token + "x", 401, `error="invalid_token"`},
		{"right token", "/metrics", "Bearer " + token, 200, ""},
		{"scheme is case-insensitive", "/metrics", "BEARER " + token, 200, ""},
		{"healthz is open", "/healthz", "", 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rq, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
			if tt.authz != "" {
				rq.Header.Set("Authorization", tt.authz)
			}
			res, err := srv.Client().Do(rq)
			must(t, err)
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("GET %s with %q = %d %s, want %d", tt.path, tt.authz, res.StatusCode, body, tt.status)
			}
			if got := res.Header.Get("WWW-Authenticate"); !strings.Contains(got, tt.challenge) {
				t.Fatalf("WWW-Authenticate %q, want it to contain %q", got, tt.challenge)
			}
			if tt.status == 401 && (res.Header.Get("Content-Type") != "application/problem+json" || strings.Contains(string(body), token)) {
				t.Fatalf("401 body: %s %s", res.Header.Get("Content-Type"), body)
			}
		})
	}
}

type pingOK struct{}

func (pingOK) Ping(context.Context) error { return nil }
