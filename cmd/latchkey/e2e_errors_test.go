package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/storage/sqlstore"
)

func TestEndToEndClientCredentials(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := startServer(t, dsn, nil)
		ctx := context.Background()
		opaque := s.createClient("--name", "svc", "--grant-type", "client_credentials", "--scope", "api:read api:write")
		jwtc := s.createClient("--name", "svc-jwt", "--grant-type", "client_credentials", "--scope", "api:read", "--access-token-format", "jwt")

		cc := &clientcredentials.Config{ClientID: opaque.ID, ClientSecret: opaque.Secret, TokenURL: s.issuer + "/oauth2/token", Scopes: []string{"api:read"}}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(tok.AccessToken, ".") == 2 {
			t.Fatalf("opaque client got a JWT: %s", tok.AccessToken)
		}
		in := introspect(t, s, opaque, tok.AccessToken)
		if in["active"] != true || in["client_id"] != opaque.ID || in["scope"] != "api:read" {
			t.Fatalf("introspection %v", in)
		}

		// client_secret_post works as well as basic.
		cc.AuthStyle = oauth2.AuthStyleInParams
		if _, err := cc.Token(ctx); err != nil {
			t.Fatalf("client_secret_post: %v", err)
		}

		// A scope the client does not have is refused.
		cc.Scopes = []string{"admin"}
		if _, err := cc.Token(ctx); !isOAuthError(err, "invalid_scope") {
			t.Fatalf("foreign scope: %v", err)
		}

		// RFC 9068 JWT access token, verified against the JWKS.
		jc := &clientcredentials.Config{ClientID: jwtc.ID, ClientSecret: jwtc.Secret, TokenURL: s.issuer + "/oauth2/token", Scopes: []string{"api:read"}}
		jt, err := jc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(jt.AccessToken, ".")
		if len(parts) != 3 {
			t.Fatalf("not a JWT: %s", jt.AccessToken)
		}
		hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
		var h map[string]any
		_ = json.Unmarshal(hdr, &h)
		if h["typ"] != "at+jwt" || h["kid"] == nil {
			t.Fatalf("JWT header %v", h)
		}
		ks := oidc.NewRemoteKeySet(ctx, s.issuer+"/.well-known/jwks.json")
		payload, err := ks.VerifySignature(ctx, jt.AccessToken)
		if err != nil {
			t.Fatalf("JWT signature: %v", err)
		}
		var c map[string]any
		_ = json.Unmarshal(payload, &c)
		if c["client_id"] != jwtc.ID || c["sub"] != jwtc.ID || c["iss"] != s.issuer || c["jti"] == nil || c["exp"] == nil {
			t.Fatalf("JWT claims %v", c)
		}
		if !active(t, s, jwtc, jt.AccessToken) {
			t.Fatal("JWT access token not active in introspection")
		}

		// Wrong secret: 401 invalid_client.
		bad := &clientcredentials.Config{ClientID: opaque.ID, ClientSecret: "wrong", TokenURL: s.issuer + "/oauth2/token"}
		_, err = bad.Token(ctx)
		var re *oauth2.RetrieveError
		if !isOAuthError(err, "invalid_client") || !asRetrieve(err, &re) || re.Response.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %v", err)
		}
	})
}

func asRetrieve(err error, re **oauth2.RetrieveError) bool {
	r, ok := err.(*oauth2.RetrieveError)
	if ok {
		*re = r
	}
	return ok
}

func TestEndToEndRefusals(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := startServer(t, dsn, nil)
		s.createUser("bob", "another fine password")
		ctx := context.Background()
		conf := func(c createdClient) *oauth2.Config {
			return &oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, RedirectURL: callback,
				Endpoint: oauth2.Endpoint{AuthURL: s.issuer + "/oauth2/authorize", TokenURL: s.issuer + "/oauth2/token"},
				Scopes:   []string{"openid", "offline_access"}}
		}

		t.Run("unregistered redirect URI gets a page, not a redirect", func(t *testing.T) {
			c := s.createClient("--name", "app", "--redirect-uri", callback)
			cf := conf(c)
			cf.RedirectURL = "https://evil.example/cb"
			b := newBrowser(t, "https://evil.example")
			p := b.get(cf.AuthCodeURL("state-12345678"))
			if p.status != http.StatusBadRequest || p.loc != "" || !strings.Contains(p.body, "<html") {
				t.Fatalf("got %d loc=%q", p.status, p.loc)
			}
		})

		t.Run("public client without PKCE", func(t *testing.T) {
			c := s.createClient("--name", "spa", "--public", "--redirect-uri", callback)
			b := newBrowser(t, callback)
			p := b.get(conf(c).AuthCodeURL("state-12345678"))
			u, _ := url.Parse(p.loc)
			if u == nil || u.Query().Get("error") != "invalid_request" {
				t.Fatalf("got %d loc=%q", p.status, p.loc)
			}
		})

		t.Run("code replay fails and revokes the first tokens", func(t *testing.T) {
			c := s.createClient("--name", "app2", "--redirect-uri", callback, "--first-party")
			cf := conf(c)
			pkce := oauth2.GenerateVerifier()
			b := newBrowser(t, callback)
			cb := b.signIn(cf.AuthCodeURL("state-12345678", oauth2.S256ChallengeOption(pkce)), "bob", "another fine password")
			code := cb.Query().Get("code")
			tok, err := cf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cf.Exchange(ctx, code, oauth2.VerifierOption(pkce)); !isOAuthError(err, "invalid_grant") {
				t.Fatalf("replayed code: %v", err)
			}
			if active(t, s, c, tok.AccessToken) {
				t.Fatal("tokens of a replayed code are still active")
			}
		})

		t.Run("prompt=none without a session", func(t *testing.T) {
			c := s.createClient("--name", "app3", "--redirect-uri", callback)
			b := newBrowser(t, callback)
			p := b.get(conf(c).AuthCodeURL("state-12345678", oauth2.SetAuthURLParam("prompt", "none"),
				oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			u, _ := url.Parse(p.loc)
			if u == nil || u.Query().Get("error") != "login_required" {
				t.Fatalf("got %d loc=%q", p.status, p.loc)
			}
		})

		t.Run("wrong password shows a generic message", func(t *testing.T) {
			c := s.createClient("--name", "app4", "--redirect-uri", callback)
			b := newBrowser(t, callback)
			p := b.get(conf(c).AuthCodeURL("state-12345678", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			for _, login := range []string{"bob", "nobody"} {
				r := b.post(s.issuer+"/login", url.Values{"csrf_token": {field(t, reCSRF, p.body)},
					"challenge": {field(t, reChallenge, p.body)}, "login": {login}, "password": {"wrong password"}})
				if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Invalid username or password") {
					t.Fatalf("%s: %d", login, r.status)
				}
			}
			// A form without the CSRF token is refused.
			r := b.post(s.issuer+"/login", url.Values{"challenge": {field(t, reChallenge, p.body)},
				"login": {"bob"}, "password": {"another fine password"}})
			if r.status != http.StatusBadRequest {
				t.Fatalf("no csrf: %d", r.status)
			}
		})
	})
}

// TestEndToEndBadInput sends malformed requests to the protocol endpoints:
// each gets an RFC 6749 error and nothing is written.
func TestEndToEndBadInput(t *testing.T) {
	s := startServer(t, "sqlite:"+t.TempDir()+"/db.sqlite", nil)
	c := s.createClient("--name", "svc", "--grant-type", "client_credentials", "--scope", "api")
	basic := func(req *http.Request) { req.SetBasicAuth(c.ID, c.Secret) }
	cases := []struct {
		name, path, ctype, body string
		auth                    func(*http.Request)
		status                  int
		code                    string
	}{
		{"no grant type", "/oauth2/token", "application/x-www-form-urlencoded", "scope=api", basic, 400, "invalid_request"},
		{"unknown grant", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=password&username=a&password=b", basic, 400, "unsupported_grant_type"},
		{"malformed body", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=%zz", basic, 400, "invalid_request"},
		{"JSON body", "/oauth2/token", "application/json", `{"grant_type":"client_credentials"}`, basic, 400, "invalid_request"},
		{"oversized", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&scope=" + strings.Repeat("a", 70<<10), basic, 413, "invalid_request"},
		{"unknown client", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=client_credentials",
			func(r *http.Request) { r.SetBasicAuth("nope", "nope") }, 401, "invalid_client"},
		{"no client auth", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=client_credentials", func(*http.Request) {}, 401, "invalid_client"},
		{"bad code", "/oauth2/token", "application/x-www-form-urlencoded", "grant_type=authorization_code&code=abc.def&redirect_uri=" + url.QueryEscape(callback), basic, 400, "unauthorized_client"},
		{"introspect unauthenticated", "/oauth2/introspect", "application/x-www-form-urlencoded", "token=abc", func(*http.Request) {}, 401, "invalid_client"},
		{"revoke unknown client", "/oauth2/revoke", "application/x-www-form-urlencoded", "token=abc",
			func(r *http.Request) { r.SetBasicAuth("nope", "nope") }, 401, "invalid_client"},
	}
	before := s.tokenRows(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, s.issuer+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ctype)
			tc.auth(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var e struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(body, &e)
			if resp.StatusCode != tc.status || e.Error != tc.code {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, body, tc.status, tc.code)
			}
		})
	}
	if after := s.tokenRows(t); after != before {
		t.Fatalf("bad requests wrote rows: %d → %d", before, after)
	}
}

// tokenRows counts the rows of every token table, through the CLI's store.
func (s *testServer) tokenRows(t *testing.T) int {
	t.Helper()
	a, err := sqlstore.Open(context.Background(), s.env["LATCHKEY_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var n, total int
	for _, table := range []string{"oauth2_access_tokens", "oauth2_refresh_tokens", "oauth2_authorize_codes"} {
		if err := a.DB().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		total += n
	}
	return total
}

func TestEndToEndKeyRotation(t *testing.T) {
	s := startServer(t, "sqlite:"+t.TempDir()+"/db.sqlite", map[string]string{
		"LATCHKEY_KEY_PUBLISH_DELAY": "1s",
		"LATCHKEY_KEY_REFRESH_EVERY": "200ms",
	})
	ctx := context.Background()
	c := s.createClient("--name", "svc", "--grant-type", "client_credentials", "--scope", "api", "--access-token-format", "jwt")
	cc := &clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: s.issuer + "/oauth2/token"}
	before, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.cli("", "keys", "rotate"); err != nil {
		t.Fatal(err)
	}
	kid := func(tok string) string {
		hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		var h map[string]any
		_ = json.Unmarshal(hdr, &h)
		s, _ := h["kid"].(string)
		return s
	}
	// The new key is published first and signs only after the delay.
	deadline := time.Now().Add(20 * time.Second)
	var after *oauth2.Token
	for time.Now().Before(deadline) {
		after, err = cc.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if kid(after.AccessToken) != kid(before.AccessToken) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if kid(after.AccessToken) == kid(before.AccessToken) {
		t.Fatal("rotation never took effect")
	}
	ks := oidc.NewRemoteKeySet(ctx, s.issuer+"/.well-known/jwks.json")
	for _, tok := range []string{before.AccessToken, after.AccessToken} {
		if _, err := ks.VerifySignature(ctx, tok); err != nil {
			t.Fatalf("token with kid %s does not verify after rotation: %v", kid(tok), err)
		}
	}
	if !active(t, s, c, before.AccessToken) {
		t.Fatal("token signed before rotation is no longer active")
	}
}

// Two replicas on one PostgreSQL serve the same JWKS, and a token issued
// by one introspects on the other.
func TestEndToEndReplicas(t *testing.T) {
	dsn := testdb.Postgres(t)
	a := startServer(t, dsn, nil)
	b := startServer(t, dsn, nil)
	get := func(s *testServer) string {
		resp, err := http.Get(s.issuer + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if ja, jb := get(a), get(b); ja != jb {
		t.Fatalf("replicas serve different JWKS:\n%s\n%s", ja, jb)
	}
	c := a.createClient("--name", "svc", "--grant-type", "client_credentials", "--scope", "api")
	cc := &clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: a.issuer + "/oauth2/token"}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !active(t, b, c, tok.AccessToken) {
		t.Fatal("token from replica A is not active on replica B")
	}
}
