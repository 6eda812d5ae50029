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
}

const maxRedirects = 10

// signIn is one whole sign-in, from the authorization request to the
// tokens, in a fresh cookie jar (a new browser).
func (a *authCode) signIn(ctx context.Context) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
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
		"scope":                 {"openid"},
		"state":                 {state},
		"nonce":                 {randomString(12)},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.ep.Authorization+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	// To the login page.
	cb, page, body, err := a.follow(browser, req)
	if err != nil {
		return err
	}
	if cb != nil {
		return fmt.Errorf("authorize: sent back to the client without signing in: %s", redact(cb))
	}
	if page.StatusCode != http.StatusOK || page.Request.URL.Path != "/login" {
		return fmt.Errorf("authorize: expected the login page, got HTTP %d at %s: %s",
			page.StatusCode, page.Request.URL.Path, snippet(body))
	}
	fields := a.hiddenInputs(body)
	if fields["csrf_token"] == "" || fields["challenge"] == "" {
		return errors.New("login page without csrf_token or challenge")
	}
	form := url.Values{
		"csrf_token": {fields["csrf_token"]},
		"challenge":  {fields["challenge"]},
		"login":      {a.usernames[int(a.next.Add(1)-1)%len(a.usernames)]},
		"password":   {a.password},
	}
	loginURL := page.Request.URL.ResolveReference(&url.URL{Path: "/login"})
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, loginURL.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.origin)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	// Through /oauth2/authorize/resume back to the client.
	cb, page, body, err = a.follow(browser, req)
	if err != nil {
		return err
	}
	if cb == nil {
		what := "expected a redirect to the client"
		switch page.StatusCode {
		case http.StatusUnauthorized:
			what = "sign-in refused (wrong username or password?)"
		case http.StatusTooManyRequests:
			what = "sign-in rate-limited (LATCHKEY_RATE_LOGIN_IP / LATCHKEY_RATE_LOGIN_ACCOUNT) or account locked"
		}
		return fmt.Errorf("login: %s, got HTTP %d at %s: %s", what, page.StatusCode, page.Request.URL.Path, snippet(body))
	}
	cq := cb.Query()
	if e := cq.Get("error"); e != "" {
		return fmt.Errorf("authorization error %s: %s", e, cq.Get("error_description"))
	}
	if cq.Get("state") != state {
		return fmt.Errorf("callback state %q, want %q", cq.Get("state"), state)
	}
	code := cq.Get("code")
	if code == "" {
		return fmt.Errorf("callback without code: %s", redact(cb))
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
		return fmt.Errorf("code exchange: %w", err)
	}
	if tr.IDToken == "" {
		return errors.New("code exchange: no id_token for scope openid")
	}
	return nil
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
