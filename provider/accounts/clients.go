package accounts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

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
	// Audience are the resource servers (absolute URIs, RFC 8707) the
	// client may ask access tokens for; without any, its tokens are for
	// itself (aud = client_id).
	Audience          []string
	Public            bool
	FirstParty        bool
	AccessTokenFormat storage.AccessTokenFormat // default: opaque
	// RequireMFA makes every sign-in to the client use a second factor.
	RequireMFA bool
	// Claims maps claim names to metadata paths
	// ({"department": "app_metadata.department"}), emitted in the
	// client's tokens when ClaimsScope ("" = profile) is granted.
	Claims      map[string]string
	ClaimsScope string
	// Meta is the registration metadata (authentication method, keys,
	// signing algorithms, logout URIs, …), checked by checkClientMeta.
	Meta storage.ClientMeta
}

// GrantTypes are the OAuth 2.0 grants Latchkey supports: what a client may
// register, what the token endpoint handles and what discovery lists. The
// one list of them.
func GrantTypes() []string {
	return []string{"authorization_code", "refresh_token", "client_credentials"}
}

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
	if !c.Public && c.Meta.TokenEndpointAuthMethod != storage.AuthMethodPrivateKey {
		sec = secret.Token(32) // 256 bits
		if err := s.setClientSecret(c, sec); err != nil {
			return nil, "", err
		}
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateClient(ctx, c); err != nil {
			if errors.Is(err, storage.ErrDuplicate) {
				return invalid("client_id", "is already taken")
			}
			return fmt.Errorf("creating client: %w", err)
		}
		return s.audit(ctx, AuditClientCreate, c.ID, "", map[string]any{"name": c.Name, "grant_types": c.GrantTypes,
			"scopes": c.Scopes, "audience": c.Audience, "public": c.Public, "first_party": c.FirstParty,
			"require_mfa": c.RequireMFA, "claims": c.Claims, "claims_scope": c.ClaimsScope, "metadata": c.Meta})
	})
	if err != nil {
		return nil, "", err
	}
	return c, sec, nil
}

// GetClient returns one client.
func (s *Service) GetClient(ctx context.Context, id string) (*storage.Client, error) {
	return s.store.GetClientByID(ctx, id)
}

// ClientUpdate changes a client; nil leaves a field as it is.
type ClientUpdate struct {
	Name                                 *string
	RedirectURIs, PostLogoutRedirectURIs *[]string
	GrantTypes, Scopes, Audience         *[]string
	FirstParty, RequireMFA               *bool
	AccessTokenFormat                    *storage.AccessTokenFormat
	Claims                               *map[string]string
	ClaimsScope                          *string
	// Meta replaces the whole registration metadata (the admin API
	// merges a partial change onto the current one first).
	Meta                            *storage.ClientMeta
	AccessTokenTTL, RefreshTokenTTL *time.Duration
	IDTokenTTL, AuthCodeTTL         *time.Duration
}

// UpdateClient validates and applies a change with the same rules as
// CreateClient. Whether a client is public cannot change (it would turn a
// secret on or off): create a new client instead.
func (s *Service) UpdateClient(ctx context.Context, id string, up ClientUpdate) (*storage.Client, error) {
	c, err := s.store.GetClientByID(ctx, id)
	if err != nil {
		return nil, err
	}
	spec := ClientSpec{Name: c.Name, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		GrantTypes: c.GrantTypes, Scopes: c.Scopes, Audience: c.Audience, Public: c.Public, FirstParty: c.FirstParty,
		AccessTokenFormat: c.AccessTokenFormat, RequireMFA: c.RequireMFA, Claims: c.Claims, ClaimsScope: c.ClaimsScope,
		Meta: c.Meta}
	changes := map[string]any{}
	patch(&spec.Name, up.Name, "name", changes)
	patch(&spec.RedirectURIs, up.RedirectURIs, "redirect_uris", changes)
	patch(&spec.PostLogoutRedirectURIs, up.PostLogoutRedirectURIs, "post_logout_redirect_uris", changes)
	patch(&spec.GrantTypes, up.GrantTypes, "grant_types", changes)
	patch(&spec.Scopes, up.Scopes, "scopes", changes)
	patch(&spec.Audience, up.Audience, "audience", changes)
	patch(&spec.FirstParty, up.FirstParty, "first_party", changes)
	patch(&spec.RequireMFA, up.RequireMFA, "require_mfa", changes)
	patch(&spec.AccessTokenFormat, up.AccessTokenFormat, "access_token_format", changes)
	patch(&spec.Claims, up.Claims, "claims", changes)
	patch(&spec.ClaimsScope, up.ClaimsScope, "claims_scope", changes)
	patch(&spec.Meta, up.Meta, "metadata", changes)
	next, err := clientFromSpec(spec)
	if err != nil {
		return nil, err
	}
	next.ID, next.SecretHash, next.SealedSecret, next.CreatedAt = c.ID, c.SecretHash, c.SealedSecret, c.CreatedAt
	if err := checkSecretFits(next); err != nil {
		return nil, err
	}
	next.AccessTokenTTL, next.RefreshTokenTTL, next.IDTokenTTL, next.AuthCodeTTL = c.AccessTokenTTL, c.RefreshTokenTTL, c.IDTokenTTL, c.AuthCodeTTL
	for _, x := range []struct {
		name string
		src  *time.Duration
		dst  *time.Duration
	}{
		{"access_token_ttl", up.AccessTokenTTL, &next.AccessTokenTTL},
		{"refresh_token_ttl", up.RefreshTokenTTL, &next.RefreshTokenTTL},
		{"id_token_ttl", up.IDTokenTTL, &next.IDTokenTTL},
		{"auth_code_ttl", up.AuthCodeTTL, &next.AuthCodeTTL},
	} {
		if x.src == nil {
			continue
		}
		if *x.src < 0 || *x.src > 366*24*time.Hour {
			return nil, invalid(x.name, "must be between 0 (the server default) and 366 days")
		}
		*x.dst = *x.src
		changes[x.name] = x.src.String()
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateClient(ctx, next); err != nil {
			return err
		}
		_, rescoped := changes["scopes"]
		if rescoped || dropsAny(c.Audience, next.Audience) {
			// Tokens carry the scopes and audiences they were issued
			// with; after a change of what the client may ask for, none
			// of the old ones stays. (An audience added takes nothing
			// away.)
			if err := s.store.RevokeClientTokens(ctx, c.ID); err != nil {
				return err
			}
		}
		return s.audit(ctx, AuditClientUpdate, c.ID, "", changes)
	})
	if err != nil {
		return nil, err
	}
	return next, nil
}

// patch applies one field of a partial update (nil: unchanged) and notes
// the change for the audit log.
func patch[T any](dst *T, src *T, name string, changes map[string]any) {
	if src != nil {
		*dst = *src
		changes[name] = *src
	}
}

// RotateClientSecret replaces a confidential client's secret; the old one
// stops working at once. The new secret is returned once.
func (s *Service) RotateClientSecret(ctx context.Context, id string) (*storage.Client, string, error) {
	c, err := s.store.GetClientByID(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if c.Public {
		return nil, "", invalid("public", "a public client has no secret")
	}
	if c.Meta.TokenEndpointAuthMethod == storage.AuthMethodPrivateKey {
		return nil, "", invalid("token_endpoint_auth_method", "a private_key_jwt client has no secret: rotate its keys instead")
	}
	sec := secret.Token(32)
	if err := s.setClientSecret(c, sec); err != nil {
		return nil, "", err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateClient(ctx, c); err != nil {
			return err
		}
		// A secret is rotated because it may have leaked: whatever was
		// obtained with it goes too.
		if err := s.store.RevokeClientTokens(ctx, c.ID); err != nil {
			return err
		}
		return s.audit(ctx, AuditClientSecret, c.ID, "", nil)
	})
	if err != nil {
		return nil, "", err
	}
	return c, sec, nil
}

// dropsAny reports whether some value of before is not in after.
func dropsAny(before, after []string) bool {
	for _, v := range before {
		if !slices.Contains(after, v) {
			return true
		}
	}
	return false
}

func clientFromSpec(spec ClientSpec) (*storage.Client, error) {
	c := &storage.Client{
		Name:                   strings.TrimSpace(spec.Name),
		RedirectURIs:           spec.RedirectURIs,
		PostLogoutRedirectURIs: spec.PostLogoutRedirectURIs,
		GrantTypes:             spec.GrantTypes,
		Scopes:                 spec.Scopes,
		Audience:               spec.Audience,
		Public:                 spec.Public,
		FirstParty:             spec.FirstParty,
		AccessTokenFormat:      spec.AccessTokenFormat,
		RequireMFA:             spec.RequireMFA,
		Meta:                   spec.Meta,
	}
	if c.Name == "" || len(c.Name) > 200 {
		return nil, invalid("name", "is required (at most 200 characters)")
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(GrantTypes(), g) {
			return nil, invalid("grant_type", "%q is not one of %s", g, strings.Join(GrantTypes(), ", "))
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
	if len(c.Audience) > maxAudiences {
		return nil, invalid("audience", "at most %d", maxAudiences)
	}
	for i, a := range c.Audience {
		if err := CheckResourceURI(a); err != nil {
			return nil, invalid("audience", "%q: %v", a, err)
		}
		if slices.Contains(c.Audience[:i], a) {
			return nil, invalid("audience", "%q is listed twice", a)
		}
	}
	claims, scope, cerr := checkClaimMappings(spec.Claims, spec.ClaimsScope, c.Scopes)
	if cerr != nil {
		return nil, cerr
	}
	c.Claims, c.ClaimsScope = claims, scope
	if err := checkClientMeta(c); err != nil {
		return nil, err
	}
	return c, nil
}

// setClientSecret stores a new secret's hash and, for client_secret_jwt,
// the secret itself sealed (the HMAC needs it).
func (s *Service) setClientSecret(c *storage.Client, sec string) error {
	c.SecretHash, c.SealedSecret = secret.Hash(sec), nil
	if c.Meta.TokenEndpointAuthMethod != storage.AuthMethodSecretJWT {
		return nil
	}
	if s.opts.ClientSecretSealer == nil {
		return invalid("token_endpoint_auth_method", "client_secret_jwt is not available on this server")
	}
	sealed, err := s.opts.ClientSecretSealer.Seal(rand.Reader, c.ID, []byte(sec))
	if err != nil {
		return fmt.Errorf("sealing client secret: %w", err)
	}
	c.SealedSecret = sealed
	return nil
}

// checkSecretFits keeps the stored secret in step with a change of
// authentication method. client_secret_jwt needs the secret itself, which
// a client registered with another method never stored (only its hash):
// such a change is refused. A private_key_jwt client keeps no secret.
func checkSecretFits(c *storage.Client) error {
	switch c.Meta.TokenEndpointAuthMethod {
	case storage.AuthMethodSecretJWT:
		if c.SealedSecret == nil {
			return invalid("token_endpoint_auth_method", "a client becomes client_secret_jwt only when it is registered (its stored secret is a hash the server cannot sign with): register a new client")
		}
	case storage.AuthMethodPrivateKey:
		c.SecretHash, c.SealedSecret = nil, nil
	default:
		c.SealedSecret = nil
	}
	return nil
}

// maxAudiences bounds a client's resource servers: fosite compares every
// requested audience with each of them.
const maxAudiences = 50

// CheckResourceURI is the rule for a resource server's identifier, both
// a client's allowed audience and a `resource` an application asks for
// (RFC 8707 §2): an absolute URI without a fragment; http and https ones
// name a host and carry no userinfo. No space either: fosite's `audience`
// parameter is space-separated. At most 2000 bytes.
func CheckResourceURI(raw string) error {
	if raw == "" || len(raw) > 2000 || strings.ContainsAny(raw, " \t\r\n") {
		return errors.New("must be an absolute URI (at most 2000 characters, no spaces)")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return errors.New("must be an absolute URI")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment")
	}
	if (u.Scheme == "http" || u.Scheme == "https") && (u.Host == "" || u.User != nil) {
		return errors.New("must name a host, without userinfo")
	}
	return nil
}

// checkRedirectURI: absolute, no fragment, no userinfo; http only for
// loopback hosts (RFC 8252), custom schemes allowed for native apps.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("is not a URL")
	}
	// http://trusted@evil/ reads as trusted to a person and goes to evil;
	// the authorization endpoint refuses userinfo too, so such a URI could
	// never be used.
	if u.User != nil {
		return errors.New("must not contain userinfo (user@host)")
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
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteClient(ctx, id); err != nil {
			return err
		}
		return s.audit(ctx, AuditClientDelete, id, "", nil)
	})
}

// reservedClaims cannot be mapped from metadata: the protocol's own
// claims (OIDC Core §2 and §5.1, RFC 9068, RFC 8693, RFC 9449) and those
// Latchkey releases itself, which a mapping would shadow.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "exp": true, "nbf": true, "iat": true, "jti": true, "auth_time": true,
	"nonce": true, "acr": true, "amr": true, "azp": true, "at_hash": true, "c_hash": true, "s_hash": true, "sid": true,
	"scope": true, "scp": true, "client_id": true, "cnf": true, "act": true, "may_act": true, "events": true, "typ": true,
	"name": true, "given_name": true, "family_name": true, "middle_name": true, "nickname": true,
	"preferred_username": true, "profile": true, "picture": true, "website": true, "email": true,
	"email_verified": true, "gender": true, "birthdate": true, "zoneinfo": true, "locale": true, "phone_number": true,
	"phone_number_verified": true, "address": true, "updated_at": true,
	"groups": true, "roles": true, "tier": true, "tier_rate_limits": true,
}

var claimNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$`)

// checkClaimMappings validates a client's custom claims: names not
// reserved, sources a dotted path into user_metadata or app_metadata, a
// scope the client may ask for. At most 32 mappings.
func checkClaimMappings(claims map[string]string, scope string, clientScopes []string) (map[string]string, string, error) {
	scope = strings.TrimSpace(scope)
	if len(claims) == 0 {
		return nil, scope, nil
	}
	if len(claims) > 32 {
		return nil, "", invalid("claims", "at most 32 custom claims")
	}
	out := make(map[string]string, len(claims))
	for name, src := range claims {
		if !claimNamePattern.MatchString(name) {
			return nil, "", invalid("claims", "claim name %q must be 1–64 letters, digits, '_', '.', ':' or '-'", name)
		}
		if reservedClaims[name] {
			return nil, "", invalid("claims", "claim name %q is reserved", name)
		}
		src = strings.TrimSpace(src)
		root, path, _ := strings.Cut(src, ".")
		if (root != "user_metadata" && root != "app_metadata") || path == "" || slices.Contains(strings.Split(path, "."), "") {
			return nil, "", invalid("claims", "the source of %q must be app_metadata.<key> or user_metadata.<key>", name)
		}
		out[name] = src
	}
	check := scope
	if check == "" {
		check = "profile"
	}
	if !slices.Contains(clientScopes, check) {
		return nil, "", invalid("claims_scope", "must be one of the client's scopes (%q is not)", check)
	}
	return out, scope, nil
}
