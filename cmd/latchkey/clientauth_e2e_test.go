package main

// RFC 6749 §2.3: a client uses one authentication method per request.
// HTTP Basic together with client_secret (same secret or not) or a
// client_assertion in the body is invalid_request at every endpoint that
// authenticates clients (issue 9.8).

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/testdb"
)

func TestEndToEndOneClientAuthMethod(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), nil)
	web := s.createClient("--name", "Two Ways", "--redirect-uri", callback,
		"--grant-type", "authorization_code", "--grant-type", "refresh_token", "--grant-type", "client_credentials",
		"--scope", "openid api")
	other := s.createClient("--name", "Other", "--grant-type", "client_credentials", "--scope", "api")

	const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	assertion := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	token := func(t *testing.T) string {
		t.Helper()
		status, raw := postToken(t, s, web, url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}})
		var tr tokenResponseNumbers
		if err := json.Unmarshal(raw, &tr); status != http.StatusOK || err != nil {
			t.Fatalf("token: %d %s", status, raw)
		}
		return tr.AccessToken
	}
	endpoints := map[string]func(t *testing.T) url.Values{
		"/oauth2/token": func(*testing.T) url.Values {
			return url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}
		},
		"/oauth2/introspect": func(t *testing.T) url.Values { return url.Values{"token": {token(t)}} },
		"/oauth2/revoke":     func(t *testing.T) url.Values { return url.Values{"token": {token(t)}} },
		"/oauth2/par": func(*testing.T) url.Values {
			return url.Values{"response_type": {"code"}, "client_id": {web.ID}, "redirect_uri": {callback},
				"scope": {"openid"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
				"code_challenge_method": {"S256"}}
		},
	}
	cases := []struct {
		name  string
		basic *createdClient
		body  url.Values
		ok    bool
	}{
		{name: "basic alone", basic: &web, ok: true},
		{name: "basic and the same client_secret", basic: &web, body: url.Values{"client_id": {web.ID}, "client_secret": {web.Secret}}},
		{name: "basic and another client_secret", basic: &web, body: url.Values{"client_secret": {"something else"}}},
		{name: "basic and another client's credentials", basic: &web, body: url.Values{"client_id": {other.ID}, "client_secret": {other.Secret}}},
		{name: "basic and client_assertion", basic: &web, body: url.Values{"client_assertion_type": {assertionType}, "client_assertion": {assertion}}},
		{name: "client_secret and client_assertion", body: url.Values{"client_id": {web.ID}, "client_secret": {web.Secret},
			"client_assertion_type": {assertionType}, "client_assertion": {assertion}}},
	}
	for path, form := range endpoints {
		for _, tc := range cases {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				f := form(t)
				for k, v := range tc.body {
					f[k] = v
				}
				req, _ := http.NewRequest(http.MethodPost, s.issuer+path, strings.NewReader(f.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if tc.basic != nil {
					req.SetBasicAuth(tc.basic.ID, tc.basic.Secret)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				if tc.ok {
					if resp.StatusCode/100 != 2 {
						t.Fatalf("one method refused: %d %s", resp.StatusCode, raw)
					}
					return
				}
				var e struct {
					Error string `json:"error"`
				}
				_ = json.Unmarshal(raw, &e)
				if resp.StatusCode != http.StatusBadRequest || e.Error != "invalid_request" {
					t.Fatalf("two methods: %d %s, want 400 invalid_request", resp.StatusCode, raw)
				}
			})
		}
	}

	// client_secret_post alone still works where fosite supports it.
	for _, path := range []string{"/oauth2/token", "/oauth2/revoke", "/oauth2/par"} {
		f := endpoints[path](t)
		f.Set("client_id", web.ID)
		f.Set("client_secret", web.Secret)
		resp, err := http.PostForm(s.issuer+path, f)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Errorf("%s with client_secret_post: %d %s", path, resp.StatusCode, raw)
		}
	}
}
