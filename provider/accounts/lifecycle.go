package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	lkmail "github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/storage"
)

// Mailer queues the account emails. Send must write the email in ctx's
// transaction and never wait for the mail server (cmd/latchkey wires it
// to the durable outbox, internal/mail.Outbox).
type Mailer interface {
	Send(ctx context.Context, kind lkmail.Kind, to string, data lkmail.Data) error
}

// LockoutPolicy is progressive: after Threshold consecutive failed
// sign-ins the account is locked for Base, doubling with every further
// failure up to Max. A success or a password reset clears it; failures
// older than a day are forgotten.
type LockoutPolicy struct {
	Threshold int           // default 5; < 0 disables lockout
	Base      time.Duration // default 1m
	Max       time.Duration // default 1h
}

// lockFor returns how long the n-th consecutive failure locks the account.
func (p LockoutPolicy) lockFor(n int) time.Duration {
	if p.Threshold < 0 || n < p.Threshold {
		return 0
	}
	d := p.Base
	for i := p.Threshold; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// failureMemory is how long a failed sign-in counts towards a lockout.
const failureMemory = 24 * time.Hour

// Errors of the lifecycle operations.
var (
	// ErrLocked: too many failed sign-ins; see LockedError for until when.
	ErrLocked = errors.New("too many failed sign-in attempts")
	// ErrEmailNotVerified: the password was right but sign-in requires a
	// verified email address.
	ErrEmailNotVerified = errors.New("email address not verified")
	// ErrRegistrationDisabled: self-service registration is turned off.
	ErrRegistrationDisabled = errors.New("registration is disabled")
	// ErrInvalidToken: an email link that is unknown, used, expired or
	// meant for something else.
	ErrInvalidToken = errors.New("this link is invalid or has expired")
	// ErrAddressHasAccount: a registration link was used for an address
	// that has an account by now. Only the address's owner sees it.
	ErrAddressHasAccount = errors.New("this address already has an account")
)

// LockedError says until when an account is locked. errors.Is(err,
// ErrLocked) holds.
type LockedError struct{ Until time.Time }

func (e *LockedError) Error() string { return ErrLocked.Error() }
func (e *LockedError) Is(target error) bool {
	return target == ErrLocked
}

// Registration is what a person enters on the registration page.
type Registration struct {
	Email, Username, DisplayName, Password string
	// LinkParams are extra query parameters of the emailed link, opaque
	// here (the login UI carries the pending sign-in the person came from,
	// so confirming can lead back to the app).
	LinkParams url.Values
}

// Register starts a self-service sign-up: it stores a pending
// registration and emails a link to the address; the account exists only
// once that link is used (ConfirmEmail). When the address already has an
// account it stores nothing and emails that account's owner instead.
//
// Both cases answer nil and spend the same work (one password hash, one
// email), and neither holds the username, so no follow-up request can
// tell them apart: registering the address, then registering another
// address with the same username, succeeds either way. A username that
// belongs to an account is a field error whatever the address: usernames
// are public identifiers, addresses are not.
func (s *Service) Register(ctx context.Context, r Registration) error {
	if s.opts.RegistrationDisabled {
		return ErrRegistrationDisabled
	}
	email := strings.TrimSpace(r.Email)
	username := strings.ToLower(strings.TrimSpace(r.Username))
	name := strings.TrimSpace(r.DisplayName)
	// Validate first, whether or not the email is taken, so the answer is
	// the same shape; this also refuses an empty password.
	if err := s.validateNewUser(username, email, r.Password); err != nil {
		return err
	}
	if len([]rune(name)) > 100 {
		return invalid("display_name", "must be at most 100 characters")
	}
	if _, err := s.store.GetUserByLogin(ctx, username); err == nil {
		return invalid("username", "is already taken")
	} else if !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("looking up username: %w", err)
	}
	existing, err := s.store.GetUserByLogin(ctx, email)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("looking up email: %w", err)
	}
	if err == nil {
		// Spend what a new registration would (a password hash), so
		// that the response time does not tell the two cases apart.
		_, _ = s.hasher.Hash(ctx, r.Password)
		return s.send(ctx, lkmail.KindAccountExists, existing.Email, lkmail.Data{Name: displayName(existing), Link: s.link("/forgot-password", nil)})
	}
	hash, err := s.hasher.Hash(ctx, r.Password)
	if err != nil {
		return fmt.Errorf("hashing password: %w", err)
	}
	token := secret.Token(32)
	now := s.now().UTC()
	reg := &storage.Registration{ID: "r_" + secret.Token(12), TokenHash: secret.Hash(token), Username: username,
		Email: email, DisplayName: name, PasswordHash: hash, CreatedAt: now, ExpiresAt: now.Add(s.opts.VerifyTTL)}
	q := url.Values{}
	for k, v := range r.LinkParams {
		q[k] = v
	}
	q.Set("token", token)
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.CreateRegistration(ctx, reg); err != nil {
			return fmt.Errorf("storing registration: %w", err)
		}
		return s.send(ctx, lkmail.KindWelcome, email, lkmail.Data{Name: registrantName(reg),
			Link: s.link("/verify-email", q), ExpiresIn: s.opts.VerifyTTL})
	})
}

// registrantName is how the emails greet someone who has no account yet.
func registrantName(r *storage.Registration) string {
	if r.DisplayName != "" {
		return r.DisplayName
	}
	return r.Username
}

// confirmRegistration creates the account of a pending registration whose
// link was just used. username, when not empty, replaces the one chosen
// at registration (it was taken by someone who confirmed first). It
// returns (nil, nil) when hash names no live registration.
func (s *Service) confirmRegistration(ctx context.Context, hash []byte, username string) (*storage.User, error) {
	var out *storage.User
	exists := false
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		reg, err := s.store.ConsumeRegistration(ctx, hash, s.now().UTC())
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := s.store.GetUserByLogin(ctx, reg.Email); err == nil {
			// The address got an account since (another registration
			// confirmed first, an admin, a federated sign-in): this
			// link and the address's other pending ones are spent.
			exists = true
			return s.store.DeleteRegistrations(ctx, reg.Email)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if username != "" {
			reg.Username = username
		}
		// A taken username rolls the transaction back, which keeps the
		// registration: the person picks another name with the same link.
		u, err := s.createUser(ctx, NewUser{Username: reg.Username, Email: reg.Email, DisplayName: reg.DisplayName,
			PasswordHash: reg.PasswordHash, EmailVerified: true, CreatedAt: reg.CreatedAt, registered: true}, AuditUserRegister)
		var ve *ValidationError
		if errors.Is(err, ErrTaken) && errors.As(err, &ve) && ve.Field == "username" {
			return invalid("username", msgUsernameTakenSince)
		}
		if errors.Is(err, ErrTaken) {
			return ErrAddressHasAccount // an account for the address raced this one
		}
		if err != nil {
			return err
		}
		if err := s.store.DeleteRegistrations(ctx, reg.Email); err != nil {
			return err
		}
		out = u
		return nil
	})
	if err != nil {
		return nil, err
	}
	if exists {
		return nil, ErrAddressHasAccount
	}
	if out == nil {
		return nil, nil
	}
	return out, nil
}

// validateNewUser applies the registration rules without storing anything.
func (s *Service) validateNewUser(username, email, password string) error {
	if !usernamePattern.MatchString(username) {
		return invalid("username", msgUsername)
	}
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email {
		return invalid("email", "must be a valid email address")
	}
	return CheckPassword(password, username, email)
}

// ResendVerification emails a fresh verification link when login names an
// active account whose email is not verified, or an address with a pending
// registration; otherwise it does nothing. The caller answers the same
// either way.
func (s *Service) ResendVerification(ctx context.Context, login string) error {
	// Usernames are stored lowercase and email lookups ignore case, so
	// lowercase as Authenticate does: "Ada" names the same account there.
	login = strings.ToLower(strings.TrimSpace(login))
	u, err := s.store.GetUserByLogin(ctx, login)
	if errors.Is(err, storage.ErrNotFound) {
		if strings.Contains(login, "@") {
			return s.resendRegistration(ctx, login)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up user: %w", err)
	}
	if u.Status != storage.UserActive || u.EmailVerified || u.Email == "" {
		return nil
	}
	return s.sendFreshLink(ctx, u, storage.TokenVerifyEmail, u.Email, s.opts.VerifyTTL, "/verify-email",
		lkmail.KindVerifyEmail, lkmail.Data{})
}

// resendRegistration renews the newest pending registration for email
// with a new link (the old one stops working) and sends it.
func (s *Service) resendRegistration(ctx context.Context, email string) error {
	now := s.now().UTC()
	reg, err := s.store.LatestRegistration(ctx, email, now)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up registration: %w", err)
	}
	token := secret.Token(32)
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.RenewRegistration(ctx, reg.ID, secret.Hash(token), now.Add(s.opts.VerifyTTL)); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return nil // confirmed or pruned meanwhile
			}
			return fmt.Errorf("renewing registration: %w", err)
		}
		return s.send(ctx, lkmail.KindVerifyEmail, reg.Email, lkmail.Data{Name: registrantName(reg),
			Link: s.link("/verify-email", url.Values{"token": {token}}), ExpiresIn: s.opts.VerifyTTL})
	})
}

// ConfirmEmail redeems a registration, verification or email-change link.
// A token for any other purpose (a password reset) is not accepted. A
// registration link creates the account; username, when not empty,
// replaces the username chosen at registration — needed when someone else
// confirmed an account with it first, which ConfirmEmail reports as a
// ValidationError on "username" without spending the link.
func (s *Service) ConfirmEmail(ctx context.Context, token, username string) (*storage.User, error) {
	hash := secret.Hash(token)
	if username != "" {
		username = strings.ToLower(strings.TrimSpace(username))
		if !usernamePattern.MatchString(username) {
			return nil, invalid("username", msgUsername)
		}
	}
	if u, err := s.confirmRegistration(ctx, hash, username); u != nil || err != nil {
		return u, err
	}
	now := s.now().UTC()
	var out *storage.User
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		t, err := s.store.ConsumeUserToken(ctx, hash, storage.TokenVerifyEmail, now)
		change := false
		if errors.Is(err, storage.ErrNotFound) {
			t, err = s.store.ConsumeUserToken(ctx, hash, storage.TokenChangeEmail, now)
			change = true
		}
		if errors.Is(err, storage.ErrNotFound) {
			return ErrInvalidToken
		}
		if err != nil {
			return err
		}
		u, err := s.GetUser(ctx, t.UserID)
		if errors.Is(err, storage.ErrNotFound) {
			return ErrInvalidToken
		}
		if err != nil {
			return err
		}
		old := u.Email
		switch {
		case change:
			u.Email, u.EmailVerified = t.Email, true
		case strings.EqualFold(u.Email, t.Email):
			u.EmailVerified = true
		default:
			return ErrInvalidToken // the address changed since the link was sent
		}
		if err := s.store.UpdateUser(ctx, u); err != nil {
			if errors.Is(err, storage.ErrDuplicate) {
				return invalid("email", "is already used by another account")
			}
			return err
		}
		action := AuditUserEmailVerify
		if change {
			action = AuditUserEmailChange
		}
		if err := s.audit(ctx, action, u.ID, "", map[string]any{"email": u.Email, "email_verified": true}); err != nil {
			return err
		}
		if change {
			// Links sent to the old address must not outlive the change:
			// a reset link there could otherwise still take the account.
			if err := s.store.DeleteUserTokens(ctx, u.ID, storage.TokenResetPassword); err != nil {
				return err
			}
			if err := s.store.DeleteUserTokens(ctx, u.ID, storage.TokenVerifyEmail); err != nil {
				return err
			}
		}
		out = u
		if change && old != "" && !strings.EqualFold(old, u.Email) {
			// Queued with the change: sent once it commits.
			return s.send(ctx, lkmail.KindEmailChangedNotice, old, lkmail.Data{Name: displayName(u), NewEmail: u.Email})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ForgotPassword emails a reset link when email names an active account
// with an email address; otherwise it does nothing. The caller answers the
// same either way, so the page cannot be used to find accounts.
func (s *Service) ForgotPassword(ctx context.Context, email string) error {
	u, err := s.store.GetUserByLogin(ctx, strings.TrimSpace(email))
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up user: %w", err)
	}
	if u.Status != storage.UserActive || u.Email == "" {
		return nil
	}
	return s.sendFreshLink(ctx, u, storage.TokenResetPassword, u.Email, s.opts.ResetTTL, "/reset-password",
		lkmail.KindPasswordReset, lkmail.Data{})
}

// ResetPassword redeems a reset link: it sets the new password, signs the
// user out everywhere (every browser session and every token), clears a
// lockout, and emails a notice. Following the link proves control of the
// address, so the email counts as verified.
func (s *Service) ResetPassword(ctx context.Context, token, password string) (*storage.User, error) {
	if len(token) == 0 || len(token) > 128 {
		return nil, ErrInvalidToken
	}
	hash := secret.Hash(token)
	var out *storage.User
	err := s.store.InTx(ctx, func(ctx context.Context) error {
		// Check the password against the policy before using up the link.
		t, err := s.peekToken(ctx, hash, storage.TokenResetPassword)
		if err != nil {
			return err
		}
		u, err := s.GetUser(ctx, t.UserID)
		if errors.Is(err, storage.ErrNotFound) {
			return ErrInvalidToken
		}
		if err != nil {
			return err
		}
		if err := CheckPassword(password, u.Username, u.Email); err != nil {
			return err
		}
		if _, err := s.store.ConsumeUserToken(ctx, hash, storage.TokenResetPassword, s.now().UTC()); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return ErrInvalidToken
			}
			return err
		}
		if err := s.setPassword(ctx, u, password); err != nil {
			return err
		}
		if strings.EqualFold(u.Email, t.Email) && !u.EmailVerified {
			u.EmailVerified = true
			if err := s.store.UpdateUser(ctx, u); err != nil {
				return err
			}
		}
		if err := s.signOutEverywhere(ctx, u.ID, ""); err != nil {
			return err
		}
		if err := s.store.SetUserLockout(ctx, u.ID, 0, nil); err != nil {
			return err
		}
		if err := s.store.DeleteUserTokens(ctx, u.ID, storage.TokenResetPassword); err != nil {
			return err
		}
		out = u
		if err := s.audit(ctx, AuditUserPasswordReset, u.ID, "", nil); err != nil {
			return err
		}
		return s.send(ctx, lkmail.KindPasswordChanged, out.Email, lkmail.Data{Name: displayName(out)})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// peekToken checks a token is live without using it up: consume inside
// the caller's transaction and put it back. The caller's transaction is
// what makes the final consume atomic.
func (s *Service) peekToken(ctx context.Context, hash []byte, purpose storage.TokenPurpose) (*storage.UserToken, error) {
	t, err := s.store.ConsumeUserToken(ctx, hash, purpose, s.now().UTC())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateUserToken(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// CheckResetToken reports whether a reset link is still usable (to show
// the form or an "expired link" page) without using it.
func (s *Service) CheckResetToken(ctx context.Context, token string) error {
	if len(token) == 0 || len(token) > 128 {
		return ErrInvalidToken
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		_, err := s.peekToken(ctx, secret.Hash(token), storage.TokenResetPassword)
		return err
	})
}

// ChangePassword sets a new password after checking the current one, and
// signs out every other browser session and every token. keepSessionID is
// the session making the change.
func (s *Service) ChangePassword(ctx context.Context, userID, current, password, keepSessionID string) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if u.PasswordHash != "" {
		ok, _, err := s.hasher.Verify(ctx, u.PasswordHash, current)
		if err != nil {
			return fmt.Errorf("verifying password: %w", err)
		}
		if !ok {
			return invalid("current_password", "is not your current password")
		}
	}
	if err := CheckPassword(password, u.Username, u.Email); err != nil {
		return err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.setPassword(ctx, u, password); err != nil {
			return err
		}
		if err := s.signOutEverywhere(ctx, u.ID, keepSessionID); err != nil {
			return err
		}
		if err := s.audit(ctx, AuditUserPasswordChg, u.ID, "", nil); err != nil {
			return err
		}
		return s.send(ctx, lkmail.KindPasswordChanged, u.Email, lkmail.Data{Name: displayName(u)})
	})
	if err != nil {
		return err
	}
	return nil
}

// VerifyPassword checks a signed-in user's password (re-entry before a
// sensitive change). Users without a password pass.
func (s *Service) VerifyPassword(ctx context.Context, u *storage.User, password string) error {
	if u.PasswordHash == "" {
		return nil
	}
	ok, _, err := s.hasher.Verify(ctx, u.PasswordHash, password)
	if err != nil {
		return fmt.Errorf("verifying password: %w", err)
	}
	if !ok {
		return invalid("password", "is not your current password")
	}
	return nil
}

func (s *Service) setPassword(ctx context.Context, u *storage.User, password string) error {
	h, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hashing password: %w", err)
	}
	if err := s.store.UpdateUserPasswordHash(ctx, u.ID, h); err != nil {
		return err
	}
	// UpdateUserPasswordHash moved updated_at; reload the version.
	fresh, err := s.store.GetUser(ctx, u.ID)
	if err != nil {
		return err
	}
	*u = *fresh
	return nil
}

// signOutEverywhere ends every browser session but keep (if any) and
// revokes every access and refresh token of the user.
func (s *Service) signOutEverywhere(ctx context.Context, userID, keep string) error {
	sessions, err := s.store.ListUserBrowserSessions(ctx, userID)
	if err != nil {
		return err
	}
	for _, b := range sessions {
		if b.ID == keep {
			continue
		}
		if err := s.store.DeleteBrowserSession(ctx, b.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	// A pending email change started before (perhaps by whoever the
	// person is locking out) dies with the sessions.
	if err := s.store.DeleteUserTokens(ctx, userID, storage.TokenChangeEmail); err != nil {
		return err
	}
	return s.store.RevokeUserTokens(ctx, userID)
}

// ProfileUpdate changes the fields a person may edit; nil leaves a field
// as it is. Address{} and an empty UserMetadata clear them.
type ProfileUpdate struct {
	Username    *string
	DisplayName *string
	PictureURL  *string
	Locale      *string

	GivenName, FamilyName, MiddleName, Nickname *string
	Website, Zoneinfo, Birthdate, PhoneNumber   *string
	Address                                     *storage.Address
	UserMetadata                                *[]byte // a JSON object
}

// UpdateProfile validates and applies a profile change.
func (s *Service) UpdateProfile(ctx context.Context, userID string, p ProfileUpdate) (*storage.User, error) {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	changes := map[string]any{}
	if err := s.applyProfile(u, p, changes); err != nil {
		return nil, err
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.UpdateUser(ctx, u); err != nil {
			if errors.Is(err, storage.ErrDuplicate) {
				return invalid("username", "is already taken")
			}
			return err
		}
		return s.audit(ctx, AuditUserUpdate, u.ID, "", changes)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// ChangeEmail starts a change of address: a confirmation link goes to the
// new address, and the change happens when it is followed. An address
// that belongs to another account gets the same answer and no link.
func (s *Service) ChangeEmail(ctx context.Context, userID, newEmail string) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	newEmail = strings.TrimSpace(newEmail)
	if addr, err := mail.ParseAddress(newEmail); err != nil || addr.Address != newEmail {
		return invalid("email", "must be a valid email address")
	}
	if strings.EqualFold(newEmail, u.Email) {
		return invalid("email", "is already your email address")
	}
	if other, err := s.store.GetUserByLogin(ctx, newEmail); err == nil && other.ID != u.ID && strings.EqualFold(other.Email, newEmail) {
		return s.send(ctx, lkmail.KindAccountExists, other.Email, lkmail.Data{Name: displayName(other), Link: s.link("/forgot-password", nil)})
	}
	return s.sendFreshLink(ctx, u, storage.TokenChangeEmail, newEmail, s.opts.VerifyTTL, "/verify-email",
		lkmail.KindEmailChange, lkmail.Data{NewEmail: newEmail})
}

// SessionView is one browser session as the account page shows it.
type SessionView struct {
	storage.BrowserSession
	Current bool
}

// ListSessions returns the user's live browser sessions, newest first.
func (s *Service) ListSessions(ctx context.Context, userID, currentID string) ([]SessionView, error) {
	ss, err := s.store.ListUserBrowserSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]SessionView, len(ss))
	for i, b := range ss {
		out[i] = SessionView{BrowserSession: b, Current: b.ID == currentID}
	}
	return out, nil
}

// RevokeSession signs one of the user's own sessions out; another user's
// session id is ErrNotFound, as if it did not exist.
func (s *Service) RevokeSession(ctx context.Context, userID, sessionID string) error {
	b, err := s.store.GetBrowserSessionByID(ctx, sessionID)
	if err != nil {
		return err
	}
	if b.UserID != userID {
		return fmt.Errorf("session %s: %w", sessionID, storage.ErrNotFound)
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteBrowserSession(ctx, sessionID); err != nil {
			return err
		}
		return s.audit(ctx, AuditSessionRevoke, userID, "", map[string]any{"session_id": sessionID})
	})
}

// ConsentView is an app the user has granted access to.
type ConsentView struct {
	ClientID, ClientName string
	Scopes               []string
	GrantedAt            time.Time
}

// ListConsents returns the apps the user has connected.
func (s *Service) ListConsents(ctx context.Context, userID string) ([]ConsentView, error) {
	cs, err := s.store.ListUserConsents(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]ConsentView, 0, len(cs))
	for _, c := range cs {
		name := c.ClientID
		if cl, err := s.store.GetClientByID(ctx, c.ClientID); err == nil && cl.Name != "" {
			name = cl.Name
		}
		out = append(out, ConsentView{ClientID: c.ClientID, ClientName: name, Scopes: c.Scopes, GrantedAt: c.GrantedAt})
	}
	return out, nil
}

// RevokeConsent disconnects an app: the grant is forgotten (the app must
// ask again) and every token it holds for the user is revoked.
func (s *Service) RevokeConsent(ctx context.Context, userID, clientID string) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteConsent(ctx, userID, clientID); err != nil {
			return err
		}
		if err := s.store.RevokeUserClientTokens(ctx, userID, clientID); err != nil {
			return err
		}
		return s.audit(ctx, AuditConsentRevoke, userID, "", map[string]any{"client_id": clientID})
	})
}

// DeleteGrace is how long a soft-deleted account can be restored.
func (s *Service) DeleteGrace() time.Duration { return s.opts.DeleteGrace }

// DeleteAccount soft-deletes the user after checking the password: the
// account can no longer sign in, every session and token is revoked, and
// an admin can restore it during the grace period.
func (s *Service) DeleteAccount(ctx context.Context, userID, password string) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.VerifyPassword(ctx, u, password); err != nil {
		return err
	}
	now := s.now().UTC()
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		u.Status, u.DeletedAt = storage.UserDeleted, &now
		if err := s.store.UpdateUser(ctx, u); err != nil {
			return err
		}
		if err := s.store.DeleteUserBrowserSessions(ctx, u.ID); err != nil {
			return err
		}
		if err := s.store.DeleteUserTokens(ctx, u.ID, ""); err != nil {
			return err
		}
		if err := s.store.RevokeUserTokens(ctx, u.ID); err != nil {
			return err
		}
		if err := s.audit(ctx, AuditUserDelete, u.ID, "deleted by the account owner", nil); err != nil {
			return err
		}
		return s.send(ctx, lkmail.KindAccountDeleted, u.Email, lkmail.Data{Name: displayName(u)})
	})
	if err != nil {
		return err
	}
	return nil
}

// ClearLockout forgets failed sign-ins (an admin action, or after a
// password reset).
func (s *Service) ClearLockout(ctx context.Context, userID string) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.SetUserLockout(ctx, userID, 0, nil); err != nil {
			return err
		}
		return s.audit(ctx, AuditUserUnlock, userID, "", nil)
	})
}

// sendFreshLink replaces the user's links of one purpose with a new one
// (only the newest link works) and emails it to the address it is for.
func (s *Service) sendFreshLink(ctx context.Context, u *storage.User, purpose storage.TokenPurpose, to string,
	ttl time.Duration, path string, kind lkmail.Kind, data lkmail.Data) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteUserTokens(ctx, u.ID, purpose); err != nil {
			return err
		}
		link, err := s.issueToken(ctx, u, purpose, to, ttl, path)
		if err != nil {
			return err
		}
		data.Name, data.Link, data.ExpiresIn = displayName(u), link, ttl
		return s.send(ctx, kind, to, data)
	})
}

// issueToken stores a new single-use token for u and returns the link that
// carries it.
func (s *Service) issueToken(ctx context.Context, u *storage.User, purpose storage.TokenPurpose, email string, ttl time.Duration, path string) (string, error) {
	token := secret.Token(32)
	now := s.now().UTC()
	if err := s.store.CreateUserToken(ctx, &storage.UserToken{
		TokenHash: secret.Hash(token), Purpose: purpose, UserID: u.ID, Email: email,
		CreatedAt: now, ExpiresAt: now.Add(ttl),
	}); err != nil {
		return "", fmt.Errorf("issuing %s token: %w", purpose, err)
	}
	return s.link(path, url.Values{"token": {token}}), nil
}

func (s *Service) link(path string, q url.Values) string {
	u := s.opts.BaseURL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// send queues an email in ctx's transaction (the change that causes it),
// so it goes out exactly when the change commits; an error fails the
// change.
func (s *Service) send(ctx context.Context, kind lkmail.Kind, to string, data lkmail.Data) error {
	if s.opts.Mailer == nil || to == "" {
		return nil
	}
	if err := s.opts.Mailer.Send(ctx, kind, to, data); err != nil {
		return fmt.Errorf("queueing %s email: %w", kind, err)
	}
	return nil
}

func displayName(u *storage.User) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.Username
}
