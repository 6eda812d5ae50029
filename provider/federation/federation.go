// Package federation holds the upstream identity providers Latchkey signs
// people in with ("Continue with Google"), behind the small Connector
// interface: a generic OpenID Connect connector built on go-oidc
// (discovery, ID token verification) and x/oauth2 (PKCE, code exchange),
// a Google preset, and the claims mapping. It has no HTTP handlers: the
// /federation/… pages are a front-end (login-ui/federation), like Dex's
// server in front of its connector package.
package federation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// GoogleIssuer is Google's OpenID Connect issuer.
const GoogleIssuer = "https://accounts.google.com"

// Errors of Exchange, by what the handler tells the person. Each returned
// error wraps exactly one of them and says what happened.
var (
	// ErrUnavailable: the upstream could not be reached, or answered with
	// a server error.
	ErrUnavailable = errors.New("upstream unavailable")
	// ErrInvalid: the code was refused or the ID token failed
	// verification (signature, issuer, audience, expiry, nonce).
	ErrInvalid = errors.New("invalid upstream response")
	// ErrRefused: the identity is genuine but not admitted here (hosted
	// domain). The wrapping error's text after ": " is safe to show.
	ErrRefused = errors.New("upstream identity refused")
)

// ClaimNames names the upstream claims the connector reads; empty fields
// take the OpenID Connect / Google names.
type ClaimNames struct {
	Username     string // default preferred_username
	Name         string // default name
	Picture      string // default picture
	HostedDomain string // default hd
}

func (c *ClaimNames) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Username, "preferred_username")
	def(&c.Name, "name")
	def(&c.Picture, "picture")
	def(&c.HostedDomain, "hd")
}

// Config describes one upstream provider.
type Config struct {
	ID           string // path segment: /federation/ID/…; also the identity's upstream name
	Name         string // shown on the button: "Continue with NAME"
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string // ISSUER/federation/ID/callback
	Scopes       []string
	// HostedDomains, when set, admits only identities whose hosted-domain
	// claim is one of them; an identity without the claim is refused.
	HostedDomains []string
	Claims        ClaimNames
	// LoginPrompt is the prompt value sent upstream when the relying
	// party asked for a fresh sign-in (prompt=login): "login" by default;
	// Google does not accept it, so its preset uses "select_account".
	LoginPrompt string
	// HTTPClient talks to the upstream (discovery, keys, token, userinfo);
	// nil means a client with a 15 s timeout.
	HTTPClient *http.Client
}

// GoogleConfig is the preset for Google: its issuer, the scopes
// openid email profile, and hostedDomains (Google Workspace domains, the
// hd claim) when sign-in is limited to them. The caller sets RedirectURL.
func GoogleConfig(clientID, secret string, hostedDomains []string) Config {
	return Config{
		ID:            "google",
		Name:          "Google",
		Issuer:        GoogleIssuer,
		ClientID:      clientID,
		ClientSecret:  secret,
		Scopes:        []string{oidc.ScopeOpenID, "email", "profile"},
		HostedDomains: slices.Clone(hostedDomains),
		LoginPrompt:   "select_account",
	}
}

// Identity is what the upstream asserted about the person, after
// verification.
type Identity struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Username      string
	PictureURL    string // only an absolute https URL is kept
	HostedDomain  string
}

// Connector is an upstream identity provider as the sign-in pages use it:
// send the browser there, then turn the callback's code into a verified
// Identity.
type Connector interface {
	ID() string   // stable, in the callback path: /federation/{id}/callback
	Name() string // shown on the button: "Continue with {Name}"
	AuthCodeURL(state, nonce, verifier string, a AuthParams) string
	// Exchange redeems code; its errors wrap ErrUnavailable, ErrInvalid
	// or ErrRefused.
	Exchange(ctx context.Context, code, verifier, nonce string) (Identity, error)
}

// AuthParams are what the client's request asks of the upstream sign-in.
type AuthParams struct {
	ForceLogin bool // prompt=login: a fresh sign-in upstream too
	MaxAge     *int // the client's max_age, passed on (nil: none)
}

var _ Connector = (*OIDC)(nil)

// OIDC is one discovered OpenID Connect upstream provider.
type OIDC struct {
	cfg      Config
	client   *http.Client
	provider *oidc.Provider
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// discoveryTimeout bounds discovery at start.
const discoveryTimeout = 15 * time.Second

// Open checks cfg and runs OpenID Connect discovery against the issuer.
// Errors name the upstream and the cause (unreachable discovery, an issuer
// that does not match its discovery document).
func Open(ctx context.Context, cfg Config) (*OIDC, error) {
	if cfg.ID == "" {
		return nil, errors.New("upstream: id is required")
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("upstream %q: %s", cfg.ID, fmt.Sprintf(format, args...))
	}
	if cfg.Name == "" {
		cfg.Name = cfg.ID
	}
	if u, err := url.Parse(cfg.Issuer); err != nil || !u.IsAbs() || u.Host == "" {
		return nil, fail("issuer %q is not an absolute URL", cfg.Issuer)
	}
	if cfg.ClientID == "" {
		return nil, fail("client_id is required")
	}
	if u, err := url.Parse(cfg.RedirectURL); err != nil || !u.IsAbs() {
		return nil, fail("redirect URL %q is not an absolute URL", cfg.RedirectURL)
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	cfg.Claims.setDefaults()
	if cfg.LoginPrompt == "" {
		cfg.LoginPrompt = "login"
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, client), discoveryTimeout)
	defer cancel()
	// The provider keeps the client (from the context) for its key set;
	// the context's deadline only bounds discovery.
	p, err := oidc.NewProvider(dctx, cfg.Issuer)
	if err != nil {
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fail("issuer mismatch: the discovery document at %s/.well-known/openid-configuration names the issuer %q; configure exactly that issuer",
				strings.TrimSuffix(cfg.Issuer, "/"), mismatch.Discovered)
		}
		return nil, fail("discovery at %s failed: %v", cfg.Issuer, err)
	}
	c := &OIDC{cfg: cfg, client: client, provider: p}
	c.oauth = oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  cfg.RedirectURL,
		Scopes:       slices.Clone(cfg.Scopes),
	}
	c.verifier = p.Verifier(&oidc.Config{ClientID: cfg.ClientID})
	return c, nil
}

// Close releases the connector's idle connections.
func (c *OIDC) Close() error {
	c.client.CloseIdleConnections()
	return nil
}

// ID is the upstream's id.
func (c *OIDC) ID() string { return c.cfg.ID }

// Name is the upstream's display name.
func (c *OIDC) Name() string { return c.cfg.Name }

// AuthCodeURL is the upstream authorization URL: the configured scopes,
// state, nonce, a PKCE S256 challenge of verifier, Google's hd hint when
// exactly one hosted domain is allowed, and what a asks for.
func (c *OIDC) AuthCodeURL(state, nonce, verifier string, a AuthParams) string {
	all := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if len(c.cfg.HostedDomains) == 1 {
		all = append(all, oauth2.SetAuthURLParam("hd", c.cfg.HostedDomains[0]))
	}
	if a.ForceLogin {
		all = append(all, oauth2.SetAuthURLParam("prompt", c.cfg.LoginPrompt))
	}
	if a.MaxAge != nil && *a.MaxAge >= 0 {
		all = append(all, oauth2.SetAuthURLParam("max_age", strconv.Itoa(*a.MaxAge)))
	}
	return c.oauth.AuthCodeURL(state, all...)
}

// Exchange redeems code (with the PKCE verifier), verifies the ID token
// (signature, issuer, audience, expiry) and its nonce, reads the claims
// and applies the hosted-domain rule.
func (c *OIDC) Exchange(ctx context.Context, code, verifier, nonce string) (Identity, error) {
	ctx = oidc.ClientContext(ctx, c.client)
	if code == "" {
		return Identity{}, fmt.Errorf("%w: the callback carries no code", ErrInvalid)
	}
	tok, err := c.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Identity{}, classify("code exchange", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: the token response has no id_token", ErrInvalid)
	}
	idt, err := c.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: ID token: %v", ErrInvalid, err)
	}
	if nonce == "" || idt.Nonce != nonce {
		return Identity{}, fmt.Errorf("%w: ID token nonce %q does not match the one sent", ErrInvalid, idt.Nonce)
	}
	if tok.AccessToken != "" && idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return Identity{}, fmt.Errorf("%w: at_hash: %v", ErrInvalid, err)
		}
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: ID token claims: %v", ErrInvalid, err)
	}
	// Some providers put only the subject in the ID token; the rest comes
	// from userinfo. Its claims never override the ID token's.
	if _, ok := claims["email"]; !ok && tok.AccessToken != "" && c.provider.UserInfoEndpoint() != "" {
		ui, err := c.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, classify("userinfo", err)
		}
		if ui.Subject != idt.Subject {
			return Identity{}, fmt.Errorf("%w: userinfo subject %q differs from the ID token's %q", ErrInvalid, ui.Subject, idt.Subject)
		}
		extra := map[string]any{}
		if err := ui.Claims(&extra); err == nil {
			for k, v := range extra {
				if _, ok := claims[k]; !ok {
					claims[k] = v
				}
			}
		}
	}
	id, err := mapClaims(idt.Subject, claims, c.cfg.Claims)
	if err != nil {
		return Identity{}, err
	}
	if err := checkHostedDomain(id.HostedDomain, c.cfg.HostedDomains); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// classify sorts a transport or protocol error from the upstream.
func classify(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response != nil && re.Response.StatusCode >= 500 {
			return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
		}
		return fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	}
	var ue *url.Error
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}
	// go-oidc's userinfo reports the HTTP status in its text.
	if strings.HasPrefix(err.Error(), "5") {
		return fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
}
