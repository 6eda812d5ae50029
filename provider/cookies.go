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
	// the browser that started them.
	flowCookie = "latchkey_flow"
)

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

// flowBinding returns this browser's flow value, creating the cookie when
// it is missing.
func (p *Provider) flowBinding(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(flowCookie); err == nil && len(c.Value) >= 32 && len(c.Value) <= 64 {
		return c.Value
	}
	v := secret.Token(24)
	// A day: long enough for any sign-in, short enough to not be a tracker.
	p.setCookie(w, flowCookie, v, 24*time.Hour)
	return v
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
	m := hmac.New(sha256.New, p.cookieKey)
	m.Write([]byte(flow))
	m.Write([]byte{0})
	m.Write([]byte(purpose))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports whether the request carries the right form token.
func (p *Provider) CheckCSRF(r *http.Request, purpose string) bool {
	c, err := r.Cookie(flowCookie)
	if err != nil || len(c.Value) < 32 || len(c.Value) > 64 {
		return false
	}
	want := p.csrfFor(c.Value, purpose)
	return hmac.Equal([]byte(want), []byte(r.PostFormValue("csrf_token")))
}
