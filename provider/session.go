package provider

import (
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
