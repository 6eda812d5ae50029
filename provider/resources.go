package provider

// Resource indicators (RFC 8707): which resource server an access token
// is for. The rule, in one place:
//   - a request names resource servers with `resource` (repeatable) or,
//     for clients written for Hydra or Auth0, fosite's `audience`
//     (repeated or space-separated); each is an absolute URI without a
//     fragment (accounts.CheckResourceURI);
//   - each must be one of the client's audiences (storage.Client.Audience),
//     compared byte for byte;
//   - at the authorization endpoint they are authorized for the grant and
//     kept in the session (Session.Resources), so every token of the grant
//     knows them;
//   - at the token endpoint a request may name some of the grant's
//     resources (client_credentials: of the client's audiences) and its
//     access token is for those; naming none, for all of them; a grant
//     without resources gives tokens for the client itself (aud =
//     client_id);
//   - anything else is invalid_target: an error redirect at the
//     authorization endpoint, a 400 at the token and PAR endpoints.
//
// Why not fosite's audience handling alone: fosite reads only `audience`,
// matches by URL prefix, answers invalid_request, and at the token
// endpoint always grants the authorization request's whole audience (a
// refresh cannot narrow it, RFC 8707 §2.2). So Latchkey decides the
// audience itself and gives fosite an exact matching strategy with the
// same error, for the checks fosite still makes.

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// errInvalidTarget is RFC 8707 §2's error, new each time (fosite's errors
// are pointers; a shared one could be changed by whoever wraps it).
func errInvalidTarget(format string, args ...any) error {
	e := &fosite.RFC6749Error{
		ErrorField:       "invalid_target",
		DescriptionField: "The requested resource is invalid, missing, unknown, or malformed.",
		CodeField:        http.StatusBadRequest,
	}
	return e.WithHintf(format, args...)
}

// audienceStrategy is fosite's AudienceMatchingStrategy with Latchkey's
// rule: exact matches only (fosite's default also accepts any URL below
// an allowed one) and invalid_target when one fails.
func audienceStrategy(allowed, requested []string) error {
	for _, r := range requested {
		if !slices.Contains(allowed, r) {
			return errInvalidTarget("The client may not ask for tokens for %q.", r)
		}
	}
	return nil
}

// requestedResources are the resource servers form names (nil when none:
// the common case allocates nothing).
func requestedResources(form url.Values) ([]string, error) {
	res, aud := form["resource"], form["audience"]
	if len(res) == 0 && len(aud) == 0 {
		return nil, nil
	}
	var out []string
	for _, list := range [][]string{res, fosite.GetAudiences(form)} {
		for _, r := range list {
			if r == "" { // a parameter without a value is omitted (RFC 6749 §3.1)
				continue
			}
			if err := accounts.CheckResourceURI(r); err != nil {
				return nil, errInvalidTarget("The resource %q %v.", r, err)
			}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// authorizedResources are the resource servers an authorization request
// (or a pushed one) asks for, each one the client may use.
func authorizedResources(c *storage.Client, form url.Values) ([]string, error) {
	res, err := requestedResources(form)
	if err != nil {
		return nil, err
	}
	return res, audienceStrategy(c.Audience, res)
}

// grantResources sets the audience of the access token a token request
// is about to get (RFC 9068 §3 "aud", introspection's "aud"): see the
// rule at the top of this file. ar is what fosite's NewAccessRequest
// returned.
func grantResources(ar fosite.AccessRequester, c *storage.Client) error {
	a, ok := ar.(*fosite.AccessRequest)
	if !ok {
		return fosite.ErrServerError.WithDebugf("unexpected access request type %T", ar)
	}
	requested, err := requestedResources(ar.GetRequestForm())
	if err != nil {
		return err
	}
	var covered []string // what the grant covers
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		covered = c.Audience
	} else if sess, ok := ar.GetSession().(*Session); ok && len(sess.Resources) > 0 {
		// The client may have lost an audience since the grant.
		for _, r := range sess.Resources {
			if slices.Contains(c.Audience, r) {
				covered = append(covered, r)
			}
		}
		if len(covered) == 0 {
			return errInvalidTarget("The client may no longer ask for tokens for the resources this grant was for.")
		}
	}
	if err := audienceStrategy(covered, requested); err != nil {
		return err
	}
	granted := requested
	if len(granted) == 0 {
		granted = covered
		if ar.GetGrantTypes().ExactOne("client_credentials") || len(granted) == 0 {
			granted = []string{c.ID}
		}
	}
	a.RequestedAudience = requested
	a.GrantedAudience = granted
	return nil
}
