package admin

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"go.yaml.in/yaml/v3"

	"github.com/latchkey/latchkey/provider/accounts"
)

type noTokens struct{}

func (noTokens) CheckAdminToken(context.Context, string) (accounts.Actor, []string, error) {
	return accounts.Actor{}, nil, http.ErrNoCookie
}

type spec struct {
	OpenAPI    string                          `yaml:"openapi"`
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Flows struct {
				ClientCredentials struct {
					Scopes map[string]string `yaml:"scopes"`
				} `yaml:"clientCredentials"`
			} `yaml:"flows"`
		} `yaml:"securitySchemes"`
		Parameters map[string]struct {
			Name string `yaml:"name"`
			In   string `yaml:"in"`
		} `yaml:"parameters"`
	} `yaml:"components"`
}

type operation struct {
	Security   *[]map[string][]string `yaml:"security"`
	Responses  map[string]yaml.Node   `yaml:"responses"`
	Parameters []parameter            `yaml:"parameters"`
}

type parameter struct {
	Ref  string `yaml:"$ref"`
	Name string `yaml:"name"`
	In   string `yaml:"in"`
}

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

func loadSpec(t *testing.T) spec {
	t.Helper()
	var s spec
	if err := yaml.Unmarshal(openAPISpec, &s); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(s.OpenAPI, "3.1") {
		t.Fatalf("openapi %q", s.OpenAPI)
	}
	return s
}

// routerRoutes walks the router of a server with the API on (and pprof
// off: it is a debugging aid, not part of the API) and returns
// "METHOD /path/{template}" for every route.
func routerRoutes(t *testing.T) []string {
	t.Helper()
	r := newRouter(Deps{Accounts: (*accounts.Service)(nil), Tokens: noTokens{}})
	var out []string
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			t.Errorf("route %s has no methods: every route must say which it serves", tpl)
			return nil
		}
		for _, m := range methods {
			out = append(out, m+" "+tpl)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// specRoutes returns "METHOD /path/{template}" for every operation.
func specRoutes(s spec) []string {
	var out []string
	for path, item := range s.Paths {
		for key := range item {
			if slices.Contains(httpMethods, key) {
				out = append(out, strings.ToUpper(key)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIMatchesRouter fails when a route is missing from the spec or
// the spec describes a route that does not exist. Mux templates and
// OpenAPI paths share the {name} syntax; a template with a regexp
// ({id:[0-9]+}) is compared by its name.
func TestOpenAPIMatchesRouter(t *testing.T) {
	s := loadSpec(t)
	norm := regexp.MustCompile(`\{([^}:]+)(:[^}]*)?\}`)
	have := map[string]bool{}
	for _, r := range routerRoutes(t) {
		have[norm.ReplaceAllString(r, "{$1}")] = true
	}
	described := map[string]bool{}
	for _, r := range specRoutes(s) {
		described[r] = true
	}
	for r := range have {
		if !described[r] {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for r := range described {
		if !have[r] {
			t.Errorf("openapi.yaml describes %s, which the router does not serve", r)
		}
	}
	if len(have) < 40 {
		t.Fatalf("only %d routes: is the API registered?", len(have))
	}
}

// TestOpenAPIOperations checks what each operation says against the route
// table: the scopes it needs, its path parameters, and that the auth
// failures are described.
func TestOpenAPIOperations(t *testing.T) {
	s := loadSpec(t)
	declared := s.Components.SecuritySchemes["bearer"].Flows.ClientCredentials.Scopes
	if got, want := sortedKeys(declared), slices.Sorted(slices.Values(AllScopes())); !slices.Equal(got, want) {
		t.Errorf("scopes in the spec %v, in the code %v", got, want)
	}
	pathParams := regexp.MustCompile(`\{([^}]+)\}`)
	for _, rt := range apiRoutes(Deps{}) {
		name := rt.method + " " + rt.path
		item, ok := s.Paths[rt.path]
		if !ok {
			continue // TestOpenAPIMatchesRouter reports it
		}
		node, ok := item[strings.ToLower(rt.method)]
		if !ok {
			continue
		}
		var op operation
		if err := node.Decode(&op); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var scopes []string
		if op.Security != nil {
			for _, req := range *op.Security {
				scopes = append(scopes, req["bearer"]...)
			}
		}
		if !slices.Equal(slices.Sorted(slices.Values(scopes)), slices.Sorted(slices.Values(rt.scopes))) {
			t.Errorf("%s: the spec asks for scopes %v, the route for %v", name, scopes, rt.scopes)
		}
		for _, code := range []string{"401", "403"} {
			if _, ok := op.Responses[code]; !ok {
				t.Errorf("%s: no %s response", name, code)
			}
		}
		if strings.Contains(rt.path, "{") {
			if _, ok := op.Responses["404"]; !ok {
				t.Errorf("%s: no 404 response", name)
			}
		}
		// Every path variable is a declared path parameter (at the path
		// or the operation level).
		var params []parameter
		if pn, ok := item["parameters"]; ok {
			if err := pn.Decode(&params); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		params = append(params, op.Parameters...)
		for _, m := range pathParams.FindAllStringSubmatch(rt.path, -1) {
			found := false
			for _, p := range params {
				if p.Ref != "" {
					c := s.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
					p.Name, p.In = c.Name, c.In
				}
				found = found || (p.Name == m[1] && p.In == "path")
			}
			if !found {
				t.Errorf("%s: path parameter %s is not declared", name, m[1])
			}
		}
	}
}
