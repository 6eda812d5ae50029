package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/config"
)

// cliEnv runs commands in-process against a fresh SQLite database in a
// temporary data directory.
type cliEnv struct {
	t   *testing.T
	env map[string]string
}

func newCLIEnv(t *testing.T) *cliEnv {
	dir := t.TempDir()
	return &cliEnv{t: t, env: map[string]string{
		"LATCHKEY_DATA_DIR":          dir,
		"LATCHKEY_DATABASE_URL":      "sqlite:" + filepath.Join(dir, "db.sqlite"),
		"LATCHKEY_SECRET":            "cli-test-secret-cli-test-secret-0123456789",
		"LATCHKEY_ARGON2_MEMORY_KIB": "8192",
		"LATCHKEY_ARGON2_ITERATIONS": "1",
		"LATCHKEY_LOG_LEVEL":         "error",
	}}
}

func (c *cliEnv) run(stdin string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return c.env[k] }, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func (c *cliEnv) mustJSON(v any, stdin string, args ...string) {
	c.t.Helper()
	out, errOut, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("%v: %v (stderr %s)", args, err, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("%v: output is not JSON: %v\n%s", args, err, out)
	}
}

func TestCLIClients(t *testing.T) {
	c := newCLIEnv(t)
	var created clientJSON
	c.mustJSON(&created, "", "clients", "create", "--json", "--name", "Web", "--redirect-uri", "https://app.example.com/cb",
		"--scope", "openid email", "--first-party")
	if created.ID == "" || created.Secret == "" || !created.FirstParty || strings.Join(created.Scopes, " ") != "openid email" {
		t.Fatalf("created = %+v", created)
	}
	var pub clientJSON
	c.mustJSON(&pub, "", "clients", "create", "--json", "--name", "SPA", "--public", "--redirect-uri", "http://localhost:3000/cb")
	if pub.Secret != "" || !pub.Public {
		t.Fatalf("public client = %+v", pub)
	}

	var list []clientJSON
	c.mustJSON(&list, "", "clients", "list", "--json")
	if len(list) != 2 {
		t.Fatalf("list = %+v", list)
	}
	for _, l := range list {
		if l.Secret != "" {
			t.Fatalf("list shows a secret: %+v", l)
		}
	}
	// Human output lists both.
	out, _, err := c.run("", "clients", "list")
	if err != nil || !strings.Contains(out, created.ID) || !strings.Contains(out, pub.ID) {
		t.Fatalf("clients list: %v\n%s", err, out)
	}

	if _, _, err := c.run("", "clients", "delete", created.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.run("", "clients", "delete", created.ID); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("second delete: %v", err)
	}
}

func TestCLIErrorsNameTheFlag(t *testing.T) {
	c := newCLIEnv(t)
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"missing name", "", []string{"clients", "create", "--redirect-uri", "https://a.example/cb"}, "--name"},
		{"bad grant", "", []string{"clients", "create", "--name", "x", "--grant-type", "password"}, "--grant-type"},
		{"bad redirect", "", []string{"clients", "create", "--name", "x", "--redirect-uri", "not a url"}, "--redirect-uri"},
		{"userinfo redirect", "", []string{"clients", "create", "--name", "x", "--redirect-uri", "https://user@a.example/cb"}, "--redirect-uri"},
		{"bad format", "", []string{"clients", "create", "--name", "x", "--grant-type", "client_credentials", "--access-token-format", "paseto"}, "--access-token-format"},
		{"public cc", "", []string{"clients", "create", "--name", "x", "--public", "--grant-type", "client_credentials"}, "--grant-type"},
		{"short password", "short\n", []string{"users", "create", "--username", "ada", "--email", "ada@example.com", "--password-stdin"}, "--password-stdin"},
		{"empty stdin", "", []string{"users", "create", "--username", "ada", "--email", "ada@example.com", "--password-stdin"}, "--password-stdin"},
		{"bad email", "correct horse battery\n", []string{"users", "create", "--username", "ada", "--email", "nope", "--password-stdin"}, "--email"},
		{"bad username", "correct horse battery\n", []string{"users", "create", "--username", "Ada Lovelace", "--email", "ada@example.com", "--password-stdin"}, "--username"},
		{"bad config", "", []string{"clients", "list", "--access-token-ttl", "forever"}, "LATCHKEY_ACCESS_TOKEN_TTL"},
		{"unknown command", "", []string{"clients", "frobnicate"}, "frobnicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := c.run(tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestCLIUsers(t *testing.T) {
	c := newCLIEnv(t)
	var u struct {
		ID            string `json:"id"`
		Username      string `json:"username"`
		EmailVerified bool   `json:"email_verified"`
	}
	c.mustJSON(&u, "correct horse battery staple\n", "users", "create", "--json", "--username", "ada",
		"--email", "ada@example.com", "--password-stdin", "--email-verified")
	if u.ID == "" || u.Username != "ada" || !u.EmailVerified {
		t.Fatalf("user = %+v", u)
	}
	_, _, err := c.run("another good password\n", "users", "create", "--username", "ada2", "--email", "ADA@example.com", "--password-stdin")
	if err == nil || !strings.Contains(err.Error(), "taken") {
		t.Fatalf("duplicate email (case-insensitive): %v", err)
	}
}

func TestCLIMigrateKeysVersion(t *testing.T) {
	c := newCLIEnv(t)
	c.env["LATCHKEY_MIGRATE"] = "false"
	var status []struct {
		Version int64 `json:"version"`
		Applied bool  `json:"applied"`
	}
	c.mustJSON(&status, "", "migrate", "status", "--json")
	if len(status) == 0 || status[0].Applied {
		t.Fatalf("fresh database status = %+v", status)
	}
	var up struct {
		Version int64 `json:"version"`
	}
	c.mustJSON(&up, "", "migrate", "up", "--json")
	if up.Version != status[len(status)-1].Version {
		t.Fatalf("migrate up reached %d, want %d", up.Version, status[len(status)-1].Version)
	}
	c.mustJSON(&status, "", "migrate", "status", "--json")
	for _, s := range status {
		if !s.Applied {
			t.Fatalf("after up: %+v", status)
		}
	}

	var ks []struct {
		ID        string `json:"id"`
		Algorithm string `json:"algorithm"`
		State     string `json:"state"`
	}
	c.mustJSON(&ks, "", "keys", "list", "--json")
	algs := map[string]string{}
	for _, k := range ks {
		algs[k.Algorithm] = k.State
	}
	if algs["RS256"] != "active" || algs["ES256"] != "active" {
		t.Fatalf("first keys = %+v", ks)
	}
	var rotated []map[string]any
	c.mustJSON(&rotated, "", "keys", "rotate", "--json")
	if len(rotated) != 2 {
		t.Fatalf("rotate = %+v", rotated)
	}
	c.mustJSON(&ks, "", "keys", "list", "--json")
	states := map[string]int{}
	for _, k := range ks {
		states[k.State]++
	}
	if states["next"] != 2 || states["active"] != 2 {
		t.Fatalf("after rotate: %+v", ks)
	}

	var v struct {
		Version string `json:"version"`
	}
	c.mustJSON(&v, "", "version", "--json")
	if v.Version == "" {
		t.Fatal("no version")
	}
}

// The demo set-up is idempotent: a second start prints the same client and
// user, read back from the data directory.
func TestDemoSetup(t *testing.T) {
	c := newCLIEnv(t)
	c.env["LATCHKEY_ISSUER"] = "http://localhost:8080"
	first, second := demoRun(t, c), demoRun(t, c)
	if first != second {
		t.Fatalf("demo output differs between starts:\n%s\n---\n%s", first, second)
	}
	for _, want := range []string{"issuer:        http://localhost:8080", "demo user:     demo", "/oauth2/authorize?", "code_challenge_method=S256"} {
		if !strings.Contains(first, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, first)
		}
	}
	if _, err := os.Stat(filepath.Join(c.env["LATCHKEY_DATA_DIR"], "demo.json")); err != nil {
		t.Fatal(err)
	}
}

// demoRun wires the app as serve does and runs the demo set-up once.
func demoRun(t *testing.T, c *cliEnv) string {
	t.Helper()
	cfg, err := config.Load(nil, func(k string) string { return c.env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.EnsureSecret(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := newApp(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.store.Close()
	var out bytes.Buffer
	if err := setupDemo(ctx, a, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// The operator's user commands: list, get and the lifecycle changes, by
// id, username or email, with their refusals naming the flag.
func TestCLIUserLifecycle(t *testing.T) {
	c := newCLIEnv(t)
	var ada, bob userJSON
	c.mustJSON(&ada, "correct horse battery staple\n", "users", "create", "--json", "--username", "ada",
		"--email", "ada@example.com", "--password-stdin", "--email-verified")
	c.mustJSON(&bob, "", "users", "create", "--json", "--username", "bob", "--email", "bob@example.com")

	var page struct {
		Users []userJSON `json:"users"`
		Next  string     `json:"next"`
	}
	c.mustJSON(&page, "", "users", "list", "--json", "--limit", "1")
	if len(page.Users) != 1 || page.Next == "" {
		t.Fatalf("first page %+v", page)
	}
	c.mustJSON(&page, "", "users", "list", "--json", "--q", "ada")
	if len(page.Users) != 1 || page.Users[0].ID != ada.ID || !page.Users[0].HasPassword {
		t.Fatalf("search %+v", page)
	}
	var got userJSON
	for _, ref := range []string{ada.ID, "ada", "ADA@example.com"} {
		c.mustJSON(&got, "", "users", "get", "--json", ref)
		if got.ID != ada.ID || got.Status != "active" {
			t.Fatalf("get %s: %+v", ref, got)
		}
	}
	if _, _, err := c.run("", "users", "get", "nobody"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("get nobody: %v", err)
	}

	if _, _, err := c.run("", "users", "suspend", "ada"); err == nil || !strings.Contains(err.Error(), "--reason") {
		t.Fatalf("suspend without a reason: %v", err)
	}
	for _, step := range []struct {
		args   []string
		status string
	}{
		{[]string{"users", "suspend", "ada", "--reason", "abuse report"}, "suspended"},
		{[]string{"users", "unsuspend", "ada@example.com", "--reason", "cleared"}, "active"},
		{[]string{"users", "delete", ada.ID}, "deleted"},
		{[]string{"users", "restore", "ada"}, "active"},
	} {
		c.mustJSON(&got, "", append(step.args, "--json")...)
		if got.Status != step.status {
			t.Fatalf("%v: status %s, want %s", step.args, got.Status, step.status)
		}
	}
	if _, _, err := c.run("", "users", "delete", "bob", "--hard"); err == nil || !strings.Contains(err.Error(), "--reason") {
		t.Fatalf("hard delete without a reason: %v", err)
	}
	var hard map[string]any
	c.mustJSON(&hard, "", "users", "delete", "bob", "--hard", "--reason", "GDPR request", "--json")
	if hard["deleted"] != "hard" {
		t.Fatalf("hard delete: %v", hard)
	}
	if _, _, err := c.run("", "users", "get", bob.ID); err == nil {
		t.Fatal("a hard-deleted user is still there")
	}
}

// A subcommand's help lists its own flags and the few settings a command
// line needs, not the server's every setting; serve's help lists them all.
func TestCLIHelpPerCommand(t *testing.T) {
	c := newCLIEnv(t)
	for _, args := range [][]string{{"users", "list", "--help"}, {"clients", "create", "--help"}, {"keys", "--help"}, {"--help"}} {
		out, _, err := c.run("", args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, want := range []string{"--database-url", "--config"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: help lacks %s", args, want)
			}
		}
		for _, server := range []string{"--access-token-ttl", "--brand-color", "--smtp-url", "--argon2-memory-kib"} {
			if strings.Contains(out, server) {
				t.Errorf("%v: help lists the server setting %s", args, server)
			}
		}
	}
	out, _, err := c.run("", "serve", "--help")
	if err != nil || !strings.Contains(out, "--access-token-ttl") || !strings.Contains(out, "--brand-color") {
		t.Fatalf("serve --help: %v\n%s", err, out)
	}
	// Settings are still accepted everywhere.
	if _, _, err := c.run("", "users", "list", "--access-token-ttl", "5m"); err != nil {
		t.Fatalf("a setting flag on a subcommand: %v", err)
	}
}
