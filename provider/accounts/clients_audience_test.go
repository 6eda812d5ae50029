package accounts

import (
	"errors"
	"slices"
	"testing"

	"github.com/latchkey/latchkey/internal/testdb"
)

func TestCheckResourceURI(t *testing.T) {
	tests := []struct {
		uri string
		ok  bool
	}{
		{"https://api.example", true},
		{"https://api.example/v1/reports", true},
		{"https://api.example:8443/v1?tenant=a", true},
		{"http://localhost:9000/api", true},
		{"urn:example:billing", true},
		{"", false},
		{"api", false},
		{"/api", false},
		{"//api.example/x", false},
		{"https://api.example/#frag", false},
		{"https://api.example/#", false},
		{"https:///api", false},
		{"https://user@api.example/", false},
		{"https://api.example/a b", false},
		{"https://api.example/\t", false},
		{"c_0123456789ab", false}, // a client id is not a resource
	}
	for _, tc := range tests {
		err := CheckResourceURI(tc.uri)
		if (err == nil) != tc.ok {
			t.Errorf("CheckResourceURI(%q) = %v, want ok=%v", tc.uri, err, tc.ok)
		}
	}
}

// Audiences are validated like the rest of a client; removing one revokes
// the client's tokens (they may be for it), adding one does not.
func TestClientAudienceUpdate(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	c, _, err := e.svc.CreateClient(e.ctx, ClientSpec{Name: "API client", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"api"}, Audience: []string{"https://a.example"}})
	must(t, err)
	if !slices.Equal(c.Audience, []string{"https://a.example"}) {
		t.Fatalf("created with %v", c.Audience)
	}
	u := e.user(t, "ada", "ada@example.com", true)

	e.oauthTokens(t, c, u.ID, "one")
	added := []string{"https://a.example", "https://b.example"}
	got, err := e.svc.UpdateClient(e.ctx, c.ID, ClientUpdate{Audience: &added})
	must(t, err)
	if !slices.Equal(got.Audience, added) || !e.tokensAlive(t, "one") {
		t.Fatalf("adding an audience: %v, tokens alive %v", got.Audience, e.tokensAlive(t, "one"))
	}
	name := "Renamed"
	got, err = e.svc.UpdateClient(e.ctx, c.ID, ClientUpdate{Name: &name})
	must(t, err)
	if !slices.Equal(got.Audience, added) {
		t.Fatalf("an unrelated change lost the audiences: %v", got.Audience)
	}
	removed := []string{"https://b.example"}
	_, err = e.svc.UpdateClient(e.ctx, c.ID, ClientUpdate{Audience: &removed})
	must(t, err)
	if e.tokensAlive(t, "one") {
		t.Fatal("removing an audience left the client's tokens alive")
	}

	bad := []string{"not a uri"}
	var ve *ValidationError
	if _, err := e.svc.UpdateClient(e.ctx, c.ID, ClientUpdate{Audience: &bad}); !errors.As(err, &ve) || ve.Field != "audience" {
		t.Fatalf("invalid audience: %v", err)
	}
}
