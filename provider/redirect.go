package provider

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// matchRedirectURI reports whether requested, exactly as the client sent
// it, may receive the authorization response of a client that registered
// the URIs in registered.
//
// fosite's own matching (MatchRedirectURIWithClientRedirectURIs) applies
// RFC 8252's loopback rule to every client, after url.Parse has folded
// the scheme's case, dropped a trailing "?" and ignored userinfo. This is
// the rule Latchkey applies before fosite sees a request:
//   - a URI with userinfo (user@host) never matches;
//   - otherwise a byte-for-byte equal registered URI matches;
//   - a public (native) client that registered an http loopback IP
//     literal (127.0.0.1 or [::1]) may use any port there (RFC 8252
//     §7.3), everything else byte for byte: lower-case "http://", the
//     same literal, the same path and query, no fragment, no bare "?".
func matchRedirectURI(requested string, registered []string, public bool) bool {
	if requested == "" || hasUserinfo(requested) {
		return false
	}
	for _, reg := range registered {
		if requested == reg {
			return true
		}
		if public && loopbackMatch(requested, reg) {
			return true
		}
	}
	return false
}

// hasUserinfo reports whether raw has a user@ part, or cannot be parsed
// well enough to tell.
func hasUserinfo(raw string) bool {
	u, err := url.Parse(raw)
	return err != nil || u.User != nil
}

// loopbackMatch is RFC 8252 §7.3: requested is registered with another
// port (or none).
func loopbackMatch(requested, registered string) bool {
	regHost, regRest, ok := splitLoopback(registered)
	if !ok {
		return false
	}
	host, rest, ok := splitLoopback(requested)
	return ok && host == regHost && rest == regRest &&
		!strings.Contains(rest, "#") && !strings.HasSuffix(rest, "?")
}

// splitLoopback splits an "http://" loopback URI into its IP literal and
// what follows the authority (path and query), leaving out the port.
func splitLoopback(raw string) (host, rest string, ok bool) {
	after, found := strings.CutPrefix(raw, "http://")
	if !found {
		return "", "", false
	}
	authority := after
	if i := strings.IndexAny(after, "/?#"); i >= 0 {
		authority, rest = after[:i], after[i:]
	}
	for _, lit := range []string{"127.0.0.1", "[::1]"} {
		if port, found := strings.CutPrefix(authority, lit); found && validPort(port) {
			return lit, rest, true
		}
	}
	return "", "", false
}

// validPort: no port at all, or ":" and a port number without sign or
// leading zero.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	digits, found := strings.CutPrefix(p, ":")
	if !found || digits == "" || digits[0] == '0' || len(digits) > 5 {
		return false
	}
	n, err := strconv.Atoi(digits)
	return err == nil && n <= 65535 && strconv.Itoa(n) == digits
}

// requestedRedirectURI is the redirect URI a request asks for: its
// redirect_uri, or the client's only registered one when it sent none (as
// fosite does). "" when there is none to check.
func requestedRedirectURI(form url.Values, c *storage.Client) string {
	if ru := form.Get("redirect_uri"); ru != "" {
		return ru
	}
	if len(c.RedirectURIs) == 1 {
		return c.RedirectURIs[0]
	}
	return ""
}

// errUnregisteredRedirect is the answer to a redirect URI that is not the
// client's (a function: fosite's errors are pointers, a shared one could
// be changed by whoever wraps it).
func errUnregisteredRedirect() error {
	return fosite.ErrInvalidRequest.WithHint(
		"The 'redirect_uri' parameter does not match any of the client's registered redirect URIs.")
}

// guardRedirectURI checks an authorization request's redirect URI with
// matchRedirectURI before fosite sees the request: fosite would accept a
// loopback variant and could then send an error (or, for a signed-in
// person, a code) there. A request for an unknown client, or that uses a
// pushed request (whose redirect URI was checked when it was pushed), is
// left to fosite.
func (p *Provider) guardRedirectURI(r *http.Request) error {
	// Parsed as fosite parses it. A failed parse must be answered here:
	// fosite would find the form already (partly) parsed and go on.
	if err := r.ParseMultipartForm(1 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return fosite.ErrInvalidRequest.WithHint("Unable to parse the request: send a properly formatted form.").WithWrap(err)
	}
	if strings.HasPrefix(r.Form.Get("request_uri"), p.fcfg.PushedAuthorizeRequestURIPrefix) {
		return nil
	}
	c, err := p.client(r.Context(), r.Form.Get("client_id"))
	if errors.Is(err, fosite.ErrNotFound) {
		return nil // fosite answers invalid_client
	}
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if ru := requestedRedirectURI(r.Form, c); ru != "" && !matchRedirectURI(ru, c.RedirectURIs, c.Public) {
		return errUnregisteredRedirect()
	}
	return nil
}

// redirectable reports whether the response to ar may go to its redirect
// URI: fosite agrees and so does matchRedirectURI. It is checked again
// wherever a response is written, so a request that reached fosite some
// other way (a pushed or a parked one) cannot slip through.
func redirectable(ar fosite.AuthorizeRequester) bool {
	if ar == nil || !ar.IsRedirectURIValid() {
		return false
	}
	c, ok := ar.GetClient().(*storage.Client)
	return ok && matchRedirectURI(ar.GetRedirectURI().String(), c.RedirectURIs, c.Public)
}
