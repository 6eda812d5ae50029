package main

import (
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/internal/testdb"
)

// Malformed text (NUL bytes, invalid UTF-8) in a path, a query, a form or
// a JSON body is a 4xx in the format of the route, and never an ERROR in
// the log: PostgreSQL refuses such text in parameters, and each refusal
// used to be a 500 logged at ERROR, so anyone could flood the error log.
func TestEndToEndMalformedInputIsRefused(t *testing.T) {
	// debug, so that an ERROR (or anything else) the requests cause shows.
	s := startServer(t, testdb.Postgres(t), map[string]string{"LATCHKEY_LOG_LEVEL": "debug"})
	ctx := context.Background()

	adm := s.createClient("--admin")
	admTok, err := (&clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret,
		TokenURL: s.issuer + "/oauth2/token", Scopes: []string{"admin"}}).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	adminAuth := bearer(admTok.AccessToken)

	// A person's account API token.
	s.createUser("nina", "nina's long password")
	rp := s.createClient("--name", "Profile App", "--redirect-uri", callback, "--first-party",
		"--scope", "openid account:read account:write")
	conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback,
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"},
		Scopes:   []string{"openid", "account:read", "account:write"}}
	pkce := oauth2.GenerateVerifier()
	cb := newBrowser(t, callback).signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), "nina", "nina's long password")
	personTok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}

	// The sign-in form, with its CSRF token and flow cookie, for the
	// form posts.
	b := newBrowser(t, callback)
	csrf := field(t, reCSRF, b.get(s.issuer+"/login").body)
	loginForm := url.Values{"csrf_token": {csrf}, "login": {"ni\x00na"}, "password": {"whatever it is"}}.Encode()
	var mp strings.Builder
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("csrf_token", csrf)
	_ = mw.WriteField("login", "ni\xffna")
	_ = mw.WriteField("password", "whatever it is")
	_ = mw.Close()

	const (
		form = "application/x-www-form-urlencoded"
		js   = "application/json"

		html    = "text/html"
		oauth   = "application/json"
		problem = "application/problem+json"
	)
	basic := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(id, secret) }
	}
	cases := []struct {
		name           string
		admin          bool // the admin listener
		method, target string
		ctype, body    string
		auth           func(*http.Request)
		want           string // Content-Type of the answer
		contains       string // in the answer's body
	}{
		// pages
		{name: "login challenge NUL", method: "GET", target: "/login?challenge=%00", want: html},
		{name: "consent challenge invalid UTF-8", method: "GET", target: "/consent?challenge=%ff", want: html},
		{name: "sign-in name NUL", method: "POST", target: "/login", ctype: form, body: loginForm, want: html},
		{name: "sign-in name invalid UTF-8 (multipart)", method: "POST", target: "/login", ctype: mw.FormDataContentType(), body: mp.String(), want: html},
		{name: "static invalid UTF-8", method: "GET", target: "/static/%ff", want: html},
		{name: "verify link NUL", method: "GET", target: "/verify-email?token=%00", want: html},
		{name: "authorize client NUL", method: "GET", target: "/oauth2/authorize?response_type=code&client_id=%00", want: html},

		// protocol endpoints
		{name: "token client NUL", method: "POST", target: "/oauth2/token", ctype: form,
			body: "grant_type=client_credentials&client_id=%00&client_secret=x", want: oauth},
		{name: "token basic auth NUL", method: "POST", target: "/oauth2/token", ctype: form,
			body: "grant_type=client_credentials", auth: basic("a%00b", "x"), want: oauth},
		{name: "introspect token NUL", method: "POST", target: "/oauth2/introspect", ctype: form,
			body: "token=%00", auth: basic(adm.ID, adm.Secret), want: oauth},
		{name: "revoke client invalid UTF-8", method: "POST", target: "/oauth2/revoke", ctype: form,
			body: "token=abc&client_id=%ff", want: oauth},
		{name: "userinfo query invalid UTF-8", method: "GET", target: "/userinfo?x=%ff", want: oauth},
		{name: "account API display name NUL", method: "PATCH", target: "/account/me", ctype: js,
			body: `{"display_name":"Ni\u0000na"}`, auth: bearer(personTok.AccessToken), want: oauth, contains: `"fields":{"display_name"`},

		// admin API
		{name: "admin user id invalid UTF-8", admin: true, method: "GET", target: "/v1/users/%ff", auth: adminAuth, want: problem},
		{name: "admin rotate secret NUL", admin: true, method: "POST", target: "/v1/clients/%00/rotate-secret", auth: adminAuth, want: problem},
		{name: "admin tier rate limits invalid UTF-8", admin: true, method: "GET", target: "/v1/tiers/%ff/rate-limits", auth: adminAuth, want: problem},
		{name: "admin user id injection NUL", admin: true, method: "GET", target: "/v1/users/1'OR'1%00", auth: adminAuth, want: problem},
		{name: "admin search NUL", admin: true, method: "GET", target: "/v1/users?q=%00", auth: adminAuth, want: problem},
		{name: "admin create user display name NUL", admin: true, method: "POST", target: "/v1/users", ctype: js,
			body: `{"username":"nul","email":"nul@example.com","display_name":"a\u0000b"}`, auth: adminAuth, want: problem,
			contains: `"field":"display_name"`},
		{name: "admin create tier name NUL", admin: true, method: "POST", target: "/v1/tiers", ctype: js,
			body: `{"name":"\u0000"}`, auth: adminAuth, want: problem},
		{name: "admin import NUL", admin: true, method: "POST", target: "/v1/users:import", ctype: "application/x-ndjson",
			body: `{"username":"imp","email":"imp@example.com","display_name":"\u0000"}` + "\n", auth: adminAuth, want: "application/json",
			contains: `"field":"display_name"`},
		{name: "admin metrics invalid UTF-8", admin: true, method: "GET", target: "/metrics?x=%ff", want: problem},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := s.issuer
			if tc.admin {
				base = s.admin
			}
			req, err := http.NewRequest(tc.method, base+tc.target, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.auth != nil {
				tc.auth(req)
			}
			resp, err := b.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			ct := resp.Header.Get("Content-Type")
			if resp.StatusCode >= 500 || !strings.HasPrefix(ct, tc.want) || !strings.Contains(string(body), tc.contains) {
				t.Errorf("%s %s = %d %s %.300s; want a 4xx %s with %s", tc.method, tc.target, resp.StatusCode, ct, body, tc.want, tc.contains)
			}
		})
	}
	if out := s.out.String(); strings.Contains(out, "level=ERROR") {
		t.Errorf("malformed input was logged as an error:\n%s", out)
	}
}
