package admin_test

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testdb"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/provider/keys"
)

type keyJSON struct {
	ID          string     `json:"id"`
	Algorithm   string     `json:"algorithm"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatesAt time.Time  `json:"activates_at"`
	RetiredAt   *time.Time `json:"retired_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
}

func (e *env) listKeys(t *testing.T) []keyJSON {
	t.Helper()
	var out struct{ Keys []keyJSON }
	r := want(t, e.send(t, req{method: "GET", path: "/v1/keys", token: "tok-keys"}), 200)
	r.json(t, &out)
	return out.Keys
}

func byAlg(ks []keyJSON, alg, state string) []keyJSON {
	var out []keyJSON
	for _, k := range ks {
		if k.Algorithm == alg && (state == "" || k.State == state) {
			out = append(out, k)
		}
	}
	return out
}

// twinKeys adds a second signing key per algorithm, as two replicas
// initialising an empty database at once would: made by another manager
// (same secret) on a scratch database and copied over.
func (e *env) twinKeys(t *testing.T) {
	t.Helper()
	scratch := testdb.OpenStore(t, testdb.SQLite(t))
	km, err := keys.New(scratch, keys.Config{Secret: []byte(keySecret)})
	must(t, err)
	must(t, km.Init(e.ctx))
	rows, err := scratch.ListSigningKeys(e.ctx)
	must(t, err)
	for i := range rows {
		must(t, e.st.CreateSigningKey(e.ctx, &rows[i]))
	}
}

func TestKeys(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ks := e.listKeys(t)
		if len(ks) != 2 || len(byAlg(ks, keys.RS256, keys.StateActive)) != 1 || len(byAlg(ks, keys.ES256, keys.StateActive)) != 1 {
			t.Fatalf("initial keys %+v", ks)
		}
		first := byAlg(ks, keys.RS256, "")[0]

		// The only RS256 signer cannot be retired.
		p := problemOf(t, e.send(t, req{method: "POST", path: "/v1/keys/" + first.ID + "/retire", token: "tok-keys"}), 409)
		if p.Type != "https://latchkey.dev/problems/last-key" {
			t.Fatalf("%+v", p)
		}
		problemOf(t, e.send(t, req{method: "POST", path: "/v1/keys/k_nope/retire", token: "tok-keys"}), 404)
		wantField(t, e.send(t, req{method: "POST", path: "/v1/keys/rotate", token: "tok-keys", body: `{"now":"yes"}`}), 400, "now")
		wantField(t, e.send(t, req{method: "POST", path: "/v1/keys/rotate", token: "tok-keys", body: `{"later":true}`}), 400, "later")

		// Retiring a key another key of its algorithm covers: 204, and
		// it no longer signs but stays published.
		e.twinKeys(t)
		want(t, e.send(t, req{method: "POST", path: "/v1/keys/" + first.ID + "/retire", token: "tok-keys"}), 204)
		if ev := e.wantEvent(t, first.ID, accounts.AuditKeyRetire, "c_keys"); ev.Changes["algorithm"] != keys.RS256 {
			t.Fatalf("event %+v", ev)
		}
		for _, k := range e.listKeys(t) {
			if k.ID == first.ID && (k.State != keys.StateRetiring || k.RetiredAt == nil || k.ExpiresAt == nil) {
				t.Fatalf("retired key %+v", k)
			}
		}
		// Retiring it again changes nothing and records nothing more.
		n := len(e.events(t, first.ID))
		want(t, e.send(t, req{method: "POST", path: "/v1/keys/" + first.ID + "/retire", token: "tok-keys"}), 204)
		if len(e.events(t, first.ID)) != n {
			t.Fatal("a second retire was recorded")
		}

		// A scheduled rotation: the new keys are published, and sign later.
		var rot struct{ Keys []keyJSON }
		want(t, e.send(t, req{method: "POST", path: "/v1/keys/rotate", token: "tok-keys"}), 200).json(t, &rot)
		if len(rot.Keys) != 2 {
			t.Fatalf("%+v", rot)
		}
		for _, k := range rot.Keys {
			if k.State != keys.StateNext || !k.ActivatesAt.After(k.CreatedAt) {
				t.Fatalf("rotated key %+v", k)
			}
			ev := e.wantEvent(t, k.ID, accounts.AuditKeyRotate, "c_keys")
			if ev.Changes["algorithm"] != k.Algorithm || ev.Changes["immediate"] != false {
				t.Fatalf("event %+v", ev)
			}
		}
		if len(e.listKeys(t)) != 6 { // 2 initial, 2 twins, 2 new
			t.Fatal("not 6 keys after a rotation")
		}

		// An emergency rotation signs at once.
		want(t, e.send(t, req{method: "POST", path: "/v1/keys/rotate", token: "tok-keys", body: `{"now":true}`}), 200).json(t, &rot)
		for _, k := range rot.Keys {
			if k.State != keys.StateActive {
				t.Fatalf("immediate rotation: %+v", k)
			}
			if ev := e.wantEvent(t, k.ID, accounts.AuditKeyRotate, "c_keys"); ev.Changes["immediate"] != true {
				t.Fatalf("event %+v", ev)
			}
		}
	})
}
