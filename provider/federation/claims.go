package federation

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/latchkey/latchkey/internal/httpx"
)

// mapClaims reads the identity from verified claims, by the configured
// claim names. Every value is text the store accepts (PostgreSQL refuses
// NUL): a subject or email address that is not is an ErrInvalid (the
// sign-in cannot go on without them, and must not go on with another
// value); an optional claim that is not (name, username, hosted domain,
// picture) is left out, as if the upstream had not sent it — an allowed
// hosted domain then refuses the sign-in, as it refuses one without hd.
func mapClaims(subject string, claims map[string]any, names ClaimNames) (Identity, error) {
	names.setDefaults()
	text := func(name string) string {
		if s := strings.TrimSpace(str(claims[name])); httpx.ValidText(s) {
			return s
		}
		return ""
	}
	if !httpx.ValidText(subject) {
		return Identity{}, fmt.Errorf("%w: the subject holds a NUL character", ErrInvalid)
	}
	email := strings.TrimSpace(str(claims["email"]))
	if !httpx.ValidText(email) {
		return Identity{}, fmt.Errorf("%w: the email claim holds a NUL character", ErrInvalid)
	}
	id := Identity{
		Subject:       subject,
		Email:         email,
		EmailVerified: truthy(claims["email_verified"]),
		Name:          text(names.Name),
		Username:      text(names.Username),
		HostedDomain:  text(names.HostedDomain),
	}
	if p := str(claims[names.Picture]); p != "" && httpx.ValidText(p) {
		if u, err := url.Parse(p); err == nil && u.Scheme == "https" && u.Host != "" {
			id.PictureURL = p
		}
	}
	return id, nil
}

// str is a claim's value when it is a string.
func str(v any) string {
	s, _ := v.(string)
	return s
}

// truthy reads email_verified: a boolean, or the string "true" (some
// providers, Google among them at times, send it as a string).
func truthy(v any) bool {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		return strings.EqualFold(strings.TrimSpace(b), "true")
	}
	return false
}

// checkHostedDomain applies the hosted-domain rule: with allowed domains
// configured, the identity's domain must be one of them (ignoring case);
// an identity without one is refused.
func checkHostedDomain(hd string, allowed []string) error {
	if len(allowed) == 0 {
		return nil
	}
	for _, d := range allowed {
		if hd != "" && strings.EqualFold(hd, strings.TrimSpace(d)) {
			return nil
		}
	}
	list := strings.Join(allowed, ", ")
	if hd == "" {
		return fmt.Errorf("%w: this account does not belong to an allowed organization; sign in with an account of %s", ErrRefused, list)
	}
	return fmt.Errorf("%w: accounts of %s cannot sign in here; sign in with an account of %s", ErrRefused, hd, list)
}

// RefusalMessage is the part of a refusal error that is meant for the
// person.
func RefusalMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ErrRefused.Error()+": "); i >= 0 {
		msg = msg[i+len(ErrRefused.Error())+2:]
	}
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
		if !strings.HasSuffix(msg, ".") {
			msg += "."
		}
	}
	return msg
}
