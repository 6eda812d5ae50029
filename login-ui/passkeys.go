package loginui

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// Passkeys on the pages. A WebAuthn ceremony is two requests: the first
// (…/options, called by static/passkey.js) answers the options for
// navigator.credentials and keeps the challenge in a sealed, short-lived
// cookie; the second is a plain form POST carrying the browser's answer
// in a hidden field, so that what follows (the pipeline's next step, the
// recovery codes) is an ordinary page.

// Sealer seals the ceremony cookie (internal/secret.Sealer under
// secret.PurposeWebAuthn).
type Sealer interface {
	Seal(rnd io.Reader, aad string, plaintext []byte) ([]byte, error)
	Open(aad string, sealed []byte) ([]byte, error)
}

const (
	ceremonyCookie = "latchkey_webauthn"
	ceremonyTTL    = 5 * time.Minute
)

// saveCeremony keeps a ceremony's state for the request that finishes
// it; kind binds it to one purpose (and person or challenge).
func (u *UI) saveCeremony(w http.ResponseWriter, kind string, state []byte) error {
	if u.cfg.Ceremonies == nil {
		return accounts.ErrNoPasskeys
	}
	sealed, err := u.cfg.Ceremonies.Seal(rand.Reader, ceremonyCookie+"\x00"+kind, state)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: ceremonyCookie, Value: base64.RawURLEncoding.EncodeToString(sealed), Path: "/",
		MaxAge: int(ceremonyTTL / time.Second), HttpOnly: true, Secure: u.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	return nil
}

// takeCeremony returns the state saved for kind and clears the cookie:
// a ceremony is finished once.
func (u *UI) takeCeremony(w http.ResponseWriter, r *http.Request, kind string) []byte {
	http.SetCookie(w, &http.Cookie{Name: ceremonyCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: u.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	c, err := r.Cookie(ceremonyCookie)
	if err != nil || u.cfg.Ceremonies == nil {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	state, err := u.cfg.Ceremonies.Open(ceremonyCookie+"\x00"+kind, raw)
	if err != nil {
		return nil
	}
	return state
}

// writeOptions answers an options request.
func (u *UI) writeOptions(w http.ResponseWriter, r *http.Request, kind string, options, state []byte, err error) {
	if err == nil {
		err = u.saveCeremony(w, kind, state)
	}
	if err != nil {
		if !errors.Is(err, accounts.ErrNoPasskeys) && !errors.Is(err, accounts.ErrPasskey) {
			u.log.Error("passkey options", "path", r.URL.Path, "err", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"passkeys are not available"}`))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(options)
}

// handlePasskeySignInOptions starts a passwordless sign-in.
func (u *UI) handlePasskeySignInOptions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := u.parseForm(w, r, "login"); err != nil {
			u.badForm(w, r)
			return
		}
		opts, state, err := u.accounts.BeginPasskeySignIn()
		u.writeOptions(w, r, "signin", opts, state, err)
	})
}

// handlePasskeySignIn finishes a passwordless sign-in: the passkey with
// user verification is both factors; the pipeline goes on to consent or
// finishes.
func (u *UI) handlePasskeySignIn() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := u.parseForm(w, r, "login"); err != nil {
			u.badForm(w, r)
			return
		}
		t := u.pages.t
		challengeID, next := r.PostForm.Get("challenge"), localPath(r.PostForm.Get("next"))
		ch, ok := u.challenge(w, r, challengeID)
		if !ok {
			return
		}
		if ref, limited := u.limited(r, u.cfg.Limits.LoginIP, "login:ip:"+u.clientIP(r)); limited {
			u.signIn("rate_limited")
			u.tooMany(w, "login", u.loginPage(w, r, ch, challengeID, next), ref)
			return
		}
		user, amr, err := u.accounts.FinishPasskeySignIn(r.Context(), u.takeCeremony(w, r, "signin"), []byte(r.PostForm.Get("credential")))
		if errors.Is(err, accounts.ErrPasskey) || errors.Is(err, accounts.ErrNoPasskeys) {
			u.signIn("passkey_invalid")
			data := u.loginPage(w, r, ch, challengeID, next)
			data.Error = t.PasskeyFailed
			u.pages.render(w, http.StatusUnauthorized, "login", data)
			return
		}
		if err != nil {
			u.internal(w, r, err)
			return
		}
		u.signIn("passkey")
		if next == "" {
			next = provider.PathAccount
		}
		target, err := u.flow.AcceptFirstFactor(w, r, ch, user, amr, next)
		if err != nil {
			u.internal(w, r, err)
			return
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
	})
}

// handlePasskeySecondFactorOptions starts a passkey check after the
// password.
func (u *UI) handlePasskeySecondFactorOptions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := u.parseForm(w, r, "second-factor"); err != nil {
			u.badForm(w, r)
			return
		}
		ch, ok := u.pendingChallenge(w, r, provider.StepSecondFactor)
		if !ok {
			return
		}
		opts, state, err := u.accounts.BeginPasskeySecondFactor(r.Context(), ch.UserID)
		u.writeOptions(w, r, "second:"+ch.ID, opts, state, err)
	})
}

func (u *UI) handlePasskeySecondFactor() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := u.parseForm(w, r, "second-factor"); err != nil {
			u.badForm(w, r)
			return
		}
		ch, ok := u.pendingChallenge(w, r, provider.StepSecondFactor)
		if !ok {
			return
		}
		t := u.pages.t
		amr, err := u.accounts.FinishPasskeySecondFactor(r.Context(), ch.UserID, u.takeCeremony(w, r, "second:"+ch.ID),
			[]byte(r.PostForm.Get("credential")))
		if errors.Is(err, accounts.ErrPasskey) {
			u.signIn("passkey_invalid")
			data := u.secondFactorPage(w, r, ch)
			data.Error = t.PasskeyFailed
			u.pages.render(w, http.StatusUnauthorized, "secondfactor", data)
			return
		}
		if err != nil {
			u.internal(w, r, err)
			return
		}
		u.signIn("second_factor")
		next, err := u.flow.AcceptSecondFactor(r, ch, amr)
		if err != nil {
			u.internal(w, r, err)
			return
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// handleAccountPasskeyOptions starts registering a passkey.
func (u *UI) handleAccountPasskeyOptions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, user, ok := u.accountForm(w, r)
		if !ok {
			return
		}
		opts, state, err := u.accounts.BeginPasskeyRegistration(r.Context(), user.ID)
		u.writeOptions(w, r, "register:"+user.ID, opts, state, err)
	})
}

// handleAccountPasskey keeps the new passkey (the first factor of a
// person comes with their recovery codes, shown once).
func (u *UI) handleAccountPasskey() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, user, ok := u.accountForm(w, r)
		if !ok {
			return
		}
		t := u.pages.t
		codes, err := u.accounts.FinishPasskeyRegistration(r.Context(), user.ID, r.PostForm.Get("passkey_name"),
			u.takeCeremony(w, r, "register:"+user.ID), []byte(r.PostForm.Get("credential")))
		data := page{Values: map[string]string{"passkey_name": r.PostForm.Get("passkey_name")}}
		if errors.Is(err, accounts.ErrPasskey) {
			data.Fields = map[string]string{"passkey_name": t.PasskeyFailed}
			u.accountPage(w, r, http.StatusUnprocessableEntity, sess, user, data)
			return
		}
		if err := validation(err, &data, map[string]string{"name": "passkey_name", "credential": "passkey_name"}); err != nil {
			u.internal(w, r, err)
			return
		}
		if len(data.Fields) > 0 {
			u.accountPage(w, r, http.StatusUnprocessableEntity, sess, user, data)
			return
		}
		if codes == nil {
			http.Redirect(w, r, "/account?saved=passkey", http.StatusSeeOther)
			return
		}
		u.pages.render(w, http.StatusOK, "recoverycodes", page{Title: t.RecoveryCodesTitle, RecoveryCodes: codes,
			Link: "/account?saved=passkey", LinkText: t.Continue})
	})
}

// hasPasskey reports whether the person has a passkey (the second-factor
// page offers it then).
func hasPasskey(fs []storage.Factor) bool {
	return slices.ContainsFunc(fs, func(f storage.Factor) bool { return f.Type == storage.FactorWebAuthn })
}
