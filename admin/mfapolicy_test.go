package admin_test

import (
	"testing"

	"github.com/latchkey/latchkey/provider/accounts"
)

// require_mfa on clients (issue 10 §3): off unless asked, set at creation,
// changed by PATCH only when named, shown by every view, audited.
func TestClientRequireMFA(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		type view struct {
			ClientID   string `json:"client_id"`
			Name       string `json:"name"`
			RequireMFA *bool  `json:"require_mfa"`
		}
		var plain, strict view
		want(t, e.send(t, req{method: "POST", path: "/v1/clients", token: "tok-clients",
			body: `{"name":"Plain","redirect_uris":["https://plain.example/cb"]}`}), 201).json(t, &plain)
		want(t, e.send(t, req{method: "POST", path: "/v1/clients", token: "tok-clients",
			body: `{"name":"Bank","redirect_uris":["https://bank.example/cb"],"require_mfa":true}`}), 201).json(t, &strict)
		if plain.RequireMFA == nil || *plain.RequireMFA || strict.RequireMFA == nil || !*strict.RequireMFA {
			t.Fatalf("created plain %+v, strict %+v", plain, strict)
		}
		if ev := e.wantEvent(t, strict.ClientID, accounts.AuditClientCreate, "c_clients"); ev.Changes["require_mfa"] != true {
			t.Errorf("client.create changes = %v", ev.Changes)
		}

		// check reads the client through GET, the list and the store.
		check := func(t *testing.T, id string, wantMFA bool) {
			t.Helper()
			var got view
			want(t, e.send(t, req{method: "GET", path: "/v1/clients/" + id, token: "tok-clients"}), 200).json(t, &got)
			var list struct{ Clients []view }
			want(t, e.send(t, req{method: "GET", path: "/v1/clients", token: "tok-clients"}), 200).json(t, &list)
			listed := false
			for _, c := range list.Clients {
				if c.ClientID == id && c.RequireMFA != nil && *c.RequireMFA == wantMFA {
					listed = true
				}
			}
			stored, err := e.acc.GetClient(e.ctx, id)
			must(t, err)
			if got.RequireMFA == nil || *got.RequireMFA != wantMFA || !listed || stored.RequireMFA != wantMFA {
				t.Fatalf("%s: GET %+v, listed %v, stored %v; want require_mfa %v", id, got, listed, stored.RequireMFA, wantMFA)
			}
		}
		check(t, plain.ClientID, false)
		check(t, strict.ClientID, true)

		for _, tc := range []struct {
			name, id, body string
			want           bool
			audited        any // the require_mfa the client.update event records; nil: none
		}{
			{"on", plain.ClientID, `{"require_mfa":true}`, true, true},
			{"other field keeps it", plain.ClientID, `{"name":"Plain v2"}`, true, nil},
			{"off", strict.ClientID, `{"require_mfa":false}`, false, false},
			{"with other fields", strict.ClientID, `{"require_mfa":true,"first_party":true}`, true, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var got view
				want(t, e.send(t, req{method: "PATCH", path: "/v1/clients/" + tc.id, token: "tok-clients", body: tc.body}), 200).json(t, &got)
				if got.RequireMFA == nil || *got.RequireMFA != tc.want {
					t.Fatalf("PATCH %s answered %+v", tc.body, got)
				}
				check(t, tc.id, tc.want)
				ev := e.wantEvent(t, tc.id, accounts.AuditClientUpdate, "c_clients")
				if v, ok := ev.Changes["require_mfa"]; (tc.audited == nil && ok) || (tc.audited != nil && v != tc.audited) {
					t.Errorf("client.update changes = %v", ev.Changes)
				}
			})
		}

		for _, tt := range []struct{ name, method, path, body string }{
			{"create string", "POST", "/v1/clients", `{"name":"x","redirect_uris":["https://a.example/cb"],"require_mfa":"yes"}`},
			{"patch string", "PATCH", "/v1/clients/" + plain.ClientID, `{"require_mfa":"yes"}`},
			{"patch number", "PATCH", "/v1/clients/" + plain.ClientID, `{"require_mfa":1}`},
			{"patch null", "PATCH", "/v1/clients/" + plain.ClientID, `{"require_mfa":null}`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := e.send(t, req{method: tt.method, path: tt.path, token: "tok-clients", body: tt.body})
				if r.status != 400 && r.status != 422 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				wantField(t, r, r.status, "require_mfa")
			})
		}
		check(t, plain.ClientID, true) // the refused changes left it alone
	})
}

// require_mfa on tiers: the same, and the accounts rule that decides
// sign-ins (TierRequiresMFA) sees a PATCH at once.
func TestTierRequireMFA(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		type view struct {
			ID         string `json:"id"`
			RequireMFA *bool  `json:"require_mfa"`
		}
		var plain, strict view
		want(t, e.send(t, req{method: "POST", path: "/v1/tiers", token: "tok-tiers", body: `{"name":"Free"}`}), 201).json(t, &plain)
		want(t, e.send(t, req{method: "POST", path: "/v1/tiers", token: "tok-tiers",
			body: `{"name":"Enterprise","require_mfa":true}`}), 201).json(t, &strict)
		if plain.RequireMFA == nil || *plain.RequireMFA || strict.RequireMFA == nil || !*strict.RequireMFA {
			t.Fatalf("created plain %+v, strict %+v", plain, strict)
		}
		if ev := e.wantEvent(t, strict.ID, accounts.AuditTierCreate, "c_tiers"); ev.Changes["require_mfa"] != true {
			t.Errorf("tier.create changes = %v", ev.Changes)
		}
		u := e.createUser(t, "ent")
		want(t, e.send(t, req{method: "PUT", path: "/v1/users/" + u.ID + "/tier", token: "tok-admin",
			body: `{"tier":"` + strict.ID + `"}`}), 200)
		user, err := e.acc.GetUserAny(e.ctx, u.ID)
		must(t, err)

		check := func(t *testing.T, id string, wantMFA bool) {
			t.Helper()
			var got view
			want(t, e.send(t, req{method: "GET", path: "/v1/tiers/" + id, token: "tok-tiers"}), 200).json(t, &got)
			var list struct{ Tiers []view }
			want(t, e.send(t, req{method: "GET", path: "/v1/tiers", token: "tok-tiers"}), 200).json(t, &list)
			listed := false
			for _, tr := range list.Tiers {
				if tr.ID == id && tr.RequireMFA != nil && *tr.RequireMFA == wantMFA {
					listed = true
				}
			}
			if got.RequireMFA == nil || *got.RequireMFA != wantMFA || !listed {
				t.Fatalf("%s: GET %+v, listed %v; want require_mfa %v", id, got, listed, wantMFA)
			}
		}
		check(t, plain.ID, false)
		check(t, strict.ID, true)
		if !e.acc.TierRequiresMFA(e.ctx, user) {
			t.Fatal("a user on a require_mfa tier does not need a second factor")
		}

		var got view
		want(t, e.send(t, req{method: "PATCH", path: "/v1/tiers/" + strict.ID, token: "tok-tiers", body: `{"require_mfa":false}`}), 200).json(t, &got)
		if got.RequireMFA == nil || *got.RequireMFA {
			t.Fatalf("PATCH answered %+v", got)
		}
		check(t, strict.ID, false)
		if ev := e.wantEvent(t, strict.ID, accounts.AuditTierUpdate, "c_tiers"); ev.Changes["require_mfa"] != false {
			t.Errorf("tier.update changes = %v", ev.Changes)
		}
		if e.acc.TierRequiresMFA(e.ctx, user) {
			t.Fatal("TierRequiresMFA does not see the PATCH at once")
		}
		want(t, e.send(t, req{method: "PATCH", path: "/v1/tiers/" + strict.ID, token: "tok-tiers", body: `{"description":"big"}`}), 200)
		check(t, strict.ID, false)

		for _, tt := range []struct{ name, method, path, body string }{
			{"create string", "POST", "/v1/tiers", `{"name":"x","require_mfa":"yes"}`},
			{"patch string", "PATCH", "/v1/tiers/" + plain.ID, `{"require_mfa":"yes"}`},
			{"patch null", "PATCH", "/v1/tiers/" + plain.ID, `{"require_mfa":null}`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := e.send(t, req{method: tt.method, path: tt.path, token: "tok-tiers", body: tt.body})
				if r.status != 400 && r.status != 422 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				wantField(t, r, r.status, "require_mfa")
			})
		}
	})
}
