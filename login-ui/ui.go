// Package loginui serves the pages a person sees: sign in, consent, sign
// out and errors. Pages are server-rendered html/template, work without
// JavaScript, and every form is CSRF-protected twice: Go's
// http.CrossOriginProtection rejects cross-site POSTs by Sec-Fetch-Site and
// Origin, and each form carries a token bound to the browser's flow cookie.
package loginui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Flow is what the UI needs from the authorization server.
type Flow interface {
	Challenge(r *http.Request, id string) (*provider.Challenge, error)
	AcceptLogin(w http.ResponseWriter, r *http.Request, ch *provider.Challenge, user *storage.User, amr []string) (string, error)
	AcceptConsent(r *http.Request, ch *provider.Challenge, granted []string, remember bool) (string, error)
	DenyConsent(w http.ResponseWriter, r *http.Request, ch *provider.Challenge)
	StartSession(w http.ResponseWriter, r *http.Request, user *storage.User, amr []string) error
	CurrentSession(r *http.Request) (*storage.BrowserSession, *storage.User, error)
	SignOut(w http.ResponseWriter, r *http.Request) error
	LogoutRedirect(r *http.Request, clientID, uri, state string) (string, error)
	CSRFToken(w http.ResponseWriter, r *http.Request, purpose string) string
	CheckCSRF(r *http.Request, purpose string) bool
}

var _ Flow = (*provider.Provider)(nil)

// Authenticator checks credentials (provider/accounts).
type Authenticator interface {
	Authenticate(ctx context.Context, login, password string) (*storage.User, error)
}

// Brand is the product's look.
type Brand struct {
	Name string
}

// Pages renders templates. It exists before the provider (which needs the
// error page), so it holds no reference to it.
type Pages struct {
	brand Brand
	tmpl  map[string]*template.Template
	t     Strings
	log   *slog.Logger
}

// NewPages parses the embedded templates.
func NewPages(brand Brand, log *slog.Logger) (*Pages, error) {
	if brand.Name == "" {
		brand.Name = "Latchkey"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pages{brand: brand, tmpl: map[string]*template.Template{}, t: English, log: log}
	for _, name := range []string{"login", "consent", "logout", "error", "signedin"} {
		t, err := template.ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		p.tmpl[name] = t
	}
	return p, nil
}

// page is the data every template gets.
type page struct {
	Title string
	Brand Brand
	T     Strings
	Error string
	CSRF  string
	// page-specific
	Challenge   string
	Client      *storage.Client
	Login       string
	Scopes      []scopeView
	User        string
	Detail      string
	Done        bool
	ClientID    string
	RedirectURI string
	State       string
}

type scopeView struct{ Name, Label string }

func (p *Pages) render(w http.ResponseWriter, status int, name string, data page) {
	data.Brand, data.T = p.brand, p.t
	var buf bytes.Buffer
	if err := p.tmpl[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		p.log.Error("rendering page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self' http: https:")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Error renders the friendly error page; it has provider.ErrorPage's shape.
func (p *Pages) Error(w http.ResponseWriter, _ *http.Request, status int, title, detail string) {
	p.render(w, status, "error", page{Title: title, Detail: detail})
}

var _ provider.ErrorPage = (*Pages)(nil).Error

// UI serves the login pages.
type UI struct {
	pages *Pages
	flow  Flow
	auth  Authenticator
	log   *slog.Logger
}

// New returns the login UI.
func New(pages *Pages, flow Flow, auth Authenticator, log *slog.Logger) *UI {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &UI{pages: pages, flow: flow, auth: auth, log: log}
}

func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // embedded at build time
	}
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

var errBadForm = errors.New("bad form")
