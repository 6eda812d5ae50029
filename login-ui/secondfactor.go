package loginui

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/provider/accounts"
)

// The pipeline's second-factor steps: /login/second-factor asks for a
// code (TOTP or recovery code) from a person who has a factor;
// /login/enrol sets one up for a person who must use one and has none.
// Both are plain forms that work without JavaScript.

// pendingChallenge loads the challenge a step page serves and checks the
// pipeline is at step; it answers the request itself when not.
func (u *UI) pendingChallenge(w http.ResponseWriter, r *http.Request, step provider.Step) (*provider.Challenge, bool) {
	id := r.URL.Query().Get("challenge")
	if r.Method == http.MethodPost {
		id = r.PostForm.Get("challenge")
	}
	if id == "" {
		u.expired(w, r)
		return nil, false
	}
	ch, ok := u.challenge(w, r, id)
	if !ok {
		return nil, false
	}
	return ch, u.atStep(w, r, ch, step)
}

func (u *UI) handleSecondFactor() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := u.pages.t
		if r.Method == http.MethodPost {
			if err := u.parseForm(w, r, "second-factor"); err != nil {
				u.badForm(w, r)
				return
			}
		}
		ch, ok := u.pendingChallenge(w, r, provider.StepSecondFactor)
		if !ok {
			return
		}
		data := u.secondFactorPage(w, r, ch)
		if r.Method == http.MethodGet {
			u.pages.render(w, http.StatusOK, "secondfactor", data)
			return
		}
		// The codes have their own budget per account (a correct
		// password does not refill it) besides the per-address one; the
		// account's lockout counts them too (VerifySecondFactor).
		if ref, limited := u.limited(r, u.cfg.Limits.LoginIP, "login:ip:"+u.clientIP(r)); limited {
			u.signIn("rate_limited")
			u.tooMany(w, "secondfactor", data, ref)
			return
		}
		if ref, limited := u.limited(r, u.cfg.Limits.LoginAccount, "mfa:"+accounts.AccountLimitKey(ch.UserID)); limited {
			u.signIn("rate_limited")
			u.tooMany(w, "secondfactor", data, ref)
			return
		}
		amr, err := u.accounts.VerifySecondFactor(r.Context(), ch.UserID, r.PostForm.Get("code"))
		var locked *accounts.LockedError
		switch {
		case errors.Is(err, accounts.ErrInvalidCode), errors.As(err, &locked):
			// A lock answers like a wrong code: the owner is told by email.
			u.signIn("invalid_code")
			data.Error = t.InvalidCode
			data.Fields = map[string]string{"code": t.InvalidCode}
			u.pages.render(w, http.StatusUnauthorized, "secondfactor", data)
			return
		case err != nil:
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

// secondFactorPage is the second-factor page's data: the code form, and
// the passkey button when the person has one.
func (u *UI) secondFactorPage(w http.ResponseWriter, r *http.Request, ch *provider.Challenge) page {
	data := page{Title: u.pages.t.SecondFactorTitle, Challenge: ch.ID, Client: ch.Client,
		CSRF: u.flow.CSRFToken(w, r, "second-factor")}
	if u.accounts.PasskeysEnabled() {
		if fs, _, err := u.accounts.ListFactors(r.Context(), ch.UserID); err == nil {
			data.Passkeys = hasPasskey(fs)
		}
	}
	return data
}

// handleEnrol sets up an authenticator app for a person whose sign-in
// requires a second factor they do not have yet: the QR code and the
// secret as text, a code to confirm, then the recovery codes, once.
func (u *UI) handleEnrol() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := u.pages.t
		if r.Method == http.MethodPost {
			if err := u.parseForm(w, r, "enrol"); err != nil {
				u.badForm(w, r)
				return
			}
		}
		ch, ok := u.pendingChallenge(w, r, provider.StepEnrol)
		if !ok {
			return
		}
		ctx := r.Context()
		data := page{Title: t.EnrolTitle, Challenge: ch.ID, Client: ch.Client, CSRF: u.flow.CSRFToken(w, r, "enrol")}
		var en *accounts.TOTPEnrolment
		var err error
		if r.Method == http.MethodGet {
			// The first factor was proven in this flow moments ago: no
			// password is asked again.
			en, err = u.accounts.EnrolTOTPInSignIn(ctx, ch.UserID)
		} else {
			en, err = u.accounts.PendingTOTP(ctx, ch.UserID, r.PostForm.Get("factor_id"))
		}
		if err != nil {
			u.internal(w, r, err)
			return
		}
		data.Enrolment = u.enrolmentView(en)
		if r.Method == http.MethodGet {
			u.pages.render(w, http.StatusOK, "enrol", data)
			return
		}
		if ref, limited := u.limited(r, u.cfg.Limits.LoginAccount, "mfa:"+accounts.AccountLimitKey(ch.UserID)); limited {
			u.tooMany(w, "enrol", data, ref)
			return
		}
		codes, err := u.accounts.ConfirmTOTP(ctx, ch.UserID, en.FactorID, r.PostForm.Get("code"))
		var verr *accounts.ValidationError
		if errors.As(err, &verr) {
			data.Error = t.InvalidCode
			data.Fields = map[string]string{"code": t.InvalidCode}
			u.pages.render(w, http.StatusUnprocessableEntity, "enrol", data)
			return
		}
		if err != nil {
			u.internal(w, r, err)
			return
		}
		next, err := u.flow.AcceptSecondFactor(r, ch, provider.AMROTP)
		if err != nil {
			u.internal(w, r, err)
			return
		}
		u.pages.render(w, http.StatusOK, "recoverycodes", page{Title: t.RecoveryCodesTitle, RecoveryCodes: codes,
			Link: next, LinkText: t.Continue})
	})
}

// enrolmentView is what the enrolment pages show of a pending TOTP
// factor: the QR code as an inline PNG (rendered here, no third party
// sees the secret), the secret grouped for typing, and the factor id.
type enrolmentView struct {
	FactorID string
	QR       template.URL
	Secret   string
}

func (u *UI) enrolmentView(en *accounts.TOTPEnrolment) *enrolmentView {
	v := &enrolmentView{FactorID: en.FactorID, Secret: groupSecret(en.Secret)}
	if png, err := qrcode.Encode(en.OTPAuthURI, qrcode.Medium, 240); err == nil {
		// A data: URI of our own PNG bytes, never of the person's input.
		v.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
	} else {
		u.log.Warn("rendering the QR code", "err", err)
	}
	return v
}

// groupSecret splits a base32 secret in groups of four for reading
// aloud and typing.
func groupSecret(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}
