package main

// Every number Latchkey puts in a token or a response is a JSON integer
// (issue 9.2): strict decoders (a Go int64 field, a typed schema) refuse
// 1.796312823e+09. And discovery names only the algorithms that sign
// (issue 9.5).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	josev4 "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/internal/testdb"
)

// integersOnly fails when raw (JSON) holds a number that is not an
// integer: no fraction, no exponent.
func integersOnly(t *testing.T, what string, raw []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, raw)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case json.Number:
			if _, err := strconv.ParseInt(x.String(), 10, 64); err != nil {
				t.Errorf("%s: %s = %s is not a JSON integer", what, path, x)
			}
		case map[string]any:
			for k, e := range x {
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range x {
				walk(path+"["+strconv.Itoa(i)+"]", e)
			}
		}
	}
	walk("$", v)
}

// strictDecode decodes raw into a typed struct (int64 fields refuse
// floats) and checks every number is an integer.
func strictDecode(t *testing.T, what string, raw []byte, into any) {
	t.Helper()
	integersOnly(t, what, raw)
	if err := json.Unmarshal(raw, into); err != nil {
		t.Errorf("%s: a strict decoder refuses it: %v\n%s", what, err, raw)
	}
}

// jwtPayload returns the (unverified) payload and header of a compact JWS.
func jwtPayload(t *testing.T, token string) (payload, header []byte) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", token)
	}
	h, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	p, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("JWS encoding: %v %v", err1, err2)
	}
	return p, h
}

type rateLimitClaim struct {
	Match         string `json:"match"`
	Limit         int64  `json:"limit"`
	PeriodSeconds int64  `json:"period_seconds"`
}

type idTokenNumbers struct {
	Exp       int64            `json:"exp"`
	Iat       int64            `json:"iat"`
	Rat       int64            `json:"rat"`
	AuthTime  int64            `json:"auth_time"`
	UpdatedAt int64            `json:"updated_at"`
	Limits    []rateLimitClaim `json:"tier_rate_limits"`
}

type accessTokenNumbers struct {
	Exp      int64            `json:"exp"`
	Iat      int64            `json:"iat"`
	Nbf      int64            `json:"nbf"`
	AuthTime int64            `json:"auth_time"`
	Limits   []rateLimitClaim `json:"tier_rate_limits"`
}

type tokenResponseNumbers struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	ExpiresIn    int64  `json:"expires_in"`
}

// postToken sends a token request with HTTP Basic and returns the raw
// answer.
func postToken(t *testing.T, s *testServer, c createdClient, form url.Values) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.Secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// rawIntrospect is introspection's raw answer.
func rawIntrospect(t *testing.T, s *testServer, c createdClient, token string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.issuer+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, c.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return raw
}

func TestEndToEndNumericClaimsAreIntegers(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := startServer(t, dsn, nil)
		ctx := context.Background()
		adm := s.createClient("--admin")
		tok, err := (&clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret, TokenURL: s.issuer + "/oauth2/token",
			Scopes: []string{"admin"}}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		admin := tok.AccessToken
		// A limit of a million: a float prints as 1e+06.
		st, tier := s.adminCall(t, admin, http.MethodPost, "/v1/tiers", map[string]any{"name": "Big"})
		if st != http.StatusCreated {
			t.Fatalf("tier: %d %v", st, tier)
		}
		if st, out := s.adminCall(t, admin, http.MethodPut, "/v1/tiers/"+tier["id"].(string)+"/rate-limits", map[string]any{
			"rate_limits": []map[string]any{{"match": "api.requests", "limit": 1000000, "period": "720h"}},
		}); st/100 != 2 {
			t.Fatalf("rate limits: %d %v", st, out)
		}
		st, user := s.adminCall(t, admin, http.MethodPost, "/v1/users", map[string]any{
			"username": "numa", "email": "numa@example.com", "password": "integer password 42", "email_verified": true})
		if st != http.StatusCreated {
			t.Fatalf("user: %d %v", st, user)
		}
		if st, out := s.adminCall(t, admin, http.MethodPut, "/v1/users/"+user["id"].(string)+"/tier", map[string]any{"tier": tier["id"]}); st != http.StatusOK {
			t.Fatalf("assign tier: %d %v", st, out)
		}

		rp := s.createClient("--name", "Strict App", "--redirect-uri", callback, "--first-party", "--access-token-format", "jwt",
			"--scope", "openid profile email tier offline_access")
		pkce := oauth2.GenerateVerifier()
		b := newBrowser(t, callback)
		cb := b.signIn(authzRequest(s, rp, callback, pkce, map[string]string{"scope": "openid profile email tier offline_access",
			"state": "state-numbers-1"}), "numa", "integer password 42")
		status, raw := postToken(t, s, rp, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
			"redirect_uri": {callback}, "code_verifier": {pkce}})
		if status != http.StatusOK {
			t.Fatalf("exchange: %d %s", status, raw)
		}

		check := func(grant string, raw []byte) tokenResponseNumbers {
			t.Helper()
			var tr tokenResponseNumbers
			strictDecode(t, grant+" token response", raw, &tr)
			if tr.ExpiresIn <= 0 {
				t.Errorf("%s: expires_in %d", grant, tr.ExpiresIn)
			}
			if tr.IDToken != "" {
				p, _ := jwtPayload(t, tr.IDToken)
				var c idTokenNumbers
				strictDecode(t, grant+" ID token", p, &c)
				if c.UpdatedAt == 0 || c.AuthTime == 0 || len(c.Limits) != 1 || c.Limits[0].Limit != 1000000 ||
					c.Limits[0].PeriodSeconds != 720*3600 {
					t.Errorf("%s ID token numbers %+v", grant, c)
				}
			}
			p, _ := jwtPayload(t, tr.AccessToken)
			var a accessTokenNumbers
			strictDecode(t, grant+" JWT access token", p, &a)
			if a.Exp <= a.Iat || len(a.Limits) != 1 || a.Limits[0].Limit != 1000000 {
				t.Errorf("%s access token numbers %+v", grant, a)
			}
			var in accessTokenNumbers
			strictDecode(t, grant+" introspection", rawIntrospect(t, s, rp, tr.AccessToken), &in)
			if in.Exp != a.Exp || len(in.Limits) != 1 || in.Limits[0].Limit != 1000000 {
				t.Errorf("%s introspection numbers %+v", grant, in)
			}
			return tr
		}
		tr := check("authorization_code", raw)

		req, _ := http.NewRequest(http.MethodGet, s.issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		uiRaw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var ui idTokenNumbers
		strictDecode(t, "userinfo", uiRaw, &ui)
		if ui.UpdatedAt == 0 || len(ui.Limits) != 1 {
			t.Errorf("userinfo numbers %+v", ui)
		}

		status, raw = postToken(t, s, rp, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}})
		if status != http.StatusOK {
			t.Fatalf("refresh: %d %s", status, raw)
		}
		check("refresh_token", raw)

		svc := s.createClient("--name", "Strict Service", "--grant-type", "client_credentials", "--scope", "api",
			"--access-token-format", "jwt")
		status, raw = postToken(t, s, svc, url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}})
		if status != http.StatusOK {
			t.Fatalf("client_credentials: %d %s", status, raw)
		}
		var cc tokenResponseNumbers
		strictDecode(t, "client_credentials token response", raw, &cc)
		p, _ := jwtPayload(t, cc.AccessToken)
		strictDecode(t, "client_credentials JWT access token", p, &accessTokenNumbers{})
		strictDecode(t, "client_credentials introspection", rawIntrospect(t, s, svc, cc.AccessToken), &accessTokenNumbers{})

		form := url.Values{"response_type": {"code"}, "client_id": {rp.ID}, "redirect_uri": {callback}, "scope": {"openid"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(pkce)}, "code_challenge_method": {"S256"}}
		req, _ = http.NewRequest(http.MethodPost, s.issuer+"/oauth2/par", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(rp.ID, rp.Secret)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		parRaw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var par struct {
			ExpiresIn int64 `json:"expires_in"`
		}
		strictDecode(t, "PAR response", parRaw, &par)
	})
}

// Discovery lists only the algorithms that actually sign, and the JWKS
// has a key for each.
func TestEndToEndDiscoveryAlgorithmsAreTrue(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), nil)
	s.createUser("alma", "algorithm password 42")
	rp := s.createClient("--name", "Alg App", "--redirect-uri", callback, "--first-party", "--access-token-format", "jwt")
	svc := s.createClient("--name", "Alg Service", "--grant-type", "client_credentials", "--scope", "api", "--access-token-format", "jwt")

	getJSON := func(path string, into any) {
		resp, err := http.Get(s.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	var disc map[string]any
	getJSON("/.well-known/openid-configuration", &disc)
	var jwks josev4.JSONWebKeySet
	getJSON("/.well-known/jwks.json", &jwks)

	// What actually signs: an ID token and JWT access tokens of both kinds.
	pkce := oauth2.GenerateVerifier()
	cb := newBrowser(t, callback).signIn(authzRequest(s, rp, callback, pkce, map[string]string{"state": "state-alg-1234"}),
		"alma", "algorithm password 42")
	_, raw := postToken(t, s, rp, url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")},
		"redirect_uri": {callback}, "code_verifier": {pkce}})
	var tr tokenResponseNumbers
	_ = json.Unmarshal(raw, &tr)
	_, raw = postToken(t, s, svc, url.Values{"grant_type": {"client_credentials"}})
	var cc tokenResponseNumbers
	_ = json.Unmarshal(raw, &cc)
	used := map[string]bool{}
	for what, tok := range map[string]string{"ID token": tr.IDToken, "JWT access token": tr.AccessToken, "client_credentials JWT": cc.AccessToken} {
		_, h := jwtPayload(t, tok)
		var hdr struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
		}
		_ = json.Unmarshal(h, &hdr)
		used[hdr.Alg] = true
		if keys := jwks.Key(hdr.Kid); len(keys) != 1 || keys[0].Algorithm != hdr.Alg {
			t.Errorf("%s: signed with kid %q (%s), the JWKS has %v for it", what, hdr.Kid, hdr.Alg, keys)
		}
	}

	for name, v := range disc {
		if !strings.HasSuffix(name, "_alg_values_supported") {
			continue
		}
		list, _ := v.([]any)
		if len(list) == 0 {
			t.Errorf("%s is empty", name)
		}
		for _, a := range list {
			alg, _ := a.(string)
			if !used[alg] {
				t.Errorf("%s lists %q, which signs nothing (used: %v)", name, alg, used)
			}
			if !slices.ContainsFunc(jwks.Keys, func(k josev4.JSONWebKey) bool { return k.Algorithm == alg }) {
				t.Errorf("%s lists %q, and the JWKS has no key for it", name, alg)
			}
		}
	}
	if _, ok := disc["id_token_signing_alg_values_supported"]; !ok {
		t.Error("discovery has no id_token_signing_alg_values_supported (required by OIDC Discovery)")
	}
}
