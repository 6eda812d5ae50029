package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/mail/mailtest"
	"github.com/latchkey/latchkey/internal/testdb"
)

// selfService starts a server whose emails go to a real SMTP server in the
// test process.
func selfService(t *testing.T, env map[string]string) (*testServer, *mailtest.Server) {
	t.Helper()
	smtp := mailtest.NewServer(t)
	all := map[string]string{"LATCHKEY_SMTP_URL": smtp.URL()}
	for k, v := range env {
		all[k] = v
	}
	return startServer(t, testdb.SQLite(t), all), smtp
}

// formPage GETs a page and returns its CSRF token.
func (b *browser) csrf(u string) (pageResp, string) {
	b.t.Helper()
	p := b.get(u)
	if p.status != http.StatusOK {
		b.t.Fatalf("GET %s: %d\n%s", u, p.status, p.body)
	}
	return p, field(b.t, reCSRF, p.body)
}

// submit GETs the page at path and posts form to it with the page's CSRF
// token.
func (b *browser) submit(base, path string, form url.Values) pageResp {
	b.t.Helper()
	_, tok := b.csrf(base + path)
	form.Set("csrf_token", tok)
	return b.post(base+strings.SplitN(path, "?", 2)[0], form)
}

// signInAccount signs in without an authorization request.
func (b *browser) signInAccount(s *testServer, login, password string) pageResp {
	b.t.Helper()
	return b.submit(s.issuer, "/login", url.Values{"login": {login}, "password": {password}})
}

var reMain = regexp.MustCompile(`(?s)<main.*</main>`)

// shape is the page without the parts that legitimately differ (the echoed
// address and tokens), to compare two answers for enumeration leaks.
func shape(body, echoed string) string {
	m := reMain.FindString(body)
	m = strings.ReplaceAll(m, echoed, "EMAIL")
	return regexp.MustCompile(`value="[^"]*"`).ReplaceAllString(m, `value=""`)
}

// The forgot-password and registration pages answer the same, status and
// body, whether or not an account uses the address.
func TestSelfServiceNoEnumeration(t *testing.T) {
	s, smtp := selfService(t, map[string]string{"LATCHKEY_RATE_EMAIL": "off"})
	s.createUser("alice", "correct horse battery")
	b := newBrowser(t, "http://never.invalid/")

	forgot := func(email string) pageResp {
		return b.submit(s.issuer, "/forgot-password", url.Values{"email": {email}})
	}
	known, unknown := forgot("alice@example.com"), forgot("nobody@example.com")
	if known.status != http.StatusOK || known.status != unknown.status {
		t.Fatalf("forgot-password statuses %d / %d", known.status, unknown.status)
	}
	if a, b := shape(known.body, "alice@example.com"), shape(unknown.body, "nobody@example.com"); a != b {
		t.Fatalf("forgot-password answers differ:\n%s\n---\n%s", a, b)
	}
	smtp.Wait(t, "alice@example.com", "Reset your password", 10*time.Second)

	register := func(email, username string) pageResp {
		return b.submit(s.issuer, "/register", url.Values{"email": {email}, "username": {username},
			"display_name": {"X"}, "password": {"a fine long password"}, "password_confirm": {"a fine long password"}})
	}
	taken, fresh := register("ALICE@example.com", "alice2"), register("bob@example.com", "bob")
	if taken.status != http.StatusOK || taken.status != fresh.status {
		t.Fatalf("register statuses %d / %d:\n%s", taken.status, fresh.status, taken.body)
	}
	if a, b := shape(taken.body, "ALICE@example.com"), shape(fresh.body, "bob@example.com"); a != b {
		t.Fatalf("register answers differ:\n%s\n---\n%s", a, b)
	}
	// The black-box probe: the same username again with a fresh address.
	// Before, "username taken" here meant the first address had been new
	// (its registration had created an account holding the name).
	again := func(username string) pageResp { return register("fresh-"+username+"@example.net", username) }
	takenAgain, freshAgain := again("alice2"), again("bob")
	if takenAgain.status != http.StatusOK || takenAgain.status != freshAgain.status {
		t.Fatalf("follow-up register statuses %d / %d:\n%s\n---\n%s", takenAgain.status, freshAgain.status, takenAgain.body, freshAgain.body)
	}
	if a, b := shape(takenAgain.body, "fresh-alice2@example.net"), shape(freshAgain.body, "fresh-bob@example.net"); a != b {
		t.Fatalf("follow-up register answers differ:\n%s\n---\n%s", a, b)
	}
	// A username that belongs to an account is public and is refused,
	// whatever the address.
	for _, email := range []string{"alice@example.com", "carol@example.com"} {
		if p := register(email, "alice"); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="username-error"`) {
			t.Fatalf("taken username with %s: %d", email, p.status)
		}
	}
	// The owner of the existing account is told; the new one gets a link.
	smtp.Wait(t, "alice@example.com", "already have an account", 10*time.Second)
	welcome := smtp.Wait(t, "bob@example.com", "Welcome", 10*time.Second)
	if welcome.Link(s.issuer+"/verify-email?token=") == "" {
		t.Fatalf("welcome email has no verification link:\n%s", welcome.Text)
	}
	if _, err := s.cli("", "clients", "list"); err != nil {
		t.Fatal(err)
	}
}

// Registration keeps what was typed (never passwords) and names the field
// at fault; the email link verifies the address exactly once.
func TestSelfServiceRegisterAndVerify(t *testing.T) {
	s, smtp := selfService(t, map[string]string{"LATCHKEY_REQUIRE_VERIFIED_EMAIL": "true"})
	b := newBrowser(t, "http://never.invalid/")

	p := b.submit(s.issuer, "/register", url.Values{"email": {"dana@example.com"}, "username": {"Not Valid"},
		"display_name": {"Dana"}, "password": {"password"}, "password_confirm": {"password"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="username-error"`) ||
		!strings.Contains(p.body, `value="dana@example.com"`) || strings.Contains(p.body, `value="password"`) {
		t.Fatalf("bad username: %d\n%s", p.status, p.body)
	}
	p = b.submit(s.issuer, "/register", url.Values{"email": {"dana@example.com"}, "username": {"dana"},
		"display_name": {"Dana"}, "password": {"password"}, "password_confirm": {"password"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "most common passwords") {
		t.Fatalf("common password: %d\n%s", p.status, p.body)
	}
	p = b.submit(s.issuer, "/register", url.Values{"email": {"dana@example.com"}, "username": {"dana"},
		"password": {"a fine long password"}, "password_confirm": {"another one entirely"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="password_confirm-error"`) {
		t.Fatalf("mismatched confirmation: %d\n%s", p.status, p.body)
	}
	p = b.submit(s.issuer, "/register", url.Values{"email": {"dana@example.com"}, "username": {"dana"},
		"display_name": {"Dana"}, "password": {"a fine long password"}, "password_confirm": {"a fine long password"}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "Check your email") {
		t.Fatalf("register: %d\n%s", p.status, p.body)
	}

	// The account exists only once the address is confirmed: until then
	// signing in gets the generic answer, right password or not.
	for _, pw := range []string{"a fine long password", "wrong password here"} {
		p = b.signInAccount(s, "dana", pw)
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "Invalid username or password.") {
			t.Fatalf("sign-in before confirming (%q): %d\n%s", pw, p.status, p.body)
		}
	}

	link := smtp.Wait(t, "dana@example.com", "Welcome", 10*time.Second).Link(s.issuer + "/verify-email?token=")
	// Opening the link (as a mail scanner would) does not use it up.
	for range 2 {
		p = b.get(link)
		if p.status != http.StatusOK || !strings.Contains(p.body, "Verify my email") {
			t.Fatalf("verify page: %d\n%s", p.status, p.body)
		}
	}
	token := field(t, regexp.MustCompile(`name="token" value="([^"]+)"`), p.body)
	confirm := func() pageResp {
		return b.post(s.issuer+"/verify-email", url.Values{"csrf_token": {field(t, reCSRF, p.body)}, "action": {"confirm"}, "token": {token}})
	}
	if c := confirm(); c.status != http.StatusOK || !strings.Contains(c.body, "Email verified") {
		t.Fatalf("confirm: %d\n%s", c.status, c.body)
	}
	if c := confirm(); c.status != http.StatusBadRequest || !strings.Contains(c.body, "invalid or has expired") {
		t.Fatalf("second confirm: %d", c.status)
	}
	p = b.signInAccount(s, "dana", "a fine long password")
	if p.status != http.StatusOK || p.url.Path != "/account" || !strings.Contains(p.body, "dana@example.com") {
		t.Fatalf("verified sign-in: %d %s\n%s", p.status, p.url, p.body)
	}

	// Two people chose one username: whoever confirms first gets it; the
	// other's link asks for another name and still works.
	b = newBrowser(t, "http://never.invalid/")
	for _, email := range []string{"gil@example.com", "gil.two@example.com"} {
		if p := b.submit(s.issuer, "/register", url.Values{"email": {email}, "username": {"gil"},
			"password": {"a fine long password"}, "password_confirm": {"a fine long password"}}); p.status != http.StatusOK {
			t.Fatalf("register %s: %d\n%s", email, p.status, p.body)
		}
	}
	confirmLink := func(email, username string) pageResp {
		t.Helper()
		link := smtp.Wait(t, email, "Welcome", 10*time.Second).Link(s.issuer + "/verify-email?token=")
		page := b.get(link)
		form := url.Values{"csrf_token": {field(t, reCSRF, page.body)}, "action": {"confirm"},
			"token": {field(t, regexp.MustCompile(`name="token" value="([^"]+)"`), page.body)}}
		c := b.post(s.issuer+"/verify-email", form)
		if username != "" {
			if c.status != http.StatusConflict || !strings.Contains(c.body, `id="username-error"`) ||
				!strings.Contains(c.body, "Choose another username") {
				t.Fatalf("confirm with a taken username: %d\n%s", c.status, c.body)
			}
			form.Set("csrf_token", field(t, reCSRF, c.body))
			form.Set("username", username)
			c = b.post(s.issuer+"/verify-email", form)
		}
		return c
	}
	if c := confirmLink("gil@example.com", ""); c.status != http.StatusOK || !strings.Contains(c.body, "Email verified") {
		t.Fatalf("first confirm: %d\n%s", c.status, c.body)
	}
	if c := confirmLink("gil.two@example.com", "gil2"); c.status != http.StatusOK || !strings.Contains(c.body, "gil.two@example.com") {
		t.Fatalf("confirm with another username: %d\n%s", c.status, c.body)
	}
	if p := b.signInAccount(s, "gil2", "a fine long password"); p.url.Path != "/account" {
		t.Fatalf("sign-in as gil2: %d %s", p.status, p.url)
	}

	// Resend: answered the same for anyone; a new link reaches dana only
	// while unverified (she is verified now, so nothing is sent).
	p = b.submit(s.issuer, "/verify-email", url.Values{"action": {"resend"}, "login": {"nobody"}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "a new link is on its way") {
		t.Fatalf("resend: %d\n%s", p.status, p.body)
	}
}

// A reset link sets a new password once, signs the user out everywhere
// and revokes refresh tokens; a verification link is no reset link.
func TestSelfServiceForgotAndReset(t *testing.T) {
	s, smtp := selfService(t, nil)
	s.createUser("erin", "the old password")
	other := newBrowser(t, "http://never.invalid/")
	if p := other.signInAccount(s, "erin", "the old password"); p.url.Path != "/account" {
		t.Fatalf("sign-in: %s", p.url)
	}

	b := newBrowser(t, "http://never.invalid/")
	b.submit(s.issuer, "/forgot-password", url.Values{"email": {"erin@example.com"}})
	link := smtp.Wait(t, "erin@example.com", "Reset your password", 10*time.Second).Link(s.issuer + "/reset-password?token=")
	token := mustQuery(t, link, "token")

	// The reset token is not a verification token.
	_, tok := b.csrf(s.issuer + "/verify-email?token=" + url.QueryEscape(token))
	if c := b.post(s.issuer+"/verify-email", url.Values{"csrf_token": {tok}, "action": {"confirm"}, "token": {token}}); c.status != http.StatusBadRequest {
		t.Fatalf("reset token accepted as verification: %d", c.status)
	}

	p := b.get(link)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Choose a new password") {
		t.Fatalf("reset page: %d\n%s", p.status, p.body)
	}
	reset := func(pw string) pageResp {
		return b.post(s.issuer+"/reset-password", url.Values{"csrf_token": {field(t, reCSRF, p.body)}, "token": {token},
			"password": {pw}, "password_confirm": {pw}})
	}
	if r := reset("short"); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `id="password-error"`) {
		t.Fatalf("short password: %d\n%s", r.status, r.body)
	}
	if r := reset("a brand new password"); r.status != http.StatusOK || !strings.Contains(r.body, "signed out everywhere") {
		t.Fatalf("reset: %d\n%s", r.status, r.body)
	}
	if r := reset("yet another password"); r.status != http.StatusBadRequest {
		t.Fatalf("reset link reused: %d", r.status)
	}
	smtp.Wait(t, "erin@example.com", "password was changed", 10*time.Second)

	// The other browser was signed out.
	if p := other.get(s.issuer + "/account"); p.url.Path != "/login" {
		t.Fatalf("old session survived the reset: %s", p.url)
	}
	if p := other.signInAccount(s, "erin", "the old password"); p.status != http.StatusUnauthorized {
		t.Fatalf("old password still works: %d", p.status)
	}
	if p := other.signInAccount(s, "erin", "a brand new password"); p.url.Path != "/account" {
		t.Fatalf("new password: %d %s", p.status, p.url)
	}
}

// Over a rate limit the page says how long to wait, with a 429 and
// Retry-After. A locked account answers exactly like a wrong password (so
// a lock does not reveal which names are accounts); the owner is emailed.
func TestSelfServiceRateLimitAndLockout(t *testing.T) {
	s, smtp := selfService(t, map[string]string{"LATCHKEY_RATE_LOGIN_IP": "4/1h", "LATCHKEY_RATE_LOGIN_ACCOUNT": "off",
		"LATCHKEY_LOCKOUT_THRESHOLD": "3"})
	s.createUser("fred", "fred's real password")
	b := newBrowser(t, "http://never.invalid/")
	for i := range 3 {
		if p := b.signInAccount(s, "fred", "wrong password"); p.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, p.status)
		}
	}
	// Locked: the right password is refused like a wrong one.
	req, _ := http.NewRequest(http.MethodGet, s.issuer+"/login", nil)
	pg := b.do(req)
	form := url.Values{"csrf_token": {field(t, reCSRF, pg.body)}, "login": {"fred"}, "password": {"fred's real password"}}
	resp, err := b.c.PostForm(s.issuer+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "Invalid username or password.") {
		t.Fatalf("locked account: %d\n%s", resp.StatusCode, body)
	}
	smtp.Wait(t, "fred@example.com", "Sign-in temporarily locked", 10*time.Second)

	// The fifth attempt from this IP is over the per-IP limit, whoever it
	// names.
	resp, err = b.c.PostForm(s.issuer+"/login", url.Values{"csrf_token": {field(t, reCSRF, pg.body)}, "login": {"nobody"}, "password": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the IP limit: %d", resp.StatusCode)
	}

	// An operator can clear the lockout.
	if _, err := s.cli("", "users", "unlock", "fred"); err != nil {
		t.Fatal(err)
	}
}

// The account page: CSRF on every form, profile changes with field
// errors, another session signed out, registration switched off.
func TestSelfServiceAccountPage(t *testing.T) {
	s, _ := selfService(t, map[string]string{"LATCHKEY_REGISTRATION": "false"})
	s.createUser("gina", "gina's password 1")
	b := newBrowser(t, "http://never.invalid/")
	if p := b.get(s.issuer + "/account"); p.url.Path != "/login" || p.url.Query().Get("next") != "/account" {
		t.Fatalf("signed-out /account: %s", p.url)
	}
	b.signInAccount(s, "gina", "gina's password 1")
	other := newBrowser(t, "http://never.invalid/")
	other.signInAccount(s, "gina", "gina's password 1")

	// No CSRF token, no change.
	if p := b.post(s.issuer+"/account/profile", url.Values{"display_name": {"Hacked"}}); p.status != http.StatusBadRequest {
		t.Fatalf("profile without CSRF: %d", p.status)
	}
	post := func(path string, form url.Values) pageResp {
		_, tok := b.csrf(s.issuer + "/account")
		form.Set("csrf_token", tok)
		return b.post(s.issuer+path, form)
	}
	p := post("/account/profile", url.Values{"display_name": {"Gina G."}, "username": {"gina"}, "picture_url": {"http://insecure.example/p.png"}, "locale": {"en-gb"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="picture_url-error"`) || !strings.Contains(p.body, `value="Gina G."`) {
		t.Fatalf("bad picture: %d\n%s", p.status, p.body)
	}
	p = post("/account/profile", url.Values{"display_name": {"Gina G."}, "username": {"gina"}, "picture_url": {""}, "locale": {"en-gb"}})
	if p.status != http.StatusOK || p.url.RawQuery != "saved=profile" || !strings.Contains(p.body, `value="en-GB"`) {
		t.Fatalf("profile: %d %s\n%s", p.status, p.url, p.body)
	}
	full := url.Values{"display_name": {"Gina G."}, "given_name": {"Gina"}, "family_name": {"Giordano"}, "zoneinfo": {"Europe/Rome"},
		"birthdate": {"1990-04-01"}, "phone_number": {"+39 06 1234 5678"}, "website": {"https://gina.example"},
		"address.street_address": {"Via Roma 1"}, "address.locality": {"Roma"}, "address.region": {""},
		"address.postal_code": {"00100"}, "address.country": {"IT"}}
	bad := url.Values{}
	for k, v := range full {
		bad[k] = v
	}
	bad.Set("phone_number", "06 1234 5678")
	if p := post("/account/profile", bad); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="phone_number-error"`) ||
		!strings.Contains(p.body, `value="Via Roma 1"`) {
		t.Fatalf("bad phone: %d\n%s", p.status, p.body)
	}
	if p := post("/account/profile", full); p.status != http.StatusOK || !strings.Contains(p.body, `value="&#43;390612345678"`) ||
		!strings.Contains(p.body, `value="Europe/Rome"`) || !strings.Contains(p.body, `value="Roma"`) {
		t.Fatalf("full profile: %d\n%s", p.status, p.body)
	}

	// Sign the other browser out from here.
	ids := regexp.MustCompile(`name="session_id" value="([^"]+)"`).FindAllStringSubmatch(p.body, -1)
	if len(ids) != 1 {
		t.Fatalf("want one other session listed, got %d", len(ids))
	}
	post("/account/sessions/revoke", url.Values{"session_id": {ids[0][1]}})
	if q := other.get(s.issuer + "/account"); q.url.Path != "/login" {
		t.Fatalf("revoked session still works: %s", q.url)
	}

	if p := b.get(s.issuer + "/register"); p.status != http.StatusForbidden || !strings.Contains(p.body, "Registration is closed") {
		t.Fatalf("register while disabled: %d", p.status)
	}
	if p := b.get(s.issuer + "/login?next=/account"); strings.Contains(p.body, `href="/register`) {
		t.Fatal("the sign-in page offers registration while it is disabled")
	}
}

// The account API: scopes, strict JSON, protected fields, password change
// and session listing, for a relying party holding the person's token.
func TestAccountAPI(t *testing.T) {
	s, _ := selfService(t, nil)
	s.createUser("hank", "hank's password 1")
	rp := s.createClient("--name", "Profile App", "--redirect-uri", callback, "--first-party",
		"--scope", "openid profile account:read account:write")
	conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback,
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"}}
	token := func(scopes ...string) string {
		t.Helper()
		conf.Scopes = scopes
		pkce := oauth2.GenerateVerifier()
		b := newBrowser(t, callback)
		cb := b.signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), "hank", "hank's password 1")
		tok, err := conf.Exchange(context.Background(), cb.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	rw, ro := token("openid", "account:read", "account:write"), token("openid", "account:read")

	call := func(tok, method, path, ctype, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, s.issuer+path, strings.NewReader(body))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		_ = json.NewDecoder(bytes.NewReader(b)).Decode(&out)
		return resp.StatusCode, out
	}
	const js = "application/json"

	status, me := call(ro, http.MethodGet, "/account/me", "", "")
	if status != http.StatusOK || me["username"] != "hank" || me["email"] != "hank@example.com" || me["password_hash"] != nil {
		t.Fatalf("GET /account/me: %d %v", status, me)
	}
	tests := []struct {
		name, tok, method, path, ctype, body string
		status                               int
		field                                string
	}{
		{"no token", "", "GET", "/account/me", "", "", 401, ""},
		{"bad token", "nope", "GET", "/account/me", "", "", 401, ""},
		{"read-only token cannot write", ro, "PATCH", "/account/me", js, `{"display_name":"H"}`, 403, ""},
		{"unknown field", rw, "PATCH", "/account/me", js, `{"nick_name":"H"}`, 400, ""},
		{"phone not E.164", rw, "PATCH", "/account/me", js, `{"phone_number":"0612345678"}`, 422, "phone_number"},
		{"time zone unknown", rw, "PATCH", "/account/me", js, `{"zoneinfo":"Mars/Base"}`, 422, "zoneinfo"},
		{"user_metadata not an object", rw, "PATCH", "/account/me", js, `{"user_metadata":[1,2]}`, 422, "user_metadata"},
		{"app_metadata is the admins'", rw, "PATCH", "/account/me", js, `{"app_metadata":{"plan":"gold"}}`, 422, "app_metadata"},
		{"phone verification is not self-service", rw, "PATCH", "/account/me", js, `{"phone_number_verified":true}`, 422, "phone_number_verified"},
		{"protected field", rw, "PATCH", "/account/me", js, `{"email_verified":false}`, 422, "email_verified"},
		{"protected id", rw, "PATCH", "/account/me", js, `{"id":"u_x"}`, 422, "id"},
		{"not JSON", rw, "PATCH", "/account/me", "text/plain", `display_name=H`, 400, ""},
		{"trailing data", rw, "PATCH", "/account/me", js, `{"display_name":"H"} {}`, 400, ""},
		{"NUL in a field", rw, "PATCH", "/account/me", js, `{"display_name":"H\u0000"}`, 400, "display_name"},
		{"NUL in a password", rw, "POST", "/account/me/password", js, `{"current_password":"\u0000","new_password":"a new long password"}`, 400, "current_password"},
		{"bad locale", rw, "PATCH", "/account/me", js, `{"locale":"not a locale!"}`, 422, "locale"},
		{"wrong current password", rw, "POST", "/account/me/password", js, `{"current_password":"nope","new_password":"a new long password"}`, 422, "current_password"},
		{"weak new password", rw, "POST", "/account/me/password", js, `{"current_password":"hank's password 1","new_password":"password"}`, 422, "new_password"},
		{"delete with wrong password", rw, "DELETE", "/account/me", js, `{"password":"nope"}`, 422, "password"},
		{"email change without the password", rw, "PATCH", "/account/me", js, `{"email":"attacker@evil.example"}`, 422, "current_password"},
		{"email change with a wrong password", rw, "PATCH", "/account/me", js, `{"email":"attacker@evil.example","current_password":"nope"}`, 422, "current_password"},
		{"someone else's session", rw, "DELETE", "/account/me/sessions/not-mine", "", "", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(tc.tok, tc.method, tc.path, tc.ctype, tc.body)
			if status != tc.status {
				t.Fatalf("%s %s = %d %v, want %d", tc.method, tc.path, status, out, tc.status)
			}
			if out["error"] == nil {
				t.Fatalf("no error code in %v", out)
			}
			if tc.field != "" {
				fields, _ := out["fields"].(map[string]any)
				if fields[tc.field] == nil {
					t.Fatalf("error does not name %s: %v", tc.field, out)
				}
			}
		})
	}

	status, me = call(rw, http.MethodPatch, "/account/me", js, `{"display_name":"Hank H.","locale":"fr-ca"}`)
	if status != http.StatusOK || me["display_name"] != "Hank H." || me["locale"] != "fr-CA" {
		t.Fatalf("PATCH: %d %v", status, me)
	}
	status, me = call(rw, http.MethodPatch, "/account/me", js, `{"given_name":"Hank","zoneinfo":"America/Toronto",
		"phone_number":"+1 416 555 0100","address":{"locality":"Toronto","country":"CA"},"user_metadata":{"bio":"Welder"}}`)
	if md, _ := me["user_metadata"].(map[string]any); status != http.StatusOK || me["phone_number"] != "+14165550100" ||
		me["phone_number_verified"] != false || md["bio"] != "Welder" || me["last_login_at"] == nil {
		t.Fatalf("PATCH the profile: %d %v", status, me)
	}
	status, _ = call(rw, http.MethodPatch, "/account/me", js, `{"email":"hank.new@example.com","current_password":"hank's password 1"}`)
	if status != http.StatusAccepted {
		t.Fatalf("email change with the password: %d", status)
	}
	status, out := call(ro, http.MethodGet, "/account/me/sessions", "", "")
	if sessions, _ := out["sessions"].([]any); status != http.StatusOK || len(sessions) != 2 {
		t.Fatalf("sessions: %d %v", status, out)
	}
	if status, _ := call(rw, http.MethodPost, "/account/me/password", js,
		`{"current_password":"hank's password 1","new_password":"hank's new password"}`); status != http.StatusNoContent {
		t.Fatalf("password change: %d", status)
	}
	// Changing the password revoked the tokens.
	if status, _ := call(ro, http.MethodGet, "/account/me", "", ""); status != http.StatusUnauthorized {
		t.Fatalf("token survived a password change: %d", status)
	}
}

func mustQuery(t *testing.T, link, key string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Query().Get(key) == "" {
		t.Fatalf("no %s in %q", key, link)
	}
	return u.Query().Get(key)
}

// The per-account sign-in limit counts an account once, whether its
// username or its address is typed (regression: each had a budget of
// its own, doubling the guesses allowed).
func TestSelfServiceSignInLimitPerAccount(t *testing.T) {
	s, _ := selfService(t, map[string]string{"LATCHKEY_RATE_LOGIN_ACCOUNT": "3/1h", "LATCHKEY_LOCKOUT_THRESHOLD": "0"})
	s.createUser("nia", "nia's password 1")
	b := newBrowser(t, "http://never.invalid/")
	for i, login := range []string{"nia", "NIA@example.com", "nia@example.com", "Nia"} {
		p := b.signInAccount(s, login, "a wrong guess")
		want := http.StatusUnauthorized
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		if p.status != want {
			t.Fatalf("attempt %d (%q): %d, want %d", i+1, login, p.status, want)
		}
	}
	// Names that are no account have budgets of their own.
	if p := b.signInAccount(s, "nobody", "a wrong guess"); p.status != http.StatusUnauthorized {
		t.Fatalf("unknown name: %d", p.status)
	}
}

// A password re-entered on the account page is rate limited like a
// sign-in: a stolen session cannot guess it at will.
func TestSelfServicePasswordRecheckLimited(t *testing.T) {
	s, _ := selfService(t, map[string]string{"LATCHKEY_RATE_LOGIN_ACCOUNT": "2/1h"})
	s.createUser("kim", "kim's password 1")
	b := newBrowser(t, "http://never.invalid/")
	b.signInAccount(s, "kim", "kim's password 1")
	var last pageResp
	for range 3 {
		_, tok := b.csrf(s.issuer + "/account")
		last = b.post(s.issuer+"/account/password", url.Values{"csrf_token": {tok}, "current_password": {"a guess!!"},
			"new_password": {"new long password"}, "new_password_confirm": {"new long password"}})
	}
	if last.status != http.StatusUnprocessableEntity || !strings.Contains(last.body, "Too many attempts") {
		t.Fatalf("third re-check: %d\n%s", last.status, last.body)
	}
}

// The account API's password checks share the per-account limit.
func TestAccountAPIPasswordRecheckLimited(t *testing.T) {
	s, _ := selfService(t, map[string]string{"LATCHKEY_RATE_LOGIN_ACCOUNT": "2/1h"})
	s.createUser("lee", "lee's password 1")
	rp := s.createClient("--name", "Profile App", "--redirect-uri", callback, "--first-party", "--scope", "openid account:write")
	conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback, Scopes: []string{"openid", "account:write"},
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"}}
	pkce := oauth2.GenerateVerifier()
	cb := newBrowser(t, callback).signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), "lee", "lee's password 1")
	tok, err := conf.Exchange(context.Background(), cb.Query().Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	var status int
	var retry string
	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, s.issuer+"/account/me/password",
			strings.NewReader(`{"current_password":"a guess!!","new_password":"a new long password"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		status, retry = resp.StatusCode, resp.Header.Get("Retry-After")
	}
	if status != http.StatusTooManyRequests || retry == "" {
		t.Fatalf("third password check: %d (Retry-After %q)", status, retry)
	}
}
