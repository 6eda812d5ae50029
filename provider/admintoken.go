package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// ErrNotAdminToken: the bearer token cannot authorize an admin request.
var ErrNotAdminToken = errors.New("not an active admin access token")

// CheckAdminToken validates a bearer token for the admin API: an active
// access token (opaque or JWT, checked against the token store so that a
// revoked token stops working at once) that a confidential client obtained
// for itself with client_credentials. It returns the client and the
// granted scopes; the admin API decides what they allow.
func (p *Provider) CheckAdminToken(ctx context.Context, token string) (string, []string, error) {
	if token == "" || len(token) > 8<<10 {
		return "", nil, ErrNotAdminToken
	}
	use, ar, err := p.oauth.IntrospectToken(ctx, token, fosite.AccessToken, NewSession())
	if errors.Is(err, storage.ErrUnavailable) {
		return "", nil, fmt.Errorf("checking the admin token: %w", err)
	}
	if err != nil || use != fosite.AccessToken { // fosite falls back to refresh tokens

		return "", nil, ErrNotAdminToken
	}
	sess, ok := ar.GetSession().(*Session)
	client := ar.GetClient()
	if !ok || client == nil || client.IsPublic() || sess.Subject == "" || sess.Subject != client.GetID() {
		return "", nil, ErrNotAdminToken
	}
	return client.GetID(), ar.GetGrantedScopes(), nil
}
