// Package secret makes and hashes the random values Latchkey hands out:
// session cookies, client secrets, challenge ids, verification tokens.
package secret

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
)

// MinMasterLen is the shortest LATCHKEY_SECRET accepted: 32 characters,
// enough entropy for HMAC and AES-256 keys derived from it.
const MinMasterLen = 32

// The purposes keys are derived for. Each is HKDF info, so no two uses of
// the master secret share key material; the strings are fixed forever (a
// change would invalidate every token, cookie and sealed key).
const (
	PurposeHMACTokens  = "latchkey hmac tokens v1"    // fosite's opaque tokens and codes
	PurposeCookies     = "latchkey cookies v1"        // form tokens and cookie MACs
	PurposeSigningKeys = "latchkey signing keys v1"   // sealing the private signing keys
	PurposeFederation  = "latchkey federation v1"     // sealed federation flow cookies
	PurposeTOTP        = "latchkey totp secrets v1"   // sealing TOTP secrets
	PurposeWebAuthn    = "latchkey webauthn v1"       // sealed passkey ceremony cookies
	PurposeMailOutbox  = "latchkey mail outbox v1"    // sealing queued email bodies
	PurposeClientJWT   = "latchkey client secrets v1" // sealing client_secret_jwt secrets
)

// CheckMaster refuses a master secret shorter than MinMasterLen.
func CheckMaster(master []byte) error {
	if len(master) < MinMasterLen {
		return fmt.Errorf("LATCHKEY_SECRET must be at least %d characters (got %d)", MinMasterLen, len(master))
	}
	return nil
}

// Derive returns the 32-byte key for purpose: HKDF-SHA256 of the master
// secret, no salt, the purpose as info. The one derivation every use of
// LATCHKEY_SECRET goes through.
func Derive(master []byte, purpose string) []byte {
	key, err := hkdf.Key(sha256.New, master, nil, purpose, 32)
	if err != nil {
		panic(fmt.Sprintf("secret: hkdf: %v", err)) // cannot happen for 32 bytes of SHA-256
	}
	return key
}

// DeriveAll is Derive for the current master secret and then each
// previous one, in that order: the keys a MAC made during a secret
// rotation may be checked against (the first one makes new MACs).
func DeriveAll(master []byte, purpose string, previous ...[]byte) [][]byte {
	keys := [][]byte{Derive(master, purpose)}
	for _, p := range previous {
		keys = append(keys, Derive(p, purpose))
	}
	return keys
}

// Token returns n random bytes, base64url without padding.
func Token(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never fails on supported platforms (Go 1.24+ panics
	// internally instead), so there is no error to handle.
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash is the SHA-256 of s. Random tokens of 128 bits or more need no salt
// and no slow hash: the digest is only there so a database leak does not
// leak usable tokens.
func Hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// Equal compares two byte slices in constant time.
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
