package loginui

import (
	"errors"
	"net/http"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// Two-step verification on the account page: set up an authenticator
// app (QR code, secret, a code to confirm, recovery codes once), remove a
// factor, make new recovery codes. Each change asks for the password
// (or, for a passwordless account, a current code).

// handleAccountTOTPStart checks the password and shows the enrolment page.
func (u *UI) handleAccountTOTPStart() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, user, ok := u.accountForm(w, r)
		if !ok {
			return
		}
		data := page{}
		if data.Fields = u.recheckLimited(r, user, "mfa_password"); data.Fields != nil {
			u.accountPage(w, r, http.StatusTooManyRequests, sess, user, data)
			return
		}
		en, err := u.accounts.EnrolTOTP(r.Context(), user.ID, r.PostForm.Get("mfa_password"))
		if err := validation(err, &data, map[string]string{"current_password": "mfa_password"}); err != nil {
			u.internal(w, r, err)
			return
		}
		if len(data.Fields) > 0 {
			u.accountPage(w, r, http.StatusUnprocessableEntity, sess, user, data)
			return
		}
		u.renderAccountEnrol(w, r, http.StatusOK, en, nil)
	})
}

func (u *UI) renderAccountEnrol(w http.ResponseWriter, r *http.Request, status int, en *accounts.TOTPEnrolment, fields map[string]string) {
	t := u.pages.t
	data := page{Title: t.EnrolTitle, CSRF: u.flow.CSRFToken(w, r, "account"), FormAction: "/account/mfa/totp/confirm",
		Enrolment: u.enrolmentView(en), Fields: fields, Link: "/account", LinkText: t.Cancel}
	if fields != nil {
		data.Error = t.InvalidCode
	}
	u.pages.render(w, status, "enrol", data)
}

// handleAccountTOTPConfirm finishes the enrolment with a code from the app.
func (u *UI) handleAccountTOTPConfirm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, user, ok := u.accountForm(w, r)
		if !ok {
			return
		}
		t := u.pages.t
		ctx := r.Context()
		en, err := u.accounts.PendingTOTP(ctx, user.ID, r.PostForm.Get("factor_id"))
		if err != nil {
			u.internal(w, r, err)
			return
		}
		if ref, limited := u.limited(r, u.cfg.Limits.LoginAccount, "mfa:"+accounts.AccountLimitKey(user.ID)); limited {
			u.renderAccountEnrol(w, r, http.StatusTooManyRequests, en, map[string]string{"code": u.refusalText(ref)})
			return
		}
		codes, err := u.accounts.ConfirmTOTP(ctx, user.ID, en.FactorID, r.PostForm.Get("code"))
		var verr *accounts.ValidationError
		if errors.As(err, &verr) {
			u.renderAccountEnrol(w, r, http.StatusUnprocessableEntity, en, map[string]string{"code": t.InvalidCode})
			return
		}
		if err != nil {
			u.internal(w, r, err)
			return
		}
		if codes == nil {
			http.Redirect(w, r, "/account?saved=mfa", http.StatusSeeOther)
			return
		}
		u.pages.render(w, http.StatusOK, "recoverycodes", page{Title: t.RecoveryCodesTitle, RecoveryCodes: codes,
			Link: "/account?saved=mfa", LinkText: t.Continue})
	})
}

func (u *UI) handleAccountFactorRemove() http.Handler {
	return u.accountAction("mfa_removed", func(r *http.Request, _ *storage.BrowserSession, user *storage.User) (page, error) {
		data := page{}
		if data.Fields = u.recheckLimited(r, user, "mfa_remove_password"); data.Fields != nil {
			return data, nil
		}
		err := u.accounts.DeleteFactor(r.Context(), user.ID, r.PostForm.Get("factor_id"),
			accounts.FactorProof{CurrentPassword: r.PostForm.Get("mfa_remove_password"), Code: r.PostForm.Get("mfa_remove_code")})
		return data, validation(err, &data, map[string]string{"current_password": "mfa_remove_password", "code": "mfa_remove_code"})
	})
}

func (u *UI) handleAccountRecoveryCodes() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, user, ok := u.accountForm(w, r)
		if !ok {
			return
		}
		data := page{}
		if data.Fields = u.recheckLimited(r, user, "mfa_codes_password"); data.Fields != nil {
			u.accountPage(w, r, http.StatusTooManyRequests, sess, user, data)
			return
		}
		codes, err := u.accounts.RegenerateRecoveryCodes(r.Context(), user.ID,
			accounts.FactorProof{CurrentPassword: r.PostForm.Get("mfa_codes_password"), Code: r.PostForm.Get("mfa_codes_code")})
		if err := validation(err, &data, map[string]string{"current_password": "mfa_codes_password", "code": "mfa_codes_code",
			"factors": "mfa_codes_password"}); err != nil {
			u.internal(w, r, err)
			return
		}
		if len(data.Fields) > 0 {
			u.accountPage(w, r, http.StatusUnprocessableEntity, sess, user, data)
			return
		}
		t := u.pages.t
		u.pages.render(w, http.StatusOK, "recoverycodes", page{Title: t.RecoveryCodesTitle, RecoveryCodes: codes,
			Link: "/account", LinkText: t.Continue})
	})
}
