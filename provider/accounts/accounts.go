// Package accounts holds the user lifecycle rules: creating users and
// clients, password policy and hashing, signing in, browser sessions and
// consents. It is the one place these rules live; the login UI, the CLI
// and the admin API all go through it.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	lkmail "github.com/latchkey/latchkey/internal/mail"

	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/storage"
)

// Store is the persistence accounts needs.
type Store interface {
	storage.Users
	storage.Clients
	storage.BrowserSessions
	storage.Consents
	storage.UserTokens
	storage.Registrations
	storage.Tiers
	storage.Audit
	storage.Directory
	storage.Identities
	storage.Factors
	storage.Groups
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	RevokeUserTokens(ctx context.Context, userID string) error
	RevokeUserClientTokens(ctx context.Context, userID, clientID string) error
	RevokeClientTokens(ctx context.Context, clientID string) error
}

// Options configure a Service.
type Options struct {
	Hasher     PasswordHasher // default: argon2id with DefaultArgon2Params
	SessionTTL time.Duration  // browser session lifetime; default 24h
	Now        func() time.Time
	Logger     *slog.Logger

	// BaseURL is the issuer; links in emails point below it.
	BaseURL string
	// Mailer sends the account emails; nil sends none.
	Mailer Mailer
	// RequireVerifiedEmail refuses sign-in until the email is verified.
	RequireVerifiedEmail bool
	// RegistrationDisabled turns self-service registration off.
	RegistrationDisabled bool
	VerifyTTL            time.Duration // verification links; default 24h
	ResetTTL             time.Duration // password-reset links; default 1h
	Lockout              LockoutPolicy
	// DeleteGrace is how long a soft-deleted account can be restored;
	// default 30 days.
	DeleteGrace time.Duration
	// FactorSealer seals TOTP secrets at rest; without it no factor can
	// be enrolled.
	FactorSealer Sealer
	// ClientSecretSealer (secret.PurposeClientJWT) keeps the secrets of
	// client_secret_jwt clients, which the server must know to check an
	// HMAC; without it no such client can be registered.
	ClientSecretSealer Sealer
	// TOTPIssuer is the name authenticator apps show (default: the
	// BaseURL's host).
	TOTPIssuer string
	// WebAuthn is the passkeys' relying party (NewWebAuthn); nil turns
	// passkeys off.
	WebAuthn *webauthn.WebAuthn
}

// Service applies the account rules.
type Service struct {
	tiers  tierCache
	opts   Options
	store  Store
	hasher PasswordHasher
	ttl    time.Duration
	now    func() time.Time
	log    *slog.Logger
	// dummyHash is verified when a login names no account, so that an
	// unknown username costs the same time as a wrong password. It is
	// computed once (dummyOnce): Authenticate runs concurrently.
	dummyOnce sync.Once
	dummyHash string
}

// New returns a Service.
func New(store Store, opts Options) *Service {
	if opts.VerifyTTL <= 0 {
		opts.VerifyTTL = 24 * time.Hour
	}
	if opts.ResetTTL <= 0 {
		opts.ResetTTL = time.Hour
	}
	if opts.DeleteGrace <= 0 {
		opts.DeleteGrace = 30 * 24 * time.Hour
	}
	if opts.Lockout.Threshold == 0 {
		opts.Lockout.Threshold = 5
	}
	if opts.Lockout.Base <= 0 {
		opts.Lockout.Base = time.Minute
	}
	if opts.Lockout.Max < opts.Lockout.Base {
		opts.Lockout.Max = max(time.Hour, opts.Lockout.Base)
	}
	s := &Service{opts: opts, store: store, hasher: opts.Hasher, ttl: opts.SessionTTL, now: opts.Now, log: opts.Logger}
	if s.hasher == nil {
		s.hasher = NewArgon2id(DefaultArgon2Params, 4)
	}
	if s.ttl <= 0 {
		s.ttl = 24 * time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Errors callers tell apart with errors.Is / errors.As.
var (
	// ErrInvalidCredentials is the only answer to a failed sign-in, whether
	// the account is unknown, the password wrong, or the account suspended
	// or deleted: the caller cannot learn which accounts exist.
	ErrInvalidCredentials = errors.New("invalid username or password")
	// ErrNoSession: the browser has no live session.
	ErrNoSession = errors.New("accounts: no session")
)

// ValidationError names the field that is wrong and why.
type ValidationError struct {
	Field   string
	Message string
	// taken: the value is fine but unique and someone else's (a username,
	// an email address, a tier name); errors.Is(err, ErrTaken) holds.
	taken bool
}

// ErrTaken matches a ValidationError about a unique value that another
// record holds, so that the admin API can answer it 409 Conflict. The
// self-service pages answer it like any other field error.
var ErrTaken = errors.New("accounts: value taken")

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Is makes errors.Is(err, ErrTaken) hold for a taken value.
func (e *ValidationError) Is(target error) bool { return e.taken && target == ErrTaken }

// taken is the ValidationError of a unique value someone else has.
func taken(field string) error {
	return &ValidationError{Field: field, Message: "is already taken", taken: true}
}

// checkUnique refuses a username or email address that another account
// (not selfID) holds, naming the field. It runs before the write: after a
// refused write PostgreSQL allows no further statement in the transaction,
// so the store's duplicate error is only the backstop for a race.
func (s *Service) checkUnique(ctx context.Context, selfID, username, email string) error {
	for _, c := range []struct{ field, login string }{{"username", username}, {"email", email}} {
		if c.login == "" {
			continue
		}
		other, err := s.store.GetUserByLogin(ctx, c.login)
		switch {
		case err == nil && other.ID != selfID:
			return taken(c.field)
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("checking %s: %w", c.field, err)
		}
	}
	return nil
}

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// NewUser is what it takes to create a user.
type NewUser struct {
	Username      string
	Email         string
	DisplayName   string
	Password      string // "" creates a passwordless user (federated sign-in)
	EmailVerified bool
	// PasswordHash imports an existing bcrypt ($2a$/$2b$/$2y$) or argon2id
	// hash instead of Password, so that migrated users keep their
	// passwords (rehashed with argon2id at their next sign-in).
	PasswordHash string
	TierID       string // "" = the default tier, if there is one
	CreatedAt    time.Time

	// registered: PasswordHash is the argon2id hash of a self-service
	// registration being confirmed, not an import.
	registered bool
}

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,38}$`)

// Messages shared by several rules.
const (
	msgUsername = "must be 2–39 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
	// msgUsernameTakenSince: a registration's username was taken by
	// someone who confirmed first.
	msgUsernameTakenSince = "was taken by someone else before you confirmed; choose another"
)

// Password policy per NIST 800-63B: length only, no composition rules.
const (
	minPasswordLen = 8
	maxPasswordLen = 128
)

// CheckPassword applies the password policy.
func CheckPassword(password, username, email string) error {
	n := len([]rune(password))
	switch {
	case n < minPasswordLen:
		return invalid("password", "must be at least %d characters", minPasswordLen)
	case n > maxPasswordLen:
		return invalid("password", "must be at most %d characters", maxPasswordLen)
	case strings.EqualFold(password, username) || strings.EqualFold(password, email):
		return invalid("password", "must not be your username or email")
	case isCommonPassword(password):
		return invalid("password", "is one of the most common passwords; choose another")
	}
	return nil
}

// CreateUser validates u and stores a new active user, on the default
// tier unless u names one.
func (s *Service) CreateUser(ctx context.Context, u NewUser) (*storage.User, error) {
	return s.createUser(ctx, u, AuditUserCreate)
}

func (s *Service) createUser(ctx context.Context, u NewUser, action string) (*storage.User, error) {
	username := strings.ToLower(strings.TrimSpace(u.Username))
	email := strings.TrimSpace(u.Email)
	if !usernamePattern.MatchString(username) {
		return nil, invalid("username", msgUsername)
	}
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email {
		return nil, invalid("email", "must be a valid email address")
	}
	if len([]rune(u.DisplayName)) > 100 {
		return nil, invalid("display_name", "must be at most 100 characters")
	}
	var hash string
	switch {
	case u.PasswordHash != "" && u.Password != "":
		return nil, invalid("password_hash", "give a password or a password hash, not both")
	case u.PasswordHash != "":
		if !importableHash(u.PasswordHash) {
			return nil, invalid("password_hash", "must be a bcrypt ($2a$, $2b$, $2y$) or argon2id ($argon2id$) hash")
		}
		hash = u.PasswordHash
	case u.Password != "":
		if err := CheckPassword(u.Password, username, email); err != nil {
			return nil, err
		}
		h, err := s.hasher.Hash(ctx, u.Password)
		if err != nil {
			return nil, fmt.Errorf("hashing password: %w", err)
		}
		hash = h
	}
	now := s.now().UTC()
	created := u.CreatedAt
	if created.IsZero() || created.After(now) {
		created = now
	}
	user := &storage.User{
		ID:            "u_" + secret.Token(12),
		Username:      username,
		Email:         email,
		EmailVerified: u.EmailVerified,
		DisplayName:   strings.TrimSpace(u.DisplayName),
		PasswordHash:  hash,
		Status:        storage.UserActive,
		CreatedAt:     created,
		UpdatedAt:     now,
	}
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.checkUnique(ctx, user.ID, user.Username, user.Email); err != nil {
			return err
		}
		if err := s.store.CreateUser(ctx, user); err != nil {
			if errors.Is(err, storage.ErrDuplicate) {
				return taken("username") // raced checkUnique
			}
			return fmt.Errorf("creating user: %w", err)
		}
		tierID := u.TierID
		if tierID == "" {
			t, err := s.store.GetDefaultTier(ctx)
			switch {
			case err == nil:
				tierID = t.ID
			case !errors.Is(err, storage.ErrNotFound):
				return err
			}
		}
		if tierID != "" {
			if err := s.store.SetUserTier(ctx, user.ID, tierID); err != nil {
				if errors.Is(err, storage.ErrNotFound) {
					return invalid("tier", "no such tier")
				}
				return err
			}
			// Setting the tier moved updated_at (the ETag): read it back.
			fresh, err := s.store.GetUser(ctx, user.ID)
			if err != nil {
				return err
			}
			user = fresh
		}
		return s.audit(ctx, action, user.ID, "", map[string]any{"username": user.Username, "email": user.Email,
			"email_verified": user.EmailVerified, "tier": user.TierID, "imported_hash": u.PasswordHash != "" && !u.registered})
	})
	if err != nil {
		return nil, err
	}
	return user, nil
}

// importableHash accepts the password hashes Latchkey can verify.
func importableHash(h string) bool {
	for _, p := range []string{"$2a$", "$2b$", "$2y$", "$argon2id$"} {
		if strings.HasPrefix(h, p) && len(h) < 512 {
			return true
		}
	}
	return false
}

// SignInLimitKey names the budget of the per-account sign-in limit that an
// attempt with login draws on: the account when login (a username or an
// email address, any case) names one, so that its username and its
// address share one budget; otherwise the normalized name typed. The same
// key covers passwords re-entered for a known account (AccountLimitKey).
func (s *Service) SignInLimitKey(ctx context.Context, login string) (string, error) {
	login = strings.ToLower(strings.TrimSpace(login))
	user, err := s.store.GetUserByLogin(ctx, login)
	switch {
	case err == nil:
		return AccountLimitKey(user.ID), nil
	case errors.Is(err, storage.ErrNotFound):
		return "name:" + login, nil
	}
	return "", fmt.Errorf("looking up user: %w", err)
}

// AccountLimitKey is the per-account limit's key for a known account.
func AccountLimitKey(userID string) string { return "acct:" + userID }

// Authenticate checks a username-or-email and password. A failure is
// ErrInvalidCredentials whether the account is unknown, the password wrong
// or the account suspended or deleted; a *LockedError after too many
// failures; ErrEmailNotVerified (only after a correct password) when
// sign-in requires a verified email.
func (s *Service) Authenticate(ctx context.Context, login, password string) (*storage.User, error) {
	login = strings.TrimSpace(login)
	if login == "" || password == "" || len(password) > 4*maxPasswordLen {
		return nil, ErrInvalidCredentials
	}
	user, err := s.store.GetUserByLogin(ctx, strings.ToLower(login))
	if errors.Is(err, storage.ErrNotFound) {
		// Spend the same time as a real check so response time does not
		// reveal whether the account exists.
		_, _, _ = s.hasher.Verify(ctx, s.dummy(ctx), password)
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("looking up user: %w", err)
	}
	now := s.now().UTC()
	if user.PasswordHash == "" {
		_, _, _ = s.hasher.Verify(ctx, s.dummy(ctx), password)
		return nil, ErrInvalidCredentials
	}
	// Count the attempt before checking the password, atomically with the
	// lock decision: concurrent guesses are serialised per user, so no
	// more than the threshold can be checked before the lock holds.
	lockout := s.opts.Lockout.Threshold >= 0 && user.Status == storage.UserActive
	var att storage.LoginAttempt
	if lockout {
		att, err = s.store.ClaimLoginAttempt(ctx, user.ID, now, failureMemory, s.opts.Lockout.lockFor)
		if err != nil {
			return nil, fmt.Errorf("recording the sign-in attempt: %w", err)
		}
		if att.Locked {
			// Cost what a real check costs: the caller answers a lock like
			// a wrong password, and the time must not tell them apart.
			_, _, _ = s.hasher.Verify(ctx, s.dummy(ctx), password)
			return nil, &LockedError{Until: *att.LockedUntil}
		}
	}
	ok, rehash, err := s.hasher.Verify(ctx, user.PasswordHash, password)
	if err != nil {
		return nil, fmt.Errorf("verifying password: %w", err)
	}
	if !ok {
		if lockout && att.LockedUntil != nil {
			s.locked(ctx, user, att)
		}
		return nil, ErrInvalidCredentials
	}
	if user.Status != storage.UserActive {
		return nil, ErrInvalidCredentials
	}
	if lockout || user.FailedLogins > 0 || user.LockedUntil != nil {
		// The attempt was counted as a failure up front; it was not one.
		if err := s.store.SetUserLockout(ctx, user.ID, 0, nil); err != nil {
			s.log.Warn("clearing failed sign-ins", "user", user.ID, "err", err)
		}
	}
	if rehash {
		if h, err := s.hasher.Hash(ctx, password); err == nil {
			if err := s.store.UpdateUserPasswordHash(ctx, user.ID, h); err != nil {
				s.log.Warn("rehashing password", "user", user.ID, "err", err)
			}
		}
	}
	if s.opts.RequireVerifiedEmail && !user.EmailVerified {
		return nil, ErrEmailNotVerified
	}
	return user, nil
}

// locked records a lock that a failed attempt put in place, and tells the
// owner by email when the lock first starts.
func (s *Service) locked(ctx context.Context, u *storage.User, att storage.LoginAttempt) {
	until := *att.LockedUntil
	sys := WithActor(ctx, Actor{Type: storage.ActorSystem, ID: "lockout", IP: ActorFrom(ctx).IP, UserAgent: ActorFrom(ctx).UserAgent})
	if err := s.audit(sys, AuditUserLock, u.ID, fmt.Sprintf("%d failed sign-ins", att.Failures), map[string]any{"locked_until": until}); err != nil {
		s.log.Warn("recording a lockout", "user", u.ID, "err", err)
	}
	if att.Failures == s.opts.Lockout.Threshold {
		s.securityEvent(sys, AuditUserLock, u.ID, "failures", att.Failures, "until", until)
		if err := s.send(ctx, lkmail.KindAccountLocked, u.Email, lkmail.Data{Name: displayName(u), Until: until, Link: s.link("/forgot-password", nil)}); err != nil {
			s.log.Warn("queueing the lockout notice", "user", u.ID, "err", err)
		}
	}
}

func (s *Service) dummy(ctx context.Context) string {
	s.dummyOnce.Do(func() {
		// Computed lazily once. Not under ctx: a cancelled first caller
		// must not leave every later caller without a hash.
		s.dummyHash, _ = s.hasher.Hash(context.WithoutCancel(ctx), secret.Token(16))
	})
	return s.dummyHash
}

// GetUser returns an active user by id; suspended and deleted users are
// ErrNoSession-equivalent for callers that serve tokens, so they get
// storage.ErrNotFound here too.
func (s *Service) GetUser(ctx context.Context, id string) (*storage.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.Status != storage.UserActive {
		return nil, fmt.Errorf("user %s is %s: %w", id, u.Status, storage.ErrNotFound)
	}
	return u, nil
}
