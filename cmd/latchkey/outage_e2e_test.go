package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/internal/testdb"
)

// dbProxy forwards TCP to PostgreSQL and can cut the database off from
// the server (refusing new connections and dropping open ones), as a
// failover or a network partition would, then bring it back.
type dbProxy struct {
	t      *testing.T
	addr   string // where the server connects
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	delay  time.Duration // added before each answer from the database
}

// slow makes every answer of the database take d longer (0: normal).
func (p *dbProxy) slow(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

func newDBProxy(t *testing.T, target string) *dbProxy {
	p := &dbProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	p.up("127.0.0.1:0")
	t.Cleanup(p.down)
	return p
}

func (p *dbProxy) up(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *dbProxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	go func() { _, _ = io.Copy(s, c); s.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			p.mu.Lock()
			d := p.delay
			p.mu.Unlock()
			time.Sleep(d)
			if _, werr := c.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	c.Close()
}

func (p *dbProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// While PostgreSQL is unreachable, every endpoint says so — 503 with
// Retry-After, temporarily_unavailable on the protocol endpoints, a "try
// again" page for people, a problem on the admin API — and none tells a
// client its credentials or token are bad (regression: the token
// endpoint answered 401 invalid_client, introspection "active": false).
// Once the database is back, everything works again.
func TestEndToEndDatabaseOutage(t *testing.T) {
	dsn := testdb.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newDBProxy(t, u.Host)
	u.Host = proxy.addr
	s := startServer(t, u.String(), nil)
	ctx := context.Background()
	const pw = "pia's long password"
	s.createUser("pia", pw)
	svc := s.createClient("--name", "svc", "--grant-type", "client_credentials", "--scope", "api:read")
	rp := s.createClient("--name", "App", "--redirect-uri", callback, "--first-party")
	adm := s.createClient("--admin")
	cc := &clientcredentials.Config{ClientID: svc.ID, ClientSecret: svc.Secret, TokenURL: s.issuer + "/oauth2/token"}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admTok, err := (&clientcredentials.Config{ClientID: adm.ID, ClientSecret: adm.Secret, TokenURL: s.issuer + "/oauth2/token",
		Scopes: []string{"admin"}}).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: callback, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"}}
	pkce := oauth2.GenerateVerifier()
	b := newBrowser(t, callback)
	cb := b.signIn(conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), "pia", pw)
	userTok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	loginPage, loginCSRF := newBrowser(t, callback), ""
	_, loginCSRF = loginPage.csrf(s.issuer + "/login")

	type call struct {
		name  string
		req   func() *http.Request
		json  bool // an RFC 6749 error body, else a page or a problem
		admin bool
	}
	form := func(u string, v url.Values, user, pass string) func() *http.Request {
		return func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if user != "" {
				r.SetBasicAuth(user, pass)
			}
			return r
		}
	}
	bearer := func(u, token string) func() *http.Request {
		return func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, u, nil)
			r.Header.Set("Authorization", "Bearer "+token)
			return r
		}
	}
	calls := []call{
		{"token", form(s.issuer+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc.ID, svc.Secret), true, false},
		{"token, unknown client", form(s.issuer+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, "c_nope", "x"), true, false},
		{"refresh-less code exchange", form(s.issuer+"/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"},
			"redirect_uri": {callback}}, rp.ID, rp.Secret), true, false},
		{"introspect", form(s.issuer+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}}, svc.ID, svc.Secret), true, false},
		{"revoke", form(s.issuer+"/oauth2/revoke", url.Values{"token": {tok.AccessToken}}, svc.ID, svc.Secret), true, false},
		{"userinfo", bearer(s.issuer+"/userinfo", userTok.AccessToken), true, false},
		{"account API", bearer(s.issuer+"/account/me", userTok.AccessToken), true, false},
		{"authorize", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, conf.AuthCodeURL(randString(), oauth2.S256ChallengeOption(pkce)), nil)
			return r
		}, false, false},
		{"admin API", bearer(s.admin+"/v1/users", admTok.AccessToken), false, true},
	}
	do := func(c call) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.DefaultTransport.RoundTrip(c.req())
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}

	proxy.down()
	for _, c := range calls {
		resp, body := do(c)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s during the outage: %d (Retry-After %q) %s", c.name, resp.StatusCode, resp.Header.Get("Retry-After"), body)
			continue
		}
		switch {
		case c.json:
			var e struct{ Error string }
			if json.Unmarshal(body, &e); e.Error != "temporarily_unavailable" {
				t.Errorf("%s: body %s", c.name, body)
			}
		case c.admin:
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("%s: content type %s", c.name, ct)
			}
		default:
			if !strings.Contains(string(body), "try again") {
				t.Errorf("%s: page %s", c.name, body)
			}
		}
	}
	// A person signing in sees the "try again" page too.
	p := loginPage.post(s.issuer+"/login", url.Values{"csrf_token": {loginCSRF}, "login": {"pia"}, "password": {pw}})
	if p.status != http.StatusServiceUnavailable || !strings.Contains(p.body, "try again") {
		t.Errorf("sign-in during the outage: %d %s", p.status, p.body)
	}
	for _, line := range strings.Split(s.out.String(), "\n") {
		if strings.Contains(line, "invalid_client") {
			t.Errorf("the log speaks of invalid_client during an outage: %s", line)
		}
	}

	if resp, err := http.Get(s.admin + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	proxy.up(proxy.addr)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, _ := do(calls[0])
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the token endpoint did not recover: %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if in := introspect(t, s, svc, tok.AccessToken); in["active"] != true {
		t.Fatalf("after the outage the token introspects %v", in)
	}
	if resp, err := http.Get(s.admin + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz after the outage: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestEndToEndPoolExhausted: with a slow database and more concurrent
// requests than connections, every request is answered — the ones that
// cannot get a connection within LATCHKEY_REQUEST_TIMEOUT with 503 and
// Retry-After, never a hang — and once the load is gone no goroutine is
// left behind.
func TestEndToEndPoolExhausted(t *testing.T) {
	dsn := testdb.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newDBProxy(t, u.Host)
	u.Host = proxy.addr
	s := startServer(t, u.String(), map[string]string{"LATCHKEY_DB_MAX_OPEN_CONNS": "2", "LATCHKEY_REQUEST_TIMEOUT": "1s"})
	svc := s.createClient("--name", "svc", "--grant-type", "client_credentials", "--scope", "api:read")
	tokenReq := func() (*http.Response, error) {
		r, _ := http.NewRequest(http.MethodPost, s.issuer+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(svc.ID, svc.Secret)
		return (&http.Client{Timeout: 20 * time.Second}).Do(r)
	}
	if resp, err := tokenReq(); err != nil || resp.StatusCode != http.StatusOK { // warm: the client is cached
		t.Fatalf("token before the load: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	http.DefaultClient.CloseIdleConnections()
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()

	proxy.slow(400 * time.Millisecond)
	const n = 24
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range n {
		wg.Go(func() {
			resp, err := tokenReq()
			if err != nil {
				t.Errorf("no answer under pool exhaustion: %v", err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
			switch resp.StatusCode {
			case http.StatusOK:
			case http.StatusServiceUnavailable:
				if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "temporarily_unavailable") {
					t.Errorf("503 without Retry-After or temporarily_unavailable: %s", body)
				}
			default:
				t.Errorf("answer under pool exhaustion: %d %s", resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	proxy.slow(0)
	t.Logf("answers with 2 connections, a 400 ms database and %d concurrent requests: %v", n, codes)
	if codes[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("no request hit the timeout: %v", codes)
	}
	// Goroutines of the load (handlers, queued connection requests) end.
	deadline := time.Now().Add(10 * time.Second)
	for {
		http.DefaultClient.CloseIdleConnections()
		now := runtime.NumGoroutine()
		if now <= before+5 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before the load, %d after it:\n%s", before, now, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp, err := tokenReq(); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("token after the load: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestEndToEndPostgresRestart: PostgreSQL itself restarted (fast
// shutdown, then started again) under load. While it is down every
// request fails fast with 503 and Retry-After — never a hang, never 401 —
// and /readyz says 503; once it is back, service resumes without a
// restart of Latchkey and the tokens issued before are still valid.
func TestEndToEndPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a PostgreSQL cluster")
	}
	pg := testdb.PrivateCluster(t)
	s := startServer(t, pg.DSN, nil)
	svc := s.createClient("--name", "svc", "--grant-type", "client_credentials", "--scope", "api:read")
	hc := &http.Client{Timeout: 15 * time.Second}
	token := func() (int, string, []byte) {
		r, _ := http.NewRequest(http.MethodPost, s.issuer+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(svc.ID, svc.Secret)
		resp, err := hc.Do(r)
		if err != nil {
			t.Errorf("no answer: %v", err) // a hang past the client timeout lands here
			return 0, "", nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), body
	}
	st, _, body := token()
	if st != http.StatusOK {
		t.Fatalf("token before the restart: %d %s", st, body)
	}
	var before struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(body, &before)

	var stop atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				st, retry, body := token()
				mu.Lock()
				codes[st]++
				mu.Unlock()
				switch {
				case st == http.StatusOK:
				case st == http.StatusServiceUnavailable && retry != "":
				case st == 0:
				default:
					t.Errorf("answer during the restart: %d (Retry-After %q) %s", st, retry, body)
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	pg.Stop()
	// Down: the load sees 503s, readiness says so.
	waitStatus(t, s.admin+"/readyz", http.StatusServiceUnavailable, 10*time.Second, "with PostgreSQL down")
	time.Sleep(time.Second)
	pg.Start(t)
	waitStatus(t, s.admin+"/readyz", http.StatusOK, 30*time.Second, "after PostgreSQL came back")
	mu.Lock()
	ok0 := codes[http.StatusOK]
	mu.Unlock()
	// Service resumes: the load gets tokens again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		ok := codes[http.StatusOK]
		mu.Unlock()
		if ok > ok0+10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tokens are not issued again after the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("answers through a PostgreSQL restart: %v", codes)
	if codes[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("no 503 while PostgreSQL was down: %v", codes)
	}
	if !active(t, s, svc, before.AccessToken) {
		t.Fatal("a token issued before the restart is gone")
	}
}

// waitStatus polls GET u until it answers want, failing t after timeout.
func waitStatus(t *testing.T, u string, want int, timeout time.Duration, when string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %d %s", u, want, when)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
