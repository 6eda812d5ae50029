package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"

	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/storage"
)

// ErrFederationRefused: an upstream sign-in cannot be accepted. The
// wrapped message is safe to show the person.
var ErrFederationRefused = errors.New("sign-in with this provider was refused")

// ErrLastCredential: unlinking would leave the account with no way to
// sign in.
var ErrLastCredential = errors.New("the account would have no way to sign in")

type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Is(target error) bool {
	return target == ErrFederationRefused
}

func refuse(msg string) error { return &refusal{msg: msg} }

// Audited federation actions.
const (
	AuditIdentityLink    = "user.identity.link"
	AuditIdentityUnlink  = "user.identity.unlink"
	AuditFederatedSignup = "user.register.federated"
)

// FederatedClaims is what an upstream identity provider asserted about a
// person, after its ID token was verified.
type FederatedClaims struct {
	Upstream      string // the upstream's id
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Username      string // a preferred username, if the upstream gives one
	PictureURL    string
}

// FederatedSignIn decides which user an upstream sign-in is:
//   - an identity linked before signs in its user;
//   - otherwise, an upstream that asserts email_verified=true for the email
//     of an existing account is linked to it — only then;
//   - otherwise a new passwordless user is created (unique username derived
//     from the email, email verified as the upstream says, default tier).
//
// Suspended and deleted users are refused, and an unverified email that
// belongs to an existing account is refused rather than creating a second
// account or linking to someone else's. Every link and sign-up is audited.
func (s *Service) FederatedSignIn(ctx context.Context, c FederatedClaims) (*storage.User, error) {
	if c.Upstream == "" || c.Subject == "" {
		return nil, refuse("The provider did not identify the account.")
	}
	now := s.now().UTC()
	id, err := s.store.GetIdentity(ctx, c.Upstream, c.Subject)
	switch {
	case err == nil:
		u, err := s.store.GetUser(ctx, id.UserID)
		if err != nil {
			return nil, err
		}
		if u.Status != storage.UserActive {
			return nil, refuse("This account cannot sign in.")
		}
		if err := s.store.TouchIdentity(ctx, c.Upstream, c.Subject, now); err != nil {
			s.log.Warn("recording identity use", "err", err)
		}
		if s.opts.RequireVerifiedEmail && !u.EmailVerified {
			return nil, refuse("Verify your email address before signing in.")
		}
		return u, nil
	case !errors.Is(err, storage.ErrNotFound):
		return nil, err
	}

	email := strings.TrimSpace(c.Email)
	if email != "" {
		if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email {
			email = "" // not an address we can use
		}
	}
	if email != "" {
		existing, err := s.store.GetUserByLogin(ctx, email)
		if err == nil && strings.EqualFold(existing.Email, email) {
			if !c.EmailVerified {
				return nil, refuse("An account with this email address exists, and the provider has not verified the address. Sign in with your password, then link the provider from your account page.")
			}
			// Linking also needs the local account's address to be
			// verified: otherwise whoever registered it first (without
			// owning it) would get the owner's upstream sign-in.
			if !existing.EmailVerified {
				return nil, refuse("An account with this email address exists but has not verified it. Sign in with that account and verify the address first.")
			}
			if existing.Status != storage.UserActive {
				return nil, refuse("This account cannot sign in.")
			}
			err := s.store.InTx(ctx, func(ctx context.Context) error {
				if err := s.store.CreateIdentity(ctx, &storage.Identity{UpstreamID: c.Upstream, Subject: c.Subject,
					UserID: existing.ID, Email: email, CreatedAt: now, LastUsedAt: now}); err != nil {
					return err
				}
				return s.audit(ctx, AuditIdentityLink, existing.ID, "verified email match",
					map[string]any{"upstream": c.Upstream, "subject": c.Subject, "email": email})
			})
			if err != nil {
				return nil, err
			}
			return existing, nil
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
	}
	if email == "" {
		return nil, refuse("The provider did not share an email address, which an account needs.")
	}
	return s.federatedSignup(ctx, c, email)
}

// federatedSignup creates the user and links the identity in one
// transaction, trying a few usernames until one is free.
func (s *Service) federatedSignup(ctx context.Context, c FederatedClaims, email string) (*storage.User, error) {
	base := usernameFrom(c.Username, email)
	for attempt := 0; attempt < 8; attempt++ {
		name := base
		if attempt > 0 {
			suffix := fmt.Sprintf("%d", attempt)
			if attempt > 3 {
				suffix = strings.ToLower(secret.Token(3))
			}
			name = trimUsername(base, len(suffix)+1) + "-" + suffix
			name = strings.ToLower(strings.ReplaceAll(name, "_", "-"))
			if !usernamePattern.MatchString(name) {
				name = "user-" + strings.ToLower(secret.Token(4))
			}
		}
		var user *storage.User
		err := s.store.InTx(ctx, func(ctx context.Context) error {
			u, err := s.createUser(ctx, NewUser{Username: name, Email: email, DisplayName: truncateRunes(c.Name, 100),
				EmailVerified: c.EmailVerified}, AuditFederatedSignup)
			if err != nil {
				return err
			}
			if p := strings.TrimSpace(c.PictureURL); strings.HasPrefix(p, "https://") && len(p) <= 2000 {
				u.PictureURL = p
				if err := s.store.UpdateUser(ctx, u); err != nil {
					return err
				}
			}
			now := s.now().UTC()
			if err := s.store.CreateIdentity(ctx, &storage.Identity{UpstreamID: c.Upstream, Subject: c.Subject,
				UserID: u.ID, Email: email, CreatedAt: now, LastUsedAt: now}); err != nil {
				return err
			}
			user = u
			return s.audit(ctx, AuditIdentityLink, u.ID, "federated sign-up", map[string]any{"upstream": c.Upstream, "subject": c.Subject})
		})
		var ve *ValidationError
		if errors.As(err, &ve) && ve.Field == "username" {
			continue // taken (or, rarely, the email raced in): try another name
		}
		if err != nil {
			return nil, err
		}
		return user, nil
	}
	return nil, refuse("Could not create an account for this sign-in; try again.")
}

var notUsername = regexp.MustCompile(`[^a-z0-9._-]+`)

// usernameFrom derives a username from the upstream's preferred username
// or the email's local part.
func usernameFrom(preferred, email string) string {
	for _, cand := range []string{preferred, strings.SplitN(email, "@", 2)[0]} {
		n := notUsername.ReplaceAllString(strings.ToLower(strings.TrimSpace(cand)), "")
		n = strings.TrimLeft(n, "._-")
		n = trimUsername(n, 0)
		if usernamePattern.MatchString(n) {
			return n
		}
	}
	return "user-" + strings.ToLower(secret.Token(4))
}

// trimUsername leaves room for a suffix of n characters within the 39
// allowed.
func trimUsername(name string, n int) string {
	if len(name) > 39-n {
		name = name[:39-n]
	}
	return name
}

func truncateRunes(s string, n int) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// ListIdentities returns the upstream identities linked to a user.
func (s *Service) ListIdentities(ctx context.Context, userID string) ([]storage.Identity, error) {
	return s.store.ListUserIdentities(ctx, userID)
}

// UnlinkIdentity removes a linked identity when the user keeps another way
// to sign in (a password or another identity).
func (s *Service) UnlinkIdentity(ctx context.Context, userID, upstream, subject string) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		id, err := s.store.GetIdentity(ctx, upstream, subject)
		if err != nil {
			return err
		}
		if id.UserID != userID {
			return fmt.Errorf("identity %s/%s: %w", upstream, subject, storage.ErrNotFound)
		}
		u, err := s.store.GetUser(ctx, userID)
		if err != nil {
			return err
		}
		all, err := s.store.ListUserIdentities(ctx, userID)
		if err != nil {
			return err
		}
		if u.PasswordHash == "" && len(all) <= 1 {
			return ErrLastCredential
		}
		if err := s.store.DeleteIdentity(ctx, upstream, subject); err != nil {
			return err
		}
		return s.audit(ctx, AuditIdentityUnlink, userID, "", map[string]any{"upstream": upstream, "subject": subject})
	})
}

// AdminUnlinkIdentity removes a linked identity as an operator. Unlike
// UnlinkIdentity it may remove the last way to sign in (the person can
// still set a password through "forgot password").
func (s *Service) AdminUnlinkIdentity(ctx context.Context, userID, upstream, subject string) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		id, err := s.store.GetIdentity(ctx, upstream, subject)
		if err != nil {
			return err
		}
		if id.UserID != userID {
			return fmt.Errorf("identity %s/%s: %w", upstream, subject, storage.ErrNotFound)
		}
		if err := s.store.DeleteIdentity(ctx, upstream, subject); err != nil {
			return err
		}
		return s.audit(ctx, AuditIdentityUnlink, userID, "", map[string]any{"upstream": upstream, "subject": subject})
	})
}
