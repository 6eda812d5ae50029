package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// mfaRP is a relying party (x/oauth2 + go-oidc) of the MFA tests.
type mfaRP struct {
	t        *testing.T
	s        *testServer
	conf     *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

type mfaClaims struct {
	Sub string   `json:"sub"`
	AMR []string `json:"amr"`
	ACR string   `json:"acr"`
}

func newMFARP(t *testing.T, s *testServer, args ...string) *mfaRP {
	t.Helper()
	rp := s.createClient(append([]string{"--name", "MFA App", "--redirect-uri", callback,
		"--scope", "openid profile account:read account:write"}, args...)...)
	op, err := oidc.NewProvider(context.Background(), s.issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &mfaRP{t: t, s: s, verifier: op.Verifier(&oidc.Config{ClientID: rp.ID}),
		conf: &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, Endpoint: op.Endpoint(), RedirectURL: callback,
			Scopes: []string{oidc.ScopeOpenID, "account:read", "account:write"}}}
}

// redeem exchanges the callback's code and verifies the ID token.
func (rp *mfaRP) redeem(cb *url.URL, pkce string) (mfaClaims, string) {
	rp.t.Helper()
	if cb.Query().Get("code") == "" {
		rp.t.Fatalf("no code in the callback %s", cb)
	}
	tok, err := rp.conf.Exchange(context.Background(), cb.Query().Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		rp.t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(context.Background(), raw)
	if err != nil {
		rp.t.Fatalf("id token: %v", err)
	}
	var c mfaClaims
	if err := idt.Claims(&c); err != nil {
		rp.t.Fatal(err)
	}
	return c, tok.AccessToken
}

// start opens an authorization request in b and returns the page it lands
// on (or the callback, in loc) and the PKCE verifier.
func (rp *mfaRP) start(b *browser, opts ...oauth2.AuthCodeOption) (pageResp, string) {
	pkce := oauth2.GenerateVerifier()
	return b.get(rp.conf.AuthCodeURL(randString(), append(opts, oauth2.S256ChallengeOption(pkce))...)), pkce
}

// password submits the sign-in form of p.
func password(b *browser, p pageResp, login, pw string) pageResp {
	b.t.Helper()
	if p.url.Path != "/login" {
		b.t.Fatalf("expected the sign-in page, got %d %s", p.status, p.url)
	}
	return b.post(p.url.Scheme+"://"+p.url.Host+"/login", url.Values{"csrf_token": {field(b.t, reCSRF, p.body)},
		"challenge": {field(b.t, reChallenge, p.body)}, "login": {login}, "password": {pw}})
}

// code submits the second-factor form of p.
func code(b *browser, p pageResp, c string) pageResp {
	b.t.Helper()
	if p.url.Path != "/login/second-factor" || !strings.Contains(p.body, `name="code"`) {
		b.t.Fatalf("expected the second-factor page, got %d %s\n%s", p.status, p.url, p.body)
	}
	return b.post(p.url.Scheme+"://"+p.url.Host+"/login/second-factor", url.Values{"csrf_token": {field(b.t, reCSRF, p.body)},
		"challenge": {field(b.t, reChallenge, p.body)}, "code": {c}})
}

func callbackOf(t *testing.T, p pageResp) *url.URL {
	t.Helper()
	if p.loc == "" {
		t.Fatalf("expected a redirect to the client, got %d at %s:\n%s", p.status, p.url, p.body)
	}
	u, err := url.Parse(p.loc)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// accountCall is one account API request with a bearer token.
func accountCall(t *testing.T, s *testServer, tok, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.issuer+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
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

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TOTP end to end, with x/oauth2 and go-oidc as the relying party:
// enrolment through the account API, sign-in with the code (amr, acr),
// a replayed code refused, a recovery code once, step-up with acr_values
// on an existing password session, prompt=none, wrong codes limited and
// locking the account, and the administrator's reset.
func TestEndToEndTOTP(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := startServer(t, dsn, map[string]string{"LATCHKEY_RATE_LOGIN_ACCOUNT": "12/15m"})
		const pw = "mia's long password"
		s.createUser("mia", pw)
		rp := newMFARP(t, s, "--first-party")

		// A browser signed in with the password before any factor exists.
		old := newBrowser(t, callback)
		p, pkce := rp.start(old)
		first, tok := rp.redeem(callbackOf(t, password(old, p, "mia", pw)), pkce)
		if !slices.Equal(first.AMR, []string{"pwd"}) || first.ACR != "urn:latchkey:acr:password" {
			t.Fatalf("password sign-in: amr %v acr %s", first.AMR, first.ACR)
		}

		// Enrolment through the account API.
		st, en := accountCall(t, s, tok, http.MethodPost, "/account/me/factors/totp", map[string]any{"current_password": "wrong"})
		if st != http.StatusUnprocessableEntity {
			t.Fatalf("enrol with a wrong password: %d %v", st, en)
		}
		st, en = accountCall(t, s, tok, http.MethodPost, "/account/me/factors/totp", map[string]any{"current_password": pw})
		secret, _ := en["secret"].(string)
		id, _ := en["id"].(string)
		if st != http.StatusCreated || secret == "" || id == "" || !strings.HasPrefix(en["otpauth_uri"].(string), "otpauth://totp/") {
			t.Fatalf("enrol: %d %v", st, en)
		}
		st, out := accountCall(t, s, tok, http.MethodPost, "/account/me/factors/totp/"+id+"/confirm", map[string]any{"code": "000000"})
		if fields, _ := out["fields"].(map[string]any); st != http.StatusUnprocessableEntity || fields["code"] == nil {
			t.Fatalf("confirm with a wrong code: %d %v", st, out)
		}
		now := time.Now()
		st, out = accountCall(t, s, tok, http.MethodPost, "/account/me/factors/totp/"+id+"/confirm", map[string]any{"code": totpCode(t, secret, now)})
		raw, _ := out["recovery_codes"].([]any)
		if st != http.StatusOK || len(raw) != 10 {
			t.Fatalf("confirm: %d %v", st, out)
		}
		var recovery []string
		for _, c := range raw {
			recovery = append(recovery, c.(string))
		}
		st, out = accountCall(t, s, tok, http.MethodGet, "/account/me/factors", nil)
		if fs, _ := out["factors"].([]any); st != http.StatusOK || len(fs) != 1 || out["recovery_codes_left"] != 10.0 {
			t.Fatalf("GET factors: %d %v", st, out)
		}

		// A fresh sign-in now asks for the code after the password.
		next := totpCode(t, secret, now.Add(30*time.Second)) // the step after the one confirming used
		b := newBrowser(t, callback)
		p, pkce = rp.start(b)
		sf := password(b, p, "mia", pw)
		two, _ := rp.redeem(callbackOf(t, code(b, sf, next)), pkce)
		if !slices.Equal(two.AMR, []string{"pwd", "otp", "mfa"}) || two.ACR != "urn:latchkey:acr:mfa" {
			t.Fatalf("two-factor sign-in: amr %v acr %s", two.AMR, two.ACR)
		}
		// The same code again, in another browser: refused.
		b2 := newBrowser(t, callback)
		p, _ = rp.start(b2)
		sf = password(b2, p, "mia", pw)
		if again := code(b2, sf, next); again.status != http.StatusUnauthorized || again.loc != "" {
			t.Fatalf("replayed code: %d %s", again.status, again.loc)
		}
		// A recovery code works once.
		p, pkce = rp.start(b2)
		rp.redeem(callbackOf(t, code(b2, password(b2, p, "mia", pw), recovery[0])), pkce)
		b3 := newBrowser(t, callback)
		p, _ = rp.start(b3)
		if again := code(b3, password(b3, p, "mia", pw), recovery[0]); again.status != http.StatusUnauthorized {
			t.Fatalf("recovery code used twice: %d", again.status)
		}

		// The old password-only session still signs in without a code…
		p, pkce = rp.start(old)
		if c, _ := rp.redeem(callbackOf(t, p), pkce); !slices.Equal(c.AMR, []string{"pwd"}) {
			t.Fatalf("existing session: amr %v", c.AMR)
		}
		// …but not where the client asks for two factors: prompt=none
		// gets interaction_required, and a step-up asks for the code only.
		mfa := oauth2.SetAuthURLParam("acr_values", "urn:latchkey:acr:mfa")
		p, _ = rp.start(old, mfa, oauth2.SetAuthURLParam("prompt", "none"))
		if cb := callbackOf(t, p); cb.Query().Get("error") != "interaction_required" {
			t.Fatalf("prompt=none without the factor: %s", cb)
		}
		p, pkce = rp.start(old, mfa)
		up, _ := rp.redeem(callbackOf(t, code(old, p, recovery[1])), pkce)
		if up.Sub != first.Sub || !slices.Contains(up.AMR, "mfa") || up.ACR != "urn:latchkey:acr:mfa" {
			t.Fatalf("step-up: %+v", up)
		}
		// The stepped-up session satisfies acr_values from now on.
		p, pkce = rp.start(old, mfa, oauth2.SetAuthURLParam("prompt", "none"))
		if c, _ := rp.redeem(callbackOf(t, p), pkce); c.ACR != "urn:latchkey:acr:mfa" {
			t.Fatalf("after step-up: %+v", c)
		}

		// Wrong codes are limited per account and lock it like passwords.
		b4 := newBrowser(t, callback)
		p, _ = rp.start(b4)
		sf = password(b4, p, "mia", pw)
		var statuses []int
		for range 12 {
			r := b4.post(s.issuer+"/login/second-factor", url.Values{"csrf_token": {field(t, reCSRF, sf.body)},
				"challenge": {field(t, reChallenge, sf.body)}, "code": {"000000"}})
			statuses = append(statuses, r.status)
		}
		if !slices.Contains(statuses, http.StatusTooManyRequests) || slices.Contains(statuses, http.StatusOK) {
			t.Fatalf("wrong codes: %v; want 401s then 429", statuses)
		}
		// The lock holds for the password too, in any browser.
		b5 := newBrowser(t, callback)
		p, _ = rp.start(b5)
		if locked := password(b5, p, "mia", pw); locked.status != http.StatusUnauthorized || locked.loc != "" {
			t.Fatalf("password after the codes locked the account: %d %s", locked.status, locked.url)
		}

		// The administrator sees and resets the factors.
		adm := s.createClient("--admin")
		cc := &clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret, TokenURL: s.issuer + "/oauth2/token", Scopes: []string{"admin"}}
		at, err := cc.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st, u := s.adminCall(t, at.AccessToken, http.MethodGet, "/v1/users/"+first.Sub, nil); st != http.StatusOK || u["mfa_enabled"] != true {
			t.Fatalf("admin GET user: %d %v", st, u)
		}
		if st, fs := s.adminCall(t, at.AccessToken, http.MethodGet, "/v1/users/"+first.Sub+"/factors", nil); st != http.StatusOK || len(fs["factors"].([]any)) != 1 {
			t.Fatalf("admin GET factors: %d %v", st, fs)
		}
		if st, out := s.adminCall(t, at.AccessToken, http.MethodDelete, "/v1/users/"+first.Sub+"/factors", map[string]any{"reason": "lost phone"}); st != http.StatusOK || out["removed"] != 1.0 {
			t.Fatalf("admin reset: %d %v", st, out)
		}
		if st, u := s.adminCall(t, at.AccessToken, http.MethodGet, "/v1/users/"+first.Sub, nil); st != http.StatusOK || u["mfa_enabled"] != false {
			t.Fatalf("after reset: %d %v", st, u)
		}
		if st, _ := s.adminCall(t, at.AccessToken, http.MethodDelete, "/v1/users/"+first.Sub+"/lockout", nil); st != http.StatusNoContent {
			t.Fatalf("clear lockout: %d", st)
		}
		// The reset signed mia out everywhere; the password alone is
		// enough again.
		p, pkce = rp.start(old)
		if c, _ := rp.redeem(callbackOf(t, password(old, p, "mia", pw)), pkce); !slices.Equal(c.AMR, []string{"pwd"}) {
			t.Fatalf("after reset: amr %v", c.AMR)
		}
	})
}

// The browser session exists only once the sign-in is finished: a request
// abandoned at the consent page (or at the second factor) leaves none,
// and a direct sign-in to the account page goes through the second
// factor too.
func TestEndToEndSessionOnlyAtFinish(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), nil)
	const pw = "noa's long password"
	s.createUser("noa", pw)
	rp := newMFARP(t, s) // third party: consent is asked
	adm := s.createClient("--admin")
	cc := &clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret, TokenURL: s.issuer + "/oauth2/token", Scopes: []string{"admin"}}
	at, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, found := s.adminCall(t, at.AccessToken, http.MethodGet, "/v1/users?q=noa", nil)
	userID := found["users"].([]any)[0].(map[string]any)["id"].(string)
	sessions := func() int {
		t.Helper()
		st, out := s.adminCall(t, at.AccessToken, http.MethodGet, "/v1/users/"+userID+"/sessions", nil)
		if st != http.StatusOK {
			t.Fatalf("sessions: %d %v", st, out)
		}
		return len(out["sessions"].([]any))
	}

	b := newBrowser(t, callback)
	p, pkce := rp.start(b)
	consent := password(b, p, "noa", pw)
	if consent.url.Path != "/consent" {
		t.Fatalf("expected the consent page, got %s", consent.url)
	}
	if n := sessions(); n != 0 {
		t.Fatalf("%d session(s) while the request waits at the consent page", n)
	}
	form := url.Values{"csrf_token": {field(t, reCSRF, consent.body)}, "challenge": {field(t, reChallenge, consent.body)},
		"decision": {"allow"}, "scope": {"openid", "account:read", "account:write"}}
	c, tok := rp.redeem(callbackOf(t, b.post(s.issuer+"/consent", form)), pkce)
	if c.Sub != userID || sessions() != 1 {
		t.Fatalf("after consent: sub %s, %d sessions", c.Sub, sessions())
	}

	// Enrol a factor; then a direct sign-in (no application) asks for it
	// before the account page, and no session exists in between.
	_, en := accountCall(t, s, tok, http.MethodPost, "/account/me/factors/totp", map[string]any{"current_password": pw})
	secret, id := en["secret"].(string), en["id"].(string)
	now := time.Now()
	if st, _ := accountCall(t, s, tok, http.MethodPost, "/account/me/factors/totp/"+id+"/confirm", map[string]any{"code": totpCode(t, secret, now)}); st != http.StatusOK {
		t.Fatalf("confirm: %d", st)
	}
	d := newBrowser(t, callback)
	lp := d.get(s.issuer + "/login")
	sf := d.post(s.issuer+"/login", url.Values{"csrf_token": {field(t, reCSRF, lp.body)}, "login": {"noa"}, "password": {pw}})
	if sf.url.Path != "/login/second-factor" || sessions() != 1 {
		t.Fatalf("direct sign-in: at %s with %d sessions", sf.url, sessions())
	}
	acct := code(d, sf, totpCode(t, secret, now.Add(30*time.Second)))
	if acct.url.Path != "/account" || acct.status != http.StatusOK || sessions() != 2 {
		t.Fatalf("after the code: %d %s, %d sessions", acct.status, acct.url, sessions())
	}
}

// A client (or tier) that requires two factors takes a person without a
// factor to enrolment in the middle of the sign-in: QR page, code,
// recovery codes, then on to the client with amr "mfa".
func TestEndToEndEnrolmentRequired(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := startServer(t, dsn, nil)
		const pw = "ola's long password"
		s.createUser("ola", pw)
		rp := newMFARP(t, s, "--first-party", "--require-mfa")
		b := newBrowser(t, callback)
		p, pkce := rp.start(b)
		en := password(b, p, "ola", pw)
		if en.url.Path != "/login/enrol" || !strings.Contains(en.body, `<img class="qr" src="data:image/png;base64,`) {
			t.Fatalf("expected the enrolment page, got %d %s\n%s", en.status, en.url, en.body)
		}
		secret := strings.ReplaceAll(field(t, regexp.MustCompile(`<code class="secret"[^>]*>([^<]+)</code>`), en.body), " ", "")
		form := url.Values{"csrf_token": {field(t, reCSRF, en.body)}, "challenge": {field(t, reChallenge, en.body)},
			"factor_id": {field(t, regexp.MustCompile(`name="factor_id" value="([^"]+)"`), en.body)}}
		form.Set("code", "000000")
		if wrong := b.post(s.issuer+"/login/enrol", form); wrong.status != http.StatusUnprocessableEntity || wrong.url.Path != "/login/enrol" {
			t.Fatalf("wrong code at enrolment: %d %s", wrong.status, wrong.url)
		}
		form.Set("code", totpCode(t, secret, time.Now()))
		codes := b.post(s.issuer+"/login/enrol", form)
		if n := strings.Count(codes.body, "<li><code>"); codes.status != http.StatusOK || n != 10 {
			t.Fatalf("recovery codes page: %d, %d codes\n%s", codes.status, n, codes.body)
		}
		next := field(t, regexp.MustCompile(`<a class="button" href="([^"]+)"`), codes.body)
		c, _ := rp.redeem(callbackOf(t, b.get(s.issuer+strings.ReplaceAll(next, "&amp;", "&"))), pkce)
		if !slices.Contains(c.AMR, "mfa") || c.ACR != "urn:latchkey:acr:mfa" {
			t.Fatalf("after enrolment: %+v", c)
		}

		// A tier's require_mfa does the same for a client that does not.
		s.createUser("uma", pw)
		adm := s.createClient("--admin")
		cc := &clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret, TokenURL: s.issuer + "/oauth2/token", Scopes: []string{"admin"}}
		at, err := cc.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		st, tier := s.adminCall(t, at.AccessToken, http.MethodPost, "/v1/tiers", map[string]any{"name": "secure", "require_mfa": true})
		if st != http.StatusCreated || tier["require_mfa"] != true {
			t.Fatalf("create tier: %d %v", st, tier)
		}
		_, found := s.adminCall(t, at.AccessToken, http.MethodGet, "/v1/users?q=uma", nil)
		uma := found["users"].([]any)[0].(map[string]any)["id"].(string)
		if st, out := s.adminCall(t, at.AccessToken, http.MethodPut, "/v1/users/"+uma+"/tier", map[string]any{"tier": tier["id"]}); st != http.StatusOK {
			t.Fatalf("assign tier: %d %v", st, out)
		}
		plain := newMFARP(t, s, "--first-party")
		b2 := newBrowser(t, callback)
		p, _ = plain.start(b2)
		if en := password(b2, p, "uma", pw); en.url.Path != "/login/enrol" {
			t.Fatalf("tier with require_mfa: landed at %s", en.url)
		}
	})
}
