package secret

import (
	"encoding/base64"
	"testing"
)

func TestToken(t *testing.T) {
	for _, n := range []int{12, 16, 32} {
		seen := map[string]bool{}
		for range 100 {
			tok := Token(n)
			b, err := base64.RawURLEncoding.DecodeString(tok)
			if err != nil || len(b) != n {
				t.Fatalf("Token(%d) = %q: %v (%d bytes)", n, tok, err, len(b))
			}
			if seen[tok] {
				t.Fatalf("Token(%d) repeated %q", n, tok)
			}
			seen[tok] = true
		}
	}
}

func TestHashAndEqual(t *testing.T) {
	a, b := Hash("token"), Hash("token")
	if len(a) != 32 || !Equal(a, b) {
		t.Fatal("the same token hashes differently")
	}
	if Equal(a, Hash("other")) || Equal(a, a[:31]) {
		t.Fatal("different values compare equal")
	}
}
