package provider

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/internal/secret"
)

const (
	// SessionCookie carries the browser session token.
	SessionCookie = "latchkey_session"
	// flowCookie binds pending authorizations (and form CSRF tokens) to
	// the browser that started them. It gets a new value at every sign-in.
	flowCookie = "latchkey_flow"
	// prevFlowCookie keeps the value flowCookie had before the last
	// sign-in, for the pending requests that started with it (another tab
	// in the middle of signing in); it is accepted for nothing else.
	prevFlowCookie = "latchkey_flow_prev"
	// hostPrefix pins a cookie to this exact host, path "/" and https
	// (RFC 6265bis §4.1.3.2): a sibling subdomain cannot set or shadow it.
	hostPrefix = "__Host-"
)

// flowCookieNames returns the flow cookies' names: with the __Host-
// prefix when the issuer is https (browsers accept the prefix only on
// Secure cookies, so a plain-http development issuer goes without).
func flowCookieNames(secure bool) (current, prev string) {
	if secure {
		return hostPrefix + flowCookie, hostPrefix + prevFlowCookie
	}
	return flowCookie, prevFlowCookie
}

func (p *Provider) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   int(maxAge.Seconds()),
		HttpOnly: true,
		Secure:   p.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

func (p *Provider) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode,
	})
}

// validFlow reports whether v looks like a flow value we issued.
func validFlow(v string) bool { return len(v) >= 32 && len(v) <= 64 }

// flowValue returns the browser's flow value from cookie name, if any.
func flowValue(r *http.Request, name string) (string, bool) {
	c, err := r.Cookie(name)
	if err != nil || !validFlow(c.Value) {
		return "", false
	}
	return c.Value, true
}

// flowLifetime: a day, long enough for any sign-in, short enough to not be
// a tracker.
const flowLifetime = 24 * time.Hour

// flowBinding returns this browser's flow value, creating the cookie when
// it is missing.
func (p *Provider) flowBinding(w http.ResponseWriter, r *http.Request) string {
	if v, ok := flowValue(r, p.flowName); ok {
		return v
	}
	v := secret.Token(24)
	p.setCookie(w, p.flowName, v, flowLifetime)
	return v
}

// renewFlow gives the browser a new flow value when it signs in, so that a
// value known before (planted, or read over the person's shoulder) forges
// no form token afterwards. The old value moves to the "previous" cookie
// for as long as a pending authorization lives, where it is honoured only
// for pending requests bound to it: another tab in the middle of signing
// in keeps working. It returns the new value.
func (p *Provider) renewFlow(w http.ResponseWriter, r *http.Request) string {
	if old, ok := flowValue(r, p.flowName); ok {
		p.setCookie(w, p.prevFlowName, old, p.cfg.LoginTTL)
	}
	v := secret.Token(24)
	p.setCookie(w, p.flowName, v, flowLifetime)
	return v
}

// boundToBrowser reports whether a pending authorization's binding is
// this browser's flow value, or the value it had before its last sign-in.
func (p *Provider) boundToBrowser(r *http.Request, binding string) bool {
	for _, name := range []string{p.flowName, p.prevFlowName} {
		if v, ok := flowValue(r, name); ok && secret.Equal([]byte(bindingHash(v)), []byte(binding)) {
			return true
		}
	}
	return false
}

// bindingHash is what a pending authorization stores of the flow value.
func bindingHash(v string) string {
	return base64.RawURLEncoding.EncodeToString(secret.Hash(v))
}

// CSRFToken returns the form token for purpose in this browser: an HMAC of
// the flow cookie, so it cannot be forged without the cookie and needs no
// server-side state. Forms are also protected by Go's
// http.CrossOriginProtection (Sec-Fetch-Site / Origin checks).
func (p *Provider) CSRFToken(w http.ResponseWriter, r *http.Request, purpose string) string {
	return p.csrfFor(p.flowBinding(w, r), purpose)
}

func (p *Provider) csrfFor(flow, purpose string) string {
	return csrfWith(p.cookieKeys[0], flow, purpose)
}

// csrfMatches reports whether got is the form token of flow and purpose
// under any of the cookie keys (a form made before a secret rotation).
func (p *Provider) csrfMatches(flow, purpose string, got []byte) bool {
	for _, k := range p.cookieKeys {
		if hmac.Equal([]byte(csrfWith(k, flow, purpose)), got) {
			return true
		}
	}
	return false
}

func csrfWith(key []byte, flow, purpose string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(flow))
	m.Write([]byte{0})
	m.Write([]byte(purpose))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports whether the request carries the right form token: one
// made from the current flow value, or from the previous one when the form
// belongs to a pending authorization that started with it (a sign-in in
// another tab renewed the value meanwhile).
func (p *Provider) CheckCSRF(r *http.Request, purpose string) bool {
	got := []byte(r.PostFormValue("csrf_token"))
	if cur, ok := flowValue(r, p.flowName); ok && p.csrfMatches(cur, purpose, got) {
		return true
	}
	prev, ok := flowValue(r, p.prevFlowName)
	if !ok || !p.csrfMatches(prev, purpose, got) {
		return false
	}
	id := r.PostFormValue("challenge")
	if id == "" || len(id) > 64 {
		return false
	}
	pa, err := p.store.GetPendingAuthorization(r.Context(), id)
	return err == nil && secret.Equal([]byte(bindingHash(prev)), []byte(pa.CSRFToken))
}
