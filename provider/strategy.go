package provider

import (
	"context"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/latchkey/latchkey/internal/secret"
)

// accessTokenStrategy issues opaque (HMAC) access tokens by default and
// RFC 9068 JWTs for clients that asked for them. Codes and refresh tokens
// are always opaque.
//
// Every access token, JWT or not, is stored under its signature, so
// introspection and revocation work the same for both. The signature
// segment alone does not prove a JWT is ours: a token whose header and
// payload were replaced but whose third segment was kept would find the
// stored row. So AccessTokenSignature verifies the whole JWS against the
// published keys (current, next and retiring: a key stays published until
// every token it signed has expired) and answers "" — a signature no row
// has — for anything that does not verify. Every lookup of an access token
// (introspection, userinfo, the account and admin APIs, revocation) goes
// through it.
type accessTokenStrategy struct {
	*oauth2.HMACSHAStrategy
	jwt  *oauth2.DefaultJWTStrategy
	keys Keys
}

var _ oauth2.CoreStrategy = (*accessTokenStrategy)(nil)

func isJWT(token string) bool { return strings.Count(token, ".") == 2 }

func (s *accessTokenStrategy) AccessTokenSignature(ctx context.Context, token string) string {
	if isJWT(token) {
		if _, err := verifyJWS(s.keys, token); err != nil {
			return ""
		}
		return s.jwt.AccessTokenSignature(ctx, token)
	}
	return s.HMACSHAStrategy.AccessTokenSignature(ctx, token)
}

func (s *accessTokenStrategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	if sess, ok := r.GetSession().(*Session); ok && sess.JWTAccessToken {
		return s.jwt.GenerateAccessToken(ctx, r)
	}
	return s.HMACSHAStrategy.GenerateAccessToken(ctx, r)
}

func (s *accessTokenStrategy) ValidateAccessToken(ctx context.Context, r fosite.Requester, token string) error {
	if !isJWT(token) {
		return s.HMACSHAStrategy.ValidateAccessToken(ctx, r, token)
	}
	exp := r.GetSession().GetExpiresAt(fosite.AccessToken)
	if !exp.IsZero() && exp.Before(time.Now().UTC()) {
		return fosite.ErrTokenExpired.WithHintf("Access token expired at '%s'.", exp)
	}
	return nil
}

func newJTI() string { return secret.Token(16) }
