package admin_test

import (
	"net/http"
	"testing"

	"github.com/latchkey/latchkey/admin"
	"github.com/latchkey/latchkey/internal/testdb"
)

// admin:clients cannot be turned into admin: it may not give a client an
// admin scope, nor change, rotate or delete a client that has one.
func TestClientsScopeCannotEscalate(t *testing.T) {
	e := newEnv(t, testdb.SQLite(t))
	as := func(tok, method, path string, body any) *resp {
		return e.send(t, req{method: method, path: path, token: tok, body: body})
	}
	for _, scopes := range [][]string{{admin.ScopeAdmin}, {admin.ScopeUsersRead}, {"api", admin.ScopeAudit}} {
		problemOf(t, as("tok-clients", http.MethodPost, "/v1/clients", map[string]any{
			"name": "evil", "grant_types": []string{"client_credentials"}, "scopes": scopes}), http.StatusForbidden)
	}
	// The admin may create an admin client…
	var adminClient struct {
		ID string `json:"client_id"`
	}
	want(t, as("tok-admin", http.MethodPost, "/v1/clients", map[string]any{
		"name": "ops", "grant_types": []string{"client_credentials"}, "scopes": []string{admin.ScopeUsersRead}}), http.StatusCreated).json(t, &adminClient)
	// …which admin:clients then cannot touch.
	problemOf(t, as("tok-clients", http.MethodPost, "/v1/clients/"+adminClient.ID+"/rotate-secret", nil), http.StatusForbidden)
	problemOf(t, as("tok-clients", http.MethodPatch, "/v1/clients/"+adminClient.ID, map[string]any{"name": "mine"}), http.StatusForbidden)
	problemOf(t, as("tok-clients", http.MethodDelete, "/v1/clients/"+adminClient.ID, nil), http.StatusForbidden)

	// An ordinary client stays manageable, but cannot be given admin scopes.
	var plain struct {
		ID string `json:"client_id"`
	}
	want(t, as("tok-clients", http.MethodPost, "/v1/clients", map[string]any{
		"name": "svc", "grant_types": []string{"client_credentials"}, "scopes": []string{"api"}}), http.StatusCreated).json(t, &plain)
	problemOf(t, as("tok-clients", http.MethodPatch, "/v1/clients/"+plain.ID, map[string]any{"scopes": []string{"api", admin.ScopeAdmin}}), http.StatusForbidden)
	want(t, as("tok-clients", http.MethodPost, "/v1/clients/"+plain.ID+"/rotate-secret", nil), http.StatusOK)
}
