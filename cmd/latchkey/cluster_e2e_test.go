package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/mail/mailtest"
	"github.com/latchkey/latchkey/internal/testdb"
)

// The cluster tests run real `latchkey serve` processes, built once from
// this package, on one PostgreSQL database: what must hold across
// replicas (limits, lockout, email, keys) and across a kill -9.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// latchkeyBinary builds the server once per test run.
func latchkeyBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "latchkey-cluster-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "latchkey")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// replica is one server process.
type replica struct {
	t      *testing.T
	name   string
	public string // http://127.0.0.1:PORT
	admin  string
	env    map[string]string
	cmd    *exec.Cmd
	out    *lockedWriter
	exited chan error
}

// startReplica starts a server process with env (LATCHKEY_* settings) on
// fresh ports (or pub, when given) and waits until it is ready.
func startReplica(t *testing.T, name string, env map[string]string, pub string) *replica {
	t.Helper()
	if pub == "" {
		pub = freePort(t)
	}
	adm := freePort(t)
	r := &replica{t: t, name: name, public: "http://" + pub, admin: "http://" + adm, env: map[string]string{},
		out: &lockedWriter{}, exited: make(chan error, 1)}
	for k, v := range env {
		r.env[k] = v
	}
	r.env["LATCHKEY_HTTP_ADDR"], r.env["LATCHKEY_ADMIN_ADDR"] = pub, adm
	if r.env["LATCHKEY_ISSUER"] == "" {
		r.env["LATCHKEY_ISSUER"] = r.public
	}
	if r.env["LATCHKEY_DATA_DIR"] == "" {
		r.env["LATCHKEY_DATA_DIR"] = t.TempDir()
	}
	r.cmd = exec.Command(latchkeyBinary(t), "serve")
	r.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range r.env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exited <- r.cmd.Wait() }()
	t.Cleanup(func() { r.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(r.admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		select {
		case err := <-r.exited:
			r.exited <- err
			t.Fatalf("%s exited at start: %v\n%s", name, err, r.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become ready:\n%s", name, r.out.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// kill sends SIGKILL (kill -9) and waits for the process to go.
func (r *replica) kill() {
	if r.cmd.ProcessState != nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case err := <-r.exited:
		r.exited <- err
	case <-time.After(10 * time.Second):
		r.t.Errorf("%s did not die", r.name)
	}
}

// cli runs a latchkey command against the cluster's database in-process.
func clusterCLI(t *testing.T, env map[string]string, stdin string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	if err := run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errOut); err != nil {
		t.Fatalf("latchkey %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

func clusterClient(t *testing.T, env map[string]string, args ...string) createdClient {
	t.Helper()
	var c createdClient
	out := clusterCLI(t, env, "", append([]string{"clients", "create", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("clients create: %q: %v", out, err)
	}
	return c
}

func clusterEnv(t *testing.T, dsn string, smtp *mailtest.Server, extra map[string]string) map[string]string {
	env := map[string]string{
		"LATCHKEY_DATABASE_URL":      dsn,
		"LATCHKEY_SECRET":            "cluster-test-secret-cluster-test-secret-01",
		"LATCHKEY_ARGON2_MEMORY_KIB": "8192",
		"LATCHKEY_ARGON2_ITERATIONS": "1",
		"LATCHKEY_LOG_LEVEL":         "warn",
		"LATCHKEY_SMTP_URL":          smtp.URL(),
		"LATCHKEY_DATA_DIR":          t.TempDir(),
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// postForm posts without a cookie jar (load generators).
func postForm(c *http.Client, u string, v url.Values, user, pass string) (int, []byte, error) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body, nil
}

// TestClusterThreeReplicas: three processes on one database behave as one
// server: sign in on A, refresh on B, revoke on C, introspect on A; a key
// rotated on A is in B's JWKS within the refresh interval; a per-IP
// sign-in limit of N allows exactly N attempts across the three; a lockout
// holds on all of them; a reset request sends one email.
func TestClusterThreeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three server processes")
	}
	const ipLimit = 8
	smtp := mailtest.NewServer(t)
	pubA := freePort(t)
	env := clusterEnv(t, testdb.Postgres(t), smtp, map[string]string{
		// One issuer, as behind a load balancer.
		"LATCHKEY_ISSUER":            "http://" + pubA,
		"LATCHKEY_RATE_LOGIN_IP":     fmt.Sprintf("%d/1h", ipLimit),
		"LATCHKEY_LOCKOUT_THRESHOLD": "3",
		"LATCHKEY_KEY_REFRESH_EVERY": "1s",
	})
	a := startReplica(t, "A", env, pubA)
	var b, c *replica
	var wg sync.WaitGroup
	wg.Go(func() { b = startReplica(t, "B", env, "") })
	wg.Go(func() { c = startReplica(t, "C", env, "") })
	wg.Wait()
	if b == nil || c == nil {
		t.FailNow()
	}
	replicas := []*replica{a, b, c}
	ctx := context.Background()

	const pw = "ada's long password"
	clusterCLI(t, env, pw+"\n", "users", "create", "--username", "ada", "--email", "ada@example.com", "--password-stdin", "--email-verified")
	clusterCLI(t, env, pw+"\n", "users", "create", "--username", "victim", "--email", "victim@example.com", "--password-stdin", "--email-verified")
	rp := clusterClient(t, env, "--name", "App", "--redirect-uri", callback, "--first-party",
		"--grant-type", "authorization_code", "--grant-type", "refresh_token", "--scope", "openid offline_access")
	adm := clusterClient(t, env, "--admin")
	allowed := 0 // sign-in attempts (POST /login) answered other than 429, on all replicas

	// Sign in on A, refresh on B, revoke on C, introspect on A.
	conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback, Scopes: []string{"openid", "offline_access"},
		Endpoint: oauth2.Endpoint{AuthURL: a.public + "/oauth2/authorize", TokenURL: a.public + "/oauth2/token"}}
	pkce := oauth2.GenerateVerifier()
	br := newBrowser(t, callback)
	cb := br.signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), "ada", pw)
	allowed++
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("code exchange on A: %v %+v", err, tok)
	}
	confB := *conf
	confB.Endpoint.TokenURL = b.public + "/oauth2/token"
	refreshed, err := confB.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
	if err != nil || refreshed.AccessToken == tok.AccessToken {
		t.Fatalf("refresh on B: %v", err)
	}
	introspectOn := func(r *replica, token string) map[string]any {
		t.Helper()
		st, body, err := postForm(http.DefaultClient, r.public+"/oauth2/introspect", url.Values{"token": {token}}, rp.ID, rp.Secret)
		if err != nil || st != http.StatusOK {
			t.Fatalf("introspect on %s: %d %v %s", r.name, st, err, body)
		}
		var out map[string]any
		_ = json.Unmarshal(body, &out)
		return out
	}
	if in := introspectOn(a, refreshed.AccessToken); in["active"] != true || in["sub"] == nil {
		t.Fatalf("B's access token on A: %v", in)
	}
	if st, body, err := postForm(http.DefaultClient, c.public+"/oauth2/revoke", url.Values{"token": {refreshed.RefreshToken}}, rp.ID, rp.Secret); err != nil || st != http.StatusOK {
		t.Fatalf("revoke on C: %d %v %s", st, err, body)
	}
	if in := introspectOn(a, refreshed.AccessToken); in["active"] != false {
		t.Fatalf("after revocation on C, A says %v", in)
	}
	if _, err := confB.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshed.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token(); err == nil {
		t.Fatal("B refreshed a refresh token revoked on C")
	}

	// A key rotated on A is published by B within its refresh interval.
	admTok, err := (&clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret, TokenURL: a.public + "/oauth2/token",
		Scopes: []string{"admin"}}).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, a.admin+"/v1/keys/rotate", nil)
	req.Header.Set("Authorization", "Bearer "+admTok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rotated struct {
		Keys []struct {
			Kid string `json:"id"`
		} `json:"keys"`
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(raw, &rotated); resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK || err != nil || len(rotated.Keys) == 0 {
		t.Fatalf("rotate on A: %d %s", resp.StatusCode, raw)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(b.public + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		jwks, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(jwks, []byte(`"`+rotated.Keys[0].Kid+`"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B's JWKS does not list key %s rotated on A:\n%s", rotated.Keys[0].Kid, jwks)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Sign-in attempts, each on the next replica, from one browser.
	login := func(r *replica, user, password string) int {
		t.Helper()
		lb := newBrowser(t, callback)
		_, csrf := lb.csrf(r.public + "/login")
		p := lb.post(r.public+"/login", url.Values{"csrf_token": {csrf}, "login": {user}, "password": {password}})
		if p.status != http.StatusTooManyRequests {
			allowed++
		}
		return p.status
	}
	// The lockout holds across replicas: three failures, one on each, lock
	// the account; the right password is then refused on A too.
	for _, r := range replicas {
		if st := login(r, "victim", "wrong password"); st != http.StatusUnauthorized {
			t.Fatalf("wrong password on %s: %d", r.name, st)
		}
	}
	if st := login(a, "victim", pw); st != http.StatusUnauthorized {
		t.Fatalf("the locked account signed in on A: %d", st)
	}
	smtp.Wait(t, "victim@example.com", "Sign-in temporarily locked", 15*time.Second)

	// The per-IP limit holds for the cluster: exactly ipLimit attempts in
	// all, wherever they land.
	for i := 0; allowed < ipLimit+2 && i < 3*ipLimit; i++ {
		st := login(replicas[i%3], "nobody", "x")
		if st == http.StatusTooManyRequests {
			break
		}
	}
	if allowed != ipLimit {
		t.Fatalf("%d sign-in attempts were answered across the three replicas; the limit is %d", allowed, ipLimit)
	}
	for _, r := range replicas {
		if st := login(r, "ada", pw); st != http.StatusTooManyRequests {
			t.Fatalf("%s answered %d past the shared limit", r.name, st)
		}
	}

	// One reset request, one email, although three outboxes watch it.
	fb := newBrowser(t, callback)
	if p := fb.submit(b.public, "/forgot-password", url.Values{"email": {"ada@example.com"}}); p.status != http.StatusOK {
		t.Fatalf("forgot-password on B: %d %s", p.status, p.body)
	}
	smtp.Wait(t, "ada@example.com", "Reset your password", 15*time.Second)
	time.Sleep(3 * time.Second) // three poll intervals of every replica's workers
	n := 0
	for _, m := range smtp.Messages() {
		if strings.Contains(m.Subject, "Reset your password") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d reset emails for one request", n)
	}
	if locks := strings.Count(strings.Join(subjects(smtp), "\n"), "Sign-in temporarily locked"); locks != 1 {
		t.Fatalf("%d lockout notices for one lockout", locks)
	}
}

func subjects(s *mailtest.Server) []string {
	var out []string
	for _, m := range s.Messages() {
		out = append(out, m.Subject)
	}
	return out
}

// TestClusterKillNine: a server killed with SIGKILL under load loses
// nothing it acknowledged: every token it issued introspects active after
// a restart, and every registration it answered gets its email, sent by
// the restarted process from the outbox.
func TestClusterKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a server process")
	}
	smtp := mailtest.NewServer(t)
	env := clusterEnv(t, testdb.Postgres(t), smtp, map[string]string{
		"LATCHKEY_RATE_REGISTER": "off",
		"LATCHKEY_RATE_EMAIL":    "off",
	})
	pub := freePort(t)
	a := startReplica(t, "A", env, pub)
	svc := clusterClient(t, env, "--name", "svc", "--grant-type", "client_credentials", "--scope", "api:read")

	var (
		mu         sync.Mutex
		tokens     []string
		registered []string
		stop       atomic.Bool
		wg         sync.WaitGroup
	)
	hc := &http.Client{Timeout: 10 * time.Second}
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				st, body, err := postForm(hc, a.public+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc.ID, svc.Secret)
				if err != nil || st != http.StatusOK {
					continue // not acknowledged
				}
				var tok struct {
					AccessToken string `json:"access_token"`
				}
				if json.Unmarshal(body, &tok) == nil && tok.AccessToken != "" {
					mu.Lock()
					tokens = append(tokens, tok.AccessToken)
					mu.Unlock()
				}
			}
		})
	}
	var seq atomic.Int64
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				if err := registerOnce(a.public, fmt.Sprintf("reg%d", seq.Add(1)), &mu, &registered); err != nil && !stop.Load() {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	a.kill()
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	gotTokens, gotRegs := append([]string(nil), tokens...), append([]string(nil), registered...)
	mu.Unlock()
	if len(gotTokens) == 0 || len(gotRegs) == 0 {
		t.Fatalf("the load did not get going: %d tokens, %d registrations", len(gotTokens), len(gotRegs))
	}
	t.Logf("acknowledged before kill -9: %d tokens, %d registrations", len(gotTokens), len(gotRegs))

	a2 := startReplica(t, "A again", env, pub)
	for _, tok := range gotTokens {
		st, body, err := postForm(hc, a2.public+"/oauth2/introspect", url.Values{"token": {tok}}, svc.ID, svc.Secret)
		if err != nil || st != http.StatusOK || !bytes.Contains(body, []byte(`"active":true`)) {
			t.Fatalf("an acknowledged token is gone after kill -9: %d %v %s", st, err, body)
		}
	}
	// An email the killed process had claimed is due again when its lease
	// (mail.DefaultOutboxLease) ends.
	for _, email := range gotRegs {
		smtp.Wait(t, email, "Welcome", mail.DefaultOutboxLease+30*time.Second)
	}
}

// registerOnce registers username through the page, as a person would,
// and records the address when the server acknowledged it.
func registerOnce(base, username string, mu *sync.Mutex, registered *[]string) error {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.Get(base + "/register")
	if err != nil {
		return err
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := reCSRF.FindSubmatch(page)
	if m == nil {
		return errors.New("no form")
	}
	email := username + "@example.com"
	form := url.Values{"csrf_token": {string(m[1])}, "email": {email}, "username": {username}, "display_name": {username},
		"password": {"a fine long password"}, "password_confirm": {"a fine long password"}}
	resp, err = c.PostForm(base+"/register", form)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("register: %d", resp.StatusCode)
	}
	mu.Lock()
	*registered = append(*registered, email)
	mu.Unlock()
	return nil
}

// TestClusterGracefulStop: on SIGTERM /readyz turns 503 first, the request
// in flight finishes, and the process exits within the shutdown timeout.
func TestClusterGracefulStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	smtp := mailtest.NewServer(t)
	env := clusterEnv(t, testdb.SQLite(t), smtp, map[string]string{
		"LATCHKEY_SHUTDOWN_DELAY":   "1s",
		"LATCHKEY_SHUTDOWN_TIMEOUT": "10s",
	})
	a := startReplica(t, "A", env, "")
	// A request in flight when the signal comes: a password sign-in (an
	// argon2id hash) started just before.
	clusterCLI(t, env, "a long enough password\n", "users", "create", "--username", "zed", "--email", "zed@example.com", "--password-stdin")
	lb := newBrowser(t, callback)
	_, csrf := lb.csrf(a.public + "/login")
	inFlight := make(chan int, 1)
	start := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() {
		req, _ := http.NewRequest(http.MethodPost, a.public+"/login", strings.NewReader(url.Values{"csrf_token": {csrf},
			"login": {"zed"}, "password": {"a long enough password"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := lb.c.Do(req)
		if err != nil {
			inFlight <- 0
			return
		}
		resp.Body.Close()
		inFlight <- resp.StatusCode
	}()
	// During the delay: not ready, still serving.
	sawDraining := false
	for time.Since(start) < 800*time.Millisecond {
		resp, err := http.Get(a.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				sawDraining = true
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawDraining {
		t.Fatal("/readyz did not turn 503 after SIGTERM")
	}
	if st := <-inFlight; st != http.StatusSeeOther && st != http.StatusOK {
		t.Fatalf("the sign-in in flight at SIGTERM got %d", st)
	}
	select {
	case err := <-a.exited:
		a.exited <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, a.out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15 s after SIGTERM with a 10 s shutdown timeout")
	}
}
