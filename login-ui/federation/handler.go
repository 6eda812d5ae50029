// Package federation is the front-end of upstream sign-in: the
// /federation/{id}/start and /federation/{id}/callback pages. The
// upstream protocol lives behind provider/federation's Connector; what a
// verified identity means for accounts lives in provider/accounts; what
// happens after the first factor is the provider's sign-in pipeline.
package federation

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/clientip"
	"github.com/latchkey/latchkey/internal/secret"
	loginui "github.com/latchkey/latchkey/login-ui"
	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/provider/accounts"
	fed "github.com/latchkey/latchkey/provider/federation"
	"github.com/latchkey/latchkey/storage"
)

// Flow is what the handler needs from the authorization server: the
// pending sign-in, and the pipeline's next step once the upstream has
// proven who the person is.
type Flow interface {
	Challenge(r *http.Request, id string) (*provider.Challenge, error)
	AcceptFirstFactor(w http.ResponseWriter, r *http.Request, ch *provider.Challenge, user *storage.User, amr []string, returnTo string) (string, error)
}

var _ Flow = (*provider.Provider)(nil)

// Accounts applies the linking rules (provider/accounts).
type Accounts interface {
	FederatedSignIn(ctx context.Context, c accounts.FederatedClaims) (*storage.User, error)
}

// ReplayGuard remembers used values until they expire: fosite's JTI
// store (fosite.ClientManager, part of storage.Store). A state is spent at its
// first callback, so a replayed callback fails even with the cookie.
type ReplayGuard interface {
	ClientAssertionJWTValid(ctx context.Context, jti string) error
	SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error
}

// Deps are the handler's collaborators.
type Deps struct {
	Connectors []fed.Connector
	Flow       Flow
	Accounts   Accounts
	ErrorPage  provider.ErrorPage
	Secret     []byte // LATCHKEY_SECRET; the cookie key derives from it
	// PreviousSecrets (LATCHKEY_PREVIOUS_SECRETS) open cookies sealed
	// before a rotation of Secret.
	PreviousSecrets [][]byte
	Replay          ReplayGuard
	Secure          bool // the issuer is https: the cookie gets Secure
	Logger          *slog.Logger
	// Metrics counts federated sign-in outcomes; nil counts nothing.
	Metrics interface{ SignIn(outcome string) }
}

// Handler serves /federation/{id}/start and /federation/{id}/callback.
type Handler struct {
	d      Deps
	byID   map[string]fed.Connector
	sealer *sealer
	log    *slog.Logger
	now    func() time.Time
}

// NewHandler returns the handler of d's connectors.
func NewHandler(d Deps) *Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.ErrorPage == nil {
		d.ErrorPage = func(w http.ResponseWriter, _ *http.Request, status int, title, detail string, _ ...string) {
			http.Error(w, title+": "+detail, status)
		}
	}
	s, err := newSealer(d.Secret, d.PreviousSecrets...)
	if err != nil {
		panic("federation: cookie key: " + err.Error()) // HKDF cannot fail for 32 bytes
	}
	h := &Handler{d: d, byID: map[string]fed.Connector{}, sealer: s, log: d.Logger, now: time.Now}
	for _, c := range d.Connectors {
		h.byID[c.ID()] = c
	}
	return h
}

// Routes registers the start and callback routes on r.
func (h *Handler) Routes(r *mux.Router) {
	r.Handle("/federation/{id}/start", http.HandlerFunc(h.start)).Methods(http.MethodGet)
	r.Handle("/federation/{id}/callback", http.HandlerFunc(h.callback)).Methods(http.MethodGet)
}

// Buttons are the "Continue with …" buttons of the sign-in and register
// pages, in configuration order.
func (h *Handler) Buttons() []loginui.Upstream {
	out := make([]loginui.Upstream, 0, len(h.d.Connectors))
	for _, c := range h.d.Connectors {
		out = append(out, loginui.Upstream{ID: c.ID(), Name: c.Name(), URL: startPath(c.ID())})
	}
	return out
}

func startPath(id string) string  { return "/federation/" + id + "/start" }
func cookiePath(id string) string { return "/federation/" + id + "/" }

func (h *Handler) connector(w http.ResponseWriter, r *http.Request) fed.Connector {
	c := h.byID[mux.Vars(r)["id"]]
	if c == nil {
		h.d.ErrorPage(w, r, http.StatusNotFound, "Unknown sign-in provider",
			"This way of signing in is not available. Go back to the sign-in page and choose another.")
	}
	return c
}

// start begins the upstream authorization: state, nonce and PKCE verifier
// go into a sealed cookie bound to this upstream (and to the pending
// authorization, when ?challenge= names one), then the browser goes to
// the upstream.
func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	c := h.connector(w, r)
	if c == nil {
		return
	}
	now := h.now()
	fs := flowState{
		Upstream: c.ID(),
		State:    secret.Token(24),
		Nonce:    secret.Token(24),
		Verifier: oauth2.GenerateVerifier(),
		Expires:  now.Add(flowTTL).Unix(),
	}
	if id := r.URL.Query().Get("challenge"); id != "" {
		ch, err := h.d.Flow.Challenge(r, id)
		if err != nil {
			h.challengeError(w, r, c, err)
			return
		}
		fs.Challenge = ch.ID
		fs.Login = slices.Contains(ch.Prompt, "login")
		fs.MaxAge = ch.MaxAge
	}
	value, err := h.sealer.seal(fs)
	if err != nil {
		h.internalError(w, r, c, "sealing the flow cookie", err)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: value, Path: cookiePath(c.ID()), MaxAge: int(flowTTL / time.Second),
		HttpOnly: true, Secure: h.d.Secure,
		// The callback is a top-level GET from the upstream's site.
		SameSite: http.SameSiteLaxMode,
	})
	a := fed.AuthParams{ForceLogin: fs.Login}
	if n, err := strconv.Atoi(fs.MaxAge); err == nil && n >= 0 {
		// The client's freshness demand goes upstream: Latchkey's
		// auth_time for this sign-in is the upstream's sign-in.
		a.MaxAge = &n
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, c.AuthCodeURL(fs.State, fs.Nonce, fs.Verifier, a), http.StatusFound)
}

// callback finishes the upstream authorization and signs the person in.
// The cookie is cleared whatever the outcome; no failure changes an
// account.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	c := h.connector(w, r)
	if c == nil {
		return
	}
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: cookiePath(c.ID()), MaxAge: -1,
		HttpOnly: true, Secure: h.d.Secure, SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	log := h.log.With("upstream", c.ID())
	again := "Go back to the sign-in page and try again."

	if e := q.Get("error"); e != "" {
		log.Warn("federation: the upstream answered with an error", "error", e,
			"error_description", q.Get("error_description"))
		title, detail := c.Name()+" could not sign you in", again
		if e == "access_denied" {
			title = "Sign-in with " + c.Name() + " was cancelled"
			detail = "You did not allow " + c.Name() + " to sign you in. " + again
		}
		h.d.ErrorPage(w, r, http.StatusBadRequest, title, detail)
		return
	}
	expired := func(cause string, args ...any) {
		log.Warn("federation: rejected callback: "+cause, args...)
		h.d.ErrorPage(w, r, http.StatusBadRequest, "This sign-in link has expired", again)
	}
	ck, err := r.Cookie(cookieName)
	if err != nil {
		expired("no flow cookie (expired, or another browser)")
		return
	}
	fs, err := h.sealer.open(ck.Value, c.ID(), h.now())
	if err != nil {
		expired("flow cookie", "err", err)
		return
	}
	if st := q.Get("state"); st == "" || subtle.ConstantTimeCompare([]byte(st), []byte(fs.State)) != 1 {
		expired("state mismatch")
		return
	}
	if h.d.Replay != nil {
		key := "federation:" + c.ID() + ":" + fs.State
		err := h.d.Replay.ClientAssertionJWTValid(ctx, key)
		if err == nil {
			err = h.d.Replay.SetClientAssertionJWT(ctx, key, time.Unix(fs.Expires, 0))
		}
		if errors.Is(err, fosite.ErrJTIKnown) {
			log.Warn("federation: rejected callback: replayed state")
			h.d.ErrorPage(w, r, http.StatusBadRequest, "This sign-in link was already used", again)
			return
		}
		if err != nil {
			h.internalError(w, r, c, "recording the state", err)
			return
		}
	}
	var ch *provider.Challenge
	if fs.Challenge != "" {
		if ch, err = h.d.Flow.Challenge(r, fs.Challenge); err != nil {
			h.challengeError(w, r, c, err)
			return
		}
	}

	id, err := c.Exchange(ctx, q.Get("code"), fs.Verifier, fs.Nonce)
	switch {
	case errors.Is(err, fed.ErrUnavailable):
		log.Error("federation: upstream unavailable", "err", err)
		h.d.ErrorPage(w, r, http.StatusBadGateway, c.Name()+" is not responding",
			"We could not reach "+c.Name()+" to finish signing you in. Try again in a few minutes, or sign in another way.")
		return
	case errors.Is(err, fed.ErrRefused):
		log.Warn("federation: identity refused", "err", err)
		h.d.ErrorPage(w, r, http.StatusForbidden, "This account cannot sign in here", fed.RefusalMessage(err))
		return
	case err != nil:
		log.Warn("federation: rejected callback: verification failed", "err", err)
		h.d.ErrorPage(w, r, http.StatusBadRequest, "Sign-in with "+c.Name()+" could not be verified", again)
		return
	}

	actx := accounts.WithActor(ctx, accounts.Actor{Type: storage.ActorUser,
		IP: clientip.From(r), UserAgent: r.UserAgent()})
	user, err := h.d.Accounts.FederatedSignIn(actx, accounts.FederatedClaims{
		Upstream:      c.ID(),
		Subject:       id.Subject,
		Email:         id.Email,
		EmailVerified: id.EmailVerified,
		Name:          id.Name,
		Username:      id.Username,
		PictureURL:    id.PictureURL,
	})
	if errors.Is(err, accounts.ErrFederationRefused) {
		h.count("federated_refused")
		log.Warn("federation: sign-in refused", "subject", id.Subject, "err", err)
		h.d.ErrorPage(w, r, http.StatusForbidden, "You cannot sign in with "+c.Name(), federationRefusal(err))
		return
	}
	if err != nil {
		h.internalError(w, r, c, "federated sign-in", err)
		return
	}

	h.count("federated_success")
	next, err := h.d.Flow.AcceptFirstFactor(w, r, ch, user, []string{provider.AMRFederated}, provider.PathAccount)
	if err != nil {
		h.internalError(w, r, c, "accepting the sign-in", err)
		return
	}
	http.Redirect(w, r, next, http.StatusFound)
}

func (h *Handler) count(outcome string) {
	if h.d.Metrics != nil {
		h.d.Metrics.SignIn(outcome)
	}
}

func (h *Handler) challengeError(w http.ResponseWriter, r *http.Request, c fed.Connector, err error) {
	if errors.Is(err, provider.ErrNoChallenge) {
		h.log.Warn("federation: unknown or expired sign-in request", "upstream", c.ID())
		h.d.ErrorPage(w, r, http.StatusBadRequest, "This sign-in request has expired",
			"Go back to the application and start again.")
		return
	}
	h.internalError(w, r, c, "loading the sign-in request", err)
}

func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, c fed.Connector, what string, err error) {
	h.log.Error("federation: "+what, "upstream", c.ID(), "err", err)
	h.d.ErrorPage(w, r, http.StatusInternalServerError, "Something went wrong",
		"We could not sign you in with "+c.Name()+". Try again in a few minutes.")
}

// federationRefusal is the person-facing text of a refusal by the linking
// rules: what follows the sentinel's own text.
func federationRefusal(err error) string {
	msg, base := err.Error(), accounts.ErrFederationRefused.Error()
	if i := strings.Index(msg, base+": "); i >= 0 {
		msg = msg[i+len(base)+2:]
	} else if msg == base {
		msg = ""
	}
	if msg == "" {
		return "This account cannot be signed in with this provider. Sign in another way or contact support."
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}
