package federation

import (
	"fmt"
	"net/url"
	"strings"
)

// mapClaims reads the identity from verified claims, by the configured
// claim names.
func mapClaims(subject string, claims map[string]any, names ClaimNames) Identity {
	names.setDefaults()
	id := Identity{
		Subject:       subject,
		Email:         strings.TrimSpace(str(claims["email"])),
		EmailVerified: truthy(claims["email_verified"]),
		Name:          strings.TrimSpace(str(claims[names.Name])),
		Username:      strings.TrimSpace(str(claims[names.Username])),
		HostedDomain:  strings.TrimSpace(str(claims[names.HostedDomain])),
	}
	if p := str(claims[names.Picture]); p != "" {
		if u, err := url.Parse(p); err == nil && u.Scheme == "https" && u.Host != "" {
			id.PictureURL = p
		}
	}
	return id
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

// refusalMessage is the part of a refusal error that is meant for the
// person.
func refusalMessage(err error) string {
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
