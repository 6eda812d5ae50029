package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	lkmail "github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/storage"
)

// These tests run the account rules against a real store (SQLite, and for
// the most important flows PostgreSQL too), a fake clock and a mailer that
// records what it is asked to send.

const baseURL = "https://id.example"

// Passwords that satisfy the policy (not common, long enough).
const (
	goodPW  = "correct horse battery"
	otherPW = "staple grape lantern"
	thirdPW = "quiet violet harbour"
)

// ---- fakes ----

type sentMail struct {
	Kind lkmail.Kind
	To   string
	Data lkmail.Data
}

type fakeMailer struct {
	mu   sync.Mutex
	sent []sentMail
}

func (m *fakeMailer) Send(_ context.Context, kind lkmail.Kind, to string, data lkmail.Data) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, sentMail{kind, to, data})
	return nil
}

func (m *fakeMailer) all() []sentMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}

func (m *fakeMailer) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = nil
}

// of returns the mails of one kind, in order.
func (m *fakeMailer) of(kind lkmail.Kind) []sentMail {
	var out []sentMail
	for _, s := range m.all() {
		if s.Kind == kind {
			out = append(out, s)
		}
	}
	return out
}

// wantNone fails when anything was sent.
func (m *fakeMailer) wantNone(t *testing.T) {
	t.Helper()
	if got := m.all(); len(got) != 0 {
		t.Fatalf("sent %d mails, want none: %+v", len(got), got)
	}
}

// only returns the one mail that was sent, failing unless exactly one of
// that kind to that address was (and nothing else).
func (m *fakeMailer) only(t *testing.T, kind lkmail.Kind, to string) sentMail {
	t.Helper()
	got := m.all()
	if len(got) != 1 || got[0].Kind != kind || got[0].To != to {
		t.Fatalf("sent %+v, want exactly one %s to %s", got, kind, to)
	}
	return got[0]
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// ---- environment ----

type testEnv struct {
	ctx   context.Context
	st    storage.Store
	svc   *Service
	mail  *fakeMailer
	clock *fakeClock
	opts  Options
}

func fastHasher() *Argon2idHasher {
	return NewArgon2id(Argon2Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, 4)
}

// newEnv opens a fresh migrated store at dsn and a Service on it. The
// clock starts at the real time (whole seconds): the store judges browser
// sessions and OAuth tokens live against the real clock.
func newEnv(t *testing.T, dsn string, mutate ...func(*Options)) *testEnv {
	t.Helper()
	st := testdb.OpenStore(t, dsn)
	clock := &fakeClock{now: time.Now().UTC().Truncate(time.Second)}
	m := &fakeMailer{}
	o := Options{
		Hasher:  fastHasher(),
		Now:     clock.Now,
		BaseURL: baseURL,
		Mailer:  m,
		Lockout: LockoutPolicy{Threshold: 3, Base: time.Minute, Max: 4 * time.Minute},
	}
	for _, f := range mutate {
		f(&o)
	}
	return &testEnv{ctx: context.Background(), st: st, svc: New(st, o), mail: m, clock: clock, opts: o}
}

func sqliteEnv(t *testing.T, mutate ...func(*Options)) *testEnv {
	t.Helper()
	return newEnv(t, testdb.SQLite(t), mutate...)
}

// backends runs fn once per storage backend, each in its own subtest.
func backends(t *testing.T, fn func(t *testing.T, dsn func(testing.TB) string)) {
	for _, b := range []struct {
		name string
		dsn  func(testing.TB) string
	}{
		{"sqlite", testdb.SQLite},
		{"postgres", testdb.Postgres},
	} {
		t.Run(b.name, func(t *testing.T) { fn(t, b.dsn) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantIs(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

// wantField fails unless err is a *ValidationError for field.
func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("%s: err = %v (%T), want a ValidationError on %q", what, err, err, field)
	}
	if ve.Field != field {
		t.Fatalf("%s: error on field %q (%s), want %q", what, ve.Field, ve.Message, field)
	}
}

// linkToken checks link is baseURL+path?token=… and returns the token.
func linkToken(t *testing.T, link, path string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatalf("link %q: %v", link, err)
	}
	if u.Scheme+"://"+u.Host+u.Path != baseURL+path {
		t.Fatalf("link %q does not point to %s%s", link, baseURL, path)
	}
	tok := u.Query().Get("token")
	if tok == "" {
		t.Fatalf("link %q carries no token", link)
	}
	return tok
}

// user makes an active user directly (no registration mail).
func (e *testEnv) user(t *testing.T, username, email string, verified bool) *storage.User {
	t.Helper()
	u, err := e.svc.CreateUser(e.ctx, NewUser{Username: username, Email: email, Password: goodPW, EmailVerified: verified})
	must(t, err)
	return u
}

func (e *testEnv) get(t *testing.T, id string) *storage.User {
	t.Helper()
	u, err := e.st.GetUser(e.ctx, id)
	must(t, err)
	return u
}

// register makes an active user whose address is not verified (as an
// admin or an import would) and returns it with a verification token.
func (e *testEnv) register(t *testing.T, username, email string) (*storage.User, string) {
	t.Helper()
	u, err := e.svc.CreateUser(e.ctx, NewUser{Username: username, Email: email, DisplayName: "Name of " + username, Password: goodPW})
	must(t, err)
	e.mail.reset()
	must(t, e.svc.ResendVerification(e.ctx, email))
	m := e.mail.only(t, lkmail.KindVerifyEmail, email)
	tok := linkToken(t, m.Data.Link, "/verify-email")
	e.mail.reset()
	return u, tok
}

// signUp registers through self-service and returns the token of the
// emailed link that creates the account.
func (e *testEnv) signUp(t *testing.T, ctx context.Context, username, email string) string {
	t.Helper()
	e.mail.reset()
	must(t, e.svc.Register(ctx, Registration{Username: username, Email: email, DisplayName: "Name of " + username, Password: goodPW}))
	tok := linkToken(t, e.mail.only(t, lkmail.KindWelcome, email).Data.Link, "/verify-email")
	e.mail.reset()
	return tok
}

// resetToken asks for a reset link for email and returns its token.
func (e *testEnv) resetToken(t *testing.T, email string) string {
	t.Helper()
	e.mail.reset()
	must(t, e.svc.ForgotPassword(e.ctx, email))
	got := e.mail.of(lkmail.KindPasswordReset)
	if len(got) != 1 {
		t.Fatalf("sent %+v, want one password reset", e.mail.all())
	}
	e.mail.reset()
	return linkToken(t, got[0].Data.Link, "/reset-password")
}

func (e *testEnv) sessions(t *testing.T, userID string) []storage.BrowserSession {
	t.Helper()
	ss, err := e.st.ListUserBrowserSessions(e.ctx, userID)
	must(t, err)
	return ss
}

func (e *testEnv) client(t *testing.T, name string) *storage.Client {
	t.Helper()
	c, _, err := e.svc.CreateClient(e.ctx, ClientSpec{Name: name, RedirectURIs: []string{"https://app.example/cb"}})
	must(t, err)
	return c
}

// oauthTokens stores an access and a refresh token of client for subject,
// named after sig, as fosite would.
func (e *testEnv) oauthTokens(t *testing.T, c *storage.Client, subject, sig string) {
	t.Helper()
	sess := openid.NewDefaultSession()
	sess.Subject = subject
	sess.Claims.Subject = subject
	exp := time.Now().Add(time.Hour)
	sess.SetExpiresAt(fosite.AccessToken, exp)
	sess.SetExpiresAt(fosite.RefreshToken, exp)
	r := fosite.NewRequest()
	r.ID = "req-" + sig
	r.RequestedAt = time.Now().Add(-time.Second)
	r.Client = c
	r.GrantedScope = fosite.Arguments{"openid", "offline_access"}
	r.Session = sess
	must(t, e.st.CreateAccessTokenSession(e.ctx, "at-"+sig, r))
	must(t, e.st.CreateRefreshTokenSession(e.ctx, "rt-"+sig, "at-"+sig, r))
}

// tokensAlive reports whether the access and refresh token named after sig
// still exist; it fails when only one of them does.
func (e *testEnv) tokensAlive(t *testing.T, sig string) bool {
	t.Helper()
	_, errA := e.st.GetAccessTokenSession(e.ctx, "at-"+sig, openid.NewDefaultSession())
	_, errR := e.st.GetRefreshTokenSession(e.ctx, "rt-"+sig, openid.NewDefaultSession())
	switch {
	case errA == nil && errR == nil:
		return true
	case errors.Is(errA, fosite.ErrNotFound) && errors.Is(errR, fosite.ErrNotFound):
		return false
	}
	t.Fatalf("tokens %s: access %v, refresh %v", sig, errA, errR)
	return false
}

// ---- registration ----

func TestRegister(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := newEnv(t, dsn(t))
		must(t, e.svc.Register(e.ctx, Registration{Username: " Ada ", Email: " ada@example.com ", DisplayName: " Ada L. ", Password: goodPW}))
		m := e.mail.only(t, lkmail.KindWelcome, "ada@example.com")
		if m.Data.Name != "Ada L." || m.Data.ExpiresIn != 24*time.Hour {
			t.Errorf("welcome data = %+v, want Name Ada L., ExpiresIn 24h", m.Data)
		}
		tok := linkToken(t, m.Data.Link, "/verify-email")

		// Nothing exists until the address is confirmed: no account, no
		// held username, no sign-in.
		if u, err := e.st.GetUserByLogin(e.ctx, "ada"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Register created an account before confirmation: %+v (%v)", u, err)
		}
		if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("Authenticate before confirming: %v", err)
		}

		u, err := e.svc.ConfirmEmail(e.ctx, tok, "")
		must(t, err)
		if u.Username != "ada" || u.Email != "ada@example.com" || u.DisplayName != "Ada L." || !u.EmailVerified {
			t.Errorf("created %q %q %q verified=%v, want ada / ada@example.com / Ada L., verified", u.Username, u.Email, u.DisplayName, u.EmailVerified)
		}
		if stored := e.get(t, u.ID); stored.Status != storage.UserActive || stored.PasswordHash == "" ||
			stored.PasswordHash == goodPW || !strings.HasPrefix(stored.PasswordHash, "$argon2id$") {
			t.Errorf("new user: status=%s hash=%q, want active, argon2id", stored.Status, stored.PasswordHash)
		}
		if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); err != nil {
			t.Fatalf("Authenticate after confirming: %v", err)
		}
		_, err = e.svc.ConfirmEmail(e.ctx, tok, "")
		wantIs(t, "second use of a registration link", err, ErrInvalidToken)
	})
}

// The black-box finding: register the target address with a fresh
// username, then another fresh address with that same username. Before,
// "username taken" meant the target was new (its account had been
// created and held the name). Now neither registration holds the name,
// so both cases answer alike, and an unknown address gets no account.
func TestRegisterDoesNotEnumerateEmails(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := newEnv(t, dsn(t))
		e.user(t, "victim", "victim@example.com", true)
		probe := func(target, username string) error {
			t.Helper()
			must(t, e.svc.Register(e.ctx, Registration{Username: username, Email: target, Password: goodPW}))
			return e.svc.Register(e.ctx, Registration{Username: username, Email: "fresh-" + username + "@example.net", Password: goodPW})
		}
		errHas := probe("victim@example.com", "probe1")
		errNew := probe("nobody@example.com", "probe2")
		if errHas != nil || errNew != nil {
			t.Fatalf("follow-up registration: existing address %v, unknown address %v; want nil for both", errHas, errNew)
		}
		for _, name := range []string{"probe1", "probe2"} {
			if u, err := e.st.GetUserByLogin(e.ctx, name); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("%s: an account exists before any address was confirmed: %+v", name, u)
			}
		}
		if _, err := e.st.GetUserByLogin(e.ctx, "nobody@example.com"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatal("an unknown address got an account")
		}
	})
}

// Two people registered the same username: the first to confirm gets it,
// the second picks another with the same link (which the conflict did not
// spend). A link for an address that got an account meanwhile is dead.
func TestConfirmRegistrationConflicts(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := newEnv(t, dsn(t))
		first := e.signUp(t, e.ctx, "ada", "ada@example.com")
		second := e.signUp(t, e.ctx, "ada", "lovelace@example.com")
		again := e.signUp(t, e.ctx, "ada2", "ada@example.com") // the same address twice

		u, err := e.svc.ConfirmEmail(e.ctx, first, "")
		must(t, err)
		if u.Username != "ada" {
			t.Fatalf("first confirmation got %q", u.Username)
		}
		_, err = e.svc.ConfirmEmail(e.ctx, second, "")
		wantField(t, "username taken since registering", err, "username")
		_, err = e.svc.ConfirmEmail(e.ctx, second, "X!")
		wantField(t, "invalid replacement username", err, "username")
		_, err = e.svc.ConfirmEmail(e.ctx, second, "ada")
		wantField(t, "replacement username also taken", err, "username")
		u2, err := e.svc.ConfirmEmail(e.ctx, second, " Lovelace ")
		must(t, err)
		if u2.Username != "lovelace" || u2.Email != "lovelace@example.com" {
			t.Fatalf("second confirmation %+v", u2)
		}
		// The address's other registration died with the first account.
		_, err = e.svc.ConfirmEmail(e.ctx, again, "")
		wantIs(t, "registration link for an address that has an account", err, ErrInvalidToken)

		// A registration overtaken by another way of getting an account
		// (an admin creates one) tells the owner so.
		late := e.signUp(t, e.ctx, "grace", "grace@example.com")
		e.user(t, "grace-admin-made", "Grace@Example.com", true)
		_, err = e.svc.ConfirmEmail(e.ctx, late, "")
		wantIs(t, "registration overtaken by an account", err, ErrAddressHasAccount)
		_, err = e.svc.ConfirmEmail(e.ctx, late, "")
		wantIs(t, "the overtaken link is spent", err, ErrInvalidToken)
	})
}

// A pending registration's link can be sent again by address; the new
// link replaces the old one.
func TestResendRegistration(t *testing.T) {
	e := sqliteEnv(t)
	old := e.signUp(t, e.ctx, "ada", "ada@example.com")
	must(t, e.svc.ResendVerification(e.ctx, "ada")) // by username: nothing, the name is not held
	e.mail.wantNone(t)
	must(t, e.svc.ResendVerification(e.ctx, " ADA@example.com "))
	tok := linkToken(t, e.mail.only(t, lkmail.KindVerifyEmail, "ada@example.com").Data.Link, "/verify-email")
	_, err := e.svc.ConfirmEmail(e.ctx, old, "")
	wantIs(t, "the link before the resend", err, ErrInvalidToken)
	u, err := e.svc.ConfirmEmail(e.ctx, tok, "")
	must(t, err)
	if u.Username != "ada" || !u.EmailVerified {
		t.Fatalf("confirmed %+v", u)
	}
}

func TestRegisterValidation(t *testing.T) {
	e := sqliteEnv(t)
	e.user(t, "taken", "taken@example.com", true)
	long := strings.Repeat("x", 129)
	tests := []struct {
		name                      string
		username, email, password string
		field                     string // "" = accepted
	}{
		{"ok", "grace", "grace@example.com", goodPW, ""},
		{"username 2 chars", "ab", "ab@example.com", goodPW, ""},
		{"username 39 chars", strings.Repeat("a", 39), "long@example.com", goodPW, ""},
		{"username with . _ -", "a.b_c-d", "abcd@example.com", goodPW, ""},
		{"password exactly 8", "eight", "eight@example.com", "xk3#vq9z", ""},
		{"password exactly 128", "maxlen", "maxlen@example.com", long[:128], ""},
		{"password 128 multibyte runes", "runes", "runes@example.com", strings.Repeat("é", 128), ""},

		{"username 1 char", "a", "a@example.com", goodPW, "username"},
		{"username 40 chars", strings.Repeat("a", 40), "forty@example.com", goodPW, "username"},
		{"username leading dash", "-ada", "x1@example.com", goodPW, "username"},
		{"username leading dot", ".ada", "x2@example.com", goodPW, "username"},
		{"username space", "ada lovelace", "x3@example.com", goodPW, "username"},
		{"username at sign", "ada@home", "x4@example.com", goodPW, "username"},
		{"username non-ascii", "adä", "x5@example.com", goodPW, "username"},
		{"username empty", "", "x6@example.com", goodPW, "username"},
		{"email missing", "x7", "", goodPW, "email"},
		{"email no at", "x8", "not-an-email", goodPW, "email"},
		{"email with display name", "x9", "X <x9@example.com>", goodPW, "email"},
		{"email two ats", "x10", "a@b@example.com", goodPW, "email"},
		{"password empty", "x11", "x11@example.com", "", "password"},
		{"password 7", "x12", "x12@example.com", "xk3#vq9", "password"},
		{"password 7 multibyte runes", "x13", "x13@example.com", strings.Repeat("é", 7), "password"},
		{"password 129", "x14", "x14@example.com", long, "password"},
		{"password common", "x15", "x15@example.com", "password", "password"},
		{"password common digits", "x16", "x16@example.com", "12345678", "password"},
		{"password common any case", "x17", "x17@example.com", "PassWord123", "password"},
		{"password is username", "grace.hopper", "x18@example.com", "Grace.Hopper", "password"},
		{"password is email", "x19", "x19.long@example.com", "X19.Long@Example.com", "password"},
		{"username taken", "taken", "fresh@example.com", goodPW, "username"},
		{"username taken other case", "TAKEN", "fresh2@example.com", goodPW, "username"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.mail.reset()
			err := e.svc.Register(e.ctx, Registration{Username: tc.username, Email: tc.email, Password: tc.password})
			if tc.field == "" {
				must(t, err)
				e.mail.only(t, lkmail.KindWelcome, tc.email)
				return
			}
			wantField(t, "Register", err, tc.field)
			e.mail.wantNone(t)
			if tc.email != "" {
				if u, err := e.st.GetUserByLogin(e.ctx, tc.email); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("a refused registration stored %+v (%v)", u, err)
				}
			}
		})
	}
}

// Registering with an address that already has an account answers as if
// it worked, stores nothing and tells the owner of the address.
func TestRegisterExistingEmail(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := newEnv(t, dsn(t))
		ada := e.user(t, "ada", "Ada@Example.com", true)

		for _, email := range []string{"Ada@Example.com", "ada@example.com", " ADA@EXAMPLE.COM "} {
			e.mail.reset()
			must(t, e.svc.Register(e.ctx, Registration{Username: "newcomer", Email: email, Password: otherPW}))
			if u, err := e.st.GetUserByLogin(e.ctx, "newcomer"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("Register(%q) created %+v (%v)", email, u, err)
			}
			m := e.mail.only(t, lkmail.KindAccountExists, "Ada@Example.com")
			if m.Data.Link != baseURL+"/forgot-password" || m.Data.Name != "ada" {
				t.Errorf("account-exists data = %+v", m.Data)
			}
		}
		if got := e.get(t, ada.ID); got.PasswordHash != ada.PasswordHash || got.Username != "ada" {
			t.Fatalf("the existing account changed: %+v", got)
		}

		// The other rules still apply, so the answer has the same shape as
		// for a free address.
		e.mail.reset()
		err := e.svc.Register(e.ctx, Registration{Username: "newcomer", Email: "ada@example.com", Password: "password"})
		wantField(t, "common password, existing email", err, "password")
		err = e.svc.Register(e.ctx, Registration{Username: "x", Email: "ada@example.com", Password: otherPW})
		wantField(t, "bad username, existing email", err, "username")
		err = e.svc.Register(e.ctx, Registration{Username: "ada", Email: "ada@example.com", Password: otherPW})
		wantField(t, "taken username, existing email", err, "username")
		err = e.svc.Register(e.ctx, Registration{Username: "newcomer", Email: "ada@example.com", Password: ""})
		wantField(t, "empty password, existing email", err, "password")
		e.mail.wantNone(t)
	})
}

func TestRegistrationDisabled(t *testing.T) {
	e := sqliteEnv(t, func(o *Options) { o.RegistrationDisabled = true })
	err := e.svc.Register(e.ctx, Registration{Username: "ada", Email: "ada@example.com", Password: goodPW})
	wantIs(t, "Register", err, ErrRegistrationDisabled)
	if _, err := e.st.GetUserByLogin(e.ctx, "ada"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("user stored while registration is disabled: %v", err)
	}
	e.mail.wantNone(t)
	// Admins can still create users.
	e.user(t, "admin-made", "made@example.com", true)
}

// ---- email verification ----

func TestConfirmEmail(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		t.Run("single use", func(t *testing.T) {
			e := newEnv(t, dsn(t))
			u, tok := e.register(t, "ada", "ada@example.com")
			got, err := e.svc.ConfirmEmail(e.ctx, tok, "")
			must(t, err)
			if !got.EmailVerified || got.Email != "ada@example.com" || !e.get(t, u.ID).EmailVerified {
				t.Fatalf("not verified: %+v", got)
			}
			_, err = e.svc.ConfirmEmail(e.ctx, tok, "")
			wantIs(t, "second use", err, ErrInvalidToken)
			e.mail.wantNone(t)
		})
		t.Run("expired", func(t *testing.T) {
			e := newEnv(t, dsn(t))
			u, tok := e.register(t, "ada", "ada@example.com")
			e.clock.Advance(24*time.Hour + time.Second)
			_, err := e.svc.ConfirmEmail(e.ctx, tok, "")
			wantIs(t, "expired link", err, ErrInvalidToken)
			if e.get(t, u.ID).EmailVerified {
				t.Fatal("an expired link verified the email")
			}
		})
		t.Run("just before expiry", func(t *testing.T) {
			e := newEnv(t, dsn(t), func(o *Options) { o.VerifyTTL = time.Hour })
			_, tok := e.register(t, "ada", "ada@example.com")
			e.clock.Advance(time.Hour - time.Second)
			_, err := e.svc.ConfirmEmail(e.ctx, tok, "")
			must(t, err)
		})
		t.Run("tokens are typed", func(t *testing.T) {
			e := newEnv(t, dsn(t))
			u, verifyTok := e.register(t, "ada", "ada@example.com")
			resetTok := e.resetToken(t, "ada@example.com")

			_, err := e.svc.ConfirmEmail(e.ctx, resetTok, "")
			wantIs(t, "ConfirmEmail with a reset token", err, ErrInvalidToken)
			_, err = e.svc.ResetPassword(e.ctx, verifyTok, otherPW)
			wantIs(t, "ResetPassword with a verification token", err, ErrInvalidToken)
			wantIs(t, "CheckResetToken with a verification token", e.svc.CheckResetToken(e.ctx, verifyTok), ErrInvalidToken)
			if got := e.get(t, u.ID); got.EmailVerified {
				t.Fatal("a reset token was taken as a verification")
			}

			// Refusing a token for the wrong purpose does not use it up.
			_, err = e.svc.ConfirmEmail(e.ctx, verifyTok, "")
			must(t, err)
			_, err = e.svc.ResetPassword(e.ctx, resetTok, otherPW)
			must(t, err)
		})
		t.Run("garbage", func(t *testing.T) {
			e := newEnv(t, dsn(t))
			for _, tok := range []string{"", "nope", strings.Repeat("a", 500)} {
				_, err := e.svc.ConfirmEmail(e.ctx, tok, "")
				wantIs(t, fmt.Sprintf("ConfirmEmail(%.10q)", tok), err, ErrInvalidToken)
			}
		})
		t.Run("suspended user", func(t *testing.T) {
			e := newEnv(t, dsn(t))
			u, tok := e.register(t, "ada", "ada@example.com")
			must(t, e.st.SetUserStatus(e.ctx, u.ID, storage.UserSuspended))
			_, err := e.svc.ConfirmEmail(e.ctx, tok, "")
			wantIs(t, "ConfirmEmail for a suspended user", err, ErrInvalidToken)
		})
	})
}

func TestResendVerification(t *testing.T) {
	e := sqliteEnv(t)
	u, first := e.register(t, "ada", "ada@example.com")
	e.user(t, "grace", "grace@example.com", true)
	sus := e.user(t, "sus", "sus@example.com", false)
	must(t, e.st.SetUserStatus(e.ctx, sus.ID, storage.UserSuspended))

	for _, login := range []string{"nobody", "nobody@example.com", "", "grace", "grace@example.com", "sus", "sus@example.com"} {
		must(t, e.svc.ResendVerification(e.ctx, login))
		e.mail.wantNone(t)
	}

	// By username (in any case, as at sign-in) and by email (any case):
	// each sends a new link and the previous one stops working.
	prev := first
	for _, login := range []string{"ada", " Ada ", "ADA@example.com"} {
		e.mail.reset()
		must(t, e.svc.ResendVerification(e.ctx, login))
		m := e.mail.only(t, lkmail.KindVerifyEmail, "ada@example.com")
		if m.Data.ExpiresIn != 24*time.Hour {
			t.Errorf("ExpiresIn = %v", m.Data.ExpiresIn)
		}
		tok := linkToken(t, m.Data.Link, "/verify-email")
		_, err := e.svc.ConfirmEmail(e.ctx, prev, "")
		wantIs(t, fmt.Sprintf("link before ResendVerification(%q)", login), err, ErrInvalidToken)
		prev = tok
	}
	e.mail.reset()
	got, err := e.svc.ConfirmEmail(e.ctx, prev, "")
	must(t, err)
	if got.ID != u.ID || !got.EmailVerified {
		t.Fatalf("ConfirmEmail = %+v", got)
	}
	// Verified now: nothing more to send.
	must(t, e.svc.ResendVerification(e.ctx, "ada"))
	e.mail.wantNone(t)
}

// ---- password reset ----

func TestForgotPassword(t *testing.T) {
	e := sqliteEnv(t)
	ada := e.user(t, "ada", "Ada@Example.com", false)
	sus := e.user(t, "sus", "sus@example.com", true)
	must(t, e.st.SetUserStatus(e.ctx, sus.ID, storage.UserSuspended))
	del := e.user(t, "del", "del@example.com", true)
	must(t, e.svc.DeleteAccount(e.ctx, del.ID, goodPW))
	e.mail.reset()

	for _, email := range []string{"nobody@example.com", "", "sus@example.com", "del@example.com"} {
		must(t, e.svc.ForgotPassword(e.ctx, email))
		e.mail.wantNone(t)
	}

	must(t, e.svc.ForgotPassword(e.ctx, " ada@example.COM "))
	m := e.mail.only(t, lkmail.KindPasswordReset, "Ada@Example.com")
	if m.Data.ExpiresIn != time.Hour || m.Data.Name != "ada" {
		t.Errorf("reset data = %+v, want ExpiresIn 1h, Name ada", m.Data)
	}
	first := linkToken(t, m.Data.Link, "/reset-password")
	second := e.resetToken(t, "ada@example.com")
	if first == second {
		t.Fatal("two requests gave the same token")
	}
	wantIs(t, "first link after a second request", e.svc.CheckResetToken(e.ctx, first), ErrInvalidToken)
	_, err := e.svc.ResetPassword(e.ctx, first, otherPW)
	wantIs(t, "ResetPassword with the first link", err, ErrInvalidToken)
	_, err = e.svc.ResetPassword(e.ctx, second, otherPW)
	must(t, err)
	if _, err := e.svc.Authenticate(e.ctx, "ada", otherPW); err != nil {
		t.Fatalf("Authenticate after reset: %v", err)
	}
	if !e.get(t, ada.ID).EmailVerified {
		t.Error("following the reset link did not verify the email")
	}
}

func TestCheckResetToken(t *testing.T) {
	e := sqliteEnv(t)
	e.user(t, "ada", "ada@example.com", true)
	tok := e.resetToken(t, "ada@example.com")
	for i := range 3 {
		if err := e.svc.CheckResetToken(e.ctx, tok); err != nil {
			t.Fatalf("CheckResetToken #%d: %v", i+1, err)
		}
	}
	_, err := e.svc.ResetPassword(e.ctx, tok, otherPW)
	must(t, err)
	wantIs(t, "CheckResetToken after use", e.svc.CheckResetToken(e.ctx, tok), ErrInvalidToken)

	tok = e.resetToken(t, "ada@example.com")
	e.clock.Advance(time.Hour + time.Second)
	wantIs(t, "CheckResetToken expired", e.svc.CheckResetToken(e.ctx, tok), ErrInvalidToken)

	for _, bad := range []string{"", "nope", strings.Repeat("a", 129)} {
		wantIs(t, fmt.Sprintf("CheckResetToken(%.10q)", bad), e.svc.CheckResetToken(e.ctx, bad), ErrInvalidToken)
	}
}

func TestResetPassword(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := newEnv(t, dsn(t))
		u := e.user(t, "ada", "ada@example.com", false)
		bob := e.user(t, "bob", "bob@example.com", true)
		c := e.client(t, "App")

		// Two browser sessions and OAuth tokens for ada, one of each for bob.
		cookie1, _, err := e.svc.StartSession(e.ctx, u, SessionMeta{AMR: []string{"pwd"}})
		must(t, err)
		_, _, err = e.svc.StartSession(e.ctx, u, SessionMeta{AMR: []string{"pwd"}})
		must(t, err)
		_, _, err = e.svc.StartSession(e.ctx, bob, SessionMeta{})
		must(t, err)
		e.oauthTokens(t, c, u.ID, "ada")
		e.oauthTokens(t, c, bob.ID, "bob")
		// And a lockout.
		for range 3 {
			_, _ = e.svc.Authenticate(e.ctx, "ada", "wrong password")
		}
		if got := e.get(t, u.ID); got.LockedUntil == nil {
			t.Fatal("setup: ada is not locked")
		}

		tok := e.resetToken(t, "ada@example.com")

		// A password the policy refuses is a field error, and the link
		// still works.
		for _, pw := range []string{"", "short", "password", "ada", "ada@example.com", strings.Repeat("x", 129)} {
			_, err := e.svc.ResetPassword(e.ctx, tok, pw)
			wantField(t, fmt.Sprintf("ResetPassword(%.10q)", pw), err, "password")
		}
		must(t, e.svc.CheckResetToken(e.ctx, tok))
		e.mail.wantNone(t)
		if len(e.sessions(t, u.ID)) != 2 || !e.tokensAlive(t, "ada") {
			t.Fatal("a refused reset signed the user out")
		}

		got, err := e.svc.ResetPassword(e.ctx, tok, otherPW)
		must(t, err)
		if got.ID != u.ID {
			t.Fatalf("ResetPassword returned %s, want %s", got.ID, u.ID)
		}
		e.mail.only(t, lkmail.KindPasswordChanged, "ada@example.com")

		stored := e.get(t, u.ID)
		if stored.FailedLogins != 0 || stored.LockedUntil != nil || stored.LastFailedAt != nil {
			t.Errorf("lockout not cleared: failures=%d locked=%v last=%v", stored.FailedLogins, stored.LockedUntil, stored.LastFailedAt)
		}
		if !stored.EmailVerified {
			t.Error("following the reset link did not verify the email")
		}
		if ss := e.sessions(t, u.ID); len(ss) != 0 {
			t.Errorf("%d sessions left after reset", len(ss))
		}
		if _, _, err := e.svc.Session(e.ctx, cookie1); !errors.Is(err, ErrNoSession) {
			t.Errorf("old cookie after reset: %v, want ErrNoSession", err)
		}
		if e.tokensAlive(t, "ada") {
			t.Error("ada's OAuth tokens survived the reset")
		}
		if !e.tokensAlive(t, "bob") || len(e.sessions(t, bob.ID)) != 1 {
			t.Error("resetting ada's password signed bob out")
		}

		if _, err := e.svc.Authenticate(e.ctx, "ada", otherPW); err != nil {
			t.Fatalf("new password: %v", err)
		}
		_, err = e.svc.Authenticate(e.ctx, "ada", goodPW)
		wantIs(t, "old password", err, ErrInvalidCredentials)

		_, err = e.svc.ResetPassword(e.ctx, tok, thirdPW)
		wantIs(t, "second use of the link", err, ErrInvalidToken)

		// An expired link is refused, and changes nothing.
		tok = e.resetToken(t, "ada@example.com")
		e.clock.Advance(time.Hour + time.Second)
		_, err = e.svc.ResetPassword(e.ctx, tok, thirdPW)
		wantIs(t, "expired link", err, ErrInvalidToken)
		if _, err := e.svc.Authenticate(e.ctx, "ada", otherPW); err != nil {
			t.Fatalf("password changed by an expired link: %v", err)
		}

		for _, bad := range []string{"", "nope", strings.Repeat("a", 129)} {
			_, err = e.svc.ResetPassword(e.ctx, bad, thirdPW)
			wantIs(t, fmt.Sprintf("ResetPassword(%.10q)", bad), err, ErrInvalidToken)
		}
	})
}

func TestResetPasswordCustomTTL(t *testing.T) {
	e := sqliteEnv(t, func(o *Options) { o.ResetTTL = 10 * time.Minute })
	e.user(t, "ada", "ada@example.com", true)
	must(t, e.svc.ForgotPassword(e.ctx, "ada@example.com"))
	if m := e.mail.only(t, lkmail.KindPasswordReset, "ada@example.com"); m.Data.ExpiresIn != 10*time.Minute {
		t.Fatalf("ExpiresIn = %v", m.Data.ExpiresIn)
	}
	tok := e.resetToken(t, "ada@example.com")
	e.clock.Advance(10*time.Minute + time.Second)
	_, err := e.svc.ResetPassword(e.ctx, tok, otherPW)
	wantIs(t, "expired link", err, ErrInvalidToken)
}

// ---- sign-in and lockout ----

func TestAuthenticate(t *testing.T) {
	e := sqliteEnv(t)
	ada := e.user(t, "ada", "Ada@Example.com", true)
	sus := e.user(t, "sus", "sus@example.com", true)
	must(t, e.st.SetUserStatus(e.ctx, sus.ID, storage.UserSuspended))
	del := e.user(t, "del", "del@example.com", true)
	must(t, e.svc.DeleteAccount(e.ctx, del.ID, goodPW))
	fed, err := e.svc.CreateUser(e.ctx, NewUser{Username: "fed", Email: "fed@example.com"})
	must(t, err)
	if fed.PasswordHash != "" {
		t.Fatal("setup: passwordless user has a hash")
	}

	tests := []struct {
		name, login, password string
		wantID                string // "" = ErrInvalidCredentials
	}{
		{"username", "ada", goodPW, ada.ID},
		{"username any case, spaces", "  ADA ", goodPW, ada.ID},
		{"email any case", "ada@EXAMPLE.com", goodPW, ada.ID},
		{"wrong password", "ada", otherPW, ""},
		{"password case matters", "ada", strings.ToUpper(goodPW), ""},
		{"unknown user", "nobody", goodPW, ""},
		{"unknown email", "nobody@example.com", goodPW, ""},
		{"empty login", "", goodPW, ""},
		{"empty password", "ada", "", ""},
		{"huge password", "ada", strings.Repeat("x", 600), ""},
		{"suspended, right password", "sus", goodPW, ""},
		{"deleted, right password", "del", goodPW, ""},
		{"passwordless", "fed", "", ""},
		{"passwordless, any password", "fed", goodPW, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Never enough failures to lock: the rule under test is the answer.
			must(t, e.svc.ClearLockout(e.ctx, ada.ID))
			u, err := e.svc.Authenticate(e.ctx, tc.login, tc.password)
			if tc.wantID == "" {
				wantIs(t, "Authenticate", err, ErrInvalidCredentials)
				if u != nil {
					t.Fatalf("Authenticate returned a user with an error: %+v", u)
				}
				return
			}
			must(t, err)
			if u.ID != tc.wantID {
				t.Fatalf("Authenticate = %s, want %s", u.ID, tc.wantID)
			}
		})
	}

	// Failures of a suspended account do not count towards a lockout.
	for range 5 {
		_, _ = e.svc.Authenticate(e.ctx, "sus", otherPW)
	}
	if got := e.get(t, sus.ID); got.FailedLogins != 0 || got.LockedUntil != nil {
		t.Errorf("suspended user: failures=%d locked=%v", got.FailedLogins, got.LockedUntil)
	}
	if n := len(e.mail.of(lkmail.KindAccountLocked)); n != 0 {
		t.Errorf("%d lock notices", n)
	}
}

// Unknown-user sign-ins from many goroutines at once (as the HTTP server
// does) must be safe; run with -race.
func TestAuthenticateConcurrentUnknownUsers(t *testing.T) {
	e := sqliteEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			_, err := e.svc.Authenticate(e.ctx, fmt.Sprint("nobody", i), goodPW)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		wantIs(t, "Authenticate unknown", err, ErrInvalidCredentials)
	}
}

func TestAuthenticateRequireVerifiedEmail(t *testing.T) {
	e := sqliteEnv(t, func(o *Options) { o.RequireVerifiedEmail = true })
	_, tok := e.register(t, "ada", "ada@example.com")

	_, err := e.svc.Authenticate(e.ctx, "ada", otherPW)
	wantIs(t, "unverified, wrong password", err, ErrInvalidCredentials)
	if errors.Is(err, ErrEmailNotVerified) {
		t.Fatal("a wrong password revealed the verification state")
	}
	_, err = e.svc.Authenticate(e.ctx, "ada", goodPW)
	wantIs(t, "unverified, right password", err, ErrEmailNotVerified)
	_, err = e.svc.Authenticate(e.ctx, "nobody", goodPW)
	wantIs(t, "unknown user", err, ErrInvalidCredentials)

	_, err = e.svc.ConfirmEmail(e.ctx, tok, "")
	must(t, err)
	if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); err != nil {
		t.Fatalf("verified: %v", err)
	}
}

// wantLocked fails unless err is a *LockedError until until.
func wantLocked(t *testing.T, what string, err error, until time.Time) {
	t.Helper()
	wantIs(t, what, err, ErrLocked)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("%s: %T is not a *LockedError", what, err)
	}
	if !le.Until.Equal(until) {
		t.Fatalf("%s: locked until %v, want %v", what, le.Until, until)
	}
}

func TestLockout(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		t.Run("locks at threshold", func(t *testing.T) {
			e := newEnv(t, dsn(t))
			u := e.user(t, "ada", "ada@example.com", true)

			for i := 1; i <= 3; i++ {
				_, err := e.svc.Authenticate(e.ctx, "ada", otherPW)
				wantIs(t, fmt.Sprintf("failure %d", i), err, ErrInvalidCredentials)
				if got := e.get(t, u.ID); got.FailedLogins != i {
					t.Fatalf("after failure %d: FailedLogins = %d", i, got.FailedLogins)
				}
			}
			until := e.clock.Now().Add(time.Minute)

			// Locked: even the right password is refused, with the end time.
			_, err := e.svc.Authenticate(e.ctx, "ada", goodPW)
			wantLocked(t, "right password while locked", err, until)
			_, err = e.svc.Authenticate(e.ctx, "ADA@example.com", otherPW)
			wantLocked(t, "wrong password while locked", err, until)
			e.clock.Advance(59 * time.Second)
			_, err = e.svc.Authenticate(e.ctx, "ada", goodPW)
			wantLocked(t, "a second before the end", err, until)

			m := e.mail.only(t, lkmail.KindAccountLocked, "ada@example.com")
			if !m.Data.Until.Equal(until) || m.Data.Link != baseURL+"/forgot-password" {
				t.Errorf("lock notice data = %+v, want Until %v and the forgot-password link", m.Data, until)
			}

			// After the lock the right password works and clears the count.
			e.clock.Advance(time.Second)
			if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); err != nil {
				t.Fatalf("after the lock: %v", err)
			}
			got := e.get(t, u.ID)
			if got.FailedLogins != 0 || got.LockedUntil != nil || got.LastFailedAt != nil {
				t.Fatalf("not cleared: failures=%d locked=%v last=%v", got.FailedLogins, got.LockedUntil, got.LastFailedAt)
			}
			// Counting starts over.
			for range 2 {
				_, _ = e.svc.Authenticate(e.ctx, "ada", otherPW)
			}
			if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); err != nil {
				t.Fatalf("2 failures after a success locked: %v", err)
			}
			if n := len(e.mail.of(lkmail.KindAccountLocked)); n != 1 {
				t.Fatalf("%d lock notices, want 1", n)
			}
		})

		t.Run("progressive", func(t *testing.T) {
			e := newEnv(t, dsn(t))
			u := e.user(t, "ada", "ada@example.com", true)
			for range 3 {
				_, _ = e.svc.Authenticate(e.ctx, "ada", otherPW)
			}
			lock := time.Minute
			for i, want := range []time.Duration{2 * time.Minute, 4 * time.Minute, 4 * time.Minute, 4 * time.Minute} {
				e.clock.Advance(lock)
				_, err := e.svc.Authenticate(e.ctx, "ada", otherPW)
				wantIs(t, "failure after the lock", err, ErrInvalidCredentials)
				until := e.clock.Now().Add(want)
				_, err = e.svc.Authenticate(e.ctx, "ada", goodPW)
				wantLocked(t, fmt.Sprintf("failure %d", 4+i), err, until)
				if got := e.get(t, u.ID); got.FailedLogins != 4+i {
					t.Fatalf("FailedLogins = %d, want %d", got.FailedLogins, 4+i)
				}
				lock = want
			}
			if n := len(e.mail.of(lkmail.KindAccountLocked)); n != 1 {
				t.Fatalf("%d lock notices, want exactly 1", n)
			}
			e.clock.Advance(lock)
			if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); err != nil {
				t.Fatalf("after the last lock: %v", err)
			}
		})

		t.Run("old failures are forgotten", func(t *testing.T) {
			e := newEnv(t, dsn(t))
			u := e.user(t, "ada", "ada@example.com", true)
			for range 2 {
				_, _ = e.svc.Authenticate(e.ctx, "ada", otherPW)
			}
			e.clock.Advance(24*time.Hour + time.Second)
			for range 2 {
				_, err := e.svc.Authenticate(e.ctx, "ada", otherPW)
				wantIs(t, "failure a day later", err, ErrInvalidCredentials)
			}
			if got := e.get(t, u.ID); got.FailedLogins != 2 || got.LockedUntil != nil {
				t.Fatalf("failures=%d locked=%v, want 2 and unlocked", got.FailedLogins, got.LockedUntil)
			}
			if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); err != nil {
				t.Fatalf("4 failures across a day locked the account: %v", err)
			}
			e.mail.wantNone(t)
		})

		t.Run("recent failures count", func(t *testing.T) {
			e := newEnv(t, dsn(t))
			e.user(t, "ada", "ada@example.com", true)
			for range 2 {
				_, _ = e.svc.Authenticate(e.ctx, "ada", otherPW)
			}
			e.clock.Advance(23 * time.Hour)
			_, _ = e.svc.Authenticate(e.ctx, "ada", otherPW)
			_, err := e.svc.Authenticate(e.ctx, "ada", goodPW)
			wantLocked(t, "third failure within a day", err, e.clock.Now().Add(time.Minute))
		})
	})
}

func TestLockoutDisabled(t *testing.T) {
	e := sqliteEnv(t, func(o *Options) { o.Lockout = LockoutPolicy{Threshold: -1} })
	u := e.user(t, "ada", "ada@example.com", true)
	for range 10 {
		_, err := e.svc.Authenticate(e.ctx, "ada", otherPW)
		wantIs(t, "failure", err, ErrInvalidCredentials)
	}
	if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); err != nil {
		t.Fatalf("lockout disabled, yet: %v", err)
	}
	if got := e.get(t, u.ID); got.LockedUntil != nil {
		t.Fatalf("locked until %v", got.LockedUntil)
	}
	e.mail.wantNone(t)
}

func TestLockoutDefaults(t *testing.T) {
	e := sqliteEnv(t, func(o *Options) { o.Lockout = LockoutPolicy{} })
	want := LockoutPolicy{Threshold: 5, Base: time.Minute, Max: time.Hour}
	if got := e.svc.opts.Lockout; got != want {
		t.Fatalf("default policy = %+v, want %+v", got, want)
	}
	e.user(t, "ada", "ada@example.com", true)
	for range 4 {
		_, _ = e.svc.Authenticate(e.ctx, "ada", otherPW)
	}
	if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); err != nil {
		t.Fatalf("4 failures locked with the default threshold 5: %v", err)
	}
}

func TestLockFor(t *testing.T) {
	p := LockoutPolicy{Threshold: 3, Base: time.Minute, Max: 4 * time.Minute}
	tests := []struct {
		n    int
		want time.Duration
	}{
		{0, 0}, {1, 0}, {2, 0},
		{3, time.Minute}, {4, 2 * time.Minute}, {5, 4 * time.Minute}, {6, 4 * time.Minute}, {1000, 4 * time.Minute},
	}
	for _, tc := range tests {
		if got := p.lockFor(tc.n); got != tc.want {
			t.Errorf("lockFor(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	// Max need not be a power-of-two multiple of Base.
	p = LockoutPolicy{Threshold: 1, Base: time.Minute, Max: 3 * time.Minute}
	for n, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 3 * time.Minute, 50: 3 * time.Minute} {
		if got := p.lockFor(n); got != want {
			t.Errorf("Max 3m: lockFor(%d) = %v, want %v", n, got, want)
		}
	}
	if got := (LockoutPolicy{Threshold: -1, Base: time.Minute, Max: time.Hour}).lockFor(100); got != 0 {
		t.Errorf("disabled policy locks for %v", got)
	}
}

func TestClearLockout(t *testing.T) {
	e := sqliteEnv(t)
	u := e.user(t, "ada", "ada@example.com", true)
	for range 3 {
		_, _ = e.svc.Authenticate(e.ctx, "ada", otherPW)
	}
	_, err := e.svc.Authenticate(e.ctx, "ada", goodPW)
	wantIs(t, "locked", err, ErrLocked)

	must(t, e.svc.ClearLockout(e.ctx, u.ID))
	got := e.get(t, u.ID)
	if got.FailedLogins != 0 || got.LockedUntil != nil || got.LastFailedAt != nil {
		t.Fatalf("not cleared: failures=%d locked=%v last=%v", got.FailedLogins, got.LockedUntil, got.LastFailedAt)
	}
	if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); err != nil {
		t.Fatalf("after ClearLockout: %v", err)
	}
	wantIs(t, "ClearLockout of an unknown user", e.svc.ClearLockout(e.ctx, "u_nobody"), storage.ErrNotFound)
}

// ---- signed-in changes ----

func TestChangePassword(t *testing.T) {
	e := sqliteEnv(t)
	u := e.user(t, "ada.lovelace", "ada@example.com", true)
	bob := e.user(t, "bob", "bob@example.com", true)
	c := e.client(t, "App")
	_, keep, err := e.svc.StartSession(e.ctx, u, SessionMeta{})
	must(t, err)
	e.clock.Advance(time.Second)
	otherCookie, _, err := e.svc.StartSession(e.ctx, u, SessionMeta{})
	must(t, err)
	_, _, err = e.svc.StartSession(e.ctx, bob, SessionMeta{})
	must(t, err)
	e.oauthTokens(t, c, u.ID, "ada")
	e.oauthTokens(t, c, bob.ID, "bob")

	tests := []struct {
		name, current, next, field string
	}{
		{"wrong current", otherPW, thirdPW, "current_password"},
		{"empty current", "", thirdPW, "current_password"},
		{"wrong current and bad new", otherPW, "short", "current_password"},
		{"too short", goodPW, "short", "password"},
		{"too long", goodPW, strings.Repeat("x", 129), "password"},
		{"common", goodPW, "iloveyou", "password"},
		{"username", goodPW, "Ada.Lovelace", "password"},
		{"email", goodPW, "Ada@example.com", "password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := e.svc.ChangePassword(e.ctx, u.ID, tc.current, tc.next, keep.ID)
			wantField(t, "ChangePassword", err, tc.field)
		})
	}
	e.mail.wantNone(t)
	if len(e.sessions(t, u.ID)) != 2 || !e.tokensAlive(t, "ada") {
		t.Fatal("a refused change signed the user out")
	}

	must(t, e.svc.ChangePassword(e.ctx, u.ID, goodPW, otherPW, keep.ID))
	e.mail.only(t, lkmail.KindPasswordChanged, "ada@example.com")
	ss := e.sessions(t, u.ID)
	if len(ss) != 1 || ss[0].ID != keep.ID {
		t.Fatalf("sessions after change = %+v, want only %s", ss, keep.ID)
	}
	if _, _, err := e.svc.Session(e.ctx, otherCookie); !errors.Is(err, ErrNoSession) {
		t.Errorf("other session after change: %v", err)
	}
	if e.tokensAlive(t, "ada") {
		t.Error("OAuth tokens survived a password change")
	}
	if !e.tokensAlive(t, "bob") || len(e.sessions(t, bob.ID)) != 1 {
		t.Error("changing ada's password signed bob out")
	}
	if _, err := e.svc.Authenticate(e.ctx, "ada.lovelace", otherPW); err != nil {
		t.Fatalf("new password: %v", err)
	}
	_, err = e.svc.Authenticate(e.ctx, "ada.lovelace", goodPW)
	wantIs(t, "old password", err, ErrInvalidCredentials)

	// keepSessionID "" signs every session out.
	must(t, e.svc.ChangePassword(e.ctx, u.ID, otherPW, thirdPW, ""))
	if ss := e.sessions(t, u.ID); len(ss) != 0 {
		t.Fatalf("%d sessions left", len(ss))
	}
	wantIs(t, "unknown user", e.svc.ChangePassword(e.ctx, "u_nobody", goodPW, otherPW, ""), storage.ErrNotFound)
}

// A passwordless (federated) user can set a first password without a
// current one.
func TestChangePasswordPasswordless(t *testing.T) {
	e := sqliteEnv(t)
	u, err := e.svc.CreateUser(e.ctx, NewUser{Username: "fed", Email: "fed@example.com", EmailVerified: true})
	must(t, err)
	must(t, e.svc.ChangePassword(e.ctx, u.ID, "", goodPW, ""))
	if _, err := e.svc.Authenticate(e.ctx, "fed", goodPW); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
}

func strp(s string) *string { return &s }

func TestUpdateProfile(t *testing.T) {
	e := sqliteEnv(t)
	e.user(t, "taken", "taken@example.com", true)
	u := e.user(t, "ada", "ada@example.com", true)
	base := ProfileUpdate{DisplayName: strp("Ada"), PictureURL: strp("https://img.example/a.png"), Locale: strp("en")}
	_, err := e.svc.UpdateProfile(e.ctx, u.ID, base)
	must(t, err)

	tests := []struct {
		name  string
		p     ProfileUpdate
		field string                          // "" = accepted
		check func(*testing.T, *storage.User) // on success
	}{
		{"username normalized", ProfileUpdate{Username: strp(" Ada.L ")}, "", func(t *testing.T, u *storage.User) {
			if u.Username != "ada.l" {
				t.Errorf("username %q", u.Username)
			}
		}},
		{"username pattern", ProfileUpdate{Username: strp("a")}, "username", nil},
		{"username bad char", ProfileUpdate{Username: strp("ada!")}, "username", nil},
		{"username empty", ProfileUpdate{Username: strp("")}, "username", nil},
		{"username taken", ProfileUpdate{Username: strp("taken")}, "username", nil},
		{"username taken other case", ProfileUpdate{Username: strp("Taken")}, "username", nil},
		{"display name 100 runes", ProfileUpdate{DisplayName: strp(strings.Repeat("é", 100))}, "", func(t *testing.T, u *storage.User) {
			if u.DisplayName != strings.Repeat("é", 100) {
				t.Errorf("display name %q", u.DisplayName)
			}
		}},
		{"display name 101 runes", ProfileUpdate{DisplayName: strp(strings.Repeat("é", 101))}, "display_name", nil},
		{"display name trimmed", ProfileUpdate{DisplayName: strp("  Ada Lovelace  ")}, "", func(t *testing.T, u *storage.User) {
			if u.DisplayName != "Ada Lovelace" {
				t.Errorf("display name %q", u.DisplayName)
			}
		}},
		{"picture http", ProfileUpdate{PictureURL: strp("http://img.example/a.png")}, "picture_url", nil},
		{"picture javascript", ProfileUpdate{PictureURL: strp("javascript:alert(1)")}, "picture_url", nil},
		{"picture no host", ProfileUpdate{PictureURL: strp("https:///a.png")}, "picture_url", nil},
		{"picture relative", ProfileUpdate{PictureURL: strp("/a.png")}, "picture_url", nil},
		{"picture too long", ProfileUpdate{PictureURL: strp("https://img.example/" + strings.Repeat("a", 2000))}, "picture_url", nil},
		{"picture https", ProfileUpdate{PictureURL: strp("https://img.example/b.png")}, "", func(t *testing.T, u *storage.User) {
			if u.PictureURL != "https://img.example/b.png" {
				t.Errorf("picture %q", u.PictureURL)
			}
		}},
		{"picture cleared", ProfileUpdate{PictureURL: strp("")}, "", func(t *testing.T, u *storage.User) {
			if u.PictureURL != "" {
				t.Errorf("picture %q", u.PictureURL)
			}
		}},
		{"locale normalized", ProfileUpdate{Locale: strp("en-gb")}, "", func(t *testing.T, u *storage.User) {
			if u.Locale != "en-GB" {
				t.Errorf("locale %q, want en-GB", u.Locale)
			}
		}},
		{"locale invalid", ProfileUpdate{Locale: strp("not a locale!")}, "locale", nil},
		{"locale cleared", ProfileUpdate{Locale: strp("")}, "", func(t *testing.T, u *storage.User) {
			if u.Locale != "" {
				t.Errorf("locale %q", u.Locale)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Start every case from the same profile.
			cur := e.get(t, u.ID)
			cur.Username, cur.DisplayName, cur.PictureURL, cur.Locale = "ada", "Ada", "https://img.example/a.png", "en"
			must(t, e.st.UpdateUser(e.ctx, cur))
			before := e.get(t, u.ID)

			got, err := e.svc.UpdateProfile(e.ctx, u.ID, tc.p)
			after := e.get(t, u.ID)
			if tc.field != "" {
				wantField(t, "UpdateProfile", err, tc.field)
				if !reflect.DeepEqual(after, before) {
					t.Fatalf("a refused update changed the user:\n%+v\n%+v", before, after)
				}
				return
			}
			must(t, err)
			tc.check(t, got)
			tc.check(t, after)
			// Fields left nil are untouched.
			if tc.p.Username == nil && after.Username != before.Username ||
				tc.p.DisplayName == nil && after.DisplayName != before.DisplayName ||
				tc.p.PictureURL == nil && after.PictureURL != before.PictureURL ||
				tc.p.Locale == nil && after.Locale != before.Locale {
				t.Fatalf("nil fields changed:\n%+v\n%+v", before, after)
			}
			if after.Email != before.Email || after.PasswordHash != before.PasswordHash || after.Status != before.Status {
				t.Fatal("UpdateProfile changed fields it does not own")
			}
		})
	}

	// An empty update changes nothing.
	before := e.get(t, u.ID)
	_, err = e.svc.UpdateProfile(e.ctx, u.ID, ProfileUpdate{})
	must(t, err)
	after := e.get(t, u.ID)
	if before.Username != after.Username || before.DisplayName != after.DisplayName ||
		before.PictureURL != after.PictureURL || before.Locale != after.Locale {
		t.Fatalf("empty update changed the profile:\n%+v\n%+v", before, after)
	}
	_, err = e.svc.UpdateProfile(e.ctx, "u_nobody", base)
	wantIs(t, "unknown user", err, storage.ErrNotFound)
}

func TestChangeEmail(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := newEnv(t, dsn(t))
		u := e.user(t, "ada", "ada@example.com", true)
		e.user(t, "grace", "Grace@Example.com", true)

		for _, tc := range []struct{ name, email string }{
			{"empty", ""},
			{"not an address", "ada"},
			{"display name form", "Ada <ada2@example.com>"},
			{"same address", "ada@example.com"},
			{"same address other case", " ADA@Example.com "},
		} {
			err := e.svc.ChangeEmail(e.ctx, u.ID, tc.email)
			wantField(t, tc.name, err, "email")
		}
		e.mail.wantNone(t)

		// Another account's address: same answer, no change, no link; the
		// owner of the address is told.
		must(t, e.svc.ChangeEmail(e.ctx, u.ID, "grace@example.com"))
		m := e.mail.only(t, lkmail.KindAccountExists, "Grace@Example.com")
		if m.Data.Link != baseURL+"/forgot-password" {
			t.Errorf("account-exists link %q", m.Data.Link)
		}
		if got := e.get(t, u.ID); got.Email != "ada@example.com" {
			t.Fatalf("email changed to %q", got.Email)
		}

		// A free address gets a confirmation link; nothing changes yet.
		e.mail.reset()
		must(t, e.svc.ChangeEmail(e.ctx, u.ID, " Ada.New@example.com "))
		m = e.mail.only(t, lkmail.KindEmailChange, "Ada.New@example.com")
		if m.Data.NewEmail != "Ada.New@example.com" || m.Data.ExpiresIn != 24*time.Hour {
			t.Errorf("email-change data = %+v", m.Data)
		}
		first := linkToken(t, m.Data.Link, "/verify-email")
		if got := e.get(t, u.ID); got.Email != "ada@example.com" || !got.EmailVerified {
			t.Fatalf("email changed before confirmation: %+v", got)
		}

		// A second request replaces the first link.
		e.mail.reset()
		must(t, e.svc.ChangeEmail(e.ctx, u.ID, "ada.new@example.com"))
		tok := linkToken(t, e.mail.only(t, lkmail.KindEmailChange, "ada.new@example.com").Data.Link, "/verify-email")
		_, err := e.svc.ConfirmEmail(e.ctx, first, "")
		wantIs(t, "first change link", err, ErrInvalidToken)
		// A change link is not a reset link.
		_, err = e.svc.ResetPassword(e.ctx, tok, otherPW)
		wantIs(t, "ResetPassword with a change link", err, ErrInvalidToken)

		e.mail.reset()
		got, err := e.svc.ConfirmEmail(e.ctx, tok, "")
		must(t, err)
		if got.Email != "ada.new@example.com" || !got.EmailVerified {
			t.Fatalf("ConfirmEmail = %+v", got)
		}
		if s := e.get(t, u.ID); s.Email != "ada.new@example.com" || !s.EmailVerified {
			t.Fatalf("stored %q verified=%v", s.Email, s.EmailVerified)
		}
		m = e.mail.only(t, lkmail.KindEmailChangedNotice, "ada@example.com")
		if m.Data.NewEmail != "ada.new@example.com" {
			t.Errorf("notice data = %+v", m.Data)
		}
		_, err = e.svc.ConfirmEmail(e.ctx, tok, "")
		wantIs(t, "second use of the change link", err, ErrInvalidToken)

		// Sign-in follows the address.
		if _, err := e.svc.Authenticate(e.ctx, "ada.new@example.com", goodPW); err != nil {
			t.Fatalf("sign-in with the new address: %v", err)
		}
		_, err = e.svc.Authenticate(e.ctx, "ada@example.com", goodPW)
		wantIs(t, "sign-in with the old address", err, ErrInvalidCredentials)
	})
}

// A change link whose address was taken by someone else in the meantime
// is refused with a field error and changes nothing.
func TestChangeEmailAddressTakenMeanwhile(t *testing.T) {
	e := sqliteEnv(t)
	u := e.user(t, "ada", "ada@example.com", true)
	must(t, e.svc.ChangeEmail(e.ctx, u.ID, "shared@example.com"))
	tok := linkToken(t, e.mail.only(t, lkmail.KindEmailChange, "shared@example.com").Data.Link, "/verify-email")
	e.user(t, "grace", "Shared@Example.com", true)
	e.mail.reset()

	_, err := e.svc.ConfirmEmail(e.ctx, tok, "")
	wantField(t, "ConfirmEmail", err, "email")
	if got := e.get(t, u.ID); got.Email != "ada@example.com" {
		t.Fatalf("email is %q", got.Email)
	}
	e.mail.wantNone(t)
}

// A verification link for the old address stops working once the address
// changed.
func TestVerifyLinkForOldAddress(t *testing.T) {
	e := sqliteEnv(t)
	u, verifyTok := e.register(t, "ada", "ada@example.com")
	must(t, e.svc.ChangeEmail(e.ctx, u.ID, "ada.new@example.com"))
	changeTok := linkToken(t, e.mail.only(t, lkmail.KindEmailChange, "ada.new@example.com").Data.Link, "/verify-email")
	_, err := e.svc.ConfirmEmail(e.ctx, changeTok, "")
	must(t, err)
	_, err = e.svc.ConfirmEmail(e.ctx, verifyTok, "")
	wantIs(t, "verification link for the old address", err, ErrInvalidToken)
}

// ---- sessions and apps ----

func TestSessions(t *testing.T) {
	e := sqliteEnv(t)
	u := e.user(t, "ada", "ada@example.com", true)
	bob := e.user(t, "bob", "bob@example.com", true)
	_, s1, err := e.svc.StartSession(e.ctx, u, SessionMeta{AMR: []string{"pwd"}, IP: "192.0.2.1", UserAgent: "Firefox"})
	must(t, err)
	e.clock.Advance(time.Second)
	_, s2, err := e.svc.StartSession(e.ctx, u, SessionMeta{AMR: []string{"pwd"}, IP: "192.0.2.2", UserAgent: "Safari"})
	must(t, err)
	_, bs, err := e.svc.StartSession(e.ctx, bob, SessionMeta{})
	must(t, err)

	list, err := e.svc.ListSessions(e.ctx, u.ID, s1.ID)
	must(t, err)
	if len(list) != 2 || list[0].ID != s2.ID || list[1].ID != s1.ID {
		t.Fatalf("ListSessions = %+v, want %s then %s", list, s2.ID, s1.ID)
	}
	if list[0].Current || !list[1].Current {
		t.Errorf("current flags = %v, %v; want false, true", list[0].Current, list[1].Current)
	}
	if list[1].IP != "192.0.2.1" || list[1].UserAgent != "Firefox" || !slices.Equal(list[1].AMR, []string{"pwd"}) {
		t.Errorf("session details = %+v", list[1].BrowserSession)
	}
	list, err = e.svc.ListSessions(e.ctx, u.ID, "")
	must(t, err)
	for _, s := range list {
		if s.Current {
			t.Errorf("session %s is current with no current id", s.ID)
		}
	}

	// Another user's session is "not found" and stays.
	wantIs(t, "revoke bob's session as ada", e.svc.RevokeSession(e.ctx, u.ID, bs.ID), storage.ErrNotFound)
	if len(e.sessions(t, bob.ID)) != 1 {
		t.Fatal("ada revoked bob's session")
	}
	wantIs(t, "revoke unknown session", e.svc.RevokeSession(e.ctx, u.ID, "nope"), storage.ErrNotFound)

	must(t, e.svc.RevokeSession(e.ctx, u.ID, s2.ID))
	ss := e.sessions(t, u.ID)
	if len(ss) != 1 || ss[0].ID != s1.ID {
		t.Fatalf("sessions after revoke = %+v", ss)
	}
	wantIs(t, "revoke twice", e.svc.RevokeSession(e.ctx, u.ID, s2.ID), storage.ErrNotFound)
}

func TestConsents(t *testing.T) {
	e := sqliteEnv(t)
	u := e.user(t, "ada", "ada@example.com", true)
	bob := e.user(t, "bob", "bob@example.com", true)
	app := e.client(t, "Photo App")
	other := e.client(t, "Other App")

	must(t, e.svc.GrantConsent(e.ctx, u.ID, app.ID, []string{"openid", "profile"}))
	must(t, e.svc.GrantConsent(e.ctx, u.ID, app.ID, []string{"openid", "email"}))
	must(t, e.svc.GrantConsent(e.ctx, u.ID, other.ID, []string{"openid"}))
	must(t, e.svc.GrantConsent(e.ctx, bob.ID, app.ID, []string{"openid"}))
	e.oauthTokens(t, app, u.ID, "ada-app")
	e.oauthTokens(t, other, u.ID, "ada-other")
	e.oauthTokens(t, app, bob.ID, "bob-app")

	list, err := e.svc.ListConsents(e.ctx, u.ID)
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("ListConsents = %+v, want 2", list)
	}
	byID := map[string]ConsentView{}
	for _, c := range list {
		byID[c.ClientID] = c
	}
	if c := byID[app.ID]; c.ClientName != "Photo App" || !slices.Equal(c.Scopes, []string{"openid", "profile", "email"}) {
		t.Errorf("app consent = %+v, want Photo App with openid profile email", c)
	}
	if c := byID[other.ID]; c.ClientName != "Other App" || c.GrantedAt.IsZero() {
		t.Errorf("other consent = %+v", c)
	}

	must(t, e.svc.RevokeConsent(e.ctx, u.ID, app.ID))
	list, err = e.svc.ListConsents(e.ctx, u.ID)
	must(t, err)
	if len(list) != 1 || list[0].ClientID != other.ID {
		t.Fatalf("after revoke: %+v", list)
	}
	if scopes, err := e.svc.Consent(e.ctx, u.ID, app.ID); err != nil || scopes != nil {
		t.Fatalf("Consent after revoke = %v, %v", scopes, err)
	}
	if e.tokensAlive(t, "ada-app") {
		t.Error("the revoked app's tokens survived")
	}
	if !e.tokensAlive(t, "ada-other") || !e.tokensAlive(t, "bob-app") {
		t.Error("revoking one app revoked other tokens")
	}
	if l, _ := e.svc.ListConsents(e.ctx, bob.ID); len(l) != 1 {
		t.Errorf("bob's consents = %+v", l)
	}
	wantIs(t, "revoke twice", e.svc.RevokeConsent(e.ctx, u.ID, app.ID), storage.ErrNotFound)
}

// ---- deletion ----

func TestDeleteAccount(t *testing.T) {
	e := sqliteEnv(t)
	u := e.user(t, "ada", "ada@example.com", true)
	c := e.client(t, "App")
	cookie, _, err := e.svc.StartSession(e.ctx, u, SessionMeta{})
	must(t, err)
	_, _, err = e.svc.StartSession(e.ctx, u, SessionMeta{})
	must(t, err)
	e.oauthTokens(t, c, u.ID, "ada")
	resetTok := e.resetToken(t, "ada@example.com")

	for _, pw := range []string{"", otherPW} {
		wantField(t, fmt.Sprintf("DeleteAccount(%q)", pw), e.svc.DeleteAccount(e.ctx, u.ID, pw), "password")
	}
	if got := e.get(t, u.ID); got.Status != storage.UserActive || got.DeletedAt != nil {
		t.Fatalf("a refused deletion changed the user: %+v", got)
	}
	e.mail.wantNone(t)

	e.clock.Advance(time.Minute)
	must(t, e.svc.DeleteAccount(e.ctx, u.ID, goodPW))
	got := e.get(t, u.ID)
	if got.Status != storage.UserDeleted || got.DeletedAt == nil || !got.DeletedAt.Equal(e.clock.Now()) {
		t.Fatalf("after delete: status=%s deleted_at=%v, want deleted at %v", got.Status, got.DeletedAt, e.clock.Now())
	}
	e.mail.only(t, lkmail.KindAccountDeleted, "ada@example.com")
	if ss := e.sessions(t, u.ID); len(ss) != 0 {
		t.Errorf("%d sessions left", len(ss))
	}
	if _, _, err := e.svc.Session(e.ctx, cookie); !errors.Is(err, ErrNoSession) {
		t.Errorf("cookie after delete: %v", err)
	}
	if e.tokensAlive(t, "ada") {
		t.Error("OAuth tokens survived deletion")
	}
	_, err = e.svc.Authenticate(e.ctx, "ada", goodPW)
	wantIs(t, "sign-in after delete", err, ErrInvalidCredentials)
	_, err = e.svc.ResetPassword(e.ctx, resetTok, otherPW)
	wantIs(t, "reset link from before the deletion", err, ErrInvalidToken)
	_, err = e.svc.GetUser(e.ctx, u.ID)
	wantIs(t, "GetUser of a deleted user", err, storage.ErrNotFound)
	wantIs(t, "delete twice", e.svc.DeleteAccount(e.ctx, u.ID, goodPW), storage.ErrNotFound)
}

// ---- no mailer ----

// With no Mailer the flows still work; they just send nothing.
func TestNoMailer(t *testing.T) {
	e := sqliteEnv(t, func(o *Options) { o.Mailer = nil })
	must(t, e.svc.Register(e.ctx, Registration{Username: "new", Email: "new@example.com", Password: goodPW}))
	e.user(t, "ada", "ada@example.com", true)
	must(t, e.svc.ForgotPassword(e.ctx, "ada@example.com"))
	for range 3 {
		_, _ = e.svc.Authenticate(e.ctx, "ada", otherPW)
	}
	_, err := e.svc.Authenticate(e.ctx, "ada", goodPW)
	wantIs(t, "locked", err, ErrLocked)
	e.mail.wantNone(t)
}

// A reset link sent to the old address dies when the email changes: it
// could otherwise still take over the account.
func TestEmailChangeKillsOldResetLinks(t *testing.T) {
	e := sqliteEnv(t)
	u := e.user(t, "ada", "ada@example.com", true)
	reset := e.resetToken(t, "ada@example.com")
	must(t, e.svc.ChangeEmail(e.ctx, u.ID, "ada.new@example.com"))
	change := linkToken(t, e.mail.only(t, lkmail.KindEmailChange, "ada.new@example.com").Data.Link, "/verify-email")
	e.mail.reset()
	if _, err := e.svc.ConfirmEmail(e.ctx, change, ""); err != nil {
		t.Fatal(err)
	}
	e.mail.only(t, lkmail.KindEmailChangedNotice, "ada@example.com")
	_, err := e.svc.ResetPassword(e.ctx, reset, "a brand new password")
	wantIs(t, "old reset link after an email change", err, ErrInvalidToken)
}

// An account's username and address draw on one sign-in budget; a name
// that is no account is its own budget, however it is typed.
func TestSignInLimitKey(t *testing.T) {
	e := sqliteEnv(t)
	ada := e.user(t, "ada", "Ada.L@Example.com", true)
	for _, tc := range []struct{ login, want string }{
		{"ada", AccountLimitKey(ada.ID)},
		{" ADA ", AccountLimitKey(ada.ID)},
		{"ada.l@example.com", AccountLimitKey(ada.ID)},
		{"ADA.L@EXAMPLE.COM", AccountLimitKey(ada.ID)},
		{"nobody", "name:nobody"},
		{" NoBody ", "name:nobody"},
		{"Nobody@Example.com", "name:nobody@example.com"},
	} {
		got, err := e.svc.SignInLimitKey(e.ctx, tc.login)
		must(t, err)
		if got != tc.want {
			t.Errorf("SignInLimitKey(%q) = %q, want %q", tc.login, got, tc.want)
		}
	}
}
