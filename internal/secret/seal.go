package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
)

// ErrSealed: a sealed value could not be opened (another master secret
// sealed it, or the stored bytes were altered or moved to another row).
var ErrSealed = errors.New("secret: cannot open sealed value")

const nonceSize = 12 // the standard GCM nonce size

// Sealer encrypts values at rest (signing keys, TOTP secrets) with
// AES-256-GCM under a key derived from the master secret for one purpose.
// The stored form is nonce || ciphertext+tag.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns the sealer of purpose (one of the Purpose constants).
func NewSealer(master []byte, purpose string) (*Sealer, error) {
	block, err := aes.NewCipher(Derive(master, purpose))
	if err != nil {
		return nil, fmt.Errorf("secret: sealing cipher: %w", err)
	}
	aead, err := cipher.NewGCMWithNonceSize(block, nonceSize)
	if err != nil {
		return nil, fmt.Errorf("secret: sealing cipher: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext with a nonce read from rnd. aad (the row's id)
// is authenticated, not encrypted: a sealed value copied onto another row
// fails to open there.
func (s *Sealer) Seal(rnd io.Reader, aad string, plaintext []byte) ([]byte, error) {
	out := make([]byte, nonceSize, nonceSize+len(plaintext)+s.aead.Overhead())
	if _, err := io.ReadFull(rnd, out); err != nil {
		return nil, fmt.Errorf("secret: seal: nonce: %w", err)
	}
	return s.aead.Seal(out, out[:nonceSize], plaintext, []byte(aad)), nil
}

// Open reverses Seal; every failure wraps ErrSealed.
func (s *Sealer) Open(aad string, sealed []byte) ([]byte, error) {
	if len(sealed) < nonceSize+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: too short (%d bytes)", ErrSealed, len(sealed))
	}
	plain, err := s.aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], []byte(aad))
	if err != nil {
		return nil, ErrSealed
	}
	return plain, nil
}
