package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// demoState is what `serve --demo` keeps in the data directory so that the
// same demo user and client are printed on every start: the client secret
// and password exist nowhere else in clear.
type demoState struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Username     string `json:"username"`
	Password     string `json:"password"`
	CodeVerifier string `json:"code_verifier"`
}

const demoCallbackPath = "/demo/callback"

// setupDemo creates (once) a demo user and a confidential demo client whose
// redirect URI is this server's own /demo/callback page, which redeems the
// code and shows the ID token claims. It prints how to sign in.
func setupDemo(ctx context.Context, a *app, stdout io.Writer) error {
	path := filepath.Join(a.cfg.DataDir, "demo.json")
	st, err := loadDemo(ctx, a, path)
	if err != nil {
		return err
	}
	if st == nil {
		if st, err = createDemo(ctx, a); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		b, _ := json.MarshalIndent(st, "", "  ")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}

	oauthCfg := &oauth2.Config{
		ClientID: st.ClientID, ClientSecret: st.ClientSecret,
		Endpoint:    oauth2.Endpoint{AuthURL: a.cfg.Issuer + "/oauth2/authorize", TokenURL: a.cfg.Issuer + "/oauth2/token"},
		RedirectURL: a.cfg.Issuer + demoCallbackPath,
		Scopes:      []string{oidc.ScopeOpenID, "profile", "email"},
	}
	authURL := oauthCfg.AuthCodeURL("latchkey-demo", oauth2.S256ChallengeOption(st.CodeVerifier),
		oauth2.SetAuthURLParam("nonce", "demo-nonce"))

	// The demo page is mounted beside the public handler.
	mux := http.NewServeMux()
	mux.Handle(demoCallbackPath, handleDemoCallback(a, oauthCfg, st.CodeVerifier))
	mux.Handle("/", a.public)
	a.public = mux

	if a.cfg.LogFormat == "json" {
		// One JSON line, like the log around it. The demo's credentials
		// are printed on purpose: they exist to be typed into a browser.
		return json.NewEncoder(stdout).Encode(map[string]any{"time": time.Now().UTC(), "level": "INFO",
			"msg": "latchkey demo", "issuer": a.cfg.Issuer, "demo_user": st.Username, "demo_password": st.Password,
			"client_id": st.ClientID, "client_secret": st.ClientSecret, "authorize_url": authURL})
	}
	fmt.Fprintf(stdout, `
Latchkey demo
  issuer:        %s
  demo user:     %s
  password:      %s
  demo client:   %s
  client secret: %s

Sign in by opening this URL in a browser:

  %s

`, a.cfg.Issuer, st.Username, st.Password, st.ClientID, st.ClientSecret, authURL)
	return nil
}

// loadDemo returns the saved demo state when its client and user still
// exist, nil when the demo has to be created.
func loadDemo(ctx context.Context, a *app, path string) (*demoState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	var st demoState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, nil
	}
	if _, err := a.store.GetClientByID(ctx, st.ClientID); err != nil {
		return nil, nil
	}
	if _, err := a.store.GetUserByLogin(ctx, st.Username); err != nil {
		return nil, nil
	}
	return &st, nil
}

func createDemo(ctx context.Context, a *app) (*demoState, error) {
	st := &demoState{Password: randomString(12), CodeVerifier: oauth2.GenerateVerifier()}
	for i := 0; ; i++ {
		st.Username = "demo"
		if i > 0 {
			st.Username = "demo-" + randomString(3)
		}
		_, err := a.accounts.CreateUser(ctx, accounts.NewUser{
			Username: st.Username, Email: st.Username + "@example.com", DisplayName: "Demo User",
			Password: st.Password, EmailVerified: true,
		})
		if err == nil {
			break
		}
		var ve *accounts.ValidationError
		if i < 3 && (errors.Is(err, storage.ErrDuplicate) || errors.As(err, &ve) && ve.Field == "username") {
			continue // a demo user from an earlier data directory; pick another name
		}
		return nil, err
	}
	c, secret, err := a.accounts.CreateClient(ctx, accounts.ClientSpec{
		Name:                   "Latchkey Demo App",
		RedirectURIs:           []string{a.cfg.Issuer + demoCallbackPath},
		PostLogoutRedirectURIs: []string{a.cfg.Issuer + demoCallbackPath},
		GrantTypes:             []string{"authorization_code", "refresh_token"},
	})
	if err != nil {
		return nil, err
	}
	st.ClientID, st.ClientSecret = c.ID, secret
	return st, nil
}

// randomString returns n random bytes as URL-safe base64 (a password or
// suffix that is easy to copy).
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Latchkey demo app</title><link rel="stylesheet" href="/static/style.css"></head>
<body><main class="card"><h1>Latchkey demo app</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{else if .SignedOut}}<p>You are signed out.</p>
{{else}}<p>Signed in. The ID token carried these claims:</p><pre>{{.Claims}}</pre>
<form method="get" action="{{.Logout}}"><input type="hidden" name="id_token_hint" value="{{.IDToken}}">
<input type="hidden" name="post_logout_redirect_uri" value="{{.Callback}}"><button type="submit">Sign out</button></form>{{end}}
</main></body></html>`))

// handleDemoCallback is a tiny relying party: it redeems the code with
// golang.org/x/oauth2 and verifies the ID token with go-oidc, exactly as an
// app would.
func handleDemoCallback(a *app, cfg *oauth2.Config, verifier string) http.Handler {
	type page struct {
		Error, Claims, IDToken, Logout, Callback string
		SignedOut                                bool
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		q := r.URL.Query()
		p := page{Logout: a.cfg.Issuer + "/oauth2/logout", Callback: cfg.RedirectURL}
		render := func() { _ = demoPage.Execute(w, p) }
		switch {
		case q.Get("error") != "":
			p.Error = q.Get("error") + ": " + q.Get("error_description")
			render()
			return
		case q.Get("code") == "":
			p.SignedOut = true
			render()
			return
		}
		// The demo client's requests are made in-process against the
		// public handler, so the demo works whatever the issuer's host is.
		ctx := oidc.ClientContext(r.Context(), &http.Client{Transport: handlerTransport{a.public}})
		tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			p.Error = "code exchange failed: " + err.Error()
			render()
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		keySet := oidc.NewRemoteKeySet(ctx, a.cfg.Issuer+"/.well-known/jwks.json")
		idt, err := oidc.NewVerifier(a.cfg.Issuer, keySet, &oidc.Config{ClientID: cfg.ClientID}).Verify(ctx, raw)
		if err != nil {
			p.Error = "ID token verification failed: " + err.Error()
			render()
			return
		}
		var claims map[string]any
		_ = idt.Claims(&claims)
		b, _ := json.MarshalIndent(claims, "", "  ")
		p.Claims, p.IDToken = string(b), raw
		render()
	})
}

// handlerTransport serves HTTP requests with a handler in-process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	u := *r.URL
	r2 := r.Clone(r.Context())
	r2.URL = &url.URL{Path: u.Path, RawQuery: u.RawQuery}
	r2.RequestURI = u.RequestURI()
	r2.RemoteAddr = "127.0.0.1:0"
	t.h.ServeHTTP(rec, r2)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}
