package keys

import (
	"errors"
	"fmt"
	"io"

	lksecret "github.com/latchkey/latchkey/internal/secret"
)

// ErrSealed means a stored private key could not be opened: the server runs
// with a different LATCHKEY_SECRET than the one that sealed the key, or the
// row was altered.
var ErrSealed = errors.New("keys: cannot open sealed private key")

// The sealing key is secret.Derive(LATCHKEY_SECRET, secret.PurposeSigningKeys).

// newAEAD is the signing keys' sealer (internal/secret holds the one
// sealing implementation; the stored format is nonce || ciphertext+tag).
func newAEAD(secret []byte, previous ...[]byte) (*lksecret.Sealer, error) {
	s, err := lksecret.NewSealer(secret, lksecret.PurposeSigningKeys, previous...)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return s, nil
}

// seal encrypts a private key. The kid is authenticated (not encrypted)
// data, so a sealed blob copied onto another row fails to open instead of
// silently pairing one key's private half with another key's public JWK.
func seal(s *lksecret.Sealer, rnd io.Reader, kid string, plaintext []byte) ([]byte, error) {
	out, err := s.Seal(rnd, kid, plaintext)
	if err != nil {
		return nil, fmt.Errorf("keys: seal %s: %w", kid, err)
	}
	return out, nil
}

// open reverses seal. Every failure wraps ErrSealed and names
// LATCHKEY_SECRET, since a changed secret is by far the likeliest cause and
// the operator needs to know where to look.
func open(s *lksecret.Sealer, kid string, sealed []byte) ([]byte, error) {
	plain, err := s.Open(kid, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w %s: LATCHKEY_SECRET (and LATCHKEY_PREVIOUS_SECRETS) differ from the secret the key was sealed with, or the row was altered (%v)", ErrSealed, kid, err)
	}
	return plain, nil
}
