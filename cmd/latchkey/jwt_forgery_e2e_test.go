package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// forgeries returns JWTs that keep tok's signature segment but replace
// its header, its payload, or both: what a resource server holding a real
// token could try to pass off.
func forgeries(t *testing.T, tok string) map[string]string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %s", tok)
	}
	var hdr, claims map[string]any
	decode := func(seg string, v any) {
		b, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	decode(parts[0], &hdr)
	decode(parts[1], &claims)
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for kk, vv := range m {
			out[kk] = vv
		}
		out[k] = v
		return out
	}
	forged := with(with(claims, "scope", "admin"), "sub", "u_someone_else")
	sig := parts[2]
	return map[string]string{
		"payload replaced":        parts[0] + "." + enc(forged) + "." + sig,
		"alg none":                enc(with(hdr, "alg", "none")) + "." + enc(forged) + "." + sig,
		"alg none, same payload":  enc(with(hdr, "alg", "none")) + "." + parts[1] + "." + sig,
		"HS256 with the key id":   enc(with(hdr, "alg", "HS256")) + "." + enc(forged) + "." + sig,
		"unknown key id":          enc(with(hdr, "kid", "nope")) + "." + parts[1] + "." + sig,
		"header field added":      enc(with(hdr, "x", "y")) + "." + parts[1] + "." + sig,
		"empty payload":           parts[0] + ".." + sig,
		"signature of other data": parts[0] + "." + enc(with(claims, "exp", 4102444800)) + "." + sig,
	}
}

// A JWT access token whose header or payload was replaced, keeping the
// signature segment the token is stored under, is not ours: introspection
// says inactive, userinfo, the account API and the admin API refuse it,
// and revoking it leaves the real token alone (regression: it introspected
// active, since only the stored row was checked).
func TestEndToEndForgedJWTAccessTokens(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := startServer(t, dsn, nil)
		ctx := context.Background()

		svc := s.createClient("--name", "svc-jwt", "--grant-type", "client_credentials", "--scope", "api:read",
			"--access-token-format", "jwt")
		cc := &clientcredentials.Config{ClientID: svc.ID, ClientSecret: svc.Secret, TokenURL: s.issuer + "/oauth2/token",
			Scopes: []string{"api:read"}}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !active(t, s, svc, tok.AccessToken) {
			t.Fatal("the real token is not active")
		}

		// A person's JWT access token, for userinfo and the account API.
		s.createUser("fay", "fay's long password")
		rp := s.createClient("--name", "JWT App", "--redirect-uri", callback, "--first-party",
			"--scope", "openid profile account:read", "--access-token-format", "jwt")
		conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback,
			Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"},
			Scopes:   []string{"openid", "profile", "account:read"}}
		pkce := oauth2.GenerateVerifier()
		cb := newBrowser(t, callback).signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), "fay", "fay's long password")
		user, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatal(err)
		}

		// An admin client with JWT access tokens.
		adm := s.createClient("--admin", "--access-token-format", "jwt")
		admTok, err := (&clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret,
			TokenURL: s.issuer + "/oauth2/token", Scopes: []string{"admin:users.read"}}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(admTok.AccessToken, ".") != 2 {
			t.Fatalf("admin client did not get a JWT: %s", admTok.AccessToken)
		}

		bearer := func(method, u, tok string) int {
			t.Helper()
			req, _ := http.NewRequest(method, u, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		// The real tokens work where the forgeries must not.
		if st := bearer(http.MethodGet, s.issuer+"/userinfo", user.AccessToken); st != http.StatusOK {
			t.Fatalf("userinfo with the real token: %d", st)
		}
		if st := bearer(http.MethodGet, s.issuer+"/account/me", user.AccessToken); st != http.StatusOK {
			t.Fatalf("account API with the real token: %d", st)
		}
		if st := bearer(http.MethodGet, s.admin+"/v1/users", admTok.AccessToken); st != http.StatusOK {
			t.Fatalf("admin API with the real token: %d", st)
		}

		for name, forged := range forgeries(t, tok.AccessToken) {
			if in := introspect(t, s, svc, forged); in["active"] != false {
				t.Errorf("%s: introspection %v", name, in)
			}
			// RFC 7009: an unknown token is answered 200, and nothing is revoked.
			resp, err := http.PostForm(s.issuer+"/oauth2/revoke", url.Values{"token": {forged},
				"client_id": {svc.ID}, "client_secret": {svc.Secret}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: revoke %d", name, resp.StatusCode)
			}
			if !active(t, s, svc, tok.AccessToken) {
				t.Fatalf("%s: revoking a forgery revoked the real token", name)
			}
		}
		for name, forged := range forgeries(t, user.AccessToken) {
			if st := bearer(http.MethodGet, s.issuer+"/userinfo", forged); st != http.StatusUnauthorized {
				t.Errorf("%s: userinfo %d", name, st)
			}
			if st := bearer(http.MethodGet, s.issuer+"/account/me", forged); st != http.StatusUnauthorized {
				t.Errorf("%s: account API %d", name, st)
			}
		}
		for name, forged := range forgeries(t, admTok.AccessToken) {
			if st := bearer(http.MethodGet, s.admin+"/v1/users", forged); st != http.StatusUnauthorized {
				t.Errorf("%s: admin API %d", name, st)
			}
		}
	})
}
