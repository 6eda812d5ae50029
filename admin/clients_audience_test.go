package admin_test

import (
	"slices"
	"testing"
)

// A client's resource servers (RFC 8707) are set at registration and by
// PATCH, with the rules the CLI uses.
func TestClientAudience(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		var c struct {
			ClientID string   `json:"client_id"`
			Audience []string `json:"audience"`
		}
		want(t, e.send(t, req{method: "POST", path: "/v1/clients", token: "tok-clients", body: `{
			"name": "Reports", "grant_types": ["client_credentials"], "scopes": ["api"],
			"audience": ["https://api.example/reports"]}`}), 201).json(t, &c)
		if !slices.Equal(c.Audience, []string{"https://api.example/reports"}) {
			t.Fatalf("created %+v", c)
		}
		path := "/v1/clients/" + c.ClientID
		want(t, e.send(t, req{method: "PATCH", path: path, token: "tok-clients",
			body: `{"audience":["https://api.example/reports","urn:example:billing"]}`}), 200).json(t, &c)
		stored, err := e.acc.GetClient(e.ctx, c.ClientID)
		must(t, err)
		if !slices.Equal(c.Audience, stored.Audience) || len(stored.Audience) != 2 {
			t.Fatalf("patched %+v, stored %v", c, stored.Audience)
		}
		want(t, e.send(t, req{method: "PATCH", path: path, token: "tok-clients", body: `{"audience":null}`}), 200).json(t, &c)
		if len(c.Audience) != 0 {
			t.Fatalf("cleared %+v", c)
		}
		for _, tt := range []struct{ name, method, path, body string }{
			{"relative", "PATCH", path, `{"audience":["/api"]}`},
			{"fragment", "PATCH", path, `{"audience":["https://api.example/#x"]}`},
			{"no host", "PATCH", path, `{"audience":["https:///api"]}`},
			{"userinfo", "PATCH", path, `{"audience":["https://me@api.example/"]}`},
			{"space", "PATCH", path, `{"audience":["https://api.example/a b"]}`},
			{"twice", "PATCH", path, `{"audience":["https://api.example/","https://api.example/"]}`},
			{"create relative", "POST", "/v1/clients", `{"name":"x","grant_types":["client_credentials"],"audience":["api"]}`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				wantField(t, e.send(t, req{method: tt.method, path: tt.path, token: "tok-clients", body: tt.body}), 422, "audience")
			})
		}
	})
}
