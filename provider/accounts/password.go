package accounts

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey/latchkey/internal/secret"
)

// PasswordHasher hashes and verifies passwords.
type PasswordHasher interface {
	// Hash returns a self-describing hash (PHC string) of password.
	Hash(ctx context.Context, password string) (string, error)
	// Verify reports whether password matches hash, and whether the hash
	// should be replaced by a fresh Hash (old parameters, imported bcrypt).
	Verify(ctx context.Context, hash, password string) (ok, rehash bool, err error)
}

// Argon2Params are the argon2id cost parameters. OWASP's minimum is
// m=19 MiB, t=2, p=1, which is the default.
type Argon2Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// DefaultArgon2Params is OWASP's recommended minimum.
var DefaultArgon2Params = Argon2Params{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1}

// Argon2idHasher hashes with argon2id and verifies argon2id and bcrypt
// (imported) hashes. At most `concurrency` hashes run at once, so a burst of
// sign-ins costs at most concurrency×MemoryKiB of memory instead of
// exhausting it; the others wait their turn (or give up with ctx).
type Argon2idHasher struct {
	params Argon2Params
	slots  chan struct{}
}

var _ PasswordHasher = (*Argon2idHasher)(nil)

// NewArgon2id returns a hasher with the given parameters and at most
// concurrency simultaneous hashes (values < 1 mean 1).
func NewArgon2id(p Argon2Params, concurrency int) *Argon2idHasher {
	if concurrency < 1 {
		concurrency = 1
	}
	return &Argon2idHasher{params: p, slots: make(chan struct{}, concurrency)}
}

const (
	saltLen = 16
	keyLen  = 32
)

func (h *Argon2idHasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting to hash a password: %w", ctx.Err())
	}
}

func (h *Argon2idHasher) release() { <-h.slots }

// Hash implements PasswordHasher.
func (h *Argon2idHasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	salt, err := base64.RawURLEncoding.DecodeString(secret.Token(saltLen))
	if err != nil {
		return "", fmt.Errorf("making salt: %w", err)
	}
	p := h.params
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// ErrUnknownHash: the stored hash is in no format we know.
var ErrUnknownHash = errors.New("accounts: unknown password hash format")

// Verify implements PasswordHasher.
func (h *Argon2idHasher) Verify(ctx context.Context, hash, password string) (bool, bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		p, salt, key, err := parseArgon2id(hash)
		if err != nil {
			return false, false, err
		}
		got := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(key)))
		if subtle.ConstantTimeCompare(got, key) != 1 {
			return false, false, nil
		}
		return true, p != h.params, nil
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, false, nil
		}
		if err != nil {
			return false, false, fmt.Errorf("verifying bcrypt hash: %w", err)
		}
		return true, true, nil // imported: move to argon2id
	default:
		return false, false, ErrUnknownHash
	}
}

func parseArgon2id(hash string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 {
		return p, nil, nil, fmt.Errorf("%w: argon2id field count", ErrUnknownHash)
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, fmt.Errorf("%w: argon2id version %q", ErrUnknownHash, parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil {
		return p, nil, nil, fmt.Errorf("%w: argon2id parameters: %v", ErrUnknownHash, err)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return p, nil, nil, fmt.Errorf("%w: argon2id salt: %v", ErrUnknownHash, err)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) == 0 {
		return p, nil, nil, fmt.Errorf("%w: argon2id key", ErrUnknownHash)
	}
	return p, salt, key, nil
}

// SecretHasher is fosite's ClientSecretsHasher for Latchkey: client secrets
// are 256-bit random values generated by the server, so a plain SHA-256 is
// as strong as any slow hash and keeps the token endpoint fast (bcrypt at
// cost 10 would cap it near 15 tokens/s per core).
type SecretHasher struct{}

// Hash returns SHA-256(data).
func (SecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	return secret.Hash(string(data)), nil
}

// ErrSecretMismatch: the presented client secret is wrong.
var ErrSecretMismatch = errors.New("accounts: client secret does not match")

// Compare checks data against hash in constant time.
func (SecretHasher) Compare(_ context.Context, hash, data []byte) error {
	if len(hash) == 0 || !secret.Equal(hash, secret.Hash(string(data))) {
		return ErrSecretMismatch
	}
	return nil
}
