package provider

import (
	"encoding/json"
	"math"

	"github.com/mohae/deepcopy"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// Session is what fosite stores with every code and token. It carries the
// ID token claims (openid.DefaultSession) and what a JWT access token needs
// (RFC 9068), so one session type serves opaque and JWT clients alike.
type Session struct {
	openid.DefaultSession
	// ClientID is the client the tokens were issued to (RFC 9068 client_id).
	ClientID string `json:"client_id"`
	// SessionID is the browser session ("sid"); empty for client_credentials.
	SessionID string `json:"sid,omitempty"`
	// JWTAccessToken: the client gets RFC 9068 JWT access tokens.
	JWTAccessToken bool `json:"jwt_at,omitempty"`
	// Ext are claims introspection returns and JWT access tokens carry
	// (the user's tier).
	Ext map[string]interface{} `json:"ext,omitempty"`
	// Resources are the resource servers (RFC 8707) the grant was
	// authorized for at the authorization endpoint. Every token of the
	// grant keeps them, so a refresh can ask for any of them even after
	// an earlier refresh narrowed its access token to one.
	Resources []string `json:"resources,omitempty"`
}

// UnmarshalJSON reads a stored session. encoding/json makes every number
// in the claim maps a float64, and fosite signs with go-jose v3, whose
// encoder writes a float64 in %g form (updated_at 1.796312823e+09, a
// limit of a million 1e+06), which strict decoders refuse. Latchkey's
// claims are all whole numbers, so they come back as int64.
func (s *Session) UnmarshalJSON(b []byte) error {
	type plain Session // the same fields, without this method
	if err := json.Unmarshal(b, (*plain)(s)); err != nil {
		return err
	}
	wholeNumbers(s.Ext)
	if s.DefaultSession.Claims != nil {
		wholeNumbers(s.DefaultSession.Claims.Extra)
	}
	return nil
}

// wholeNumbers replaces, in place, every integral float64 in v (a decoded
// JSON value) with an int64.
func wholeNumbers(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	case map[string]interface{}:
		for k, e := range x {
			x[k] = wholeNumbers(e)
		}
	case []interface{}:
		for i, e := range x {
			x[i] = wholeNumbers(e)
		}
	}
	return v
}

// GetExtraClaims implements fosite.ExtraClaimsSession: introspection adds
// these to its answer.
func (s *Session) GetExtraClaims() map[string]interface{} {
	if s.Ext == nil {
		s.Ext = map[string]interface{}{}
	}
	return s.Ext
}

var (
	_ fosite.ExtraClaimsSession  = (*Session)(nil)
	_ openid.Session             = (*Session)(nil)
	_ oauth2.JWTSessionContainer = (*Session)(nil)
)

// NewSession returns an empty session, the prototype fosite unmarshals
// stored sessions into.
func NewSession() *Session {
	return &Session{DefaultSession: openid.DefaultSession{
		Claims:  &jwt.IDTokenClaims{},
		Headers: &jwt.Headers{},
	}}
}

// Clone implements fosite.Session.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	return deepcopy.Copy(s).(fosite.Session)
}

// GetJWTClaims returns the RFC 9068 claims of a JWT access token. fosite
// fills exp, scope and aud (the granted audience), iat and iss.
func (s *Session) GetJWTClaims() jwt.JWTClaimsContainer {
	extra := map[string]interface{}{"client_id": s.ClientID}
	for k, v := range s.Ext {
		extra[k] = v
	}
	if s.SessionID != "" {
		extra["sid"] = s.SessionID
	}
	if c := s.DefaultSession.Claims; c != nil && !c.AuthTime.IsZero() {
		extra["auth_time"] = c.AuthTime.Unix()
	}
	return &jwt.JWTClaims{
		Subject: s.Subject,
		JTI:     newJTI(),
		Extra:   extra,
	}
}

// GetJWTHeader marks the token as an access token (RFC 9068 §2.1) so it
// cannot be confused with an ID token.
func (s *Session) GetJWTHeader() *jwt.Headers {
	return &jwt.Headers{Extra: map[string]interface{}{"typ": "at+jwt"}}
}
