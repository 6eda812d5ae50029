package main

// What real client libraries found (issue 9): `state` is optional when
// PKCE is used (OAuth 2.1; openid-client v6 sends none when discovery
// advertises S256), and the authorization response names its issuer
// (RFC 9207), on success and on error, in the query and in form_post.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/testdb"
)

// authzRequest is an authorization request for c at s with PKCE S256 and
// the given extra parameters ("" deletes one).
func authzRequest(s *testServer, c createdClient, redirect, verifier string, extra map[string]string) string {
	v := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {redirect},
		"scope": {"openid profile"}}
	if verifier != "" {
		v.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
		v.Set("code_challenge_method", "S256")
	}
	for k, val := range extra {
		if val == "" {
			v.Del(k)
		} else {
			v.Set(k, val)
		}
	}
	return s.issuer + "/oauth2/authorize?" + v.Encode()
}

// redirectParams is what the client receives on its redirect URI: the
// query of a redirect (303/302), or the fields of the form_post page.
func redirectParams(t *testing.T, resp *http.Response, body, redirect string) url.Values {
	t.Helper()
	if resp.StatusCode/100 == 3 {
		loc, err := resp.Location()
		if err != nil || !strings.HasPrefix(loc.String(), redirect+"?") {
			t.Fatalf("redirect to %v (%v), want %s", loc, err, redirect)
		}
		return loc.Query()
	}
	return wantFormPostPage(t, resp, body, redirect)
}

func TestEndToEndStateOptionalWithPKCE(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := startServer(t, dsn, nil)
		s.createUser("nora", "no state password 42")
		rp := s.createClient("--name", "PKCE App", "--redirect-uri", callback, "--first-party")
		pkce := oauth2.GenerateVerifier()
		conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback,
			Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"}}

		// openid-client's passport Strategy: PKCE S256, no state, no nonce.
		b := newBrowser(t, callback)
		cb := b.signIn(authzRequest(s, rp, callback, pkce, nil), "nora", "no state password 42")
		q := cb.Query()
		if q.Get("code") == "" || q.Get("error") != "" {
			t.Fatalf("a request without state but with PKCE was refused: %s", cb)
		}
		if _, ok := q["state"]; ok {
			t.Errorf("the response carries a state the client never sent: %s", cb)
		}
		if _, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(pkce)); err != nil {
			t.Fatalf("exchange: %v", err)
		}

		// Signed in already: the code comes at once, still without state;
		// in form_post too.
		for _, mode := range []string{"query", "form_post"} {
			resp, body := b.once(http.MethodGet, authzRequest(s, rp, callback, pkce, map[string]string{"response_mode": mode}), nil)
			f := redirectParams(t, resp, body, callback)
			if _, ok := f["state"]; ok || f.Get("code") == "" {
				t.Errorf("%s, signed in: %v", mode, f)
			}
		}

		fresh := newBrowser(t, callback)
		for _, tc := range []struct {
			name      string
			verifier  string
			extra     map[string]string
			wantError string
			wantState string // "" means: no state parameter at all
		}{
			{name: "a present but short state is refused", verifier: pkce, extra: map[string]string{"state": "abc"},
				wantError: "invalid_state", wantState: "abc"},
			{name: "no state and no PKCE is refused", extra: map[string]string{},
				wantError: "invalid_state"},
			{name: "an error without state has no state", verifier: pkce, extra: map[string]string{"prompt": "none"},
				wantError: "login_required"},
			{name: "an error without state has no state (form_post)", verifier: pkce,
				extra: map[string]string{"prompt": "none", "response_mode": "form_post"}, wantError: "login_required"},
			{name: "no state and no PKCE is refused (form_post)", extra: map[string]string{"response_mode": "form_post"},
				wantError: "invalid_state"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := fresh.once(http.MethodGet, authzRequest(s, rp, callback, tc.verifier, tc.extra), nil)
				f := redirectParams(t, resp, body, callback)
				if f.Get("error") != tc.wantError {
					t.Fatalf("error %q, want %q (%v)", f.Get("error"), tc.wantError, f)
				}
				st, has := f["state"]
				switch {
				case tc.wantState == "" && has:
					t.Errorf("an empty state was echoed: %v", f)
				case tc.wantState != "" && (len(st) != 1 || st[0] != tc.wantState):
					t.Errorf("state %v, want %q", st, tc.wantState)
				}
			})
		}

		t.Run("pushed without state", func(t *testing.T) {
			status, out := pushAuthorization(t, s, rp, url.Values{"response_type": {"code"}, "client_id": {rp.ID},
				"redirect_uri": {callback}, "scope": {"openid"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(pkce)},
				"code_challenge_method": {"S256"}})
			if status != http.StatusCreated {
				t.Fatalf("PAR without state: %d %v", status, out)
			}
			uri, _ := out["request_uri"].(string)
			resp, body := b.once(http.MethodGet, s.issuer+"/oauth2/authorize?"+url.Values{"client_id": {rp.ID}, "request_uri": {uri}}.Encode(), nil)
			f := redirectParams(t, resp, body, callback)
			if _, ok := f["state"]; ok || f.Get("code") == "" {
				t.Fatalf("pushed request without state: %v", f)
			}
		})
	})
}

func TestEndToEndAuthorizationResponseIss(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), nil)
	s.createUser("isla", "issuer password 42")
	rp := s.createClient("--name", "Iss App", "--redirect-uri", callback, "--first-party")
	pkce := oauth2.GenerateVerifier()

	resp, err := http.Get(s.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var disc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&disc)
	resp.Body.Close()
	if disc["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("discovery: authorization_response_iss_parameter_supported = %v", disc["authorization_response_iss_parameter_supported"])
	}

	wantIss := func(t *testing.T, what string, f url.Values) {
		t.Helper()
		if got := f["iss"]; len(got) != 1 || got[0] != s.issuer {
			t.Errorf("%s: iss = %v, want %q (%v)", what, got, s.issuer, f)
		}
	}
	b := newBrowser(t, callback)
	cb := b.signIn(authzRequest(s, rp, callback, pkce, map[string]string{"state": "state-iss-12345678"}), "isla", "issuer password 42")
	wantIss(t, "first sign-in", cb.Query())

	for _, mode := range []string{"query", "form_post"} {
		t.Run(mode, func(t *testing.T) {
			resp, body := b.once(http.MethodGet, authzRequest(s, rp, callback, pkce,
				map[string]string{"state": "state-iss-12345678", "response_mode": mode}), nil)
			f := redirectParams(t, resp, body, callback)
			if f.Get("code") == "" || f.Get("state") != "state-iss-12345678" {
				t.Fatalf("success: %v", f)
			}
			wantIss(t, "success", f)

			signedOut := newBrowser(t, callback)
			resp, body = signedOut.once(http.MethodGet, authzRequest(s, rp, callback, pkce,
				map[string]string{"state": "state-iss-12345678", "response_mode": mode, "prompt": "none"}), nil)
			f = redirectParams(t, resp, body, callback)
			if f.Get("error") != "login_required" || f.Get("state") != "state-iss-12345678" {
				t.Fatalf("error: %v", f)
			}
			wantIss(t, "error", f)

			// An error fosite raises while it validates the request.
			resp, body = signedOut.once(http.MethodGet, authzRequest(s, rp, callback, pkce,
				map[string]string{"state": "state-iss-12345678", "response_mode": mode, "scope": "openid nope"}), nil)
			f = redirectParams(t, resp, body, callback)
			if f.Get("error") != "invalid_scope" {
				t.Fatalf("invalid scope: %v", f)
			}
			wantIss(t, "invalid_scope", f)
		})
	}
}
