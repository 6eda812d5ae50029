package main

import (
	"strings"
	"testing"
)

func TestCLIGroupsAndRoles(t *testing.T) {
	c := newCLIEnv(t)
	var u struct{ ID string }
	c.mustJSON(&u, "correct horse battery staple\n", "users", "create", "--json", "--username", "ada",
		"--email", "ada@example.com", "--password-stdin")
	var eng, backend struct {
		ID, Name string
		ParentID string `json:"parent_id"`
	}
	c.mustJSON(&eng, "", "groups", "create", "engineering", "--description", "builders", "--json")
	c.mustJSON(&backend, "", "groups", "create", "backend", "--parent", "engineering", "--json")
	if eng.ID == "" || backend.ParentID != eng.ID {
		t.Fatalf("groups = %+v %+v", eng, backend)
	}
	var cl struct {
		ClientID string `json:"client_id"`
	}
	c.mustJSON(&cl, "", "clients", "create", "--name", "Grafana", "--redirect-uri", "https://grafana.example/cb", "--json",
		"--scope", "openid profile groups roles", "--claim", "department=app_metadata.department")
	for _, args := range [][]string{
		{"groups", "add-member", "backend", "ada"},
		{"roles", "create", "editor", "--description", "edits"},
		{"roles", "create", "viewer", "--client", cl.ClientID},
		{"roles", "grant", "editor", "--group", "engineering"},
		{"roles", "grant", "viewer", "--client", cl.ClientID, "--user", "ada@example.com"},
	} {
		if _, errOut, err := c.run("", args...); err != nil {
			t.Fatalf("%v: %v %s", args, err, errOut)
		}
	}
	out, _, err := c.run("", "groups", "list")
	if err != nil || !strings.Contains(out, "backend") || !strings.Contains(out, "engineering") {
		t.Fatalf("groups list: %v\n%s", err, out)
	}
	var roles []struct {
		Name     string
		ClientID string `json:"client_id"`
		BuiltIn  bool   `json:"built_in"`
	}
	c.mustJSON(&roles, "", "roles", "list", "--json")
	builtIn, viewer := 0, false
	for _, r := range roles {
		if r.BuiltIn {
			builtIn++
		}
		viewer = viewer || (r.Name == "viewer" && r.ClientID == cl.ClientID)
	}
	if builtIn < 2 || !viewer {
		t.Fatalf("roles list = %+v", roles)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"roles", "grant", "viewer", "--user", "ada"}, "needs --client"},
		{[]string{"roles", "grant", "editor"}, "exactly one of --user and --group"},
		{[]string{"roles", "revoke", "editor", "--user", "ada"}, "does not hold"},
		{[]string{"groups", "remove-member", "engineering", "ada"}, "not a direct member"},
		{[]string{"groups", "create", "Engineering"}, "--name: is already taken"},
		{[]string{"roles", "create", "latchkey:boss"}, "--name"},
		{[]string{"groups", "add-member", "nope", "ada"}, `group "nope" not found`},
		{[]string{"clients", "create", "--name", "x", "--redirect-uri", "https://x.example/cb", "--claim", "sub=app_metadata.id"}, "reserved"},
	} {
		_, _, err := c.run("", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, errOut, err := c.run("", "groups", "remove-member", "backend", "ada"); err != nil {
		t.Fatalf("remove-member: %v %s", err, errOut)
	}
	if _, errOut, err := c.run("", "roles", "revoke", "viewer", "--client", cl.ClientID, "--user", "ada"); err != nil {
		t.Fatalf("revoke: %v %s", err, errOut)
	}
}
