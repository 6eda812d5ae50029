package admin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/provider/accounts"
)

type tierJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	IsDefault   bool      `json:"is_default"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func (e *env) createTier(t *testing.T, body string) tierJSON {
	t.Helper()
	var tr tierJSON
	want(t, e.send(t, req{method: "POST", path: "/v1/tiers", token: "tok-tiers", body: body}), 201).json(t, &tr)
	return tr
}

func (e *env) getTier(t *testing.T, id string) tierJSON {
	t.Helper()
	var tr tierJSON
	want(t, e.send(t, req{method: "GET", path: "/v1/tiers/" + id, token: "tok-tiers"}), 200).json(t, &tr)
	return tr
}

func TestTierCRUD(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		r := want(t, e.send(t, req{method: "POST", path: "/v1/tiers", token: "tok-tiers", body: `{"name":" Free ","description":"the free plan"}`}), 201)
		var free tierJSON
		r.json(t, &free)
		if free.Name != "Free" || free.Description != "the free plan" || free.IsDefault || r.header.Get("Location") != "/v1/tiers/"+free.ID {
			t.Fatalf("%s %q", r.body, r.header.Get("Location"))
		}
		e.wantEvent(t, free.ID, accounts.AuditTierCreate, "c_tiers")
		pro := e.createTier(t, `{"name":"Pro"}`)

		var list struct{ Tiers []tierJSON }
		want(t, e.send(t, req{method: "GET", path: "/v1/tiers", token: "tok-tiers"}), 200).json(t, &list)
		if len(list.Tiers) != 2 || list.Tiers[0].Name != "Free" || list.Tiers[1].Name != "Pro" {
			t.Fatalf("%+v", list)
		}

		var got tierJSON
		want(t, e.send(t, req{method: "PATCH", path: "/v1/tiers/" + pro.ID, token: "tok-tiers", body: `{"name":"Pro+","description":null}`}), 200).json(t, &got)
		if got.Name != "Pro+" || got.Description != "" || got.ID != pro.ID {
			t.Fatalf("%+v", got)
		}
		if e.getTier(t, pro.ID).Name != "Pro+" {
			t.Fatal("PATCH not stored")
		}
		e.wantEvent(t, pro.ID, accounts.AuditTierUpdate, "c_tiers")

		want(t, e.send(t, req{method: "DELETE", path: "/v1/tiers/" + pro.ID, token: "tok-tiers"}), 204)
		problemOf(t, e.send(t, req{method: "GET", path: "/v1/tiers/" + pro.ID, token: "tok-tiers"}), 404)
		e.wantEvent(t, pro.ID, accounts.AuditTierDelete, "c_tiers")

		other := e.createTier(t, `{"name":"Other"}`)
		for _, tt := range []struct {
			name, method, path, body string
			status                   int
			field                    string
		}{
			{"no name", "POST", "/v1/tiers", `{"description":"x"}`, 422, "name"},
			{"empty name", "POST", "/v1/tiers", `{"name":"  "}`, 422, "name"},
			{"long name", "POST", "/v1/tiers", `{"name":"` + strings.Repeat("n", 65) + `"}`, 422, "name"},
			{"taken name", "POST", "/v1/tiers", `{"name":"free"}`, 409, "name"},
			{"unknown field", "POST", "/v1/tiers", `{"name":"x","price":5}`, 400, "price"},
			{"patch unknown field", "PATCH", "/v1/tiers/" + free.ID, `{"price":5}`, 400, "price"},
			{"patch id", "PATCH", "/v1/tiers/" + free.ID, `{"id":"t_x"}`, 422, "id"},
			{"patch rate limits", "PATCH", "/v1/tiers/" + free.ID, `{"rate_limits":[]}`, 422, "rate_limits"},
			{"patch null name", "PATCH", "/v1/tiers/" + free.ID, `{"name":null}`, 422, "name"},
			{"patch taken name", "PATCH", "/v1/tiers/" + other.ID, `{"name":"FREE"}`, 409, "name"},
			{"patch unknown tier", "PATCH", "/v1/tiers/t_nope", `{"name":"x"}`, 404, ""},
			{"delete unknown tier", "DELETE", "/v1/tiers/t_nope", ``, 404, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var body any
				if tt.body != "" {
					body = tt.body
				}
				r := e.send(t, req{method: tt.method, path: tt.path, token: "tok-tiers", body: body})
				wantField(t, r, tt.status, tt.field)
			})
		}
	})
}

func TestTierDefaultAndDelete(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		a := e.createTier(t, `{"name":"A","is_default":true}`)
		b := e.createTier(t, `{"name":"B"}`)
		// New users go on the default tier.
		u := e.createUser(t, "onA")
		if u.Tier == nil || *u.Tier != a.ID {
			t.Fatalf("user tier %v, want %s", u.Tier, a.ID)
		}
		// One default at a time.
		want(t, e.send(t, req{method: "PATCH", path: "/v1/tiers/" + b.ID, token: "tok-tiers", body: `{"is_default":true}`}), 200)
		if !e.getTier(t, b.ID).IsDefault || e.getTier(t, a.ID).IsDefault {
			t.Fatal("two defaults, or none")
		}
		c := e.createTier(t, `{"name":"C","is_default":true}`)
		if e.getTier(t, b.ID).IsDefault || !e.getTier(t, c.ID).IsDefault {
			t.Fatal("creating a default did not move it")
		}
		// The default cannot be un-defaulted, only replaced, nor deleted.
		wantField(t, e.send(t, req{method: "PATCH", path: "/v1/tiers/" + c.ID, token: "tok-tiers", body: `{"is_default":false}`}), 422, "is_default")
		p := problemOf(t, e.send(t, req{method: "DELETE", path: "/v1/tiers/" + c.ID, token: "tok-tiers"}), 409)
		if !strings.Contains(p.Detail, "default") {
			t.Fatalf("%+v", p)
		}
		// A tier users are on cannot be deleted.
		p = problemOf(t, e.send(t, req{method: "DELETE", path: "/v1/tiers/" + a.ID, token: "tok-tiers"}), 409)
		if !strings.Contains(p.Detail, "users") {
			t.Fatalf("%+v", p)
		}
		want(t, e.do(t, "PUT", "/v1/users/"+u.ID+"/tier", `{"tier":null}`), 200)
		want(t, e.send(t, req{method: "DELETE", path: "/v1/tiers/" + a.ID, token: "tok-tiers"}), 204)
	})
}

type limitsJSON struct {
	RateLimits []struct {
		Match  string `json:"match"`
		Limit  int    `json:"limit"`
		Period string `json:"period"`
	} `json:"rate_limits"`
}

func TestTierRateLimits(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		tr := e.createTier(t, `{"name":"Metered"}`)
		path := "/v1/tiers/" + tr.ID + "/rate-limits"
		var l limitsJSON
		r := want(t, e.send(t, req{method: "GET", path: path, token: "tok-tiers"}), 200)
		r.json(t, &l)
		if l.RateLimits == nil || len(l.RateLimits) != 0 {
			t.Fatalf("%s", r.body)
		}
		r = want(t, e.send(t, req{method: "PUT", path: path, token: "tok-tiers",
			body: `{"rate_limits":[{"match":"api.requests","limit":1000,"period":"1h"},{"match":"/v1/search/*","limit":10,"period":"90s"}]}`}), 200)
		r.json(t, &l)
		if len(l.RateLimits) != 2 || l.RateLimits[0].Match != "/v1/search/*" || l.RateLimits[0].Period != "1m30s" ||
			l.RateLimits[1].Limit != 1000 || l.RateLimits[1].Period != "1h0m0s" {
			t.Fatalf("%s", r.body)
		}
		want(t, e.send(t, req{method: "GET", path: path, token: "tok-tiers"}), 200).json(t, &l)
		if len(l.RateLimits) != 2 {
			t.Fatalf("%+v", l)
		}
		e.wantEvent(t, tr.ID, accounts.AuditTierLimits, "c_tiers")

		for _, tt := range []struct {
			body   string
			status int
			field  string
		}{
			{`{}`, 422, "rate_limits"},
			{`{"rate_limits":[{"match":"a","limit":1,"period":"soon"}]}`, 422, "rate_limits[0].period"},
			{`{"rate_limits":[{"match":"a","limit":1,"period":"1h"},{"match":"b","limit":0,"period":"1h"}]}`, 422, "rate_limits[1].limit"},
			{`{"rate_limits":[{"match":"a","limit":1,"period":"1h"},{"match":"a","limit":2,"period":"1h"}]}`, 422, "rate_limits[1].match"},
			{`{"rate_limits":[{"match":"","limit":1,"period":"1h"}]}`, 422, "rate_limits[0].match"},
			{`{"rate_limits":[{"match":"a","limit":1,"period":"10ms"}]}`, 422, "rate_limits[0].period"},
			{`{"rate_limits":[{"match":"a","limit":1,"period":3600}]}`, 400, "rate_limits.period"},
			{`{"rate_limits":[{"match":"a","limit":1,"period":"1h","burst":3}]}`, 400, "burst"},
		} {
			wantField(t, e.send(t, req{method: "PUT", path: path, token: "tok-tiers", body: tt.body}), tt.status, tt.field)
		}
		// Refused changes left the limits alone.
		want(t, e.send(t, req{method: "GET", path: path, token: "tok-tiers"}), 200).json(t, &l)
		if len(l.RateLimits) != 2 {
			t.Fatalf("%+v", l)
		}
		problemOf(t, e.send(t, req{method: "GET", path: "/v1/tiers/t_nope/rate-limits", token: "tok-tiers"}), 404)
		problemOf(t, e.send(t, req{method: "PUT", path: "/v1/tiers/t_nope/rate-limits", token: "tok-tiers", body: `{"rate_limits":[]}`}), 404)

		// An empty list removes them all.
		want(t, e.send(t, req{method: "PUT", path: path, token: "tok-tiers", body: `{"rate_limits":[]}`}), 200).json(t, &l)
		if len(l.RateLimits) != 0 {
			t.Fatalf("%+v", l)
		}
	})
}

func TestUserTier(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		gold := e.createTier(t, `{"name":"Gold"}`)
		want(t, e.send(t, req{method: "PUT", path: "/v1/tiers/" + gold.ID + "/rate-limits", token: "tok-tiers",
			body: `{"rate_limits":[{"match":"api.requests","limit":5000,"period":"24h"}]}`}), 200)
		u := e.createUser(t, "tiered")
		path := "/v1/users/" + u.ID

		var rl struct {
			Tier *struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"tier"`
			limitsJSON
		}
		r := want(t, e.send(t, req{method: "GET", path: path + "/rate-limits", token: "tok-read"}), 200)
		r.json(t, &rl)
		if rl.Tier != nil || rl.RateLimits == nil || len(rl.RateLimits) != 0 || !strings.Contains(string(r.body), `"tier":null`) {
			t.Fatalf("%s", r.body)
		}

		var got userJSON
		want(t, e.send(t, req{method: "PUT", path: path + "/tier", token: "tok-write", body: `{"tier":"` + gold.ID + `"}`}), 200).json(t, &got)
		if got.Tier == nil || *got.Tier != gold.ID {
			t.Fatalf("%+v", got)
		}
		e.wantEvent(t, u.ID, accounts.AuditUserTier, "c_write")
		want(t, e.send(t, req{method: "GET", path: path + "/rate-limits", token: "tok-read"}), 200).json(t, &rl)
		if rl.Tier == nil || rl.Tier.ID != gold.ID || rl.Tier.Name != "Gold" || len(rl.RateLimits) != 1 ||
			rl.RateLimits[0].Limit != 5000 || rl.RateLimits[0].Period != "24h0m0s" {
			t.Fatalf("%+v", rl)
		}
		// The ETag of the answer is current: it works as If-Match.
		tag := e.do(t, "GET", path, nil).header.Get("ETag")
		want(t, e.send(t, req{method: "PATCH", path: path, token: "tok-write", body: `{"locale":"fr"}`, hdr: map[string]string{"If-Match": tag}}), 200)

		for _, tt := range []struct {
			path, body string
			status     int
			field      string
		}{
			{path + "/tier", `{}`, 422, "tier"},
			{path + "/tier", `{"tier":""}`, 422, "tier"},
			{path + "/tier", `{"tier":"t_nope"}`, 422, "tier"},
			{path + "/tier", `{"tier":7}`, 400, "tier"},
			{"/v1/users/u_nope/tier", `{"tier":"` + gold.ID + `"}`, 404, ""},
		} {
			wantField(t, e.send(t, req{method: "PUT", path: tt.path, token: "tok-write", body: tt.body}), tt.status, tt.field)
		}

		want(t, e.send(t, req{method: "PUT", path: path + "/tier", token: "tok-write", body: `{"tier":null}`}), 200).json(t, &got)
		if got.Tier != nil {
			t.Fatalf("%+v", got)
		}
		problemOf(t, e.do(t, "GET", "/v1/users/u_nope/rate-limits", nil), 404)
	})
}
