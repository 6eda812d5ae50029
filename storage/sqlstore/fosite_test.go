package sqlstore_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/sqlstore"
)

// TestFositeFlows drives real fosite handlers over the store: code + PKCE
// + OIDC, refresh rotation, refresh reuse detection and code replay. It
// checks the storage semantics fosite relies on, end to end.
func TestFositeFlows(t *testing.T) {
	for name, dsn := range map[string]func(testing.TB) string{"sqlite": testdb.SQLite, "postgres": testdb.Postgres} {
		t.Run(name, func(t *testing.T) { testFositeFlows(t, testdb.OpenStore(t, dsn(t))) })
	}
}

func testFositeFlows(t *testing.T, st *sqlstore.SQLStore) {
	ctx := context.Background()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &fosite.Config{
		GlobalSecret:                   []byte("0123456789abcdef0123456789abcdef"),
		AccessTokenLifespan:            time.Hour,
		RefreshTokenLifespan:           24 * time.Hour,
		AuthorizeCodeLifespan:          10 * time.Minute,
		IDTokenLifespan:                time.Hour,
		IDTokenIssuer:                  "https://issuer.example",
		SendDebugMessagesToClients:     true,
		EnforcePKCE:                    true,
		EnablePKCEPlainChallengeMethod: false,
	}
	keyGetter := func(context.Context) (any, error) { return key, nil }
	// The same handlers as provider composes.
	p := compose.Compose(cfg, st, &compose.CommonStrategy{
		CoreStrategy:               compose.NewOAuth2HMACStrategy(cfg),
		OpenIDConnectTokenStrategy: compose.NewOpenIDConnectStrategy(keyGetter, cfg),
	},
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2PKCEFactory,
		compose.PushedAuthorizeHandlerFactory,
	)
	const redirect = "https://app.example/cb"
	if err := st.CreateClient(ctx, &storage.Client{ID: "app", Public: true, RedirectURIs: []string{redirect},
		GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		Scopes: []string{"openid", "offline_access"}}); err != nil {
		t.Fatal(err)
	}

	authorize := func() (code, verifier string) {
		t.Helper()
		verifier = strings.Repeat("v", 50)
		sum := sha256.Sum256([]byte(verifier))
		q := url.Values{"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {redirect},
			"scope": {"openid offline_access"}, "state": {"state-12345678"}, "nonce": {"nonce-12345678"},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
		ar, err := p.NewAuthorizeRequest(ctx, httptest.NewRequest(http.MethodGet, "/auth?"+q.Encode(), nil))
		if err != nil {
			t.Fatalf("authorize request: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
		}
		ar.GrantScope("openid")
		ar.GrantScope("offline_access")
		sess := openid.NewDefaultSession()
		sess.Subject, sess.Claims.Subject = "u1", "u1"
		sess.Claims.AuthTime = time.Now().UTC()
		resp, err := p.NewAuthorizeResponse(ctx, ar, sess)
		if err != nil {
			t.Fatalf("authorize response: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
		}
		return resp.GetParameters().Get("code"), verifier
	}
	token := func(form url.Values) (map[string]any, error) {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		ar, err := p.NewAccessRequest(ctx, r, openid.NewDefaultSession())
		if err != nil {
			return nil, err
		}
		resp, err := p.NewAccessResponse(ctx, ar)
		if err != nil {
			return nil, err
		}
		return resp.ToMap(), nil
	}
	active := func(tok string, tt fosite.TokenType) bool {
		_, _, err := p.IntrospectToken(ctx, tok, tt, openid.NewDefaultSession())
		return err == nil
	}
	mustToken := func(form url.Values) map[string]any {
		t.Helper()
		m, err := token(form)
		if err != nil {
			t.Fatalf("token: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
		}
		return m
	}

	// Code exchange with PKCE and an ID token.
	code, verifier := authorize()
	codeForm := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"client_id": {"app"}, "code_verifier": {verifier}}
	first := mustToken(codeForm)
	at1, rt1 := first["access_token"].(string), first["refresh_token"].(string)
	if at1 == "" || rt1 == "" || first["id_token"] == nil {
		t.Fatalf("token response lacks tokens: %v", first)
	}
	if !active(at1, fosite.AccessToken) || !active(rt1, fosite.RefreshToken) {
		t.Fatal("fresh tokens are not active")
	}

	// Refresh rotates: the old pair dies, the new one lives.
	second := mustToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}, "client_id": {"app"}})
	at2, rt2 := second["access_token"].(string), second["refresh_token"].(string)
	if active(at1, fosite.AccessToken) || active(rt1, fosite.RefreshToken) {
		t.Fatal("rotated pair still active")
	}
	if !active(at2, fosite.AccessToken) || !active(rt2, fosite.RefreshToken) {
		t.Fatal("new pair not active")
	}

	// Replaying rt1 fails and revokes the whole family.
	if _, err := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}, "client_id": {"app"}}); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Fatalf("refresh token replay: err = %v, want invalid_grant", err)
	}
	if active(at2, fosite.AccessToken) || active(rt2, fosite.RefreshToken) {
		t.Fatal("refresh token reuse did not revoke the family")
	}

	// Replaying a used code fails and revokes what it issued.
	code, verifier = authorize()
	codeForm.Set("code", code)
	codeForm.Set("code_verifier", verifier)
	third := mustToken(codeForm)
	at3 := third["access_token"].(string)
	if _, err := token(codeForm); !errors.Is(err, fosite.ErrInvalidGrant) {
		t.Fatalf("code replay: err = %v, want invalid_grant", err)
	}
	if active(at3, fosite.AccessToken) {
		t.Fatal("code replay did not revoke its access token")
	}

	// Revocation (RFC 7009) of a refresh token kills its access token too.
	code, verifier = authorize()
	codeForm.Set("code", code)
	codeForm.Set("code_verifier", verifier)
	fourth := mustToken(codeForm)
	r := httptest.NewRequest(http.MethodPost, "/revoke", strings.NewReader(url.Values{"token": {fourth["refresh_token"].(string)},
		"client_id": {"app"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := p.NewRevocationRequest(ctx, r); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if active(fourth["access_token"].(string), fosite.AccessToken) {
		t.Fatal("revoking the refresh token left its access token active")
	}

	// Pushed authorization request: push, then authorize by request_uri.
	verifier = strings.Repeat("p", 50)
	sum := sha256.Sum256([]byte(verifier))
	pushed := url.Values{"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {redirect},
		"scope": {"openid offline_access"}, "state": {"par-state-123"}, "nonce": {"nonce-12345678"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	r = httptest.NewRequest(http.MethodPost, "/par", strings.NewReader(pushed.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	par, err := p.NewPushedAuthorizeRequest(ctx, r)
	if err != nil {
		t.Fatalf("par request: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	parResp, err := p.NewPushedAuthorizeResponse(ctx, par, openid.NewDefaultSession())
	if err != nil {
		t.Fatalf("par response: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	q := url.Values{"client_id": {"app"}, "request_uri": {parResp.GetRequestURI()}}
	ar, err := p.NewAuthorizeRequest(ctx, httptest.NewRequest(http.MethodGet, "/auth?"+q.Encode(), nil))
	if err != nil {
		t.Fatalf("authorize by request_uri: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	if ar.GetState() != "par-state-123" || ar.GetRedirectURI().String() != redirect || !ar.GetRequestedScopes().Has("offline_access") {
		t.Fatalf("PAR request not restored: state %q redirect %v scopes %v", ar.GetState(), ar.GetRedirectURI(), ar.GetRequestedScopes())
	}
	if _, err := p.NewAuthorizeRequest(ctx, httptest.NewRequest(http.MethodGet, "/auth?"+q.Encode(), nil)); err == nil {
		t.Fatal("a request_uri could be used twice")
	}
	ar.GrantScope("openid")
	sess := openid.NewDefaultSession()
	sess.Subject, sess.Claims.Subject = "u1", "u1"
	resp, err := p.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		t.Fatalf("authorize response: %v", fosite.ErrorToRFC6749Error(err).WithExposeDebug(true).GetDescription())
	}
	codeForm.Set("code", resp.GetParameters().Get("code"))
	codeForm.Set("code_verifier", verifier)
	if m := mustToken(codeForm); m["id_token"] == nil {
		t.Fatalf("PAR flow token response: %v", m)
	}
}
