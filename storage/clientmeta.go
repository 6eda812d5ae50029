package storage

import "encoding/json"

// ClientMeta is a client's registration metadata beyond the core fields,
// under the names of OpenID Connect Dynamic Client Registration 1.0 and
// RFC 7591 (the admin API and the registration endpoint show it as is).
// It is stored as one JSON document: no query filters on it, and each
// protocol feature adds its fields without a schema change. The zero
// value is what every client registered before issue 13 has.
type ClientMeta struct {
	// TokenEndpointAuthMethod is how the client authenticates at the
	// token, introspection, revocation and PAR endpoints:
	// client_secret_basic, client_secret_post, client_secret_jwt,
	// private_key_jwt or none. "" (clients registered before it existed):
	// a secret in either form, none for a public client.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// TokenEndpointAuthSigningAlg pins the alg of the client's assertions;
	// "" accepts any the method allows.
	TokenEndpointAuthSigningAlg string `json:"token_endpoint_auth_signing_alg,omitempty"`
	// JWKS (a JWK Set document) or JWKSURI holds the client's public keys,
	// for private_key_jwt and signed request objects. At most one is set.
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI string          `json:"jwks_uri,omitempty"`

	// IDTokenSignedResponseAlg and AccessTokenSignedResponseAlg pick the
	// algorithm of the client's ID tokens and JWT access tokens (RS256,
	// PS256, ES256, EdDSA); "" is RS256.
	IDTokenSignedResponseAlg     string `json:"id_token_signed_response_alg,omitempty"`
	AccessTokenSignedResponseAlg string `json:"access_token_signed_response_alg,omitempty"`

	// RequestObjectSigningAlg pins the alg of the client's request
	// objects (JAR, RFC 9101); RequireSignedRequestObject refuses an
	// authorization request that does not come in one.
	RequestObjectSigningAlg    string `json:"request_object_signing_alg,omitempty"`
	RequireSignedRequestObject bool   `json:"require_signed_request_object,omitempty"`

	// SubjectType is public (""; the user id) or pairwise (a subject per
	// sector); SectorIdentifierURI names the sector when the redirect
	// URIs span several hosts.
	SubjectType         string `json:"subject_type,omitempty"`
	SectorIdentifierURI string `json:"sector_identifier_uri,omitempty"`

	// OIDC Back-Channel and Front-Channel Logout 1.0.
	BackchannelLogoutURI              string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired  bool   `json:"backchannel_logout_session_required,omitempty"`
	FrontchannelLogoutURI             string `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired bool   `json:"frontchannel_logout_session_required,omitempty"`

	// DPoPBoundAccessTokens makes DPoP (RFC 9449) mandatory for the
	// client's tokens.
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
}

// Token endpoint authentication methods.
const (
	AuthMethodSecretBasic = "client_secret_basic"
	AuthMethodSecretPost  = "client_secret_post"
	AuthMethodSecretJWT   = "client_secret_jwt"
	AuthMethodPrivateKey  = "private_key_jwt"
	AuthMethodNone        = "none"
)
