package main

// Real-browser tests: a headless Chromium (chromedp) drives the hosted
// pages of an in-process Latchkey, with a relying party in the test and a
// capturing SMTP server for the emails. Helpers are in
// browser_helpers_test.go. Without Chromium the tests skip.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

const mailWait = 10 * time.Second

// Registration from an app's sign-in page, email verification through the
// link that was mailed, then sign-in and consent, back at the app.
func TestBrowserRegisterVerifySignInConsent(t *testing.T) {
	s, smtp := chromeServer(t, map[string]string{"LATCHKEY_REQUIRE_VERIFIED_EMAIL": "true"})
	rp := startChromeRP(t, s)
	c := newChromeTab(t)
	const pw = "violet kestrel harbor 42"

	c.open(rp.URL + "/login") // the app redirects to the authorization endpoint
	c.expect("/login", "Sign in", "to continue to Example App")
	c.follow("Create an account")
	c.expect("/register", "Create your account", "Example App")
	c.fill("email", "dora@example.com", "username", "dora", "display_name", "Dora Marquez",
		"password", pw, "password_confirm", pw)
	if st := c.click("Create account"); st != http.StatusOK {
		t.Errorf("registration answered %d", st)
	}
	if h := c.heading(); h != "Check your email" {
		c.fail("after registering", errors.New("heading "+h))
	}
	c.expect("", "dora@example.com")

	// Before the address is confirmed there is no account to sign in to.
	c.follow("Continue to sign in")
	if st := c.signIn("dora", pw); st != http.StatusUnauthorized {
		t.Errorf("sign-in before confirming answered %d, want 401", st)
	}
	c.expectError("Invalid username or password")
	welcome := smtp.Wait(t, "dora@example.com", "Welcome", mailWait)
	link := welcome.Link(s.issuer + "/verify-email")
	if link == "" {
		t.Fatalf("no verification link in the welcome email:\n%s", welcome.Text)
	}

	t.Run("resend from the verification page", func(t *testing.T) {
		c := c.in(t)
		c.open(s.issuer + "/register")
		c.fill("email", "dora.two@example.com", "username", "dora2", "password", pw, "password_confirm", pw)
		c.click("Create account")
		first := smtp.Wait(t, "dora.two@example.com", "Welcome", mailWait).Link(s.issuer + "/verify-email")
		c.open(s.issuer + "/verify-email")
		c.fill("login", "dora.two@example.com")
		if st := c.click("Send link"); st != http.StatusOK {
			t.Fatalf("resend: %d %s", st, c.text())
		}
		c.expect("", "Check your email", "a new link is on its way")
		resent := smtp.Wait(t, "dora.two@example.com", "Verify your email address", mailWait)
		// Only the newest link works.
		c.open(first)
		c.click("Verify my email")
		c.expect("/verify-email", "This link is invalid or has expired")
		c.open(resent.Link(s.issuer + "/verify-email"))
		c.click("Verify my email")
		c.expect("", "Email verified", "dora.two@example.com")
	})

	c.open(link)
	c.expect("/verify-email", "Verify your email")
	c.click("Verify my email")
	if h := c.heading(); h != "Email verified" {
		c.fail("after verifying", errors.New("heading "+h))
	}
	c.expect("", "dora@example.com")

	// The first link carried the app's pending sign-in: signing in from
	// here continues to the app.
	c.follow("Continue to sign in")
	c.expect("/login", "Example App")
	c.signIn("dora", pw)
	c.expect("/consent", "Allow access?", "Example App", "See your name, username and profile details", "See your email address", "dora")
	if st := c.click("Allow"); st != http.StatusOK {
		t.Errorf("the app's callback answered %d", st)
	}
	c.expect("/callback", "Signed in as dora", "dora@example.com")

	// The app is listed on the account page; disconnecting it means the
	// next sign-in through it asks for consent again.
	c.open(s.issuer + "/account")
	c.expect("/account", "Connected apps", "Example App")
	c.clickIn("/account/apps/revoke")
	c.expect("/account", "The app has been disconnected")
	// With nothing left to act on, the section is left out.
	if strings.Contains(c.text(), "Connected apps") {
		t.Error("the account page shows an empty Connected apps section")
	}
	c.open(rp.URL + "/login")
	c.expect("/consent", "Example App")
	c.click("Deny")
	c.expect("/callback", "Not signed in", "access_denied")
}

// A password reset from one browser signs every browser out; only the new
// password works afterwards.
func TestBrowserForgotPasswordEndsEverySession(t *testing.T) {
	s, smtp := chromeServer(t, nil)
	const oldPW, newPW = "first plum orchard 7", "second fig terrace 8"
	s.createUser("erin", oldPW)
	a := newChromeTab(t)
	a.open(s.issuer + "/login")
	a.signIn("erin", oldPW)
	a.expect("/account", "Your account", "erin")
	b := a.other("browser B")
	b.open(s.issuer + "/login")
	b.signIn("erin", oldPW)
	b.expect("/account")
	a.open(s.issuer + "/account")
	if n := chromeEval[int](a, `document.querySelectorAll("#sessions-h + .list > li").length`); n != 2 {
		a.fail("sessions listed", errors.New("want 2, got "+strconv.Itoa(n)))
	}

	b.open(s.issuer + "/forgot-password")
	b.expect("/forgot-password", "Reset your password")
	b.fill("email", "erin@example.com")
	b.click("Send reset link")
	b.expect("", "Check your email", "erin@example.com")
	reset := smtp.Wait(t, "erin@example.com", "Reset your password", mailWait)
	link := reset.Link(s.issuer + "/reset-password")
	if link == "" {
		t.Fatalf("no reset link in the email:\n%s", reset.Text)
	}
	b.open(link)
	b.expect("/reset-password", "Choose a new password")
	b.fill("password", newPW, "password_confirm", newPW)
	b.click("Set new password")
	if h := b.heading(); h != "Password changed" {
		b.fail("after resetting", errors.New("heading "+h))
	}
	smtp.Wait(t, "erin@example.com", "Your password was changed", mailWait)

	// A's session is gone: reloading the account page asks to sign in.
	a.do(chromedp.Reload())
	a.expect("/login", "Sign in")
	if st := a.signIn("erin", oldPW); st != http.StatusUnauthorized {
		t.Errorf("old password answered %d, want 401", st)
	}
	a.expectError("Invalid username or password.")
	a.signIn("erin", newPW)
	a.expect("/account", "erin")
	// B was signed out by the reset too.
	b.open(s.issuer + "/account")
	b.expect("/login")
}

// Changing the password on the account page signs out the other browser
// and keeps this one; a session can also be ended from the list.
func TestBrowserChangePassword(t *testing.T) {
	s, smtp := chromeServer(t, nil)
	const oldPW, newPW = "copper lantern meadow", "silver compass canyon"
	s.createUser("frank", oldPW)
	a := newChromeTab(t)
	a.open(s.issuer + "/login")
	a.signIn("frank", oldPW)
	a.expect("/account")
	b := a.other("browser B")
	b.open(s.issuer + "/login")
	b.signIn("frank", oldPW)
	b.expect("/account")

	a.open(s.issuer + "/account")
	a.fill("current_password", oldPW, "new_password", newPW, "new_password_confirm", newPW)
	a.click("Change password")
	a.expect("/account", "Password changed. Your other sessions have been signed out.")
	if n := chromeEval[int](a, `document.querySelectorAll("#sessions-h + .list > li").length`); n != 1 {
		a.fail("sessions listed after the change", errors.New("want 1, got "+strconv.Itoa(n)))
	}
	smtp.Wait(t, "frank@example.com", "Your password was changed", mailWait)

	b.open(s.issuer + "/account")
	b.expect("/login")
	if st := b.signIn("frank", oldPW); st != http.StatusUnauthorized {
		t.Errorf("old password answered %d, want 401", st)
	}
	b.expectError("Invalid username or password.")
	b.signIn("frank", newPW)
	b.expect("/account", "frank")

	// A ends B's session from the list.
	a.open(s.issuer + "/account")
	a.clickIn("/account/sessions/revoke")
	a.expect("/account", "That session has been signed out.")
	b.open(s.issuer + "/account")
	b.expect("/login")
}

// Deleting the account needs the password and the confirmation; then the
// account cannot sign in and gets the generic message.
func TestBrowserDeleteAccount(t *testing.T) {
	s, smtp := chromeServer(t, nil)
	const pw = "quiet river stones 19"
	s.createUser("gina", pw)
	c := newChromeTab(t)
	c.open(s.issuer + "/login")
	c.signIn("gina", pw)
	c.expect("/account", "Delete account")

	// Without ticking the box: refused, with the error at the checkbox.
	c.fill("delete_password", pw)
	if st := c.click("Delete my account"); st != http.StatusUnprocessableEntity {
		t.Errorf("delete without confirmation answered %d, want 422", st)
	}
	c.expect("/account/delete", "Is required.")
	if inv := chromeEval[string](c, `document.getElementById("confirm").getAttribute("aria-invalid") || ""`); inv != "true" {
		c.fail("the unticked checkbox", errors.New("aria-invalid="+inv))
	}
	c.expectFocus("confirm")

	c.fill("delete_password", pw)
	c.do(chromedp.Click(chromedp.ID("confirm"), chromedp.NodeVisible))
	c.click("Delete my account")
	if h := c.heading(); h != "Account deleted" {
		c.fail("after deleting", errors.New("heading "+h))
	}
	c.expect("", "Your account has been deleted")
	smtp.Wait(t, "gina@example.com", "Your account was deleted", mailWait)

	c.open(s.issuer + "/account")
	c.expect("/login")
	if st := c.signIn("gina", pw); st != http.StatusUnauthorized {
		t.Errorf("deleted account's sign-in answered %d, want 401", st)
	}
	c.expectError("Invalid username or password.")
}

// After LATCHKEY_LOCKOUT_THRESHOLD wrong passwords even the right one is
// refused for a while, and the owner is told by email.
func TestBrowserLockout(t *testing.T) {
	s, smtp := chromeServer(t, map[string]string{
		"LATCHKEY_LOCKOUT_THRESHOLD":  "3",
		"LATCHKEY_LOCKOUT_BASE":       "1m",
		"LATCHKEY_RATE_LOGIN_ACCOUNT": "off",
		"LATCHKEY_RATE_LOGIN_IP":      "off",
	})
	const pw = "amber thistle lighthouse"
	s.createUser("hank", pw)
	c := newChromeTab(t)
	c.open(s.issuer + "/login")
	for i := range 3 {
		if st := c.signIn("hank", "not the password "+strconv.Itoa(i)); st != http.StatusUnauthorized {
			t.Errorf("wrong password %d answered %d, want 401", i+1, st)
		}
		c.expectError("Invalid username or password.")
	}
	// Locked: even the right password is answered like a wrong one.
	if st := c.signIn("hank", pw); st != http.StatusUnauthorized {
		t.Errorf("locked account answered %d, want 401", st)
	}
	c.expect("/login")
	c.expectError("Invalid username or password.")
	smtp.Wait(t, "hank@example.com", "Sign-in temporarily locked", mailWait)
}

// Sign-in works with the keyboard alone, and the forms are labelled for
// assistive technology.
func TestBrowserKeyboardSignInAndLabels(t *testing.T) {
	s, _ := chromeServer(t, nil)
	const pw = "keyboard only please"
	s.createUser("ivy", pw)
	c := newChromeTab(t)

	for _, p := range []string{"/login", "/register", "/forgot-password", "/verify-email"} {
		c.open(s.issuer + p)
		c.checkA11y(p)
	}
	// With field errors the inputs point at their messages.
	c.open(s.issuer + "/register")
	c.fill("email", "ivy2@example.com", "password", "short", "password_confirm", "different")
	c.click("Create account")
	c.expect("/register", "is required.", "The passwords do not match.")
	c.checkA11y("/register with errors")
	c.expectFocus("username") // the first field with an error
	if n := chromeEval[int](c, `document.querySelectorAll("input[aria-invalid=true]").length`); n != 2 {
		c.fail("inputs marked invalid", errors.New("want 2, got "+strconv.Itoa(n)))
	}

	c.open(s.issuer + "/login")
	focused := func() string {
		return chromeEval[string](c, `(e => e.id || (e.tagName.toLowerCase() + "." + e.className))(document.activeElement || document.body)`)
	}
	// autofocus puts the caret in the first field (Chromium applies it at
	// the first rendering after load, so wait for that); if it did not,
	// Tab gets there, past the skip link.
	ctx, cancel := context.WithTimeout(c.ctx, chromeStepTimeout)
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.activeElement && document.activeElement.id === "login"`,
		chromedp.WithPollingTimeout(3*time.Second)))
	cancel()
	if err != nil && !errors.Is(err, chromedp.ErrPollingTimeout) {
		c.fail("waiting for autofocus", err)
	}
	for i := 0; ; i++ {
		f := focused()
		if f == "login" {
			t.Logf("focus on the username field after %d Tab presses", i)
			break
		}
		if i == 5 {
			c.fail("reaching the username field with Tab", errors.New("focus is on "+f))
		}
		t.Logf("focus on %s", f)
		c.do(chromedp.KeyEvent(kb.Tab))
	}
	c.do(chromedp.KeyEvent("ivy"), chromedp.KeyEvent(kb.Tab))
	if f := focused(); f != "password" {
		c.fail("Tab from the username field", errors.New("focus is on #"+f))
	}
	c.do(chromedp.KeyEvent(pw))
	c.navigateBy("pressing Enter", chromedp.KeyEvent(kb.Enter))
	c.expect("/account", "Your account", "ivy")
}

// Every page at desktop and mobile size, into docs/screenshots with
// LATCHKEY_UPDATE_SCREENSHOTS=1 (see docs/screenshots/README.md).
func TestBrowserScreenshots(t *testing.T) {
	s, smtp := chromeServer(t, nil)
	const pw = "correct horse battery staple"
	s.createUser("alice", pw)
	rp := startChromeRP(t, s)
	c := newChromeTab(t)
	shots := newChromeShots(t)
	page := func(name, caption string) {
		t.Helper()
		c.checkA11y(name)
		shots.take(c, name, caption)
	}

	c.open(rp.URL + "/login")
	c.expect("/login", "Example App")
	page("login", "Sign in, started by an app")
	c.signIn("alice", "wrong password")
	c.expectError("Invalid username or password.")
	page("login-error", "Sign in after a wrong password")
	c.signIn("alice", pw)
	c.expect("/consent")
	page("consent", "Consent")
	c.click("Allow")
	c.expect("/callback", "Signed in as alice")

	c.open(s.issuer + "/account")
	c.expect("/account", "Example App")
	page("account", "Account page")
	c.fill("mfa_password", pw)
	c.click("Set up an authenticator app")
	c.expect("/account/mfa/totp", "Scan this QR code")
	page("enrol-totp", "Set up an authenticator app (QR code and key)")
	secret := strings.ReplaceAll(chromeEval[string](c, `document.querySelector("code.secret").innerText`), " ", "")
	c.fill("code", totpCode(t, secret, time.Now()))
	c.click("Verify")
	c.expect("", "Your recovery codes")
	page("recovery-codes", "Recovery codes, shown once")
	c.follow("Continue")
	c.expect("/account", "Two-step verification is on.")
	page("account-mfa", "Account page with two-step verification on")
	c.open(s.issuer + "/logout")
	c.click("Sign out")
	c.open(s.issuer + "/account")
	c.signIn("alice", pw)
	c.expect("/login/second-factor")
	page("second-factor", "Second factor at sign-in")
	c.fill("code", totpCode(t, secret, time.Now().Add(30*time.Second)))
	c.click("Verify")
	c.expect("/account")
	c.open(s.issuer + "/logout")
	c.expect("/logout", "Do you want to sign out?")
	page("logout", "Sign out confirmation")
	c.click("Sign out")
	c.expect("/logout", "You have been signed out")
	page("signed-out", "Signed out")
	c.open(s.issuer + "/error")
	page("error", "Error page")

	c.open(s.issuer + "/register")
	c.fill("email", "zoe@example.com", "display_name", "Zoe", "password", "short", "password_confirm", "shorter")
	c.click("Create account")
	c.expect("/register", "is required.")
	page("register-errors", "Registration with field errors")
	c.fill("username", "zoe", "password", pw, "password_confirm", pw)
	c.click("Create account")
	c.expect("", "Check your email")
	page("check-email", "Check your email")
	verify := smtp.Wait(t, "zoe@example.com", "Welcome", mailWait).Link(s.issuer + "/verify-email")
	c.open(verify)
	c.expect("/verify-email", "Verify my email")
	page("verify-email", "Verify email (from the emailed link)")
	c.click("Verify my email")
	c.expect("", "Email verified")
	page("email-verified", "Email verified")

	c.open(s.issuer + "/forgot-password")
	page("forgot-password", "Forgot password")
	c.fill("email", "zoe@example.com")
	c.click("Send reset link")
	reset := smtp.Wait(t, "zoe@example.com", "Reset your password", mailWait).Link(s.issuer + "/reset-password")
	c.open(reset)
	c.expect("/reset-password", "Choose a new password")
	page("reset-password", "Choose a new password (from the emailed link)")

	shots.writeIndex()
	if !shots.committed {
		t.Logf("screenshots in %s (set LATCHKEY_UPDATE_SCREENSHOTS=1 to write docs/screenshots)", shots.dir)
	}
}
