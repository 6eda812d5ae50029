package accounts

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/httpx"
	lkmail "github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/storage"
)

// This file holds the operations the admin API offers: the same rules as
// the self-service ones, applied by an operator, each recorded in the audit
// log in the transaction of the change.

// ErrGraceOver: a soft-deleted account can no longer be restored.
var ErrGraceOver = errors.New("the restore grace period is over")

// GetUserAny returns a user whatever its status (admins see suspended and
// deleted users).
func (s *Service) GetUserAny(ctx context.Context, id string) (*storage.User, error) {
	return s.store.GetUser(ctx, id)
}

// FindUser looks a user up by username or email.
func (s *Service) FindUser(ctx context.Context, login string) (*storage.User, error) {
	return s.store.GetUserByLogin(ctx, strings.TrimSpace(login))
}

// UserUpdate is an admin's partial change; nil leaves a field as it is.
// Admins change what the person may (ProfileUpdate) and, besides, the
// email address, the verified flags and app_metadata.
type UserUpdate struct {
	ProfileUpdate
	Email                              *string
	EmailVerified, PhoneNumberVerified *bool
	AppMetadata                        *[]byte // a JSON object
}

// AdminUpdateUser applies up if the user is still at version (its
// UpdatedAt, from the ETag; zero skips the check). A concurrent change
// gives storage.ErrConflict.
func (s *Service) AdminUpdateUser(ctx context.Context, id string, version time.Time, up UserUpdate) (*storage.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if !version.IsZero() && !u.UpdatedAt.Equal(version) {
		return nil, fmt.Errorf("user %s changed since it was read: %w", id, storage.ErrConflict)
	}
	changes := map[string]any{}
	if err := s.applyProfile(u, up.ProfileUpdate, changes); err != nil {
		return nil, err
	}
	if up.Email != nil {
		email := strings.TrimSpace(*up.Email)
		if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email {
			return nil, invalid("email", "must be a valid email address")
		}
		if !strings.EqualFold(email, u.Email) {
			u.EmailVerified = false // unless the same change says otherwise
		}
		u.Email, changes["email"] = email, email
	}
	if up.EmailVerified != nil {
		u.EmailVerified, changes["email_verified"] = *up.EmailVerified, *up.EmailVerified
	}
	if up.PhoneNumberVerified != nil {
		if *up.PhoneNumberVerified && u.PhoneNumber == "" {
			return nil, invalid("phone_number_verified", "there is no phone number to verify")
		}
		u.PhoneNumberVerified, changes["phone_number_verified"] = *up.PhoneNumberVerified, *up.PhoneNumberVerified
	}
	if up.AppMetadata != nil {
		m, err := checkMetadata("app_metadata", *up.AppMetadata)
		if err != nil {
			return nil, err
		}
		u.AppMetadata, changes["app_metadata"] = m, "changed"
	}
	_, emailChanged := changes["email"]
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		var username, email string
		if _, ok := changes["username"]; ok {
			username = u.Username
		}
		if emailChanged {
			email = u.Email
		}
		if err := s.checkUnique(ctx, u.ID, username, email); err != nil {
			return err
		}
		if err := s.store.UpdateUser(ctx, u); err != nil {
			if errors.Is(err, storage.ErrDuplicate) {
				return taken("username") // raced checkUnique
			}
			return err
		}
		if emailChanged {
			// Links sent to the old address must not outlive it.
			if err := s.store.DeleteUserTokens(ctx, u.ID, ""); err != nil {
				return err
			}
		}
		return s.audit(ctx, AuditUserUpdate, u.ID, "", changes)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// SetPassword sets a user's password as an operator: the policy applies,
// the user is signed out everywhere and a lockout is cleared.
func (s *Service) SetPassword(ctx context.Context, id, password string) error {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return err
	}
	if err := CheckPassword(password, u.Username, u.Email); err != nil {
		return err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.setPassword(ctx, u, password); err != nil {
			return err
		}
		if err := s.signOutEverywhere(ctx, u.ID, ""); err != nil {
			return err
		}
		if err := s.store.SetUserLockout(ctx, u.ID, 0, nil); err != nil {
			return err
		}
		if err := s.audit(ctx, AuditUserPasswordSet, u.ID, "", nil); err != nil {
			return err
		}
		return s.send(ctx, lkmail.KindPasswordChanged, u.Email, lkmail.Data{Name: displayName(u)})
	})
	if err != nil {
		return err
	}
	return nil
}

// requireReason is the rule for actions an operator must explain.
func requireReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return "", invalid("reason", "is required")
	}
	if len([]rune(reason)) > 500 {
		return "", invalid("reason", "must be at most 500 characters")
	}
	return reason, nil
}

// setStatus moves a user between lifecycle states, signing them out of
// everything when they stop being active.
func (s *Service) setStatus(ctx context.Context, id string, from []storage.UserStatus, to storage.UserStatus, action, reason string) (*storage.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	ok := false
	for _, f := range from {
		ok = ok || u.Status == f
	}
	if !ok {
		return nil, invalid("status", "the user is %s", u.Status)
	}
	now := s.now().UTC()
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		u.Status = to
		switch to {
		case storage.UserDeleted:
			u.DeletedAt = &now
		case storage.UserActive:
			u.DeletedAt = nil
		}
		if err := s.store.UpdateUser(ctx, u); err != nil {
			return err
		}
		if to != storage.UserActive {
			if err := s.store.DeleteUserBrowserSessions(ctx, u.ID); err != nil {
				return err
			}
			if err := s.store.RevokeUserTokens(ctx, u.ID); err != nil {
				return err
			}
		}
		return s.audit(ctx, action, u.ID, reason, map[string]any{"status": string(to)})
	})
	if err != nil {
		return nil, err
	}
	if to != storage.UserActive {
		s.securityEvent(ctx, action, u.ID, "reason", reason)
	}
	return u, nil
}

// Suspend blocks sign-in and cuts off every session and token.
func (s *Service) Suspend(ctx context.Context, id, reason string) (*storage.User, error) {
	reason, err := requireReason(reason)
	if err != nil {
		return nil, err
	}
	return s.setStatus(ctx, id, []storage.UserStatus{storage.UserActive}, storage.UserSuspended, AuditUserSuspend, reason)
}

// Unsuspend lets a suspended user sign in again.
func (s *Service) Unsuspend(ctx context.Context, id, reason string) (*storage.User, error) {
	reason, err := requireReason(reason)
	if err != nil {
		return nil, err
	}
	return s.setStatus(ctx, id, []storage.UserStatus{storage.UserSuspended}, storage.UserActive, AuditUserUnsuspend, reason)
}

// SoftDelete deletes a user restorably.
func (s *Service) SoftDelete(ctx context.Context, id, reason string) (*storage.User, error) {
	return s.setStatus(ctx, id, []storage.UserStatus{storage.UserActive, storage.UserSuspended}, storage.UserDeleted, AuditUserDelete, strings.TrimSpace(reason))
}

// Restore brings a soft-deleted user back within the grace period.
func (s *Service) Restore(ctx context.Context, id, reason string) (*storage.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.Status == storage.UserDeleted && u.DeletedAt != nil && s.now().After(u.DeletedAt.Add(s.opts.DeleteGrace)) {
		return nil, ErrGraceOver
	}
	return s.setStatus(ctx, id, []storage.UserStatus{storage.UserDeleted}, storage.UserActive, AuditUserRestore, strings.TrimSpace(reason))
}

// HardDelete removes a user for good, keeping an archive record (id,
// email, username, profile, reason, who and when). The audit event stays.
func (s *Service) HardDelete(ctx context.Context, id, reason string) error {
	reason, err := requireReason(reason)
	if err != nil {
		return err
	}
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.HardDeleteUser(ctx, &storage.UserArchive{
			UserID: u.ID, Username: u.Username, Email: u.Email, DisplayName: u.DisplayName,
			Profile: map[string]any{"picture_url": u.PictureURL, "locale": u.Locale, "tier": u.TierID,
				"email_verified": u.EmailVerified, "status": string(u.Status)},
			Reason: reason, DeletedBy: ActorFrom(ctx).String(), CreatedAt: u.CreatedAt, DeletedAt: s.now().UTC(),
		}); err != nil {
			return err
		}
		return s.audit(ctx, AuditUserHardDelete, u.ID, reason, map[string]any{"username": u.Username})
	})
	if err == nil {
		s.securityEvent(ctx, AuditUserHardDelete, u.ID, "reason", reason)
	}
	return err
}

// GetUserArchive returns what a hard delete kept.
func (s *Service) GetUserArchive(ctx context.Context, id string) (*storage.UserArchive, error) {
	return s.store.GetUserArchive(ctx, id)
}

// UserSessions lists a user's live browser sessions.
func (s *Service) UserSessions(ctx context.Context, id string) ([]storage.BrowserSession, error) {
	if _, err := s.store.GetUser(ctx, id); err != nil {
		return nil, err
	}
	return s.store.ListUserBrowserSessions(ctx, id)
}

// RevokeUserSessions signs a user out of every browser and revokes every
// token.
func (s *Service) RevokeUserSessions(ctx context.Context, id string) error {
	if _, err := s.store.GetUser(ctx, id); err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.signOutEverywhere(ctx, id, ""); err != nil {
			return err
		}
		return s.audit(ctx, AuditSessionsRevoke, id, "", nil)
	})
}

// UserExport is everything Latchkey holds about a person (GDPR access
// request), minus secrets.
type UserExport struct {
	User        *storage.User
	Tier        *storage.Tier
	Sessions    []storage.BrowserSession
	Consents    []storage.Consent
	AuditEvents []storage.AuditEvent
	Factors     []storage.Factor // confirmed second factors, secrets removed
	MFAEnabled  bool
	Memberships *storage.Memberships // groups and effective roles
	ExportedAt  time.Time
}

// ExportUser gathers a user's data.
func (s *Service) ExportUser(ctx context.Context, id string) (*UserExport, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	x := &UserExport{User: u, ExportedAt: s.now().UTC()}
	if u.TierID != "" {
		if x.Tier, err = s.store.GetTier(ctx, u.TierID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
	}
	if x.Sessions, err = s.store.ListUserBrowserSessions(ctx, id); err != nil {
		return nil, err
	}
	if x.Consents, err = s.store.ListUserConsents(ctx, id); err != nil {
		return nil, err
	}
	if x.AuditEvents, err = s.store.ListAudit(ctx, storage.AuditQuery{TargetID: id, Limit: 500}); err != nil {
		return nil, err
	}
	// The factors' names and dates, never their secrets.
	if x.Factors, _, err = s.ListFactors(ctx, id); err != nil {
		return nil, err
	}
	for i := range x.Factors {
		x.Factors[i].Secret, x.Factors[i].Credential = nil, ""
	}
	x.MFAEnabled = len(x.Factors) > 0
	if x.Memberships, err = s.store.UserMemberships(ctx, u.ID); err != nil {
		return nil, err
	}
	return x, nil
}

// SearchUsers runs a directory search.
func (s *Service) SearchUsers(ctx context.Context, q storage.UserQuery) (*storage.UserPage, error) {
	if len(q.Q) > 200 {
		return nil, invalid("q", "must be at most 200 characters")
	}
	switch q.Status {
	case "", storage.UserActive, storage.UserSuspended, storage.UserDeleted:
	default:
		return nil, invalid("status", "must be active, suspended or deleted")
	}
	switch q.Sort {
	case "", storage.SortCreatedAsc, storage.SortCreatedDesc, storage.SortUsernameAsc, storage.SortLastLoginAsc, storage.SortLastLoginDesc:
	default:
		return nil, invalid("sort", "must be created_at, -created_at, username, last_login_at or -last_login_at")
	}
	if q.Limit < 0 || q.Limit > 200 {
		return nil, invalid("limit", "must be between 1 and 200")
	}
	page, err := s.store.SearchUsers(ctx, q)
	if errors.Is(err, storage.ErrBadCursor) {
		return nil, invalid("after", "is not a cursor from a previous page")
	}
	return page, err
}

// Stats summarises the directory over the last days.
func (s *Service) Stats(ctx context.Context, days int) (*storage.Stats, error) {
	if days <= 0 || days > 366 {
		return nil, invalid("days", "must be between 1 and 366")
	}
	return s.store.Stats(ctx, days)
}

// ListAudit queries the audit log.
func (s *Service) ListAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditEvent, error) {
	if q.Limit < 0 || q.Limit > 500 {
		return nil, invalid("limit", "must be between 1 and 500")
	}
	return s.store.ListAudit(ctx, q)
}

// InTx runs fn in one transaction, so that a change made elsewhere
// (signing keys) and its RecordAudit commit or fail together.
func (s *Service) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.store.InTx(ctx, fn)
}

// RecordAudit records an action done outside this package (signing keys)
// for the actor in ctx.
func (s *Service) RecordAudit(ctx context.Context, action, target, reason string, changes map[string]any) error {
	return s.audit(ctx, action, target, reason, changes)
}

// ---- tiers ----

// TierSpec creates or (with pointers set) changes a tier.
type TierSpec struct {
	Name, Description *string
	IsDefault         *bool
	// RequireMFA makes every sign-in of the tier's users use a second
	// factor, whichever client asks.
	RequireMFA *bool
}

func checkTierName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 64 {
		return "", invalid("name", "must be 1–64 characters")
	}
	return name, nil
}

// CreateTier adds a service plan.
func (s *Service) CreateTier(ctx context.Context, spec TierSpec) (*storage.Tier, error) {
	if spec.Name == nil {
		return nil, invalid("name", "is required")
	}
	name, err := checkTierName(*spec.Name)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	t := &storage.Tier{ID: "t_" + secret.Token(9), Name: name, CreatedAt: now, UpdatedAt: now}
	if spec.Description != nil {
		t.Description = strings.TrimSpace(*spec.Description)
	}
	if spec.IsDefault != nil {
		t.IsDefault = *spec.IsDefault
	}
	if spec.RequireMFA != nil {
		t.RequireMFA = *spec.RequireMFA
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateTier(ctx, t); err != nil {
			if errors.Is(err, storage.ErrDuplicate) {
				return taken("name")
			}
			return err
		}
		return s.audit(ctx, AuditTierCreate, t.ID, "", map[string]any{"name": t.Name, "default": t.IsDefault,
			"require_mfa": t.RequireMFA})
	})
	if err != nil {
		return nil, err
	}
	s.forgetTiers()
	return t, nil
}

// UpdateTier changes a tier.
func (s *Service) UpdateTier(ctx context.Context, id string, spec TierSpec) (*storage.Tier, error) {
	t, err := s.store.GetTier(ctx, id)
	if err != nil {
		return nil, err
	}
	changes := map[string]any{}
	if spec.Name != nil {
		if t.Name, err = checkTierName(*spec.Name); err != nil {
			return nil, err
		}
		changes["name"] = t.Name
	}
	if spec.Description != nil {
		t.Description, changes["description"] = strings.TrimSpace(*spec.Description), strings.TrimSpace(*spec.Description)
	}
	if spec.IsDefault != nil {
		if t.IsDefault && !*spec.IsDefault {
			return nil, invalid("is_default", "make another tier the default instead")
		}
		t.IsDefault, changes["is_default"] = *spec.IsDefault, *spec.IsDefault
	}
	if spec.RequireMFA != nil {
		t.RequireMFA, changes["require_mfa"] = *spec.RequireMFA, *spec.RequireMFA
	}
	t.UpdatedAt = s.now().UTC()
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateTier(ctx, t); err != nil {
			if errors.Is(err, storage.ErrDuplicate) {
				return taken("name")
			}
			return err
		}
		return s.audit(ctx, AuditTierUpdate, t.ID, "", changes)
	})
	if err != nil {
		return nil, err
	}
	s.forgetTiers()
	return t, nil
}

// DeleteTier removes a tier nobody is on; storage.ErrConflict otherwise.
func (s *Service) DeleteTier(ctx context.Context, id string) error {
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteTier(ctx, id); err != nil {
			return err
		}
		return s.audit(ctx, AuditTierDelete, id, "", nil)
	})
	s.forgetTiers()
	return err
}

// ListTiers returns every tier.
func (s *Service) ListTiers(ctx context.Context) ([]storage.Tier, error) {
	return s.store.ListTiers(ctx)
}

// GetTier returns one tier.
func (s *Service) GetTier(ctx context.Context, id string) (*storage.Tier, error) {
	return s.store.GetTier(ctx, id)
}

// TierRateLimits returns a tier's limits.
func (s *Service) TierRateLimits(ctx context.Context, id string) ([]storage.RateLimit, error) {
	if _, err := s.store.GetTier(ctx, id); err != nil {
		return nil, err
	}
	return s.store.RateLimits(ctx, id)
}

// SetTierRateLimits replaces a tier's limits.
func (s *Service) SetTierRateLimits(ctx context.Context, id string, limits []storage.RateLimit) error {
	seen := map[string]bool{}
	for i, l := range limits {
		field := fmt.Sprintf("rate_limits[%d]", i)
		switch {
		case strings.TrimSpace(l.Match) == "" || len(l.Match) > 200:
			return invalid(field+".match", "must be 1–200 characters")
		case seen[l.Match]:
			return invalid(field+".match", "%q appears twice", l.Match)
		case l.Limit <= 0:
			return invalid(field+".limit", "must be greater than 0")
		case l.Period < time.Second || l.Period > 366*24*time.Hour:
			return invalid(field+".period", "must be between 1s and 366 days")
		}
		seen[l.Match] = true
	}
	if _, err := s.store.GetTier(ctx, id); err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.SetRateLimits(ctx, id, limits); err != nil {
			return err
		}
		s.forgetTiers()
		return s.audit(ctx, AuditTierLimits, id, "", map[string]any{"rate_limits": len(limits)})
	})
}

// AssignTier puts a user on a tier ("" = none).
func (s *Service) AssignTier(ctx context.Context, userID, tierID string) (*storage.User, error) {
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if tierID != "" {
			if _, err := s.store.GetTier(ctx, tierID); errors.Is(err, storage.ErrNotFound) {
				return invalid("tier", "no such tier")
			} else if err != nil {
				return err
			}
		}
		if err := s.store.SetUserTier(ctx, userID, tierID); err != nil {
			return err
		}
		return s.audit(ctx, AuditUserTier, userID, "", map[string]any{"tier": tierID})
	})
	if err != nil {
		return nil, err
	}
	return s.store.GetUser(ctx, userID)
}

// UserRateLimits returns the user's tier and its limits (nil tier: none).
func (s *Service) UserRateLimits(ctx context.Context, userID string) (*storage.Tier, []storage.RateLimit, error) {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	if u.TierID == "" {
		return nil, []storage.RateLimit{}, nil
	}
	t, err := s.store.GetTier(ctx, u.TierID)
	if err != nil {
		return nil, nil, err
	}
	limits, err := s.store.RateLimits(ctx, t.ID)
	return t, limits, err
}

// tierCache keeps tiers and their limits for token claims and the MFA
// policy: they change rarely, and every sign-in would otherwise read them.
type tierCache struct {
	mu      sync.Mutex
	tiers   map[string]cachedTier
	fetched time.Time
}

type cachedTier struct {
	claims     TierClaims
	requireMFA bool
}

// TierClaims is what tokens say about a user's tier.
type TierClaims struct {
	Name       string
	RateLimits []storage.RateLimit
}

func (s *Service) forgetTiers() {
	s.tiers.mu.Lock()
	s.tiers.tiers = nil
	s.tiers.mu.Unlock()
}

// tierCacheTTL bounds how long another replica's tier change takes to
// show up here (changes made through this Service show at once).
const tierCacheTTL = 10 * time.Second

// cachedTier returns tier id from the cache, loading every tier when the
// cache is empty or older than tierCacheTTL. found is false for a tier
// the store does not have; err is a failed load.
func (s *Service) cachedTier(ctx context.Context, id string) (ct cachedTier, found bool, err error) {
	s.tiers.mu.Lock()
	defer s.tiers.mu.Unlock()
	if s.tiers.tiers == nil || s.now().Sub(s.tiers.fetched) > tierCacheTTL {
		ts, err := s.store.ListTiers(ctx)
		if err != nil {
			return cachedTier{}, false, fmt.Errorf("loading tiers: %w", err)
		}
		m := make(map[string]cachedTier, len(ts))
		for _, t := range ts {
			limits, err := s.store.RateLimits(ctx, t.ID)
			if err != nil {
				return cachedTier{}, false, fmt.Errorf("loading rate limits of tier %s: %w", t.ID, err)
			}
			m[t.ID] = cachedTier{claims: TierClaims{Name: t.Name, RateLimits: limits}, requireMFA: t.RequireMFA}
		}
		s.tiers.tiers, s.tiers.fetched = m, s.now()
	}
	ct, found = s.tiers.tiers[id]
	return ct, found, nil
}

// TierClaims returns the user's tier and limits (ok=false when the user
// has none), from a cache refreshed every 10 s so that other replicas'
// changes show up.
func (s *Service) TierClaims(ctx context.Context, u *storage.User) (TierClaims, bool) {
	if u.TierID == "" {
		return TierClaims{}, false
	}
	ct, ok, err := s.cachedTier(ctx, u.TierID)
	if err != nil {
		s.log.Warn("tier claims", "err", err)
		return TierClaims{}, false
	}
	return ct.claims, ok
}

// TierRequiresMFA reports whether the user's tier requires a second
// factor at sign-in (false for a user on no tier), from the same cache as
// TierClaims. When the tiers cannot be read it answers true: asking for a
// factor that was not needed is an inconvenience, skipping one that was
// is a hole, and a store that cannot list tiers fails the sign-in soon
// anyway.
func (s *Service) TierRequiresMFA(ctx context.Context, u *storage.User) bool {
	if u == nil || u.TierID == "" {
		return false
	}
	ct, ok, err := s.cachedTier(ctx, u.TierID)
	if err != nil {
		s.log.Warn("tier MFA policy", "user", u.ID, "err", err)
		return true
	}
	if !ok {
		// A tier created on another replica since the last load: read
		// again rather than wait out the TTL, since users cannot be on a
		// tier that does not exist (foreign key).
		s.forgetTiers()
		if ct, ok, err = s.cachedTier(ctx, u.TierID); err != nil {
			s.log.Warn("tier MFA policy", "user", u.ID, "err", err)
			return true
		}
	}
	return ok && ct.requireMFA
}

// ---- import ----

// ImportLine is one JSON Lines record of a bulk import.
type ImportLine struct {
	Username      string    `json:"username"`
	Email         string    `json:"email"`
	DisplayName   string    `json:"display_name"`
	EmailVerified bool      `json:"email_verified"`
	PasswordHash  string    `json:"password_hash"`
	Password      string    `json:"password"`
	Tier          string    `json:"tier"` // tier id or name
	CreatedAt     time.Time `json:"created_at"`
}

// ImportResult reports one line: the new user's id, or why it failed.
type ImportResult struct {
	Line  int    `json:"line"`
	OK    bool   `json:"ok"`
	ID    string `json:"id,omitempty"`
	Field string `json:"field,omitempty"`
	Error string `json:"error,omitempty"`
}

// maxImportLine bounds one JSON Lines record.
const maxImportLine = 64 << 10

// parseImportLine reads one JSON Lines record (raw, without its line
// break). On failure problem says why, and field names the field at fault
// when it is one.
func parseImportLine(raw string) (l ImportLine, field, problem string) {
	if !strings.HasPrefix(strings.TrimLeft(raw, " \t\r\n"), "{") {
		return ImportLine{}, "", "not a valid record: a record is a JSON object"
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return ImportLine{}, "", "not a valid record: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	// One record per line: a second object (or anything else) after the
	// first would otherwise be dropped without a word.
	if _, err := dec.Token(); err != io.EOF {
		return ImportLine{}, "", "not a valid record: data after the JSON object (one record per line)"
	}
	// PostgreSQL refuses NUL in text; without this a "\u0000" would
	// stop the whole import with a store error.
	if field, bad := httpx.InvalidJSONText([]byte(raw)); bad {
		return ImportLine{}, field, httpx.TextRule
	}
	return l, "", ""
}

// ImportUsers creates a user per JSON Lines record, each in its own
// transaction (a failed line leaves nothing behind and does not stop the
// others), keeping imported password hashes.
func (s *Service) ImportUsers(ctx context.Context, r io.Reader) ([]ImportResult, error) {
	tiers, err := s.store.ListTiers(ctx)
	if err != nil {
		return nil, err
	}
	tierByName := map[string]string{}
	for _, t := range tiers {
		tierByName[strings.ToLower(t.Name)] = t.ID
		tierByName[t.ID] = t.ID
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxImportLine)
	var out []ImportResult
	n := 0
	for sc.Scan() {
		n++
		raw := strings.TrimSpace(sc.Text())
		if raw == "" {
			continue
		}
		res := ImportResult{Line: n}
		l, field, problem := parseImportLine(raw)
		if problem != "" {
			res.Field, res.Error = field, problem
			out = append(out, res)
			continue
		}
		tierID := ""
		if l.Tier != "" {
			if tierID = tierByName[strings.ToLower(l.Tier)]; tierID == "" {
				tierID = tierByName[l.Tier]
			}
			if tierID == "" {
				res.Field, res.Error = "tier", "no such tier"
				out = append(out, res)
				continue
			}
		}
		u, err := s.createUser(ctx, NewUser{Username: l.Username, Email: l.Email, DisplayName: l.DisplayName,
			EmailVerified: l.EmailVerified, PasswordHash: l.PasswordHash, Password: l.Password, TierID: tierID,
			CreatedAt: l.CreatedAt}, AuditUserImport)
		var ve *ValidationError
		switch {
		case errors.As(err, &ve):
			res.Field, res.Error = ve.Field, ve.Message
		case err != nil:
			return out, err
		default:
			res.OK, res.ID = true, u.ID
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return append(out, ImportResult{Line: n + 1, Error: "line longer than 64 KiB"}), nil
		}
		return out, err
	}
	return out, nil
}
