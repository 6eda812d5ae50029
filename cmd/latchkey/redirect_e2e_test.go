package main

// End-to-end tests of where an authorization response may go: loopback
// redirect URIs (RFC 8252 §7.3 applies to public native clients only,
// userinfo is never accepted) and the response_mode=form_post page.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testdb"
)

// loopbackCB is the loopback redirect URI the test clients register.
const loopbackCB = "http://127.0.0.1:4711/cb"

// attackerVariants are URIs a black-box attack got accepted for a client
// registered with loopbackCB.
var attackerVariants = map[string]string{
	"other port":        "http://127.0.0.1:4712/cb",
	"userinfo":          "http://evil@127.0.0.1:4711/cb",
	"trailing ?":        "http://127.0.0.1:4711/cb?",
	"upper-case scheme": "HTTP://127.0.0.1:4711/cb",
	"userinfo+any":      "http://evil.example@127.0.0.1:4799/cb",
}

// once sends one request with the browser's cookies and does not follow
// redirects, so the test sees exactly where the server sends it.
func (b *browser) once(method, u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	c := &http.Client{Jar: b.c.Jar, Timeout: b.c.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// wantErrorPage fails unless resp is the friendly error page: a 400 HTML
// page with no Location header.
func wantErrorPage(t *testing.T, what string, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "<html") {
		t.Fatalf("%s: got %d Location=%q Content-Type=%q, want the error page:\n%s", what, resp.StatusCode,
			resp.Header.Get("Location"), resp.Header.Get("Content-Type"), body)
	}
}

// pushAuthorization sends a pushed authorization request (RFC 9126).
func pushAuthorization(t *testing.T, s *testServer, c createdClient, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.issuer+"/oauth2/par", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.Secret != "" {
		req.SetBasicAuth(c.ID, c.Secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("PAR answer (%d, %s) is not JSON: %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	return resp.StatusCode, out
}

func TestEndToEndLoopbackRedirectURIs(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := startServer(t, dsn, nil)
		s.createUser("lena", "loopback password 42")
		ctx := context.Background()
		endpoint := oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"}
		web := s.createClient("--name", "Web App", "--redirect-uri", loopbackCB, "--first-party")
		native := s.createClient("--name", "Desktop App", "--public", "--redirect-uri", loopbackCB,
			"--redirect-uri", "http://[::1]:4711/cb", "--first-party")
		conf := func(c createdClient, redirect string) *oauth2.Config {
			return &oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, RedirectURL: redirect, Endpoint: endpoint,
				Scopes: []string{"openid", "profile"}}
		}
		pkce := oauth2.GenerateVerifier()
		authURL := func(c createdClient, redirect string, opts ...oauth2.AuthCodeOption) string {
			return conf(c, redirect).AuthCodeURL("state-"+randString(), append(opts, oauth2.S256ChallengeOption(pkce))...)
		}

		// Signed in already (first-party, no consent): before the fix the
		// attacker's URI got the code at once.
		b := newBrowser(t, loopbackCB)
		cb := b.signIn(authURL(web, loopbackCB), "lena", "loopback password 42")
		if !strings.HasPrefix(cb.String(), loopbackCB+"?") || cb.Query().Get("code") == "" {
			t.Fatalf("the exact registered URI did not complete the sign-in: %s", cb)
		}
		if _, err := conf(web, loopbackCB).Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce)); err != nil {
			t.Fatalf("exchange at the exact URI: %v", err)
		}

		for name, evil := range attackerVariants {
			t.Run("confidential refuses "+name, func(t *testing.T) {
				// Signed in: no code may leave.
				resp, body := b.once(http.MethodGet, authURL(web, evil), nil)
				wantErrorPage(t, "signed in", resp, body)
				// Not signed in, and a request fosite rejects later (a
				// state too short): the error is not sent there either.
				fresh := newBrowser(t, evil)
				u := conf(web, evil).AuthCodeURL("x", oauth2.S256ChallengeOption(pkce))
				resp, body = fresh.once(http.MethodGet, u, nil)
				wantErrorPage(t, "bad state", resp, body)
				// Nor does the request go on to the login page.
				resp, body = fresh.once(http.MethodGet, authURL(web, evil), nil)
				wantErrorPage(t, "signed out", resp, body)
				// A pushed request with it is refused: invalid_request.
				status, out := pushAuthorization(t, s, web, url.Values{"response_type": {"code"}, "client_id": {web.ID},
					"redirect_uri": {evil}, "scope": {"openid"}, "state": {"state-par-12345678"},
					"code_challenge": {oauth2.S256ChallengeFromVerifier(pkce)}, "code_challenge_method": {"S256"}})
				if status != http.StatusBadRequest || out["error"] != "invalid_request" {
					t.Fatalf("PAR with %s: %d %v", evil, status, out)
				}
			})
		}

		t.Run("confidential PAR with the exact URI", func(t *testing.T) {
			status, out := pushAuthorization(t, s, web, url.Values{"response_type": {"code"}, "client_id": {web.ID},
				"redirect_uri": {loopbackCB}, "scope": {"openid"}, "state": {"state-par-12345678"},
				"code_challenge": {oauth2.S256ChallengeFromVerifier(pkce)}, "code_challenge_method": {"S256"}})
			if status != http.StatusCreated || out["request_uri"] == nil {
				t.Fatalf("PAR: %d %v", status, out)
			}
			q := url.Values{"client_id": {web.ID}, "request_uri": {out["request_uri"].(string)}}
			cb := b.signIn(s.issuer+"/oauth2/authorize?"+q.Encode(), "", "")
			if !strings.HasPrefix(cb.String(), loopbackCB+"?") || cb.Query().Get("code") == "" {
				t.Fatalf("PAR callback %s", cb)
			}
		})

		t.Run("public native client keeps any port", func(t *testing.T) {
			for _, other := range []string{"http://127.0.0.1:51234/cb", "http://127.0.0.1/cb", "http://[::1]:60000/cb"} {
				nb := newBrowser(t, other)
				cb := nb.signIn(authURL(native, other), "lena", "loopback password 42")
				if !strings.HasPrefix(cb.String(), other+"?") || cb.Query().Get("code") == "" {
					t.Fatalf("public client at %s: callback %s", other, cb)
				}
				tok, err := conf(native, other).Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce))
				if err != nil || tok.AccessToken == "" {
					t.Fatalf("public client exchange at %s: %v", other, err)
				}
			}
			status, out := pushAuthorization(t, s, native, url.Values{"response_type": {"code"}, "client_id": {native.ID},
				"redirect_uri": {"http://127.0.0.1:50000/cb"}, "scope": {"openid"}, "state": {"state-par-12345678"},
				"code_challenge": {oauth2.S256ChallengeFromVerifier(pkce)}, "code_challenge_method": {"S256"}})
			if status != http.StatusCreated {
				t.Fatalf("public PAR at another port: %d %v", status, out)
			}
		})

		for _, evil := range []string{
			"http://evil@127.0.0.1:4711/cb", "http://evil@127.0.0.1:50000/cb", "HTTP://127.0.0.1:50000/cb",
			"http://127.0.0.1:50000/cb?", "http://127.0.0.1:50000/cb?x=1", "http://127.0.0.1:50000/cb/",
			"http://localhost:50000/cb", "http://[::1]:50000/cb?", "http://127.0.0.1:50000/cb#f",
		} {
			t.Run("public refuses "+evil, func(t *testing.T) {
				resp, body := b.once(http.MethodGet, authURL(native, evil), nil)
				wantErrorPage(t, evil, resp, body)
				status, out := pushAuthorization(t, s, native, url.Values{"response_type": {"code"}, "client_id": {native.ID},
					"redirect_uri": {evil}, "scope": {"openid"}, "state": {"state-par-12345678"},
					"code_challenge": {oauth2.S256ChallengeFromVerifier(pkce)}, "code_challenge_method": {"S256"}})
				if status != http.StatusBadRequest || out["error"] != "invalid_request" {
					t.Fatalf("PAR with %s: %d %v", evil, status, out)
				}
			})
		}
	})
}

// A redirect URI with userinfo cannot be registered, through the CLI or
// the admin API (the admin API's cases are in admin/clients_test.go).
func TestEndToEndUserinfoRedirectURIRefused(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), nil)
	for _, uri := range []string{"https://user@app.example/cb", "http://evil@127.0.0.1:4711/cb", "https://u:p@app.example/cb"} {
		_, err := s.cli("", "clients", "create", "--name", "x", "--redirect-uri", uri)
		if err == nil || !strings.Contains(err.Error(), "--redirect-uri") || !strings.Contains(err.Error(), "userinfo") {
			t.Errorf("%s: err = %v, want a --redirect-uri error about userinfo", uri, err)
		}
	}
}

var (
	reScript      = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	reFormAction  = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	reHiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
)

// wantFormPostPage checks the response_mode=form_post page: its security
// headers, a CSP whose script hash is the page's own script, and a form
// posting to redirect. It returns the form's fields.
func wantFormPostPage(t *testing.T, resp *http.Response, body, redirect string) url.Values {
	t.Helper()
	h := resp.Header
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("form_post answer: %d %s\n%s", resp.StatusCode, h.Get("Content-Type"), body)
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store",
		"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
		if h.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, h.Get(k), v)
		}
	}
	m := reScript.FindStringSubmatch(body)
	if m == nil || strings.Count(body, "<script") != 1 {
		t.Fatalf("want exactly one inline script:\n%s", body)
	}
	sum := sha256.Sum256([]byte(m[1]))
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	ru, _ := url.Parse(redirect)
	directives := map[string]string{}
	for _, d := range strings.Split(h.Get("Content-Security-Policy"), ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	for name, want := range map[string]string{"default-src": "'none'", "script-src": hash,
		"form-action": ru.Scheme + "://" + ru.Host, "frame-ancestors": "'none'"} {
		if directives[name] != want {
			t.Errorf("CSP %s = %q, want %q (CSP %q)", name, directives[name], want, h.Get("Content-Security-Policy"))
		}
	}
	if strings.Contains(body, "onload") || !strings.Contains(body, "<noscript>") {
		t.Errorf("want no inline handler and a <noscript> button:\n%s", body)
	}
	a := reFormAction.FindStringSubmatch(body)
	if a == nil || html.UnescapeString(a[1]) != redirect {
		t.Fatalf("form action %v, want %s:\n%s", a, redirect, body)
	}
	fields := url.Values{}
	for _, in := range reHiddenInput.FindAllStringSubmatch(body, -1) {
		fields.Add(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
	}
	return fields
}

func TestEndToEndFormPostResponse(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), nil)
	s.createUser("fiona", "form post password 42")
	ctx := context.Background()
	rp := s.createClient("--name", "Form App", "--redirect-uri", callback, "--first-party")
	conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback,
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"},
		Scopes:   []string{"openid", "profile"}}
	pkce := oauth2.GenerateVerifier()
	formPost := oauth2.SetAuthURLParam("response_mode", "form_post")

	t.Run("an error goes back as a form too", func(t *testing.T) {
		b := newBrowser(t, callback)
		resp, body := b.once(http.MethodGet, conf.AuthCodeURL("state-none-12345678", formPost,
			oauth2.S256ChallengeOption(pkce), oauth2.SetAuthURLParam("prompt", "none")), nil)
		f := wantFormPostPage(t, resp, body, callback)
		if f.Get("error") != "login_required" || f.Get("state") != "state-none-12345678" {
			t.Fatalf("fields %v", f)
		}
	})

	b := newBrowser(t, callback)
	login := b.get(conf.AuthCodeURL("state-form-12345678", formPost, oauth2.S256ChallengeOption(pkce)))
	if login.url.Path != "/login" {
		t.Fatalf("expected the login page, got %s", login.url)
	}
	// The login form sends the browser to resume, which answers with the
	// page; follow the redirects by hand to see the last response.
	resp, body := b.once(http.MethodPost, s.issuer+"/login", url.Values{"csrf_token": {field(t, reCSRF, login.body)},
		"challenge": {field(t, reChallenge, login.body)}, "login": {"fiona"}, "password": {"form post password 42"}})
	for i := 0; i < 5 && resp.StatusCode/100 == 3; i++ {
		next, _ := resp.Location()
		resp, body = b.once(http.MethodGet, next.String(), nil)
	}
	f := wantFormPostPage(t, resp, body, callback)
	if f.Get("state") != "state-form-12345678" || f.Get("code") == "" {
		t.Fatalf("fields %v", f)
	}
	if _, err := conf.Exchange(ctx, f.Get("code"), oauth2.VerifierOption(pkce)); err != nil {
		t.Fatalf("exchanging the posted code: %v", err)
	}

	t.Run("signed in already", func(t *testing.T) {
		resp, body := b.once(http.MethodGet, conf.AuthCodeURL("state-again-12345678", formPost, oauth2.S256ChallengeOption(pkce)), nil)
		f := wantFormPostPage(t, resp, body, callback)
		if f.Get("state") != "state-again-12345678" || f.Get("code") == "" {
			t.Fatalf("fields %v", f)
		}
	})
}
