package loginui

import (
	"net/http"

	"github.com/gorilla/mux"
)

// Routes registers every page on r. State-changing requests pass through
// http.CrossOriginProtection.
func (u *UI) Routes(r *mux.Router) {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.pages.Error(w, r, http.StatusForbidden, u.pages.t.SomethingWrong, u.pages.t.BadRequest)
	}))
	protect := func(h http.Handler) http.Handler { return cop.Handler(h) }

	r.Handle("/login", protect(u.handleLogin())).Methods(http.MethodGet, http.MethodPost)
	r.Handle("/consent", protect(u.handleConsent())).Methods(http.MethodGet, http.MethodPost)
	r.Handle("/logout", protect(u.handleLogout())).Methods(http.MethodGet, http.MethodPost)
	r.Handle("/error", u.handleError()).Methods(http.MethodGet)
	r.PathPrefix("/static/").Handler(staticHandler()).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/", http.RedirectHandler("/login", http.StatusFound)).Methods(http.MethodGet)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.pages.Error(w, r, http.StatusNotFound, u.pages.t.NotFound, "")
	})
}
