package provider

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/testdb"
)

// On an https issuer the flow cookies carry the __Host- prefix, which
// browsers honour only for Secure, Path=/, host-only cookies: a sibling
// subdomain can then neither set nor shadow them.
func TestFlowCookieNames(t *testing.T) {
	for _, tc := range []struct {
		issuer     string
		name, prev string
		wantSecure bool
		wantPrefix bool
	}{
		{"https://id.example.com", "__Host-latchkey_flow", "__Host-latchkey_flow_prev", true, true},
		{"http://127.0.0.1:8080", "latchkey_flow", "latchkey_flow_prev", false, false},
	} {
		t.Run(tc.issuer, func(t *testing.T) {
			p, err := New(Config{Issuer: tc.issuer, Secret: []byte("0123456789abcdef0123456789abcdef")}, Deps{Keys: staticKeys{},
				Store: testdb.OpenStore(t, testdb.SQLite(t))})
			if err != nil {
				t.Fatal(err)
			}
			// A first form token creates the flow cookie.
			w := httptest.NewRecorder()
			p.CSRFToken(w, httptest.NewRequest(http.MethodGet, "/login", nil), "login")
			cs := w.Result().Cookies()
			if len(cs) != 1 || cs[0].Name != tc.name || cs[0].Secure != tc.wantSecure || cs[0].Path != "/" ||
				cs[0].Domain != "" || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteLaxMode {
				t.Fatalf("flow cookie %+v", cs)
			}
			old := cs[0].Value

			// Signing in renews it and keeps the old value as the previous one.
			r := httptest.NewRequest(http.MethodPost, "/login", nil)
			r.AddCookie(&http.Cookie{Name: tc.name, Value: old})
			w = httptest.NewRecorder()
			renewed := p.renewFlow(w, r)
			got := map[string]*http.Cookie{}
			for _, c := range w.Result().Cookies() {
				got[c.Name] = c
				if strings.HasPrefix(c.Name, "__Host-") && (!c.Secure || c.Path != "/" || c.Domain != "") {
					t.Errorf("%s breaks the __Host- rules: %+v", c.Name, c)
				}
			}
			if got[tc.name] == nil || got[tc.name].Value != renewed || renewed == old {
				t.Fatalf("renewed flow cookie %+v (old %q)", got[tc.name], old)
			}
			if got[tc.prev] == nil || got[tc.prev].Value != old || got[tc.prev].MaxAge <= 0 {
				t.Fatalf("previous flow cookie %+v", got[tc.prev])
			}
			if strings.HasPrefix(tc.name, "__Host-") != tc.wantPrefix {
				t.Fatalf("prefix on %s", tc.name)
			}
		})
	}
}

// TestCSRFAcrossSecretRotation: a form rendered before LATCHKEY_SECRET
// changed is still accepted by a server that keeps the old secret in
// PreviousSecrets, and refused by one that does not.
func TestCSRFAcrossSecretRotation(t *testing.T) {
	oldS, newS := []byte("the-old-secret-0123456789abcdef01"), []byte("the-new-secret-0123456789abcdef01")
	store := testdb.OpenStore(t, testdb.SQLite(t))
	mk := func(secret []byte, previous ...[]byte) *Provider {
		p, err := New(Config{Issuer: "http://127.0.0.1:8080", Secret: secret, PreviousSecrets: previous},
			Deps{Keys: staticKeys{}, Store: store})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	before := mk(oldS)
	w := httptest.NewRecorder()
	token := before.CSRFToken(w, httptest.NewRequest(http.MethodGet, "/login", nil), "login")
	flow := w.Result().Cookies()[0]
	post := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("csrf_token="+token))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(flow)
		return r
	}
	for _, tc := range []struct {
		name string
		p    *Provider
		want bool
	}{
		{"the same secret", before, true},
		{"rotated, old secret kept", mk(newS, []byte("an-unrelated-secret-0123456789abc"), oldS), true},
		{"rotated, old secret dropped", mk(newS), false},
	} {
		if got := tc.p.CheckCSRF(post(), "login"); got != tc.want {
			t.Errorf("%s: CheckCSRF = %v, want %v", tc.name, got, tc.want)
		}
	}
	// New form tokens use the current secret.
	rotated := mk(newS, oldS)
	w = httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/login", nil)
	r.AddCookie(flow)
	if rotated.CSRFToken(w, r, "login") == token {
		t.Error("a form token under the rotated secret equals the old one")
	}
}
