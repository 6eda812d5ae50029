package accounts

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/storage"
)

// The rules for changes a relying party makes with the person's access
// token alone (the account API), as opposed to the signed-in account page.
// A token proves less than a signed-in browser, so what could take the
// account over — moving it to another address, adding or changing a
// password — needs the current password, or is refused.

// protectedProfileFields are account fields a person can see through the
// account API but never set there.
func protectedProfileFields() []string {
	return []string{"id", "email_verified", "tier", "created_at", "updated_at", "password_hash", "has_password", "status",
		"phone_number_verified", "app_metadata", "last_login_at", "groups", "roles"}
}

// CheckSettableFields refuses a change that names a protected field.
func CheckSettableFields(fields []string) error {
	for _, f := range fields {
		if slices.Contains(protectedProfileFields(), f) {
			return invalid(f, "cannot be changed")
		}
	}
	return nil
}

// TokenProfileChange is a profile change asked for with an access token.
type TokenProfileChange struct {
	ProfileUpdate
	// Email, when it differs from the account's, sends a confirmation
	// link to the new address, as the account page does.
	Email *string
	// CurrentPassword is required with an Email change.
	CurrentPassword *string
}

// BeforePasswordCheck runs just before a password is verified (the caller
// applies its per-account limit there); an error stops the change.
type BeforePasswordCheck func() error

// UpdateProfileByToken applies ch to u. It reports whether a confirmation
// link was sent for a new address.
func (s *Service) UpdateProfileByToken(ctx context.Context, u *storage.User, ch TokenProfileChange, before BeforePasswordCheck) (*storage.User, bool, error) {
	moving := ch.Email != nil && !strings.EqualFold(*ch.Email, u.Email)
	if moving {
		if u.PasswordHash == "" {
			return nil, false, invalid("email", "cannot be changed through the API on an account without a password")
		}
		if err := before(); err != nil {
			return nil, false, err
		}
		cur := ""
		if ch.CurrentPassword != nil {
			cur = *ch.CurrentPassword
		}
		if err := s.VerifyPassword(ctx, u, cur); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				err = &ValidationError{Field: "current_password", Message: ve.Message}
			}
			return nil, false, err
		}
	}
	updated, err := s.UpdateProfile(ctx, u.ID, ch.ProfileUpdate)
	if err != nil {
		return nil, false, err
	}
	if moving && !strings.EqualFold(*ch.Email, updated.Email) {
		if err := s.ChangeEmail(ctx, updated.ID, *ch.Email); err != nil {
			return nil, false, err
		}
		return updated, true, nil
	}
	return updated, false, nil
}

// ChangePasswordByToken changes u's password given the current one. An
// account without a password gets none this way: a token alone must not
// add one to an account that signs in through an upstream provider.
func (s *Service) ChangePasswordByToken(ctx context.Context, u *storage.User, current, password, keepSessionID string, before BeforePasswordCheck) error {
	if u.PasswordHash == "" {
		return invalid("current_password", "this account has no password; set one on the account page")
	}
	if err := before(); err != nil {
		return err
	}
	err := s.ChangePassword(ctx, u.ID, current, password, keepSessionID)
	var ve *ValidationError
	if errors.As(err, &ve) && ve.Field == "password" {
		return &ValidationError{Field: "new_password", Message: ve.Message}
	}
	return err
}

// DeleteAccountByToken soft-deletes u given its password.
func (s *Service) DeleteAccountByToken(ctx context.Context, u *storage.User, password string, before BeforePasswordCheck) error {
	if err := before(); err != nil {
		return err
	}
	return s.DeleteAccount(ctx, u.ID, password)
}

// ConsentNeeded decides whether the person must be asked before client
// gets the requested scopes: never for a first-party client, otherwise
// unless every scope was granted before. It returns the scopes to grant
// without asking.
func (s *Service) ConsentNeeded(ctx context.Context, client *storage.Client, userID string, requested []string) ([]string, bool, error) {
	if client.FirstParty {
		return requested, false, nil
	}
	prior, err := s.Consent(ctx, userID, client.ID)
	if err != nil {
		return nil, false, err
	}
	for _, sc := range requested {
		if !slices.Contains(prior, sc) {
			return nil, true, nil
		}
	}
	return requested, false, nil
}
