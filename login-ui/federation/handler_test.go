package federation

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/provider"
	"github.com/latchkey/latchkey/provider/accounts"
	fed "github.com/latchkey/latchkey/provider/federation"
	"github.com/latchkey/latchkey/provider/federation/federationtest"
	"github.com/latchkey/latchkey/storage"
)

func openOP(t *testing.T, op *federationtest.OP) *fed.OIDC {
	t.Helper()
	c, err := fed.Open(context.Background(), fed.Config{ID: "up", Name: "Upstream", Issuer: op.Issuer,
		ClientID: federationtest.Client, ClientSecret: federationtest.Secret,
		RedirectURL: "https://latchkey.example/federation/up/callback", Scopes: []string{"openid", "email", "profile"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var testSecret = []byte("federation-test-secret-0123456789abcdef")

func TestCookieSealing(t *testing.T) {
	s, _ := newSealer(testSecret)
	now := time.Now()
	fs := flowState{Upstream: "up", State: "st", Nonce: "no", Verifier: "ve", Challenge: "ch", Expires: now.Add(time.Minute).Unix(), Login: true}
	v, err := s.seal(fs)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mustB64(t, v)), `"v":"ve"`) {
		t.Fatal("the cookie is not encrypted")
	}
	got, err := s.open(v, "up", now)
	if err != nil || got != fs {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// Every single-byte change is detected.
	raw := mustB64(t, v)
	for i := range raw {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		if _, err := s.open(base64.RawURLEncoding.EncodeToString(b), "up", now); !errors.Is(err, errBadCookie) {
			t.Fatalf("byte %d flipped: %v", i, err)
		}
	}
	for name, f := range map[string]func() error{
		"another upstream": func() error { _, err := s.open(v, "other", now); return err },
		"expired":          func() error { _, err := s.open(v, "up", now.Add(time.Minute)); return err },
		"another secret": func() error {
			s2, _ := newSealer([]byte("another-secret-another-secret-0123456789"))
			_, err := s2.open(v, "up", now)
			return err
		},
		"truncated":  func() error { _, err := s.open(v[:10], "up", now); return err },
		"not base64": func() error { _, err := s.open("!!!", "up", now); return err },
	} {
		if err := f(); !errors.Is(err, errBadCookie) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func mustB64(t *testing.T, v string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeFlow stands in for *provider.Provider.
type fakeFlow struct {
	mu         sync.Mutex
	challenges map[string]*provider.Challenge
	accepted   []string // user ids signed in for a challenge
	sessions   []string // user ids signed in without one
	amr        []string
}

func (f *fakeFlow) Challenge(r *http.Request, id string) (*provider.Challenge, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch, ok := f.challenges[id]; ok {
		return ch, nil
	}
	return nil, provider.ErrNoChallenge
}

func (f *fakeFlow) AcceptFirstFactor(w http.ResponseWriter, r *http.Request, ch *provider.Challenge, user *storage.User, amr []string, returnTo string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.amr = amr
	if ch == nil {
		f.sessions = append(f.sessions, user.ID)
		return returnTo, nil
	}
	f.accepted = append(f.accepted, user.ID)
	return provider.PathResume + "?challenge=" + ch.ID, nil
}

type fakeAccounts struct {
	mu     sync.Mutex
	calls  []accounts.FederatedClaims
	refuse bool
}

func (a *fakeAccounts) FederatedSignIn(ctx context.Context, c accounts.FederatedClaims) (*storage.User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, c)
	if a.refuse {
		return nil, fmt.Errorf("%w: the provider has not verified the address", accounts.ErrFederationRefused)
	}
	return &storage.User{ID: "user-" + c.Subject}, nil
}

// memReplay is fosite's JTI store semantics in memory.
type memReplay struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (m *memReplay) ClientAssertionJWTValid(_ context.Context, jti string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.seen[jti]; ok && exp.After(time.Now()) {
		return fosite.ErrJTIKnown
	}
	return nil
}

func (m *memReplay) SetClientAssertionJWT(_ context.Context, jti string, exp time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.seen[jti]; ok && old.After(time.Now()) {
		return fosite.ErrJTIKnown
	}
	m.seen[jti] = exp
	return nil
}

type handlerEnv struct {
	op    *federationtest.OP
	flow  *fakeFlow
	acc   *fakeAccounts
	h     *Handler
	r     *mux.Router
	pages []string // "status title: detail" of every error page
	mu    sync.Mutex
}

func newHandlerEnv(t *testing.T) *handlerEnv {
	e := &handlerEnv{op: federationtest.New(t), flow: &fakeFlow{challenges: map[string]*provider.Challenge{}}, acc: &fakeAccounts{}}
	e.h = NewHandler(Deps{
		Connectors: []fed.Connector{openOP(t, e.op)},
		Flow:       e.flow,
		Accounts:   e.acc,
		Secret:     testSecret,
		Replay:     &memReplay{seen: map[string]time.Time{}},
		Secure:     true,
		ErrorPage: func(w http.ResponseWriter, r *http.Request, status int, title, detail string, _ ...string) {
			e.mu.Lock()
			e.pages = append(e.pages, fmt.Sprintf("%d %s: %s", status, title, detail))
			e.mu.Unlock()
			http.Error(w, title+": "+detail, status)
		},
	})
	e.r = mux.NewRouter()
	e.h.Routes(e.r)
	return e
}

func (e *handlerEnv) get(t *testing.T, target string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	w := httptest.NewRecorder()
	e.r.ServeHTTP(w, req)
	return w
}

// start runs /start and returns the flow cookie and the upstream's
// authorization URL.
func (e *handlerEnv) start(t *testing.T, query string) (*http.Cookie, *url.URL) {
	t.Helper()
	w := e.get(t, "/federation/up/start"+query)
	if w.Code != http.StatusFound {
		t.Fatalf("start: %d %s", w.Code, w.Body)
	}
	var ck *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == cookieName {
			ck = c
		}
	}
	if ck == nil {
		t.Fatal("start set no flow cookie")
	}
	if ck.Path != "/federation/up/" || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode ||
		ck.MaxAge != 600 {
		t.Errorf("flow cookie attributes %+v", ck)
	}
	u, _ := url.Parse(w.Header().Get("Location"))
	return ck, u
}

// ready makes the upstream answer the next code with a token for auth.
func (e *handlerEnv) ready(auth *url.URL, mod func(map[string]any)) {
	e.op.Set(func(op *federationtest.OP) {
		op.Claims, op.TokenCode, op.SignWith = op.IDClaims(auth.Query().Get("nonce")), 0, nil
		if mod != nil {
			mod(op.Claims)
		}
	})
}

func callbackURL(auth *url.URL, extra string) string {
	return "/federation/up/callback?code=c1&state=" + url.QueryEscape(auth.Query().Get("state")) + extra
}

func clearsCookie(w *httptest.ResponseRecorder) bool {
	for _, c := range w.Result().Cookies() {
		if c.Name == cookieName && c.MaxAge < 0 && c.Path == "/federation/up/" {
			return true
		}
	}
	return false
}

func TestHandlerSignInWithAndWithoutChallenge(t *testing.T) {
	e := newHandlerEnv(t)
	if b := e.h.Buttons(); len(b) != 1 || b[0].ID != "up" || b[0].Name != "Upstream" || b[0].URL != "/federation/up/start" {
		t.Fatalf("buttons %+v", b)
	}

	// Straight from the sign-in page: a session, then the account page.
	ck, auth := e.start(t, "")
	if !strings.HasPrefix(auth.String(), e.op.Issuer+"/auth?") || auth.Query().Get("state") == "" || auth.Query().Has("prompt") {
		t.Fatalf("upstream authorization URL %s", auth)
	}
	e.ready(auth, nil)
	w := e.get(t, callbackURL(auth, ""), ck)
	if w.Code != http.StatusFound || w.Header().Get("Location") != "/account" || !clearsCookie(w) {
		t.Fatalf("callback: %d %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	if len(e.flow.sessions) != 1 || e.flow.sessions[0] != "user-u-1" || strings.Join(e.flow.amr, " ") != "fed" {
		t.Fatalf("sessions %v amr %v", e.flow.sessions, e.flow.amr)
	}
	want := accounts.FederatedClaims{Upstream: "up", Subject: "u-1", Email: "ada@example.com", EmailVerified: true,
		Name: "Ada Lovelace", Username: "ada", PictureURL: "https://img.example.com/ada.png"}
	if e.acc.calls[0] != want {
		t.Errorf("FederatedSignIn(%+v), want %+v", e.acc.calls[0], want)
	}

	// For a pending authorization: it is continued, and prompt=login is
	// passed on.
	e.flow.challenges["ch-1"] = &provider.Challenge{ID: "ch-1", Prompt: []string{"login"}, MaxAge: "300"}
	ck, auth = e.start(t, "?challenge=ch-1")
	if auth.Query().Get("prompt") != "login" || auth.Query().Get("max_age") != "300" {
		t.Errorf("prompt=login and max_age not passed upstream: %s", auth)
	}
	e.ready(auth, nil)
	w = e.get(t, callbackURL(auth, ""), ck)
	if w.Code != http.StatusFound || w.Header().Get("Location") != provider.PathResume+"?challenge=ch-1" {
		t.Fatalf("callback with challenge: %d %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	if len(e.flow.accepted) != 1 {
		t.Fatalf("accepted %v", e.flow.accepted)
	}

	// An unknown challenge is refused before anything goes upstream.
	if w := e.get(t, "/federation/up/start?challenge=nope"); w.Code != http.StatusBadRequest || w.Header().Get("Set-Cookie") != "" {
		t.Errorf("unknown challenge: %d %v", w.Code, w.Header())
	}
	if w := e.get(t, "/federation/nope/start"); w.Code != http.StatusNotFound {
		t.Errorf("unknown upstream: %d", w.Code)
	}
}

func TestHandlerFailuresChangeNothing(t *testing.T) {
	e := newHandlerEnv(t)
	cases := []struct {
		name   string
		status int
		title  string
		run    func(t *testing.T) *httptest.ResponseRecorder
	}{
		{"upstream denial", http.StatusBadRequest, "was cancelled", func(t *testing.T) *httptest.ResponseRecorder {
			ck, auth := e.start(t, "")
			return e.get(t, "/federation/up/callback?error=access_denied&state="+auth.Query().Get("state"), ck)
		}},
		{"no cookie", http.StatusBadRequest, "has expired", func(t *testing.T) *httptest.ResponseRecorder {
			_, auth := e.start(t, "")
			e.ready(auth, nil)
			return e.get(t, callbackURL(auth, ""))
		}},
		{"state mismatch", http.StatusBadRequest, "has expired", func(t *testing.T) *httptest.ResponseRecorder {
			ck, auth := e.start(t, "")
			e.ready(auth, nil)
			return e.get(t, "/federation/up/callback?code=c1&state=other", ck)
		}},
		{"cookie of an earlier start", http.StatusBadRequest, "has expired", func(t *testing.T) *httptest.ResponseRecorder {
			old, _ := e.start(t, "")
			_, auth := e.start(t, "")
			e.ready(auth, nil)
			return e.get(t, callbackURL(auth, ""), old)
		}},
		{"expired cookie", http.StatusBadRequest, "has expired", func(t *testing.T) *httptest.ResponseRecorder {
			ck, auth := e.start(t, "")
			e.ready(auth, nil)
			e.h.now = func() time.Time { return time.Now().Add(flowTTL + time.Second) }
			defer func() { e.h.now = time.Now }()
			return e.get(t, callbackURL(auth, ""), ck)
		}},
		{"nonce mismatch", http.StatusBadRequest, "could not be verified", func(t *testing.T) *httptest.ResponseRecorder {
			ck, auth := e.start(t, "")
			e.ready(auth, func(c map[string]any) { c["nonce"] = "forged" })
			return e.get(t, callbackURL(auth, ""), ck)
		}},
		{"upstream down", http.StatusBadGateway, "is not responding", func(t *testing.T) *httptest.ResponseRecorder {
			ck, auth := e.start(t, "")
			e.op.Set(func(op *federationtest.OP) { op.TokenCode = http.StatusServiceUnavailable })
			return e.get(t, callbackURL(auth, ""), ck)
		}},
		{"challenge gone", http.StatusBadRequest, "request has expired", func(t *testing.T) *httptest.ResponseRecorder {
			e.flow.challenges["ch-2"] = &provider.Challenge{ID: "ch-2"}
			ck, auth := e.start(t, "?challenge=ch-2")
			delete(e.flow.challenges, "ch-2")
			e.ready(auth, nil)
			return e.get(t, callbackURL(auth, ""), ck)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.pages = nil
			w := tc.run(t)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.title) || !clearsCookie(w) {
				t.Fatalf("%d %s (cookie cleared: %v)", w.Code, w.Body, clearsCookie(w))
			}
			if len(e.acc.calls) != 0 || len(e.flow.sessions) != 0 || len(e.flow.accepted) != 0 {
				t.Fatalf("a failure reached the accounts: %v %v %v", e.acc.calls, e.flow.sessions, e.flow.accepted)
			}
		})
	}

	t.Run("replay with the cookie", func(t *testing.T) {
		ck, auth := e.start(t, "")
		e.ready(auth, nil)
		if w := e.get(t, callbackURL(auth, ""), ck); w.Code != http.StatusFound {
			t.Fatalf("first callback: %d %s", w.Code, w.Body)
		}
		calls := len(e.acc.calls)
		w := e.get(t, callbackURL(auth, ""), ck)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "already used") || len(e.acc.calls) != calls {
			t.Fatalf("replay: %d %s", w.Code, w.Body)
		}
	})

	t.Run("refused by the linking rules", func(t *testing.T) {
		e.acc.refuse = true
		ck, auth := e.start(t, "")
		e.ready(auth, nil)
		w := e.get(t, callbackURL(auth, ""), ck)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "The provider has not verified the address") {
			t.Fatalf("refusal: %d %s", w.Code, w.Body)
		}
	})
}
