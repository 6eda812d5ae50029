package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// adminCall is one admin API request with a bearer token.
func (s *testServer) adminCall(t *testing.T, token, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.admin+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// The admin API end to end: an admin client bootstrapped with the CLI
// gets a real token with client_credentials; tiers reach relying parties
// as claims; suspension cuts off an existing refresh token; a revoked
// admin token stops working; the metrics count tokens and sign-ins.
func TestEndToEndAdminAPI(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := startServer(t, dsn, nil)
		ctx := context.Background()
		adm := s.createClient("--admin")
		cc := &clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret, TokenURL: s.issuer + "/oauth2/token",
			Scopes: []string{"admin"}}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		admin := tok.AccessToken

		// A narrower token can read but not write.
		ro := &clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret, TokenURL: s.issuer + "/oauth2/token",
			Scopes: []string{"admin:users.read"}}
		roTok, err := ro.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := s.adminCall(t, roTok.AccessToken, http.MethodPost, "/v1/tiers", map[string]any{"name": "x"}); st != http.StatusForbidden {
			t.Fatalf("read-only token created a tier: %d", st)
		}
		if st, _ := s.adminCall(t, "", http.MethodGet, "/v1/users", nil); st != http.StatusUnauthorized {
			t.Fatalf("no token: %d", st)
		}
		// A person's access token is not an admin token, whatever it holds.
		if st, _ := s.adminCall(t, "not-a-token", http.MethodGet, "/v1/users", nil); st != http.StatusUnauthorized {
			t.Fatalf("bad token: %d", st)
		}

		st, tier := s.adminCall(t, admin, http.MethodPost, "/v1/tiers", map[string]any{"name": "Pro", "description": "paid"})
		if st != http.StatusCreated {
			t.Fatalf("create tier: %d %v", st, tier)
		}
		tierID, _ := tier["id"].(string)
		if st, out := s.adminCall(t, admin, http.MethodPut, "/v1/tiers/"+tierID+"/rate-limits", map[string]any{
			"rate_limits": []map[string]any{{"match": "api.requests", "limit": 1000, "period": "1h"}},
		}); st != http.StatusOK && st != http.StatusNoContent {
			t.Fatalf("rate limits: %d %v", st, out)
		}
		st, user := s.adminCall(t, admin, http.MethodPost, "/v1/users", map[string]any{
			"username": "ivy", "email": "ivy@example.com", "password": "ivy's long password", "email_verified": true})
		if st != http.StatusCreated {
			t.Fatalf("create user: %d %v", st, user)
		}
		userID, _ := user["id"].(string)
		if st, out := s.adminCall(t, admin, http.MethodPut, "/v1/users/"+userID+"/tier", map[string]any{"tier": tierID}); st != http.StatusOK {
			t.Fatalf("assign tier: %d %v", st, out)
		}

		// The tier reaches the relying party.
		rp := s.createClient("--name", "Tiered App", "--redirect-uri", callback, "--first-party",
			"--scope", "openid profile tier offline_access")
		op, err := oidc.NewProvider(ctx, s.issuer)
		if err != nil {
			t.Fatal(err)
		}
		conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback, Endpoint: op.Endpoint(),
			Scopes: []string{"openid", "tier", "offline_access"}}
		pkce := oauth2.GenerateVerifier()
		ivyBrowser := newBrowser(t, callback)
		cb := ivyBrowser.signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), "ivy", "ivy's long password")
		rpTok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatal(err)
		}
		idt, err := op.Verifier(&oidc.Config{ClientID: rp.ID}).Verify(ctx, rpTok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Tier   string           `json:"tier"`
			Limits []map[string]any `json:"tier_rate_limits"`
		}
		_ = idt.Claims(&claims)
		if claims.Tier != "Pro" || len(claims.Limits) != 1 || claims.Limits[0]["match"] != "api.requests" {
			t.Fatalf("ID token tier claims = %+v", claims)
		}
		if in := introspect(t, s, rp, rpTok.AccessToken); in["tier"] != "Pro" {
			t.Fatalf("introspection lacks the tier: %v", in)
		}
		ui, err := op.UserInfo(ctx, oauth2.StaticTokenSource(rpTok))
		if err != nil {
			t.Fatal(err)
		}
		var uic map[string]any
		_ = ui.Claims(&uic)
		if uic["tier"] != "Pro" {
			t.Fatalf("userinfo lacks the tier: %v", uic)
		}

		// A code issued before the suspension, redeemed after it.
		pkce2 := oauth2.GenerateVerifier()
		pendingCode := ivyBrowser.signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce2)), "", "").Query().Get("code")

		// Suspension cuts off the refresh token the app already holds.
		if st, out := s.adminCall(t, admin, http.MethodPost, "/v1/users/"+userID+"/suspend", map[string]any{"reason": "chargeback"}); st != http.StatusOK {
			t.Fatalf("suspend: %d %v", st, out)
		}
		if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rpTok.RefreshToken}).Token(); err == nil {
			t.Fatal("a suspended user's refresh token still works")
		}
		if active(t, s, rp, rpTok.AccessToken) {
			t.Fatal("a suspended user's access token is still active")
		}
		if _, err := conf.Exchange(ctx, pendingCode, oauth2.VerifierOption(pkce2)); err == nil {
			t.Fatal("a code issued before the suspension still mints tokens")
		}

		// The audit log names the admin client.
		st, events := s.adminCall(t, admin, http.MethodGet, "/v1/audit-events?target="+url.QueryEscape(userID)+"&action=user.suspend", nil)
		evs, _ := events["events"].([]any)
		if st != http.StatusOK || len(evs) != 1 {
			t.Fatalf("audit: %d %v", st, events)
		}
		if ev := evs[0].(map[string]any); !strings.Contains(toJSON(ev), adm.ID) || !strings.Contains(toJSON(ev), "chargeback") {
			t.Fatalf("audit event = %v", ev)
		}

		// Rotating a client's secret (it may have leaked) revokes what was
		// obtained with it.
		svc := s.createClient("--name", "svc", "--grant-type", "client_credentials", "--scope", "api")
		svcTok, err := (&clientcredentials.Config{ClientID: svc.ID, ClientSecret: svc.Secret, TokenURL: s.issuer + "/oauth2/token"}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, rotated := s.adminCall(t, admin, http.MethodPost, "/v1/clients/"+svc.ID+"/rotate-secret", nil)
		if st != http.StatusOK {
			t.Fatalf("rotate-secret: %d %v", st, rotated)
		}
		svc.Secret, _ = rotated["client_secret"].(string)
		if active(t, s, svc, svcTok.AccessToken) {
			t.Fatal("a token obtained with the old secret survived its rotation")
		}

		// Revoking the admin token takes effect at once.
		form := url.Values{"token": {admin}}
		req, _ := http.NewRequest(http.MethodPost, s.issuer+"/oauth2/revoke", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(adm.ID, adm.Secret)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %v %v", resp, err)
		}
		if st, _ := s.adminCall(t, admin, http.MethodGet, "/v1/users", nil); st != http.StatusUnauthorized {
			t.Fatalf("revoked admin token: %d", st)
		}

		// Metrics: tokens per grant and sign-in outcomes.
		resp, err := http.Get(s.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`latchkey_tokens_issued_total{grant_type="client_credentials"}`,
			`latchkey_tokens_issued_total{grant_type="authorization_code"}`, `latchkey_sign_ins_total{outcome="success"}`,
			`latchkey_http_requests_total{code="200",method="GET",route="/v1/audit-events"}`} {
			if !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
