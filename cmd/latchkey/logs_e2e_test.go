package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/internal/testdb"
)

// With LATCHKEY_LOG_FORMAT=json every line the server writes is JSON; a
// full sign-in and token exchange, logged at debug, leaves one access line
// per request and security events for what an operator watches, and
// nowhere the password, the code, the PKCE verifier, a token or a client
// secret.
func TestEndToEndLogsHoldNoSecrets(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"LATCHKEY_LOG_FORMAT": "json", "LATCHKEY_LOG_LEVEL": "debug"})
	ctx := context.Background()
	const pw = "quinn's long password"
	s.createUser("quinn", pw)
	rp := s.createClient("--name", "App", "--redirect-uri", callback, "--first-party", "--scope", "openid profile offline_access")
	conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback,
		Scopes:   []string{"openid", "profile", "offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"}}
	pkce := oauth2.GenerateVerifier()
	cb := newBrowser(t, callback).signIn(conf.AuthCodeURL("state-logs", oauth2.S256ChallengeOption(pkce)), "quinn", pw)
	code := cb.Query().Get("code")
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if _, err := conf.Client(ctx, tok).Get(s.issuer + "/userinfo"); err != nil {
		t.Fatal(err)
	}
	// Refresh, then replay the used refresh token: the family is revoked.
	refresh := func(rt string) error {
		_, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
		return err
	}
	if err := refresh(tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if err := refresh(tok.RefreshToken); err == nil {
		t.Fatal("a replayed refresh token was accepted")
	}
	svc := s.createClient("--name", "svc", "--grant-type", "client_credentials", "--scope", "api:read")
	cc := &clientcredentials.Config{ClientID: svc.ID, ClientSecret: svc.Secret, TokenURL: s.issuer + "/oauth2/token"}
	svcTok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	introspect(t, s, svc, svcTok.AccessToken)
	const wrongSecret = "not-the-secret-4f1d9c"
	cc.ClientSecret = wrongSecret
	if _, err := cc.Token(ctx); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	// A malformed request carrying a token in its query.
	resp, err := http.Get(s.issuer + "/userinfo?access_token=" + url.QueryEscape(tok.AccessToken))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	out := s.out.String()
	for name, secret := range map[string]string{"password": pw, "code": code, "PKCE verifier": pkce,
		"access token": tok.AccessToken, "refresh token": tok.RefreshToken, "ID token": idToken,
		"client secret": rp.Secret, "service secret": svc.Secret, "wrong secret": wrongSecret,
		"service token": svcTok.AccessToken} {
		if secret != "" && strings.Contains(out, secret) {
			t.Errorf("the log holds the %s", name)
		}
	}
	var access, tokenLines int
	events := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		if m["msg"] == "request" {
			access++
			if m["route"] == "/oauth2/token" {
				tokenLines++
				if m["client_id"] == nil || m["request_id"] == nil || m["status"] == nil || m["duration_ms"] == nil {
					t.Errorf("token access line %v", m)
				}
			}
		}
		if m["msg"] == "security event" {
			events[m["event"].(string)] = true
		}
	}
	if access == 0 || tokenLines < 5 {
		t.Errorf("%d access lines, %d for the token endpoint", access, tokenLines)
	}
	for _, e := range []string{"client.auth_failed", "refresh_token.reuse"} {
		if !events[e] {
			t.Errorf("no %s security event; events %v", e, events)
		}
	}
}
