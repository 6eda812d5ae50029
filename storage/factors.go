package storage

import (
	"context"
	"errors"
	"time"
)

// FactorType names a kind of second factor.
type FactorType string

const (
	FactorTOTP     FactorType = "totp"
	FactorWebAuthn FactorType = "webauthn"
)

// ErrReplay: a one-time code's time step was used already (or a later
// one): the code is refused.
var ErrReplay = errors.New("storage: code already used")

// Factor is a second factor of a user. Secret is sealed by
// provider/accounts; storage only keeps the bytes.
type Factor struct {
	ID     string
	UserID string
	Type   FactorType
	Name   string
	// TOTP: the sealed secret and the last time step accepted.
	Secret   []byte
	LastStep *int64
	// WebAuthn: the credential id and the library's record (JSON).
	CredentialID []byte
	Credential   string

	ConfirmedAt *time.Time // nil while the enrolment is unfinished
	CreatedAt   time.Time
	LastUsedAt  *time.Time
}

// Factors persists second factors and recovery codes.
type Factors interface {
	// CreateFactor inserts f; CreatedAt is set when zero.
	CreateFactor(ctx context.Context, f *Factor) error
	// GetFactor returns the user's factor; ErrNotFound when there is no
	// such factor or it is another user's.
	GetFactor(ctx context.Context, userID, id string) (*Factor, error)
	// ListFactors returns the user's factors (confirmed or not), oldest
	// first.
	ListFactors(ctx context.Context, userID string) ([]Factor, error)
	// ConfirmFactor marks an enrolment finished; ErrNotFound when there
	// is no such unconfirmed factor of the user.
	ConfirmFactor(ctx context.Context, userID, id string, at time.Time) error
	// DeleteFactor removes one; ErrNotFound when it is not the user's.
	DeleteFactor(ctx context.Context, userID, id string) error
	// DeleteUserFactors removes every factor and recovery code of the
	// user and returns how many factors there were.
	DeleteUserFactors(ctx context.Context, userID string) (int, error)
	// UseTOTPStep records that the factor accepted the code of time step
	// step, atomically: ErrReplay when that step or a later one was
	// accepted before, so that two requests with one code cannot both
	// succeed.
	UseTOTPStep(ctx context.Context, userID, id string, step int64, at time.Time) error
	// ReplaceRecoveryCodes makes hashes the user's only recovery codes.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, at time.Time) error
	// ConsumeRecoveryCode marks the unused code with that hash used,
	// atomically; ErrNotFound when it is unknown or used.
	ConsumeRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error
	// CountRecoveryCodes is how many unused codes the user has.
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)
	// GetFactorByCredentialID finds the WebAuthn factor with that
	// credential id (a passkey sign-in names no user first).
	GetFactorByCredentialID(ctx context.Context, credentialID []byte) (*Factor, error)
	// UpdateFactorCredential stores a WebAuthn factor's record after a
	// use (its signature counter and flags) and the time of use.
	UpdateFactorCredential(ctx context.Context, userID, id, credential string, at time.Time) error
	// UsersWithMFA reports which of userIDs have a confirmed factor (one
	// statement for a page of users).
	UsersWithMFA(ctx context.Context, userIDs []string) (map[string]bool, error)
}
