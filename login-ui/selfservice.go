package loginui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchkey/latchkey/provider/accounts"
)

// fieldErrors turns a validation error into the page's field map; any
// other error is returned for the caller to handle.
func fieldErrors(err error, rename map[string]string) (map[string]string, error) {
	var ve *accounts.ValidationError
	if !errors.As(err, &ve) {
		return nil, err
	}
	name := ve.Field
	if to, ok := rename[name]; ok {
		name = to
	}
	return map[string]string{name: capitalize(ve.Message)}, nil
}

// capitalize makes "must be …" read as a sentence under the field.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// boundChallenge keeps a challenge id carried through an emailed link
// only when it could be one (the flow checks it belongs to this browser).
func boundChallenge(id string) string {
	if len(id) > 128 || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return ""
	}
	return id
}

func loginLink(challenge string) string {
	if challenge == "" {
		return "/login"
	}
	return "/login?challenge=" + url.QueryEscape(challenge)
}

// handleRegister is self-service registration. Whether or not the email
// already has an account, a valid form ends on the same "check your email"
// page (the owner of an existing account is told by email instead).
func (u *UI) handleRegister() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := u.pages.t
		if !u.cfg.RegistrationEnabled {
			u.pages.render(w, http.StatusForbidden, "message", page{Title: t.RegisterTitle, Detail: t.RegistrationClosed,
				Link: "/login", LinkText: t.BackToSignIn})
			return
		}
		var challengeID string
		if r.Method == http.MethodPost {
			if err := u.parseForm(w, r, "register"); err != nil {
				u.badForm(w, r)
				return
			}
			challengeID = r.PostForm.Get("challenge")
		} else {
			challengeID = r.URL.Query().Get("challenge")
		}
		ch, ok := u.challenge(w, r, challengeID)
		if !ok {
			return
		}
		data := page{Title: t.RegisterTitle, Challenge: challengeID, CSRF: u.flow.CSRFToken(w, r, "register"),
			Upstreams: u.cfg.Upstreams}
		if ch != nil {
			data.Client = ch.Client
		}
		if r.Method == http.MethodGet {
			if ch != nil && ch.LoginHint != "" && strings.Contains(ch.LoginHint, "@") {
				data.Values = map[string]string{"email": ch.LoginHint}
			}
			u.pages.render(w, http.StatusOK, "register", data)
			return
		}
		f := r.PostForm
		reg := accounts.Registration{
			Email:       strings.TrimSpace(f.Get("email")),
			Username:    strings.TrimSpace(f.Get("username")),
			DisplayName: strings.TrimSpace(f.Get("display_name")),
			Password:    f.Get("password"),
		}
		if challengeID != "" {
			reg.LinkParams = url.Values{"challenge": {challengeID}}
		}
		data.Values = map[string]string{"email": reg.Email, "username": reg.Username, "display_name": reg.DisplayName}
		fields := map[string]string{}
		for name, v := range map[string][2]string{"email": {reg.Email, t.Email}, "username": {reg.Username, t.Username},
			"password": {reg.Password, t.Password}} {
			if v[0] == "" {
				fields[name] = v[1] + " " + t.Required + "."
			}
		}
		if reg.Password != "" && f.Get("password_confirm") != reg.Password {
			fields["password_confirm"] = t.PasswordsDiffer
		}
		if len(fields) > 0 {
			data.Fields = fields
			u.pages.render(w, http.StatusUnprocessableEntity, "register", data)
			return
		}
		if ref, limited := u.limited(r, u.cfg.Limits.Register, "register:ip:"+u.clientIP(r)); limited {
			u.tooMany(w, "register", data, ref)
			return
		}
		err := u.accounts.Register(r.Context(), reg)
		if errors.Is(err, accounts.ErrRegistrationDisabled) {
			u.pages.render(w, http.StatusForbidden, "message", page{Title: t.RegisterTitle, Detail: t.RegistrationClosed})
			return
		}
		if err != nil {
			fe, err := fieldErrors(err, nil)
			if err != nil {
				u.internal(w, r, err)
				return
			}
			data.Fields = fe
			u.pages.render(w, http.StatusUnprocessableEntity, "register", data)
			return
		}
		u.pages.render(w, http.StatusOK, "message", page{Title: t.CheckEmailTitle,
			Detail: fmt.Sprintf(t.CheckEmailText, reg.Email), Link: loginLink(challengeID), LinkText: t.ContinueToSignIn})
	})
}

// handleVerifyEmail shows a confirm button for a verification link (a
// GET never uses the token up, so link scanners in mail systems cannot
// spend it), and offers to resend the link.
func (u *UI) handleVerifyEmail() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := u.pages.t
		if r.Method == http.MethodGet {
			token := r.URL.Query().Get("token")
			if len(token) > 128 {
				token = ""
			}
			u.pages.render(w, http.StatusOK, "verify", page{Title: t.VerifyTitle, Token: token, CSRF: u.flow.CSRFToken(w, r, "verify"),
				Challenge: boundChallenge(r.URL.Query().Get("challenge"))})
			return
		}
		if err := u.parseForm(w, r, "verify"); err != nil {
			u.badForm(w, r)
			return
		}
		f := r.PostForm
		if f.Get("action") == "resend" {
			login := strings.TrimSpace(f.Get("login"))
			data := page{Title: t.ResendTitle, CSRF: u.flow.CSRFToken(w, r, "verify"), Values: map[string]string{"login": login}}
			if login == "" {
				data.Fields = map[string]string{"login": t.UsernameOrEmail + " " + t.Required + "."}
				u.pages.render(w, http.StatusUnprocessableEntity, "verify", data)
				return
			}
			if !u.emailAllowed(w, r, "verify", data, login) {
				return
			}
			if err := u.evenly(r.Context(), func(ctx context.Context) error {
				return u.accounts.ResendVerification(ctx, login)
			}); err != nil {
				u.internal(w, r, err)
				return
			}
			u.pages.render(w, http.StatusOK, "message", page{Title: t.CheckEmailTitle, Detail: t.ResendSent,
				Link: "/login", LinkText: t.BackToSignIn})
			return
		}
		token := f.Get("token")
		user, err := u.accounts.ConfirmEmail(r.Context(), token, strings.TrimSpace(f.Get("username")))
		if errors.Is(err, accounts.ErrInvalidToken) {
			u.pages.render(w, http.StatusBadRequest, "message", page{Title: t.VerifyTitle, Detail: t.LinkInvalid,
				Link: "/verify-email", LinkText: t.ResendVerification})
			return
		}
		if errors.Is(err, accounts.ErrAddressHasAccount) {
			u.pages.render(w, http.StatusConflict, "message", page{Title: t.VerifyTitle, Detail: t.AddressHasAccount,
				Link: "/forgot-password", LinkText: t.ForgotPassword})
			return
		}
		var ve *accounts.ValidationError
		if errors.As(err, &ve) && ve.Field == "username" && len(token) <= 128 {
			// The registration's username went to someone who confirmed
			// first: the same link, with another name, finishes it.
			u.pages.render(w, http.StatusConflict, "verify", page{Title: t.VerifyTitle, Detail: t.ChooseUsername,
				Token: token, CSRF: u.flow.CSRFToken(w, r, "verify"), Challenge: boundChallenge(f.Get("challenge")),
				Values: map[string]string{"username": f.Get("username")},
				Fields: map[string]string{"username": capitalize(ve.Message)}})
			return
		}
		if errors.As(err, &ve) {
			u.pages.render(w, http.StatusConflict, "message", page{Title: t.VerifyTitle, Detail: capitalize(ve.Message)})
			return
		}
		if err != nil {
			u.internal(w, r, err)
			return
		}
		link, text := "/login", t.ContinueToSignIn
		if _, cur, err := u.flow.CurrentSession(r); err == nil && cur.ID == user.ID {
			link, text = "/account", t.GoToAccount
		} else if id := boundChallenge(f.Get("challenge")); id != "" {
			// Registered from an app's sign-in page, confirmed in the same
			// browser: signing in continues to the app.
			if _, err := u.flow.Challenge(r, id); err == nil {
				link = loginLink(id)
			}
		}
		u.pages.render(w, http.StatusOK, "message", page{Title: t.VerifiedTitle,
			Detail: fmt.Sprintf(t.VerifiedText, user.Email), Link: link, LinkText: text})
	})
}

// emailAllowed applies the email-sending rate limit per client IP and per
// address typed; it answers the request itself when over the limit.
func (u *UI) emailAllowed(w http.ResponseWriter, r *http.Request, tmpl string, data page, address string) bool {
	for _, key := range []string{"email:ip:" + u.clientIP(r), "email:to:" + strings.ToLower(address)} {
		if ref, limited := u.limited(r, u.cfg.Limits.Email, key); limited {
			u.tooMany(w, tmpl, data, ref)
			return false
		}
	}
	return true
}

// evenTime is how long the forgot-password and resend pages take at the
// least, whatever they do: far above the few statements the work costs
// (the email is only queued, never sent, within the request).
const evenTime = 150 * time.Millisecond

// evenly runs fn before answering, so that the email is in the outbox
// (durably) once the page says it was sent, and then waits out evenTime,
// so that the response time of the forgot-password and resend pages does
// not tell whether the account exists. A client that goes away does not
// cut fn short.
func (u *UI) evenly(ctx context.Context, fn func(ctx context.Context) error) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := fn(ctx)
	time.Sleep(time.Until(start.Add(evenTime)))
	return err
}

// handleForgotPassword sends a reset link; the answer is the same whether
// or not an account uses the address.
func (u *UI) handleForgotPassword() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := u.pages.t
		if r.Method == http.MethodGet {
			u.pages.render(w, http.StatusOK, "forgot", page{Title: t.ForgotTitle, Challenge: localChallenge(r.URL.Query().Get("challenge")),
				CSRF: u.flow.CSRFToken(w, r, "forgot")})
			return
		}
		if err := u.parseForm(w, r, "forgot"); err != nil {
			u.badForm(w, r)
			return
		}
		email := strings.TrimSpace(r.PostForm.Get("email"))
		challenge := localChallenge(r.PostForm.Get("challenge"))
		data := page{Title: t.ForgotTitle, Challenge: challenge, CSRF: u.flow.CSRFToken(w, r, "forgot"), Values: map[string]string{"email": email}}
		if email == "" || !strings.Contains(email, "@") || len(email) > 320 {
			data.Fields = map[string]string{"email": capitalize("must be a valid email address")}
			u.pages.render(w, http.StatusUnprocessableEntity, "forgot", data)
			return
		}
		if !u.emailAllowed(w, r, "forgot", data, email) {
			return
		}
		if err := u.evenly(r.Context(), func(ctx context.Context) error {
			return u.accounts.ForgotPassword(ctx, email)
		}); err != nil {
			u.internal(w, r, err)
			return
		}
		u.pages.render(w, http.StatusOK, "message", page{Title: t.CheckEmailTitle, Detail: fmt.Sprintf(t.ForgotSent, email),
			Link: loginLink(challenge), LinkText: t.BackToSignIn})
	})
}

// localChallenge bounds a challenge id carried through a page.
func localChallenge(id string) string {
	if len(id) > 128 {
		return ""
	}
	return id
}

// handleResetPassword sets a new password from a reset link. The GET
// checks the link without using it up.
func (u *UI) handleResetPassword() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := u.pages.t
		invalid := func() {
			u.pages.render(w, http.StatusBadRequest, "message", page{Title: t.ResetTitle, Detail: t.LinkInvalid,
				Link: "/forgot-password", LinkText: t.ForgotPassword})
		}
		if r.Method == http.MethodGet {
			token := r.URL.Query().Get("token")
			err := u.accounts.CheckResetToken(r.Context(), token)
			if errors.Is(err, accounts.ErrInvalidToken) {
				invalid()
				return
			}
			if err != nil {
				u.internal(w, r, err)
				return
			}
			u.pages.render(w, http.StatusOK, "reset", page{Title: t.ResetTitle, Token: token, CSRF: u.flow.CSRFToken(w, r, "reset")})
			return
		}
		if err := u.parseForm(w, r, "reset"); err != nil {
			u.badForm(w, r)
			return
		}
		f := r.PostForm
		data := page{Title: t.ResetTitle, Token: f.Get("token"), CSRF: u.flow.CSRFToken(w, r, "reset")}
		if ref, limited := u.limited(r, u.cfg.Limits.Reset, "reset:ip:"+u.clientIP(r)); limited {
			u.tooMany(w, "reset", data, ref)
			return
		}
		if f.Get("password") != f.Get("password_confirm") {
			data.Fields = map[string]string{"password_confirm": t.PasswordsDiffer}
			u.pages.render(w, http.StatusUnprocessableEntity, "reset", data)
			return
		}
		_, err := u.accounts.ResetPassword(r.Context(), f.Get("token"), f.Get("password"))
		if errors.Is(err, accounts.ErrInvalidToken) {
			invalid()
			return
		}
		if err != nil {
			fe, err := fieldErrors(err, nil)
			if err != nil {
				u.internal(w, r, err)
				return
			}
			data.Fields = fe
			u.pages.render(w, http.StatusUnprocessableEntity, "reset", data)
			return
		}
		// Every session was ended, this browser's included.
		_ = u.flow.SignOut(w, r)
		u.pages.render(w, http.StatusOK, "message", page{Title: t.ResetDoneTitle, Detail: t.ResetDoneText,
			Link: "/login", LinkText: t.ContinueToSignIn})
	})
}
