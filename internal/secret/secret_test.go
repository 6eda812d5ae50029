package secret

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
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

func TestCheckMaster(t *testing.T) {
	for _, tc := range []struct {
		name   string
		master string
		ok     bool
	}{
		{"empty", "", false},
		{"one short", "0123456789abcdef0123456789abcde", false},
		{"exactly the minimum", "0123456789abcdef0123456789abcdef", true},
		{"longer", "0123456789abcdef0123456789abcdef-and-more", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckMaster([]byte(tc.master)); (err == nil) != tc.ok {
				t.Fatalf("CheckMaster(%d chars) = %v, want ok=%v", len(tc.master), err, tc.ok)
			}
		})
	}
}

// TestDerivePinned pins every purpose's key for one master secret: a change
// to the derivation or a purpose string would invalidate every stored
// sealed key, token and cookie, so it must fail here first.
func TestDerivePinned(t *testing.T) {
	master := []byte("0123456789abcdef0123456789abcdef")
	seen := map[string]string{}
	for _, tc := range []struct{ purpose, want string }{
		{PurposeHMACTokens, derivedHMAC},
		{PurposeCookies, derivedCookies},
		{PurposeSigningKeys, derivedSigning},
		{PurposeFederation, derivedFederation},
		{PurposeTOTP, derivedTOTP},
		{PurposeWebAuthn, derivedWebAuthn},
		{PurposeMailOutbox, derivedMailOutbox},
		{PurposeClientJWT, derivedClientJWT},
	} {
		t.Run(tc.purpose, func(t *testing.T) {
			key := Derive(master, tc.purpose)
			got := hex.EncodeToString(key)
			if got != tc.want {
				t.Fatalf("Derive(%q) = %s, want %s", tc.purpose, got, tc.want)
			}
			if other, dup := seen[got]; dup {
				t.Fatalf("purposes %q and %q share a key", tc.purpose, other)
			}
			seen[got] = tc.purpose
		})
	}
	if hex.EncodeToString(Derive([]byte("another master secret of 32 chars"), PurposeCookies)) == derivedCookies {
		t.Fatal("the key does not depend on the master secret")
	}
}

// The keys the derivation gave before it moved here (computed with
// golang.org/x/crypto/hkdf, the implementation it replaced).
const (
	derivedHMAC       = "96659f749b3c6a1baf4690790f42081f5f1b9d09e9da5cc8e2b0467324a61b08"
	derivedCookies    = "2cf8d11d8d81dffe19b5bc5fc2bec4e4993165f7a719452e5336eafa13bf3462"
	derivedSigning    = "0242c9ca87a528c38e0d3e632d6d2ef851086848b0caf36833f1cb7dcbd721ec"
	derivedFederation = "6bd2a9662daef3a248a830028d1bfc386b6b8cc7ca10f4bb73bf854429f78e87"
	derivedTOTP       = "f37f415814ae71e497163e950957be098989e6bfd70fcbaf076f630ca89d8c01"
	derivedWebAuthn   = "5df4cdf6eee05c3bd5fce1d6a53b2e9e1cfaae82f0b666be16ebefe3a5152ec5"
	derivedMailOutbox = "22fd8899d2972669833700cf58137555a56fd1eb5f23941bc9abaa4702477eae"
	derivedClientJWT  = "efdad0549a609e20b4f28be2d3e301181bb167e9447ff4b0f276ad35f0f7a10f"
)

func TestSealer(t *testing.T) {
	master := []byte("0123456789abcdef0123456789abcdef")
	s, err := NewSealer(master, PurposeTOTP)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := s.Seal(rand.Reader, "row-a", []byte("JBSWY3DPEHPK3PXP"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open("row-a", blob); err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := NewSealer(master, PurposeSigningKeys)
	for name, open := range map[string]func() ([]byte, error){
		"another row":     func() ([]byte, error) { return s.Open("row-b", blob) },
		"another purpose": func() ([]byte, error) { return other.Open("row-a", blob) },
		"truncated":       func() ([]byte, error) { return s.Open("row-a", blob[:8]) },
		"flipped": func() ([]byte, error) {
			return s.Open("row-a", append(blob[:len(blob)-1:len(blob)-1], blob[len(blob)-1]^1))
		},
	} {
		if _, err := open(); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: %v, want ErrSealed", name, err)
		}
	}
}

// TestSealerRotation: during a rotation the sealer opens what the previous
// secret sealed, seals only under the current one, and Reseal moves a
// value to the current secret once.
func TestSealerRotation(t *testing.T) {
	oldM := []byte("the-old-master-secret-0123456789ab")
	newM := []byte("the-new-master-secret-0123456789ab")
	old, err := NewSealer(oldM, PurposeTOTP)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := old.Seal(rand.Reader, "f1", []byte("JBSWY3DPEHPK3PXP"))
	if err != nil {
		t.Fatal(err)
	}
	onlyNew, _ := NewSealer(newM, PurposeTOTP)
	if _, err := onlyNew.Open("f1", blob); !errors.Is(err, ErrSealed) {
		t.Fatalf("the new secret alone opened the old value: %v", err)
	}
	rot, err := NewSealer(newM, PurposeTOTP, []byte("an-unrelated-secret-0123456789abcd"), oldM)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rot.Open("f1", blob); err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("Open with a previous secret = %q, %v", got, err)
	}
	if _, err := rot.Open("f2", blob); !errors.Is(err, ErrSealed) {
		t.Fatal("a value opened on another row")
	}
	fresh, changed, err := rot.Reseal(rand.Reader, "f1", blob)
	if err != nil || !changed {
		t.Fatalf("Reseal = %v, %v", changed, err)
	}
	if got, err := onlyNew.Open("f1", fresh); err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("the resealed value does not open with the new secret: %q, %v", got, err)
	}
	if again, changed, err := rot.Reseal(rand.Reader, "f1", fresh); err != nil || changed || !bytes.Equal(again, fresh) {
		t.Fatalf("Reseal of a current value = %v, %v", changed, err)
	}
	if _, _, err := onlyNew.Reseal(rand.Reader, "f1", blob); !errors.Is(err, ErrSealed) {
		t.Fatalf("Reseal without the previous secret: %v", err)
	}
	// New values are sealed under the current secret only.
	n, _ := rot.Seal(rand.Reader, "f3", []byte("x"))
	if _, err := onlyNew.Open("f3", n); err != nil {
		t.Fatal("a new value is not sealed under the current secret")
	}
	if keys := DeriveAll(newM, PurposeCookies, oldM); len(keys) != 2 || !bytes.Equal(keys[0], Derive(newM, PurposeCookies)) ||
		!bytes.Equal(keys[1], Derive(oldM, PurposeCookies)) {
		t.Fatal("DeriveAll is not the current key, then the previous ones")
	}
}
