package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/latchkey/latchkey/storage"
	"github.com/ory/fosite"
)

// PathLogout is the login UI's sign-out page (confirmation and "signed out").
const PathLogout = "/logout"

// handleUserinfo is the OIDC userinfo endpoint (GET and POST, bearer token
// in the header or, for POST, the access_token form field).
func (p *Provider) handleUserinfo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		token := fosite.AccessTokenFromRequest(r)
		if token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey"`)
			writeOAuthError(w, http.StatusUnauthorized, "invalid_request", "An access token is required.")
			return
		}
		use, ar, err := p.oauth.IntrospectToken(ctx, token, fosite.AccessToken, NewSession())
		if p.outage(w, "userinfo", err) {
			return
		}
		if err != nil || use != fosite.AccessToken { // fosite falls back to refresh tokens

			bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token is not active.")
			return
		}
		if !ar.GetGrantedScopes().Has("openid") {
			bearerError(w, http.StatusForbidden, "insufficient_scope", "The access token lacks the openid scope.")
			return
		}
		sess, ok := ar.GetSession().(*Session)
		if !ok || sess.Subject == "" || sess.Subject == sess.ClientID {
			bearerError(w, http.StatusUnauthorized, "invalid_token", "The access token does not belong to a person.")
			return
		}
		user, err := p.accounts.GetUser(ctx, sess.Subject)
		if p.outage(w, "userinfo", err) {
			return
		}
		if err != nil {
			bearerError(w, http.StatusUnauthorized, "invalid_token", "The account is not active.")
			return
		}
		client, _ := ar.GetClient().(*storage.Client)
		if client == nil {
			client = &storage.Client{}
		}
		claims, _, err := p.claimsFor(ctx, user, client, ar.GetGrantedScopes())
		if p.outage(w, "userinfo", err) {
			return
		}
		if err != nil {
			p.log.ErrorContext(ctx, "userinfo: claims", "err", err)
			writeOAuthError(w, http.StatusInternalServerError, "server_error", "The claims could not be computed.")
			return
		}
		claims["sub"] = user.ID
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(claims)
	})
}

func bearerError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="latchkey", error=%q, error_description=%q`, code, desc))
	writeOAuthError(w, status, code, desc)
}

// idTokenHint is what RP-initiated logout learns from id_token_hint.
type idTokenHint struct {
	Subject   string
	Audience  []string
	SessionID string
}

// parseIDTokenHint verifies an ID token we issued. Expired tokens are
// accepted (OIDC RP-Initiated Logout §2): the hint identifies, it does not
// authorize.
func (p *Provider) parseIDTokenHint(raw string) (*idTokenHint, error) {
	payload, err := verifyJWS(p.keys, raw)
	if err != nil {
		return nil, fmt.Errorf("id_token_hint: %w", err)
	}
	var std josejwt.Claims
	var extra struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(payload, &std); err != nil {
		return nil, fmt.Errorf("id_token_hint: %w", err)
	}
	if err := json.Unmarshal(payload, &extra); err != nil {
		return nil, fmt.Errorf("id_token_hint: %w", err)
	}
	if err := std.ValidateWithLeeway(josejwt.Expected{Issuer: p.cfg.Issuer}, 100*365*24*time.Hour); err != nil {
		return nil, fmt.Errorf("id_token_hint: %w", err)
	}
	return &idTokenHint{Subject: std.Subject, Audience: std.Audience, SessionID: extra.SID}, nil
}

// LogoutRedirect validates a post_logout_redirect_uri for clientID and
// returns it with state appended; "" when none was asked for.
func (p *Provider) LogoutRedirect(r *http.Request, clientID, uri, state string) (string, error) {
	if uri == "" {
		return "", nil
	}
	if clientID == "" {
		return "", errors.New("post_logout_redirect_uri needs id_token_hint or client_id")
	}
	client, err := p.client(r.Context(), clientID)
	if err != nil {
		return "", fmt.Errorf("unknown client: %w", err)
	}
	if !slices.Contains(client.PostLogoutRedirectURIs, uri) {
		return "", errors.New("post_logout_redirect_uri is not registered for this client")
	}
	if state == "" {
		return uri, nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("state", state)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// handleEndSession is RP-initiated logout. With a valid id_token_hint for
// the signed-in person the session ends at once; without one the person
// confirms on the login UI's sign-out page, so a third-party page cannot
// sign people out silently.
func (p *Provider) handleEndSession() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			p.errorPage(w, r, http.StatusBadRequest, "Invalid sign-out request", "The request could not be read.")
			return
		}
		q := r.Form
		clientID, uri, state := q.Get("client_id"), q.Get("post_logout_redirect_uri"), q.Get("state")
		var hint *idTokenHint
		if raw := q.Get("id_token_hint"); raw != "" {
			h, err := p.parseIDTokenHint(raw)
			if err != nil {
				p.log.Debug("end_session", "err", err)
				p.errorPage(w, r, http.StatusBadRequest, "Invalid sign-out request", "The id_token_hint is not valid.")
				return
			}
			hint = h
			if clientID == "" && len(h.Audience) > 0 {
				clientID = h.Audience[0]
			} else if clientID != "" && !slices.Contains(h.Audience, clientID) {
				p.errorPage(w, r, http.StatusBadRequest, "Invalid sign-out request", "client_id does not match the id_token_hint.")
				return
			}
		}
		target, err := p.LogoutRedirect(r, clientID, uri, state)
		if err != nil {
			p.errorPage(w, r, http.StatusBadRequest, "Invalid sign-out request", err.Error())
			return
		}
		sess, user, err := p.CurrentSession(r)
		signedIn := err == nil
		if hint != nil && (!signedIn || user.ID == hint.Subject) {
			if signedIn {
				if err := p.accounts.EndSession(r.Context(), sess.ID); err != nil {
					p.errorPage(w, r, http.StatusInternalServerError, "Sign-out failed", "Please try again.")
					return
				}
			}
			p.clearCookie(w, SessionCookie)
			if target == "" {
				target = PathLogout + "?done=1"
			}
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		v := url.Values{}
		if clientID != "" {
			v.Set("client_id", clientID)
		}
		if uri != "" {
			v.Set("post_logout_redirect_uri", uri)
		}
		if state != "" {
			v.Set("state", state)
		}
		http.Redirect(w, r, PathLogout+"?"+v.Encode(), http.StatusFound)
	})
}
