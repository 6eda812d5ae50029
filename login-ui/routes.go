package loginui

import (
	"net/http"

	"github.com/gorilla/mux"
	"github.com/latchkey/latchkey/provider"
)

// Routes registers every page on r. State-changing requests pass through
// http.CrossOriginProtection.
func (u *UI) Routes(r *mux.Router) {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.pages.Error(w, r, http.StatusForbidden, u.pages.t.SomethingWrong, u.pages.t.BadRequest)
	}))
	protect := func(h http.Handler) http.Handler { return u.withActor(cop.Handler(h)) }
	getPost := []string{http.MethodGet, http.MethodPost}

	r.Handle("/login", protect(u.handleLogin())).Methods(getPost...)
	r.Handle(provider.PathSecondFactor, protect(u.handleSecondFactor())).Methods(getPost...)
	r.Handle("/login/passkey/options", protect(u.handlePasskeySignInOptions())).Methods(http.MethodPost)
	r.Handle("/login/passkey", protect(u.handlePasskeySignIn())).Methods(http.MethodPost)
	r.Handle(provider.PathSecondFactor+"/passkey/options", protect(u.handlePasskeySecondFactorOptions())).Methods(http.MethodPost)
	r.Handle(provider.PathSecondFactor+"/passkey", protect(u.handlePasskeySecondFactor())).Methods(http.MethodPost)
	r.Handle(provider.PathEnrol, protect(u.handleEnrol())).Methods(getPost...)
	r.Handle("/consent", protect(u.handleConsent())).Methods(getPost...)
	r.Handle("/logout", protect(u.handleLogout())).Methods(getPost...)
	r.Handle("/register", protect(u.handleRegister())).Methods(getPost...)
	r.Handle("/verify-email", protect(u.handleVerifyEmail())).Methods(getPost...)
	r.Handle("/forgot-password", protect(u.handleForgotPassword())).Methods(getPost...)
	r.Handle("/reset-password", protect(u.handleResetPassword())).Methods(getPost...)
	r.Handle("/account", u.handleAccount()).Methods(http.MethodGet)
	r.Handle("/account/profile", protect(u.handleAccountProfile())).Methods(http.MethodPost)
	r.Handle("/account/email", protect(u.handleAccountEmail())).Methods(http.MethodPost)
	r.Handle("/account/password", protect(u.handleAccountPassword())).Methods(http.MethodPost)
	r.Handle("/account/sessions/revoke", protect(u.handleAccountRevokeSession())).Methods(http.MethodPost)
	r.Handle("/account/apps/revoke", protect(u.handleAccountRevokeApp())).Methods(http.MethodPost)
	r.Handle("/account/identities/unlink", protect(u.handleAccountUnlinkIdentity())).Methods(http.MethodPost)
	r.Handle("/account/passkeys/options", protect(u.handleAccountPasskeyOptions())).Methods(http.MethodPost)
	r.Handle("/account/passkeys", protect(u.handleAccountPasskey())).Methods(http.MethodPost)
	r.Handle("/account/mfa/totp", protect(u.handleAccountTOTPStart())).Methods(http.MethodPost)
	r.Handle("/account/mfa/totp/confirm", protect(u.handleAccountTOTPConfirm())).Methods(http.MethodPost)
	r.Handle("/account/mfa/remove", protect(u.handleAccountFactorRemove())).Methods(http.MethodPost)
	r.Handle("/account/mfa/recovery-codes", protect(u.handleAccountRecoveryCodes())).Methods(http.MethodPost)
	r.Handle("/account/delete", protect(u.handleAccountDelete())).Methods(http.MethodPost)
	r.Handle("/error", u.handleError()).Methods(http.MethodGet)
	r.Handle("/brand.css", u.pages.handleBrandCSS()).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix("/static/").Handler(staticHandler()).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/", http.RedirectHandler("/login", http.StatusFound)).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.pages.Error(w, r, http.StatusNotFound, u.pages.t.NotFound, "")
	})
}
