package main

// Upstream federation end to end: a second Latchkey, started in-process
// with its own SQLite database, plays "Google". The first instance signs
// people in through it with the generic OIDC connector, exactly as it
// would with Google: discovery, PKCE, nonce, code exchange, ID token
// verification against the upstream's JWKS.
//
// The upstream's issuer is http://localhost:PORT and the first instance's
// http://127.0.0.1:PORT: cookies ignore ports, so two Latchkeys on the
// same host name would overwrite each other's session and flow cookies
// in one browser.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/internal/testdb"
)

// startUpstream starts the Latchkey that plays the upstream provider, at
// http://localhost:PORT.
func startUpstream(t *testing.T) (up *testServer, stop func()) {
	t.Helper()
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	return startServerAt(t, testdb.SQLite(t), addr, "http://localhost:"+port, nil)
}

// fedEnv is an upstream and a first instance federated with it.
type fedEnv struct {
	t       *testing.T
	up, s   *testServer
	stopUp  func()
	upAdmin string // an admin token of the upstream
	sAdmin  string // an admin token of the first instance
}

// upstreamYAML is one entry of the first instance's `upstreams:` list.
type upstreamYAML struct {
	id, name, clientID, secret string
	scopes                     []string
	extra                      string // more YAML lines of the entry, indented by 4
}

// startFederation starts an upstream and a first instance whose
// configuration lists the upstreams made by clients (given the first
// instance's issuer, each registers a client at the upstream).
func startFederation(t *testing.T, env map[string]string, clients func(up *testServer, issuer string) []upstreamYAML) *fedEnv {
	t.Helper()
	e := &fedEnv{t: t}
	e.up, e.stopUp = startUpstream(t)
	addr := freePort(t)
	issuer := "http://" + addr
	var y strings.Builder
	y.WriteString("upstreams:\n")
	for _, u := range clients(e.up, issuer) {
		fmt.Fprintf(&y, "  - id: %s\n    name: %q\n    issuer: %s\n    client_id: %s\n    client_secret: %s\n    scopes: [%s]\n%s",
			u.id, u.name, e.up.issuer, u.clientID, u.secret, strings.Join(u.scopes, ", "), u.extra)
	}
	path := filepath.Join(t.TempDir(), "latchkey.yaml")
	if err := os.WriteFile(path, []byte(y.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"LATCHKEY_CONFIG": path}
	for k, v := range env {
		all[k] = v
	}
	e.s, _ = startServerAt(t, testdb.SQLite(t), addr, issuer, all)
	e.upAdmin = adminToken(t, e.up)
	e.sAdmin = adminToken(t, e.s)
	return e
}

func adminToken(t *testing.T, s *testServer) string {
	t.Helper()
	adm := s.createClient("--admin")
	cc := &clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret, TokenURL: s.issuer + "/oauth2/token", Scopes: []string{"admin"}}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// upstreamUser creates a user at the upstream through its admin API and
// returns its id (the subject the first instance sees).
func (e *fedEnv) upstreamUser(username, password string, verified bool) string {
	e.t.Helper()
	st, u := e.up.adminCall(e.t, e.upAdmin, http.MethodPost, "/v1/users", map[string]any{"username": username,
		"email": username + "@example.com", "password": password, "email_verified": verified, "display_name": "Upstream " + username})
	if st != http.StatusCreated {
		e.t.Fatalf("upstream user %s: %d %v", username, st, u)
	}
	return u["id"].(string)
}

// accountState is what the first instance knows: every user, with their
// linked identities.
func (e *fedEnv) accountState() string {
	e.t.Helper()
	st, out := e.s.adminCall(e.t, e.sAdmin, http.MethodGet, "/v1/users?limit=100", nil)
	if st != http.StatusOK {
		e.t.Fatalf("list users: %d %v", st, out)
	}
	users, _ := out["users"].([]any)
	var lines []string
	for _, x := range users {
		u := x.(map[string]any)
		id := u["id"].(string)
		st, ids := e.s.adminCall(e.t, e.sAdmin, http.MethodGet, "/v1/users/"+id+"/identities", nil)
		if st != http.StatusOK {
			e.t.Fatalf("identities of %s: %d %v", id, st, ids)
		}
		var links []string
		for _, y := range ids["identities"].([]any) {
			i := y.(map[string]any)
			links = append(links, fmt.Sprintf("%s/%s", i["upstream"], i["subject"]))
		}
		slices.Sort(links)
		lines = append(lines, fmt.Sprintf("%s %s password=%v verified=%v links=%v", u["username"], u["email"],
			u["has_password"], u["email_verified"], links))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// user is the first instance's user with this username (nil if none).
func (e *fedEnv) user(username string) map[string]any {
	e.t.Helper()
	st, out := e.s.adminCall(e.t, e.sAdmin, http.MethodGet, "/v1/users?username="+url.QueryEscape(username), nil)
	if st != http.StatusOK {
		e.t.Fatalf("user %s: %d %v", username, st, out)
	}
	users, _ := out["users"].([]any)
	if len(users) == 0 {
		return nil
	}
	return users[0].(map[string]any)
}

func (e *fedEnv) identities(userID string) []map[string]any {
	e.t.Helper()
	st, out := e.s.adminCall(e.t, e.sAdmin, http.MethodGet, "/v1/users/"+userID+"/identities", nil)
	if st != http.StatusOK {
		e.t.Fatalf("identities: %d %v", st, out)
	}
	var ids []map[string]any
	for _, x := range out["identities"].([]any) {
		ids = append(ids, x.(map[string]any))
	}
	return ids
}

// fedBrowser is the cookie-jar browser, stopping at any of stopAt.
type fedBrowser struct {
	*browser
	stopAt []string
}

func (e *fedEnv) browser(stopAt ...string) *fedBrowser {
	b := newBrowser(e.t, "\x00never")
	fb := &fedBrowser{browser: b, stopAt: stopAt}
	b.c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		for _, p := range fb.stopAt {
			if strings.HasPrefix(req.URL.String(), p) {
				return http.ErrUseLastResponse
			}
		}
		return nil
	}
	return fb
}

func (e *fedEnv) callbackPrefix(id string) string {
	return e.s.issuer + "/federation/" + id + "/callback"
}

var reUpstreamButton = regexp.MustCompile(`href="(/federation/up/start[^"]*)">Continue with Upstream<`)

// signInUpstream follows start (the button's URL) to the upstream's
// sign-in page, signs in there, and returns the first instance's callback
// URL the upstream sent the browser to (b must stop there).
func (e *fedEnv) signInUpstream(b *fedBrowser, start, username, password string) string {
	e.t.Helper()
	p := b.get(start)
	if p.status != http.StatusOK || p.url.Host != strings.TrimPrefix(e.up.issuer, "http://") || p.url.Path != "/login" {
		e.t.Fatalf("expected the upstream's sign-in page, got %d at %s:\n%s", p.status, p.url, p.body)
	}
	p = b.post(e.up.issuer+"/login", url.Values{"csrf_token": {field(e.t, reCSRF, p.body)},
		"challenge": {field(e.t, reChallenge, p.body)}, "login": {username}, "password": {password}})
	if !strings.HasPrefix(p.loc, e.s.issuer+"/federation/") {
		e.t.Fatalf("expected a redirect to the first instance's callback, got %d %q at %s:\n%s", p.status, p.loc, p.url, p.body)
	}
	return p.loc
}

// consent allows the consent page shown in p.
func consent(t *testing.T, b *browser, p pageResp) pageResp {
	t.Helper()
	if p.url.Path != "/consent" {
		t.Fatalf("expected the consent page, got %d at %s:\n%s", p.status, p.url, p.body)
	}
	form := url.Values{"csrf_token": {field(t, reCSRF, p.body)}, "challenge": {field(t, reChallenge, p.body)}, "decision": {"allow"}}
	for _, m := range regexp.MustCompile(`name="scope" value="([^"]+)"`).FindAllStringSubmatch(p.body, -1) {
		form.Add("scope", m[1])
	}
	return b.post(p.url.Scheme+"://"+p.url.Host+"/consent", form)
}

// expectErrorPage fails unless p is the friendly error page with this
// status, saying want.
func expectErrorPage(t *testing.T, p pageResp, status int, want string) {
	t.Helper()
	if p.status != status || !strings.Contains(p.body, want) || !strings.Contains(p.body, "<h1") {
		t.Fatalf("expected the error page (%d, %q), got %d at %s:\n%s", status, want, p.status, p.url, p.body)
	}
}

// basicFederation is an upstream client "up" (first party: no consent
// at the upstream) and "consent" (consent shown, to deny it).
func basicFederation(t *testing.T) *fedEnv {
	return startFederation(t, nil, func(up *testServer, issuer string) []upstreamYAML {
		c := up.createClient("--name", "Latchkey RP", "--redirect-uri", issuer+"/federation/up/callback", "--first-party")
		d := up.createClient("--name", "Latchkey Asking", "--redirect-uri", issuer+"/federation/consent/callback")
		return []upstreamYAML{
			{id: "up", name: "Upstream", clientID: c.ID, secret: c.Secret, scopes: []string{"openid", "email", "profile"}},
			{id: "consent", name: "Upstream Asking", clientID: d.ID, secret: d.Secret, scopes: []string{"openid", "email", "profile"}},
		}
	})
}

func TestFederationSignUpLinkAndRefusal(t *testing.T) {
	e := basicFederation(t)
	ctx := context.Background()
	const pw = "upstream password 123"

	t.Run("first federated sign-up completes a pending authorization", func(t *testing.T) {
		sub := e.upstreamUser("ada", pw, true)
		rp := e.s.createClient("--name", "Example App", "--redirect-uri", callback)
		op, err := oidc.NewProvider(ctx, e.s.issuer)
		if err != nil {
			t.Fatal(err)
		}
		conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, Endpoint: op.Endpoint(), RedirectURL: callback,
			Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
		state, nonce, pkce := randString(), randString(), oauth2.GenerateVerifier()
		b := e.browser(e.callbackPrefix("up"), callback)

		p := b.get(conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(pkce)))
		if p.url.Path != "/login" || !strings.Contains(p.body, "Continue with Upstream Asking") {
			t.Fatalf("sign-in page %s:\n%s", p.url, p.body)
		}
		start := field(t, reUpstreamButton, p.body)
		if !strings.Contains(start, "?challenge=") {
			t.Fatalf("the button does not carry the challenge: %s", start)
		}
		cb := e.signInUpstream(b, e.s.issuer+start, "ada", pw)
		cbu, _ := url.Parse(cb)
		if cbu.Query().Get("code") == "" || cbu.Query().Get("state") == "" {
			t.Fatalf("upstream callback %s", cb)
		}
		if got := e.user("ada"); got != nil {
			t.Fatalf("a user exists before the callback: %v", got)
		}
		p = consent(t, b.browser, b.get(cb)) // Example App is not first party
		u, _ := url.Parse(p.loc)
		if u == nil || !strings.HasPrefix(p.loc, callback) || u.Query().Get("state") != state || u.Query().Get("code") == "" {
			t.Fatalf("expected the code at the app, got %d %q:\n%s", p.status, p.loc, p.body)
		}
		tok, err := conf.Exchange(ctx, u.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatal(err)
		}
		idt, err := op.Verifier(&oidc.Config{ClientID: rp.ID}).Verify(ctx, tok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			AMR      []string `json:"amr"`
			ACR      string   `json:"acr"`
			Nonce    string   `json:"nonce"`
			AuthTime int64    `json:"auth_time"`
			Username string   `json:"preferred_username"`
			Email    string   `json:"email"`
			Verified bool     `json:"email_verified"`
			Name     string   `json:"name"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(claims.AMR, "fed") || claims.ACR != "urn:latchkey:acr:federated" || claims.Nonce != nonce || claims.AuthTime == 0 || claims.Username != "ada" ||
			claims.Email != "ada@example.com" || !claims.Verified || claims.Name != "Upstream ada" {
			t.Fatalf("ID token claims %+v", claims)
		}
		user := e.user("ada")
		if user == nil || user["has_password"] != false || user["email_verified"] != true || idt.Subject != user["id"] {
			t.Fatalf("created user %v (token subject %s)", user, idt.Subject)
		}
		ids := e.identities(user["id"].(string))
		if len(ids) != 1 || ids[0]["upstream"] != "up" || ids[0]["subject"] != sub {
			t.Fatalf("identities %v", ids)
		}

		// The browser is signed in at the first instance: the next
		// authorization needs no sign-in (consent is remembered).
		p = b.get(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)))
		if !strings.HasPrefix(p.loc, callback) {
			t.Fatalf("second authorization: %d %q at %s", p.status, p.loc, p.url)
		}

		// A fresh browser signing in with the same upstream account is the
		// same user, and creates nothing.
		before := e.accountState()
		b2 := e.browser(e.callbackPrefix("up"))
		p = b2.get(e.signInUpstream(b2, e.s.issuer+"/federation/up/start", "ada", pw))
		if p.url.Path != "/account" || p.status != http.StatusOK || !strings.Contains(p.body, "ada@example.com") {
			t.Fatalf("second federated sign-in: %d at %s", p.status, p.url)
		}
		if after := e.accountState(); after != before {
			t.Fatalf("a repeated sign-in changed the accounts:\n%s\n---\n%s", before, after)
		}
	})

	t.Run("verified email links to the existing account", func(t *testing.T) {
		e.s.createUser("grace", "grace's own password")
		sub := e.upstreamUser("grace", pw, true)
		before := e.user("grace")
		b := e.browser(e.callbackPrefix("up"))
		p := b.get(e.signInUpstream(b, e.s.issuer+"/federation/up/start", "grace", pw))
		if p.url.Path != "/account" || !strings.Contains(p.body, "grace@example.com") {
			t.Fatalf("linked sign-in: %d at %s:\n%s", p.status, p.url, p.body)
		}
		after := e.user("grace")
		if after["id"] != before["id"] || after["has_password"] != true {
			t.Fatalf("linked user %v, was %v", after, before)
		}
		ids := e.identities(after["id"].(string))
		if len(ids) != 1 || ids[0]["upstream"] != "up" || ids[0]["subject"] != sub {
			t.Fatalf("identities %v", ids)
		}
		// The account page lists the link.
		if !strings.Contains(p.body, "Upstream") {
			t.Errorf("the account page does not list the linked provider:\n%s", p.body)
		}
	})

	t.Run("unverified upstream email of an existing account is refused", func(t *testing.T) {
		e.s.createUser("hedy", "hedy's own password")
		if _, err := e.up.cli("hedy upstream pw\n", "users", "create", "--username", "hedy", "--email", "hedy@example.com",
			"--password-stdin"); err != nil {
			t.Fatal(err)
		}
		before := e.accountState()
		b := e.browser(e.callbackPrefix("up"))
		p := b.get(e.signInUpstream(b, e.s.issuer+"/federation/up/start", "hedy", "hedy upstream pw"))
		expectErrorPage(t, p, http.StatusForbidden, "has not verified the address")
		if after := e.accountState(); after != before {
			t.Fatalf("a refused sign-in changed the accounts:\n%s\n---\n%s", before, after)
		}
		// Not signed in either.
		if p := b.get(e.s.issuer + "/account"); p.url.Path != "/login" {
			t.Fatalf("after a refusal the account page is at %s", p.url)
		}
	})
}

// Every way the callback can fail shows the friendly error page, logs the
// cause, and creates or links nothing.
func TestFederationFailures(t *testing.T) {
	e := basicFederation(t)
	const pw = "upstream password 456"
	// Same email, verified upstream: any callback that got through would
	// link this account, which accountState would show.
	e.upstreamUser("fresh", pw, true)
	e.s.createUser("fresh", "first instance password")

	check := func(t *testing.T, before string, p pageResp, status int, want, logged string) {
		t.Helper()
		expectErrorPage(t, p, status, want)
		if after := e.accountState(); after != before {
			t.Fatalf("a failed sign-in changed the accounts:\n%s\n---\n%s", before, after)
		}
		if logged != "" && !strings.Contains(e.s.out.String(), logged) {
			t.Errorf("the log does not say %q:\n%s", logged, e.s.out.String())
		}
	}
	// atCallback signs in at the upstream and stops at the callback.
	atCallback := func(t *testing.T) (*fedBrowser, *url.URL) {
		b := e.browser(e.callbackPrefix("up"))
		cb, _ := url.Parse(e.signInUpstream(b, e.s.issuer+"/federation/up/start", "fresh", pw))
		return b, cb
	}
	withQuery := func(u *url.URL, k, v string) string {
		c := *u
		q := c.Query()
		q.Set(k, v)
		c.RawQuery = q.Encode()
		return c.String()
	}

	t.Run("denied at the upstream", func(t *testing.T) {
		before := e.accountState()
		b := e.browser(e.callbackPrefix("consent"))
		p := b.get(e.s.issuer + "/federation/consent/start")
		p = b.post(e.up.issuer+"/login", url.Values{"csrf_token": {field(t, reCSRF, p.body)},
			"challenge": {field(t, reChallenge, p.body)}, "login": {"fresh"}, "password": {pw}})
		if p.url.Path != "/consent" || !strings.Contains(p.body, "Latchkey Asking") {
			t.Fatalf("expected the upstream's consent page, got %s:\n%s", p.url, p.body)
		}
		p = b.post(e.up.issuer+"/consent", url.Values{"csrf_token": {field(t, reCSRF, p.body)},
			"challenge": {field(t, reChallenge, p.body)}, "decision": {"deny"}})
		cb, _ := url.Parse(p.loc)
		if cb == nil || cb.Query().Get("error") != "access_denied" || !strings.HasPrefix(p.loc, e.callbackPrefix("consent")) {
			t.Fatalf("upstream denial: %d %q", p.status, p.loc)
		}
		check(t, before, b.get(p.loc), http.StatusBadRequest, "Sign-in with Upstream Asking was cancelled", "access_denied")
	})

	t.Run("error at the callback", func(t *testing.T) {
		before := e.accountState()
		b, cb := atCallback(t)
		check(t, before, b.get(e.callbackPrefix("up")+"?error=server_error&state="+cb.Query().Get("state")),
			http.StatusBadRequest, "Upstream could not sign you in", "server_error")
	})

	t.Run("state mismatch", func(t *testing.T) {
		before := e.accountState()
		b, cb := atCallback(t)
		check(t, before, b.get(withQuery(cb, "state", randString())), http.StatusBadRequest,
			"This sign-in link has expired", "state mismatch")
		// The cookie is gone: the genuine callback fails too now.
		check(t, before, b.get(cb.String()), http.StatusBadRequest, "This sign-in link has expired", "no flow cookie")
	})

	t.Run("replayed callback", func(t *testing.T) {
		e.upstreamUser("replay", pw, true)
		b := e.browser(e.callbackPrefix("up"))
		cb, _ := url.Parse(e.signInUpstream(b, e.s.issuer+"/federation/up/start", "replay", pw))
		saved := b.c.Jar.Cookies(cb)
		p := b.get(cb.String())
		if p.url.Path != "/account" {
			t.Fatalf("first callback: %d at %s:\n%s", p.status, p.url, p.body)
		}
		before := e.accountState()
		// The same URL again: the cookie was cleared.
		check(t, before, b.get(cb.String()), http.StatusBadRequest, "This sign-in link has expired", "")
		// With the cookie put back (a copy kept by an attacker): the state
		// was spent.
		b.c.Jar.SetCookies(cb, saved)
		check(t, before, b.get(cb.String()), http.StatusBadRequest, "This sign-in link was already used", "replayed state")
		// In another browser with the cookie: the same.
		b2 := e.browser()
		b2.c.Jar.SetCookies(cb, saved)
		check(t, before, b2.get(cb.String()), http.StatusBadRequest, "This sign-in link was already used", "")
	})

	t.Run("tampered cookie", func(t *testing.T) {
		before := e.accountState()
		b, cb := atCallback(t)
		var tampered []*http.Cookie
		for _, c := range b.c.Jar.Cookies(cb) {
			if c.Name == "latchkey_federation" {
				v := []byte(c.Value)
				v[len(v)/2] ^= 0x01 // still base64url
				if v[len(v)/2] == '-' || v[len(v)/2] == '_' {
					v[len(v)/2] = 'A'
				}
				tampered = append(tampered, &http.Cookie{Name: c.Name, Value: string(v), Path: "/federation/up/"})
			}
		}
		if len(tampered) != 1 {
			t.Fatalf("flow cookie not found in %v", b.c.Jar.Cookies(cb))
		}
		b.c.Jar.SetCookies(cb, tampered)
		check(t, before, b.get(cb.String()), http.StatusBadRequest, "This sign-in link has expired", "federation cookie is invalid")
	})

	t.Run("dropped cookie", func(t *testing.T) {
		before := e.accountState()
		b, cb := atCallback(t)
		// Another browser (no cookie) opens the callback: a login CSRF
		// attempt, or an expired cookie.
		jar, _ := cookiejar.New(nil)
		b.c.Jar = jar
		check(t, before, b.get(cb.String()), http.StatusBadRequest, "This sign-in link has expired", "no flow cookie")
	})

	t.Run("bogus code", func(t *testing.T) {
		before := e.accountState()
		b, cb := atCallback(t)
		check(t, before, b.get(withQuery(cb, "code", "bogus-"+randString())), http.StatusBadRequest,
			"Sign-in with Upstream could not be verified", "invalid_grant")
	})

	t.Run("upstream down", func(t *testing.T) { // last: it stops the upstream
		before := e.accountState()
		b, cb := atCallback(t)
		e.stopUp()
		check(t, before, b.get(cb.String()), http.StatusBadGateway, "Upstream is not responding", "upstream unavailable")
	})
}

// hosted_domains with the claim mapped to the upstream's tier claim: a
// user on the "example.com" tier passes, one without a tier is refused.
func TestFederationHostedDomain(t *testing.T) {
	e := startFederation(t, nil, func(up *testServer, issuer string) []upstreamYAML {
		c := up.createClient("--name", "Latchkey RP", "--redirect-uri", issuer+"/federation/up/callback", "--first-party",
			"--scope", "openid email profile tier")
		return []upstreamYAML{{id: "up", name: "Upstream", clientID: c.ID, secret: c.Secret,
			scopes: []string{"openid", "email", "profile", "tier"},
			extra:  "    hosted_domains: [example.com]\n    claims:\n      hosted_domain: tier\n"}}
	})
	const pw = "upstream password 789"
	st, tier := e.up.adminCall(t, e.upAdmin, http.MethodPost, "/v1/tiers", map[string]any{"name": "example.com"})
	if st != http.StatusCreated {
		t.Fatalf("tier: %d %v", st, tier)
	}
	member := e.upstreamUser("member", pw, true)
	if st, out := e.up.adminCall(t, e.upAdmin, http.MethodPut, "/v1/users/"+member+"/tier", map[string]any{"tier": tier["id"]}); st != http.StatusOK {
		t.Fatalf("assign tier: %d %v", st, out)
	}
	e.upstreamUser("outsider", pw, true)

	// hd=example.com is sent upstream (Google shows only that domain's
	// accounts).
	b := e.browser(e.up.issuer + "/oauth2/authorize")
	p := b.get(e.s.issuer + "/federation/up/start")
	if u, _ := url.Parse(p.loc); u == nil || u.Query().Get("hd") != "example.com" || !strings.Contains(u.Query().Get("scope"), "tier") {
		t.Fatalf("upstream authorization URL %q", p.loc)
	}

	before := e.accountState()
	b = e.browser(e.callbackPrefix("up"))
	p = b.get(e.signInUpstream(b, e.s.issuer+"/federation/up/start", "outsider", pw))
	expectErrorPage(t, p, http.StatusForbidden, "does not belong to an allowed organization")
	if after := e.accountState(); after != before {
		t.Fatalf("a refused sign-in changed the accounts:\n%s\n---\n%s", before, after)
	}

	b = e.browser(e.callbackPrefix("up"))
	p = b.get(e.signInUpstream(b, e.s.issuer+"/federation/up/start", "member", pw))
	if p.url.Path != "/account" || !strings.Contains(p.body, "member@example.com") {
		t.Fatalf("member sign-in: %d at %s:\n%s", p.status, p.url, p.body)
	}
	if u := e.user("member"); u == nil || len(e.identities(u["id"].(string))) != 1 {
		t.Fatalf("member not created and linked: %v", u)
	}
}

// A misconfigured upstream stops the start with a message naming it;
// with LATCHKEY_UPSTREAMS_OPTIONAL it is left out with a warning.
func TestFederationMisconfiguredUpstream(t *testing.T) {
	real := startServer(t, testdb.SQLite(t), nil) // its issuer is http://127.0.0.1:PORT
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(real.issuer, "http://"))
	dead := "http://" + freePort(t)
	for _, tc := range []struct {
		name, issuer string
		want         []string
	}{
		{"unreachable", dead, []string{`upstream "broken"`, "discovery at " + dead, "LATCHKEY_UPSTREAMS_OPTIONAL"}},
		{"issuer mismatch", "http://localhost:" + port, []string{`upstream "broken": issuer mismatch`, real.issuer}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "latchkey.yaml")
			y := fmt.Sprintf("upstreams:\n  - id: broken\n    name: Broken\n    issuer: %s\n    client_id: x\n    client_secret: y\n", tc.issuer)
			if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{
				"LATCHKEY_ISSUER": "http://127.0.0.1:9", "LATCHKEY_HTTP_ADDR": freePort(t), "LATCHKEY_ADMIN_ADDR": freePort(t),
				"LATCHKEY_DATABASE_URL": testdb.SQLite(t), "LATCHKEY_DATA_DIR": t.TempDir(), "LATCHKEY_CONFIG": path,
				"LATCHKEY_SECRET": "e2e-test-secret-e2e-test-secret-0123456789", "LATCHKEY_LOG_LEVEL": "warn",
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out := &lockedWriter{}
			err := run(ctx, []string{"serve"}, func(k string) string { return env[k] }, strings.NewReader(""), out, out)
			if err == nil {
				t.Fatal("serve started with a broken upstream")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}

			s := startServer(t, testdb.SQLite(t), map[string]string{"LATCHKEY_CONFIG": path, "LATCHKEY_UPSTREAMS_OPTIONAL": "true"})
			if log := s.out.String(); !strings.Contains(log, "upstream identity provider disabled") || !strings.Contains(log, "broken") {
				t.Errorf("no warning in the log:\n%s", log)
			}
			p := newBrowser(t, callback).get(s.issuer + "/login")
			if p.status != http.StatusOK || strings.Contains(p.body, "Continue with") || strings.Contains(p.body, "/federation/") {
				t.Errorf("the sign-in page offers the disabled upstream:\n%s", p.body)
			}
			if p := newBrowser(t, callback).get(s.issuer + "/federation/broken/start"); p.status != http.StatusNotFound {
				t.Errorf("the disabled upstream's start: %d", p.status)
			}
		})
	}
}
