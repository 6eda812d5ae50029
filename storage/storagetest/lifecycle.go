package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// lifecycleTests cover the account-lifecycle methods: profile updates with
// optimistic concurrency, lockout counters, single-use email tokens, and
// the per-user listings the account page shows.
var lifecycleTests = []struct {
	name string
	fn   func(t *testing.T, st storage.Store)
}{
	{"UpdateUser", testUpdateUser},
	{"UpdateUserConflict", testUpdateUserConflict},
	{"LoginFailures", testLoginFailures},
	{"UserTokens", testUserTokens},
	{"UserTokensSingleUse", testUserTokensSingleUse},
	{"ListUserSessionsAndConsents", testListUserSessionsAndConsents},
	{"RevokeUserClientTokens", testRevokeUserClientTokens},
	{"UnicodeEmailCase", testUnicodeEmailCase},
	{"ClaimLoginAttempt", testClaimLoginAttempt},
	{"RevokeClientTokens", testRevokeClientTokens},
	{"Registrations", testRegistrations},
	{"RegistrationRollback", testRegistrationRollback},
}

func testUpdateUser(t *testing.T, st storage.Store) {
	u := mkUser(t, st, "u1")
	mkUser(t, st, "u2")
	old := u.UpdatedAt
	del := now()
	u.Username, u.Email, u.EmailVerified, u.DisplayName = "alice", "Alice@Example.org", true, "Alice"
	u.PictureURL, u.Locale, u.Status, u.DeletedAt = "https://img.example/a.png", "en-GB", storage.UserDeleted, &del
	must(t, st.UpdateUser(bg, u))
	if !u.UpdatedAt.After(old) {
		t.Fatalf("UpdatedAt not advanced: %v → %v", old, u.UpdatedAt)
	}
	got, err := st.GetUser(bg, "u1")
	must(t, err)
	if got.Username != "alice" || got.Email != "Alice@Example.org" || !got.EmailVerified || got.DisplayName != "Alice" ||
		got.PictureURL != u.PictureURL || got.Locale != "en-GB" || got.Status != storage.UserDeleted ||
		got.DeletedAt == nil || !got.DeletedAt.Equal(del) || !got.UpdatedAt.Equal(u.UpdatedAt) {
		t.Fatalf("after UpdateUser: %+v", got)
	}
	// Taking another user's username or email (any case) is a duplicate.
	for _, mut := range []func(*storage.User){
		func(x *storage.User) { x.Username = "u2" },
		func(x *storage.User) { x.Email = "U2@EXAMPLE.COM" },
	} {
		cp := *got
		mut(&cp)
		wantErr(t, "UpdateUser(duplicate)", st.UpdateUser(bg, &cp), storage.ErrDuplicate)
	}
	wantErr(t, "UpdateUser(missing)", st.UpdateUser(bg, &storage.User{ID: "nope", Username: "nope"}), storage.ErrNotFound)
}

// Two writers read the same version; exactly one update wins.
func testUpdateUserConflict(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	a, err := st.GetUser(bg, "u1")
	must(t, err)
	b := *a
	a.DisplayName = "first"
	must(t, st.UpdateUser(bg, a))
	b.DisplayName = "second"
	wantErr(t, "UpdateUser(stale)", st.UpdateUser(bg, &b), storage.ErrConflict)

	// Concurrently: one of n writers with the same version succeeds.
	base, err := st.GetUser(bg, "u1")
	must(t, err)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			u := *base
			u.DisplayName = fmt.Sprint("writer ", i)
			errs[i] = st.UpdateUser(bg, &u)
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, storage.ErrConflict):
		default:
			t.Fatalf("concurrent UpdateUser: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent updates won, want 1", wins)
	}
}

func testLoginFailures(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	at := now()
	for want := 1; want <= 3; want++ {
		n, err := st.RecordLoginFailure(bg, "u1", at)
		must(t, err)
		if n != want {
			t.Fatalf("failure count = %d, want %d", n, want)
		}
	}
	until := now().Add(time.Minute)
	must(t, st.SetUserLockout(bg, "u1", 3, &until))
	got, err := st.GetUser(bg, "u1")
	must(t, err)
	if got.FailedLogins != 3 || got.LockedUntil == nil || !got.LockedUntil.Equal(until) ||
		got.LastFailedAt == nil || !got.LastFailedAt.Equal(at) {
		t.Fatalf("locked: %+v", got)
	}
	must(t, st.SetUserLockout(bg, "u1", 0, nil))
	got, err = st.GetUser(bg, "u1")
	must(t, err)
	if got.FailedLogins != 0 || got.LockedUntil != nil || got.LastFailedAt != nil {
		t.Fatalf("cleared: %+v", got)
	}
	_, err = st.RecordLoginFailure(bg, "nope", at)
	wantErr(t, "RecordLoginFailure(missing)", err, storage.ErrNotFound)
	wantErr(t, "SetUserLockout(missing)", st.SetUserLockout(bg, "nope", 0, nil), storage.ErrNotFound)

	// Concurrent failures all count.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := st.RecordLoginFailure(bg, "u1", at); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err = st.GetUser(bg, "u1")
	must(t, err)
	if got.FailedLogins != 8 {
		t.Fatalf("after 8 concurrent failures: %d", got.FailedLogins)
	}
}

func testUserTokens(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	mk := func(hash string, p storage.TokenPurpose, exp time.Time) {
		t.Helper()
		must(t, st.CreateUserToken(bg, &storage.UserToken{TokenHash: []byte(hash), Purpose: p, UserID: "u1",
			Email: "new@example.com", ExpiresAt: exp}))
	}
	mk("verify", storage.TokenVerifyEmail, later())
	mk("reset", storage.TokenResetPassword, later())
	mk("expired", storage.TokenResetPassword, earlier())
	wantErr(t, "CreateUserToken(duplicate)", st.CreateUserToken(bg, &storage.UserToken{TokenHash: []byte("reset"),
		Purpose: storage.TokenResetPassword, UserID: "u1", ExpiresAt: later()}), storage.ErrDuplicate)

	// A token is never accepted for another purpose, and stays usable
	// for its own.
	_, err := st.ConsumeUserToken(bg, []byte("verify"), storage.TokenResetPassword, now())
	wantErr(t, "Consume(wrong purpose)", err, storage.ErrNotFound)
	got, err := st.ConsumeUserToken(bg, []byte("verify"), storage.TokenVerifyEmail, now())
	must(t, err)
	if got.UserID != "u1" || got.Email != "new@example.com" || got.Purpose != storage.TokenVerifyEmail {
		t.Fatalf("consumed %+v", got)
	}
	_, err = st.ConsumeUserToken(bg, []byte("verify"), storage.TokenVerifyEmail, now())
	wantErr(t, "Consume(used)", err, storage.ErrNotFound)
	_, err = st.ConsumeUserToken(bg, []byte("expired"), storage.TokenResetPassword, now())
	wantErr(t, "Consume(expired)", err, storage.ErrNotFound)

	must(t, st.DeleteUserTokens(bg, "u1", storage.TokenResetPassword))
	_, err = st.ConsumeUserToken(bg, []byte("reset"), storage.TokenResetPassword, now())
	wantErr(t, "Consume(deleted)", err, storage.ErrNotFound)
	must(t, st.DeleteUserTokens(bg, "nobody", ""))
}

// Concurrent uses of one token: exactly one succeeds.
func testUserTokensSingleUse(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	must(t, st.CreateUserToken(bg, &storage.UserToken{TokenHash: []byte("t"), Purpose: storage.TokenResetPassword,
		UserID: "u1", ExpiresAt: later()}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 6 {
		wg.Go(func() {
			_, err := st.ConsumeUserToken(bg, []byte("t"), storage.TokenResetPassword, now())
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case errors.Is(err, storage.ErrNotFound):
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent consumers won, want 1", wins)
	}
}

func testListUserSessionsAndConsents(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	mkUser(t, st, "u2")
	for i, u := range []string{"u1", "u1", "u2"} {
		must(t, st.CreateBrowserSession(bg, &storage.BrowserSession{ID: fmt.Sprint("s", i), TokenHash: []byte(fmt.Sprint("h", i)),
			UserID: u, CreatedAt: now().Add(time.Duration(i) * time.Second), ExpiresAt: later()}))
	}
	must(t, st.CreateBrowserSession(bg, &storage.BrowserSession{ID: "old", TokenHash: []byte("old"), UserID: "u1",
		CreatedAt: earlier().Add(-time.Hour), ExpiresAt: earlier()}))
	ss, err := st.ListUserBrowserSessions(bg, "u1")
	must(t, err)
	if len(ss) != 2 || ss[0].ID != "s1" || ss[1].ID != "s0" {
		t.Fatalf("sessions = %+v", ss)
	}
	ss, err = st.ListUserBrowserSessions(bg, "nobody")
	must(t, err)
	if len(ss) != 0 {
		t.Fatalf("sessions of nobody = %+v", ss)
	}

	mkClient(t, st, "cb")
	mkClient(t, st, "ca")
	must(t, st.UpsertConsent(bg, &storage.Consent{UserID: "u1", ClientID: "cb", Scopes: []string{"openid"}}))
	must(t, st.UpsertConsent(bg, &storage.Consent{UserID: "u1", ClientID: "ca", Scopes: []string{"openid", "email"}}))
	must(t, st.UpsertConsent(bg, &storage.Consent{UserID: "u2", ClientID: "ca", Scopes: []string{"openid"}}))
	cs, err := st.ListUserConsents(bg, "u1")
	must(t, err)
	if len(cs) != 2 || cs[0].ClientID != "ca" || len(cs[0].Scopes) != 2 || cs[1].ClientID != "cb" {
		t.Fatalf("consents = %+v", cs)
	}
}

func testRevokeUserClientTokens(t *testing.T, st storage.Store) {
	c1, c2 := mkClient(t, st, "c1"), mkClient(t, st, "c2")
	type tok struct {
		client *storage.Client
		sub    string
		alive  bool
	}
	toks := []tok{{c1, "alice", false}, {c2, "alice", true}, {c1, "bob", true}}
	for i, tk := range toks {
		r := mkRequest(tk.client, fmt.Sprint("req-", i), tk.sub, later())
		must(t, st.CreateAccessTokenSession(bg, fmt.Sprint("at-", i), r))
		must(t, st.CreateRefreshTokenSession(bg, fmt.Sprint("rt-", i), fmt.Sprint("at-", i), r))
	}
	must(t, st.RevokeUserClientTokens(bg, "alice", "c1"))
	for i, tk := range toks {
		_, errA := st.GetAccessTokenSession(bg, fmt.Sprint("at-", i), sess())
		_, errR := st.GetRefreshTokenSession(bg, fmt.Sprint("rt-", i), sess())
		if tk.alive && (errA != nil || errR != nil) {
			t.Errorf("token %d revoked: %v / %v", i, errA, errR)
		}
		if !tk.alive && (!errors.Is(errA, fosite.ErrNotFound) || !errors.Is(errR, fosite.ErrNotFound)) {
			t.Errorf("token %d not revoked: %v / %v", i, errA, errR)
		}
	}
}

// Emails are unique and found ignoring case beyond ASCII too.
func testUnicodeEmailCase(t *testing.T, st storage.Store) {
	must(t, st.CreateUser(bg, &storage.User{ID: "u1", Username: "unal", Email: "Ünal@example.com"}))
	wantErr(t, "CreateUser(ünal@)", st.CreateUser(bg, &storage.User{ID: "u2", Username: "other", Email: "ünal@example.com"}), storage.ErrDuplicate)
	for _, login := range []string{"ünal@example.com", "ÜNAL@EXAMPLE.COM", "Ünal@example.com"} {
		u, err := st.GetUserByLogin(bg, login)
		if err != nil || u.ID != "u1" {
			t.Errorf("GetUserByLogin(%q) = %v, %v", login, u, err)
		}
	}
	must(t, st.CreateUser(bg, &storage.User{ID: "u3", Username: "x", Email: "x@example.com"}))
	u3, err := st.GetUser(bg, "u3")
	must(t, err)
	u3.Email = "ÜNAL@example.com"
	wantErr(t, "UpdateUser(to ÜNAL@)", st.UpdateUser(bg, u3), storage.ErrDuplicate)
}

func testClaimLoginAttempt(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	lockAt3 := func(n int) time.Duration {
		if n >= 3 {
			return time.Minute
		}
		return 0
	}
	at := now()
	for want := 1; want <= 3; want++ {
		a, err := st.ClaimLoginAttempt(bg, "u1", at, time.Hour, lockAt3)
		must(t, err)
		if a.Locked || a.Failures != want || (want < 3) != (a.LockedUntil == nil) {
			t.Fatalf("attempt %d: %+v", want, a)
		}
	}
	a, err := st.ClaimLoginAttempt(bg, "u1", at.Add(time.Second), time.Hour, lockAt3)
	must(t, err)
	if !a.Locked || a.Failures != 3 || a.LockedUntil == nil || !a.LockedUntil.Equal(at.Add(time.Minute)) {
		t.Fatalf("while locked: %+v", a)
	}
	// After the lock and the memory have passed, counting starts over.
	a, err = st.ClaimLoginAttempt(bg, "u1", at.Add(2*time.Hour), time.Hour, lockAt3)
	must(t, err)
	if a.Locked || a.Failures != 1 || a.LockedUntil != nil {
		t.Fatalf("after the memory: %+v", a)
	}
	_, err = st.ClaimLoginAttempt(bg, "nope", at, time.Hour, lockAt3)
	wantErr(t, "ClaimLoginAttempt(missing)", err, storage.ErrNotFound)

	// Concurrent claims are serialised: exactly three get through.
	mkUser(t, st, "u2")
	var wg sync.WaitGroup
	var mu sync.Mutex
	through := 0
	for range 10 {
		wg.Go(func() {
			a, err := st.ClaimLoginAttempt(bg, "u2", at, time.Hour, lockAt3)
			if err != nil {
				t.Error(err)
				return
			}
			if !a.Locked {
				mu.Lock()
				through++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if through != 3 {
		t.Fatalf("%d concurrent claims got through, want 3", through)
	}
}

func testRevokeClientTokens(t *testing.T, st storage.Store) {
	c1, c2 := mkClient(t, st, "c1"), mkClient(t, st, "c2")
	for i, c := range []*storage.Client{c1, c1, c2} {
		r := mkRequest(c, fmt.Sprint("req-", i), "alice", later())
		must(t, st.CreateAccessTokenSession(bg, fmt.Sprint("at-", i), r))
		must(t, st.CreateRefreshTokenSession(bg, fmt.Sprint("rt-", i), fmt.Sprint("at-", i), r))
	}
	must(t, st.RevokeClientTokens(bg, "c1"))
	for i, alive := range []bool{false, false, true} {
		_, errA := st.GetAccessTokenSession(bg, fmt.Sprint("at-", i), sess())
		_, errR := st.GetRefreshTokenSession(bg, fmt.Sprint("rt-", i), sess())
		if alive != (errA == nil && errR == nil) {
			t.Errorf("token %d: alive=%v, got %v / %v", i, alive, errA, errR)
		}
	}
}

func testRegistrations(t *testing.T, st storage.Store) {
	mk := func(id, hash, email string, created, exp time.Time) {
		t.Helper()
		must(t, st.CreateRegistration(bg, &storage.Registration{ID: id, TokenHash: []byte(hash), Username: "ada",
			Email: email, DisplayName: "Ada", PasswordHash: "$argon2id$x", CreatedAt: created, ExpiresAt: exp}))
	}
	t0 := now()
	mk("r1", "h1", "Ada@Example.com", t0.Add(-2*time.Minute), later())
	mk("r2", "h2", "ada@example.COM", t0.Add(-time.Minute), later())
	mk("r3", "h3", "ada@example.com", t0, earlier()) // expired
	mk("r4", "h4", "bob@example.com", t0, later())
	// The same username may be pending for several addresses: a
	// registration holds nothing until it is confirmed.
	mk("r5", "h5", "eve@example.com", t0, later())
	wantErr(t, "CreateRegistration(duplicate token)", st.CreateRegistration(bg, &storage.Registration{ID: "r6",
		TokenHash: []byte("h1"), Username: "x", Email: "x@example.com", ExpiresAt: later()}), storage.ErrDuplicate)

	latest, err := st.LatestRegistration(bg, "ADA@example.com", now())
	must(t, err)
	if latest.ID != "r2" {
		t.Fatalf("latest registration %s, want r2 (the newest live one)", latest.ID)
	}
	_, err = st.LatestRegistration(bg, "nobody@example.com", now())
	wantErr(t, "LatestRegistration(none)", err, storage.ErrNotFound)

	must(t, st.RenewRegistration(bg, "r2", []byte("h2b"), later()))
	_, err = st.ConsumeRegistration(bg, []byte("h2"), now())
	wantErr(t, "Consume(old token after renewal)", err, storage.ErrNotFound)
	got, err := st.ConsumeRegistration(bg, []byte("h2b"), now())
	must(t, err)
	if got.ID != "r2" || got.Username != "ada" || got.Email != "ada@example.COM" || got.DisplayName != "Ada" ||
		got.PasswordHash != "$argon2id$x" || !got.CreatedAt.Equal(t0.Add(-time.Minute)) {
		t.Fatalf("consumed %+v", got)
	}
	_, err = st.ConsumeRegistration(bg, []byte("h2b"), now())
	wantErr(t, "Consume(used)", err, storage.ErrNotFound)
	_, err = st.ConsumeRegistration(bg, []byte("h3"), now())
	wantErr(t, "Consume(expired)", err, storage.ErrNotFound)
	wantErr(t, "RenewRegistration(gone)", st.RenewRegistration(bg, "r2", []byte("h2c"), later()), storage.ErrNotFound)

	must(t, st.DeleteRegistrations(bg, "ADA@EXAMPLE.COM"))
	_, err = st.ConsumeRegistration(bg, []byte("h1"), now())
	wantErr(t, "Consume(deleted)", err, storage.ErrNotFound)
	_, err = st.ConsumeRegistration(bg, []byte("h4"), now())
	must(t, err) // another address's registration is untouched
}

// Consuming a registration inside a transaction that rolls back keeps
// it: confirming with a username taken meanwhile must not spend the link.
func testRegistrationRollback(t *testing.T, st storage.Store) {
	must(t, st.CreateRegistration(bg, &storage.Registration{ID: "r1", TokenHash: []byte("h1"), Username: "ada",
		Email: "ada@example.com", PasswordHash: "$argon2id$x", ExpiresAt: later()}))
	errRollback := errors.New("roll back")
	err := st.InTx(bg, func(ctx context.Context) error {
		if _, err := st.ConsumeRegistration(ctx, []byte("h1"), now()); err != nil {
			return err
		}
		return errRollback
	})
	wantErr(t, "InTx", err, errRollback)
	if _, err := st.ConsumeRegistration(bg, []byte("h1"), now()); err != nil {
		t.Fatalf("registration lost by a rolled-back transaction: %v", err)
	}
}
