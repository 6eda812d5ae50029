package federation

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/provider/federation/federationtest"
	"golang.org/x/oauth2"
)

func testConfig(op *federationtest.OP) Config {
	return Config{ID: "up", Name: "Upstream", Issuer: op.Issuer, ClientID: federationtest.Client, ClientSecret: federationtest.Secret,
		RedirectURL: "https://latchkey.example/federation/up/callback", Scopes: []string{"openid", "email", "profile"}}
}

func openOP(t *testing.T, op *federationtest.OP, mod func(*Config)) *OIDC {
	t.Helper()
	cfg := testConfig(op)
	if mod != nil {
		mod(&cfg)
	}
	c, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestOpenErrorsNameTheUpstreamAndTheCause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	_, err = Open(context.Background(), Config{ID: "corp", Issuer: dead, ClientID: "x", RedirectURL: "https://a.example/cb"})
	if err == nil || !strings.Contains(err.Error(), `upstream "corp"`) || !strings.Contains(err.Error(), "discovery at "+dead) {
		t.Fatalf("unreachable issuer: %v", err)
	}

	op := federationtest.New(t)
	cfg := testConfig(op)
	cfg.Issuer = strings.Replace(op.Issuer, "127.0.0.1", "localhost", 1)
	_, err = Open(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), `upstream "up": issuer mismatch`) || !strings.Contains(err.Error(), op.Issuer) {
		t.Fatalf("issuer mismatch: %v", err)
	}

	for _, bad := range []Config{
		{ID: "x", Issuer: "not a url", ClientID: "c", RedirectURL: "https://a/cb"},
		{ID: "x", Issuer: op.Issuer, RedirectURL: "https://a/cb"},
		{ID: "x", Issuer: op.Issuer, ClientID: "c", RedirectURL: "/relative"},
		{Issuer: op.Issuer, ClientID: "c", RedirectURL: "https://a/cb"},
	} {
		if _, err := Open(context.Background(), bad); err == nil {
			t.Errorf("Open(%+v) succeeded", bad)
		}
	}
}

func TestAuthCodeURL(t *testing.T) {
	op := federationtest.New(t)
	verifier := oauth2.GenerateVerifier()
	u, _ := url.Parse(openOP(t, op, nil).AuthCodeURL("st", "no", verifier, AuthParams{}))
	q := u.Query()
	want := map[string]string{"state": "st", "nonce": "no", "client_id": "rp", "response_type": "code",
		"code_challenge_method": "S256", "code_challenge": oauth2.S256ChallengeFromVerifier(verifier),
		"scope": "openid email profile", "redirect_uri": "https://latchkey.example/federation/up/callback"}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if u.Path != "/auth" || q.Has("hd") || q.Has("prompt") || q.Has("max_age") {
		t.Errorf("authorization URL %s", u)
	}

	one := openOP(t, op, func(c *Config) { c.HostedDomains = []string{"example.com"}; c.Scopes = []string{"email"} })
	zero := 0
	u, _ = url.Parse(one.AuthCodeURL("st", "no", verifier, AuthParams{ForceLogin: true, MaxAge: &zero}))
	if u.Query().Get("hd") != "example.com" || u.Query().Get("prompt") != "login" || u.Query().Get("scope") != "openid email" ||
		u.Query().Get("max_age") != "0" {
		t.Errorf("one hosted domain, prompt=login, max_age, openid added: %s", u)
	}
	two := openOP(t, op, func(c *Config) { c.HostedDomains = []string{"a.example", "b.example"} })
	if u, _ := url.Parse(two.AuthCodeURL("st", "no", verifier, AuthParams{})); u.Query().Has("hd") {
		t.Errorf("two hosted domains send hd: %s", u)
	}
	g := GoogleConfig("id", "secret", []string{"corp.example"})
	if g.Issuer != GoogleIssuer || g.ID != "google" || g.Name != "Google" || g.LoginPrompt != "select_account" ||
		strings.Join(g.Scopes, " ") != "openid email profile" || g.HostedDomains[0] != "corp.example" {
		t.Errorf("GoogleConfig = %+v", g)
	}
}

func TestExchange(t *testing.T) {
	op := federationtest.New(t)
	ctx := context.Background()
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		name    string
		mod     func(c map[string]any)
		setup   func(op *federationtest.OP)
		cfg     func(c *Config)
		nonce   string // sent; the token carries "n-1" unless mod changes it
		wantErr error
		check   func(t *testing.T, id Identity)
	}{
		{name: "valid", check: func(t *testing.T, id Identity) {
			want := Identity{Subject: "u-1", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace",
				Username: "ada", PictureURL: "https://img.example.com/ada.png"}
			if id != want {
				t.Errorf("identity %+v, want %+v", id, want)
			}
		}},
		{name: "nonce mismatch", nonce: "n-other", wantErr: ErrInvalid},
		{name: "no nonce in the token", mod: func(c map[string]any) { delete(c, "nonce") }, wantErr: ErrInvalid},
		{name: "foreign audience", mod: func(c map[string]any) { c["aud"] = "someone-else" }, wantErr: ErrInvalid},
		{name: "expired", mod: func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }, wantErr: ErrInvalid},
		{name: "other issuer", mod: func(c map[string]any) { c["iss"] = "https://evil.example" }, wantErr: ErrInvalid},
		{name: "bad signature", setup: func(op *federationtest.OP) { op.SignWith = other }, wantErr: ErrInvalid},
		{name: "code refused", setup: func(op *federationtest.OP) { op.TokenCode = http.StatusBadRequest }, wantErr: ErrInvalid},
		{name: "token endpoint down", setup: func(op *federationtest.OP) { op.TokenCode = http.StatusServiceUnavailable }, wantErr: ErrUnavailable},
		{name: "email_verified as a string", mod: func(c map[string]any) { c["email_verified"] = "true" },
			check: func(t *testing.T, id Identity) {
				if !id.EmailVerified {
					t.Error("email_verified \"true\" not read as true")
				}
			}},
		{name: "email not verified", mod: func(c map[string]any) { c["email_verified"] = "false" },
			check: func(t *testing.T, id Identity) {
				if id.EmailVerified {
					t.Error("email_verified \"false\" read as true")
				}
			}},
		{name: "claim names", cfg: func(c *Config) {
			c.Claims = ClaimNames{Username: "login", Name: "display", Picture: "avatar", HostedDomain: "org"}
			c.HostedDomains = []string{"Example.COM"}
		}, mod: func(c map[string]any) {
			c["login"], c["display"], c["avatar"], c["org"] = "ada-l", "Ada L.", "http://insecure.example/a.png", "example.com"
		}, check: func(t *testing.T, id Identity) {
			if id.Username != "ada-l" || id.Name != "Ada L." || id.PictureURL != "" || id.HostedDomain != "example.com" {
				t.Errorf("mapped %+v", id)
			}
		}},
		{name: "hosted domain missing", cfg: func(c *Config) { c.HostedDomains = []string{"example.com"} }, wantErr: ErrRefused},
		{name: "hosted domain other", cfg: func(c *Config) { c.HostedDomains = []string{"example.com"} },
			mod: func(c map[string]any) { c["hd"] = "example.org" }, wantErr: ErrRefused},
		{name: "hosted domain allowed", cfg: func(c *Config) { c.HostedDomains = []string{"a.example", "example.com"} },
			mod: func(c map[string]any) { c["hd"] = "example.com" }},
		{name: "claims from userinfo", mod: func(c map[string]any) { delete(c, "email"); delete(c, "email_verified"); delete(c, "name") },
			setup: func(op *federationtest.OP) {
				op.Userinfo = map[string]any{"sub": "u-1", "email": "ada@example.com", "email_verified": true, "name": "From Userinfo"}
			}, check: func(t *testing.T, id Identity) {
				if id.Email != "ada@example.com" || !id.EmailVerified || id.Name != "From Userinfo" {
					t.Errorf("userinfo claims %+v", id)
				}
			}},
		{name: "userinfo of someone else", mod: func(c map[string]any) { delete(c, "email") },
			setup: func(op *federationtest.OP) { op.Userinfo = map[string]any{"sub": "u-2", "email": "eve@example.com"} }, wantErr: ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := openOP(t, op, tc.cfg)
			op.Set(func(op *federationtest.OP) {
				op.Claims, op.SignWith, op.TokenCode, op.Userinfo = op.IDClaims("n-1"), nil, 0, nil
				if tc.mod != nil {
					tc.mod(op.Claims)
				}
				if tc.setup != nil {
					tc.setup(op)
				}
			})
			nonce := tc.nonce
			if nonce == "" {
				nonce = "n-1"
			}
			id, err := c.Exchange(ctx, "code-1", "verifier-1", nonce)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			op.Set(func(op *federationtest.OP) {
				if op.LastForm.Get("code_verifier") != "verifier-1" || op.LastForm.Get("code") != "code-1" {
					t.Errorf("token request %v", op.LastForm)
				}
			})
			if tc.check != nil {
				tc.check(t, id)
			}
		})
	}

	t.Run("upstream unreachable", func(t *testing.T) {
		op2 := federationtest.New(t)
		c := openOP(t, op2, nil)
		op2.Close()
		if _, err := c.Exchange(ctx, "code", "v", "n"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no code", func(t *testing.T) {
		if _, err := openOP(t, op, nil).Exchange(ctx, "", "v", "n"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestHostedDomainRule(t *testing.T) {
	for _, tc := range []struct {
		hd      string
		allowed []string
		ok      bool
	}{
		{"", nil, true},
		{"anything.example", nil, true},
		{"example.com", []string{"example.com"}, true},
		{"EXAMPLE.com", []string{"example.com"}, true},
		{"b.example", []string{"a.example", "b.example"}, true},
		{"", []string{"example.com"}, false},
		{"example.org", []string{"example.com"}, false},
		{"sub.example.com", []string{"example.com"}, false},
	} {
		err := checkHostedDomain(tc.hd, tc.allowed)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrRefused)) {
			t.Errorf("hd %q, allowed %v: %v", tc.hd, tc.allowed, err)
		}
	}
	msg := RefusalMessage(checkHostedDomain("", []string{"example.com"}))
	if !strings.HasPrefix(msg, "This account does not belong") || !strings.Contains(msg, "example.com") || strings.Contains(msg, "refused") {
		t.Errorf("refusal message %q", msg)
	}
}

func TestMapClaimsDefaults(t *testing.T) {
	id, err := mapClaims("s", map[string]any{"email": " a@example.com ", "email_verified": 1.0, "name": 42,
		"preferred_username": "a", "picture": "https://x.example/p.png", "hd": "example.com"}, ClaimNames{})
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{Subject: "s", Email: "a@example.com", Username: "a", PictureURL: "https://x.example/p.png", HostedDomain: "example.com"}
	if id != want {
		t.Errorf("mapClaims = %+v, want %+v", id, want)
	}
}
