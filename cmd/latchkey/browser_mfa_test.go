package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Two-step verification in a real Chromium: set up an authenticator app
// from the account page (the QR code renders; the key shown as text is
// the one to use), keep the recovery codes, then sign in again with the
// keyboard only on the second-factor page.
func TestBrowserTOTP(t *testing.T) {
	s, _ := chromeServer(t, nil)
	const pw = "correct horse battery staple"
	s.createUser("tess", pw)
	c := newChromeTab(t)

	c.open(s.issuer + "/account")
	c.signIn("tess", pw)
	c.expect("/account", "Two-step verification is off")
	c.fill("mfa_password", pw)
	c.click("Set up an authenticator app")
	c.expect("/account/mfa/totp", "Scan this QR code")
	c.checkA11y("enrol")
	if w := chromeEval[int](c, `document.querySelector("img.qr").naturalWidth`); w < 100 {
		t.Fatalf("the QR code did not render (natural width %d)", w)
	}
	secret := strings.ReplaceAll(chromeEval[string](c, `document.querySelector("code.secret").innerText`), " ", "")
	c.fill("code", "000000")
	c.click("Verify")
	c.expectError("That code is not valid")
	c.fill("code", totpCode(t, secret, time.Now()))
	c.click("Verify")
	c.expect("", "Your recovery codes")
	if n := chromeEval[int](c, `document.querySelectorAll(".codes li").length`); n != 10 {
		t.Fatalf("%d recovery codes shown, want 10", n)
	}
	c.follow("Continue")
	c.expect("/account", "Two-step verification is on.", "10 recovery codes left")

	// A new sign-in asks for a code; the page works from the keyboard:
	// the field has the focus and a label, Enter submits.
	c.open(s.issuer + "/logout")
	c.click("Sign out")
	c.open(s.issuer + "/account")
	c.signIn("tess", pw)
	c.expect("/login/second-factor", "Two-step verification", "authenticator app")
	c.checkA11y("second factor")
	c.expectFocus("code")
	if l := chromeEval[string](c, `document.querySelector("label[for=code]").innerText`); l != "Code" {
		t.Fatalf("the code field's label is %q", l)
	}
	code := totpCode(t, secret, time.Now().Add(30*time.Second))
	c.navigateBy("typing the code and Enter", chromedp.SendKeys(chromedp.ID("code"), code+"\r"))
	c.expect("/account", "Two-step verification is on.")
}
