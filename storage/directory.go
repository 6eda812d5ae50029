package storage

import (
	"context"
	"errors"
	"time"
)

// This file holds the records and interfaces behind the admin API: tiers
// (service plans) and their rate limits, the audit log, searching and
// archiving users.

// Tier is a service plan. Exactly one tier is the default, given to new
// users.
type Tier struct {
	ID          string
	Name        string // unique, case-insensitive
	Description string
	IsDefault   bool
	// RequireMFA makes every sign-in of a user on this tier use a second
	// factor, whichever client asks.
	RequireMFA bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// RateLimit is one limit of a tier: Limit events per Period for requests
// matching Match (a name such as "api.requests" or a path pattern such as
// "/v1/search/*"). Latchkey publishes limits; resource servers enforce them.
type RateLimit struct {
	Match  string
	Limit  int
	Period time.Duration
}

// Actor types of audit events.
const (
	ActorUser   = "user"
	ActorClient = "client" // an admin API client
	ActorSystem = "system"
)

// AuditEvent is one privileged or lifecycle action. Never carries secrets:
// Changes names fields and their new values only where they are not
// sensitive.
type AuditEvent struct {
	ID        int64 // assigned by the store, increasing
	Time      time.Time
	ActorType string // ActorUser, ActorClient, ActorSystem
	ActorID   string
	Action    string // e.g. "user.suspend", "user.password.reset"
	TargetID  string // the user (or client, key, tier) acted on
	IP        string
	UserAgent string
	Reason    string
	Changes   map[string]any
}

// AuditQuery filters the audit log; zero values do not filter. Results are
// newest first; After is the ID of the last event of the previous page.
type AuditQuery struct {
	TargetID     string
	ActorID      string
	Actions      []string // exact names, or a prefix ending in "." ("user.")
	IP           string
	Since, Until time.Time
	After        int64
	Limit        int
}

// UserSort orders a user search.
type UserSort string

const (
	SortCreatedDesc UserSort = "-created_at" // default
	SortCreatedAsc  UserSort = "created_at"
	SortUsernameAsc UserSort = "username"
	// Last sign-in, most recent first; users who never signed in last.
	SortLastLoginDesc UserSort = "-last_login_at"
	// Last sign-in, oldest first; users who never signed in first.
	SortLastLoginAsc UserSort = "last_login_at"
)

// UserQuery filters and pages a user search; zero values do not filter.
type UserQuery struct {
	Q                           string // substring of email, username or display name, case-insensitive
	UsernameOnly                bool   // Q matches usernames only (callers that may not see emails)
	Status                      UserStatus
	TierID                      string
	EmailVerified               *bool
	CreatedAfter, CreatedBefore time.Time
	// LastLoginAfter is inclusive, LastLoginBefore exclusive; either one
	// leaves out users who never signed in.
	LastLoginAfter, LastLoginBefore time.Time
	// GroupID: members of the group or of any group below it.
	GroupID string
	// RoleID: users holding the role, directly or through a group.
	RoleID string
	Sort   UserSort
	// After is the opaque cursor of the previous page's last row.
	After string
	Limit int
}

// ErrBadCursor: UserQuery.After is not a cursor this store handed out
// (malformed, or from another sort order).
var ErrBadCursor = errors.New("storage: bad cursor")

// UserPage is one page of a search: Next is the cursor of the following
// page ("" on the last page).
type UserPage struct {
	Users []User
	Next  string
}

// UserArchive is what a hard delete keeps: who the user was and who
// removed them, nothing that could sign in.
type UserArchive struct {
	UserID      string
	Username    string
	Email       string
	DisplayName string
	Profile     map[string]any
	Reason      string
	DeletedBy   string // actor, e.g. "client:c_123"
	CreatedAt   time.Time
	DeletedAt   time.Time
}

// Stats summarises the directory.
type Stats struct {
	ByStatus      map[UserStatus]int64
	ByTier        map[string]int64 // tier id → users
	SignupsPerDay []DayCount       // oldest first
	// ActiveUsers counts users who signed in within the last n days,
	// for each n asked for.
	ActiveUsers map[int]int64
}

// DayCount is a number of events on one UTC day.
type DayCount struct {
	Day   string // YYYY-MM-DD
	Count int64
}

// Tiers persists service plans.
type Tiers interface {
	// CreateTier inserts t; ErrDuplicate when the name is taken. When
	// t.IsDefault, the previous default stops being one.
	CreateTier(ctx context.Context, t *Tier) error
	GetTier(ctx context.Context, id string) (*Tier, error)
	// GetDefaultTier returns the default tier; ErrNotFound when none.
	GetDefaultTier(ctx context.Context) (*Tier, error)
	ListTiers(ctx context.Context) ([]Tier, error)
	// UpdateTier writes name, description, is_default and require_mfa (see
	// CreateTier).
	UpdateTier(ctx context.Context, t *Tier) error
	// DeleteTier removes a tier; ErrConflict when users are on it or it is
	// the default.
	DeleteTier(ctx context.Context, id string) error
	// RateLimits returns a tier's limits ordered by Match.
	RateLimits(ctx context.Context, tierID string) ([]RateLimit, error)
	// SetRateLimits replaces a tier's limits.
	SetRateLimits(ctx context.Context, tierID string, limits []RateLimit) error
	// SetUserTier assigns a tier ("" = none); ErrNotFound for an unknown
	// user or tier.
	SetUserTier(ctx context.Context, userID, tierID string) error
}

// Audit persists the audit log.
type Audit interface {
	// AppendAudit inserts e (filling ID and, when zero, Time). Call it in
	// the transaction of the change it records.
	AppendAudit(ctx context.Context, e *AuditEvent) error
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
}

// Directory is searching, archiving and summarising users.
type Directory interface {
	SearchUsers(ctx context.Context, q UserQuery) (*UserPage, error)
	// HardDeleteUser archives the user and removes the row with its
	// password, sessions, tokens, consents and identities.
	HardDeleteUser(ctx context.Context, a *UserArchive) error
	GetUserArchive(ctx context.Context, userID string) (*UserArchive, error)
	Stats(ctx context.Context, days int) (*Stats, error)
}

// Identity links an account at an upstream identity provider (upstream id
// + subject) to a user.
type Identity struct {
	UpstreamID string
	Subject    string
	UserID     string
	Email      string // as the upstream asserted it when linked
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// Identities persists upstream identities.
type Identities interface {
	// CreateIdentity links an identity; ErrDuplicate when it is linked
	// already, ErrNotFound for an unknown user.
	CreateIdentity(ctx context.Context, id *Identity) error
	GetIdentity(ctx context.Context, upstreamID, subject string) (*Identity, error)
	// TouchIdentity records a sign-in with the identity.
	TouchIdentity(ctx context.Context, upstreamID, subject string, at time.Time) error
	ListUserIdentities(ctx context.Context, userID string) ([]Identity, error)
	DeleteIdentity(ctx context.Context, upstreamID, subject string) error
}
