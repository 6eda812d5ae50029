package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/storage"
)

// ClientSpec is what it takes to register a client.
type ClientSpec struct {
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string // default: authorization_code, refresh_token
	Scopes                 []string // default: openid profile email offline_access
	Public                 bool
	FirstParty             bool
	AccessTokenFormat      storage.AccessTokenFormat // default: opaque
}

var knownGrants = []string{"authorization_code", "refresh_token", "client_credentials"}

// CreateClient validates spec and registers a client. For a confidential
// client it returns the secret, which is stored only as its SHA-256 and can
// never be shown again.
func (s *Service) CreateClient(ctx context.Context, spec ClientSpec) (*storage.Client, string, error) {
	c, err := clientFromSpec(spec)
	if err != nil {
		return nil, "", err
	}
	c.ID = "c_" + secret.Token(12)
	c.CreatedAt = s.now().UTC()
	var sec string
	if !c.Public {
		sec = secret.Token(32) // 256 bits
		c.SecretHash = secret.Hash(sec)
	}
	if err := s.store.CreateClient(ctx, c); err != nil {
		if errors.Is(err, storage.ErrDuplicate) {
			return nil, "", invalid("client_id", "is already taken")
		}
		return nil, "", fmt.Errorf("creating client: %w", err)
	}
	return c, sec, nil
}

func clientFromSpec(spec ClientSpec) (*storage.Client, error) {
	c := &storage.Client{
		Name:                   strings.TrimSpace(spec.Name),
		RedirectURIs:           spec.RedirectURIs,
		PostLogoutRedirectURIs: spec.PostLogoutRedirectURIs,
		GrantTypes:             spec.GrantTypes,
		Scopes:                 spec.Scopes,
		Public:                 spec.Public,
		FirstParty:             spec.FirstParty,
		AccessTokenFormat:      spec.AccessTokenFormat,
	}
	if c.Name == "" || len(c.Name) > 200 {
		return nil, invalid("name", "is required (at most 200 characters)")
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(knownGrants, g) {
			return nil, invalid("grant_type", "%q is not one of %s", g, strings.Join(knownGrants, ", "))
		}
	}
	if c.Public && slices.Contains(c.GrantTypes, "client_credentials") {
		return nil, invalid("grant_type", "a public client cannot use client_credentials")
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "profile", "email", "offline_access"}
	}
	for _, sc := range c.Scopes {
		if sc == "" || strings.ContainsAny(sc, " \"\\") {
			return nil, invalid("scope", "%q is not a valid scope", sc)
		}
	}
	switch c.AccessTokenFormat {
	case "":
		c.AccessTokenFormat = storage.AccessTokenOpaque
	case storage.AccessTokenOpaque, storage.AccessTokenJWT:
	default:
		return nil, invalid("access_token_format", "must be opaque or jwt")
	}
	if slices.Contains(c.GrantTypes, "authorization_code") {
		c.ResponseTypes = []string{"code"}
		if len(c.RedirectURIs) == 0 {
			return nil, invalid("redirect_uri", "at least one is required for the authorization_code grant")
		}
	}
	for _, u := range c.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, invalid("redirect_uri", "%q: %v", u, err)
		}
	}
	for _, u := range c.PostLogoutRedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, invalid("post_logout_redirect_uri", "%q: %v", u, err)
		}
	}
	return c, nil
}

// checkRedirectURI: absolute, no fragment; http only for loopback hosts
// (RFC 8252), custom schemes allowed for native apps.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a URL")
	}
	if !u.IsAbs() || (u.Host == "" && (u.Scheme == "http" || u.Scheme == "https")) {
		return errors.New("must be absolute")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment")
	}
	if u.Scheme == "http" {
		h := u.Hostname()
		if h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return errors.New("http is allowed only for localhost; use https")
		}
	}
	return nil
}

// ListClients returns every client.
func (s *Service) ListClients(ctx context.Context) ([]storage.Client, error) {
	return s.store.ListClients(ctx)
}

// DeleteClient removes a client and every token issued to it.
func (s *Service) DeleteClient(ctx context.Context, id string) error {
	return s.store.DeleteClient(ctx, id)
}
