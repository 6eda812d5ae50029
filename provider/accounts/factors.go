package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	lkmail "github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/storage"
)

// Second factors: TOTP authenticator apps (RFC 6238: SHA-1, 6 digits,
// 30 s, ±1 step of clock skew, each step accepted once) and recovery
// codes (10 single-use codes, stored as hashes, shown once). The rules
// are here; storage keeps the rows, the secret sealed.

// Sealer encrypts TOTP secrets at rest (internal/secret.Sealer under
// secret.PurposeTOTP); the factor id is the associated data.
type Sealer interface {
	Seal(rnd io.Reader, aad string, plaintext []byte) ([]byte, error)
	Open(aad string, sealed []byte) ([]byte, error)
}

// ErrInvalidCode is the answer to a wrong, used or expired second-factor
// code, whatever the reason.
var ErrInvalidCode = errors.New("invalid code")

// ErrNoFactorSealer: the service was built without Options.FactorSealer.
var ErrNoFactorSealer = errors.New("accounts: second factors need a sealer")

const (
	totpPeriod        = 30
	totpSkew          = 1 // steps either side of now
	recoveryCodeCount = 10
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPEnrolment is a TOTP factor waiting for its first code: the secret
// (base32) and the otpauth:// URI an authenticator app scans.
type TOTPEnrolment struct{ FactorID, Secret, OTPAuthURI string }

// FactorProof is what a person shows before changing their factors: the
// current password, or a current TOTP or recovery code.
type FactorProof struct{ CurrentPassword, Code string }

// EnrolTOTP starts a TOTP enrolment from the account page or the account
// API: the current password is asked for when the account has one.
func (s *Service) EnrolTOTP(ctx context.Context, userID, currentPassword string) (*TOTPEnrolment, error) {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.PasswordHash != "" {
		if currentPassword == "" {
			return nil, invalid("current_password", "is required")
		}
		if err := s.VerifyPassword(ctx, u, currentPassword); err != nil {
			return nil, invalid("current_password", "is not your current password")
		}
	}
	return s.beginTOTP(ctx, u)
}

// EnrolTOTPInSignIn starts a TOTP enrolment in the middle of a sign-in
// that requires a second factor the person does not have: the first
// factor was proven moments ago in the same flow, so it is not asked
// again. Only the sign-in pipeline calls it.
func (s *Service) EnrolTOTPInSignIn(ctx context.Context, userID string) (*TOTPEnrolment, error) {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	return s.beginTOTP(ctx, u)
}

func (s *Service) beginTOTP(ctx context.Context, u *storage.User) (*TOTPEnrolment, error) {
	if s.opts.FactorSealer == nil {
		return nil, ErrNoFactorSealer
	}
	raw := make([]byte, 20) // RFC 4226 §4: 160 bits
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("totp secret: %w", err)
	}
	id := "fac_" + secret.Token(12)
	sealed, err := s.opts.FactorSealer.Seal(rand.Reader, id, raw)
	if err != nil {
		return nil, fmt.Errorf("sealing the totp secret: %w", err)
	}
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		// Unfinished enrolments are drafts: only the newest one counts.
		fs, err := s.store.ListFactors(ctx, u.ID)
		if err != nil {
			return err
		}
		for _, f := range fs {
			if f.Type == storage.FactorTOTP && f.ConfirmedAt == nil {
				if err := s.store.DeleteFactor(ctx, u.ID, f.ID); err != nil {
					return err
				}
			}
		}
		return s.store.CreateFactor(ctx, &storage.Factor{ID: id, UserID: u.ID, Type: storage.FactorTOTP,
			Name: "Authenticator app", Secret: sealed, CreatedAt: s.now().UTC()})
	})
	if err != nil {
		return nil, fmt.Errorf("starting totp enrolment: %w", err)
	}
	return s.enrolment(u, id, raw)
}

// PendingTOTP returns an unfinished enrolment again (the page is shown
// anew after a wrong code).
func (s *Service) PendingTOTP(ctx context.Context, userID, factorID string) (*TOTPEnrolment, error) {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	f, err := s.store.GetFactor(ctx, userID, factorID)
	if err != nil || f.Type != storage.FactorTOTP || f.ConfirmedAt != nil {
		// A stale form: start again.
		return s.beginTOTP(ctx, u)
	}
	raw, err := s.openSecret(f)
	if err != nil {
		return nil, err
	}
	return s.enrolment(u, f.ID, raw)
}

func (s *Service) enrolment(u *storage.User, id string, raw []byte) (*TOTPEnrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.totpIssuer(), AccountName: u.Username, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Secret: raw})
	if err != nil {
		return nil, fmt.Errorf("totp key: %w", err)
	}
	return &TOTPEnrolment{FactorID: id, Secret: key.Secret(), OTPAuthURI: key.URL()}, nil
}

// totpIssuer is the name authenticator apps show beside the code.
func (s *Service) totpIssuer() string {
	if s.opts.TOTPIssuer != "" {
		return s.opts.TOTPIssuer
	}
	if u, err := url.Parse(s.opts.BaseURL); err == nil && u.Host != "" {
		return u.Host
	}
	return "Latchkey"
}

func (s *Service) openSecret(f *storage.Factor) ([]byte, error) {
	if s.opts.FactorSealer == nil {
		return nil, ErrNoFactorSealer
	}
	raw, err := s.opts.FactorSealer.Open(f.ID, f.Secret)
	if err != nil {
		return nil, fmt.Errorf("opening the totp secret of %s (LATCHKEY_SECRET changed?): %w", f.ID, err)
	}
	return raw, nil
}

// ConfirmTOTP finishes an enrolment with a code from the app. The first
// factor a person confirms comes with their recovery codes (returned
// once, stored as hashes); later ones return none. A wrong code is a
// ValidationError naming "code".
func (s *Service) ConfirmTOTP(ctx context.Context, userID, factorID, code string) ([]string, error) {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	f, err := s.store.GetFactor(ctx, userID, factorID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (f.Type != storage.FactorTOTP || f.ConfirmedAt != nil)) {
		return nil, invalid("id", "is not an enrolment in progress")
	}
	if err != nil {
		return nil, err
	}
	ok, err := s.checkTOTP(ctx, f, code)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalid("code", "is not the current code of your authenticator app")
	}
	var codes []string
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		had, err := s.MFAEnabled(ctx, userID)
		if err != nil {
			return err
		}
		if err := s.store.ConfirmFactor(ctx, userID, factorID, s.now().UTC()); err != nil {
			return err
		}
		if !had {
			if codes, err = s.replaceRecoveryCodes(ctx, userID); err != nil {
				return err
			}
		}
		if err := s.audit(ctx, AuditFactorAdd, userID, "", map[string]any{"factor": factorID, "type": string(storage.FactorTOTP)}); err != nil {
			return err
		}
		return s.send(ctx, lkmail.KindFactorAdded, u.Email, lkmail.Data{Name: displayName(u), IP: ActorFrom(ctx).IP})
	})
	if err != nil {
		return nil, fmt.Errorf("confirming totp: %w", err)
	}
	return codes, nil
}

// checkTOTP reports whether code is the factor's code for a step within
// the skew and records that step, so the code works once.
func (s *Service) checkTOTP(ctx context.Context, f *storage.Factor, code string) (bool, error) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != 6 {
		return false, nil
	}
	raw, err := s.openSecret(f)
	if err != nil {
		return false, err
	}
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
	now := s.now()
	step := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		want, err := totp.GenerateCodeCustom(b32, time.Unix((step+d)*totpPeriod, 0), totpOpts)
		if err != nil {
			return false, fmt.Errorf("totp code: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		err = s.store.UseTOTPStep(ctx, f.UserID, f.ID, step+d, now.UTC())
		if errors.Is(err, storage.ErrReplay) {
			return false, nil
		}
		return err == nil, err
	}
	return false, nil
}

// MFAEnabled reports whether the person has a confirmed second factor.
func (s *Service) MFAEnabled(ctx context.Context, userID string) (bool, error) {
	fs, err := s.store.ListFactors(ctx, userID)
	if err != nil {
		return false, fmt.Errorf("listing factors: %w", err)
	}
	for _, f := range fs {
		if f.ConfirmedAt != nil {
			return true, nil
		}
	}
	return false, nil
}

// MFAEnabledUsers reports which of the users have a confirmed factor (the
// admin API's mfa_enabled, for a page of users at once).
func (s *Service) MFAEnabledUsers(ctx context.Context, userIDs []string) (map[string]bool, error) {
	m, err := s.store.UsersWithMFA(ctx, userIDs)
	if err != nil {
		return nil, fmt.Errorf("users with mfa: %w", err)
	}
	return m, nil
}

// VerifySecondFactor checks a TOTP code or a recovery code at sign-in
// and returns the RFC 8176 method it proves ("otp"). Attempts count
// toward the account's lockout exactly like passwords: a wrong code (or
// a replayed one) is ErrInvalidCode, a locked account a *LockedError.
func (s *Service) VerifySecondFactor(ctx context.Context, userID, code string) (string, error) {
	u, err := s.store.GetUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return "", ErrInvalidCode
	}
	if err != nil {
		return "", fmt.Errorf("looking up user: %w", err)
	}
	if u.Status != storage.UserActive {
		return "", ErrInvalidCode
	}
	lockout := s.opts.Lockout.Threshold >= 0
	var att storage.LoginAttempt
	if lockout {
		att, err = s.store.ClaimLoginAttempt(ctx, u.ID, s.now().UTC(), failureMemory, s.opts.Lockout.lockFor)
		if err != nil {
			return "", fmt.Errorf("recording the attempt: %w", err)
		}
		if att.Locked {
			return "", &LockedError{Until: *att.LockedUntil}
		}
	}
	ok, recovery, err := s.checkCode(ctx, u.ID, code)
	if err != nil {
		return "", err
	}
	if !ok {
		if lockout && att.LockedUntil != nil {
			s.locked(ctx, u, att)
		}
		return "", ErrInvalidCode
	}
	if lockout || u.FailedLogins > 0 || u.LockedUntil != nil {
		if err := s.store.SetUserLockout(ctx, u.ID, 0, nil); err != nil {
			s.log.Warn("clearing failed attempts", "user", u.ID, "err", err)
		}
	}
	if recovery {
		if err := s.audit(ctx, AuditRecoveryCodeUse, u.ID, "", nil); err != nil {
			s.log.Warn("recording a recovery code use", "user", u.ID, "err", err)
		}
		s.securityEvent(ctx, AuditRecoveryCodeUse, u.ID)
		if err := s.send(ctx, lkmail.KindRecoveryCodeUsed, u.Email, lkmail.Data{Name: displayName(u), IP: ActorFrom(ctx).IP}); err != nil {
			s.log.Warn("queueing the recovery code notice", "user", u.ID, "err", err)
		}
	}
	return "otp", nil
}

// checkCode tries code as a TOTP code of any confirmed TOTP factor, then
// as a recovery code.
func (s *Service) checkCode(ctx context.Context, userID, code string) (ok, recovery bool, err error) {
	fs, err := s.store.ListFactors(ctx, userID)
	if err != nil {
		return false, false, fmt.Errorf("listing factors: %w", err)
	}
	for i := range fs {
		f := &fs[i]
		if f.Type != storage.FactorTOTP || f.ConfirmedAt == nil {
			continue
		}
		ok, err := s.checkTOTP(ctx, f, code)
		if err != nil || ok {
			return ok, false, err
		}
	}
	norm := normalizeRecoveryCode(code)
	if len(norm) != 10 {
		return false, false, nil
	}
	err = s.store.ConsumeRecoveryCode(ctx, userID, secret.Hash(norm), s.now().UTC())
	if errors.Is(err, storage.ErrNotFound) {
		return false, false, nil
	}
	return err == nil, true, err
}

// Recovery codes are 10 characters of lower-case base32 (50 bits), shown
// as xxxxx-xxxxx; case, spaces and dashes do not matter when typed.
func normalizeRecoveryCode(c string) string {
	return strings.NewReplacer("-", "", " ", "").Replace(strings.ToLower(strings.TrimSpace(c)))
}

func newRecoveryCode() (string, error) {
	b := make([]byte, 7)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:10]
	return s[:5] + "-" + s[5:], nil
}

// replaceRecoveryCodes makes a new set and returns it (the only time it
// is seen in the clear).
func (s *Service) replaceRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	codes := make([]string, 0, recoveryCodeCount)
	hashes := make([][]byte, 0, recoveryCodeCount)
	for range recoveryCodeCount {
		c, err := newRecoveryCode()
		if err != nil {
			return nil, fmt.Errorf("recovery code: %w", err)
		}
		codes = append(codes, c)
		hashes = append(hashes, secret.Hash(normalizeRecoveryCode(c)))
	}
	if err := s.store.ReplaceRecoveryCodes(ctx, userID, hashes, s.now().UTC()); err != nil {
		return nil, err
	}
	return codes, nil
}

// ListFactors returns the person's confirmed factors (enrolments in
// progress are drafts, not shown) and how many recovery codes are left.
func (s *Service) ListFactors(ctx context.Context, userID string) ([]storage.Factor, int, error) {
	all, err := s.store.ListFactors(ctx, userID)
	if err != nil {
		return nil, 0, fmt.Errorf("listing factors: %w", err)
	}
	var out []storage.Factor
	for _, f := range all {
		if f.ConfirmedAt != nil {
			out = append(out, f)
		}
	}
	n, err := s.store.CountRecoveryCodes(ctx, userID)
	if err != nil {
		return nil, 0, fmt.Errorf("counting recovery codes: %w", err)
	}
	return out, n, nil
}

// checkProof accepts the current password or a current code. Failed
// proofs are ValidationErrors naming the field.
func (s *Service) checkProof(ctx context.Context, u *storage.User, p FactorProof) error {
	switch {
	case p.CurrentPassword != "" && u.PasswordHash != "":
		if err := s.VerifyPassword(ctx, u, p.CurrentPassword); err != nil {
			return invalid("current_password", "is not your current password")
		}
		return nil
	case p.Code != "":
		ok, _, err := s.checkCode(ctx, u.ID, p.Code)
		if err != nil {
			return err
		}
		if !ok {
			return invalid("code", "is not a valid code")
		}
		return nil
	case u.PasswordHash == "":
		return invalid("code", "is required")
	}
	return invalid("current_password", "is required (or a current code)")
}

// DeleteFactor removes one of the person's factors after a proof. When
// the last one goes, the recovery codes go with it.
func (s *Service) DeleteFactor(ctx context.Context, userID, factorID string, proof FactorProof) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if _, err := s.store.GetFactor(ctx, userID, factorID); err != nil {
		return err
	}
	if err := s.checkProof(ctx, u, proof); err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.removeFactor(ctx, userID, factorID, ""); err != nil {
			return err
		}
		return s.send(ctx, lkmail.KindFactorRemoved, u.Email, lkmail.Data{Name: displayName(u), IP: ActorFrom(ctx).IP})
	})
}

// AdminDeleteFactor removes one factor of a user (admin API), audited.
func (s *Service) AdminDeleteFactor(ctx context.Context, userID, factorID, reason string) error {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.removeFactor(ctx, userID, factorID, reason); err != nil {
			return err
		}
		return s.send(ctx, lkmail.KindFactorRemoved, u.Email, lkmail.Data{Name: displayName(u)})
	})
}

func (s *Service) removeFactor(ctx context.Context, userID, factorID, reason string) error {
	return s.store.InTx(ctx, func(ctx context.Context) error {
		if err := s.store.DeleteFactor(ctx, userID, factorID); err != nil {
			return err
		}
		left, err := s.MFAEnabled(ctx, userID)
		if err != nil {
			return err
		}
		if !left {
			if err := s.store.ReplaceRecoveryCodes(ctx, userID, nil, s.now().UTC()); err != nil {
				return err
			}
		}
		return s.audit(ctx, AuditFactorRemove, userID, reason, map[string]any{"factor": factorID})
	})
}

// RegenerateRecoveryCodes replaces the person's recovery codes after a
// proof; the old ones stop working.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, userID string, proof FactorProof) ([]string, error) {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	on, err := s.MFAEnabled(ctx, userID)
	if err != nil {
		return nil, err
	}
	if !on {
		return nil, invalid("factors", "set up two-step verification first")
	}
	if err := s.checkProof(ctx, u, proof); err != nil {
		return nil, err
	}
	var codes []string
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if codes, err = s.replaceRecoveryCodes(ctx, userID); err != nil {
			return err
		}
		return s.audit(ctx, AuditRecoveryCodes, userID, "", nil)
	})
	if err != nil {
		return nil, fmt.Errorf("regenerating recovery codes: %w", err)
	}
	return codes, nil
}

// ResetFactors removes every factor and recovery code of a user (an
// administrator helping someone who lost their phone), signs them out
// everywhere and revokes their tokens, in one audited transaction. It
// returns how many factors there were.
func (s *Service) ResetFactors(ctx context.Context, userID, reason string) (int, error) {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return 0, err
	}
	var n int
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		if n, err = s.store.DeleteUserFactors(ctx, userID); err != nil {
			return err
		}
		if err := s.signOutEverywhere(ctx, userID, ""); err != nil {
			return err
		}
		if err := s.audit(ctx, AuditFactorsReset, userID, reason, map[string]any{"factors": n}); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		return s.send(ctx, lkmail.KindFactorRemoved, u.Email, lkmail.Data{Name: displayName(u)})
	})
	if err != nil {
		return 0, fmt.Errorf("resetting factors: %w", err)
	}
	return n, nil
}
