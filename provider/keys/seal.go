package keys

import (
	"crypto/aes"
	"crypto/cipher"
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

const nonceSize = 12 // the standard GCM nonce size

// newAEAD derives the sealing key from the server secret. HKDF (rather than
// using the secret directly) gives a uniformly random 256-bit key whatever
// the secret looks like, and separates this use of the secret from the
// others (cookies, HMAC tokens) that derive their own keys from it.
func newAEAD(secret []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(lksecret.Derive(secret, lksecret.PurposeSigningKeys))
	if err != nil {
		return nil, fmt.Errorf("keys: sealing cipher: %w", err)
	}
	aead, err := cipher.NewGCMWithNonceSize(block, nonceSize)
	if err != nil {
		return nil, fmt.Errorf("keys: sealing cipher: %w", err)
	}
	return aead, nil
}

// seal encrypts plaintext as nonce || ciphertext+tag. The kid is
// authenticated (not encrypted) data, so a sealed blob copied onto another
// row fails to open instead of silently pairing one key's private half with
// another key's public JWK.
func seal(aead cipher.AEAD, rnd io.Reader, kid string, plaintext []byte) ([]byte, error) {
	out := make([]byte, nonceSize, nonceSize+len(plaintext)+aead.Overhead())
	if _, err := io.ReadFull(rnd, out); err != nil {
		return nil, fmt.Errorf("keys: seal %s: nonce: %w", kid, err)
	}
	return aead.Seal(out, out[:nonceSize], plaintext, []byte(kid)), nil
}

// open reverses seal. Every failure wraps ErrSealed and names
// LATCHKEY_SECRET, since a changed secret is by far the likeliest cause and
// the operator needs to know where to look.
func open(aead cipher.AEAD, kid string, sealed []byte) ([]byte, error) {
	if len(sealed) < nonceSize+aead.Overhead() {
		return nil, fmt.Errorf("%w %s: too short (%d bytes); the row is corrupt", ErrSealed, kid, len(sealed))
	}
	plain, err := aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("%w %s: LATCHKEY_SECRET differs from the secret the key was sealed with, or the row was altered", ErrSealed, kid)
	}
	return plain, nil
}
