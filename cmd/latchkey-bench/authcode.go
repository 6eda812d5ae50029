package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
)

// authCode is the authorization-code flow of a first-party public client
// with PKCE, as a new browser does it: authorize, the login page, the
// login form, the redirects back, then the code exchange.
type authCode struct {
	transport   http.RoundTripper
	timeout     time.Duration
	ep          endpoints
	clientID    string
	redirectURI string
	usernames   []string // used in turn, so sign-ins are spread over accounts
	next        atomic.Uint64
	password    string
	origin      string
	reInput     *regexp.Regexp
	reAttr      *regexp.Regexp
	// scope is requested ("openid" when empty).
	scope string
	// pick chooses the account of the next sign-in (round robin over
	// usernames when nil); secondFactor gives its code when the pipeline
	// asks for one (the authcode-totp scenario).
	pick         func(ctx context.Context) (string, error)
	secondFactor func(user string) (string, error)
}

const maxRedirects = 10

// signIn is one whole sign-in, from the authorization request to the
// tokens, in a fresh cookie jar (a new browser).
func (a *authCode) signIn(ctx context.Context) error {
	user := ""
	if a.pick != nil {
		var err error
		if user, err = a.pick(ctx); err != nil {
			return err
		}
	} else {
		user = a.usernames[int(a.next.Add(1)-1)%len(a.usernames)]
	}
	_, err := a.signInAs(ctx, user)
	return err
}

// signInAs signs user in and returns the tokens.
func (a *authCode) signInAs(ctx context.Context, user string) (*tokenResponse, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	scope := a.scope
	if scope == "" {
		scope = "openid"
	}
	browser := &http.Client{
		Transport:     a.transport,
		Timeout:       a.timeout,
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	verifier := randomString(32)
	sum := sha256.Sum256([]byte(verifier))
	state := randomString(12)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {a.clientID},
		"redirect_uri":          {a.redirectURI},
		"scope":                 {scope},
		"state":                 {state},
		"nonce":                 {randomString(12)},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.ep.Authorization+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	// To the login page.
	cb, page, body, err := a.follow(browser, req)
	if err != nil {
		return nil, err
	}
	if cb != nil {
		return nil, fmt.Errorf("authorize: sent back to the client without signing in: %s", redact(cb))
	}
	if page.StatusCode != http.StatusOK || page.Request.URL.Path != "/login" {
		return nil, fmt.Errorf("authorize: expected the login page, got HTTP %d at %s: %s",
			page.StatusCode, page.Request.URL.Path, snippet(body))
	}
	fields := a.hiddenInputs(body)
	if fields["csrf_token"] == "" || fields["challenge"] == "" {
		return nil, errors.New("login page without csrf_token or challenge")
	}
	form := url.Values{
		"csrf_token": {fields["csrf_token"]},
		"challenge":  {fields["challenge"]},
		"login":      {user},
		"password":   {a.password},
	}
	loginURL := page.Request.URL.ResolveReference(&url.URL{Path: "/login"})
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, loginURL.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.origin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	// Through /oauth2/authorize/resume back to the client.
	cb, page, body, err = a.follow(browser, req)
	if err != nil {
		return nil, err
	}
	if cb == nil && a.secondFactor != nil && page.Request.URL.Path == "/login/second-factor" {
		if cb, page, body, err = a.submitCode(ctx, browser, page, body, user); err != nil {
			return nil, err
		}
	}
	if cb == nil {
		what := "expected a redirect to the client"
		switch page.StatusCode {
		case http.StatusUnauthorized:
			what = "sign-in refused (wrong username or password?)"
		case http.StatusTooManyRequests:
			what = "sign-in rate-limited (LATCHKEY_RATE_LOGIN_IP / LATCHKEY_RATE_LOGIN_ACCOUNT) or account locked"
		}
		return nil, fmt.Errorf("login: %s, got HTTP %d at %s: %s", what, page.StatusCode, page.Request.URL.Path, snippet(body))
	}
	cq := cb.Query()
	if e := cq.Get("error"); e != "" {
		return nil, fmt.Errorf("authorization error %s: %s", e, cq.Get("error_description"))
	}
	if cq.Get("state") != state {
		return nil, fmt.Errorf("callback state %q, want %q", cq.Get("state"), state)
	}
	code := cq.Get("code")
	if code == "" {
		return nil, fmt.Errorf("callback without code: %s", redact(cb))
	}
	// The client exchanges the code (public client: no secret, PKCE).
	tr, err := token(ctx, browser, a.ep.Token, "", url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {a.redirectURI},
		"client_id":     {a.clientID},
		"code_verifier": {verifier},
	})
	if err != nil {
		return nil, fmt.Errorf("code exchange: %w", err)
	}
	if tr.IDToken == "" {
		return nil, errors.New("code exchange: no id_token for scope openid")
	}
	return tr, nil
}

// submitCode answers the second-factor page with user's code and follows
// the redirects back.
func (a *authCode) submitCode(ctx context.Context, browser *http.Client, page *http.Response, body, user string) (*url.URL, *http.Response, string, error) {
	fields := a.hiddenInputs(body)
	code, err := a.secondFactor(user)
	if err != nil {
		return nil, nil, "", err
	}
	form := url.Values{"csrf_token": {fields["csrf_token"]}, "challenge": {fields["challenge"]}, "code": {code}}
	u := page.Request.URL.ResolveReference(&url.URL{Path: "/login/second-factor"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.origin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	cb, p, b, err := a.follow(browser, req)
	if err == nil && cb == nil {
		err = fmt.Errorf("second factor: HTTP %d at %s: %s", p.StatusCode, p.Request.URL.Path, snippet(b))
	}
	return cb, p, b, err
}

// follow sends req and follows redirects by hand (the jar keeping the
// cookies) until either a redirect to the client's redirect URI, which it
// returns without following, or a non-redirect page, which it returns
// with its body read (and closed).
func (a *authCode) follow(c *http.Client, req *http.Request) (*url.URL, *http.Response, string, error) {
	for range maxRedirects {
		resp, err := c.Do(req)
		if err != nil {
			return nil, nil, "", err
		}
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			drain(resp)
			if err != nil {
				return nil, nil, "", fmt.Errorf("reading %s: %w", resp.Request.URL.Path, err)
			}
			return nil, resp, string(b), nil
		}
		drain(resp)
		loc, err := resp.Location()
		if err != nil {
			return nil, nil, "", fmt.Errorf("HTTP %d from %s: %w", resp.StatusCode, resp.Request.URL.Path, err)
		}
		if strings.HasPrefix(loc.String(), a.redirectURI) {
			return loc, nil, "", nil
		}
		req, err = http.NewRequestWithContext(req.Context(), http.MethodGet, loc.String(), nil)
		if err != nil {
			return nil, nil, "", err
		}
	}
	return nil, nil, "", fmt.Errorf("more than %d redirects", maxRedirects)
}

// hiddenInputs returns the name → value of the page's input elements.
func (a *authCode) hiddenInputs(page string) map[string]string {
	out := map[string]string{}
	for _, tag := range a.reInput.FindAllString(page, -1) {
		var name, value string
		for _, m := range a.reAttr.FindAllStringSubmatch(tag, -1) {
			switch strings.ToLower(m[1]) {
			case "name":
				name = html.UnescapeString(m[2])
			case "value":
				value = html.UnescapeString(m[2])
			}
		}
		if name != "" {
			out[name] = value
		}
	}
	return out
}

// redact is a callback URL without its query (which may hold a code).
func redact(u *url.URL) string {
	v := *u
	v.RawQuery = ""
	return v.String() + "?…"
}

func snippet(body string) string {
	s := strings.Join(strings.Fields(body), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
