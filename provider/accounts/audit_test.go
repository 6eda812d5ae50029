package accounts

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	lkmail "github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/storage"
)

// Every lifecycle change writes its audit event with the actor from the
// context: the person for self-service, the system for a lockout, an
// admin client for admin actions.
func TestAuditTrail(t *testing.T) {
	e := sqliteEnv(t)
	userCtx := WithActor(e.ctx, Actor{Type: storage.ActorUser, IP: "203.0.113.7", UserAgent: "test"})
	ada, err := e.svc.ConfirmEmail(userCtx, e.signUp(t, userCtx, "ada", "ada@example.com"), "")
	must(t, err)
	for range 3 {
		_, _ = e.svc.Authenticate(userCtx, "ada", "wrong password!")
	}
	adminCtx := WithActor(e.ctx, Actor{Type: storage.ActorClient, ID: "c_admin", IP: "192.0.2.1"})
	_, err = e.svc.Suspend(adminCtx, ada.ID, "")
	wantField(t, "suspend without a reason", err, "reason")
	_, err = e.svc.Suspend(adminCtx, ada.ID, "fraud report #12")
	must(t, err)
	_, err = e.svc.Unsuspend(adminCtx, ada.ID, "cleared")
	must(t, err)

	events, err := e.svc.ListAudit(e.ctx, storage.AuditQuery{TargetID: ada.ID})
	must(t, err)
	type want struct{ action, actorType, actorID, ip, reason string }
	got := make([]want, 0, len(events))
	for _, ev := range events {
		got = append(got, want{ev.Action, ev.ActorType, ev.ActorID, ev.IP, ev.Reason})
	}
	slices.Reverse(got) // oldest first
	expect := []want{
		{AuditUserRegister, storage.ActorUser, ada.ID, "203.0.113.7", ""},
		{AuditUserLock, storage.ActorSystem, "lockout", "203.0.113.7", "3 failed sign-ins"},
		{AuditUserSuspend, storage.ActorClient, "c_admin", "192.0.2.1", "fraud report #12"},
		{AuditUserUnsuspend, storage.ActorClient, "c_admin", "192.0.2.1", "cleared"},
	}
	if !slices.Equal(got, expect) {
		t.Fatalf("audit trail:\n got %+v\nwant %+v", got, expect)
	}
	for _, ev := range events {
		for k, v := range ev.Changes {
			if s, ok := v.(string); ok && (s == goodPW || len(s) > 20 && s[0] == '$') {
				t.Errorf("event %s carries a secret in %s", ev.Action, k)
			}
		}
	}
}

// A failed change leaves no audit event (they share the transaction).
func TestAuditRollsBackWithTheChange(t *testing.T) {
	e := sqliteEnv(t)
	e.user(t, "ada", "ada@example.com", true)
	grace := e.user(t, "grace", "grace@example.com", true)
	before, err := e.svc.ListAudit(e.ctx, storage.AuditQuery{TargetID: grace.ID})
	must(t, err)
	_, err = e.svc.UpdateProfile(e.ctx, grace.ID, ProfileUpdate{Username: strp("ada")})
	wantField(t, "taken username", err, "username")
	after, err := e.svc.ListAudit(e.ctx, storage.AuditQuery{TargetID: grace.ID})
	must(t, err)
	if len(after) != len(before) {
		t.Fatalf("a failed update left %d audit events", len(after)-len(before))
	}
}

// Restore works within the grace period only; hard delete keeps an
// archive and needs a reason.
func TestRestoreGraceAndHardDelete(t *testing.T) {
	e := sqliteEnv(t, func(o *Options) { o.DeleteGrace = 48 * time.Hour })
	u := e.user(t, "ada", "ada@example.com", true)
	_, err := e.svc.SoftDelete(e.ctx, u.ID, "asked by support")
	must(t, err)
	_, err = e.svc.Authenticate(e.ctx, "ada", goodPW)
	wantIs(t, "deleted user signs in", err, ErrInvalidCredentials)
	e.clock.Advance(24 * time.Hour)
	_, err = e.svc.Restore(e.ctx, u.ID, "mistake")
	must(t, err)
	if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); err != nil {
		t.Fatalf("restored user cannot sign in: %v", err)
	}
	_, err = e.svc.SoftDelete(e.ctx, u.ID, "")
	must(t, err)
	e.clock.Advance(49 * time.Hour)
	_, err = e.svc.Restore(e.ctx, u.ID, "too late")
	if !errors.Is(err, ErrGraceOver) {
		t.Fatalf("restore after the grace period: %v", err)
	}
	wantField(t, "hard delete without reason", e.svc.HardDelete(e.ctx, u.ID, " "), "reason")
	must(t, e.svc.HardDelete(WithActor(e.ctx, Actor{Type: storage.ActorClient, ID: "c_admin"}), u.ID, "GDPR erasure"))
	a, err := e.svc.GetUserArchive(e.ctx, u.ID)
	must(t, err)
	if a.Email != "ada@example.com" || a.Username != "ada" || a.Reason != "GDPR erasure" || a.DeletedBy != "client:c_admin" {
		t.Fatalf("archive = %+v", a)
	}
	_, err = e.svc.GetUserAny(e.ctx, u.ID)
	wantIs(t, "hard-deleted user", err, storage.ErrNotFound)
}

// Concurrent admin updates from the same version: one wins.
func TestAdminUpdateUserVersion(t *testing.T) {
	e := sqliteEnv(t)
	u := e.user(t, "ada", "ada@example.com", true)
	name := "Ada L."
	_, err := e.svc.AdminUpdateUser(e.ctx, u.ID, u.UpdatedAt, UserUpdate{ProfileUpdate: ProfileUpdate{DisplayName: &name}})
	must(t, err)
	other := "Ada B."
	_, err = e.svc.AdminUpdateUser(e.ctx, u.ID, u.UpdatedAt, UserUpdate{ProfileUpdate: ProfileUpdate{DisplayName: &other}})
	wantIs(t, "stale version", err, storage.ErrConflict)
	email := "ada.new@example.com"
	got, err := e.svc.AdminUpdateUser(e.ctx, u.ID, time.Time{}, UserUpdate{Email: &email})
	must(t, err)
	if got.EmailVerified {
		t.Fatal("a new address set by an admin counts as verified")
	}
}

// Email links die with the events that should end them: a password reset
// ends a pending email change, and an admin's email change ends the links
// sent to the old address.
func TestEmailLinksDieWithResetAndAdminChange(t *testing.T) {
	e := sqliteEnv(t)
	u := e.user(t, "ada", "ada@example.com", true)
	must(t, e.svc.ChangeEmail(e.ctx, u.ID, "attacker@evil.example"))
	change := linkToken(t, e.mail.only(t, lkmail.KindEmailChange, "attacker@evil.example").Data.Link, "/verify-email")
	reset := e.resetToken(t, "ada@example.com")
	_, err := e.svc.ResetPassword(e.ctx, reset, "a brand new password")
	must(t, err)
	_, err = e.svc.ConfirmEmail(e.ctx, change, "")
	wantIs(t, "email change link after a reset", err, ErrInvalidToken)

	reset = e.resetToken(t, "ada@example.com")
	newEmail := "ada@new.example"
	_, err = e.svc.AdminUpdateUser(e.ctx, u.ID, time.Time{}, UserUpdate{Email: &newEmail})
	must(t, err)
	_, err = e.svc.ResetPassword(e.ctx, reset, "another new password")
	wantIs(t, "reset link to the old address after an admin change", err, ErrInvalidToken)
}

// Concurrent guesses cannot slip past a lock: attempts are counted before
// the password is checked, serialised per user, so no more than the
// threshold of them are checked (review L1).
func TestLockoutHoldsUnderConcurrentGuesses(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := newEnv(t, dsn(t))
		u := e.user(t, "ada", "ada@example.com", true)
		var wg sync.WaitGroup
		var mu sync.Mutex
		outcomes := map[string]int{}
		for i := range 20 {
			wg.Go(func() {
				_, err := e.svc.Authenticate(e.ctx, "ada", fmt.Sprintf("wrong guess %d", i))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, ErrLocked):
					outcomes["locked"]++
				case errors.Is(err, ErrInvalidCredentials):
					outcomes["checked"]++
				default:
					outcomes[fmt.Sprint(err)]++
				}
			})
		}
		wg.Wait()
		if outcomes["checked"] != 3 || outcomes["locked"] != 17 {
			t.Fatalf("outcomes = %v, want 3 checked and 17 refused by the lock", outcomes)
		}
		// The right password after the lock expires works and clears it.
		e.clock.Advance(2 * time.Minute)
		if _, err := e.svc.Authenticate(e.ctx, "ada", goodPW); err != nil {
			t.Fatalf("after the lock: %v", err)
		}
		if got := e.get(t, u.ID); got.FailedLogins != 0 || got.LockedUntil != nil {
			t.Fatalf("lockout state after success: %+v", got)
		}
	})
}
