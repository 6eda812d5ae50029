package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
)

// endpoints are the URLs a scenario talks to, from the discovery document.
type endpoints struct {
	Issuer        string `json:"issuer"`
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
	Introspection string `json:"introspection_endpoint"`
	JWKS          string `json:"jwks_uri"`
}

// newScenario checks the server is the one configured (discovery) and
// returns the operation of cfg.scenario, with whatever it needs prepared.
func newScenario(ctx context.Context, cfg *config, hc *http.Client) (operation, error) {
	discoveryURL := cfg.issuer + "/.well-known/openid-configuration"
	var ep endpoints
	if err := getJSON(ctx, hc, discoveryURL, &ep); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if ep.Issuer != cfg.issuer {
		return nil, fmt.Errorf("discovery: issuer is %q, not %q", ep.Issuer, cfg.issuer)
	}
	if ep.Token == "" || ep.JWKS == "" || ep.Authorization == "" {
		return nil, fmt.Errorf("discovery: missing endpoints in %+v", ep)
	}

	switch cfg.scenario {
	case "discovery":
		return getOp(hc, discoveryURL), nil
	case "jwks":
		return getOp(hc, ep.JWKS), nil
	case "cc-opaque":
		return ccOp(hc, ep.Token, cfg.clientID, cfg.clientSecret, cfg.scope, false), nil
	case "cc-jwt":
		return ccOp(hc, ep.Token, cfg.clientID, cfg.clientSecret, cfg.scope, true), nil
	case "introspect":
		if ep.Introspection == "" {
			return nil, errors.New("discovery: no introspection_endpoint")
		}
		token, err := clientCredentials(ctx, hc, ep.Token, cfg.clientID, cfg.clientSecret, cfg.scope)
		if err != nil {
			return nil, fmt.Errorf("issuing the token to introspect: %w", err)
		}
		return introspectOp(hc, ep.Introspection, cfg.clientID, cfg.clientSecret, token), nil
	case "admin-search":
		token, err := clientCredentials(ctx, hc, ep.Token, cfg.clientID, cfg.clientSecret, cfg.scope)
		if err != nil {
			return nil, fmt.Errorf("issuing the admin token: %w", err)
		}
		return adminSearchOp(hc, strings.TrimRight(cfg.adminURL, "/"), token, strings.Split(cfg.adminQueries, "|")), nil
	case "authcode", "authcode-totp":
		a := &authCode{
			transport:   hc.Transport,
			timeout:     hc.Timeout,
			ep:          ep,
			clientID:    cfg.publicClientID,
			redirectURI: cfg.redirectURI,
			usernames:   strings.Split(cfg.username, ","),
			password:    cfg.password,
			origin:      origin(cfg.issuer),
			reInput:     regexp.MustCompile(`(?is)<input\b[^>]*>`),
			reAttr:      regexp.MustCompile(`(?is)\b(name|value)\s*=\s*"([^"]*)"`),
		}
		if cfg.scenario == "authcode" {
			return a.signIn, nil
		}
		acc, err := setupTOTP(ctx, cfg, hc, ep, a)
		if err != nil {
			return nil, err
		}
		a.pick, a.secondFactor = acc.pick, acc.codeFor
		return a.signIn, nil
	}
	return nil, fmt.Errorf("unknown scenario %q", cfg.scenario)
}

// httpError is a non-2xx answer: the status and the start of the body.
func httpError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	return fmt.Errorf("%s %s: HTTP %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode,
		strings.Join(strings.Fields(string(b)), " "))
}

// drain reads the rest of a body so the connection goes back to the pool.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<20))
	_ = resp.Body.Close()
}

func getJSON(ctx context.Context, hc *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return httpError(resp)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// getOp fetches u and reads the whole body.
func getOp(hc *http.Client, u string) operation {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer drain(resp)
		if resp.StatusCode != http.StatusOK {
			return httpError(resp)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("GET %s: empty body", req.URL.Path)
		}
		return nil
	}
}

// basicAuth is client_secret_basic: RFC 6749 §2.3.1 form-encodes both
// parts before base64.
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func postForm(ctx context.Context, hc *http.Client, u, auth string, form url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return hc.Do(req)
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	TokenType   string `json:"token_type"`
}

// token posts form to the token endpoint and decodes a successful answer.
func token(ctx context.Context, hc *http.Client, u, auth string, form url.Values) (*tokenResponse, error) {
	resp, err := postForm(ctx, hc, u, auth, form)
	if err != nil {
		return nil, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, httpError(resp)
	}
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		return nil, fmt.Errorf("token response: %w", err)
	}
	if tr.AccessToken == "" {
		return nil, errors.New("token response without access_token")
	}
	return &tr, nil
}

func clientCredentials(ctx context.Context, hc *http.Client, tokenURL, id, secret, scope string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	tr, err := token(ctx, hc, tokenURL, basicAuth(id, secret), form)
	if err != nil {
		return "", err
	}
	return tr.AccessToken, nil
}

// ccOp is one client_credentials grant. With wantJWT the access token
// must be a JWT (so a wrongly configured client fails loudly).
func ccOp(hc *http.Client, tokenURL, id, secret, scope string, wantJWT bool) operation {
	return func(ctx context.Context) error {
		at, err := clientCredentials(ctx, hc, tokenURL, id, secret, scope)
		if err != nil {
			return err
		}
		if isJWT := strings.Count(at, ".") == 2; isJWT != wantJWT {
			return fmt.Errorf("access token format: JWT=%v, want JWT=%v", isJWT, wantJWT)
		}
		return nil
	}
}

// introspectOp introspects token as the client and requires it active.
func introspectOp(hc *http.Client, introspectURL, id, secret, token string) operation {
	auth := basicAuth(id, secret)
	form := url.Values{"token": {token}}
	return func(ctx context.Context) error {
		resp, err := postForm(ctx, hc, introspectURL, auth, form)
		if err != nil {
			return err
		}
		defer drain(resp)
		if resp.StatusCode != http.StatusOK {
			return httpError(resp)
		}
		var ir struct {
			Active bool `json:"active"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&ir); err != nil {
			return fmt.Errorf("introspection response: %w", err)
		}
		if !ir.Active {
			return errors.New(`introspection: "active" is not true`)
		}
		return nil
	}
}

func origin(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return issuer
	}
	return u.Scheme + "://" + u.Host
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// adminSearchOp lists users through the admin API, cycling through the
// given query strings so that not every request hits the same cache.
func adminSearchOp(hc *http.Client, admin, token string, queries []string) operation {
	var next atomic.Uint64
	return func(ctx context.Context) error {
		q := queries[int(next.Add(1)-1)%len(queries)]
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin+"/v1/users?"+q, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer drain(resp)
		if resp.StatusCode != http.StatusOK {
			return httpError(resp)
		}
		var body struct {
			Users []json.RawMessage `json:"users"`
		}
		return json.NewDecoder(resp.Body).Decode(&body)
	}
}
