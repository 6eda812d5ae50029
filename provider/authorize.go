package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/internal/accesslog"
	"github.com/latchkey/latchkey/internal/clientip"
	"github.com/latchkey/latchkey/internal/httpx"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// Paths of the login UI the provider hands pending authorizations to.
const (
	PathLogin   = "/login"
	PathConsent = "/consent"
)

// Challenge is a pending authorization as the login UI sees it.
type Challenge struct {
	ID        string
	Client    *storage.Client
	Scopes    []string // requested
	Prompt    []string
	LoginHint string
	MaxAge    string // the max_age the client asked for ("" when none)
	UserID    string // set once the person has signed in for it
	pending   *storage.PendingAuthorization
}

// ErrNoChallenge: the challenge is unknown, expired, or belongs to another
// browser.
var ErrNoChallenge = errors.New("provider: no such sign-in request")

func (p *Provider) handleAuthorize() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ar, err := p.newAuthorizeRequest(r)
		if err != nil {
			p.authorizeError(w, r, ar, err)
			return
		}
		client, ok := ar.GetClient().(*storage.Client)
		if !ok {
			p.authorizeError(w, r, ar, fosite.ErrServerError.WithDebug("unexpected client type"))
			return
		}
		accesslog.SetClient(ctx, client.ID)
		form := ar.GetRequestForm()
		// fosite checks PKCE only when the code is issued, after the
		// person has signed in; refuse a request that cannot succeed
		// before asking anyone for a password.
		if err := checkPKCE(client, form); err != nil {
			p.authorizeError(w, r, ar, err)
			return
		}
		// Likewise a resource the client may not use (RFC 8707).
		if _, err := authorizedResources(client, form); err != nil {
			p.authorizeError(w, r, ar, err)
			return
		}
		prompt := fosite.RemoveEmpty(strings.Split(form.Get("prompt"), " "))
		now := time.Now().UTC()

		sess, user, err := p.CurrentSession(r)
		if err != nil && !errors.Is(err, accounts.ErrNoSession) {
			p.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
		needLogin := user == nil || slices.Contains(prompt, "login")
		if !needLogin {
			if maxAge, err := strconv.Atoi(form.Get("max_age")); err == nil && maxAge >= 0 &&
				sess.AuthTime.Add(time.Duration(maxAge)*time.Second).Before(now) {
				needLogin = true
			}
		}
		if needLogin && slices.Contains(prompt, "none") {
			p.authorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The person is not signed in and prompt=none was given."))
			return
		}
		if !needLogin {
			granted, needConsent, err := p.accounts.ConsentNeeded(ctx, client, user.ID, ar.GetRequestedScopes())
			if err != nil {
				p.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
				return
			}
			if slices.Contains(prompt, "consent") {
				needConsent = true
			}
			if !needConsent {
				p.finish(w, r, ar, user, sess.ID, sess.AuthTime, sess.AMR, granted, now)
				return
			}
			if slices.Contains(prompt, "none") {
				p.authorizeError(w, r, ar, fosite.ErrConsentRequired.WithHint("Consent is needed and prompt=none was given."))
				return
			}
		}

		// Park the request and send the browser to the login UI. What is
		// stored is the request as fosite validated it (with a pushed
		// request already merged in, since fosite consumes PAR sessions).
		saved := url.Values{}
		for k, v := range form {
			saved[k] = slices.Clone(v)
		}
		saved.Del("request_uri")
		saved.Set("client_id", client.ID)
		saved.Set("response_type", strings.Join(ar.GetResponseTypes(), " "))
		if ru := ar.GetRedirectURI(); ru != nil && form.Get("redirect_uri") != "" {
			saved.Set("redirect_uri", ru.String())
		}
		if st := ar.GetState(); st != "" {
			saved.Set("state", st)
		}
		saved.Set("scope", strings.Join(ar.GetRequestedScopes(), " "))
		pending := &storage.PendingAuthorization{
			ID:        secret.Token(24),
			ClientID:  client.ID,
			Form:      saved.Encode(),
			CSRFToken: bindingHash(p.flowBinding(w, r)),
			CreatedAt: now,
			ExpiresAt: now.Add(p.cfg.LoginTTL),
		}
		next := PathLogin
		if !needLogin {
			at := sess.AuthTime
			pending.UserID, pending.SessionID, pending.AuthTime, pending.AMR = user.ID, sess.ID, &at, sess.AMR
			next = PathConsent
		}
		if err := p.store.CreatePendingAuthorization(ctx, pending); err != nil {
			p.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
		http.Redirect(w, r, next+"?challenge="+url.QueryEscape(pending.ID), http.StatusFound)
	})
}

// checkPKCE enforces Latchkey's PKCE rules up front: S256 only, and
// required for public clients.
func checkPKCE(client *storage.Client, form url.Values) error {
	challenge, method := form.Get("code_challenge"), form.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method was given without code_challenge.")
	case challenge == "" && client.Public:
		return fosite.ErrInvalidRequest.WithHint("Public clients must use PKCE: send code_challenge and code_challenge_method=S256.")
	case challenge != "" && method != "S256":
		return fosite.ErrInvalidRequest.WithHint("Only code_challenge_method=S256 is supported.")
	}
	return nil
}

// finish issues the authorization response for user.
func (p *Provider) finish(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, user *storage.User,
	sid string, authTime time.Time, amr []string, granted []string, requestedAt time.Time) {
	ctx := r.Context()
	// The last check before a code exists: whatever path the request
	// took (pushed, parked, resumed), it goes only to a URI Latchkey's
	// own rule accepts.
	if !redirectable(ar) {
		p.authorizeError(w, r, nil, errUnregisteredRedirect())
		return
	}
	client := ar.GetClient().(*storage.Client)
	// Checked again: the client's audiences may have changed while the
	// request was parked.
	resources, err := authorizedResources(client, ar.GetRequestForm())
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	for _, s := range ar.GetRequestedScopes() {
		if slices.Contains(granted, s) {
			ar.GrantScope(s)
		}
	}
	// The resources are authorized for the grant (the session), not
	// granted on the code: fosite would grant a code's audience to every
	// access token redeemed from it, and a token request may narrow it
	// (grantResources).
	ar.SetRequestedAudience(resources)
	sess := p.userSession(client, user, sid, authTime, amr, requestedAt, ar.GetGrantedScopes(), p.tierClaims(ctx, user, ar.GetGrantedScopes()))
	sess.Resources = resources
	resp, err := p.oauth.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	p.writeAuthorizeResponse(ctx, w, ar, resp)
}

// userSession builds the session stored with the code: the ID token
// claims, and the claims a JWT access token will carry.
func (p *Provider) userSession(client *storage.Client, user *storage.User, sid string, authTime time.Time,
	amr []string, requestedAt time.Time, scopes fosite.Arguments, tier map[string]interface{}) *Session {
	s := NewSession()
	s.Subject = user.ID
	s.Username = user.Username
	s.ClientID = client.ID
	s.SessionID = sid
	s.JWTAccessToken = client.AccessTokenFormat == storage.AccessTokenJWT
	c := s.DefaultSession.Claims
	c.Subject = user.ID
	c.AuthTime = authTime.UTC().Truncate(time.Second)
	// fosite checks prompt=login and max_age against RequestedAt; it is
	// when the person asked to sign in, not when the flow resumed.
	c.RequestedAt = requestedAt.UTC().Truncate(time.Second)
	c.AuthenticationMethodsReferences = amr
	c.AuthenticationContextClassReference = acrFor(amr)
	c.Extra = map[string]interface{}{}
	if sid != "" {
		c.Extra["sid"] = sid
	}
	for k, v := range userClaims(user, scopes) {
		c.Extra[k] = v
	}
	// The tier reaches resource servers through introspection and JWT
	// access tokens (Ext) as well as the ID token.
	for k, v := range tier {
		c.Extra[k] = v
	}
	if len(tier) > 0 {
		s.Ext = tier
	}
	return s
}

// Authentication context classes Latchkey asserts (OIDC Core §2, acr):
// how the person signed in, so a relying party can require one.
const (
	ACRPassword  = "urn:latchkey:acr:password"
	ACRFederated = "urn:latchkey:acr:federated"
)

func acrFor(amr []string) string {
	if slices.Contains(amr, "fed") {
		return ACRFederated
	}
	return ACRPassword
}

// ScopeTier releases the user's service tier and its rate limits.
const ScopeTier = "tier"

// tierClaims are the tier claims for a user when the tier scope is
// granted: "tier" (the name) and "tier_rate_limits" (what resource servers
// enforce).
func (p *Provider) tierClaims(ctx context.Context, u *storage.User, scopes fosite.Arguments) map[string]interface{} {
	if !scopes.Has(ScopeTier) {
		return nil
	}
	tc, ok := p.accounts.TierClaims(ctx, u)
	if !ok {
		return nil
	}
	limits := make([]map[string]interface{}, 0, len(tc.RateLimits))
	for _, l := range tc.RateLimits {
		limits = append(limits, map[string]interface{}{"match": l.Match, "limit": l.Limit, "period_seconds": int64(l.Period / time.Second)})
	}
	return map[string]interface{}{"tier": tc.Name, "tier_rate_limits": limits}
}

// userClaims are the claims released for the granted scopes.
func userClaims(u *storage.User, scopes fosite.Arguments) map[string]interface{} {
	out := map[string]interface{}{}
	if scopes.Has("profile") {
		out["preferred_username"] = u.Username
		if u.DisplayName != "" {
			out["name"] = u.DisplayName
		}
		out["updated_at"] = u.UpdatedAt.Unix()
	}
	if scopes.Has("email") {
		out["email"] = u.Email
		out["email_verified"] = u.EmailVerified
	}
	return out
}

// authorizeError answers a failed authorization request: back to the
// client when its redirect URI is known to be valid (redirectable),
// otherwise a friendly page — never a redirect to an unregistered URI.
func (p *Provider) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	if errors.Is(err, storage.ErrUnavailable) {
		p.outagePage(w, r, "authorize", err)
		return
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	if rfc.CodeField >= 500 {
		p.log.Error("authorize", "err", err, "debug", rfc.DebugField)
	}
	if !redirectable(ar) {
		detail := rfc.GetDescription()
		p.errorPage(w, r, http.StatusBadRequest, "This sign-in link is not valid", detail)
		return
	}
	p.writeAuthorizeError(r.Context(), w, ar, err)
}

// outagePage tells a person that the service is down for a moment
// (503, Retry-After): the database is unavailable, nothing is wrong with
// their request.
func (p *Provider) outagePage(w http.ResponseWriter, r *http.Request, endpoint string, err error) {
	p.log.Error(endpoint+": database unavailable", "err", storageCause(err))
	w.Header().Set("Retry-After", httpx.RetryAfterOutage)
	p.errorPage(w, r, http.StatusServiceUnavailable, "Temporarily unavailable",
		"Signing in is not possible for a moment. Please try again shortly.")
}

// Challenge loads a pending authorization started by this browser.
func (p *Provider) Challenge(r *http.Request, id string) (*Challenge, error) {
	if id == "" || len(id) > 64 {
		return nil, ErrNoChallenge
	}
	pa, err := p.store.GetPendingAuthorization(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNoChallenge
	}
	if err != nil {
		return nil, fmt.Errorf("loading challenge: %w", err)
	}
	if !p.boundToBrowser(r, pa.CSRFToken) {
		return nil, ErrNoChallenge
	}
	client, err := p.client(r.Context(), pa.ClientID)
	if errors.Is(err, storage.ErrUnavailable) {
		return nil, fmt.Errorf("loading the challenge's client: %w", err)
	}
	if err != nil {
		return nil, ErrNoChallenge
	}
	form, err := url.ParseQuery(pa.Form)
	if err != nil {
		return nil, fmt.Errorf("challenge form: %w", err)
	}
	return &Challenge{
		ID:        pa.ID,
		Client:    client,
		Scopes:    fosite.RemoveEmpty(strings.Split(form.Get("scope"), " ")),
		Prompt:    fosite.RemoveEmpty(strings.Split(form.Get("prompt"), " ")),
		LoginHint: form.Get("login_hint"),
		MaxAge:    form.Get("max_age"),
		UserID:    pa.UserID,
		pending:   pa,
	}, nil
}

// AcceptLogin records that user signed in for ch: it starts a browser
// session (setting the cookie) and returns where to send the browser next.
func (p *Provider) AcceptLogin(w http.ResponseWriter, r *http.Request, ch *Challenge, user *storage.User, amr []string) (string, error) {
	ctx := r.Context()
	token, sess, err := p.accounts.StartSession(ctx, user, accounts.SessionMeta{
		AMR: amr, IP: clientip.From(r), UserAgent: r.UserAgent(),
	})
	if err != nil {
		return "", err
	}
	at := sess.AuthTime
	ch.pending.UserID, ch.pending.SessionID, ch.pending.AuthTime, ch.pending.AMR = user.ID, sess.ID, &at, amr
	// The browser gets a new flow value; this request follows it.
	ch.pending.CSRFToken = bindingHash(p.renewFlow(w, r))
	// A consent given on this request belonged to whoever signed in
	// before; the person signing in now decides for themselves.
	ch.pending.ConsentGiven, ch.pending.GrantedScopes = false, nil
	if err := p.store.UpdatePendingAuthorization(ctx, ch.pending); err != nil {
		return "", fmt.Errorf("recording sign-in: %w", err)
	}
	p.setCookie(w, SessionCookie, token, time.Until(sess.ExpiresAt))
	return PathResume + "?challenge=" + url.QueryEscape(ch.ID), nil
}

// StartSession signs user in outside an authorization (the login page
// opened directly) and sets the session cookie.
func (p *Provider) StartSession(w http.ResponseWriter, r *http.Request, user *storage.User, amr []string) error {
	token, sess, err := p.accounts.StartSession(r.Context(), user, accounts.SessionMeta{
		AMR: amr, IP: clientip.From(r), UserAgent: r.UserAgent(),
	})
	if err != nil {
		return err
	}
	p.renewFlow(w, r)
	p.setCookie(w, SessionCookie, token, time.Until(sess.ExpiresAt))
	return nil
}

// AcceptConsent records the scopes the person granted for ch and returns
// where to send the browser next.
func (p *Provider) AcceptConsent(r *http.Request, ch *Challenge, granted []string, remember bool) (string, error) {
	ctx := r.Context()
	if ch.pending.UserID == "" {
		return PathLogin + "?challenge=" + url.QueryEscape(ch.ID), nil
	}
	// Only scopes that were requested can be granted.
	var ok []string
	for _, s := range granted {
		if slices.Contains(ch.Scopes, s) {
			ok = append(ok, s)
		}
	}
	ch.pending.ConsentGiven, ch.pending.GrantedScopes = true, ok
	if err := p.store.UpdatePendingAuthorization(ctx, ch.pending); err != nil {
		return "", fmt.Errorf("recording consent: %w", err)
	}
	if remember {
		if err := p.accounts.GrantConsent(ctx, ch.pending.UserID, ch.Client.ID, ok); err != nil {
			return "", err
		}
	}
	return PathResume + "?challenge=" + url.QueryEscape(ch.ID), nil
}

// DenyConsent answers the client with access_denied.
func (p *Provider) DenyConsent(w http.ResponseWriter, r *http.Request, ch *Challenge) {
	ar, err := p.rebuild(r, ch.pending)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	_ = p.store.DeletePendingAuthorization(r.Context(), ch.ID)
	p.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The person declined the request."))
}

// newAuthorizeRequest is fosite's NewAuthorizeRequest behind Latchkey's
// redirect URI rule (guardRedirectURI), with state optional under PKCE
// (allowMissingState): every authorization request, arriving or parked,
// goes through it.
func (p *Provider) newAuthorizeRequest(r *http.Request) (fosite.AuthorizeRequester, error) {
	if err := p.guardRedirectURI(r); err != nil {
		return nil, err
	}
	ar, err := p.oauth.NewAuthorizeRequest(r.Context(), r)
	return ar, allowMissingState(ar, err)
}

// rebuild re-validates a parked authorization request with fosite.
func (p *Provider) rebuild(r *http.Request, pa *storage.PendingAuthorization) (fosite.AuthorizeRequester, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, p.cfg.Issuer+pathAuthorize+"?"+pa.Form, nil)
	if err != nil {
		return nil, fosite.ErrServerError.WithWrap(err)
	}
	ar, err := p.newAuthorizeRequest(req)
	if err != nil {
		return ar, err
	}
	if a, ok := ar.(*fosite.AuthorizeRequest); ok {
		a.RequestedAt = pa.CreatedAt
	}
	return ar, nil
}

// handleResume completes a pending authorization once the login UI has
// recorded the sign-in (and consent, if it was needed).
func (p *Provider) handleResume() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ch, err := p.Challenge(r, r.URL.Query().Get("challenge"))
		if errors.Is(err, storage.ErrUnavailable) {
			p.outagePage(w, r, "resume", err)
			return
		}
		if err != nil {
			p.errorPage(w, r, http.StatusBadRequest, "This sign-in request has expired", "Go back to the application and start again.")
			return
		}
		pa := ch.pending
		if pa.UserID == "" || pa.AuthTime == nil {
			http.Redirect(w, r, PathLogin+"?challenge="+url.QueryEscape(ch.ID), http.StatusFound)
			return
		}
		// The browser that signed in must be the one resuming.
		sess, user, err := p.CurrentSession(r)
		if err != nil || sess.ID != pa.SessionID || user.ID != pa.UserID {
			http.Redirect(w, r, PathLogin+"?challenge="+url.QueryEscape(ch.ID), http.StatusFound)
			return
		}
		ar, err := p.rebuild(r, pa)
		if err != nil {
			p.authorizeError(w, r, ar, err)
			return
		}
		granted := pa.GrantedScopes
		if !pa.ConsentGiven {
			g, need, err := p.accounts.ConsentNeeded(ctx, ch.Client, user.ID, ar.GetRequestedScopes())
			if err != nil {
				p.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
				return
			}
			if need || slices.Contains(ch.Prompt, "consent") {
				http.Redirect(w, r, PathConsent+"?challenge="+url.QueryEscape(ch.ID), http.StatusFound)
				return
			}
			granted = g
		}
		// Single use: a replayed resume link finds nothing.
		if err := p.store.DeletePendingAuthorization(ctx, ch.ID); err != nil {
			p.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
		p.finish(w, r, ar, user, pa.SessionID, *pa.AuthTime, pa.AMR, granted, pa.CreatedAt)
	})
}

// CurrentSession returns the browser's live session and its user.
func (p *Provider) CurrentSession(r *http.Request) (*storage.BrowserSession, *storage.User, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, nil, accounts.ErrNoSession
	}
	return p.accounts.Session(r.Context(), c.Value)
}

// SignOut ends the browser's session and clears the cookie.
func (p *Provider) SignOut(w http.ResponseWriter, r *http.Request) error {
	sess, _, err := p.CurrentSession(r)
	p.clearCookie(w, SessionCookie)
	// A new flow value for whoever uses this browser next: form tokens
	// and pending requests of this person do not carry over.
	p.clearCookie(w, p.flowName)
	p.clearCookie(w, p.prevFlowName)
	if errors.Is(err, accounts.ErrNoSession) {
		return nil
	}
	if err != nil {
		return err
	}
	return p.accounts.EndSession(r.Context(), sess.ID)
}
