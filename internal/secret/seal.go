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
// The stored form is nonce || ciphertext+tag. During a rotation of
// LATCHKEY_SECRET it also holds the previous secrets' keys: it seals with
// the current one and opens with any.
type Sealer struct {
	aead     cipher.AEAD
	previous []cipher.AEAD
}

// NewSealer returns the sealer of purpose (one of the Purpose constants)
// for master, also opening what any of previous sealed.
func NewSealer(master []byte, purpose string, previous ...[]byte) (*Sealer, error) {
	aead, err := newAEAD(Derive(master, purpose))
	if err != nil {
		return nil, err
	}
	s := &Sealer{aead: aead}
	for _, p := range previous {
		a, err := newAEAD(Derive(p, purpose))
		if err != nil {
			return nil, err
		}
		s.previous = append(s.previous, a)
	}
	return s, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: sealing cipher: %w", err)
	}
	aead, err := cipher.NewGCMWithNonceSize(block, nonceSize)
	if err != nil {
		return nil, fmt.Errorf("secret: sealing cipher: %w", err)
	}
	return aead, nil
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

// Open reverses Seal, with the current secret's key or a previous one's;
// every failure wraps ErrSealed.
func (s *Sealer) Open(aad string, sealed []byte) ([]byte, error) {
	plain, _, err := s.open(aad, sealed)
	return plain, err
}

// open also reports whether the current key opened it.
func (s *Sealer) open(aad string, sealed []byte) (plain []byte, current bool, err error) {
	if len(sealed) < nonceSize+s.aead.Overhead() {
		return nil, false, fmt.Errorf("%w: too short (%d bytes)", ErrSealed, len(sealed))
	}
	if plain, err := s.aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], []byte(aad)); err == nil {
		return plain, true, nil
	}
	for _, p := range s.previous {
		if plain, err := p.Open(nil, sealed[:nonceSize], sealed[nonceSize:], []byte(aad)); err == nil {
			return plain, false, nil
		}
	}
	return nil, false, ErrSealed
}

// Reseal returns sealed under the current secret: unchanged (changed
// false) when the current key already opens it, sealed anew when only a
// previous one does, ErrSealed when none does.
func (s *Sealer) Reseal(rnd io.Reader, aad string, sealed []byte) (out []byte, changed bool, err error) {
	plain, current, err := s.open(aad, sealed)
	if err != nil {
		return nil, false, err
	}
	if current {
		return sealed, false, nil
	}
	out, err = s.Seal(rnd, aad, plain)
	return out, err == nil, err
}
