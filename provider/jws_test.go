package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	josev4 "github.com/go-jose/go-jose/v4"
)

// staticKeys publishes a fixed set of public keys.
type staticKeys struct{ set josev4.JSONWebKeySet }

func (k staticKeys) GetPrivateKey(context.Context) (interface{}, error) { return nil, nil }
func (k staticKeys) JWKS() ([]byte, string)                             { return nil, "" }
func (k staticKeys) MaxAge() time.Duration                              { return 0 }
func (k staticKeys) PublicKeys() josev4.JSONWebKeySet                   { return k.set }

var _ Keys = staticKeys{}

func sign(t *testing.T, alg josev4.SignatureAlgorithm, kid string, key any, payload string) string {
	t.Helper()
	s, err := josev4.NewSigner(josev4.SigningKey{Algorithm: alg, Key: josev4.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerifyJWS(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	keys := staticKeys{josev4.JSONWebKeySet{Keys: []josev4.JSONWebKey{
		{Key: rsaKey.Public(), KeyID: "r1", Algorithm: "RS256", Use: "sig"},
		{Key: ecKey.Public(), KeyID: "e1", Algorithm: "ES256", Use: "sig"},
	}}}
	good := sign(t, josev4.RS256, "r1", rsaKey, `{"sub":"a"}`)
	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	for _, tc := range []struct {
		name, token string
		ok          bool
	}{
		{"RS256 by a published key", good, true},
		{"ES256 by a published key", sign(t, josev4.ES256, "e1", ecKey, `{"sub":"a"}`), true},
		{"payload replaced", parts[0] + "." + b64([]byte(`{"sub":"b"}`)) + "." + parts[2], false},
		{"alg none", b64([]byte(`{"alg":"none","kid":"r1"}`)) + "." + parts[1] + "." + parts[2], false},
		{"alg none, no signature", b64([]byte(`{"alg":"none","kid":"r1"}`)) + "." + parts[1] + ".", false},
		{"HS256 keyed with the public key", b64([]byte(`{"alg":"HS256","kid":"r1"}`)) + "." + parts[1] + "." + parts[2], false},
		{"alg not the key's", sign(t, josev4.PS256, "r1", rsaKey, `{"sub":"a"}`), false},
		{"unknown kid", sign(t, josev4.RS256, "r2", rsaKey, `{"sub":"a"}`), false},
		{"published kid, other key", sign(t, josev4.RS256, "r1", other, `{"sub":"a"}`), false},
		{"not a JWS", "a.b.c", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload, err := verifyJWS(keys, tc.token)
			if tc.ok && (err != nil || string(payload) != `{"sub":"a"}`) {
				t.Fatalf("refused a good token: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
