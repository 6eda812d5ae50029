package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// `serve --demo` (what `make run` does) prints a sign-in URL that works: a
// browser signs in as the printed demo user, consents, and lands on the
// demo app, which shows the verified ID token's claims.
func TestEndToEndDemo(t *testing.T) {
	s := startServerArgs(t, "sqlite:"+t.TempDir()+"/db.sqlite", nil, "serve", "--demo")
	out := s.out.String()
	grab := func(re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %s in serve output:\n%s", re, out)
		}
		return m[1]
	}
	user, password := grab(`demo user:\s+(\S+)`), grab(`password:\s+(\S+)`)
	authURL := grab(`(?m)^\s+(http\S+/oauth2/authorize\?\S+)$`)

	b := newBrowser(t, "http://never.invalid/") // follow every redirect
	p := b.get(authURL)
	if p.url.Path != "/login" {
		t.Fatalf("demo URL led to %s (%d)", p.url, p.status)
	}
	p = b.post(s.issuer+"/login", url.Values{
		"csrf_token": {field(t, reCSRF, p.body)}, "challenge": {field(t, reChallenge, p.body)},
		"login": {user}, "password": {password},
	})
	if p.url.Path != "/consent" || !strings.Contains(p.body, "Latchkey Demo App") {
		t.Fatalf("expected the consent page for the demo app, got %s:\n%s", p.url, p.body)
	}
	form := url.Values{"csrf_token": {field(t, reCSRF, p.body)}, "challenge": {field(t, reChallenge, p.body)}, "decision": {"allow"}}
	for _, m := range regexp.MustCompile(`name="scope" value="([^"]+)"`).FindAllStringSubmatch(p.body, -1) {
		form.Add("scope", m[1])
	}
	p = b.post(s.issuer+"/consent", form)
	if p.status != http.StatusOK || p.url.Path != demoCallbackPath {
		t.Fatalf("expected the demo app, got %d at %s:\n%s", p.status, p.url, p.body)
	}
	for _, want := range []string{"Signed in", `&#34;email&#34;: &#34;` + user + `@example.com&#34;`, "id_token_hint"} {
		if !strings.Contains(p.body, want) {
			t.Fatalf("demo page lacks %q:\n%s", want, p.body)
		}
	}
}
