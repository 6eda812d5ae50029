package federation

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/internal/secret"
)

// cookieName is the cookie that carries a started upstream sign-in from
// /federation/ID/start to /federation/ID/callback (its path).
const cookieName = "latchkey_federation"

// flowTTL is how long a started upstream sign-in can be completed.
const flowTTL = 10 * time.Minute

// flowState is what the browser carries between start and callback. It is
// sealed (AES-256-GCM), so the browser can neither read the PKCE verifier
// and nonce nor change anything.
type flowState struct {
	Upstream  string `json:"u"`
	State     string `json:"s"`
	Nonce     string `json:"n"`
	Verifier  string `json:"v"`
	Challenge string `json:"c,omitempty"` // the pending Latchkey authorization, if any
	Expires   int64  `json:"e"`           // Unix seconds
	Login     bool   `json:"l,omitempty"` // the relying party asked for prompt=login
	MaxAge    string `json:"m,omitempty"` // and this max_age
}

var errBadCookie = errors.New("federation cookie is invalid")

// sealer seals and opens flow cookies with a key derived from the master
// secret (internal/secret's sealer: AES-256-GCM, nonce || ciphertext+tag),
// opening cookies sealed under a previous secret during a rotation.
type sealer struct{ s *secret.Sealer }

func newSealer(master []byte, previous ...[]byte) (*sealer, error) {
	s, err := secret.NewSealer(master, secret.PurposeFederation, previous...)
	if err != nil {
		return nil, err
	}
	return &sealer{s: s}, nil
}

// seal encrypts fs; the upstream id is authenticated as additional data,
// so a cookie of one upstream is no use at another's callback.
func (s *sealer) seal(fs flowState) (string, error) {
	plain, err := json.Marshal(fs)
	if err != nil {
		return "", err
	}
	out, err := s.s.Seal(rand.Reader, aad(fs.Upstream), plain)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// open authenticates and decrypts a cookie of upstream and checks that it
// has not expired.
func (s *sealer) open(value, upstream string, now time.Time) (flowState, error) {
	var fs flowState
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return fs, errBadCookie
	}
	plain, err := s.s.Open(aad(upstream), raw)
	if err != nil {
		return fs, fmt.Errorf("%w: %v", errBadCookie, err)
	}
	if err := json.Unmarshal(plain, &fs); err != nil {
		return fs, fmt.Errorf("%w: %v", errBadCookie, err)
	}
	if fs.Upstream != upstream {
		return fs, fmt.Errorf("%w: it belongs to upstream %q", errBadCookie, fs.Upstream)
	}
	if now.Unix() >= fs.Expires {
		return fs, fmt.Errorf("%w: it expired at %s", errBadCookie, time.Unix(fs.Expires, 0).UTC().Format(time.RFC3339))
	}
	return fs, nil
}

func aad(upstream string) string { return cookieName + "\x00" + upstream }
