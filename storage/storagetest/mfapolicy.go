package storagetest

import (
	"reflect"
	"testing"

	"github.com/latchkey/latchkey/storage"
)

// testMFAPolicy round-trips the require_mfa flags of clients and tiers
// (issue 10 §3) through every read path, including the client cache the
// store runs with (see Run): turning the flag off must take effect at
// once, or a client would keep demanding (or skipping) a second factor.
func testMFAPolicy(t *testing.T, st storage.Store) {
	t.Run("client", func(t *testing.T) {
		plain := mkClient(t, st, "c-plain")
		strict := &storage.Client{
			ID: "c-strict", Name: "Strict", SecretHash: []byte{1}, RedirectURIs: []string{"https://strict.example/cb"},
			GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, Scopes: []string{"openid"},
			RequireMFA: true,
		}
		must(t, st.CreateClient(bg, strict))

		read := func(id string) (byID, cached bool, listed *bool) {
			t.Helper()
			c, err := st.GetClientByID(bg, id)
			must(t, err)
			fc, err := st.GetClient(bg, id)
			must(t, err)
			list, err := st.ListClients(bg)
			must(t, err)
			for i := range list {
				if list[i].ID == id {
					listed = &list[i].RequireMFA
				}
			}
			if listed == nil {
				t.Fatalf("ListClients misses %s", id)
			}
			return c.RequireMFA, fc.(*storage.Client).RequireMFA, listed
		}
		for _, tc := range []struct {
			id   string
			want bool
		}{{plain.ID, false}, {strict.ID, true}} {
			if a, b, c := read(tc.id); a != tc.want || b != tc.want || *c != tc.want {
				t.Errorf("%s: RequireMFA by id %v, cached %v, listed %v; want %v", tc.id, a, b, *c, tc.want)
			}
		}
		got, err := st.GetClientByID(bg, strict.ID)
		must(t, err)
		if !reflect.DeepEqual(got, strict) {
			t.Fatalf("GetClientByID = %+v\nwant %+v", got, strict)
		}

		// Both directions through UpdateClient, each seen at once through
		// the cache.
		for _, flip := range []struct {
			c    *storage.Client
			want bool
		}{{strict, false}, {plain, true}, {strict, true}} {
			flip.c.RequireMFA = flip.want
			must(t, st.UpdateClient(bg, flip.c))
			if a, b, c := read(flip.c.ID); a != flip.want || b != flip.want || *c != flip.want {
				t.Errorf("%s after update: RequireMFA by id %v, cached %v, listed %v; want %v",
					flip.c.ID, a, b, *c, flip.want)
			}
		}
	})

	t.Run("tier", func(t *testing.T) {
		plain := mkTier(t, st, "t-plain", "Plain", false)
		strict := &storage.Tier{ID: "t-strict", Name: "Strict", IsDefault: true, RequireMFA: true}
		must(t, st.CreateTier(bg, strict))

		read := func(id string) (got, listed bool) {
			t.Helper()
			tr, err := st.GetTier(bg, id)
			must(t, err)
			list, err := st.ListTiers(bg)
			must(t, err)
			found := false
			for _, l := range list {
				if l.ID == id {
					listed, found = l.RequireMFA, true
				}
			}
			if !found {
				t.Fatalf("ListTiers misses %s", id)
			}
			return tr.RequireMFA, listed
		}
		if a, b := read(plain.ID); a || b {
			t.Errorf("plain tier: RequireMFA %v, listed %v; want false", a, b)
		}
		if a, b := read(strict.ID); !a || !b {
			t.Errorf("strict tier: RequireMFA %v, listed %v; want true", a, b)
		}
		def, err := st.GetDefaultTier(bg)
		must(t, err)
		if !reflect.DeepEqual(def, strict) {
			t.Fatalf("GetDefaultTier = %+v\nwant %+v", def, strict)
		}

		for _, flip := range []struct {
			tr   *storage.Tier
			want bool
		}{{strict, false}, {plain, true}} {
			flip.tr.RequireMFA = flip.want
			must(t, st.UpdateTier(bg, flip.tr))
			if a, b := read(flip.tr.ID); a != flip.want || b != flip.want {
				t.Errorf("%s after update: RequireMFA %v, listed %v; want %v", flip.tr.ID, a, b, flip.want)
			}
		}
		// Other fields are untouched by the flag.
		got, err := st.GetTier(bg, plain.ID)
		must(t, err)
		if got.Name != "Plain" || got.Description != plain.Description || got.IsDefault {
			t.Fatalf("plain tier after update = %+v", got)
		}
	})
}
