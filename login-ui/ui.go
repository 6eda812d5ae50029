// Package loginui serves the pages a person sees: sign in, consent,
// registration, email verification, forgotten and reset passwords, the
// account page, sign out and errors. Pages are server-rendered html/template, work without
// JavaScript, and every form is CSRF-protected twice: Go's
// http.CrossOriginProtection rejects cross-site POSTs by Sec-Fetch-Site and
// Origin, and each form carries a token bound to the browser's flow cookie.
package loginui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	lkbrand "github.com/latchkey/latchkey/internal/brand"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Flow is what the UI needs from the authorization server.
type Flow interface {
	Challenge(r *http.Request, id string) (*provider.Challenge, error)
	// Step is where the pipeline stands for ch: each page checks it is
	// the one asked for, and otherwise sends the browser on.
	Step(r *http.Request, ch *provider.Challenge) (provider.Step, error)
	// Accept… report what a step proved and return where to go next.
	AcceptFirstFactor(w http.ResponseWriter, r *http.Request, ch *provider.Challenge, user *storage.User, amr []string, returnTo string) (string, error)
	AcceptSecondFactor(r *http.Request, ch *provider.Challenge, amr ...string) (string, error)
	AcceptConsent(r *http.Request, ch *provider.Challenge, granted []string, remember bool) (string, error)
	DenyConsent(w http.ResponseWriter, r *http.Request, ch *provider.Challenge)
	CurrentSession(r *http.Request) (*storage.BrowserSession, *storage.User, error)
	SignOut(w http.ResponseWriter, r *http.Request) error
	LogoutRedirect(r *http.Request, clientID, uri, state string) (string, error)
	CSRFToken(w http.ResponseWriter, r *http.Request, purpose string) string
	CheckCSRF(r *http.Request, purpose string) bool
}

var _ Flow = (*provider.Provider)(nil)

// Accounts is the lifecycle the pages drive (provider/accounts).
type Accounts interface {
	Authenticate(ctx context.Context, login, password string) (*storage.User, error)
	GetUser(ctx context.Context, id string) (*storage.User, error)
	// SignInLimitKey names the per-account sign-in budget an attempt draws on.
	SignInLimitKey(ctx context.Context, login string) (string, error)
	Register(ctx context.Context, r accounts.Registration) error
	ResendVerification(ctx context.Context, login string) error
	ConfirmEmail(ctx context.Context, token, username string) (*storage.User, error)
	ForgotPassword(ctx context.Context, email string) error
	CheckResetToken(ctx context.Context, token string) error
	ResetPassword(ctx context.Context, token, password string) (*storage.User, error)
	ChangePassword(ctx context.Context, userID, current, password, keepSessionID string) error
	UpdateProfile(ctx context.Context, userID string, p accounts.ProfileUpdate) (*storage.User, error)
	ChangeEmail(ctx context.Context, userID, newEmail string) error
	VerifyPassword(ctx context.Context, u *storage.User, password string) error
	ListSessions(ctx context.Context, userID, currentID string) ([]accounts.SessionView, error)
	RevokeSession(ctx context.Context, userID, sessionID string) error
	ListConsents(ctx context.Context, userID string) ([]accounts.ConsentView, error)
	RevokeConsent(ctx context.Context, userID, clientID string) error
	DeleteAccount(ctx context.Context, userID, password string) error
	ListIdentities(ctx context.Context, userID string) ([]storage.Identity, error)
	UnlinkIdentity(ctx context.Context, userID, upstream, subject string) error
	// Second factors
	VerifySecondFactor(ctx context.Context, userID, code string) (amr string, err error)
	EnrolTOTPInSignIn(ctx context.Context, userID string) (*accounts.TOTPEnrolment, error)
	PendingTOTP(ctx context.Context, userID, factorID string) (*accounts.TOTPEnrolment, error)
	ConfirmTOTP(ctx context.Context, userID, factorID, code string) ([]string, error)
	EnrolTOTP(ctx context.Context, userID, currentPassword string) (*accounts.TOTPEnrolment, error)
	ListFactors(ctx context.Context, userID string) ([]storage.Factor, int, error)
	DeleteFactor(ctx context.Context, userID, factorID string, proof accounts.FactorProof) error
	RegenerateRecoveryCodes(ctx context.Context, userID string, proof accounts.FactorProof) ([]string, error)
	// Passkeys
	PasskeysEnabled() bool
	BeginPasskeySignIn() (options, state []byte, err error)
	FinishPasskeySignIn(ctx context.Context, state, response []byte) (*storage.User, []string, error)
	BeginPasskeySecondFactor(ctx context.Context, userID string) (options, state []byte, err error)
	FinishPasskeySecondFactor(ctx context.Context, userID string, state, response []byte) (string, error)
	BeginPasskeyRegistration(ctx context.Context, userID string) (options, state []byte, err error)
	FinishPasskeyRegistration(ctx context.Context, userID, name string, state, response []byte) ([]string, error)
}

var _ Accounts = (*accounts.Service)(nil)

// Limiter is a rate limit keyed by string, shared by every replica
// (internal/ratelimit). An error means it could not decide.
type Limiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
	Reset(ctx context.Context, key string) error
}

// Limits are the rate limits of the credential pages; nil means none.
type Limits struct {
	LoginIP, LoginAccount Limiter // sign-in attempts per client IP and per login name
	Register              Limiter // registrations per client IP
	Email                 Limiter // verification and reset emails, per IP and per address
	Reset                 Limiter // reset-password submissions per client IP
}

// Upstream is an external identity provider offered as "Continue with …".
type Upstream struct {
	ID   string // the upstream's id, as identities record it
	Name string
	URL  string // starts the upstream sign-in; the challenge is appended
}

// Config is how the pages behave.
type Config struct {
	RegistrationEnabled bool
	// DeleteGrace is how long a deleted account can be restored (the
	// account page says so); 0 says nothing.
	DeleteGrace time.Duration
	// Ceremonies seals the passkey ceremony cookie; nil with passkeys off.
	Ceremonies Sealer
	// SecureCookies: the issuer is https, cookies get Secure.
	SecureCookies bool
	Limits        Limits
	Upstreams     []Upstream
	// Metrics counts sign-in outcomes; nil counts nothing.
	Metrics interface{ SignIn(outcome string) }
}

// Brand is the product's look, from configuration.
type Brand struct {
	Name         string
	LogoURL      string
	PrimaryColor string // "" (the stylesheet's) or #rgb / #rrggbb (internal/brand)
	SupportEmail string
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
	if brand.PrimaryColor != "" {
		// It is written into /brand.css; configuration checked it with
		// the same rule.
		if err := lkbrand.CheckColor(brand.PrimaryColor); err != nil {
			return nil, fmt.Errorf("login-ui: Brand.PrimaryColor: %w", err)
		}
	}
	p := &Pages{brand: brand, tmpl: map[string]*template.Template{}, t: English, log: log}
	for _, name := range []string{"login", "consent", "logout", "error", "signedin", "register", "message",
		"verify", "forgot", "reset", "account", "secondfactor", "enrol", "recoverycodes"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		p.tmpl[name] = t
	}
	return p, nil
}

// field is what the "field" template renders: a labelled input with its
// help text and error bound by aria-describedby.
type field struct {
	Name, Label, Type, Auto, Value, Err, Help string
	Req                                       bool
}

var funcs = template.FuncMap{
	"fieldOf": func(name, label, typ, auto, value, err, help string, req bool) field {
		return field{Name: name, Label: label, Type: typ, Auto: auto, Value: value, Err: err, Help: help, Req: req}
	},
}

// page is the data every template gets.
type page struct {
	Title  string
	Brand  Brand
	T      Strings
	Error  string            // announced at the top of the form
	Notice string            // a success message
	Fields map[string]string // field name → its error
	Values map[string]string // what the person typed (never passwords)
	CSRF   string
	// ResendCSRF is the token of the "send the link again" form the
	// sign-in page shows beside its own.
	ResendCSRF string
	// page-specific
	Challenge    string
	Client       *storage.Client
	Login        string
	Scopes       []scopeView
	User         string
	Detail       string
	Done         bool
	ClientID     string
	RedirectURI  string
	State        string
	Token        string
	Register     bool
	Upstreams    []Upstream
	Resend       bool
	Account      *storage.User
	HasPassword  bool
	Sessions     []accounts.SessionView
	Consents     []accounts.ConsentView
	Identities   []identityView
	Link         string
	LinkText     string
	Next         string
	EmailPending bool
	// The second-factor pages
	Enrolment     *enrolmentView
	RecoveryCodes []string
	FormAction    string // where the enrolment form posts
	Technical     string // the error page's developer detail, folded away
	Passkeys      bool   // offer passkeys (sign-in, second factor, account page)
	HasTOTP       bool   // the account page: an authenticator app is set up
	// The account page
	SessionRows  []sessionRow
	Factors      []storage.Factor
	RecoveryLeft int
	DeleteNote   string
}

// sessionRow is a session on the account page, named for people.
type sessionRow struct {
	accounts.SessionView
	Device string // "Chrome on Linux"; "" when unknown
}

type scopeView struct{ Name, Label string }

// identityView is a linked upstream account on the account page.
type identityView struct {
	Upstream, UpstreamName, Subject, Email string
}

func (p *Pages) render(w http.ResponseWriter, status int, name string, data page) {
	data.Brand, data.T = p.brand, p.t
	if data.Values == nil {
		data.Values = map[string]string{}
	}
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
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; form-action 'self' http: https:")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Error renders the friendly error page; it has provider.ErrorPage's shape.
func (p *Pages) Error(w http.ResponseWriter, _ *http.Request, status int, title, detail string, technical ...string) {
	p.render(w, status, "error", page{Title: title, Detail: detail, Technical: strings.Join(technical, "\n")})
}

var _ provider.ErrorPage = (*Pages)(nil).Error

// BadRequest renders the error page for a request that cannot be read (a
// bad form, malformed input). It says no more than that: detail is for the
// JSON answers, which a program reads; a person can only go back.
func (p *Pages) BadRequest(w http.ResponseWriter, r *http.Request, _ string) {
	p.Error(w, r, http.StatusBadRequest, p.t.SomethingWrong, p.t.BadRequest)
}

// UI serves the login pages.
type UI struct {
	devices  *Devices
	pages    *Pages
	flow     Flow
	accounts Accounts
	cfg      Config
	log      *slog.Logger
}

// New returns the login UI.
func New(pages *Pages, flow Flow, acc Accounts, cfg Config, log *slog.Logger) *UI {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &UI{devices: NewDevices(), pages: pages, flow: flow, accounts: acc, cfg: cfg, log: log}
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

// handleBrandCSS serves the configured primary color as a stylesheet, so
// that the pages' Content-Security-Policy needs no inline styles.
func (p *Pages) handleBrandCSS() http.Handler {
	body := []byte(":root { --primary: " + p.brand.PrimaryColor + "; }\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(body)
	})
}
