package admin_test

import (
	"net/http"
	"testing"

	"github.com/latchkey/latchkey/provider/accounts"
)

// The admin API shows and removes a user's upstream identities, even the
// last one (the person can still set a password by email).
func TestIdentities(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "ada", map[string]any{"email_verified": true})
		_, err := e.acc.FederatedSignIn(e.ctx, accounts.FederatedClaims{Upstream: "google", Subject: "g-1",
			Email: "ada@example.com", EmailVerified: true})
		must(t, err)

		var list struct {
			Identities []struct{ Upstream, Subject, Email string }
		}
		want(t, e.do(t, http.MethodGet, "/v1/users/"+u.ID+"/identities", nil), http.StatusOK).json(t, &list)
		if len(list.Identities) != 1 || list.Identities[0].Upstream != "google" || list.Identities[0].Subject != "g-1" {
			t.Fatalf("identities = %+v", list)
		}
		problemOf(t, e.do(t, http.MethodGet, "/v1/users/u_nope/identities", nil), http.StatusNotFound)
		problemOf(t, e.do(t, http.MethodDelete, "/v1/users/"+u.ID+"/identities/google/other", nil), http.StatusNotFound)

		want(t, e.do(t, http.MethodDelete, "/v1/users/"+u.ID+"/identities/google/g-1", nil), http.StatusNoContent)
		e.wantEvent(t, u.ID, accounts.AuditIdentityUnlink, "c_admin")
		want(t, e.do(t, http.MethodGet, "/v1/users/"+u.ID+"/identities", nil), http.StatusOK).json(t, &list)
		if len(list.Identities) != 0 {
			t.Fatalf("after unlink: %+v", list)
		}
	})
}
