package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/internal/clientip"
	"github.com/latchkey/latchkey/internal/secret"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// This file is the hand-off between the protocol and the front-ends that
// talk to the person (login-ui, login-ui/federation): they load a
// challenge, report what a step proved (Accept…), and follow the URL
// they get back. Where that URL leads is decided by the pipeline
// (pipeline.go) in handleResume.

// Paths of the pages the pipeline sends the browser to.
const (
	PathLogin        = "/login"
	PathSecondFactor = "/login/second-factor"
	PathEnrol        = "/login/enrol"
	PathConsent      = "/consent"
)

// PathAccount is where a direct sign-in lands when it names no page.
const PathAccount = "/account"

// stepURL is the page of step for the pending sign-in id.
func stepURL(step Step, id string) string {
	path := PathResume
	switch step {
	case StepLogin:
		path = PathLogin
	case StepSecondFactor:
		path = PathSecondFactor
	case StepEnrol:
		path = PathEnrol
	case StepConsent:
		path = PathConsent
	}
	return path + "?challenge=" + url.QueryEscape(id)
}

// Challenge is a pending sign-in as the front-ends see it.
type Challenge struct {
	ID string
	// Client is the application that asked; nil for a direct sign-in
	// (the account page), which has ReturnTo instead.
	Client    *storage.Client
	ReturnTo  string
	Scopes    []string // requested
	Prompt    []string
	LoginHint string
	MaxAge    string   // the max_age the client asked for ("" when none)
	UserID    string   // set once a first factor is proven for it
	AMR       []string // what has been proven so far
	pending   *storage.PendingAuthorization
}

// ErrNoChallenge: the challenge is unknown, expired, or belongs to another
// browser.
var ErrNoChallenge = errors.New("provider: no such sign-in request")

// Challenge loads a pending sign-in started by this browser.
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
	form, err := url.ParseQuery(pa.Form)
	if err != nil {
		return nil, fmt.Errorf("challenge form: %w", err)
	}
	ch := &Challenge{
		ID:        pa.ID,
		Scopes:    fosite.RemoveEmpty(strings.Split(form.Get("scope"), " ")),
		Prompt:    fosite.RemoveEmpty(strings.Split(form.Get("prompt"), " ")),
		LoginHint: form.Get("login_hint"),
		MaxAge:    form.Get("max_age"),
		UserID:    pa.UserID,
		AMR:       pa.AMR,
		pending:   pa,
	}
	if pa.ClientID == "" {
		ch.ReturnTo = localReturn(form.Get("return_to"))
		return ch, nil
	}
	ch.Client, err = p.client(r.Context(), pa.ClientID)
	if errors.Is(err, storage.ErrUnavailable) {
		return nil, fmt.Errorf("loading the challenge's client: %w", err)
	}
	if err != nil {
		return nil, ErrNoChallenge
	}
	return ch, nil
}

// localReturn admits only a same-site path as a direct sign-in's
// destination (the login UI has checked it already; this is the last
// line before the redirect).
func localReturn(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") {
		return PathAccount
	}
	return p
}

// Step is the step ch is at, so that a page can check it is the one the
// pipeline wants (a second-factor form posted after the factor was
// already given, or before the password, is sent on instead).
func (p *Provider) Step(r *http.Request, ch *Challenge) (Step, error) {
	st, _, _, err := p.state(r.Context(), ch)
	if err != nil {
		return 0, err
	}
	return decide(st), nil
}

// state gathers what decide looks at for a parked sign-in, with the
// scopes to grant at finish and the person (nil before the first factor).
func (p *Provider) state(ctx context.Context, ch *Challenge) (signInState, []string, *storage.User, error) {
	pa := ch.pending
	if pa.UserID == "" || pa.AuthTime == nil {
		return signInState{}, nil, nil, nil
	}
	user, err := p.accounts.GetUser(ctx, pa.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		// Suspended or deleted meanwhile: sign in again.
		return signInState{}, nil, nil, nil
	}
	if err != nil {
		return signInState{}, nil, nil, err
	}
	st := signInState{SignedIn: true, AMR: pa.AMR, FreshLogin: pa.SessionID == ""}
	form, _ := url.ParseQuery(pa.Form) // parsed by Challenge already
	if st.PolicyMFA, err = p.policyRequiresMFA(ctx, ch.Client, user, form); err != nil {
		return st, nil, nil, err
	}
	if !multiFactor(pa.AMR) && (st.PolicyMFA || st.FreshLogin) {
		if st.HasFactor, err = p.hasFactor(ctx, user.ID); err != nil {
			return st, nil, nil, err
		}
	}
	if ch.Client == nil {
		return st, nil, user, nil
	}
	if pa.ConsentGiven {
		st.ConsentNeeded, st.ConsentDone = true, true
		return st, pa.GrantedScopes, user, nil
	}
	// Admin scopes the person's roles do not give are not offered on the
	// consent page either (finish drops them again, whatever the path).
	if ch.Scopes, err = p.personAdminScopes(ctx, user.ID, ch.Scopes); err != nil {
		return st, nil, nil, err
	}
	granted, need, err := p.accounts.ConsentNeeded(ctx, ch.Client, user.ID, ch.Scopes)
	if err != nil {
		return st, nil, nil, err
	}
	st.ConsentNeeded = need || slices.Contains(ch.Prompt, "consent")
	return st, granted, user, nil
}

// policyRequiresMFA reports whether this sign-in must prove two factors:
// the request asks for it (acr_values, step-up), or the client or the
// person's tier requires it.
func (p *Provider) policyRequiresMFA(ctx context.Context, client *storage.Client, user *storage.User, form url.Values) (bool, error) {
	switch {
	case slices.Contains(strings.Fields(form.Get("acr_values")), ACRMFA):
		return true, nil
	case client != nil && client.RequireMFA:
		return true, nil
	}
	return p.accounts.TierRequiresMFA(ctx, user), nil
}

// hasFactor reports whether the person has a confirmed second factor.
func (p *Provider) hasFactor(ctx context.Context, userID string) (bool, error) {
	if p.factors == nil {
		return false, nil
	}
	return p.factors.MFAEnabled(ctx, userID)
}

// AcceptFirstFactor records that user proved a first factor (amr: "pwd",
// "fed", …) for ch, or, with ch nil, for a direct sign-in that returns
// to returnTo. It returns where to send the browser next. No session
// exists yet unless nothing else is needed (a direct sign-in without a
// second factor is finished here, saving the parking).
func (p *Provider) AcceptFirstFactor(w http.ResponseWriter, r *http.Request, ch *Challenge, user *storage.User, amr []string, returnTo string) (string, error) {
	ctx := r.Context()
	now := time.Now().UTC()
	if ch == nil {
		st := signInState{SignedIn: true, AMR: amr, FreshLogin: true}
		var err error
		if st.PolicyMFA, err = p.policyRequiresMFA(ctx, nil, user, nil); err != nil {
			return "", err
		}
		if !multiFactor(amr) {
			if st.HasFactor, err = p.hasFactor(ctx, user.ID); err != nil {
				return "", err
			}
		}
		returnTo = localReturn(returnTo)
		step := decide(st)
		if step == StepFinish {
			if _, err := p.startSession(w, r, user, amr, true); err != nil {
				return "", err
			}
			return returnTo, nil
		}
		pa := &storage.PendingAuthorization{
			ID:        secret.Token(24),
			Form:      url.Values{"return_to": {returnTo}}.Encode(),
			CSRFToken: bindingHash(p.renewFlow(w, r)),
			UserID:    user.ID,
			AuthTime:  &now,
			AMR:       amr,
			CreatedAt: now,
			ExpiresAt: now.Add(p.cfg.LoginTTL),
		}
		if err := p.store.CreatePendingAuthorization(ctx, pa); err != nil {
			return "", fmt.Errorf("recording sign-in: %w", err)
		}
		return stepURL(step, pa.ID), nil
	}
	pa := ch.pending
	pa.UserID, pa.SessionID, pa.AuthTime, pa.AMR = user.ID, "", &now, amr
	// The browser gets a new flow value; this request follows it.
	pa.CSRFToken = bindingHash(p.renewFlow(w, r))
	// A consent given on this request belonged to whoever signed in
	// before; the person signing in now decides for themselves.
	pa.ConsentGiven, pa.GrantedScopes = false, nil
	if err := p.store.UpdatePendingAuthorization(ctx, pa); err != nil {
		return "", fmt.Errorf("recording sign-in: %w", err)
	}
	return PathResume + "?challenge=" + url.QueryEscape(ch.ID), nil
}

// AcceptSecondFactor records that the person of ch proved a second
// factor (amr: "otp", "hwk", "swk") and returns where to go next.
func (p *Provider) AcceptSecondFactor(r *http.Request, ch *Challenge, amr ...string) (string, error) {
	pa := ch.pending
	if pa.UserID == "" {
		return PathLogin + "?challenge=" + url.QueryEscape(ch.ID), nil
	}
	now := time.Now().UTC()
	pa.AMR, pa.AuthTime = combineAMR(pa.AMR, amr...), &now
	if err := p.store.UpdatePendingAuthorization(r.Context(), pa); err != nil {
		return "", fmt.Errorf("recording second factor: %w", err)
	}
	return PathResume + "?challenge=" + url.QueryEscape(ch.ID), nil
}

// AcceptConsent records the scopes the person granted for ch and returns
// where to send the browser next.
func (p *Provider) AcceptConsent(r *http.Request, ch *Challenge, granted []string, remember bool) (string, error) {
	ctx := r.Context()
	if ch.pending.UserID == "" || ch.Client == nil {
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
	if ch.Client == nil {
		p.errorPage(w, r, http.StatusBadRequest, "This sign-in request has expired", "Go back to the application and start again.")
		return
	}
	ar, err := p.rebuild(r, ch.pending)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	_ = p.store.DeletePendingAuthorization(r.Context(), ch.ID)
	p.authorizeError(w, r, ar, fosite.ErrAccessDenied.WithHint("The person declined the request."))
}

// handleResume is the dispatcher's endpoint: every step's page sends the
// browser here, and it either sends it to the next step's page or
// finishes: starts the session and answers the client (or returns to the
// page a direct sign-in came from).
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
		// A first factor taken from the browser's session holds only
		// while that session does (the person may have signed out in
		// another tab).
		var current *storage.BrowserSession
		if s, _, err := p.CurrentSession(r); err == nil {
			current = s
		}
		if pa.SessionID != "" && (current == nil || current.ID != pa.SessionID) {
			http.Redirect(w, r, stepURL(StepLogin, ch.ID), http.StatusFound)
			return
		}
		st, granted, user, err := p.state(ctx, ch)
		if err != nil {
			p.resumeError(w, r, ch, err)
			return
		}
		if step := decide(st); step != StepFinish {
			if step != StepLogin && slices.Contains(ch.Prompt, "none") {
				// Unreachable through handleAuthorize (prompt=none is
				// answered there); kept so the rule holds on every path.
				p.resumeError(w, r, ch, promptNoneError(step))
				return
			}
			http.Redirect(w, r, stepURL(step, ch.ID), http.StatusFound)
			return
		}
		var ar fosite.AuthorizeRequester
		if ch.Client != nil {
			if ar, err = p.rebuild(r, pa); err != nil {
				p.authorizeError(w, r, ar, err)
				return
			}
		}
		// Single use: a replayed resume link finds nothing.
		if err := p.store.DeletePendingAuthorization(ctx, ch.ID); err != nil {
			p.resumeError(w, r, ch, err)
			return
		}
		sid, authTime, amr := pa.SessionID, *pa.AuthTime, pa.AMR
		if current == nil || current.ID != pa.SessionID || !slices.Equal(current.AMR, pa.AMR) {
			// A new sign-in (or a step-up): the session starts now, with
			// everything this flow proved.
			// The flow value was renewed when the first factor was
			// accepted (a step-up keeps the signed-in browser's).
			sess, err := p.startSession(w, r, user, pa.AMR, false)
			if err != nil {
				p.resumeError(w, r, ch, err)
				return
			}
			sid, authTime = sess.ID, sess.AuthTime
		}
		if ch.Client == nil {
			http.Redirect(w, r, ch.ReturnTo, http.StatusSeeOther)
			return
		}
		p.finish(w, r, ar, user, sid, authTime, amr, granted, pa.CreatedAt)
	})
}

// resumeError answers a failure while resuming: to the client when the
// request can be rebuilt, else a page.
func (p *Provider) resumeError(w http.ResponseWriter, r *http.Request, ch *Challenge, err error) {
	if errors.Is(err, storage.ErrUnavailable) {
		p.outagePage(w, r, "resume", err)
		return
	}
	if ch.Client == nil {
		p.log.Error("resume", "err", err)
		p.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Please try again.")
		return
	}
	ar, rerr := p.rebuild(r, ch.pending)
	if rerr != nil {
		p.authorizeError(w, r, ar, rerr)
		return
	}
	var rfc *fosite.RFC6749Error
	if !errors.As(err, &rfc) {
		err = fosite.ErrServerError.WithWrap(err)
	}
	p.authorizeError(w, r, ar, err)
}

// startSession starts the browser session of a finished sign-in: it
// replaces whatever session the browser had (another person's, or the
// same person's before a step-up), renews the flow value when renew is
// set, and sets the cookie.
func (p *Provider) startSession(w http.ResponseWriter, r *http.Request, user *storage.User, amr []string, renew bool) (*storage.BrowserSession, error) {
	ctx := r.Context()
	prev, _, prevErr := p.CurrentSession(r)
	token, sess, err := p.accounts.StartSession(ctx, user, accounts.SessionMeta{
		AMR: amr, IP: clientip.From(r), UserAgent: r.UserAgent(),
	})
	if err != nil {
		return nil, err
	}
	if prevErr == nil {
		if err := p.accounts.EndSession(ctx, prev.ID); err != nil {
			p.log.Warn("ending the replaced session", "err", err)
		}
	}
	if renew {
		p.renewFlow(w, r)
	}
	p.setCookie(w, SessionCookie, token, time.Until(sess.ExpiresAt))
	return sess, nil
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
