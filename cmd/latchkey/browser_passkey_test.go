package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/testdb"
)

// Passkeys in a real Chromium with a virtual authenticator (the DevTools
// WebAuthn domain): register one on the account page, sign in with it
// alone from the sign-in page, and use it as the second factor after a
// password. The issuer is http://localhost: WebAuthn needs a secure
// context and a domain (not an IP address) as the relying party id.
func TestBrowserPasskeys(t *testing.T) {
	addr := freePort(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	s, _ := startServerAt(t, testdb.SQLite(t), addr, "http://localhost:"+port, nil)
	const pw = "correct horse battery staple"
	s.createUser("kim", pw)
	c := newChromeTab(t)

	c.open(s.issuer + "/login")
	ctx, cancel := context.WithTimeout(c.ctx, chromeStepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	va, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2,
			Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true},
	})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}

	c.open(s.issuer + "/account")
	c.signIn("kim", pw)
	c.expect("/account", "Add a passkey")
	c.fill("passkey_name", "Work laptop")
	c.click("Add a passkey")
	c.expect("", "Your recovery codes")
	c.follow("Continue")
	c.expect("/account", "The passkey was added.", "Work laptop", "Two-step verification is on.")
	// An authenticator app beside it: the account page lists both and
	// offers which one to remove.
	c.fill("mfa_password", pw)
	c.click("Set up an authenticator app")
	secret := strings.ReplaceAll(chromeEval[string](c, `document.querySelector("code.secret").innerText`), " ", "")
	c.fill("code", totpCode(t, secret, time.Now()))
	c.click("Verify")
	c.expect("/account", "Two-step verification is on.", "Work laptop", "Authenticator app", "Sign-in method to remove")
	c.checkA11y("account page with two factors")

	// Passwordless: the passkey alone, with user verification, through
	// the username field's autofill (conditional UI): the virtual
	// authenticator answers the page's conditional request at once, as a
	// person picking their passkey from the autofill list would.
	c.open(s.issuer + "/logout")
	c.click("Sign out")
	c.open(s.issuer + "/login")
	waitPath(c, "/account")
	c.expect("/account", "Signed in as kim")

	// After a password, the passkey is the second factor. (The
	// authenticator stops answering by itself meanwhile, or the sign-in
	// page's autofill request would sign in again before the password.)
	presence := func(on bool) {
		t.Helper()
		if _, err := chromedp.Call(ctx, webauthn.SetAutomaticPresenceSimulation,
			webauthn.SetAutomaticPresenceSimulationParams{AuthenticatorID: va.AuthenticatorID, Enabled: on}); err != nil {
			t.Fatalf("WebAuthn.setAutomaticPresenceSimulation: %v", err)
		}
	}
	c.open(s.issuer + "/logout")
	c.click("Sign out")
	presence(false)
	c.open(s.issuer + "/account")
	c.signIn("kim", pw)
	c.expect("/login/second-factor", "Use a passkey instead")
	c.checkA11y("second factor with a passkey")
	presence(true)
	c.click("Use a passkey instead")
	c.expect("/account", "Signed in as kim")
}

// waitPath waits until the page shown is at path (the page navigates by
// itself; an evaluation that meets the navigation is tried again).
func waitPath(c *chromeTab, path string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(c.ctx, time.Second)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState === "complete" ? location.pathname : ""`))
		cancel()
		if err == nil && got == path {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.fail("waiting for "+path, errors.New("the page did not get there"))
}
