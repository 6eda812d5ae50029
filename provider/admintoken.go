package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// ErrNotAdminToken: the bearer token cannot authorize an admin request.
var ErrNotAdminToken = errors.New("not an active admin access token")

// CheckAdminToken validates a bearer token for the admin API: an active
// access token (opaque or JWT, checked against the token store so that a
// revoked token stops working at once) that either a confidential client
// obtained for itself with client_credentials, or a person obtained with
// the authorization-code flow (issue 11: people as administrators). It
// returns who acts — the client, or the person — and the admin scopes the
// token holds now: for a person, only those their roles still give, so
// that taking a role away takes effect at the next request.
func (p *Provider) CheckAdminToken(ctx context.Context, token string) (accounts.Actor, []string, error) {
	none := accounts.Actor{}
	if token == "" || len(token) > 8<<10 {
		return none, nil, ErrNotAdminToken
	}
	use, ar, err := p.oauth.IntrospectToken(ctx, token, fosite.AccessToken, NewSession())
	if errors.Is(err, storage.ErrUnavailable) {
		return none, nil, fmt.Errorf("checking the admin token: %w", err)
	}
	if err != nil || use != fosite.AccessToken { // fosite falls back to refresh tokens

		return none, nil, ErrNotAdminToken
	}
	sess, ok := ar.GetSession().(*Session)
	client := ar.GetClient()
	if !ok || client == nil || sess.Subject == "" {
		return none, nil, ErrNotAdminToken
	}
	if sess.Subject == client.GetID() {
		if client.IsPublic() {
			return none, nil, ErrNotAdminToken
		}
		return accounts.Actor{Type: storage.ActorClient, ID: client.GetID()}, ar.GetGrantedScopes(), nil
	}
	// A person's token: they must still be able to sign in, and hold the
	// roles now.
	user, err := p.accounts.GetUser(ctx, sess.Subject)
	if errors.Is(err, storage.ErrUnavailable) {
		return none, nil, fmt.Errorf("checking the admin token: %w", err)
	}
	if err != nil {
		return none, nil, ErrNotAdminToken
	}
	m, err := p.accounts.Memberships(ctx, user.ID)
	if err != nil {
		return none, nil, fmt.Errorf("checking the admin token: %w", err)
	}
	held := accounts.AdminScopesFor(m, ar.GetGrantedScopes())
	if len(held) == 0 {
		return none, nil, ErrNotAdminToken
	}
	return accounts.Actor{Type: storage.ActorUser, ID: user.ID}, held, nil
}
