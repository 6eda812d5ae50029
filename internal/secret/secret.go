// Package secret makes and hashes the random values Latchkey hands out:
// session cookies, client secrets, challenge ids, verification tokens.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

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
