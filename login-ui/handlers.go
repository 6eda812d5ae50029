package loginui

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/clientip"
	"github.com/latchkey/latchkey/internal/httpx"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

const maxFormBytes = 16 << 10

// parseForm reads a bounded form body and checks its CSRF token.
func (u *UI) parseForm(w http.ResponseWriter, r *http.Request, purpose string) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return errBadForm
	}
	if !u.flow.CheckCSRF(r, purpose) {
		return errBadForm
	}
	return nil
}

func (u *UI) badForm(w http.ResponseWriter, r *http.Request) {
	u.pages.BadRequest(w, r, "")
}

func (u *UI) expired(w http.ResponseWriter, r *http.Request) {
	u.pages.Error(w, r, http.StatusBadRequest, u.pages.t.SomethingWrong, u.pages.t.SessionExpired)
}

func (u *UI) internal(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, storage.ErrUnavailable) {
		// Our outage: the person's input was fine, and trying again soon
		// is the right thing to do.
		u.log.Error("login ui: database unavailable", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", httpx.RetryAfterOutage)
		u.pages.Error(w, r, http.StatusServiceUnavailable, u.pages.t.Unavailable, u.pages.t.TryAgain)
		return
	}
	u.log.Error("login ui", "path", r.URL.Path, "err", err)
	u.pages.Error(w, r, http.StatusInternalServerError, u.pages.t.SomethingWrong, u.pages.t.TryAgain)
}

// handleLogin shows and processes the sign-in form. With a challenge it
// continues the pending authorization; without one it signs in to the
// account page (or the local page named by next).
func (u *UI) handleLogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := u.pages.t
		var challengeID, next string
		if r.Method == http.MethodPost {
			if err := u.parseForm(w, r, "login"); err != nil {
				u.badForm(w, r)
				return
			}
			challengeID, next = r.PostForm.Get("challenge"), r.PostForm.Get("next")
		} else {
			challengeID, next = r.URL.Query().Get("challenge"), r.URL.Query().Get("next")
		}
		next = localPath(next)
		ch, ok := u.challenge(w, r, challengeID)
		if !ok {
			return
		}
		data := u.loginPage(w, r, ch, challengeID, next)
		if r.Method == http.MethodGet {
			if ch == nil {
				if _, user, err := u.flow.CurrentSession(r); err == nil {
					if next != "" {
						http.Redirect(w, r, next, http.StatusFound)
						return
					}
					u.pages.render(w, http.StatusOK, "signedin", page{Title: t.SignedInTitle, User: user.Username})
					return
				}
			}
			u.pages.render(w, http.StatusOK, "login", data)
			return
		}

		login := strings.TrimSpace(r.PostForm.Get("login"))
		data.Login = login
		ip := u.clientIP(r)
		if ref, limited := u.limited(r, u.cfg.Limits.LoginIP, "login:ip:"+ip); limited {
			u.signIn("rate_limited")
			u.tooMany(w, "login", data, ref)
			return
		}
		acctKey, err := u.accounts.SignInLimitKey(r.Context(), login)
		if err != nil {
			u.internal(w, r, err)
			return
		}
		acctKey = "login:" + acctKey
		if ref, limited := u.limited(r, u.cfg.Limits.LoginAccount, acctKey); limited {
			u.signIn("rate_limited")
			u.tooMany(w, "login", data, ref)
			return
		}
		user, err := u.accounts.Authenticate(r.Context(), login, r.PostForm.Get("password"))
		var locked *accounts.LockedError
		switch {
		case errors.Is(err, accounts.ErrInvalidCredentials):
			u.signIn("invalid")
			data.Error = t.InvalidCredentials
			u.pages.render(w, http.StatusUnauthorized, "login", data)
			return
		case errors.As(err, &locked):
			// A locked account answers exactly like a wrong password, so
			// that a lock cannot reveal which names are accounts; the
			// owner learns of the lock by email.
			u.signIn("locked")
			data.Error = t.InvalidCredentials
			u.pages.render(w, http.StatusUnauthorized, "login", data)
			return
		case errors.Is(err, accounts.ErrEmailNotVerified):
			u.signIn("unverified")
			data.Error, data.Resend = t.EmailNotVerified, true
			data.ResendCSRF = u.flow.CSRFToken(w, r, "verify")
			u.pages.render(w, http.StatusForbidden, "login", data)
			return
		case err != nil:
			u.internal(w, r, err)
			return
		}
		u.signIn("success")
		u.resetLimit(r, u.cfg.Limits.LoginAccount, acctKey)
		if next == "" {
			next = provider.PathAccount
		}
		target, err := u.flow.AcceptFirstFactor(w, r, ch, user, []string{provider.AMRPassword}, next)
		if err != nil {
			u.internal(w, r, err)
			return
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	})
}

// loginPage is the sign-in page's data for ch (nil: a direct sign-in).
func (u *UI) loginPage(w http.ResponseWriter, r *http.Request, ch *provider.Challenge, challengeID, next string) page {
	data := page{Title: u.pages.t.SignInTitle, Challenge: challengeID, Next: next, CSRF: u.flow.CSRFToken(w, r, "login"),
		Register: u.cfg.RegistrationEnabled, Upstreams: u.cfg.Upstreams, Passkeys: u.accounts.PasskeysEnabled()}
	if ch != nil {
		data.Client = ch.Client
		data.Login = ch.LoginHint
	}
	return data
}

// challenge loads the pending authorization named by id ("" is none). It
// answers the request itself and returns false when the id is stale.
func (u *UI) challenge(w http.ResponseWriter, r *http.Request, id string) (*provider.Challenge, bool) {
	if id == "" {
		return nil, true
	}
	ch, err := u.flow.Challenge(r, id)
	if errors.Is(err, provider.ErrNoChallenge) {
		u.expired(w, r)
		return nil, false
	}
	if err != nil {
		u.internal(w, r, err)
		return nil, false
	}
	return ch, true
}

// atStep reports whether ch is at step; otherwise it sends the browser
// to the dispatcher, which knows where it should be, and returns false.
func (u *UI) atStep(w http.ResponseWriter, r *http.Request, ch *provider.Challenge, step provider.Step) bool {
	got, err := u.flow.Step(r, ch)
	if err != nil {
		u.internal(w, r, err)
		return false
	}
	if got != step {
		http.Redirect(w, r, provider.PathResume+"?challenge="+url.QueryEscape(ch.ID), http.StatusFound)
		return false
	}
	return true
}

// localPath admits only same-site absolute paths as a place to go back
// to, so that next cannot send the browser to another site.
func localPath(p string) string {
	// No backslash anywhere: browsers read "\" as "/", and http.Redirect
	// cleans "/./\host" into "/\host", another site.
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") {
		return ""
	}
	if pu, err := url.Parse(p); err != nil || pu.Host != "" || pu.Scheme != "" {
		return ""
	}
	if c := path.Clean(p); strings.HasPrefix(c, "//") {
		return ""
	}
	return p
}

func (u *UI) signIn(outcome string) {
	if u.cfg.Metrics != nil {
		u.cfg.Metrics.SignIn(outcome)
	}
}

// withActor records who acts (the person at this browser, with their
// address) for the audit log of every change a page makes.
func (u *UI) withActor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := accounts.Actor{Type: storage.ActorUser, IP: u.clientIP(r), UserAgent: r.UserAgent()}
		next.ServeHTTP(w, r.WithContext(accounts.WithActor(r.Context(), a)))
	})
}

// clientIP is the address rate limits are keyed by (see clientip).
func (u *UI) clientIP(r *http.Request) string { return clientip.From(r) }

// refusal is why a rate-limited action may not go ahead: over the limit
// (wait), or the limit could not be checked (err).
type refusal struct {
	wait time.Duration
	err  error
}

// limited consumes one event of l for key; nil l never limits. When the
// limit cannot be checked (the database is down) the action is refused:
// a limit that fails open is no limit during an outage, which is when an
// attacker would try.
func (u *UI) limited(r *http.Request, l Limiter, key string) (refusal, bool) {
	if l == nil {
		return refusal{}, false
	}
	ok, wait, err := l.Allow(r.Context(), key)
	if err != nil {
		u.log.Error("login ui: rate limit unavailable; refusing", "path", r.URL.Path, "err", err)
		return refusal{err: err}, true
	}
	return refusal{wait: wait}, !ok
}

// resetLimit restores key's budget of l after a success; a failure only
// leaves the budget spent, so it is logged, not shown.
func (u *UI) resetLimit(r *http.Request, l Limiter, key string) {
	if l == nil {
		return
	}
	if err := l.Reset(r.Context(), key); err != nil {
		u.log.Warn("login ui: resetting a rate limit", "path", r.URL.Path, "err", err)
	}
}

// tooMany re-renders a form with the refusal: 429 with the rate-limit
// message and Retry-After, or 503 when the limit could not be checked.
func (u *UI) tooMany(w http.ResponseWriter, name string, data page, ref refusal) {
	data.Error = u.refusalText(ref)
	if ref.err != nil {
		w.Header().Set("Retry-After", httpx.RetryAfterOutage)
		u.pages.render(w, http.StatusServiceUnavailable, name, data)
		return
	}
	wait := max(ref.wait, time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	u.pages.render(w, http.StatusTooManyRequests, name, data)
}

// refusalText is the message for a refusal.
func (u *UI) refusalText(ref refusal) string {
	if ref.err != nil {
		return u.pages.t.Unavailable + ". " + u.pages.t.TryAgain
	}
	return u.pages.t.tooMany(ref.wait)
}

// handleConsent lists the client and the scopes it asks for.
func (u *UI) handleConsent() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := u.pages.t
		var challengeID string
		if r.Method == http.MethodPost {
			if err := u.parseForm(w, r, "consent"); err != nil {
				u.badForm(w, r)
				return
			}
			challengeID = r.PostForm.Get("challenge")
		} else {
			challengeID = r.URL.Query().Get("challenge")
		}
		ch, err := u.flow.Challenge(r, challengeID)
		if errors.Is(err, provider.ErrNoChallenge) {
			u.expired(w, r)
			return
		}
		if err != nil {
			u.internal(w, r, err)
			return
		}
		// No session exists yet: it starts when the pipeline finishes.
		// The challenge, bound to this browser, says who signed in.
		if !u.atStep(w, r, ch, provider.StepConsent) {
			return
		}
		user, err := u.accounts.GetUser(r.Context(), ch.UserID)
		if err != nil {
			u.internal(w, r, err)
			return
		}
		if r.Method == http.MethodGet {
			data := page{Title: t.ConsentTitle, Challenge: ch.ID, Client: ch.Client, User: user.Username,
				CSRF: u.flow.CSRFToken(w, r, "consent")}
			for _, s := range ch.Scopes {
				data.Scopes = append(data.Scopes, scopeView{Name: s, Label: t.scopeLabel(s)})
			}
			u.pages.render(w, http.StatusOK, "consent", data)
			return
		}
		if r.PostForm.Get("decision") != "allow" {
			u.flow.DenyConsent(w, r, ch)
			return
		}
		next, err := u.flow.AcceptConsent(r, ch, r.PostForm["scope"], true)
		if err != nil {
			u.internal(w, r, err)
			return
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// handleLogout confirms and performs a sign-out, then returns to the
// client's registered post-logout URI when one was given.
func (u *UI) handleLogout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := u.pages.t
		if r.Method == http.MethodGet {
			q := r.URL.Query()
			if q.Get("done") != "" {
				u.pages.render(w, http.StatusOK, "logout", page{Title: t.SignedOutTitle, Done: true})
				return
			}
			data := page{Title: t.SignOutTitle, CSRF: u.flow.CSRFToken(w, r, "logout"),
				ClientID: q.Get("client_id"), RedirectURI: q.Get("post_logout_redirect_uri"), State: q.Get("state")}
			if _, user, err := u.flow.CurrentSession(r); err == nil {
				data.User = user.Username
			}
			u.pages.render(w, http.StatusOK, "logout", data)
			return
		}
		if err := u.parseForm(w, r, "logout"); err != nil {
			u.badForm(w, r)
			return
		}
		f := r.PostForm
		target, err := u.flow.LogoutRedirect(r, f.Get("client_id"), f.Get("post_logout_redirect_uri"), f.Get("state"))
		if err != nil {
			u.pages.Error(w, r, http.StatusBadRequest, t.SomethingWrong, err.Error())
			return
		}
		if err := u.flow.SignOut(w, r); err != nil {
			u.internal(w, r, err)
			return
		}
		if target == "" {
			target = provider.PathLogout + "?done=1"
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	})
}

func (u *UI) handleError() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.pages.Error(w, r, http.StatusBadRequest, u.pages.t.SomethingWrong, u.pages.t.TryAgain)
	})
}
