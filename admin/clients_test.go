package admin_test

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/provider/accounts"
)

type clientJSON struct {
	ClientID               string   `json:"client_id"`
	Name                   string   `json:"name"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	GrantTypes             []string `json:"grant_types"`
	Scopes                 []string `json:"scopes"`
	Public                 bool     `json:"public"`
	FirstParty             bool     `json:"first_party"`
	AccessTokenFormat      string   `json:"access_token_format"`
	AccessTokenTTL         *string  `json:"access_token_ttl"`
	RefreshTokenTTL        *string  `json:"refresh_token_ttl"`
	ClientSecret           string   `json:"client_secret"`
}

// secretMatches reports whether secret is the client's current secret, as
// the token endpoint checks it.
func (e *env) secretMatches(t *testing.T, clientID, secret string) bool {
	t.Helper()
	c, err := e.acc.GetClient(e.ctx, clientID)
	must(t, err)
	return accounts.SecretHasher{}.Compare(e.ctx, c.SecretHash, []byte(secret)) == nil
}

// noSecretMaterial fails when the body shows the client's secret hash.
func (e *env) noSecretMaterial(t *testing.T, clientID string, body []byte) {
	t.Helper()
	c, err := e.acc.GetClient(e.ctx, clientID)
	must(t, err)
	s := string(body)
	for _, f := range []string{"secret_hash", "SecretHash", base64.StdEncoding.EncodeToString(c.SecretHash), hex.EncodeToString(c.SecretHash)} {
		if len(c.SecretHash) > 0 && strings.Contains(s, f) {
			t.Fatalf("body shows %q: %s", f, s)
		}
	}
}

func TestClients(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		r := want(t, e.send(t, req{method: "POST", path: "/v1/clients", token: "tok-clients", body: `{
			"name": "Billing", "redirect_uris": ["https://billing.example/cb"], "post_logout_redirect_uris": ["https://billing.example/"],
			"grant_types": ["authorization_code", "refresh_token", "client_credentials"], "scopes": ["openid", "email"],
			"first_party": true, "access_token_format": "jwt"}`}), 201)
		var c clientJSON
		r.json(t, &c)
		if c.ClientID == "" || c.ClientSecret == "" || c.Name != "Billing" || !c.FirstParty || c.AccessTokenFormat != "jwt" ||
			len(c.GrantTypes) != 3 || c.AccessTokenTTL != nil || r.header.Get("Location") != "/v1/clients/"+c.ClientID {
			t.Fatalf("%s", r.body)
		}
		if !e.secretMatches(t, c.ClientID, c.ClientSecret) {
			t.Fatal("the secret shown does not match the stored hash")
		}
		e.noSecretMaterial(t, c.ClientID, r.body)
		e.wantEvent(t, c.ClientID, accounts.AuditClientCreate, "c_clients")

		// The secret is never shown again.
		r = want(t, e.send(t, req{method: "GET", path: "/v1/clients/" + c.ClientID, token: "tok-clients"}), 200)
		if strings.Contains(string(r.body), "client_secret") {
			t.Fatalf("%s", r.body)
		}
		e.noSecretMaterial(t, c.ClientID, r.body)
		var list struct{ Clients []clientJSON }
		r = want(t, e.send(t, req{method: "GET", path: "/v1/clients", token: "tok-clients"}), 200)
		r.json(t, &list)
		if len(list.Clients) != 1 || list.Clients[0].ClientID != c.ClientID || strings.Contains(string(r.body), "client_secret") {
			t.Fatalf("%s", r.body)
		}

		// A public client has no secret.
		var pub clientJSON
		want(t, e.send(t, req{method: "POST", path: "/v1/clients", token: "tok-clients",
			body: `{"name":"SPA","public":true,"redirect_uris":["http://localhost:3000/cb"]}`}), 201).json(t, &pub)
		if !pub.Public || pub.ClientSecret != "" || len(pub.Scopes) == 0 {
			t.Fatalf("%+v", pub)
		}
		wantField(t, e.send(t, req{method: "POST", path: "/v1/clients/" + pub.ClientID + "/rotate-secret", token: "tok-clients"}), 422, "public")

		// PATCH, with lifetimes as duration strings.
		var got clientJSON
		r = want(t, e.send(t, req{method: "PATCH", path: "/v1/clients/" + c.ClientID, token: "tok-clients",
			body: `{"name":"Billing v2","access_token_ttl":"15m","refresh_token_ttl":"720h","scopes":["openid","profile"]}`}), 200)
		r.json(t, &got)
		if got.Name != "Billing v2" || got.AccessTokenTTL == nil || *got.AccessTokenTTL != "15m0s" || *got.RefreshTokenTTL != "720h0m0s" ||
			strings.Join(got.Scopes, " ") != "openid profile" || strings.Join(got.GrantTypes, " ") != strings.Join(c.GrantTypes, " ") {
			t.Fatalf("%s", r.body)
		}
		stored, err := e.acc.GetClient(e.ctx, c.ClientID)
		must(t, err)
		if stored.AccessTokenTTL.String() != "15m0s" || stored.Name != "Billing v2" {
			t.Fatalf("%+v", stored)
		}
		if !e.secretMatches(t, c.ClientID, c.ClientSecret) {
			t.Fatal("PATCH changed the secret")
		}
		e.wantEvent(t, c.ClientID, accounts.AuditClientUpdate, "c_clients")
		want(t, e.send(t, req{method: "PATCH", path: "/v1/clients/" + c.ClientID, token: "tok-clients", body: `{"access_token_ttl":null}`}), 200).json(t, &got)
		if got.AccessTokenTTL != nil {
			t.Fatalf("%+v", got)
		}

		for _, tt := range []struct {
			name, method, path, body string
			status                   int
			field                    string
		}{
			{"no name", "POST", "/v1/clients", `{"redirect_uris":["https://a.example/cb"]}`, 422, "name"},
			{"unknown grant", "POST", "/v1/clients", `{"name":"x","grant_types":["password"],"redirect_uris":["https://a.example/cb"]}`, 422, "grant_types"},
			{"no redirect", "POST", "/v1/clients", `{"name":"x"}`, 422, "redirect_uris"},
			{"http redirect", "POST", "/v1/clients", `{"name":"x","redirect_uris":["http://a.example/cb"]}`, 422, "redirect_uris"},
			{"userinfo redirect", "POST", "/v1/clients", `{"name":"x","redirect_uris":["https://a.example@evil.example/cb"]}`, 422, "redirect_uris"},
			{"loopback userinfo redirect", "POST", "/v1/clients", `{"name":"x","public":true,"redirect_uris":["http://evil@127.0.0.1:4711/cb"]}`, 422, "redirect_uris"},
			{"bad logout redirect", "POST", "/v1/clients", `{"name":"x","redirect_uris":["https://a.example/cb"],"post_logout_redirect_uris":["/rel"]}`, 422, "post_logout_redirect_uris"},
			{"bad scope", "POST", "/v1/clients", `{"name":"x","redirect_uris":["https://a.example/cb"],"scopes":["a b"]}`, 422, "scopes"},
			{"bad format", "POST", "/v1/clients", `{"name":"x","redirect_uris":["https://a.example/cb"],"access_token_format":"paseto"}`, 422, "access_token_format"},
			{"public client_credentials", "POST", "/v1/clients", `{"name":"x","public":true,"grant_types":["client_credentials"]}`, 422, "grant_types"},
			{"secret given", "POST", "/v1/clients", `{"name":"x","client_secret":"mine"}`, 400, "client_secret"},
			{"patch public", "PATCH", "/v1/clients/" + c.ClientID, `{"public":true}`, 422, "public"},
			{"patch secret", "PATCH", "/v1/clients/" + c.ClientID, `{"client_secret":"x"}`, 422, "client_secret"},
			{"patch id", "PATCH", "/v1/clients/" + c.ClientID, `{"client_id":"x"}`, 422, "client_id"},
			{"patch unknown", "PATCH", "/v1/clients/" + c.ClientID, `{"logo":"x"}`, 400, "logo"},
			{"patch ttl", "PATCH", "/v1/clients/" + c.ClientID, `{"access_token_ttl":"an hour"}`, 422, "access_token_ttl"},
			{"patch ttl number", "PATCH", "/v1/clients/" + c.ClientID, `{"id_token_ttl":3600}`, 400, "id_token_ttl"},
			{"patch negative ttl", "PATCH", "/v1/clients/" + c.ClientID, `{"auth_code_ttl":"-1m"}`, 422, "auth_code_ttl"},
			{"patch relative redirect", "PATCH", "/v1/clients/" + c.ClientID, `{"redirect_uris":["/cb"]}`, 422, "redirect_uris"},
			{"patch userinfo redirect", "PATCH", "/v1/clients/" + c.ClientID, `{"redirect_uris":["https://user:pw@billing.example/cb"]}`, 422, "redirect_uris"},
			{"patch userinfo logout redirect", "PATCH", "/v1/clients/" + c.ClientID, `{"post_logout_redirect_uris":["https://user@billing.example/"]}`, 422, "post_logout_redirect_uris"},
			{"patch no redirect", "PATCH", "/v1/clients/" + c.ClientID, `{"redirect_uris":null}`, 422, "redirect_uris"},
			{"patch unknown client", "PATCH", "/v1/clients/c_nope", `{"name":"x"}`, 404, ""},
			{"get unknown client", "GET", "/v1/clients/c_nope", ``, 404, ""},
			{"rotate unknown client", "POST", "/v1/clients/c_nope/rotate-secret", ``, 404, ""},
			{"delete unknown client", "DELETE", "/v1/clients/c_nope", ``, 404, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var body any
				if tt.body != "" {
					body = tt.body
				}
				r := e.send(t, req{method: tt.method, path: tt.path, token: "tok-clients", body: body})
				wantField(t, r, tt.status, tt.field)
			})
		}

		// Rotating the secret: the old one stops matching at once.
		var rot struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		r = want(t, e.send(t, req{method: "POST", path: "/v1/clients/" + c.ClientID + "/rotate-secret", token: "tok-clients"}), 200)
		r.json(t, &rot)
		if rot.ClientID != c.ClientID || rot.ClientSecret == "" || rot.ClientSecret == c.ClientSecret {
			t.Fatalf("%s", r.body)
		}
		if e.secretMatches(t, c.ClientID, c.ClientSecret) || !e.secretMatches(t, c.ClientID, rot.ClientSecret) {
			t.Fatal("after rotation the old secret still matches, or the new one does not")
		}
		e.wantEvent(t, c.ClientID, accounts.AuditClientSecret, "c_clients")

		want(t, e.send(t, req{method: "DELETE", path: "/v1/clients/" + c.ClientID, token: "tok-clients"}), 204)
		problemOf(t, e.send(t, req{method: "GET", path: "/v1/clients/" + c.ClientID, token: "tok-clients"}), 404)
		e.wantEvent(t, c.ClientID, accounts.AuditClientDelete, "c_clients")
	})
}
