package main

// Helpers of the real-browser tests (browser_test.go): a headless Chromium
// driven with chromedp, and a small relying party that signs people in
// through Latchkey the way any web app would.

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/mail/mailtest"
	"github.com/latchkey/latchkey/internal/testdb"
)

// chromeStepTimeout bounds one group of browser actions.
const chromeStepTimeout = 30 * time.Second

// chromiumPath finds the browser: $LATCHKEY_TEST_CHROMIUM, then Debian's
// /usr/bin/chromium, then the names chromedp looks for. Without one the
// test is skipped (.ci/run installs Chromium, so CI never skips).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LATCHKEY_TEST_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("LATCHKEY_TEST_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
		"headless-shell", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found: apt-get install chromium, or set LATCHKEY_TEST_CHROMIUM to a Chrome binary")
	return ""
}

// chromeTab is one tab of a headless Chromium with a profile of its own.
type chromeTab struct {
	t    *testing.T
	ctx  context.Context
	name string
}

// newChromeTab starts a headless Chromium with a fresh profile for this
// test; it is stopped when the test ends.
func newChromeTab(t *testing.T) *chromeTab {
	t.Helper()
	return startChrome(t, "browser A")
}

// other starts a second Chromium with a profile of its own: another
// browser, as far as the server can tell. (A new browser context of the
// same Chromium would be cheaper, but chromedp v0.23.0 does not track the
// document of such a tab, and element queries in it wait forever.)
func (c *chromeTab) other(name string) *chromeTab {
	c.t.Helper()
	return startChrome(c.t, name)
}

func startChrome(t *testing.T, name string) *chromeTab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(desktopWidth, desktopHeight),
		chromedp.Flag("lang", "en-US"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var ctxOpts []chromedp.ContextOption
	if os.Getenv("LATCHKEY_TEST_CDP_DEBUG") != "" {
		ctxOpts = append(ctxOpts, chromedp.WithDebugf(t.Logf))
	}
	ctx, cancel := chromedp.NewContext(allocCtx, ctxOpts...)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Do starts the browser and ties it to ctx, so it gets no
	// timeout of its own; a browser that does not start fails the test.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting Chromium (%s): %v", name, err)
		}
	case <-time.After(chromeStepTimeout):
		t.Fatalf("Chromium (%s) did not start", name)
	}
	return &chromeTab{t: t, ctx: ctx, name: name}
}

// fail reports err with where the tab is and what it shows.
func (c *chromeTab) fail(what string, err error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	c.t.Fatalf("%s: %s: %v\nat %s, the page says:\n%s", c.name, what, err, loc, text)
}

// do runs actions with a timeout.
func (c *chromeTab) do(actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, chromeStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		c.fail("browser actions", err)
	}
}

// chromeEval returns the value of a JavaScript expression in the page.
func chromeEval[T any](c *chromeTab, expr string) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, chromeStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		c.fail("evaluating "+expr, err)
	}
	return v
}

// open navigates to u and waits for the page (after redirects) to load.
func (c *chromeTab) open(u string) {
	c.t.Helper()
	c.do(chromedp.Navigate(u))
}

// navigateBy runs actions that make the page navigate (a click, Enter)
// and waits until the next page has loaded, following redirects. It
// returns the HTTP status of the final document.
func (c *chromeTab) navigateBy(what string, actions ...chromedp.Action[chromedp.Void]) int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, chromeStepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		c.fail(what, err)
	}
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// xpathText is a selector for an element of the given tag whose visible
// text is exactly text, as a person would find it.
func xpathText(tag, text string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//%s[normalize-space()=%s]`, tag, xpathString(text)))
}

func xpathString(s string) string {
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "concat('" + strings.ReplaceAll(s, "'", `', "'", '`) + "')"
}

// click clicks the button with this text and waits for the next page.
func (c *chromeTab) click(button string) int {
	c.t.Helper()
	return c.navigateBy("clicking "+strconv.Quote(button), chromedp.Click(xpathText("button", button), chromedp.NodeVisible))
}

// follow clicks the link with this text and waits for the next page.
func (c *chromeTab) follow(link string) int {
	c.t.Helper()
	return c.navigateBy("following "+strconv.Quote(link), chromedp.Click(xpathText("a", link), chromedp.NodeVisible))
}

// clickIn clicks the submit button of the form posting to action.
func (c *chromeTab) clickIn(action string) int {
	c.t.Helper()
	sel := chromedp.CSS(fmt.Sprintf(`form[action=%q] button[type=submit]`, action))
	return c.navigateBy("submitting "+action, chromedp.Click(sel, chromedp.NodeVisible))
}

// fill types into the inputs named by id, in order (pairs of id, value),
// replacing what they held.
func (c *chromeTab) fill(idValues ...string) {
	c.t.Helper()
	var actions []chromedp.Action[chromedp.Void]
	for i := 0; i+1 < len(idValues); i += 2 {
		sel := chromedp.ID(idValues[i])
		// chromedp's SetValue(sel, "") cannot empty a field (v0.23.0
		// sends the empty string as undefined), so clear it in the page.
		clear := chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).value = ""`, idValues[i]))
		actions = append(actions, chromedp.WaitVisible(sel), clear, chromedp.SendKeys(sel, idValues[i+1]))
	}
	c.do(actions...)
}

// path is the path of the page shown.
func (c *chromeTab) path() string {
	c.t.Helper()
	return chromeEval[string](c, `location.pathname`)
}

// text is the page's visible text.
func (c *chromeTab) text() string {
	c.t.Helper()
	return chromeEval[string](c, `document.body.innerText`)
}

// heading is the page's h1.
func (c *chromeTab) heading() string {
	c.t.Helper()
	return chromeEval[string](c, `(document.querySelector("h1") || {innerText: ""}).innerText`)
}

// expect fails unless the page is at path and shows every string in want.
func (c *chromeTab) expect(path string, want ...string) {
	c.t.Helper()
	if got := c.path(); path != "" && got != path {
		c.fail("expected path "+path, fmt.Errorf("at %s", got))
	}
	text := c.text()
	for _, w := range want {
		if !strings.Contains(text, w) {
			c.fail("expected the page to say "+strconv.Quote(w), errors.New("it does not"))
		}
	}
}

// expectError fails unless the page's alert region shows msg.
func (c *chromeTab) expectError(msg string) {
	c.t.Helper()
	got := chromeEval[string](c, `(() => { const e = document.querySelector('[role=alert]'); return e && !e.hidden ? e.innerText : ""; })()`)
	if !strings.Contains(got, msg) {
		c.fail("expected the error "+strconv.Quote(msg), fmt.Errorf("the alert says %q", got))
	}
}

// signIn fills and submits the sign-in form shown now.
func (c *chromeTab) signIn(login, password string) int {
	c.t.Helper()
	c.fill("login", login, "password", password)
	return c.click("Sign in")
}

// chromeServer is a Latchkey whose emails go to a capturing SMTP server.
func chromeServer(t *testing.T, env map[string]string) (*testServer, *mailtest.Server) {
	t.Helper()
	smtp := mailtest.NewServer(t)
	all := map[string]string{"LATCHKEY_SMTP_URL": smtp.URL()}
	for k, v := range env {
		all[k] = v
	}
	return startServer(t, testdb.SQLite(t), all), smtp
}

// chromeRP is a relying party: /login starts an authorization request
// (PKCE S256, state, nonce), /callback redeems the code, verifies the ID
// token and greets the person by username.
type chromeRP struct {
	URL    string
	client createdClient
	conf   *oauth2.Config
	verify *oidc.IDTokenVerifier

	mu      sync.Mutex
	pending map[string][2]string // state → PKCE verifier, nonce
}

func startChromeRP(t *testing.T, s *testServer) *chromeRP {
	t.Helper()
	rp := &chromeRP{pending: map[string][2]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", rp.login)
	mux.HandleFunc("GET /callback", rp.callback)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	rp.URL = srv.URL
	rp.client = s.createClient("--name", "Example App", "--redirect-uri", rp.URL+"/callback")

	op, err := oidc.NewProvider(context.Background(), s.issuer)
	if err != nil {
		t.Fatal(err)
	}
	rp.conf = &oauth2.Config{ClientID: rp.client.ID, ClientSecret: rp.client.Secret, Endpoint: op.Endpoint(),
		RedirectURL: rp.URL + "/callback", Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	rp.verify = op.Verifier(&oidc.Config{ClientID: rp.client.ID})
	return rp
}

func (rp *chromeRP) login(w http.ResponseWriter, r *http.Request) {
	state, nonce, pkce := randString(), randString(), oauth2.GenerateVerifier()
	rp.mu.Lock()
	rp.pending[state] = [2]string{pkce, nonce}
	rp.mu.Unlock()
	http.Redirect(w, r, rp.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(pkce), oidc.Nonce(nonce)), http.StatusFound)
}

func (rp *chromeRP) callback(w http.ResponseWriter, r *http.Request) {
	page := func(status int, h1, detail string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!doctype html><html lang=en><title>Example App</title><main><h1>%s</h1><p id=detail>%s</p></main>",
			html.EscapeString(h1), html.EscapeString(detail))
	}
	q := r.URL.Query()
	rp.mu.Lock()
	p, ok := rp.pending[q.Get("state")]
	delete(rp.pending, q.Get("state"))
	rp.mu.Unlock()
	if !ok {
		page(http.StatusBadRequest, "Unknown state", q.Get("state"))
		return
	}
	if e := q.Get("error"); e != "" {
		page(http.StatusForbidden, "Not signed in", e)
		return
	}
	tok, err := rp.conf.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(p[0]))
	if err != nil {
		page(http.StatusBadGateway, "Code exchange failed", err.Error())
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verify.Verify(r.Context(), raw)
	if err != nil {
		page(http.StatusBadGateway, "Invalid ID token", err.Error())
		return
	}
	var claims struct {
		Nonce    string `json:"nonce"`
		Username string `json:"preferred_username"`
		Email    string `json:"email"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Nonce != p[1] {
		page(http.StatusBadGateway, "Invalid ID token", fmt.Sprintf("nonce %q: %v", claims.Nonce, err))
		return
	}
	page(http.StatusOK, "Signed in as "+claims.Username, claims.Email)
}

// screenshotDir is where screenshots go: docs/screenshots when
// LATCHKEY_UPDATE_SCREENSHOTS=1 (to refresh the committed set), otherwise
// a temporary directory so that test runs leave the tree alone.
func screenshotDir(t *testing.T) (dir string, committed bool) {
	t.Helper()
	if os.Getenv("LATCHKEY_UPDATE_SCREENSHOTS") == "1" {
		dir, err := filepath.Abs(filepath.Join("..", "..", "docs", "screenshots"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir, true
	}
	return t.TempDir(), false
}

// chromeA11yProblems lists what a screen-reader or keyboard user would
// miss on the page shown: visible form controls without an id or without a
// <label for=…> that names them, duplicate ids, aria-describedby pointing
// at nothing, an error region that is not a live region, no lang.
const chromeA11yProblems = `(() => {
	const problems = [];
	if (!document.documentElement.lang) problems.push("html has no lang");
	for (const el of document.querySelectorAll("input, select, textarea")) {
		if (el.type === "hidden" || el.getClientRects().length === 0) continue;
		const what = el.id || el.name || el.type;
		if (!el.id) { problems.push(what + ": no id"); continue; }
		if (document.querySelectorAll("#" + CSS.escape(el.id)).length !== 1) problems.push(what + ": duplicate id");
		const labels = [...document.querySelectorAll("label[for='" + CSS.escape(el.id) + "']")];
		if (labels.length !== 1 || !labels[0].innerText.trim()) problems.push(what + ": " + labels.length + " labels with for=" + el.id);
		for (const ref of (el.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean)) {
			if (!document.getElementById(ref)) problems.push(what + ": aria-describedby names missing #" + ref);
		}
	}
	const alert = document.querySelector("[role=alert]");
	if (!alert) problems.push("no error region (role=alert)");
	else if (!alert.getAttribute("aria-live")) problems.push("the error region has no aria-live");
	return problems;
})()`

// checkA11y fails the test with the problems chromeA11yProblems finds.
func (c *chromeTab) checkA11y(page string) {
	c.t.Helper()
	if p := chromeEval[[]string](c, chromeA11yProblems); len(p) > 0 {
		c.t.Errorf("%s (%s): accessibility problems:\n  %s", page, c.path(), strings.Join(p, "\n  "))
	}
}

// Viewports of the screenshots.
const (
	desktopWidth, desktopHeight = 1280, 900
	mobileWidth, mobileHeight   = 375, 812
	narrowWidth                 = 320 // the narrowest phone still in use
)

// chromeShots takes the screenshots of the pages.
type chromeShots struct {
	t         *testing.T
	dir       string
	committed bool
	pages     []shotPage
}

type shotPage struct{ name, caption string }

func newChromeShots(t *testing.T) *chromeShots {
	dir, committed := screenshotDir(t)
	return &chromeShots{t: t, dir: dir, committed: committed}
}

// take saves the page shown in c as NAME-desktop.png (1280×900) and
// NAME-mobile.png (375×812, full page), and checks that at 320 px wide
// the page does not scroll sideways.
func (s *chromeShots) take(c *chromeTab, name, caption string) {
	s.t.Helper()
	for _, v := range []struct {
		suffix        string
		width, height int64
		mobile        bool
	}{{"desktop", desktopWidth, desktopHeight, false}, {"mobile", mobileWidth, mobileHeight, true}} {
		var opts []chromedp.EmulateViewportOption
		if v.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
		}
		c.do(chromedp.EmulateViewport(v.width, v.height, opts...))
		ctx, cancel := context.WithTimeout(c.ctx, chromeStepTimeout)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			c.fail("screenshot of "+name, err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, name+"-"+v.suffix+".png"), png, 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	c.do(chromedp.EmulateViewport(narrowWidth, 640, chromedp.EmulateMobile, chromedp.EmulateTouch))
	if w := chromeEval[int](c, `document.documentElement.scrollWidth`); w > narrowWidth {
		offenders := chromeEval[[]string](c, `[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > `+
			strconv.Itoa(narrowWidth)+` + 0.5).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : "")).slice(0, 10)`)
		s.t.Errorf("%s: at %d px wide the page scrolls sideways (scrollWidth %d); wider than the viewport: %v",
			name, narrowWidth, w, offenders)
	}
	c.do(chromedp.EmulateViewport(desktopWidth, desktopHeight))
	s.pages = append(s.pages, shotPage{name, caption})
}

// writeIndex writes README.md listing the screenshots (committed set only).
func (s *chromeShots) writeIndex() {
	s.t.Helper()
	if !s.committed {
		return
	}
	var b strings.Builder
	b.WriteString("# Screenshots\n\n")
	b.WriteString("The hosted pages at 1280×900 (desktop) and 375×812 (mobile), full page. Generated by\n")
	b.WriteString("`TestBrowserScreenshots` (`cmd/latchkey/browser_test.go`) in headless Chromium; refresh them with\n\n")
	b.WriteString("```sh\nLATCHKEY_UPDATE_SCREENSHOTS=1 go test -count=1 -run TestBrowserScreenshots ./cmd/latchkey/\n```\n\n")
	b.WriteString("| Page | Desktop | Mobile |\n|---|---|---|\n")
	for _, p := range s.pages {
		fmt.Fprintf(&b, "| %s | ![%s, desktop](%s-desktop.png) | ![%s, mobile](%s-mobile.png) |\n",
			p.caption, p.caption, p.name, p.caption, p.name)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "README.md"), []byte(b.String()), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// expectFocus waits until the element with this id has the focus
// (autofocus is applied at the first rendering after load) and fails the
// test if it does not get it.
func (c *chromeTab) expectFocus(id string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, chromeStepTimeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`document.activeElement && document.activeElement.id === %q`, id),
		chromedp.WithPollingTimeout(5*time.Second)))
	if err != nil {
		got := chromeEval[string](c, `(e => e.id || e.tagName.toLowerCase())(document.activeElement || document.body)`)
		c.fail("expected the focus on #"+id, fmt.Errorf("it is on %s (%v)", got, err))
	}
}

// in returns the tab for use in the subtest t.
func (c *chromeTab) in(t *testing.T) *chromeTab {
	cc := *c
	cc.t = t
	return &cc
}
