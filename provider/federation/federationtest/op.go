// Package federationtest is a minimal upstream OpenID Connect provider
// for tests of the federation connector and of the pages that use it:
// discovery, keys, a token endpoint that answers with whatever ID token
// claims the test sets, and userinfo. The end-to-end tests (cmd/latchkey)
// use a real Latchkey as the upstream; this one exists for what a real
// provider never sends (a wrong nonce, a foreign audience, an expired
// token, a bad signature).
package federationtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"
	jose "github.com/go-jose/go-jose/v4"
)

// Client is the client id the OP issues ID tokens for; Secret its secret.
const (
	Client = "rp"
	Secret = "s3cret"
)

// OP is the fake provider. Change its fields with Set.
type OP struct {
	Issuer string
	Key    *rsa.PrivateKey
	srv    *httptest.Server

	mu        sync.Mutex
	Claims    map[string]any // of the next ID token
	SignWith  *rsa.PrivateKey
	TokenCode int // status of the token endpoint; 0 = 200
	Userinfo  map[string]any
	LastForm  url.Values
}

// New starts an OP, stopped when the test ends.
func New(t *testing.T) *OP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	op := &OP{Key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": op.Issuer, "authorization_endpoint": op.Issuer + "/auth", "token_endpoint": op.Issuer + "/token",
			"jwks_uri": op.Issuer + "/keys", "userinfo_endpoint": op.Issuer + "/userinfo",
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		op.mu.Lock()
		defer op.mu.Unlock()
		op.LastForm = r.PostForm
		if op.TokenCode != 0 && op.TokenCode != http.StatusOK {
			writeJSON(w, op.TokenCode, map[string]any{"error": "invalid_grant"})
			return
		}
		raw, _ := json.Marshal(op.Claims)
		signer := op.Key
		if op.SignWith != nil {
			signer = op.SignWith
		}
		writeJSON(w, http.StatusOK, map[string]any{"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600,
			"id_token": oidctest.SignIDToken(signer, "k1", oidc.RS256, string(raw))})
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		defer op.mu.Unlock()
		if op.Userinfo == nil {
			http.Error(w, "no userinfo", http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, op.Userinfo)
	})
	op.srv = httptest.NewServer(mux)
	op.Issuer = op.srv.URL
	t.Cleanup(op.srv.Close)
	return op
}

// Close stops the OP early (an upstream that went away).
func (op *OP) Close() { op.srv.Close() }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// IDClaims are valid claims for Client and nonce.
func (op *OP) IDClaims(nonce string) map[string]any {
	now := time.Now()
	return map[string]any{"iss": op.Issuer, "aud": Client, "sub": "u-1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"nonce": nonce, "email": "ada@example.com", "email_verified": true, "name": "Ada Lovelace",
		"preferred_username": "ada", "picture": "https://img.example.com/ada.png"}
}

// Set changes the OP under its lock.
func (op *OP) Set(f func(op *OP)) {
	op.mu.Lock()
	defer op.mu.Unlock()
	f(op)
}

// Form is the last form posted to the token endpoint.
func (op *OP) Form() url.Values {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.LastForm
}
