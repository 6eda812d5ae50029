package main

// openid-client v6 (and its passport Strategy), the Node.js library, run
// for real against the in-process server: the harness under
// testdata/openid-client does discovery, builds the authorization request
// (PKCE S256, no state, no nonce: what the Strategy sends when discovery
// advertises S256), redeems the code and validates the ID token (issuer,
// audience, iss on the response per RFC 9207, no unexpected state) and
// calls userinfo. This test plays the browser.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testdb"
)

// nodeHarness returns a directory holding the files of testdata/NAME and
// their node_modules, installed with `npm ci` from the committed lock
// file. The install is cached (by the files' hash) under the user cache
// directory, so only the first run needs the registry. It skips the test
// when node or npm is missing or node is older than 20.
func nodeHarness(t *testing.T, name string) string {
	t.Helper()
	node, nerr := exec.LookPath("node")
	npm, perr := exec.LookPath("npm")
	if nerr != nil || perr != nil {
		t.Skip("skipping: node and npm (Node.js 20 or later) are needed to run openid-client; .ci/run installs them")
	}
	out, err := exec.Command(node, "-p", "process.versions.node").Output()
	if err != nil {
		t.Skipf("skipping: node does not run: %v", err)
	}
	if major, _ := strconv.Atoi(strings.SplitN(strings.TrimSpace(string(out)), ".", 2)[0]); major < 20 {
		t.Skipf("skipping: openid-client v6 needs Node.js 20 or later, found %s", strings.TrimSpace(string(out)))
	}

	src := filepath.Join("testdata", name)
	files := []string{"package.json", "package-lock.json", "harness.mjs"}
	h := sha256.New()
	contents := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		contents[f] = b
		h.Write([]byte(f))
		h.Write(b)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	root := filepath.Join(base, "latchkey-test")
	dir := filepath.Join(root, name+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil {
		return dir
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	// Installed beside the final directory and renamed into place, so a
	// failed or concurrent install never leaves a half-filled cache.
	tmp, err := os.MkdirTemp(root, "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for f, b := range contents {
		if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", src, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); statErr != nil {
			t.Fatalf("caching the install: %v", err)
		}
	}
	return dir
}

// startHarness runs the openid-client relying party on addr and waits
// until it has done discovery and listens.
func startHarness(t *testing.T, dir string, env map[string]string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", "harness.mjs")
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr lockedWriter
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("harness stderr:\n%s", stderr.String())
		}
	})
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && !strings.Contains(line, `"ready":true`) {
			err = errors.New("unexpected output: " + line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("openid-client harness did not start: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("openid-client harness did not start in time\n%s", stderr.String())
	}
}

func TestOpenIDClientPassportInterop(t *testing.T) {
	dir := nodeHarness(t, "openid-client")
	s := startServer(t, testdb.SQLite(t), nil)
	s.createUser("pat", "passport password 42")
	addr := freePort(t)
	rpCallback := "http://" + addr + "/callback"
	rp := s.createClient("--name", "Passport App", "--redirect-uri", rpCallback, "--first-party")
	startHarness(t, dir, map[string]string{"ISSUER": s.issuer, "CLIENT_ID": rp.ID, "CLIENT_SECRET": rp.Secret, "ADDR": addr})

	// The request exactly as the Strategy builds it.
	b := newBrowser(t, rpCallback)
	resp, _ := b.once(http.MethodGet, "http://"+addr+"/start", nil)
	authz, err := resp.Location()
	if err != nil || !strings.HasPrefix(authz.String(), s.issuer+"/oauth2/authorize?") {
		t.Fatalf("the Strategy did not redirect to the authorization endpoint: %d %v", resp.StatusCode, err)
	}
	q := authz.Query()
	if _, has := q["state"]; has || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		t.Fatalf("not the request shape this test is about (no state, PKCE S256): %s", authz)
	}

	cb := b.signIn(authz.String(), "pat", "passport password 42")
	if cb.Query().Get("code") == "" {
		t.Fatalf("Latchkey refused the Strategy's request: %s", cb)
	}

	// The callback: openid-client redeems the code and validates
	// everything; its answer is what the library verified.
	res, err := http.Get(cb.String())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("openid-client refused the response: %d %s", res.StatusCode, raw)
	}
	var got struct {
		Claims struct {
			Iss               string      `json:"iss"`
			Sub               string      `json:"sub"`
			Aud               interface{} `json:"aud"`
			Exp, Iat          int64
			AuthTime          int64  `json:"auth_time"`
			UpdatedAt         int64  `json:"updated_at"`
			PreferredUsername string `json:"preferred_username"`
			Email             string `json:"email"`
		} `json:"claims"`
		Userinfo struct {
			Sub       string `json:"sub"`
			UpdatedAt int64  `json:"updated_at"`
			Email     string `json:"email"`
		} `json:"userinfo"`
		Token struct {
			TokenType string `json:"token_type"`
			ExpiresIn int64  `json:"expires_in"`
		} `json:"token"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("harness answer %s: %v", raw, err)
	}
	c := got.Claims
	if c.Iss != s.issuer || c.Sub == "" || c.PreferredUsername != "pat" || c.Email != "pat@example.com" ||
		c.AuthTime == 0 || c.UpdatedAt == 0 || c.Exp <= c.Iat {
		t.Errorf("verified claims %+v", c)
	}
	if got.Userinfo.Sub != c.Sub || got.Userinfo.UpdatedAt != c.UpdatedAt || got.Userinfo.Email != c.Email {
		t.Errorf("userinfo %+v, ID token %+v", got.Userinfo, c)
	}
	if !strings.EqualFold(got.Token.TokenType, "bearer") || got.Token.ExpiresIn <= 0 {
		t.Errorf("token response %+v", got.Token)
	}
}
