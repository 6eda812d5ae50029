package main

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testdb"
)

// The flow cookie behind the form tokens gets a new value at sign-in, so
// a value known before signing in forges nothing afterwards; a second tab
// that was in the middle of signing in with the old value still finishes.
func TestEndToEndFlowCookieRenewedAtSignIn(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), nil)
	const pw = "ivy's long password"
	s.createUser("ivy", pw)
	rp := s.createClient("--name", "Tabs", "--redirect-uri", callback, "--first-party")
	conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"}}
	b := newBrowser(t, callback)
	issuer, _ := url.Parse(s.issuer)
	flow := func() string {
		t.Helper()
		for _, c := range b.c.Jar.Cookies(issuer) {
			if c.Name == "latchkey_flow" {
				return c.Value
			}
		}
		t.Fatal("no flow cookie")
		return ""
	}

	// Two tabs of one browser start a sign-in each.
	pkceA, pkceB := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	tabA := b.get(conf.AuthCodeURL("state-tab-a", oauth2.S256ChallengeOption(pkceA)))
	tabB := b.get(conf.AuthCodeURL("state-tab-b", oauth2.S256ChallengeOption(pkceB)))
	if tabA.url.Path != "/login" || tabB.url.Path != "/login" {
		t.Fatalf("sign-in pages: %s, %s", tabA.url, tabB.url)
	}
	signIn := func(tab pageResp) *url.URL {
		t.Helper()
		p := b.post(s.issuer+"/login", url.Values{"csrf_token": {field(t, reCSRF, tab.body)},
			"challenge": {field(t, reChallenge, tab.body)}, "login": {"ivy"}, "password": {pw}})
		if p.loc == "" {
			t.Fatalf("sign-in did not return to the app: %d %s\n%s", p.status, p.url, p.body)
		}
		u, err := url.Parse(p.loc)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	before := flow()
	cbA := signIn(tabA)
	if got := flow(); got == before {
		t.Fatal("the flow cookie kept its value through a sign-in")
	}
	// Tab B's form was made with the value before tab A signed in.
	cbB := signIn(tabB)
	for _, tc := range []struct {
		cb    *url.URL
		state string
		pkce  string
	}{{cbA, "state-tab-a", pkceA}, {cbB, "state-tab-b", pkceB}} {
		if tc.cb.Query().Get("state") != tc.state || tc.cb.Query().Get("code") == "" {
			t.Fatalf("callback %s", tc.cb)
		}
		if _, err := conf.Exchange(context.Background(), tc.cb.Query().Get("code"), oauth2.VerifierOption(tc.pkce)); err != nil {
			t.Fatalf("%s: exchange: %v", tc.state, err)
		}
	}

	// A form token made before a sign-in is refused after it outside a
	// pending request: the previous value is no general key.
	_, tok := b.csrf(s.issuer + "/account")
	if p := b.post(s.issuer+"/account/profile", url.Values{"csrf_token": {tok}, "display_name": {"Ivy"}}); p.status >= 400 {
		t.Fatalf("profile with a fresh token: %d", p.status)
	}
	again := b.get(conf.AuthCodeURL("state-again", oauth2.S256ChallengeOption(pkceA), oauth2.SetAuthURLParam("prompt", "login")))
	signIn(again)
	if p := b.post(s.issuer+"/account/profile", url.Values{"csrf_token": {tok}, "display_name": {"Mallory"}}); p.status != http.StatusBadRequest {
		t.Fatalf("profile with a token from before the sign-in: %d", p.status)
	}
}
