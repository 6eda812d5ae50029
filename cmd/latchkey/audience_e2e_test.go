package main

// Access tokens for a resource server (RFC 8707 resource indicators,
// RFC 9068 §4 "aud"): issue 9.4.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	ordersAPI  = "https://api.example/orders"
	billingAPI = "https://api.example/billing"
	foreignAPI = "https://evil.example/api"
)

// resourceServer is an API that accepts Latchkey's JWT access tokens: it
// verifies them against the JWKS with go-oidc (signature, issuer,
// expiry) and requires its own identifier in "aud".
type resourceServer struct {
	keys   oidc.KeySet
	issuer string
}

func (rs resourceServer) accepts(ctx context.Context, api, token string) error {
	v := oidc.NewVerifier(rs.issuer, rs.keys, &oidc.Config{ClientID: api})
	_, err := v.Verify(ctx, token)
	return err
}

// audOf is the "aud" claim of a JWT access token, as a list.
func audOf(t *testing.T, token string) []string {
	t.Helper()
	p, _ := jwtPayload(t, token)
	var c struct {
		Aud oidcAudience `json:"aud"`
	}
	if err := json.Unmarshal(p, &c); err != nil {
		t.Fatalf("payload %s: %v", p, err)
	}
	return c.Aud
}

// oidcAudience reads "aud" as a string or a list.
type oidcAudience []string

func (a *oidcAudience) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// tokenOK posts a token request and decodes a successful answer.
func tokenOK(t *testing.T, s *testServer, c createdClient, form url.Values) tokenResponseNumbers {
	t.Helper()
	status, raw := postToken(t, s, c, form)
	var tr tokenResponseNumbers
	if err := json.Unmarshal(raw, &tr); status != http.StatusOK || err != nil || tr.AccessToken == "" {
		t.Fatalf("token %v: %d %s", form, status, raw)
	}
	return tr
}

// tokenRefused posts a token request and returns the error code of a 400.
func tokenRefused(t *testing.T, s *testServer, c createdClient, form url.Values) string {
	t.Helper()
	status, raw := postToken(t, s, c, form)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &e)
	if status != http.StatusBadRequest {
		t.Fatalf("token %v: %d %s, want 400", form, status, raw)
	}
	return e.Error
}

func TestEndToEndResourceIndicators(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := startServer(t, dsn, nil)
		ctx := context.Background()
		s.createUser("rhea", "resource password 42")
		rp := s.createClient("--name", "Shop", "--redirect-uri", callback, "--first-party", "--access-token-format", "jwt",
			"--scope", "openid offline_access", "--audience", ordersAPI, "--audience", billingAPI)
		svc := s.createClient("--name", "Batch", "--grant-type", "client_credentials", "--scope", "api",
			"--access-token-format", "jwt", "--audience", ordersAPI)
		api := resourceServer{keys: oidc.NewRemoteKeySet(ctx, s.issuer+"/.well-known/jwks.json"), issuer: s.issuer}
		pkce := oauth2.GenerateVerifier()
		b := newBrowser(t, callback)
		signIn := func(extra map[string]string) string {
			t.Helper()
			extra["scope"], extra["state"] = "openid offline_access", "state-resource-1"
			u := authzRequest(s, rp, callback, pkce, extra)
			cb := b.signIn(u, "rhea", "resource password 42")
			if cb.Query().Get("code") == "" {
				t.Fatalf("authorization with %v: %s", extra, cb)
			}
			return cb.Query().Get("code")
		}
		code := func(c string, resource ...string) url.Values {
			return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {callback},
				"code_verifier": {pkce}, "resource": resource}
		}
		refresh := func(rt string, resource ...string) url.Values {
			return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": resource}
		}

		one := tokenOK(t, s, rp, code(signIn(map[string]string{"resource": ordersAPI})))
		if got := audOf(t, one.AccessToken); !slices.Equal(got, []string{ordersAPI}) {
			t.Fatalf("aud %v, want the orders API", got)
		}

		// Authorized for both APIs; the token is for both.
		authBoth := func() string {
			q, _ := url.Parse(authzRequest(s, rp, callback, pkce, map[string]string{"scope": "openid offline_access", "state": "state-resource-2"}))
			v := q.Query()
			v["resource"] = []string{ordersAPI, billingAPI}
			q.RawQuery = v.Encode()
			cb := b.signIn(q.String(), "", "")
			if cb.Query().Get("code") == "" {
				t.Fatalf("authorization for two resources: %s", cb)
			}
			return cb.Query().Get("code")
		}
		tr := tokenOK(t, s, rp, code(authBoth()))
		if got := audOf(t, tr.AccessToken); !slices.Equal(got, []string{ordersAPI, billingAPI}) {
			t.Fatalf("aud %v, want both APIs", got)
		}
		for _, a := range []string{ordersAPI, billingAPI} {
			if err := api.accepts(ctx, a, tr.AccessToken); err != nil {
				t.Errorf("%s refuses the token: %v", a, err)
			}
		}
		if err := api.accepts(ctx, "https://api.example/other", tr.AccessToken); err == nil {
			t.Error("an API the token is not for accepts it")
		}
		var in struct {
			Active bool     `json:"active"`
			Aud    []string `json:"aud"`
		}
		_ = json.Unmarshal(rawIntrospect(t, s, rp, tr.AccessToken), &in)
		if !in.Active || !slices.Equal(in.Aud, []string{ordersAPI, billingAPI}) {
			t.Errorf("introspection %+v", in)
		}

		t.Run("refresh narrows and keeps the grant", func(t *testing.T) {
			narrowed := tokenOK(t, s, rp, refresh(tr.RefreshToken, billingAPI))
			if got := audOf(t, narrowed.AccessToken); !slices.Equal(got, []string{billingAPI}) {
				t.Fatalf("narrowed aud %v", got)
			}
			if err := api.accepts(ctx, ordersAPI, narrowed.AccessToken); err == nil {
				t.Error("the orders API accepts a token narrowed to billing")
			}
			// The grant still covers both: the next refresh may ask for the other.
			other := tokenOK(t, s, rp, refresh(narrowed.RefreshToken, ordersAPI))
			if got := audOf(t, other.AccessToken); !slices.Equal(got, []string{ordersAPI}) {
				t.Fatalf("second narrowing aud %v", got)
			}
			all := tokenOK(t, s, rp, refresh(other.RefreshToken))
			if got := audOf(t, all.AccessToken); !slices.Equal(got, []string{ordersAPI, billingAPI}) {
				t.Fatalf("refresh without resource: aud %v", got)
			}
			for _, r := range []string{foreignAPI, "https://api.example/other", "orders"} {
				if e := tokenRefused(t, s, rp, refresh(all.RefreshToken, r)); e != "invalid_target" {
					t.Errorf("refresh for %q: %s, want invalid_target", r, e)
				}
			}
		})

		t.Run("the code exchange narrows", func(t *testing.T) {
			tr := tokenOK(t, s, rp, code(authBoth(), ordersAPI))
			if got := audOf(t, tr.AccessToken); !slices.Equal(got, []string{ordersAPI}) {
				t.Fatalf("aud %v", got)
			}
			if e := tokenRefused(t, s, rp, code(authBoth(), foreignAPI)); e != "invalid_target" {
				t.Errorf("code exchange for a foreign resource: %s", e)
			}
		})

		t.Run("pushed with a resource", func(t *testing.T) {
			status, out := pushAuthorization(t, s, rp, url.Values{"response_type": {"code"}, "client_id": {rp.ID},
				"redirect_uri": {callback}, "scope": {"openid offline_access"}, "resource": {billingAPI},
				"code_challenge": {oauth2.S256ChallengeFromVerifier(pkce)}, "code_challenge_method": {"S256"}})
			uri, _ := out["request_uri"].(string)
			if status != http.StatusCreated || uri == "" {
				t.Fatalf("PAR: %d %v", status, out)
			}
			cb := b.signIn(s.issuer+"/oauth2/authorize?"+url.Values{"client_id": {rp.ID}, "request_uri": {uri}}.Encode(), "", "")
			tr := tokenOK(t, s, rp, code(cb.Query().Get("code")))
			if got := audOf(t, tr.AccessToken); !slices.Equal(got, []string{billingAPI}) {
				t.Fatalf("aud %v", got)
			}
		})

		t.Run("no resource: the token is for the client", func(t *testing.T) {
			tr := tokenOK(t, s, rp, code(signIn(map[string]string{})))
			if got := audOf(t, tr.AccessToken); !slices.Equal(got, []string{rp.ID}) {
				t.Fatalf("aud %v, want the client id", got)
			}
			// The grant covers no resource server.
			if e := tokenRefused(t, s, rp, refresh(tr.RefreshToken, ordersAPI)); e != "invalid_target" {
				t.Errorf("refresh for a resource the grant lacks: %s", e)
			}
		})

		t.Run("a foreign resource at the authorization endpoint", func(t *testing.T) {
			for name, extra := range map[string]map[string]string{
				"foreign":      {"resource": foreignAPI},
				"not absolute": {"resource": "orders"},
				"fragment":     {"resource": ordersAPI + "#x"},
				"below one":    {"resource": ordersAPI + "/sub"},
				"audience":     {"audience": foreignAPI},
				"form_post":    {"resource": foreignAPI, "response_mode": "form_post"},
			} {
				t.Run(name, func(t *testing.T) {
					extra["state"], extra["scope"] = "state-target-1", "openid"
					for _, br := range []*browser{b, newBrowser(t, callback)} { // signed in, and not
						resp, body := br.once(http.MethodGet, authzRequest(s, rp, callback, pkce, extra), nil)
						f := redirectParams(t, resp, body, callback)
						if f.Get("error") != "invalid_target" || f.Get("state") != "state-target-1" || f.Get("iss") != s.issuer || f.Get("code") != "" {
							t.Fatalf("answer %v", f)
						}
					}
				})
			}
			status, out := pushAuthorization(t, s, rp, url.Values{"response_type": {"code"}, "client_id": {rp.ID},
				"redirect_uri": {callback}, "scope": {"openid"}, "state": {"state-par-target"}, "resource": {foreignAPI},
				"code_challenge": {oauth2.S256ChallengeFromVerifier(pkce)}, "code_challenge_method": {"S256"}})
			if status != http.StatusBadRequest || out["error"] != "invalid_target" {
				t.Errorf("PAR with a foreign resource: %d %v", status, out)
			}
		})

		t.Run("client_credentials", func(t *testing.T) {
			cc := func(resource ...string) url.Values {
				return url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}, "resource": resource}
			}
			tr := tokenOK(t, s, svc, cc(ordersAPI))
			if got := audOf(t, tr.AccessToken); !slices.Equal(got, []string{ordersAPI}) {
				t.Fatalf("aud %v", got)
			}
			if err := api.accepts(ctx, ordersAPI, tr.AccessToken); err != nil {
				t.Errorf("the orders API refuses the service's token: %v", err)
			}
			if got := audOf(t, tokenOK(t, s, svc, cc()).AccessToken); !slices.Equal(got, []string{svc.ID}) {
				t.Errorf("no resource: aud %v", got)
			}
			for _, r := range []string{billingAPI, foreignAPI, "not a uri"} {
				if e := tokenRefused(t, s, svc, cc(r)); e != "invalid_target" {
					t.Errorf("client_credentials for %q: %s", r, e)
				}
			}
			if e := tokenRefused(t, s, svc, url.Values{"grant_type": {"client_credentials"}, "audience": {billingAPI}}); e != "invalid_target" {
				t.Errorf("audience= for a foreign resource: %s", e)
			}

			// The admin API changes what the client may ask for, at once.
			adm := s.createClient("--admin")
			admTok := tokenOK(t, s, adm, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}})
			st, out := s.adminCall(t, admTok.AccessToken, http.MethodPatch, "/v1/clients/"+svc.ID,
				map[string]any{"audience": []string{billingAPI}})
			if st != http.StatusOK {
				t.Fatalf("PATCH audience: %d %v", st, out)
			}
			if got := audOf(t, tokenOK(t, s, svc, cc(billingAPI)).AccessToken); !slices.Equal(got, []string{billingAPI}) {
				t.Errorf("after PATCH: aud %v", got)
			}
			if e := tokenRefused(t, s, svc, cc(ordersAPI)); e != "invalid_target" {
				t.Errorf("a removed audience: %s", e)
			}
			// Removing an audience revoked the tokens issued for it.
			if active(t, s, svc, tr.AccessToken) {
				t.Error("a token for a removed audience is still active")
			}
		})
	})
}
