package provider

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

// The protocol paths, relative to the issuer.
const (
	pathDiscovery  = "/.well-known/openid-configuration"
	pathJWKS       = "/.well-known/jwks.json"
	pathAuthorize  = "/oauth2/authorize"
	PathResume     = "/oauth2/authorize/resume"
	pathToken      = "/oauth2/token"
	pathIntrospect = "/oauth2/introspect"
	pathRevoke     = "/oauth2/revoke"
	pathPAR        = "/oauth2/par"
	pathUserinfo   = "/userinfo"
	pathEndSession = "/oauth2/logout"
)

// maxBody bounds every protocol request body; larger bodies are refused
// with invalid_request before anything is parsed or stored.
const maxBody = 64 << 10

// Routes registers every protocol endpoint on r.
func (p *Provider) Routes(r *mux.Router) {
	r.Handle(pathDiscovery, p.handleDiscovery()).Methods(http.MethodGet, http.MethodHead)
	r.Handle(pathJWKS, p.handleJWKS()).Methods(http.MethodGet, http.MethodHead)
	r.Handle(pathAuthorize, limitBody(p.handleAuthorize())).Methods(http.MethodGet, http.MethodPost)
	r.Handle(PathResume, p.handleResume()).Methods(http.MethodGet)
	r.Handle(pathToken, limitBody(p.handleToken()))
	r.Handle(pathIntrospect, limitBody(p.handleIntrospect()))
	r.Handle(pathRevoke, limitBody(p.handleRevoke()))
	r.Handle(pathPAR, limitBody(p.handlePAR()))
	r.Handle(pathUserinfo, limitBody(p.handleUserinfo())).Methods(http.MethodGet, http.MethodPost)
	r.Handle(pathEndSession, limitBody(p.handleEndSession())).Methods(http.MethodGet, http.MethodPost)

	// The account API for relying parties (bearer tokens).
	r.Handle("/account/me", p.handleAccountGet()).Methods(http.MethodGet)
	r.Handle("/account/me", p.handleAccountPatch()).Methods(http.MethodPatch)
	r.Handle("/account/me", p.handleAccountDelete()).Methods(http.MethodDelete)
	r.Handle("/account/me/password", p.handleAccountPassword()).Methods(http.MethodPost)
	r.Handle("/account/me/sessions", p.handleAccountSessions()).Methods(http.MethodGet)
	r.Handle("/account/me/sessions/{id}", p.handleAccountSessionDelete()).Methods(http.MethodDelete)
	r.Handle("/account/me/factors", p.handleAccountFactors()).Methods(http.MethodGet)
	r.Handle("/account/me/factors/totp", limitBody(p.handleAccountTOTPEnrol())).Methods(http.MethodPost)
	r.Handle("/account/me/factors/totp/{id}/confirm", limitBody(p.handleAccountTOTPConfirm())).Methods(http.MethodPost)
	r.Handle("/account/me/factors/{id}", limitBody(p.handleAccountFactorDelete())).Methods(http.MethodDelete)
	r.Handle("/account/me/recovery-codes", limitBody(p.handleAccountRecoveryCodes())).Methods(http.MethodPost)
}

// AnswersJSON reports whether the public route at path answers errors with
// an RFC 6749 JSON body: the endpoints clients call, the account API and
// discovery. The endpoints a browser is sent to (authorize, resume,
// logout) answer with the error page instead, as their other refusals do
// (an authorization request that cannot be trusted is never redirected).
func AnswersJSON(path string) bool {
	switch path {
	case pathAuthorize, PathResume, pathEndSession:
		return false
	case pathUserinfo, "/account/me":
		return true
	}
	return strings.HasPrefix(path, "/oauth2/") || strings.HasPrefix(path, "/.well-known/") ||
		strings.HasPrefix(path, "/account/me/")
}

// WriteInvalidRequest answers 400 invalid_request: the refusal of a
// request whose input cannot be read at all (see httpx.RejectMalformedText).
func WriteInvalidRequest(w http.ResponseWriter, _ *http.Request, description string) {
	writeOAuthError(w, http.StatusBadRequest, "invalid_request", description)
}

func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			writeOAuthError(w, http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if len(r.URL.RawQuery) > maxBody {
			writeOAuthError(w, http.StatusRequestURITooLong, "invalid_request", "The query string is too long.")
			return
		}
		h.ServeHTTP(w, r)
	})
}
