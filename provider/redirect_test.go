package provider

import (
	"net/url"
	"testing"

	"github.com/latchkey/latchkey/storage"
)

func TestMatchRedirectURI(t *testing.T) {
	const (
		v4  = "http://127.0.0.1:4711/cb"
		v6  = "http://[::1]:4711/cb"
		web = "https://app.example/cb"
	)
	tests := []struct {
		name       string
		requested  string
		registered []string
		public     bool
		want       bool
	}{
		{"exact https", web, []string{web}, false, true},
		{"exact loopback, confidential", v4, []string{v4}, false, true},
		{"exact loopback, public", v4, []string{v4}, true, true},
		{"one of several", v4, []string{web, v4}, false, true},
		{"nothing registered", web, nil, true, false},
		{"empty", "", []string{web}, true, false},

		{"other port, confidential", "http://127.0.0.1:4712/cb", []string{v4}, false, false},
		{"other port, public", "http://127.0.0.1:4712/cb", []string{v4}, true, true},
		{"no port, public", "http://127.0.0.1/cb", []string{v4}, true, true},
		{"port added to port-less, public", "http://127.0.0.1:4712/cb", []string{"http://127.0.0.1/cb"}, true, true},
		{"highest port, public", "http://127.0.0.1:65535/cb", []string{v4}, true, true},
		{"port out of range, public", "http://127.0.0.1:65536/cb", []string{v4}, true, false},
		{"port with leading zero, public", "http://127.0.0.1:04711/cb", []string{v4}, true, false},
		{"empty port, public", "http://127.0.0.1:/cb", []string{v4}, true, false},
		{"signed port, public", "http://127.0.0.1:+4711/cb", []string{v4}, true, false},

		{"userinfo, confidential", "http://evil@127.0.0.1:4711/cb", []string{v4}, false, false},
		{"userinfo, public", "http://evil@127.0.0.1:4711/cb", []string{v4}, true, false},
		{"userinfo other port, public", "http://evil@127.0.0.1:9999/cb", []string{v4}, true, false},
		{"userinfo registered (legacy row)", "https://u@app.example/cb", []string{"https://u@app.example/cb"}, false, false},
		{"empty userinfo", "http://@127.0.0.1:4711/cb", []string{v4}, true, false},

		{"trailing ?, confidential", v4 + "?", []string{v4}, false, false},
		{"trailing ?, public", v4 + "?", []string{v4}, true, false},
		{"trailing ? other port, public", "http://127.0.0.1:5000/cb?", []string{v4}, true, false},
		{"trailing ? on https", web + "?", []string{web}, false, false},

		{"HTTP://, confidential", "HTTP://127.0.0.1:4711/cb", []string{v4}, false, false},
		{"HTTP://, public", "HTTP://127.0.0.1:4711/cb", []string{v4}, true, false},
		{"Http://, public", "Http://127.0.0.1:5000/cb", []string{v4}, true, false},
		{"HTTPS:// host case", "HTTPS://app.example/cb", []string{web}, false, false},
		{"registered upper-case is exact only", "HTTP://127.0.0.1:5000/cb", []string{"HTTP://127.0.0.1:4711/cb"}, true, false},

		{"localhost exact", "http://localhost:3000/cb", []string{"http://localhost:3000/cb"}, true, true},
		{"localhost other port, public", "http://localhost:3001/cb", []string{"http://localhost:3000/cb"}, true, false},
		{"localhost for 127.0.0.1", "http://localhost:4711/cb", []string{v4}, true, false},
		{"127.0.0.1 for localhost", "http://127.0.0.1:3000/cb", []string{"http://localhost:3000/cb"}, true, false},
		{"other 127/8 address", "http://127.0.0.2:4711/cb", []string{v4}, true, false},
		{"127.0.0.2 registered: exact only", "http://127.0.0.2:5000/cb", []string{"http://127.0.0.2:4711/cb"}, true, false},
		{"https loopback: exact only", "https://127.0.0.1:5000/cb", []string{"https://127.0.0.1:4711/cb"}, true, false},

		{"IPv6 exact, confidential", v6, []string{v6}, false, true},
		{"IPv6 other port, confidential", "http://[::1]:5000/cb", []string{v6}, false, false},
		{"IPv6 other port, public", "http://[::1]:5000/cb", []string{v6}, true, true},
		{"IPv6 no port, public", "http://[::1]/cb", []string{v6}, true, true},
		{"IPv6 long form", "http://[0:0:0:0:0:0:0:1]:5000/cb", []string{v6}, true, false},
		{"IPv6 for IPv4", "http://[::1]:4711/cb", []string{v4}, true, false},
		{"IPv4-mapped IPv6", "http://[::ffff:127.0.0.1]:4711/cb", []string{v4}, true, false},

		{"other path", "http://127.0.0.1:5000/other", []string{v4}, true, false},
		{"path with slash", "http://127.0.0.1:5000/cb/", []string{v4}, true, false},
		{"path case", "http://127.0.0.1:5000/CB", []string{v4}, true, false},
		{"no path", "http://127.0.0.1:5000", []string{v4}, true, false},
		{"encoded path", "http://127.0.0.1:5000/c%62", []string{v4}, true, false},
		{"query added", "http://127.0.0.1:5000/cb?x=1", []string{v4}, true, false},
		{"same query", "http://127.0.0.1:5000/cb?app=1", []string{v4 + "?app=1"}, true, true},
		{"query changed", "http://127.0.0.1:5000/cb?app=2", []string{v4 + "?app=1"}, true, false},
		{"query reordered", "http://127.0.0.1:5000/cb?b=2&a=1", []string{v4 + "?a=1&b=2"}, true, false},
		{"query dropped", "http://127.0.0.1:5000/cb", []string{v4 + "?app=1"}, true, false},
		{"query exact, confidential", v4 + "?app=1", []string{v4 + "?app=1"}, false, true},
		{"fragment", "http://127.0.0.1:5000/cb#x", []string{v4}, true, false},
		{"empty fragment", "http://127.0.0.1:5000/cb#", []string{v4}, true, false},
		{"host suffix", "http://127.0.0.1.evil.example:5000/cb", []string{v4}, true, false},
		{"backslash", `http://127.0.0.1:5000\@evil.example/cb`, []string{v4}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := matchRedirectURI(tc.requested, tc.registered, tc.public); got != tc.want {
				t.Fatalf("matchRedirectURI(%q, %q, public=%v) = %v, want %v", tc.requested, tc.registered, tc.public, got, tc.want)
			}
		})
	}
}

func TestRequestedRedirectURI(t *testing.T) {
	one := []string{"https://app.example/cb"}
	two := []string{"https://app.example/cb", "https://app.example/other"}
	for _, tc := range []struct {
		name, form string
		registered []string
		want       string
	}{
		{"given", "redirect_uri=https%3A%2F%2Fx.example%2F", one, "https://x.example/"},
		{"omitted, one registered", "", one, one[0]},
		{"omitted, several registered", "", two, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form, _ := url.ParseQuery(tc.form)
			c := &storage.Client{RedirectURIs: tc.registered}
			if got := requestedRedirectURI(form, c); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
