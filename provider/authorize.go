package provider

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/internal/accesslog"
	"github.com/latchkey/latchkey/internal/httpx"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

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
		// The browser's session stands for the first factor unless the
		// client asks for a new sign-in (prompt=login, max_age).
		if user != nil && (slices.Contains(prompt, "login") || sessionTooOld(form, sess.AuthTime, now)) {
			sess, user = nil, nil
		}
		var st signInState
		var granted []string
		if user != nil {
			st = signInState{SignedIn: true, AMR: sess.AMR}
			if st.PolicyMFA, err = p.policyRequiresMFA(ctx, client, user, form); err == nil && st.PolicyMFA && !multiFactor(sess.AMR) {
				st.HasFactor, err = p.hasFactor(ctx, user.ID)
			}
			if err == nil {
				granted, st.ConsentNeeded, err = p.accounts.ConsentNeeded(ctx, client, user.ID, ar.GetRequestedScopes())
				st.ConsentNeeded = st.ConsentNeeded || slices.Contains(prompt, "consent")
			}
			if err != nil {
				p.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
				return
			}
		}
		// The fast path: a signed-in browser whose session suffices is
		// answered at once, with no write but the code.
		step := decide(st)
		if step == StepFinish {
			p.finish(w, r, ar, user, sess.ID, sess.AuthTime, sess.AMR, granted, now)
			return
		}
		if slices.Contains(prompt, "none") {
			p.authorizeError(w, r, ar, promptNoneError(step))
			return
		}

		// Park the request and send the browser to the step's page. What
		// is stored is the request as fosite validated it (with a pushed
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
		if user != nil {
			// What the session proved carries over: a step-up asks for
			// the second factor, not for the password again.
			at := sess.AuthTime
			pending.UserID, pending.SessionID, pending.AuthTime, pending.AMR = user.ID, sess.ID, &at, sess.AMR
		}
		if err := p.store.CreatePendingAuthorization(ctx, pending); err != nil {
			p.authorizeError(w, r, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
		http.Redirect(w, r, stepURL(step, pending.ID), http.StatusFound)
	})
}

// sessionTooOld reports whether a session signed in at authTime is older
// than the request's max_age.
func sessionTooOld(form url.Values, authTime, now time.Time) bool {
	maxAge, err := strconv.Atoi(form.Get("max_age"))
	return err == nil && maxAgeExceeded(maxAge, authTime, now)
}

// promptNoneError is the answer to prompt=none when the pipeline needs
// the person (OIDC Core §3.1.2.6).
func promptNoneError(step Step) error {
	switch step {
	case StepLogin:
		return fosite.ErrLoginRequired.WithHint("The person is not signed in and prompt=none was given.")
	case StepConsent:
		return fosite.ErrConsentRequired.WithHint("Consent is needed and prompt=none was given.")
	default:
		return fosite.ErrInteractionRequired.WithHint("A second factor is needed and prompt=none was given.")
	}
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
	// A person gets an admin scope only while their roles give it; one
	// they may not have is dropped, never refused, so that nobody learns
	// who is an administrator by asking.
	granted, err = p.personAdminScopes(ctx, user.ID, granted)
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
	idClaims, extClaims, err := p.claimsFor(ctx, user, client, ar.GetGrantedScopes())
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	sess := p.userSession(client, user, sid, authTime, amr, requestedAt, idClaims, extClaims)
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
	amr []string, requestedAt time.Time, idClaims, extClaims map[string]interface{}) *Session {
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
	s.setClaims(idClaims, extClaims)
	return s
}

// Authentication context classes Latchkey asserts (OIDC Core §2, acr):
// how the person signed in, so a relying party can require one.
const (
	ACRPassword  = "urn:latchkey:acr:password"
	ACRFederated = "urn:latchkey:acr:federated"
)

func acrFor(amr []string) string {
	if multiFactor(amr) {
		return ACRMFA
	}
	if slices.Contains(amr, AMRFederated) {
		return ACRFederated
	}
	return ACRPassword
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
		// Nobody can be sent back: the person gets a sentence, the
		// developer the OAuth error (folded away on the page, and in
		// the log).
		technical := rfc.ErrorField + ": " + rfc.GetDescription()
		p.log.InfoContext(r.Context(), "authorize: request refused with an error page", "error", rfc.ErrorField,
			"description", rfc.DescriptionField, "hint", rfc.HintField, "debug", rfc.DebugField)
		title, detail := authorizeErrorText(rfc)
		p.errorPage(w, r, http.StatusBadRequest, title, detail, technical)
		return
	}
	p.writeAuthorizeError(r.Context(), w, ar, err)
}

// authorizeErrorText is the sentence for people about an authorization
// request that cannot go back to its application.
func authorizeErrorText(rfc *fosite.RFC6749Error) (title, detail string) {
	switch {
	case rfc.ErrorField == fosite.ErrInvalidClient.ErrorField:
		return "This application is not recognised",
			"The link you followed names an application that is not registered here. " +
				"Go back to the application and try again; if it keeps happening, tell the application's developers."
	case strings.Contains(rfc.HintField, "redirect_uri") || strings.Contains(rfc.DescriptionField, "redirect_uri"):
		return "This sign-in link is not valid",
			"The application asked to send you back to an address it has not registered, so you were not sent anywhere. " +
				"Go back to the application and try again."
	}
	return "This sign-in link is not valid", "Go back to the application and start again."
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
