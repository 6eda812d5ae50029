package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/latchkey/latchkey/internal/httpx"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// noDB fails every token check as a database outage does: requireScope
// then answers 503 before any handler runs, on every /v1 route.
type noDB struct{}

func (noDB) CheckAdminToken(context.Context, string) (accounts.Actor, []string, error) {
	return accounts.Actor{}, nil, storage.ErrUnavailable
}

// never503 are the routes that answer without the database, and so never
// with 503; every other route the router serves must document it.
var never503 = map[string]string{
	"GET /healthz":      "liveness: the process answers",
	"HEAD /healthz":     "liveness: the process answers",
	"GET /metrics":      "the in-process Prometheus registry",
	"GET /openapi.yaml": "the embedded document",
}

type responseRef struct {
	Ref     string `yaml:"$ref"`
	Headers map[string]struct {
		Schema struct {
			Type string `yaml:"type"`
		} `yaml:"schema"`
	} `yaml:"headers"`
	Content map[string]struct {
		Schema struct {
			Ref string `yaml:"$ref"`
		} `yaml:"schema"`
	} `yaml:"content"`
}

// specResponses returns the responses of every operation, by
// "METHOD /path".
func specResponses(t *testing.T) map[string]map[string]responseRef {
	t.Helper()
	s := loadSpec(t)
	out := map[string]map[string]responseRef{}
	for path, item := range s.Paths {
		for method, node := range item {
			if !slices.Contains(httpMethods, method) {
				continue
			}
			var op struct {
				Responses map[string]responseRef `yaml:"responses"`
			}
			if err := node.Decode(&op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			out[strings.ToUpper(method)+" "+path] = op.Responses
		}
	}
	return out
}

// The shared 503 answer: problem+json with the Retry-After the server
// sends during a database outage.
func TestOpenAPIUnavailableResponse(t *testing.T) {
	var s struct {
		Components struct {
			Responses map[string]responseRef `yaml:"responses"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(openAPISpec, &s); err != nil {
		t.Fatal(err)
	}
	u, ok := s.Components.Responses["Unavailable"]
	if !ok {
		t.Fatal("no components/responses/Unavailable")
	}
	if h, ok := u.Headers["Retry-After"]; !ok || h.Schema.Type != "integer" {
		t.Errorf("Unavailable: Retry-After header %+v, want an integer (the server sends %q)", u.Headers, httpx.RetryAfterOutage)
	}
	if c, ok := u.Content["application/problem+json"]; !ok || c.Schema.Ref != "#/components/schemas/Problem" {
		t.Errorf("Unavailable: content %+v, want application/problem+json with the Problem schema", u.Content)
	}
}

// Every route the router serves documents 503 (the /v1 routes with the
// shared answer), except those that never touch the database.
func TestOpenAPIEveryRouteDocuments503(t *testing.T) {
	responses := specResponses(t)
	norm := regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)
	served := map[string]bool{}
	for _, r := range routerRoutes(t) {
		name := norm.ReplaceAllString(r, "{$1}")
		served[name] = true
		rs, ok := responses[name]
		if !ok {
			continue // TestOpenAPIMatchesRouter reports it
		}
		r503, has := rs["503"]
		if why, exempt := never503[name]; exempt {
			if has {
				t.Errorf("%s documents 503, which it never answers (%s)", name, why)
			}
			continue
		}
		switch {
		case !has:
			t.Errorf("%s: no 503 response", name)
		case strings.HasPrefix(strings.SplitN(name, " ", 2)[1], "/v1/") && r503.Ref != "#/components/responses/Unavailable":
			t.Errorf("%s: 503 is %+v, want the shared #/components/responses/Unavailable", name, r503)
		}
	}
	for name := range never503 {
		if !served[name] {
			t.Errorf("never503 lists %s, which the router does not serve", name)
		}
	}
}

// The writes to users, tiers and clients document 409: a username, email
// or name another resource holds, a concurrent change, or a transaction
// the database aborted (busy, serialization failure, deadlock).
func TestOpenAPIWritesDocument409(t *testing.T) {
	responses := specResponses(t)
	n := 0
	for _, rt := range apiRoutes(Deps{}) {
		if rt.method != http.MethodPost && rt.method != http.MethodPatch {
			continue
		}
		if !strings.HasPrefix(rt.path, "/v1/users") && !strings.HasPrefix(rt.path, "/v1/tiers") &&
			!strings.HasPrefix(rt.path, "/v1/clients") {
			continue
		}
		n++
		name := rt.method + " " + rt.path
		if r, ok := responses[name]["409"]; !ok || r.Ref != "#/components/responses/Conflict" {
			t.Errorf("%s: 409 is %+v, want #/components/responses/Conflict", name, r)
		}
	}
	if n < 8 {
		t.Fatalf("only %d POST/PATCH routes of users, tiers and clients", n)
	}
}

// What the spec promises is what the server does: during a database
// outage every /v1 route answers 503 problem+json with Retry-After, and
// /readyz answers 503.
func TestUnavailableAnswers(t *testing.T) {
	st := testdb.OpenStore(t, testdb.SQLite(t))
	if err := st.Close(); err != nil { // a database that does not answer
		t.Fatal(err)
	}
	h := newRouter(Deps{DB: st, Accounts: (*accounts.Service)(nil), Tokens: noDB{}})
	vars := regexp.MustCompile(`\{[^}]+\}`)
	for _, rt := range apiRoutes(Deps{}) {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			req := httptest.NewRequest(rt.method, vars.ReplaceAllString(rt.path, "x"), strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer some-token")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != httpx.RetryAfterOutage ||
				rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d, Retry-After %q, Content-Type %q: %s", rec.Code, rec.Header().Get("Retry-After"),
					rec.Header().Get("Content-Type"), rec.Body)
			}
		})
	}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/readyz", nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s /readyz with the database closed: %d", m, rec.Code)
		}
	}
}
