package accounts

import (
	"context"
	"testing"
)

// benchParams are the production defaults (OWASP's minimum), not the cheap
// testParams: this measures what one sign-in costs the server.
var benchParams = Argon2Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}

// BenchmarkArgon2idHash is the cost of hashing one password (account
// creation, password change, rehash on sign-in).
func BenchmarkArgon2idHash(b *testing.B) {
	ctx := context.Background()
	h := NewArgon2id(benchParams, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkArgon2idVerify is the cost of checking one password (every
// sign-in).
func BenchmarkArgon2idVerify(b *testing.B) {
	ctx := context.Background()
	h := NewArgon2id(benchParams, 1)
	hash, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ok, rehash, err := h.Verify(ctx, hash, "correct horse battery staple")
		if err != nil || !ok || rehash {
			b.Fatalf("Verify = %v, %v, %v", ok, rehash, err)
		}
	}
}
