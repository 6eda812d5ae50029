package provider

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ory/fosite"
)

// The page fosite renders carries exactly the script the CSP hash allows,
// and escapes what the parameters hold.
func TestFormPostTemplate(t *testing.T) {
	var buf bytes.Buffer
	fosite.WriteAuthorizeFormPostResponse("https://app.example/cb?x=1&y=2",
		url.Values{"code": {"abc.def"}, "state": {`"><script>alert(1)</script>`}}, formPostTemplate, &buf)
	page := buf.String()
	if strings.Count(page, "<script>") != 1 || !strings.Contains(page, "<script>"+formPostScript+"</script>") {
		t.Fatalf("the page's script is not formPostScript:\n%s", page)
	}
	sum := sha256.Sum256([]byte(formPostScript))
	if want := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; formPostScriptSource != want {
		t.Fatalf("hash source %s, want %s", formPostScriptSource, want)
	}
	for _, want := range []string{
		`<form method="post" action="https://app.example/cb?x=1&amp;y=2">`,
		`<input type="hidden" name="code" value="abc.def">`,
		`<input type="hidden" name="state" value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">`,
		`<noscript>`, `<button type="submit">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s:\n%s", want, page)
		}
	}
	if strings.Contains(page, "onload") {
		t.Errorf("inline handler in:\n%s", page)
	}
}

func TestFormActionSource(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"https://app.example/cb?x=1", "https://app.example"},
		{"https://app.example:8443/cb", "https://app.example:8443"},
		{"http://127.0.0.1:4711/cb", "http://127.0.0.1:4711"},
		{"http://localhost/cb", "http://localhost"},
		{"http://[::1]:4711/cb", "http:"}, // CSP cannot name an IPv6 literal
		{"com.example.app:/oauth", "com.example.app:"},
		{"https://app.example;script-src/cb", "https:"},
	} {
		u, err := url.Parse(tc.uri)
		if err != nil {
			t.Fatalf("%s: %v", tc.uri, err)
		}
		if got := formActionSource(u); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.uri, got, tc.want)
		}
	}
	if got := formActionSource(nil); got != "'none'" {
		t.Errorf("nil: %s", got)
	}
}

func TestSetFormPostHeaders(t *testing.T) {
	h := http.Header{}
	u, _ := url.Parse("https://app.example/cb")
	setFormPostHeaders(h, u)
	want := "default-src 'none'; script-src " + formPostScriptSource +
		"; form-action https://app.example; frame-ancestors 'none'; base-uri 'none'"
	if got := h.Get("Content-Security-Policy"); got != want {
		t.Errorf("CSP %q, want %q", got, want)
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
}
