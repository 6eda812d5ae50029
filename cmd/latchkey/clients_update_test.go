package main

import (
	"slices"
	"strings"
	"testing"
)

// `clients create --audience` and `clients update`: only the flags given
// change, through the rules the admin API's PATCH uses.
func TestCLIClientsUpdate(t *testing.T) {
	c := newCLIEnv(t)
	var cl clientJSON
	c.mustJSON(&cl, "", "clients", "create", "--json", "--name", "Reports", "--redirect-uri", "https://app.example/cb",
		"--scope", "openid email", "--audience", "https://api.example/reports", "--audience", "urn:example:billing")
	if !slices.Equal(cl.Audience, []string{"https://api.example/reports", "urn:example:billing"}) {
		t.Fatalf("created %+v", cl)
	}
	id := cl.ID

	tests := []struct {
		name  string
		args  []string
		check func(got clientJSON) bool
	}{
		{"name only", []string{"--name", "Reports v2"}, func(g clientJSON) bool {
			return g.Name == "Reports v2" && len(g.Audience) == 2 && strings.Join(g.Scopes, " ") == "openid email" && !g.FirstParty
		}},
		{"audience replaces the list", []string{"--audience", "https://api.example/v2"}, func(g clientJSON) bool {
			return slices.Equal(g.Audience, []string{"https://api.example/v2"}) && g.Name == "Reports v2"
		}},
		{"first party on", []string{"--first-party"}, func(g clientJSON) bool { return g.FirstParty }},
		{"first party off", []string{"--first-party=false"}, func(g clientJSON) bool { return !g.FirstParty }},
		{"require mfa on", []string{"--require-mfa"}, func(g clientJSON) bool { return g.RequireMFA && !g.FirstParty }},
		{"require mfa kept by other changes", []string{"--name", "Reports v3"}, func(g clientJSON) bool {
			return g.RequireMFA && g.Name == "Reports v3"
		}},
		{"require mfa off", []string{"--require-mfa=false"}, func(g clientJSON) bool { return !g.RequireMFA }},
		{"require mfa explicitly true", []string{"--require-mfa=true"}, func(g clientJSON) bool { return g.RequireMFA }},
		{"scope, format, grants, redirects", []string{"--scope", "openid profile", "--access-token-format", "jwt",
			"--grant-type", "authorization_code", "--redirect-uri", "https://app.example/cb2",
			"--post-logout-redirect-uri", "https://app.example/"}, func(g clientJSON) bool {
			return strings.Join(g.Scopes, " ") == "openid profile" && g.AccessTokenFormat == "jwt" &&
				slices.Equal(g.GrantTypes, []string{"authorization_code"}) && slices.Equal(g.RedirectURIs, []string{"https://app.example/cb2"}) &&
				slices.Equal(g.PostLogoutRedirectURIs, []string{"https://app.example/"}) && len(g.Audience) == 1
		}},
		{"an empty audience empties the list", []string{"--audience", ""}, func(g clientJSON) bool { return len(g.Audience) == 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got clientJSON
			c.mustJSON(&got, "", append([]string{"clients", "update", id, "--json"}, tc.args...)...)
			if !tc.check(got) {
				t.Fatalf("after %v: %+v", tc.args, got)
			}
			var list []clientJSON
			c.mustJSON(&list, "", "clients", "list", "--json")
			if len(list) != 1 || !slices.Equal(list[0].Audience, got.Audience) || list[0].Name != got.Name ||
				list[0].RequireMFA != got.RequireMFA {
				t.Fatalf("list %+v, update answered %+v", list, got)
			}
		})
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"clients", "update", id, "--audience", "api"}, "--audience"},
		{[]string{"clients", "update", id, "--grant-type", "password"}, "--grant-type"},
		{[]string{"clients", "update", id, "--access-token-format", "paseto"}, "--access-token-format"},
		{[]string{"clients", "update", "c_nope", "--name", "x"}, "not found"},
		{[]string{"clients", "update"}, "arg"},
	} {
		if _, _, err := c.run("", tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
	out, _, err := c.run("", "clients", "update", id, "--name", "Plain")
	if err != nil || !strings.Contains(out, "updated client "+id) {
		t.Fatalf("plain output %q: %v", out, err)
	}
}

// `clients create --require-mfa` (issue 10 §3): off unless asked, shown by
// list, and a value that is not a boolean is refused.
func TestCLIClientsRequireMFA(t *testing.T) {
	c := newCLIEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		want bool
	}{
		{"default off", nil, false},
		{"flag", []string{"--require-mfa"}, true},
		{"explicit true", []string{"--require-mfa=true"}, true},
		{"explicit false", []string{"--require-mfa=false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cl clientJSON
			c.mustJSON(&cl, "", append([]string{"clients", "create", "--json", "--name", tc.name,
				"--redirect-uri", "https://app.example/cb"}, tc.args...)...)
			if cl.RequireMFA != tc.want {
				t.Fatalf("created require_mfa=%v, want %v", cl.RequireMFA, tc.want)
			}
			var list []clientJSON
			c.mustJSON(&list, "", "clients", "list", "--json")
			for _, l := range list {
				if l.ID == cl.ID && l.RequireMFA != tc.want {
					t.Fatalf("list shows require_mfa=%v, want %v", l.RequireMFA, tc.want)
				}
			}
		})
	}
	for _, args := range [][]string{
		{"clients", "create", "--name", "x", "--redirect-uri", "https://app.example/cb", "--require-mfa=maybe"},
		{"clients", "update", "c_any", "--require-mfa=maybe"},
	} {
		if _, _, err := c.run("", args...); err == nil || !strings.Contains(err.Error(), "require-mfa") {
			t.Errorf("%v: %v, want an error naming --require-mfa", args, err)
		}
	}
}
