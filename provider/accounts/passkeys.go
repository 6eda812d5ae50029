package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	lkmail "github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/storage"
)

// Passkeys (WebAuthn, with go-webauthn): registered from the account
// page, used as a second factor after a password, or alone — a
// discoverable credential with user verification is something the person
// has and something they are or know, so it counts as both factors.
//
// A ceremony is two requests; what the first one starts (the challenge,
// as go-webauthn's SessionData) is returned to the caller as opaque
// bytes to keep until the second (the login UI seals it into a cookie).

// ErrPasskey is the answer to a passkey ceremony that failed (a wrong
// origin, a replayed or forged assertion, an unknown credential).
var ErrPasskey = errors.New("the passkey could not be verified")

// ErrNoPasskeys: the service was built without a WebAuthn relying party.
var ErrNoPasskeys = errors.New("accounts: passkeys are not configured")

// NewWebAuthn is the relying party of issuer: its id is the issuer's host
// (without the port), its only origin the issuer's origin.
func NewWebAuthn(issuer, displayName string) (*webauthn.WebAuthn, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("webauthn: issuer %q: not an absolute URL", issuer)
	}
	if net.ParseIP(u.Hostname()) != nil {
		// Browsers refuse an IP address as relying party id.
		return nil, fmt.Errorf("webauthn: the issuer's host %s is an IP address; passkeys need a domain name (localhost works)", u.Hostname())
	}
	w, err := webauthn.New(&webauthn.Config{RPID: u.Hostname(), RPDisplayName: displayName,
		RPOrigins: []string{u.Scheme + "://" + u.Host}})
	if err != nil {
		return nil, fmt.Errorf("webauthn: %w", err)
	}
	return w, nil
}

// passkeyUser is a user as go-webauthn sees one: the handle is the user
// id (opaque, stable, under 64 bytes).
type passkeyUser struct {
	u     *storage.User
	creds []webauthn.Credential
	ids   []string // factor id of each credential
}

func (p *passkeyUser) WebAuthnID() []byte                         { return []byte(p.u.ID) }
func (p *passkeyUser) WebAuthnName() string                       { return p.u.Username }
func (p *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return p.creds }
func (p *passkeyUser) WebAuthnDisplayName() string {
	if p.u.DisplayName != "" {
		return p.u.DisplayName
	}
	return p.u.Username
}

var _ webauthn.User = (*passkeyUser)(nil)

func (s *Service) passkeyUser(ctx context.Context, u *storage.User) (*passkeyUser, error) {
	fs, err := s.store.ListFactors(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("listing factors: %w", err)
	}
	pu := &passkeyUser{u: u}
	for _, f := range fs {
		if f.Type != storage.FactorWebAuthn || f.ConfirmedAt == nil {
			continue
		}
		var c webauthn.Credential
		if err := json.Unmarshal([]byte(f.Credential), &c); err != nil {
			s.log.Warn("unreadable passkey record", "factor", f.ID, "err", err)
			continue
		}
		pu.creds, pu.ids = append(pu.creds, c), append(pu.ids, f.ID)
	}
	return pu, nil
}

func (s *Service) webauthn() (*webauthn.WebAuthn, error) {
	if s.opts.WebAuthn == nil {
		return nil, ErrNoPasskeys
	}
	return s.opts.WebAuthn, nil
}

// PasskeysEnabled reports whether passkeys are configured.
func (s *Service) PasskeysEnabled() bool { return s.opts.WebAuthn != nil }

// BeginPasskeyRegistration starts registering a passkey for a signed-in
// person: the options for navigator.credentials.create (JSON) and the
// ceremony state to keep.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, userID string) (options, state []byte, err error) {
	w, err := s.webauthn()
	if err != nil {
		return nil, nil, err
	}
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	pu, err := s.passkeyUser(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	creation, sess, err := w.BeginRegistration(pu,
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationRequired}),
		webauthn.WithExclusions(webauthn.Credentials(pu.creds).CredentialDescriptors()))
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin registration: %w", err)
	}
	return marshalCeremony(creation, sess)
}

func marshalCeremony(options any, sess *webauthn.SessionData) ([]byte, []byte, error) {
	o, err := json.Marshal(options)
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: options: %w", err)
	}
	st, err := json.Marshal(sess)
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: session: %w", err)
	}
	return o, st, nil
}

func unmarshalState(state []byte) (webauthn.SessionData, error) {
	var sess webauthn.SessionData
	if err := json.Unmarshal(state, &sess); err != nil || sess.Challenge == "" {
		return sess, fmt.Errorf("%w: no ceremony in progress", ErrPasskey)
	}
	return sess, nil
}

// FinishPasskeyRegistration checks the authenticator's answer and keeps
// the passkey under name. The person's first factor comes with their
// recovery codes (nil otherwise), as with TOTP.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, userID, name string, state, response []byte) ([]string, error) {
	w, err := s.webauthn()
	if err != nil {
		return nil, err
	}
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		name = "Passkey"
	}
	if len([]rune(name)) > 64 {
		return nil, invalid("name", "must be at most 64 characters")
	}
	sess, err := unmarshalState(state)
	if err != nil {
		return nil, err
	}
	pu, err := s.passkeyUser(ctx, u)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	cred, err := w.CreateCredential(pu, sess, parsed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	record, err := json.Marshal(cred)
	if err != nil {
		return nil, fmt.Errorf("webauthn: credential: %w", err)
	}
	var codes []string
	id := "fac_" + secret.Token(12)
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		had, err := s.MFAEnabled(ctx, userID)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		if err := s.store.CreateFactor(ctx, &storage.Factor{ID: id, UserID: userID, Type: storage.FactorWebAuthn, Name: name,
			CredentialID: cred.ID, Credential: string(record), ConfirmedAt: &now, CreatedAt: now}); err != nil {
			if errors.Is(err, storage.ErrDuplicate) {
				return invalid("credential", "this passkey is registered already")
			}
			return err
		}
		if !had {
			if codes, err = s.replaceRecoveryCodes(ctx, userID); err != nil {
				return err
			}
		}
		if err := s.audit(ctx, AuditFactorAdd, userID, "", map[string]any{"factor": id, "type": string(storage.FactorWebAuthn)}); err != nil {
			return err
		}
		return s.send(ctx, lkmail.KindFactorAdded, u.Email, lkmail.Data{Name: displayName(u), IP: ActorFrom(ctx).IP})
	})
	if err != nil {
		return nil, fmt.Errorf("registering passkey: %w", err)
	}
	return codes, nil
}

// passkeyAMR is what a passkey proves (RFC 8176): "swk" for a synced
// passkey (it can leave the device), "hwk" for one bound to hardware.
func passkeyAMR(c *webauthn.Credential) string {
	if c.Flags.BackupEligible {
		return "swk"
	}
	return "hwk"
}

// BeginPasskeySignIn starts a passwordless sign-in: no user is named,
// the browser offers its discoverable credentials (also in the username
// field's autofill, "conditional UI"); user verification is required.
func (s *Service) BeginPasskeySignIn() (options, state []byte, err error) {
	w, err := s.webauthn()
	if err != nil {
		return nil, nil, err
	}
	assertion, sess, err := w.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin sign-in: %w", err)
	}
	return marshalCeremony(assertion, sess)
}

// FinishPasskeySignIn verifies a passwordless sign-in and returns the
// person and what was proven: the passkey kind and "mfa" (possession and
// user verification). Every failure is ErrPasskey.
func (s *Service) FinishPasskeySignIn(ctx context.Context, state, response []byte) (*storage.User, []string, error) {
	w, err := s.webauthn()
	if err != nil {
		return nil, nil, err
	}
	sess, err := unmarshalState(state)
	if err != nil {
		return nil, nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	var found *passkeyUser
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		f, err := s.store.GetFactorByCredentialID(ctx, rawID)
		if err != nil {
			return nil, err
		}
		if string(userHandle) != f.UserID {
			return nil, errors.New("the user handle is not the credential's owner")
		}
		u, err := s.GetUser(ctx, f.UserID) // active users only
		if err != nil {
			return nil, err
		}
		if found, err = s.passkeyUser(ctx, u); err != nil {
			return nil, err
		}
		return found, nil
	}
	_, cred, err := w.ValidatePasskeyLogin(handler, sess, parsed)
	if err != nil || found == nil {
		if errors.Is(err, storage.ErrUnavailable) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	if !parsed.Response.AuthenticatorData.Flags.UserVerified() {
		return nil, nil, fmt.Errorf("%w: the authenticator did not verify the person", ErrPasskey)
	}
	if err := s.recordPasskeyUse(ctx, found, cred); err != nil {
		return nil, nil, err
	}
	return found.u, []string{passkeyAMR(cred), "mfa"}, nil
}

// BeginPasskeySecondFactor starts a passkey check for a person who has
// given a first factor.
func (s *Service) BeginPasskeySecondFactor(ctx context.Context, userID string) (options, state []byte, err error) {
	w, err := s.webauthn()
	if err != nil {
		return nil, nil, err
	}
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	pu, err := s.passkeyUser(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	if len(pu.creds) == 0 {
		return nil, nil, fmt.Errorf("%w: no passkey registered", ErrPasskey)
	}
	assertion, sess, err := w.BeginLogin(pu, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin: %w", err)
	}
	return marshalCeremony(assertion, sess)
}

// FinishPasskeySecondFactor verifies the passkey of userID and returns
// its method ("hwk" or "swk").
func (s *Service) FinishPasskeySecondFactor(ctx context.Context, userID string, state, response []byte) (string, error) {
	w, err := s.webauthn()
	if err != nil {
		return "", err
	}
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return "", err
	}
	sess, err := unmarshalState(state)
	if err != nil {
		return "", err
	}
	pu, err := s.passkeyUser(ctx, u)
	if err != nil {
		return "", err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	cred, err := w.ValidateLogin(pu, sess, parsed)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	if err := s.recordPasskeyUse(ctx, pu, cred); err != nil {
		return "", err
	}
	return passkeyAMR(cred), nil
}

// recordPasskeyUse stores the credential as the ceremony left it (its
// signature counter) and the time of use.
func (s *Service) recordPasskeyUse(ctx context.Context, pu *passkeyUser, cred *webauthn.Credential) error {
	if cred.Authenticator.CloneWarning {
		s.securityEvent(ctx, "passkey.clone_warning", pu.u.ID)
	}
	record, err := json.Marshal(cred)
	if err != nil {
		return fmt.Errorf("webauthn: credential: %w", err)
	}
	for i, c := range pu.creds {
		if string(c.ID) == string(cred.ID) {
			return s.store.UpdateFactorCredential(ctx, pu.u.ID, pu.ids[i], string(record), s.now().UTC())
		}
	}
	return fmt.Errorf("%w: unknown credential", ErrPasskey)
}
