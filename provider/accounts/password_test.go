package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

var testParams = Argon2Params{MemoryKiB: 8 * 1024, Iterations: 1, Parallelism: 1}

func TestArgon2idHashAndVerify(t *testing.T) {
	ctx := context.Background()
	h := NewArgon2id(testParams, 2)
	hash, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=8192,t=1,p=1$") {
		t.Fatalf("hash format: %s", hash)
	}
	other, _ := h.Hash(ctx, "correct horse")
	if other == hash {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("imported pw"), bcrypt.MinCost)
	stronger := NewArgon2id(Argon2Params{MemoryKiB: 16 * 1024, Iterations: 1, Parallelism: 1}, 1)

	tests := []struct {
		name       string
		hasher     *Argon2idHasher
		hash, pw   string
		ok, rehash bool
		err        error
	}{
		{"right password", h, hash, "correct horse", true, false, nil},
		{"wrong password", h, hash, "correct horsf", false, false, nil},
		{"params changed: rehash", stronger, hash, "correct horse", true, true, nil},
		{"bcrypt import: rehash", h, string(bc), "imported pw", true, true, nil},
		{"bcrypt wrong", h, string(bc), "imported px", false, false, nil},
		{"unknown format", h, "plain", "plain", false, false, ErrUnknownHash},
		{"truncated argon2id", h, "$argon2id$v=19$m=1", "x", false, false, ErrUnknownHash},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := tc.hasher.Verify(ctx, tc.hash, tc.pw)
			if ok != tc.ok || rehash != tc.rehash || !errors.Is(err, tc.err) {
				t.Fatalf("got (%v, %v, %v), want (%v, %v, %v)", ok, rehash, err, tc.ok, tc.rehash, tc.err)
			}
		})
	}
}

func TestHasherHonoursContextWhileWaiting(t *testing.T) {
	h := NewArgon2id(testParams, 1)
	h.slots <- struct{}{} // every slot busy
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "password1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		pw    string
		valid bool
	}{
		{"short", false},
		{"eight ch", true},
		{strings.Repeat("x", 128), true},
		{strings.Repeat("x", 129), false},
		{"alice-the-user", false}, // equals username
		{"ALICE@EXAMPLE.COM", false},
	}
	for _, tc := range tests {
		err := CheckPassword(tc.pw, "alice-the-user", "alice@example.com")
		if (err == nil) != tc.valid {
			t.Errorf("%q: %v", tc.pw, err)
		}
		var ve *ValidationError
		if err != nil && (!errors.As(err, &ve) || ve.Field != "password") {
			t.Errorf("%q: not a password ValidationError: %v", tc.pw, err)
		}
	}
}

func TestSecretHasher(t *testing.T) {
	ctx := context.Background()
	h, _ := SecretHasher{}.Hash(ctx, []byte("s3cret"))
	if err := (SecretHasher{}).Compare(ctx, h, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	if err := (SecretHasher{}).Compare(ctx, h, []byte("s3cret!")); !errors.Is(err, ErrSecretMismatch) {
		t.Fatal(err)
	}
	if err := (SecretHasher{}).Compare(ctx, nil, []byte("")); !errors.Is(err, ErrSecretMismatch) {
		t.Fatal("an empty stored hash must never match")
	}
}

func TestCheckRedirectURI(t *testing.T) {
	tests := []struct {
		uri string
		ok  bool
	}{
		{"https://app.example.com/cb", true},
		{"http://localhost:3000/cb", true},
		{"http://127.0.0.1/cb", true},
		{"com.example.app:/oauth", true},
		{"http://app.example.com/cb", false},
		{"https://app.example.com/cb#frag", false},
		{"/relative", false},
		{"https://", false},
		{"https://user@app.example.com/cb", false},
		{"https://user:pass@app.example.com/cb", false},
		{"http://evil@127.0.0.1:4711/cb", false},
		{"https://@app.example.com/cb", false},
	}
	for _, tc := range tests {
		if err := checkRedirectURI(tc.uri); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.uri, err)
		}
	}
}
