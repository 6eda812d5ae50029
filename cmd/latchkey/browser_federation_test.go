package main

import (
	"errors"
	"strings"
	"testing"
)

// "Continue with Upstream" in a real browser: from an app's sign-in page
// at the first instance, through the upstream Latchkey's sign-in page,
// back through the first instance's consent, signed in at the app.
func TestBrowserFederationContinueWithUpstream(t *testing.T) {
	e := basicFederation(t)
	const pw = "heron lantern quarry 5"
	e.upstreamUser("ada", pw, true)
	rp := startChromeRP(t, e.s)
	c := newChromeTab(t)

	c.open(rp.URL + "/login")
	c.expect("/login", "Sign in", "to continue to Example App", "Continue with Upstream")
	c.checkA11y("sign-in page with upstream buttons")
	// docs/screenshots/login-upstreams-*.png (listed by hand in its README).
	newChromeShots(t).take(c, "login-upstreams", "Sign in with an upstream provider configured")
	c.follow("Continue with Upstream")
	upHost := strings.TrimPrefix(e.up.issuer, "http://")
	if h := chromeEval[string](c, `location.host`); h != upHost {
		c.fail("expected the upstream's sign-in page", errors.New("at "+h))
	}
	c.expect("/login", "Sign in")
	c.signIn("ada", pw)
	// Back at the first instance, which asks for consent for Example App
	// exactly as after a password sign-in.
	if h := chromeEval[string](c, `location.host`); h != strings.TrimPrefix(e.s.issuer, "http://") {
		c.fail("expected to be back at the first instance", errors.New("at "+h))
	}
	c.expect("/consent", "Allow access?", "Example App")
	c.click("Allow")
	c.expect("/callback", "Signed in as ada", "ada@example.com")

	// Signed in at the first instance: the account page lists the link.
	c.open(e.s.issuer + "/account")
	c.expect("/account", "Your account", "ada@example.com", "Upstream")
}
