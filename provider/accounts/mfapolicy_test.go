package accounts

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// lastAudit is the newest audit event about target with action.
func (e *testEnv) lastAudit(t *testing.T, target, action string) storage.AuditEvent {
	t.Helper()
	evs, err := e.svc.ListAudit(e.ctx, storage.AuditQuery{TargetID: target, Actions: []string{action}, Limit: 1})
	must(t, err)
	if len(evs) == 0 {
		t.Fatalf("no %s event for %s", action, target)
	}
	return evs[0]
}

func ptrTo[T any](v T) *T { return &v }

// A client's require_mfa is set at creation, changed only when asked, and
// every change is in the audit log.
func TestClientRequireMFA(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := newEnv(t, dsn(t))
		c, _, err := e.svc.CreateClient(e.ctx, ClientSpec{Name: "Bank", RedirectURIs: []string{"https://bank.example/cb"},
			RequireMFA: true})
		must(t, err)
		if !c.RequireMFA {
			t.Fatal("created without require_mfa")
		}
		if ev := e.lastAudit(t, c.ID, AuditClientCreate); ev.Changes["require_mfa"] != true {
			t.Errorf("client.create changes = %v, want require_mfa true", ev.Changes)
		}

		for _, tc := range []struct {
			name string
			up   ClientUpdate
			want bool
			// audited is the require_mfa value the update's event
			// records; nil when the update did not touch it.
			audited any
		}{
			{"unrelated change keeps it", ClientUpdate{Name: ptrTo("Bank (renamed)")}, true, nil},
			{"off", ClientUpdate{RequireMFA: ptrTo(false)}, false, false},
			{"unrelated change keeps it off", ClientUpdate{FirstParty: ptrTo(true)}, false, nil},
			{"on", ClientUpdate{RequireMFA: ptrTo(true)}, true, true},
		} {
			got, err := e.svc.UpdateClient(e.ctx, c.ID, tc.up)
			must(t, err)
			stored, err := e.svc.GetClient(e.ctx, c.ID)
			must(t, err)
			if got.RequireMFA != tc.want || stored.RequireMFA != tc.want {
				t.Errorf("%s: returned %v, stored %v, want %v", tc.name, got.RequireMFA, stored.RequireMFA, tc.want)
			}
			ev := e.lastAudit(t, c.ID, AuditClientUpdate)
			if v, ok := ev.Changes["require_mfa"]; (tc.audited == nil && ok) || (tc.audited != nil && v != tc.audited) {
				t.Errorf("%s: client.update changes = %v", tc.name, ev.Changes)
			}
		}

		plain, _, err := e.svc.CreateClient(e.ctx, ClientSpec{Name: "Plain", RedirectURIs: []string{"https://plain.example/cb"}})
		must(t, err)
		if plain.RequireMFA {
			t.Fatal("require_mfa on by default")
		}
	})
}

// A tier's require_mfa is audited like its other fields.
func TestTierRequireMFAField(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := newEnv(t, dsn(t))
		tr, err := e.svc.CreateTier(e.ctx, TierSpec{Name: ptrTo("Enterprise"), RequireMFA: ptrTo(true)})
		must(t, err)
		got, err := e.svc.GetTier(e.ctx, tr.ID)
		must(t, err)
		if !tr.RequireMFA || !got.RequireMFA {
			t.Fatalf("created %v, stored %v, want require_mfa", tr.RequireMFA, got.RequireMFA)
		}
		if ev := e.lastAudit(t, tr.ID, AuditTierCreate); ev.Changes["require_mfa"] != true {
			t.Errorf("tier.create changes = %v", ev.Changes)
		}
		tr, err = e.svc.UpdateTier(e.ctx, tr.ID, TierSpec{Description: ptrTo("big customers")})
		must(t, err)
		if !tr.RequireMFA {
			t.Fatal("an unrelated change turned require_mfa off")
		}
		if ev := e.lastAudit(t, tr.ID, AuditTierUpdate); ev.Changes["require_mfa"] != nil {
			t.Errorf("tier.update of the description records require_mfa: %v", ev.Changes)
		}
		tr, err = e.svc.UpdateTier(e.ctx, tr.ID, TierSpec{RequireMFA: ptrTo(false)})
		must(t, err)
		got, err = e.svc.GetTier(e.ctx, tr.ID)
		must(t, err)
		if tr.RequireMFA || got.RequireMFA {
			t.Fatalf("after turning off: returned %v, stored %v", tr.RequireMFA, got.RequireMFA)
		}
		if ev := e.lastAudit(t, tr.ID, AuditTierUpdate); ev.Changes["require_mfa"] != false {
			t.Errorf("tier.update changes = %v", ev.Changes)
		}
	})
}

// TierRequiresMFA answers from the tier cache: a change made through the
// Service shows at once, one made elsewhere (another replica) within the
// cache's lifetime, and a tier the cache has never seen is looked up.
func TestTierRequiresMFA(t *testing.T) {
	e := sqliteEnv(t)
	strict, err := e.svc.CreateTier(e.ctx, TierSpec{Name: ptrTo("Strict"), RequireMFA: ptrTo(true)})
	must(t, err)
	lax, err := e.svc.CreateTier(e.ctx, TierSpec{Name: ptrTo("Lax")})
	must(t, err)
	ada := e.user(t, "ada", "ada@example.com", true)
	bob := e.user(t, "bob", "bob@example.com", true)
	none := e.user(t, "eve", "eve@example.com", true)
	ada, err = e.svc.AssignTier(e.ctx, ada.ID, strict.ID)
	must(t, err)
	bob, err = e.svc.AssignTier(e.ctx, bob.ID, lax.ID)
	must(t, err)

	for _, tc := range []struct {
		name string
		u    *storage.User
		want bool
	}{
		{"no tier", none, false},
		{"tier requires", ada, true},
		{"tier does not", bob, false},
		{"nil user", nil, false},
	} {
		if got := e.svc.TierRequiresMFA(e.ctx, tc.u); got != tc.want {
			t.Errorf("%s: TierRequiresMFA = %v, want %v", tc.name, got, tc.want)
		}
	}

	// Through the Service: at once.
	_, err = e.svc.UpdateTier(e.ctx, lax.ID, TierSpec{RequireMFA: ptrTo(true)})
	must(t, err)
	if !e.svc.TierRequiresMFA(e.ctx, bob) {
		t.Fatal("a tier change through the Service is not seen at once")
	}

	// Behind the Service's back: cached until the lifetime ends.
	lax, err = e.st.GetTier(e.ctx, lax.ID)
	must(t, err)
	lax.RequireMFA = false
	must(t, e.st.UpdateTier(e.ctx, lax))
	if !e.svc.TierRequiresMFA(e.ctx, bob) {
		t.Fatal("a change made elsewhere was seen before the cache expired")
	}
	e.clock.Advance(tierCacheTTL + time.Second)
	if e.svc.TierRequiresMFA(e.ctx, bob) {
		t.Fatal("a change made elsewhere is not seen once the cache expired")
	}

	// A tier created and assigned elsewhere since the last load.
	must(t, e.st.CreateTier(e.ctx, &storage.Tier{ID: "t_other", Name: "Other replica", RequireMFA: true}))
	must(t, e.st.SetUserTier(e.ctx, none.ID, "t_other"))
	if !e.svc.TierRequiresMFA(e.ctx, e.get(t, none.ID)) {
		t.Fatal("a tier unknown to the cache was not looked up")
	}

	// Tiers that cannot be read: ask for the factor rather than skip it.
	e.clock.Advance(tierCacheTTL + time.Second)
	must(t, e.st.Close())
	if !e.svc.TierRequiresMFA(e.ctx, bob) {
		t.Fatal("with the store unreadable, TierRequiresMFA failed open")
	}
	if e.svc.TierRequiresMFA(e.ctx, &storage.User{ID: "u_x"}) {
		t.Fatal("a user on no tier needs no store and no factor")
	}
}
