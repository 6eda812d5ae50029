package accounts

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"

	josev4 "github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/storage"
)

// The algorithms Latchkey signs ID tokens and JWT access tokens with, and
// accepts on client assertions and request objects: the one list of each
// (discovery shows them).
var (
	// SigningAlgs are the response signing algorithms (issue 13 §5).
	SigningAlgs = []string{"RS256", "PS256", "ES256", "EdDSA"}
	// AssertionAlgs are accepted on private_key_jwt assertions and signed
	// request objects.
	AssertionAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	// SecretJWTAlgs are accepted on client_secret_jwt assertions.
	SecretJWTAlgs = []string{"HS256", "HS384", "HS512"}
	// AuthMethods are the token endpoint authentication methods.
	AuthMethods = []string{storage.AuthMethodSecretBasic, storage.AuthMethodSecretPost, storage.AuthMethodSecretJWT,
		storage.AuthMethodPrivateKey, storage.AuthMethodNone}
)

// maxJWKS bounds a client's registered key set.
const maxJWKS = 16 << 10

// checkClientMeta validates a client's registration metadata against its
// core fields; the one place for these rules (the admin API, the CLI and
// dynamic registration all come through here).
func checkClientMeta(c *storage.Client) error {
	m := &c.Meta
	switch m.TokenEndpointAuthMethod {
	case "":
	case storage.AuthMethodNone:
		if !c.Public {
			return invalid("token_endpoint_auth_method", "none is for public clients only")
		}
	case storage.AuthMethodSecretBasic, storage.AuthMethodSecretPost, storage.AuthMethodSecretJWT, storage.AuthMethodPrivateKey:
		if c.Public {
			return invalid("token_endpoint_auth_method", "a public client does not authenticate: use none")
		}
	default:
		return invalid("token_endpoint_auth_method", "must be one of %v", AuthMethods)
	}
	if a := m.TokenEndpointAuthSigningAlg; a != "" {
		switch m.TokenEndpointAuthMethod {
		case storage.AuthMethodPrivateKey:
			if !slices.Contains(AssertionAlgs, a) {
				return invalid("token_endpoint_auth_signing_alg", "must be one of %v for private_key_jwt", AssertionAlgs)
			}
		case storage.AuthMethodSecretJWT:
			if !slices.Contains(SecretJWTAlgs, a) {
				return invalid("token_endpoint_auth_signing_alg", "must be one of %v for client_secret_jwt", SecretJWTAlgs)
			}
		default:
			return invalid("token_endpoint_auth_signing_alg", "applies only to private_key_jwt and client_secret_jwt")
		}
	}
	if len(m.JWKS) > 0 && m.JWKSURI != "" {
		return invalid("jwks", "set jwks or jwks_uri, not both")
	}
	if len(m.JWKS) > 0 {
		if err := checkJWKS(m.JWKS); err != nil {
			return invalid("jwks", "%v", err)
		}
	}
	if m.JWKSURI != "" {
		if err := checkHTTPSURI(m.JWKSURI); err != nil {
			return invalid("jwks_uri", "%v", err)
		}
	}
	if m.TokenEndpointAuthMethod == storage.AuthMethodPrivateKey && len(m.JWKS) == 0 && m.JWKSURI == "" {
		return invalid("jwks", "private_key_jwt needs the client's public keys: set jwks or jwks_uri")
	}
	for _, f := range []struct{ name, v string }{
		{"id_token_signed_response_alg", m.IDTokenSignedResponseAlg},
		{"access_token_signed_response_alg", m.AccessTokenSignedResponseAlg},
	} {
		if f.v != "" && !slices.Contains(SigningAlgs, f.v) {
			return invalid(f.name, "must be one of %v", SigningAlgs)
		}
	}
	if a := m.RequestObjectSigningAlg; a != "" && !slices.Contains(AssertionAlgs, a) {
		return invalid("request_object_signing_alg", "must be one of %v (unsigned request objects are not accepted)", AssertionAlgs)
	}
	if m.RequireSignedRequestObject && len(m.JWKS) == 0 && m.JWKSURI == "" {
		return invalid("require_signed_request_object", "signed request objects need the client's public keys: set jwks or jwks_uri")
	}
	switch m.SubjectType {
	case "", "public", "pairwise":
	default:
		return invalid("subject_type", "must be public or pairwise")
	}
	if m.SectorIdentifierURI != "" {
		if err := checkHTTPSURI(m.SectorIdentifierURI); err != nil {
			return invalid("sector_identifier_uri", "%v", err)
		}
	}
	if m.BackchannelLogoutURI != "" {
		if err := checkLogoutURI(m.BackchannelLogoutURI); err != nil {
			return invalid("backchannel_logout_uri", "%v", err)
		}
	} else if m.BackchannelLogoutSessionRequired {
		return invalid("backchannel_logout_session_required", "needs a backchannel_logout_uri")
	}
	if m.FrontchannelLogoutURI != "" {
		if err := checkLogoutURI(m.FrontchannelLogoutURI); err != nil {
			return invalid("frontchannel_logout_uri", "%v", err)
		}
	} else if m.FrontchannelLogoutSessionRequired {
		return invalid("frontchannel_logout_session_required", "needs a frontchannel_logout_uri")
	}
	return nil
}

// checkJWKS: a JWK Set of public signing keys, each with a kid so an
// assertion can name its key.
func checkJWKS(raw json.RawMessage) error {
	if len(raw) > maxJWKS {
		return errors.New("is too large (at most 16 KiB)")
	}
	var set josev4.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return errors.New("must be a JWK Set ({\"keys\": [...]}) of valid keys")
	}
	if len(set.Keys) == 0 {
		return errors.New("holds no key")
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return errors.New("must hold public keys only: a private key was sent")
		}
		if k.Use != "" && k.Use != "sig" {
			return errors.New("keys must be for signatures (use sig)")
		}
	}
	return nil
}

// checkHTTPSURI: an absolute https URL (http on loopback, for tests and
// development), no fragment.
func checkHTTPSURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("must be an absolute https URL")
	}
	if u.Fragment != "" || u.User != nil {
		return errors.New("must not contain a fragment or userinfo")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return errors.New("must be https (http only for localhost)")
	}
	return nil
}

// checkLogoutURI is the rule for back- and front-channel logout URIs
// (OIDC Back-Channel Logout §2.2: absolute, may carry a query, no
// fragment).
func checkLogoutURI(raw string) error { return checkHTTPSURI(raw) }

func isLoopback(h string) bool { return h == "localhost" || h == "127.0.0.1" || h == "::1" }
