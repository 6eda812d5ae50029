package admin

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/provider/keys"
	"github.com/latchkey/latchkey/storage"
)

// The JSON shapes of the API. Records are never encoded as they are:
// each view lists what may be shown, so a secret added to a record later
// (a hash, a sealed key) cannot leak by default. Times are RFC 3339 in
// UTC; durations are Go duration strings ("1h").

func utc(t time.Time) time.Time { return t.UTC() }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type userView struct {
	ID            string     `json:"id"`
	Username      string     `json:"username"`
	Email         string     `json:"email"`
	EmailVerified bool       `json:"email_verified"`
	DisplayName   string     `json:"display_name"`
	PictureURL    string     `json:"picture_url"`
	Locale        string     `json:"locale"`
	Status        string     `json:"status"`
	Tier          *string    `json:"tier"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	DeletedAt     *time.Time `json:"deleted_at"`
	LockedUntil   *time.Time `json:"locked_until"`
	FailedLogins  int        `json:"failed_logins"`
	HasPassword   bool       `json:"has_password"`
	MFAEnabled    bool       `json:"mfa_enabled"`

	GivenName           string           `json:"given_name"`
	FamilyName          string           `json:"family_name"`
	MiddleName          string           `json:"middle_name"`
	Nickname            string           `json:"nickname"`
	Website             string           `json:"website"`
	Zoneinfo            string           `json:"zoneinfo"`
	Birthdate           string           `json:"birthdate"`
	PhoneNumber         string           `json:"phone_number"`
	PhoneNumberVerified bool             `json:"phone_number_verified"`
	Address             *storage.Address `json:"address"`
	UserMetadata        json.RawMessage  `json:"user_metadata"`
	AppMetadata         json.RawMessage  `json:"app_metadata"`
	LastLoginAt         *time.Time       `json:"last_login_at"`

	// Only on GET /v1/users/{id} and the answers that change one user.
	Groups *[]membershipView `json:"groups,omitempty"`
	Roles  *[]roleHeldView   `json:"roles,omitempty"`
}

// membershipView is a group a user is in; Direct false when it is the
// ancestor of one they are in.
type membershipView struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Direct bool   `json:"direct"`
}

// roleHeldView is an effective role and where it comes from.
type roleHeldView struct {
	ID       string           `json:"id"`
	Name     string           `json:"name"`
	ClientID *string          `json:"client_id"`
	From     []roleSourceView `json:"from"`
}

// roleSourceView: "direct", or "group" with the group's id and name.
type roleSourceView struct {
	Type      string `json:"type"`
	GroupID   string `json:"group_id,omitempty"`
	GroupName string `json:"group_name,omitempty"`
}

func viewMemberships(m *storage.Memberships) (*[]membershipView, *[]roleHeldView) {
	groups := make([]membershipView, 0, len(m.Groups))
	for _, g := range m.Groups {
		groups = append(groups, membershipView{ID: g.ID, Name: g.Name, Direct: g.Direct})
	}
	roles := make([]roleHeldView, 0, len(m.Roles))
	for _, r := range m.Roles {
		v := roleHeldView{ID: r.ID, Name: r.Name, ClientID: strPtr(r.ClientID), From: []roleSourceView{}}
		for _, src := range r.Sources {
			if src.GroupID == "" {
				v.From = append(v.From, roleSourceView{Type: "direct"})
			} else {
				v.From = append(v.From, roleSourceView{Type: "group", GroupID: src.GroupID, GroupName: src.GroupName})
			}
		}
		roles = append(roles, v)
	}
	return &groups, &roles
}

// metadata is a stored JSON object as the API shows it: {} when empty.
func metadata(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("{}")
	}
	return json.RawMessage(b)
}

// userFieldNames are the fields of userView, for ?fields=.
var userFieldNames = []string{"id", "username", "email", "email_verified", "display_name", "picture_url", "locale",
	"status", "tier", "created_at", "updated_at", "deleted_at", "locked_until", "failed_logins", "has_password", "mfa_enabled",
	"given_name", "family_name", "middle_name", "nickname", "website", "zoneinfo", "birthdate", "phone_number",
	"phone_number_verified", "address", "user_metadata", "app_metadata", "last_login_at"}

// viewUser is the user as the API shows it; mfa says whether they have a
// confirmed second factor (not a column of users: see withMFA).
func viewUser(u *storage.User, mfa bool) userView {
	return userView{
		ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		DisplayName: u.DisplayName, PictureURL: u.PictureURL, Locale: u.Locale, Status: string(u.Status),
		Tier: strPtr(u.TierID), CreatedAt: utc(u.CreatedAt), UpdatedAt: utc(u.UpdatedAt),
		DeletedAt: utcPtr(u.DeletedAt), LockedUntil: utcPtr(u.LockedUntil), FailedLogins: u.FailedLogins,
		HasPassword: u.PasswordHash != "", MFAEnabled: mfa,
		GivenName: u.GivenName, FamilyName: u.FamilyName, MiddleName: u.MiddleName, Nickname: u.Nickname,
		Website: u.Website, Zoneinfo: u.Zoneinfo, Birthdate: u.Birthdate, PhoneNumber: u.PhoneNumber,
		PhoneNumberVerified: u.PhoneNumberVerified, Address: u.Address, UserMetadata: metadata(u.UserMetadata),
		AppMetadata: metadata(u.AppMetadata), LastLoginAt: utcPtr(u.LastLoginAt),
	}
}

// userField returns one field of the view, for ?fields=.
func (v *userView) field(name string) any {
	switch name {
	case "id":
		return v.ID
	case "username":
		return v.Username
	case "email":
		return v.Email
	case "email_verified":
		return v.EmailVerified
	case "display_name":
		return v.DisplayName
	case "picture_url":
		return v.PictureURL
	case "locale":
		return v.Locale
	case "status":
		return v.Status
	case "tier":
		return v.Tier
	case "created_at":
		return v.CreatedAt
	case "updated_at":
		return v.UpdatedAt
	case "deleted_at":
		return v.DeletedAt
	case "locked_until":
		return v.LockedUntil
	case "failed_logins":
		return v.FailedLogins
	case "has_password":
		return v.HasPassword
	case "mfa_enabled":
		return v.MFAEnabled
	case "given_name":
		return v.GivenName
	case "family_name":
		return v.FamilyName
	case "middle_name":
		return v.MiddleName
	case "nickname":
		return v.Nickname
	case "website":
		return v.Website
	case "zoneinfo":
		return v.Zoneinfo
	case "birthdate":
		return v.Birthdate
	case "phone_number":
		return v.PhoneNumber
	case "phone_number_verified":
		return v.PhoneNumberVerified
	case "address":
		return v.Address
	case "user_metadata":
		return v.UserMetadata
	case "app_metadata":
		return v.AppMetadata
	case "last_login_at":
		return v.LastLoginAt
	}
	return nil
}

// etag is the user's version: its UpdatedAt, which every change moves.
func etag(u *storage.User) string {
	return `"` + strconv.FormatInt(u.UpdatedAt.UnixNano(), 10) + `"`
}

type archiveView struct {
	UserID      string         `json:"user_id"`
	Username    string         `json:"username"`
	Email       string         `json:"email"`
	DisplayName string         `json:"display_name"`
	Profile     map[string]any `json:"profile"`
	Reason      string         `json:"reason"`
	DeletedBy   string         `json:"deleted_by"`
	CreatedAt   time.Time      `json:"created_at"`
	DeletedAt   time.Time      `json:"deleted_at"`
}

func viewArchive(a *storage.UserArchive) archiveView {
	p := a.Profile
	if p == nil {
		p = map[string]any{}
	}
	return archiveView{UserID: a.UserID, Username: a.Username, Email: a.Email, DisplayName: a.DisplayName,
		Profile: p, Reason: a.Reason, DeletedBy: a.DeletedBy, CreatedAt: utc(a.CreatedAt), DeletedAt: utc(a.DeletedAt)}
}

type sessionView struct {
	ID         string    `json:"id"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	AMR        []string  `json:"amr"`
	AuthTime   time.Time `json:"auth_time"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

func viewSessions(ss []storage.BrowserSession) []sessionView {
	out := make([]sessionView, 0, len(ss))
	for _, b := range ss {
		out = append(out, sessionView{ID: b.ID, IP: b.IP, UserAgent: b.UserAgent, AMR: nonNil(b.AMR),
			AuthTime: utc(b.AuthTime), CreatedAt: utc(b.CreatedAt), LastSeenAt: utc(b.LastSeenAt), ExpiresAt: utc(b.ExpiresAt)})
	}
	return out
}

type tierView struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	IsDefault   bool      `json:"is_default"`
	RequireMFA  bool      `json:"require_mfa"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func viewTier(t *storage.Tier) tierView {
	return tierView{ID: t.ID, Name: t.Name, Description: t.Description, IsDefault: t.IsDefault,
		RequireMFA: t.RequireMFA, CreatedAt: utc(t.CreatedAt), UpdatedAt: utc(t.UpdatedAt)}
}

type rateLimitView struct {
	Match  string `json:"match"`
	Limit  int    `json:"limit"`
	Period string `json:"period"`
}

func viewRateLimits(ls []storage.RateLimit) []rateLimitView {
	out := make([]rateLimitView, 0, len(ls))
	for _, l := range ls {
		out = append(out, rateLimitView{Match: l.Match, Limit: l.Limit, Period: l.Period.String()})
	}
	return out
}

type clientView struct {
	ClientID               string            `json:"client_id"`
	Name                   string            `json:"name"`
	RedirectURIs           []string          `json:"redirect_uris"`
	PostLogoutRedirectURIs []string          `json:"post_logout_redirect_uris"`
	GrantTypes             []string          `json:"grant_types"`
	ResponseTypes          []string          `json:"response_types"`
	Scopes                 []string          `json:"scopes"`
	Audience               []string          `json:"audience"`
	Public                 bool              `json:"public"`
	FirstParty             bool              `json:"first_party"`
	RequireMFA             bool              `json:"require_mfa"`
	AccessTokenFormat      string            `json:"access_token_format"`
	AccessTokenTTL         *string           `json:"access_token_ttl"`
	RefreshTokenTTL        *string           `json:"refresh_token_ttl"`
	IDTokenTTL             *string           `json:"id_token_ttl"`
	AuthCodeTTL            *string           `json:"auth_code_ttl"`
	Claims                 map[string]string `json:"claims"`
	ClaimsScope            string            `json:"claims_scope"`
	CreatedAt              time.Time         `json:"created_at"`
	storage.ClientMeta
	// ClientSecret is set only in the answer that created it.
	ClientSecret string `json:"client_secret,omitempty"`
}

// ttl is a client token lifetime: null for the server default.
func ttl(d time.Duration) *string {
	if d <= 0 {
		return nil
	}
	s := d.String()
	return &s
}

func viewClient(c *storage.Client) clientView {
	return clientView{
		ClientID: c.ID, Name: c.Name, RedirectURIs: nonNil(c.RedirectURIs), PostLogoutRedirectURIs: nonNil(c.PostLogoutRedirectURIs),
		GrantTypes: nonNil(c.GrantTypes), ResponseTypes: nonNil(c.ResponseTypes), Scopes: nonNil(c.Scopes),
		Audience: nonNil(c.Audience), Public: c.Public, FirstParty: c.FirstParty, RequireMFA: c.RequireMFA,
		AccessTokenFormat: string(c.AccessTokenFormat),
		AccessTokenTTL:    ttl(c.AccessTokenTTL), RefreshTokenTTL: ttl(c.RefreshTokenTTL), IDTokenTTL: ttl(c.IDTokenTTL),
		AuthCodeTTL: ttl(c.AuthCodeTTL), CreatedAt: utc(c.CreatedAt), Claims: nonNilMap(c.Claims), ClaimsScope: claimsScope(c),
		ClientMeta: c.Meta,
	}
}

type keyView struct {
	ID          string     `json:"id"`
	Algorithm   string     `json:"algorithm"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatesAt time.Time  `json:"activates_at"`
	RetiredAt   *time.Time `json:"retired_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
}

func viewKey(k keys.KeyInfo) keyView {
	return keyView{ID: k.ID, Algorithm: k.Algorithm, State: k.State, CreatedAt: utc(k.CreatedAt),
		ActivatesAt: utc(k.ActivatesAt), RetiredAt: utcPtr(k.RetiredAt), ExpiresAt: utcPtr(k.ExpiresAt)}
}

type eventView struct {
	ID        int64          `json:"id"`
	Time      time.Time      `json:"time"`
	ActorType string         `json:"actor_type"`
	ActorID   string         `json:"actor_id"`
	Action    string         `json:"action"`
	TargetID  string         `json:"target_id"`
	IP        string         `json:"ip"`
	UserAgent string         `json:"user_agent"`
	Reason    string         `json:"reason"`
	Changes   map[string]any `json:"changes"`
}

func viewEvents(es []storage.AuditEvent) []eventView {
	out := make([]eventView, 0, len(es))
	for _, e := range es {
		ch := e.Changes
		if ch == nil {
			ch = map[string]any{}
		}
		out = append(out, eventView{ID: e.ID, Time: utc(e.Time), ActorType: e.ActorType, ActorID: e.ActorID,
			Action: e.Action, TargetID: e.TargetID, IP: e.IP, UserAgent: e.UserAgent, Reason: e.Reason, Changes: ch})
	}
	return out
}

type consentView struct {
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	GrantedAt time.Time `json:"granted_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// exportView is a GDPR access export: everything but secrets.
type exportView struct {
	User        userView      `json:"user"`
	Tier        *tierView     `json:"tier"`
	Sessions    []sessionView `json:"sessions"`
	Consents    []consentView `json:"consents"`
	AuditEvents []eventView   `json:"audit_events"`
	Factors     []factorView  `json:"factors"`
	ExportedAt  time.Time     `json:"exported_at"`
}

func viewExport(x *accounts.UserExport) exportView {
	out := exportView{User: viewUser(x.User, x.MFAEnabled), Sessions: viewSessions(x.Sessions),
		Consents: make([]consentView, 0, len(x.Consents)), AuditEvents: viewEvents(x.AuditEvents), Factors: viewFactors(x.Factors), ExportedAt: utc(x.ExportedAt)}
	if x.Tier != nil {
		t := viewTier(x.Tier)
		out.Tier = &t
	}
	if x.Memberships != nil {
		out.User.Groups, out.User.Roles = viewMemberships(x.Memberships)
	}
	for _, c := range x.Consents {
		out.Consents = append(out.Consents, consentView{ClientID: c.ClientID, Scopes: nonNil(c.Scopes),
			GrantedAt: utc(c.GrantedAt), UpdatedAt: utc(c.UpdatedAt)})
	}
	return out
}

type groupView struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	ParentID    *string   `json:"parent_id"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Roles granted to the group itself; only on GET /v1/groups/{id}.
	Roles *[]roleView `json:"roles,omitempty"`
}

func viewGroup(g *storage.Group) groupView {
	return groupView{ID: g.ID, Name: g.Name, Description: g.Description, ParentID: strPtr(g.ParentID),
		CreatedAt: utc(g.CreatedAt), UpdatedAt: utc(g.UpdatedAt)}
}

type roleView struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	ClientID    *string   `json:"client_id"`
	BuiltIn     bool      `json:"built_in"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func viewRole(r *storage.Role) roleView {
	return roleView{ID: r.ID, Name: r.Name, Description: r.Description, ClientID: strPtr(r.ClientID),
		BuiltIn: accounts.IsBuiltInRole(r), CreatedAt: utc(r.CreatedAt), UpdatedAt: utc(r.UpdatedAt)}
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// claimsScope is the scope that releases a client's custom claims.
func claimsScope(c *storage.Client) string {
	if c.ClaimsScope == "" {
		return "profile"
	}
	return c.ClaimsScope
}
