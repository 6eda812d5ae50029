package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/internal/accesslog"
	"github.com/latchkey/latchkey/internal/clientip"
	"github.com/latchkey/latchkey/internal/httpx"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// handleToken is the token endpoint: authorization_code (with PKCE),
// refresh_token (rotation with reuse detection) and client_credentials.
func (p *Provider) handleToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if !checkOneClientAuthMethod(w, r, false) {
			return
		}
		sess := NewSession()
		ar, err := p.oauth.NewAccessRequest(ctx, r, sess)
		clientID := ""
		if ar != nil && ar.GetClient() != nil {
			clientID = ar.GetClient().GetID() // "" (fosite's empty client) when authentication failed
		}
		if clientID == "" {
			clientID = claimedClient(r)
		}
		accesslog.SetClient(ctx, clientID)
		if err != nil {
			err = tokenError(r, err)
			p.tokenSecurityEvent(r, err)
			if p.outage(w, "token", err) {
				return
			}
			p.logProtocolError("token", err)
			p.oauth.WriteAccessError(ctx, w, ar, err)
			return
		}
		client, ok := ar.GetClient().(*storage.Client)
		if !ok {
			p.oauth.WriteAccessError(ctx, w, ar, fosite.ErrServerError.WithDebug("unexpected client type"))
			return
		}
		if ar.GetGrantTypes().ExactOne("client_credentials") {
			// The client acts for itself: it is the subject. fosite has
			// already checked the requested scopes against the client's.
			sess.Subject = client.ID
			sess.ClientID = client.ID
			sess.JWTAccessToken = client.AccessTokenFormat == storage.AccessTokenJWT
			for _, s := range ar.GetRequestedScopes() {
				ar.GrantScope(s)
			}
		}
		// Whom the access token is for (RFC 8707, resources.go).
		if err := grantResources(ar, client); err != nil {
			if p.outage(w, "token", err) {
				return
			}
			p.logProtocolError("token", err)
			p.oauth.WriteAccessError(ctx, w, ar, err)
			return
		}
		// A person's tokens are only renewed while the person may sign in:
		// suspension and deletion also revoke their tokens and codes, and
		// this check closes the gap of a grant racing with them.
		if gt := ar.GetGrantTypes(); gt.ExactOne("authorization_code") || gt.ExactOne("refresh_token") {
			if sub := ar.GetSession().GetSubject(); sub != "" {
				user, err := p.accounts.GetUser(ctx, sub)
				if err == nil && gt.ExactOne("refresh_token") {
					// Refreshed tokens carry the claims as they are
					// now: a membership ended since sign-in is gone.
					if s, ok := ar.GetSession().(*Session); ok {
						if cerr := p.refreshClaims(ctx, s, user, client, ar.GetGrantedScopes()); cerr != nil {
							err = fmt.Errorf("refresh claims: %w", cerr)
							if p.outage(w, "token", err) {
								return
							}
							p.oauth.WriteAccessError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
							return
						}
					}
				}
				if err != nil {
					err = fosite.ErrInvalidGrant.WithHint("The account cannot sign in.").WithWrap(err)
					if p.outage(w, "token", err) {
						return
					}
					p.logProtocolError("token", err)
					p.oauth.WriteAccessError(ctx, w, ar, err)
					return
				}
			}
		}
		resp, err := p.oauth.NewAccessResponse(ctx, ar)
		if err != nil {
			if p.outage(w, "token", err) {
				return
			}
			p.logProtocolError("token", err)
			p.oauth.WriteAccessError(ctx, w, ar, err)
			return
		}
		p.oauth.WriteAccessResponse(ctx, w, ar, resp)
		if p.metrics != nil {
			p.metrics.TokenIssued(strings.Join(ar.GetGrantTypes(), " "))
		}
	})
}

// tokenError replaces fosite's catch-all invalid_request with the more
// precise RFC 6749 §5.2 codes clients act on: unsupported_grant_type for a
// grant Latchkey does not offer, invalid_client (401) when no client
// authentication was sent at all.
func tokenError(r *http.Request, err error) error {
	if !errors.Is(err, fosite.ErrInvalidRequest) {
		return err
	}
	if gt := r.PostForm.Get("grant_type"); gt != "" && !slices.Contains(accounts.GrantTypes(), gt) {
		return fosite.ErrUnsupportedGrantType.WithHintf("The grant type %q is not supported.", gt)
	}
	if _, _, basic := r.BasicAuth(); !basic && r.Header.Get("Authorization") == "" && r.PostForm.Get("client_id") == "" &&
		r.PostForm.Get("grant_type") != "" {
		return fosite.ErrInvalidClient.WithHint("Client authentication is required: HTTP Basic (client_secret_basic) or client_id and client_secret in the body.")
	}
	return err
}

// handleIntrospect is RFC 7662; the caller authenticates as a client.
func (p *Provider) handleIntrospect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if !checkOneClientAuthMethod(w, r, false) {
			return
		}
		ir, err := p.oauth.NewIntrospectionRequest(ctx, r, NewSession())
		if err != nil {
			// RFC 7662 §2.3: a caller that fails client authentication
			// gets RFC 6749's invalid_client, not fosite's
			// request_unauthorized.
			if errors.Is(err, fosite.ErrRequestUnauthorized) {
				err = fosite.ErrInvalidClient.WithHint("Client authentication is required to introspect tokens.").WithWrap(err)
			}
			if p.outage(w, "introspect", err) {
				return
			}
			p.logProtocolError("introspect", err)
			p.oauth.WriteIntrospectionError(ctx, w, err)
			return
		}
		p.oauth.WriteIntrospectionResponse(ctx, w, ir)
	})
}

// handleRevoke is RFC 7009.
func (p *Provider) handleRevoke() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if !checkOneClientAuthMethod(w, r, false) {
			return
		}
		err := p.oauth.NewRevocationRequest(ctx, r)
		if p.outage(w, "revoke", err) {
			return
		}
		p.logProtocolError("revoke", err)
		p.oauth.WriteRevocationResponse(ctx, w, err)
	})
}

// handlePAR is RFC 9126 pushed authorization requests.
func (p *Provider) handlePAR() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if !checkOneClientAuthMethod(w, r, true) {
			return
		}
		ar, err := p.oauth.NewPushedAuthorizeRequest(ctx, r)
		// fosite's last check after its state check, skipped when the
		// state was what failed.
		if err = allowMissingState(ar, err); err == nil && ar.GetRequestedScopes().Has("openid") && r.Form.Get("redirect_uri") == "" {
			err = fosite.ErrInvalidRequest.WithHint("Query parameter 'redirect_uri' is required when performing an OpenID Connect flow.")
		}
		if err != nil {
			if p.outage(w, "par", err) {
				return
			}
			p.logProtocolError("par", err)
			p.oauth.WritePushedAuthorizeError(ctx, w, ar, err)
			return
		}
		// Latchkey's redirect URI rule, checked once the client has
		// authenticated: fosite's answers here are JSON, never a
		// redirect, and nothing is stored before NewPushedAuthorizeResponse.
		if c, ok := ar.GetClient().(*storage.Client); !ok ||
			!matchRedirectURI(requestedRedirectURI(ar.GetRequestForm(), c), c.RedirectURIs, c.Public) {
			err := errUnregisteredRedirect()
			if p.outage(w, "par", err) {
				return
			}
			p.logProtocolError("par", err)
			p.oauth.WritePushedAuthorizeError(ctx, w, ar, err)
			return
		} else if _, err := authorizedResources(c, ar.GetRequestForm()); err != nil {
			if p.outage(w, "par", err) {
				return
			}
			p.logProtocolError("par", err)
			p.oauth.WritePushedAuthorizeError(ctx, w, ar, err)
			return
		}
		resp, err := p.oauth.NewPushedAuthorizeResponse(ctx, ar, NewSession())
		if err != nil {
			if p.outage(w, "par", err) {
				return
			}
			p.logProtocolError("par", err)
			p.oauth.WritePushedAuthorizeError(ctx, w, ar, err)
			return
		}
		p.oauth.WritePushedAuthorizeResponse(ctx, w, ar, resp)
	})
}

// outage answers a request that failed because the database is
// unavailable: 503 temporarily_unavailable with Retry-After, never an
// answer about the caller's credentials or token (a 401 invalid_client, an
// introspection's "active": false) that the caller would act on. It
// reports whether it answered.
func (p *Provider) outage(w http.ResponseWriter, endpoint string, err error) bool {
	// fosite's revocation says temporarily_unavailable itself, without
	// the cause, and then answers 200.
	if !errors.Is(err, storage.ErrUnavailable) && !errors.Is(err, fosite.ErrTemporarilyUnavailable) {
		return false
	}
	p.log.Error(endpoint+": database unavailable", "err", storageCause(err))
	WriteUnavailable(w)
	return true
}

// storageCause is the error under fosite's wrappers (which print as the
// error code they were mapped to, and a stack trace): what to log.
func storageCause(err error) error {
	for {
		var rfc *fosite.RFC6749Error
		if !errors.As(err, &rfc) || rfc.Unwrap() == nil {
			return err
		}
		err = rfc.Unwrap()
	}
}

// WriteUnavailable writes the RFC 6749 temporarily_unavailable answer.
func WriteUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", httpx.RetryAfterOutage)
	writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
		"The service is temporarily unavailable; try again shortly.")
}

// claimedClient is the client id a request names (HTTP Basic, else the
// form), whether or not it authenticated.
func claimedClient(r *http.Request) string {
	if id, _, ok := r.BasicAuth(); ok {
		if u, err := url.QueryUnescape(id); err == nil {
			return u
		}
		return id
	}
	return r.PostForm.Get("client_id")
}

// tokenSecurityEvent logs the token endpoint's refusals an operator
// watches for: failed client authentication (the client id it claimed,
// never the secret) and a replayed refresh token, whose family fosite has
// just revoked.
func (p *Provider) tokenSecurityEvent(r *http.Request, err error) {
	claimed := claimedClient(r)
	switch {
	case errors.Is(err, storage.ErrUnavailable):
	case errors.Is(err, fosite.ErrInvalidClient):
		p.log.WarnContext(r.Context(), "security event", "event", "client.auth_failed", "client_id", claimed,
			"ip", clientip.From(r))
	case r.PostForm.Get("grant_type") == "refresh_token" && errors.Is(err, fosite.ErrInvalidGrant) &&
		strings.Contains(fosite.ErrorToRFC6749Error(err).DebugField, "re-use"):
		p.log.WarnContext(r.Context(), "security event", "event", "refresh_token.reuse", "client_id", claimed,
			"ip", clientip.From(r), "action", "the token family was revoked")
	}
}

func (p *Provider) logProtocolError(endpoint string, err error) {
	if err == nil {
		return
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= 500 {
		p.log.Error(endpoint, "err", rfc.ErrorField, "debug", rfc.DebugField, "cause", err)
		return
	}
	p.log.Debug(endpoint, "err", rfc.ErrorField, "hint", rfc.HintField)
}

// writeOAuthError writes an RFC 6749 §5.2 error body.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
