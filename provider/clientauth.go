package provider

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// errTwoClientAuthMethods is the description of the answer to a request
// that authenticates the client in more than one way.
const errTwoClientAuthMethods = "The request uses more than one client authentication method; " +
	"use exactly one: HTTP Basic (client_secret_basic), or client_id and client_secret in the body (client_secret_post)."

// clientAuthMethods counts the client authentication methods a request
// uses: credentials in the Authorization header (HTTP Basic; at the
// introspection endpoint fosite also takes a bearer token), a
// client_secret in the body, a client_assertion in the body. A client_id
// alone is no method: RFC 6749 §3.2.1 lets any client send it.
func clientAuthMethods(h http.Header, form url.Values) int {
	n := 0
	if h.Get("Authorization") != "" {
		n++
	}
	if form.Get("client_secret") != "" {
		n++
	}
	if form.Get("client_assertion") != "" || form.Get("client_assertion_type") != "" {
		n++
	}
	return n
}

// checkOneClientAuthMethod enforces RFC 6749 §2.3 ("The client MUST NOT
// use more than one authentication method in each request") at the token,
// introspection, revocation and PAR endpoints. fosite tries one method
// (an assertion, else Basic, else the body) and ignores the others, so a
// request carrying two was answered with whichever it looked at — a
// secret in the body next to Basic was never checked at all. pushed: the
// PAR endpoint, where fosite reads the query too.
//
// It parses the form as fosite will; fosite then finds it parsed. On a
// failed parse it answers itself: fosite would find the form already
// (partly) parsed and go on.
func checkOneClientAuthMethod(w http.ResponseWriter, r *http.Request, pushed bool) bool {
	err := r.ParseForm()
	if err == nil && strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		if err = r.ParseMultipartForm(1 << 20); errors.Is(err, http.ErrNotMultipart) {
			err = nil
		}
	}
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "The request body could not be read: send a properly formatted form.")
		return false
	}
	form := r.PostForm
	if pushed {
		form = r.Form
	}
	if clientAuthMethods(r.Header, form) > 1 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", errTwoClientAuthMethods)
		return false
	}
	return true
}
