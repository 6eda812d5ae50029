package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// This file decides which claims a grant releases: the one place for it,
// used by the authorization response (ID token and the stored session),
// the refresh grant (claims as they are at refresh time), userinfo,
// introspection and JWT access tokens.

// Scopes that release claims beyond OIDC's profile and email.
const (
	// ScopeTier releases the user's service tier and its rate limits.
	ScopeTier = "tier"
	// ScopeGroups releases "groups": the names of the user's groups,
	// inherited ones included (a member of a child group is a member of
	// its parent), as oauth2-proxy --allowed-group and Kubernetes
	// --oidc-groups-claim read them.
	ScopeGroups = "groups"
	// ScopeRoles releases "roles": the user's effective global roles and
	// the requesting client's own roles, names only.
	ScopeRoles   = "roles"
	ScopePhone   = "phone"
	ScopeAddress = "address"
)

// claimScopes are the scopes discovery lists for claims.
var claimScopes = []string{"openid", "profile", "email", ScopePhone, ScopeAddress, ScopeGroups, ScopeRoles, ScopeTier}

// releasedClaims are the claims discovery lists.
var releasedClaims = []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr", "acr",
	"name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "picture", "website",
	"zoneinfo", "birthdate", "locale", "updated_at", "email", "email_verified", "phone_number", "phone_number_verified",
	"address", "groups", "roles", "tier", "tier_rate_limits"}

// claimsFor computes a grant's claims for user at client with scopes:
// idClaims go into the ID token and userinfo, extClaims (authorization
// data: tier, groups, roles, custom claims) also into introspection and
// JWT access tokens. An error is the store's (an outage).
func (p *Provider) claimsFor(ctx context.Context, u *storage.User, client *storage.Client, scopes fosite.Arguments) (
	idClaims, extClaims map[string]interface{}, err error) {
	idClaims = userClaims(u, scopes)
	extClaims = map[string]interface{}{}
	for k, v := range p.tierClaims(ctx, u, scopes) {
		extClaims[k] = v
	}
	if scopes.Has(ScopeGroups) || scopes.Has(ScopeRoles) {
		m, err := p.accounts.Memberships(ctx, u.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("claims: memberships of %s: %w", u.ID, err)
		}
		if scopes.Has(ScopeGroups) {
			groups := make([]interface{}, 0, len(m.Groups))
			for _, g := range m.Groups {
				groups = append(groups, g.Name)
			}
			extClaims["groups"] = groups
		}
		if scopes.Has(ScopeRoles) {
			roles := make([]interface{}, 0, len(m.Roles))
			seen := map[string]bool{}
			for _, r := range m.Roles {
				if (r.ClientID == "" || r.ClientID == client.ID) && !seen[r.Name] {
					seen[r.Name] = true
					roles = append(roles, r.Name)
				}
			}
			extClaims["roles"] = roles
		}
	}
	if len(client.Claims) > 0 {
		scope := client.ClaimsScope
		if scope == "" {
			scope = "profile"
		}
		if scopes.Has(scope) {
			for name, src := range client.Claims {
				if v, ok := metadataValue(u, src); ok {
					extClaims[name] = v
				}
			}
		}
	}
	for k, v := range extClaims {
		idClaims[k] = v
	}
	return idClaims, extClaims, nil
}

// metadataValue looks a dotted path ("app_metadata.org.department") up in
// the user's metadata; false when any step is missing.
func metadataValue(u *storage.User, src string) (interface{}, bool) {
	root, path, _ := strings.Cut(src, ".")
	var raw []byte
	switch root {
	case "user_metadata":
		raw = u.UserMetadata
	case "app_metadata":
		raw = u.AppMetadata
	default:
		return nil, false
	}
	if len(raw) == 0 {
		return nil, false
	}
	var v interface{}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, false
	}
	for _, key := range strings.Split(path, ".") {
		obj, ok := v.(map[string]interface{})
		if !ok {
			return nil, false
		}
		if v, ok = obj[key]; !ok {
			return nil, false
		}
	}
	return wholeNumbers(v), true
}

// setClaims replaces the session's released claims (keeping its sid).
func (s *Session) setClaims(idClaims, extClaims map[string]interface{}) {
	c := s.DefaultSession.Claims
	c.Extra = make(map[string]interface{}, len(idClaims)+1)
	if s.SessionID != "" {
		c.Extra["sid"] = s.SessionID
	}
	for k, v := range idClaims {
		c.Extra[k] = v
	}
	s.Ext = nil
	if len(extClaims) > 0 {
		s.Ext = extClaims
	}
}

// tierClaims are the tier claims for a user when the tier scope is
// granted: "tier" (the name) and "tier_rate_limits" (what resource servers
// enforce).
func (p *Provider) tierClaims(ctx context.Context, u *storage.User, scopes fosite.Arguments) map[string]interface{} {
	if !scopes.Has(ScopeTier) {
		return nil
	}
	tc, ok := p.accounts.TierClaims(ctx, u)
	if !ok {
		return nil
	}
	limits := make([]map[string]interface{}, 0, len(tc.RateLimits))
	for _, l := range tc.RateLimits {
		limits = append(limits, map[string]interface{}{"match": l.Match, "limit": l.Limit, "period_seconds": int64(l.Period / time.Second)})
	}
	return map[string]interface{}{"tier": tc.Name, "tier_rate_limits": limits}
}

// userClaims are the profile claims released for the granted scopes
// (OIDC Core §5.4); empty values are left out.
func userClaims(u *storage.User, scopes fosite.Arguments) map[string]interface{} {
	out := map[string]interface{}{}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	if scopes.Has("profile") {
		out["preferred_username"] = u.Username
		set("name", u.DisplayName)
		set("given_name", u.GivenName)
		set("family_name", u.FamilyName)
		set("middle_name", u.MiddleName)
		set("nickname", u.Nickname)
		set("picture", u.PictureURL)
		set("website", u.Website)
		set("zoneinfo", u.Zoneinfo)
		set("birthdate", u.Birthdate)
		set("locale", u.Locale)
		out["updated_at"] = u.UpdatedAt.Unix()
	}
	if scopes.Has("email") {
		out["email"] = u.Email
		out["email_verified"] = u.EmailVerified
	}
	if scopes.Has(ScopePhone) && u.PhoneNumber != "" {
		out["phone_number"] = u.PhoneNumber
		out["phone_number_verified"] = u.PhoneNumberVerified
	}
	if scopes.Has(ScopeAddress) && u.Address != nil {
		a := map[string]interface{}{}
		for k, v := range map[string]string{"formatted": u.Address.Formatted, "street_address": u.Address.StreetAddress,
			"locality": u.Address.Locality, "region": u.Address.Region, "postal_code": u.Address.PostalCode,
			"country": u.Address.Country} {
			if v != "" {
				a[k] = v
			}
		}
		out["address"] = a
	}
	return out
}

// refreshClaims recomputes a person's claims at a refresh, so the new
// tokens carry the memberships and profile as they are now.
func (p *Provider) refreshClaims(ctx context.Context, s *Session, u *storage.User, client *storage.Client, scopes fosite.Arguments) error {
	idClaims, extClaims, err := p.claimsFor(ctx, u, client, scopes)
	if err != nil {
		return err
	}
	s.setClaims(idClaims, extClaims)
	return nil
}

// personAdminScopes drops from granted the admin scopes the person's
// roles do not give them: never an error, so a refusal reveals nothing.
func (p *Provider) personAdminScopes(ctx context.Context, userID string, requested []string) ([]string, error) {
	hasAdmin := false
	for _, s := range requested {
		hasAdmin = hasAdmin || accounts.IsAdminScope(s)
	}
	if !hasAdmin {
		return requested, nil
	}
	m, err := p.accounts.Memberships(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("admin scopes of %s: %w", userID, err)
	}
	allowed := map[string]bool{}
	for _, s := range accounts.AdminScopesFor(m, requested) {
		allowed[s] = true
	}
	out := make([]string, 0, len(requested))
	for _, s := range requested {
		if !accounts.IsAdminScope(s) || allowed[s] {
			out = append(out, s)
		}
	}
	return out, nil
}
