package main

// Issue 11 end to end: groups, roles and the full profile reach a relying
// party (x/oauth2 + go-oidc) in the ID token, userinfo and introspection;
// a membership change shows after a refresh; a person holding
// latchkey:admin roles uses the admin API with their own token and is the
// actor in the audit log, and one without them does not get the scope.

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

type authzClaims struct {
	Sub        string   `json:"sub"`
	Groups     []string `json:"groups"`
	Roles      []string `json:"roles"`
	GivenName  string   `json:"given_name"`
	FamilyName string   `json:"family_name"`
	Zoneinfo   string   `json:"zoneinfo"`
	Birthdate  string   `json:"birthdate"`
	Phone      string   `json:"phone_number"`
	PhoneOK    bool     `json:"phone_number_verified"`
	Department string   `json:"department"`
	Address    struct{ Locality, Country string }
	Preferred  string `json:"preferred_username"`
}

func (s *testServer) mustCLI(t *testing.T, args ...string) {
	t.Helper()
	if _, err := s.cli("", args...); err != nil {
		t.Fatal(err)
	}
}

func TestEndToEndGroupsRolesAndProfile(t *testing.T) {
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

		rp := s.createClient("--name", "Grafana", "--redirect-uri", callback, "--access-token-format", "jwt",
			"--scope", "openid profile email phone address groups roles offline_access",
			"--claim", "department=app_metadata.department")
		other := s.createClient("--name", "Other", "--redirect-uri", callback)
		s.createUser("ada", "ada's password 1")
		_, found := s.adminCall(t, admin, http.MethodGet, "/v1/users?username=ada", nil)
		ada := found["users"].([]any)[0].(map[string]any)["id"].(string)

		// ada is in backend, below engineering, below org.
		s.mustCLI(t, "groups", "create", "org")
		s.mustCLI(t, "groups", "create", "engineering", "--parent", "org")
		s.mustCLI(t, "groups", "create", "backend", "--parent", "engineering")
		s.mustCLI(t, "groups", "add-member", "backend", "ada")
		s.mustCLI(t, "roles", "create", "employee")
		s.mustCLI(t, "roles", "grant", "employee", "--group", "org")
		s.mustCLI(t, "roles", "create", "viewer", "--client", rp.ID)
		s.mustCLI(t, "roles", "grant", "viewer", "--client", rp.ID, "--group", "engineering")
		s.mustCLI(t, "roles", "create", "not-yours", "--client", other.ID)
		s.mustCLI(t, "roles", "grant", "not-yours", "--client", other.ID, "--user", "ada")
		if st, out := s.adminCall(t, admin, http.MethodPatch, "/v1/users/"+ada, map[string]any{
			"given_name": "Ada", "family_name": "Lovelace", "zoneinfo": "Europe/London", "birthdate": "1815-12-10",
			"phone_number": "+442071234567", "phone_number_verified": true,
			"address":      map[string]any{"locality": "London", "country": "GB"},
			"app_metadata": map[string]any{"department": "Analytical Engines"},
		}); st != http.StatusOK {
			t.Fatalf("PATCH ada: %d %v", st, out)
		}

		op, err := oidc.NewProvider(ctx, s.issuer)
		if err != nil {
			t.Fatal(err)
		}
		var disc struct {
			Scopes []string `json:"scopes_supported"`
			Claims []string `json:"claims_supported"`
		}
		if err := op.Claims(&disc); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"groups", "roles", "phone", "address"} {
			if !strings.Contains(strings.Join(disc.Scopes, " "), want) || !strings.Contains(strings.Join(disc.Claims, " "), want) {
				t.Errorf("discovery lacks %s: %v %v", want, disc.Scopes, disc.Claims)
			}
		}
		conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, Endpoint: op.Endpoint(), RedirectURL: callback,
			Scopes: []string{oidc.ScopeOpenID, "profile", "phone", "address", "groups", "roles", oidc.ScopeOfflineAccess}}
		verifier := op.Verifier(&oidc.Config{ClientID: rp.ID})
		pkce := oauth2.GenerateVerifier()
		b := newBrowser(t, callback)
		cb := b.signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), "ada", "ada's password 1")
		tok, err = conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			t.Fatal(err)
		}
		idClaims := func(tok *oauth2.Token) authzClaims {
			t.Helper()
			raw, _ := tok.Extra("id_token").(string)
			idt, err := verifier.Verify(ctx, raw)
			if err != nil {
				t.Fatalf("id token: %v", err)
			}
			var c authzClaims
			if err := idt.Claims(&c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		c := idClaims(tok)
		want := authzClaims{Sub: ada, Groups: []string{"backend", "engineering", "org"}, Roles: []string{"employee", "viewer"},
			GivenName: "Ada", FamilyName: "Lovelace", Zoneinfo: "Europe/London", Birthdate: "1815-12-10", Phone: "+442071234567",
			PhoneOK: true, Department: "Analytical Engines", Preferred: "ada"}
		want.Address.Locality, want.Address.Country = "London", "GB"
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("ID token claims\n got %+v\nwant %+v", c, want)
		}

		// userinfo, with go-oidc.
		ui, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		var uic authzClaims
		if err := ui.Claims(&uic); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(uic, want) {
			t.Fatalf("userinfo claims\n got %+v\nwant %+v", uic, want)
		}
		// Introspection and the JWT access token carry the authorization data.
		in := introspect(t, s, rp, tok.AccessToken)
		if !reflect.DeepEqual(in["groups"], []any{"backend", "engineering", "org"}) || in["department"] != "Analytical Engines" {
			t.Fatalf("introspection = %v", in)
		}
		at, _ := jwtPayload(t, tok.AccessToken)
		if !strings.Contains(string(at), `"roles":["employee","viewer"]`) {
			t.Fatalf("JWT access token = %s", at)
		}

		// Out of backend: the refreshed tokens say so.
		s.mustCLI(t, "groups", "remove-member", "backend", "ada")
		s.mustCLI(t, "groups", "add-member", "org", "ada")
		refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatal(err)
		}
		c = idClaims(refreshed)
		if !reflect.DeepEqual(c.Groups, []string{"org"}) || !reflect.DeepEqual(c.Roles, []string{"employee"}) {
			t.Fatalf("after refresh: groups %v roles %v", c.Groups, c.Roles)
		}
		if in := introspect(t, s, rp, refreshed.AccessToken); !reflect.DeepEqual(in["groups"], []any{"org"}) {
			t.Fatalf("introspection after refresh = %v", in)
		}

		// The sign-in was recorded; the directory finds ada by role.
		_, u := s.adminCall(t, admin, http.MethodGet, "/v1/users/"+ada, nil)
		if u["last_login_at"] == nil {
			t.Fatalf("no last_login_at: %v", u)
		}
		_, roles := s.adminCall(t, admin, http.MethodGet, "/v1/roles?client_id=", nil)
		var employee string
		for _, r := range roles["roles"].([]any) {
			if r.(map[string]any)["name"] == "employee" {
				employee = r.(map[string]any)["id"].(string)
			}
		}
		_, page := s.adminCall(t, admin, http.MethodGet, "/v1/users?role="+url.QueryEscape(employee)+"&last_login_after=2000-01-01", nil)
		if users, _ := page["users"].([]any); len(users) != 1 {
			t.Fatalf("?role=employee&last_login_after= %v", page)
		}
		_, stats := s.adminCall(t, admin, http.MethodGet, "/v1/stats", nil)
		if active, _ := stats["active_users"].(map[string]any); active["1d"] != float64(1) {
			t.Fatalf("stats = %v", stats)
		}
	})
}

func TestEndToEndPeopleAsAdministrators(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := startServer(t, dsn, nil)
		ctx := context.Background()
		ops := s.createClient("--name", "Ops", "--redirect-uri", callback, "--scope", "openid admin:users.read admin:users.write")
		s.createUser("olga", "olga's password 1")
		s.createUser("mallory", "mallory's password 1")
		s.createUser("target", "target's password 1")
		s.mustCLI(t, "roles", "grant", "latchkey:admin:users.read", "--user", "olga")
		s.mustCLI(t, "roles", "grant", "latchkey:admin:users.write", "--user", "olga")

		op, err := oidc.NewProvider(ctx, s.issuer)
		if err != nil {
			t.Fatal(err)
		}
		conf := &oauth2.Config{ClientID: ops.ID, ClientSecret: ops.Secret, Endpoint: op.Endpoint(), RedirectURL: callback,
			Scopes: []string{oidc.ScopeOpenID, "admin:users.read", "admin:users.write"}}
		signIn := func(user, pw string) *oauth2.Token {
			t.Helper()
			pkce := oauth2.GenerateVerifier()
			cb := newBrowser(t, callback).signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), user, pw)
			tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce))
			if err != nil {
				t.Fatalf("%s: %v", user, err)
			}
			return tok
		}

		olga := signIn("olga", "olga's password 1")
		if sc, _ := olga.Extra("scope").(string); !strings.Contains(sc, "admin:users.read") || !strings.Contains(sc, "admin:users.write") {
			t.Fatalf("olga's scopes = %q", sc)
		}
		st, page := s.adminCall(t, olga.AccessToken, http.MethodGet, "/v1/users?username=target", nil)
		if st != http.StatusOK {
			t.Fatalf("olga reads users: %d %v", st, page)
		}
		target := page["users"].([]any)[0].(map[string]any)["id"].(string)
		if st, out := s.adminCall(t, olga.AccessToken, http.MethodPost, "/v1/users/"+target+"/suspend", map[string]any{"reason": "test"}); st != http.StatusOK {
			t.Fatalf("olga suspends: %d %v", st, out)
		}
		if st, _ := s.adminCall(t, olga.AccessToken, http.MethodGet, "/v1/tiers", nil); st != http.StatusForbidden {
			t.Fatalf("olga reads tiers without the role: %d", st)
		}
		_, olgaUser := s.adminCall(t, olga.AccessToken, http.MethodGet, "/v1/users?username=olga", nil)
		olgaID := olgaUser["users"].([]any)[0].(map[string]any)["id"].(string)
		if st, _ := s.adminCall(t, olga.AccessToken, http.MethodGet, "/v1/audit-events", nil); st != http.StatusForbidden {
			t.Fatalf("olga reads the audit log without the role: %d", st)
		}
		adm := s.createClient("--admin")
		admTok, err := (&clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret, TokenURL: s.issuer + "/oauth2/token",
			Scopes: []string{"admin"}}).Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, events := s.adminCall(t, admTok.AccessToken, http.MethodGet, "/v1/audit-events?target="+url.QueryEscape(target)+"&action=user.suspend", nil)
		evs, _ := events["events"].([]any)
		if len(evs) != 1 {
			t.Fatalf("audit = %v", events)
		}
		if ev := evs[0].(map[string]any); ev["actor_type"] != "user" || ev["actor_id"] != olgaID {
			t.Fatalf("the suspension was not recorded under olga's name: %v", ev)
		}

		// Mallory asks for the same scopes: signed in as usual, scopes dropped.
		mal := signIn("mallory", "mallory's password 1")
		if sc, _ := mal.Extra("scope").(string); strings.Contains(sc, "admin") {
			t.Fatalf("mallory got %q", sc)
		}
		if st, _ := s.adminCall(t, mal.AccessToken, http.MethodGet, "/v1/users", nil); st != http.StatusUnauthorized {
			t.Fatalf("mallory's token on the admin API: %d", st)
		}

		// Taking olga's role away takes effect at her next request.
		s.mustCLI(t, "roles", "revoke", "latchkey:admin:users.write", "--user", "olga")
		if st, _ := s.adminCall(t, olga.AccessToken, http.MethodPost, "/v1/users/"+target+"/unsuspend", map[string]any{"reason": "x"}); st != http.StatusForbidden {
			t.Fatalf("olga writes after losing the role: %d", st)
		}
		if st, _ := s.adminCall(t, olga.AccessToken, http.MethodGet, "/v1/users/"+target, nil); st != http.StatusOK {
			t.Fatalf("olga reads with the role she kept: %d", st)
		}
	})
}
