package provider

import (
	"context"
	"errors"
	"net/http"

	"github.com/ory/fosite"
)

// allowMissingState lets an authorization request without `state` through
// when it uses PKCE. fosite refuses any state shorter than
// MinParameterEntropy, an absent one included, and no setting turns that
// off (fosite treats a minimum below 1 as the default, 8). OAuth 2.1
// (§4.1.1, §7.12) makes state optional when PKCE binds the code to the
// client that asked for it, and openid-client v6 sends none when
// discovery advertises S256. fosite checks the state last, once every
// other parameter has been validated, so when ErrInvalidState is the
// answer the rest of the request is sound. A state that is present but
// too short is still refused: a client that sends one relies on it, and
// without PKCE nothing else binds the response to the request.
func allowMissingState(ar fosite.AuthorizeRequester, err error) error {
	if err == nil || ar == nil || !errors.Is(err, fosite.ErrInvalidState) {
		return err
	}
	// An empty state= counts as absent: RFC 6749 §3.1 treats a parameter
	// without a value as omitted.
	if ar.GetState() == "" && ar.GetRequestForm().Get("code_challenge") != "" {
		return nil
	}
	return err
}

// writeAuthorizeResponse is fosite's WriteAuthorizeResponse, with the
// form_post page's headers, `iss` (RFC 9207: the client learns which
// server answered, against mix-up attacks) and no empty `state` (fosite
// always adds one; a client that sent none, like openid-client, treats
// any state in the response as an error).
func (p *Provider) writeAuthorizeResponse(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, resp fosite.AuthorizeResponder) {
	params := resp.GetParameters()
	if params.Get("state") == "" {
		params.Del("state")
	}
	params.Set("iss", p.cfg.Issuer)
	if ar.GetResponseMode() == fosite.ResponseModeFormPost {
		setFormPostHeaders(w.Header(), ar.GetRedirectURI())
	}
	p.oauth.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// writeAuthorizeError sends an authorization error to the client's
// redirect URI. It replaces fosite's WriteAuthorizeError, which always
// sets `state` (empty when the client sent none) and has no `iss`
// (RFC 9207 §2: error responses carry it too). Callers have checked
// redirectable(ar).
func (p *Provider) writeAuthorizeError(_ context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	params := fosite.ErrorToRFC6749Error(err).ToValues()
	if st := ar.GetState(); st != "" {
		params.Set("state", st)
	}
	params.Set("iss", p.cfg.Issuer)

	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	// A copy: the request's URL is shared with whoever holds ar.
	u := *ar.GetRedirectURI()
	u.Fragment = "" // a redirect URI never has one (RFC 6749 §3.1.2)
	var location string
	switch ar.GetResponseMode() {
	case fosite.ResponseModeFormPost:
		setFormPostHeaders(h, &u)
		h.Set("Content-Type", "text/html;charset=UTF-8")
		fosite.WriteAuthorizeFormPostResponse(u.String(), params, p.fcfg.FormPostHTMLTemplate, w)
		return
	case fosite.ResponseModeFragment:
		location = u.String() + "#" + params.Encode()
	default:
		// The redirect URI's own query stays (RFC 6749 §3.1.2).
		for k, vs := range u.Query() {
			for _, v := range vs {
				params.Add(k, v)
			}
		}
		u.RawQuery = params.Encode()
		location = u.String()
	}
	h.Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}
