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
// introspection and revocation work the same for both. That is also why a
// JWT is validated here by lookup and expiry rather than by re-checking its
// signature against the current key: the stored row proves we issued it,
// and a signature check would wrongly fail for tokens signed before a key
// rotation.
type accessTokenStrategy struct {
	*oauth2.HMACSHAStrategy
	jwt *oauth2.DefaultJWTStrategy
}

var _ oauth2.CoreStrategy = (*accessTokenStrategy)(nil)

func isJWT(token string) bool { return strings.Count(token, ".") == 2 }

func (s *accessTokenStrategy) AccessTokenSignature(ctx context.Context, token string) string {
	if isJWT(token) {
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
