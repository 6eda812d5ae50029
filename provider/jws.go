package provider

import (
	"errors"
	"fmt"

	josev4 "github.com/go-jose/go-jose/v4"
)

// verifiedAlgs are the algorithms Latchkey signs with. Anything else in a
// JWS header ("none", HS256 with a public key as the secret, …) is refused
// before a key is looked up.
var verifiedAlgs = []josev4.SignatureAlgorithm{josev4.RS256, josev4.ES256}

// verifyJWS checks a compact JWS that Latchkey signed: exactly one
// signature, made by a key in the published set (current, next or
// retiring) with the algorithm that key is for, over the header and
// payload as given. It returns the verified payload.
//
// The one place every JWT Latchkey accepts back (access tokens, ID token
// hints) is verified, so a token whose header or payload was replaced
// while its signature segment was kept is never taken for ours.
func verifyJWS(keys Keys, raw string) ([]byte, error) {
	sig, err := josev4.ParseSigned(raw, verifiedAlgs)
	if err != nil {
		return nil, fmt.Errorf("jws: %w", err)
	}
	if len(sig.Signatures) != 1 {
		return nil, errors.New("jws: exactly one signature expected")
	}
	h := sig.Signatures[0].Header
	set := keys.PublicKeys()
	found := set.Key(h.KeyID)
	if len(found) == 0 {
		return nil, errors.New("jws: unknown key")
	}
	key := found[0]
	if key.Algorithm != h.Algorithm {
		return nil, fmt.Errorf("jws: key %s is for %s, not %s", h.KeyID, key.Algorithm, h.Algorithm)
	}
	payload, err := sig.Verify(key.Key)
	if err != nil {
		return nil, fmt.Errorf("jws: %w", err)
	}
	return payload, nil
}
