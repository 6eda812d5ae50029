package admin_test

import (
	"strings"
	"testing"
)

// A "\u0000" escape in a JSON body is a 400 naming its field, not a store
// error: PostgreSQL refuses NUL in text.
func TestNULInJSONBodies(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "nul1")
		var tier struct{ ID string }
		want(t, e.do(t, "POST", "/v1/tiers", `{"name":"Plain"}`), 201).json(t, &tier)
		for _, tc := range []struct {
			name, method, path, body, field string
		}{
			{"create user", "POST", "/v1/users", `{"username":"nul2","email":"nul2@example.com","display_name":"a\u0000b"}`, "display_name"},
			{"patch user", "PATCH", "/v1/users/" + u.ID, `{"display_name":"\u0000"}`, "display_name"},
			{"create tier", "POST", "/v1/tiers", `{"name":"x\u0000"}`, "name"},
			{"rate limits", "PUT", "/v1/tiers/" + tier.ID + "/rate-limits",
				`{"rate_limits":[{"match":"api","limit":1,"period":"1h"},{"match":"\u0000","limit":1,"period":"1h"}]}`, "rate_limits[1].match"},
			{"create client", "POST", "/v1/clients", `{"name":"App","redirect_uris":["https://app.example/\u0000"]}`, "redirect_uris[0]"},
			{"suspend reason", "POST", "/v1/users/" + u.ID + "/suspend", `{"reason":"\u0000"}`, "reason"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := wantField(t, e.do(t, tc.method, tc.path, tc.body), 400, tc.field)
				if !strings.Contains(p.Detail, "NUL") {
					t.Fatalf("detail %q does not say what is wrong", p.Detail)
				}
			})
		}

		// An import reports the line and goes on with the next one.
		lines := `{"username":"nul3","email":"nul3@example.com","display_name":"\u0000"}` + "\n" +
			`{"username":"nul4","email":"nul4@example.com"}`
		var out struct {
			Imported, Failed int
			Results          []struct {
				Line  int
				OK    bool
				Field string
			}
		}
		want(t, e.send(t, req{method: "POST", path: "/v1/users:import", token: "tok-write", body: lines,
			hdr: map[string]string{"Content-Type": "application/x-ndjson"}}), 200).json(t, &out)
		if out.Imported != 1 || out.Failed != 1 || out.Results[0].Field != "display_name" || !out.Results[1].OK {
			t.Fatalf("import: %+v", out)
		}
	})
}
