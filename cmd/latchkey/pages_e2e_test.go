package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/testdb"
)

// The pages speak to people: an unknown client gets a sentence with the
// OAuth error folded away; the account page names sessions by browser
// and system, shows no empty section, and says how a deleted account
// comes back.
func TestEndToEndPagesForPeople(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), map[string]string{"LATCHKEY_SUPPORT_EMAIL": "help@example.com"})
	b := newBrowser(t, callback)

	p := b.get(s.issuer + "/oauth2/authorize?client_id=nope&response_type=code&scope=openid&redirect_uri=" + url.QueryEscape(callback))
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "This application is not recognised") {
		t.Fatalf("unknown client: %d\n%s", p.status, p.body)
	}
	main, details, ok := strings.Cut(p.body, "<details>")
	if !ok || !strings.Contains(details, "Technical details") || !strings.Contains(details, "invalid_client") {
		t.Fatalf("no technical details disclosure:\n%s", p.body)
	}
	if strings.Contains(main, "invalid_client") || strings.Contains(main, "Client authentication failed") {
		t.Fatalf("fosite's developer text is in the sentence for people:\n%s", main)
	}

	const pw = "pia's long password"
	s.createUser("pia", pw)
	lp := b.get(s.issuer + "/login")
	req, _ := http.NewRequest(http.MethodPost, s.issuer+"/login", strings.NewReader(url.Values{
		"csrf_token": {field(t, reCSRF, lp.body)}, "login": {"pia"}, "password": {pw}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	acct := b.do(req)
	if acct.url.Path != "/account" {
		t.Fatalf("sign-in landed at %s", acct.url)
	}
	for _, want := range []string{"Chrome on Linux · 127.0.0.1", "This device", `title="Mozilla/5.0 (X11; Linux x86_64)`,
		"within 30 days", "help@example.com", "Two-step verification is off"} {
		if !strings.Contains(acct.body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	for _, empty := range []string{"Connected apps", "Linked sign-in", "<ul class=\"list\">\n</ul>"} {
		if strings.Contains(acct.body, empty) {
			t.Errorf("account page shows an empty section (%q)", empty)
		}
	}
	if regexp.MustCompile(`<section[^>]*>\s*<h2[^>]*>[^<]*</h2>\s*</section>`).MatchString(acct.body) {
		t.Error("account page has a section with only a heading")
	}
}
