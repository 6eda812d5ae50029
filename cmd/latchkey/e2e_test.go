package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/sqlstore"
)

// testServer is a Latchkey started in-process through run, as main does.
type testServer struct {
	t       *testing.T
	issuer  string
	admin   string
	env     map[string]string
	dataDir string
	out     *lockedWriter // what the server printed
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs `latchkey serve` against dsn until the test ends and
// waits for /healthz.
func startServer(t *testing.T, dsn string, extraEnv map[string]string) *testServer {
	t.Helper()
	return startServerArgs(t, dsn, extraEnv, "serve")
}

// startServerArgs is startServer with the command line given.
func startServerArgs(t *testing.T, dsn string, extraEnv map[string]string, args ...string) *testServer {
	t.Helper()
	pub := freePort(t)
	s, _ := startServerAt(t, dsn, pub, "http://"+pub, extraEnv, args...)
	return s
}

// startServerAt is startServer on a chosen public address and issuer (the
// first instance's issuer must be known before it starts, to register its
// callback at the upstream). stop ends it early; otherwise it stops when
// the test ends.
func startServerAt(t *testing.T, dsn, addr, issuer string, extraEnv map[string]string, args ...string) (s *testServer, stop func()) {
	t.Helper()
	if len(args) == 0 {
		args = []string{"serve"}
	}
	adm := freePort(t)
	s = &testServer{t: t, issuer: issuer, admin: "http://" + adm, dataDir: t.TempDir(), out: &lockedWriter{}}
	s.env = map[string]string{
		"LATCHKEY_ISSUER":            issuer,
		"LATCHKEY_HTTP_ADDR":         addr,
		"LATCHKEY_ADMIN_ADDR":        adm,
		"LATCHKEY_DATABASE_URL":      dsn,
		"LATCHKEY_DATA_DIR":          s.dataDir,
		"LATCHKEY_SECRET":            "e2e-test-secret-e2e-test-secret-0123456789",
		"LATCHKEY_ARGON2_MEMORY_KIB": "8192",
		"LATCHKEY_ARGON2_ITERATIONS": "1",
		"LATCHKEY_LOG_LEVEL":         "warn",
	}
	for k, v := range extraEnv {
		s.env[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, s.getenv, strings.NewReader(""), s.out, s.out) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve %s: %v", issuer, err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("serve %s did not stop", issuer)
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.admin + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, stop
			}
		}
		select {
		case err := <-done:
			once.Do(func() {})
			t.Fatalf("serve %s exited early: %v\n%s", issuer, err, s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server %s did not become healthy", issuer)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *testServer) getenv(k string) string { return s.env[k] }

// cli runs a latchkey subcommand against the server's database.
func (s *testServer) cli(stdin string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, s.getenv, strings.NewReader(stdin), &out, &errOut)
	if err != nil {
		return out.String(), fmt.Errorf("%v: %w (stderr: %s)", args, err, errOut.String())
	}
	return out.String(), nil
}

type createdClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

func (s *testServer) createClient(args ...string) createdClient {
	s.t.Helper()
	out, err := s.cli("", append([]string{"clients", "create", "--json"}, args...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	var c createdClient
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" {
		s.t.Fatalf("clients create output %q: %v", out, err)
	}
	return c
}

func (s *testServer) createUser(username, password string) {
	s.t.Helper()
	if _, err := s.cli(password+"\n", "users", "create", "--username", username,
		"--email", username+"@example.com", "--password-stdin", "--email-verified", "--json"); err != nil {
		s.t.Fatal(err)
	}
}

// lockedWriter lets the server's stdout and stderr share one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// browser is a cookie-jar HTTP client that stops at the RP's callback.
type browser struct {
	t        *testing.T
	c        *http.Client
	callback string
}

func newBrowser(t *testing.T, callback string) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, callback: callback}
	b.c = &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), callback) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

var (
	reCSRF      = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	reChallenge = regexp.MustCompile(`name="challenge" value="([^"]*)"`)
)

type pageResp struct {
	status int
	url    *url.URL
	body   string
	loc    string
}

func (b *browser) do(req *http.Request) pageResp {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return pageResp{status: resp.StatusCode, url: resp.Request.URL, body: string(body), loc: resp.Header.Get("Location")}
}

func (b *browser) get(u string) pageResp {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) pageResp {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func field(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in page:\n%s", re, body)
	}
	return m[1]
}

// signIn drives the login (and consent, when shown) forms starting from an
// authorization URL and returns the callback URL the browser was sent to.
func (b *browser) signIn(authURL, username, password string) *url.URL {
	b.t.Helper()
	p := b.get(authURL)
	if p.loc != "" { // already signed in: straight back to the client
		u, _ := url.Parse(p.loc)
		return u
	}
	if p.url.Path == "/login" {
		if p.status != http.StatusOK {
			b.t.Fatalf("login page: %d %s", p.status, p.body)
		}
		p = b.post(p.url.Scheme+"://"+p.url.Host+"/login", url.Values{
			"csrf_token": {field(b.t, reCSRF, p.body)},
			"challenge":  {field(b.t, reChallenge, p.body)},
			"login":      {username},
			"password":   {password},
		})
	}
	if p.loc == "" && p.url.Path == "/consent" {
		form := url.Values{
			"csrf_token": {field(b.t, reCSRF, p.body)},
			"challenge":  {field(b.t, reChallenge, p.body)},
			"decision":   {"allow"},
		}
		for _, m := range regexp.MustCompile(`name="scope" value="([^"]+)"`).FindAllStringSubmatch(p.body, -1) {
			form.Add("scope", m[1])
		}
		p = b.post(p.url.Scheme+"://"+p.url.Host+"/consent", form)
	}
	if p.loc == "" {
		b.t.Fatalf("expected a redirect to the client, got %d at %s:\n%s", p.status, p.url, p.body)
	}
	u, err := url.Parse(p.loc)
	if err != nil {
		b.t.Fatal(err)
	}
	return u
}

func randString() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// backends runs f once on SQLite and once on PostgreSQL.
func backends(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, testdb.SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, testdb.Postgres(t)) })
}

const callback = "http://127.0.0.1:9/callback"

func TestEndToEndAuthorizationCodeFlow(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := startServer(t, dsn, nil)
		s.createUser("alice", "correct horse battery")
		rp := s.createClient("--name", "Example App", "--redirect-uri", callback,
			"--post-logout-redirect-uri", "http://127.0.0.1:9/bye",
			"--grant-type", "authorization_code", "--grant-type", "refresh_token")

		ctx := context.Background()
		op, err := oidc.NewProvider(ctx, s.issuer)
		if err != nil {
			t.Fatal(err)
		}
		conf := &oauth2.Config{
			ClientID: rp.ID, ClientSecret: rp.Secret, Endpoint: op.Endpoint(), RedirectURL: callback,
			Scopes: []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess},
		}
		verifier := op.Verifier(&oidc.Config{ClientID: rp.ID})

		state, nonce, pkce := randString(), randString(), oauth2.GenerateVerifier()
		b := newBrowser(t, callback)
		cb := b.signIn(conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(pkce)), "alice", "correct horse battery")
		if cb.Query().Get("state") != state || cb.Query().Get("code") == "" {
			t.Fatalf("callback %s", cb)
		}
		tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := verifier.Verify(ctx, rawID)
		if err != nil {
			t.Fatalf("id token: %v", err)
		}
		var claims struct {
			Nonce    string   `json:"nonce"`
			AuthTime int64    `json:"auth_time"`
			AtHash   string   `json:"at_hash"`
			SID      string   `json:"sid"`
			Email    string   `json:"email"`
			AMR      []string `json:"amr"`
			ACR      string   `json:"acr"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if claims.Nonce != nonce || claims.AuthTime == 0 || claims.SID == "" || claims.AtHash == "" ||
			strings.Join(claims.AMR, " ") != "pwd" || claims.ACR != "urn:latchkey:acr:password" {
			t.Errorf("id token claims %+v", claims)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}

		// userinfo, GET through go-oidc and POST by hand.
		ui, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		if ui.Subject != idt.Subject || ui.Email != "alice@example.com" {
			t.Errorf("userinfo %+v", ui)
		}
		resp, err := http.PostForm(s.issuer+"/userinfo", url.Values{"access_token": {tok.AccessToken}})
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("userinfo POST: %v %v", err, resp)
		}
		resp.Body.Close()
		// A refresh token is not a bearer token.
		resp, err = http.PostForm(s.issuer+"/userinfo", url.Values{"access_token": {tok.RefreshToken}})
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("userinfo with a refresh token: %v %v", err, resp)
		}
		resp.Body.Close()

		// A second authorization in the same browser skips login and
		// (remembered) consent.
		cb2 := b.signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), "", "")
		if cb2.Query().Get("code") == "" {
			t.Fatalf("silent re-authorization: %s", cb2)
		}

		// Refresh rotates; replaying the old refresh token fails and
		// revokes the family, so the new one dies too.
		old := tok.RefreshToken
		tok2, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Hour)}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if tok2.RefreshToken == old || tok2.AccessToken == tok.AccessToken {
			t.Fatal("refresh did not rotate")
		}
		if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Hour)}).Token(); !isOAuthError(err, "invalid_grant") {
			t.Fatalf("replayed refresh token: %v", err)
		}
		if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); err == nil {
			t.Fatal("refresh token of a revoked family still works")
		}
		if active(t, s, rp, tok2.AccessToken) {
			t.Fatal("access token of a revoked family is still active")
		}

		// A fresh grant: introspect, revoke, introspect.
		cb3 := b.signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), "", "")
		tok3, err := conf.Exchange(ctx, cb3.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatal(err)
		}
		if !active(t, s, rp, tok3.AccessToken) {
			t.Fatal("fresh access token not active")
		}
		form := url.Values{"token": {tok3.RefreshToken}, "token_type_hint": {"refresh_token"}}
		req, _ := http.NewRequest(http.MethodPost, s.issuer+"/oauth2/revoke", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(rp.ID, rp.Secret)
		resp, err = http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %v %v", err, resp)
		}
		resp.Body.Close()
		if active(t, s, rp, tok3.AccessToken) {
			t.Fatal("revoking the refresh token left its access token active")
		}

		// RP-initiated logout with id_token_hint and a registered URI.
		v := url.Values{"id_token_hint": {rawID}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye"}, "state": {"s1"}}
		lb := newBrowser(t, "http://127.0.0.1:9/bye")
		lb.c.Jar = b.c.Jar
		p := lb.get(s.issuer + "/oauth2/logout?" + v.Encode())
		if !strings.HasPrefix(p.loc, "http://127.0.0.1:9/bye?state=s1") {
			t.Fatalf("logout: %d %q %s", p.status, p.loc, p.body)
		}
		// Signed out: the next authorization asks for the password again.
		p = b.get(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)))
		if p.url.Path != "/login" {
			t.Fatalf("after logout, authorization went to %s", p.url)
		}
	})
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

func introspect(t *testing.T, s *testServer, c createdClient, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.issuer+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, c.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("introspect: %d %v", resp.StatusCode, err)
	}
	return out
}

func active(t *testing.T, s *testServer, c createdClient, token string) bool {
	return introspect(t, s, c, token)["active"] == true
}

func TestEndToEndPromptsPARAndConsent(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), nil)
	s.createUser("carol", "a long enough password")
	rp := s.createClient("--name", "Third Party", "--redirect-uri", callback)
	ctx := context.Background()
	conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback,
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"},
		Scopes:   []string{"openid", "email"}}
	pkce := oauth2.GenerateVerifier()

	t.Run("denying consent returns access_denied", func(t *testing.T) {
		b := newBrowser(t, callback)
		p := b.get(conf.AuthCodeURL("state-deny-1", oauth2.S256ChallengeOption(pkce)))
		p = b.post(s.issuer+"/login", url.Values{"csrf_token": {field(t, reCSRF, p.body)},
			"challenge": {field(t, reChallenge, p.body)}, "login": {"carol"}, "password": {"a long enough password"}})
		if p.url.Path != "/consent" || !strings.Contains(p.body, "Third Party") {
			t.Fatalf("expected the consent page, got %s", p.url)
		}
		p = b.post(s.issuer+"/consent", url.Values{"csrf_token": {field(t, reCSRF, p.body)},
			"challenge": {field(t, reChallenge, p.body)}, "decision": {"deny"}})
		u, _ := url.Parse(p.loc)
		if u == nil || u.Query().Get("error") != "access_denied" || u.Query().Get("state") != "state-deny-1" {
			t.Fatalf("deny: %d %q", p.status, p.loc)
		}
	})

	b := newBrowser(t, callback)
	cb := b.signIn(conf.AuthCodeURL("state-first-1", oauth2.S256ChallengeOption(pkce)), "carol", "a long enough password")
	if cb.Query().Get("code") == "" {
		t.Fatalf("first sign-in: %s", cb)
	}

	t.Run("prompt=login asks for the password again", func(t *testing.T) {
		p := b.get(conf.AuthCodeURL("state-login-1", oauth2.S256ChallengeOption(pkce), oauth2.SetAuthURLParam("prompt", "login")))
		if p.url.Path != "/login" {
			t.Fatalf("prompt=login went to %s", p.url)
		}
		cb := b.signIn(conf.AuthCodeURL("state-login-2", oauth2.S256ChallengeOption(pkce), oauth2.SetAuthURLParam("prompt", "login")),
			"carol", "a long enough password")
		tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatalf("exchange after prompt=login: %v", err)
		}
		if tok.Extra("id_token") == nil {
			t.Fatal("no id token")
		}
	})

	t.Run("prompt=consent shows consent again", func(t *testing.T) {
		p := b.get(conf.AuthCodeURL("state-consent-1", oauth2.S256ChallengeOption(pkce), oauth2.SetAuthURLParam("prompt", "consent")))
		if p.url.Path != "/consent" {
			t.Fatalf("prompt=consent went to %s", p.url)
		}
	})

	t.Run("prompt=none with a session and consent", func(t *testing.T) {
		p := b.get(conf.AuthCodeURL("state-none-1", oauth2.S256ChallengeOption(pkce), oauth2.SetAuthURLParam("prompt", "none")))
		u, _ := url.Parse(p.loc)
		if u == nil || u.Query().Get("code") == "" {
			t.Fatalf("prompt=none: %d %q", p.status, p.loc)
		}
	})

	t.Run("max_age=0 forces a fresh sign-in", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond) // auth_time has one-second resolution
		p := b.get(conf.AuthCodeURL("state-maxage", oauth2.S256ChallengeOption(pkce), oauth2.SetAuthURLParam("max_age", "0")))
		if p.url.Path != "/login" {
			t.Fatalf("max_age=0 went to %s", p.url)
		}
	})

	t.Run("pushed authorization request", func(t *testing.T) {
		form := url.Values{"response_type": {"code"}, "client_id": {rp.ID}, "redirect_uri": {callback},
			"scope": {"openid email"}, "state": {"state-par-1"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(pkce)},
			"code_challenge_method": {"S256"}}
		req, _ := http.NewRequest(http.MethodPost, s.issuer+"/oauth2/par", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(rp.ID, rp.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var par struct {
			RequestURI string `json:"request_uri"`
			ExpiresIn  int    `json:"expires_in"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&par)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || par.RequestURI == "" {
			t.Fatalf("PAR: %d %+v", resp.StatusCode, par)
		}
		q := url.Values{"client_id": {rp.ID}, "request_uri": {par.RequestURI}}
		cb := b.signIn(s.issuer+"/oauth2/authorize?"+q.Encode(), "", "")
		if cb.Query().Get("state") != "state-par-1" {
			t.Fatalf("PAR callback %s", cb)
		}
		if _, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce)); err != nil {
			t.Fatalf("PAR exchange: %v", err)
		}
		// The request_uri is single use.
		p := b.get(s.issuer + "/oauth2/authorize?" + q.Encode())
		if p.status != http.StatusBadRequest && !strings.Contains(p.loc, "error=") {
			t.Fatalf("reused request_uri: %d %q", p.status, p.loc)
		}
	})

	t.Run("logout without id_token_hint asks first", func(t *testing.T) {
		p := b.get(s.issuer + "/oauth2/logout")
		if p.url.Path != "/logout" || !strings.Contains(p.body, "Sign out") {
			t.Fatalf("logout: %s %d", p.url, p.status)
		}
		p = b.post(s.issuer+"/logout", url.Values{"csrf_token": {field(t, reCSRF, p.body)}})
		if p.url.Path != "/logout" || !strings.Contains(p.body, "signed out") {
			t.Fatalf("after confirming: %s %s", p.url, p.body)
		}
		p = b.get(conf.AuthCodeURL("state-after", oauth2.S256ChallengeOption(pkce)))
		if p.url.Path != "/login" {
			t.Fatalf("still signed in: %s", p.url)
		}
	})

	t.Run("suspended users cannot sign in", func(t *testing.T) {
		st, err := sqlstore.Open(ctx, s.env["LATCHKEY_DATABASE_URL"])
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		u, err := st.GetUserByLogin(ctx, "carol")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetUserStatus(ctx, u.ID, storage.UserSuspended); err != nil {
			t.Fatal(err)
		}
		nb := newBrowser(t, callback)
		p := nb.get(conf.AuthCodeURL("state-susp-1", oauth2.S256ChallengeOption(pkce)))
		p = nb.post(s.issuer+"/login", url.Values{"csrf_token": {field(t, reCSRF, p.body)},
			"challenge": {field(t, reChallenge, p.body)}, "login": {"carol"}, "password": {"a long enough password"}})
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "Invalid username or password") {
			t.Fatalf("suspended sign-in: %d", p.status)
		}
	})
}
