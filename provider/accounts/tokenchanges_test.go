package accounts

import (
	"errors"
	"testing"

	lkmail "github.com/latchkey/latchkey/internal/mail"
	"github.com/latchkey/latchkey/storage"
)

func TestCheckSettableFields(t *testing.T) {
	for _, tc := range []struct {
		fields []string
		bad    string
	}{
		{[]string{"display_name", "locale", "username", "picture_url", "email", "current_password"}, ""},
		{[]string{"display_name", "email_verified"}, "email_verified"},
		{[]string{"tier"}, "tier"},
		{[]string{"password_hash"}, "password_hash"},
		{[]string{"status", "id"}, "status"},
	} {
		err := CheckSettableFields(tc.fields)
		if tc.bad == "" {
			must(t, err)
			continue
		}
		wantField(t, "CheckSettableFields", err, tc.bad)
	}
}

// A token alone cannot move an account to another address or touch its
// password: the current password is needed (checked after the caller's
// limit), and accounts without one are refused.
func TestTokenChanges(t *testing.T) {
	e := sqliteEnv(t)
	ada := e.user(t, "ada", "ada@example.com", true)
	fed, err := e.svc.CreateUser(e.ctx, NewUser{Username: "fed", Email: "fed@example.com", EmailVerified: true})
	must(t, err)
	checks := 0
	count := func() error { checks++; return nil }
	errLimited := errors.New("limited")
	limited := func() error { return errLimited }
	str := func(s string) *string { return &s }

	// A profile change without a new address checks no password.
	u, moved, err := e.svc.UpdateProfileByToken(e.ctx, ada, TokenProfileChange{ProfileUpdate: ProfileUpdate{DisplayName: str("Ada L.")}, Email: str("ADA@example.com")}, count)
	must(t, err)
	if moved || u.DisplayName != "Ada L." || checks != 0 {
		t.Fatalf("plain change: moved=%v name=%q checks=%d", moved, u.DisplayName, checks)
	}
	_, _, err = e.svc.UpdateProfileByToken(e.ctx, ada, TokenProfileChange{Email: str("new@example.com")}, count)
	wantField(t, "new address without the password", err, "current_password")
	_, _, err = e.svc.UpdateProfileByToken(e.ctx, ada, TokenProfileChange{Email: str("new@example.com"), CurrentPassword: str("wrong one!")}, count)
	wantField(t, "new address with a wrong password", err, "current_password")
	_, _, err = e.svc.UpdateProfileByToken(e.ctx, ada, TokenProfileChange{Email: str("new@example.com"), CurrentPassword: str(goodPW)}, limited)
	wantIs(t, "over the limit", err, errLimited)
	e.mail.reset()
	_, moved, err = e.svc.UpdateProfileByToken(e.ctx, ada, TokenProfileChange{Email: str("new@example.com"), CurrentPassword: str(goodPW)}, count)
	must(t, err)
	if !moved || checks != 3 {
		t.Fatalf("address change: moved=%v checks=%d", moved, checks)
	}
	e.mail.only(t, lkmail.KindEmailChange, "new@example.com")
	_, _, err = e.svc.UpdateProfileByToken(e.ctx, fed, TokenProfileChange{Email: str("x@example.com"), CurrentPassword: str("")}, count)
	wantField(t, "passwordless account, new address", err, "email")

	wantField(t, "passwordless account, password", e.svc.ChangePasswordByToken(e.ctx, fed, "", "a brand new password", "", count), "current_password")
	wantField(t, "weak new password", e.svc.ChangePasswordByToken(e.ctx, ada, goodPW, "password", "", count), "new_password")
	wantIs(t, "password over the limit", e.svc.ChangePasswordByToken(e.ctx, ada, goodPW, "a brand new password", "", limited), errLimited)
	must(t, e.svc.ChangePasswordByToken(e.ctx, ada, goodPW, "a brand new password", "", count))
	wantIs(t, "delete over the limit", e.svc.DeleteAccountByToken(e.ctx, ada, "a brand new password", limited), errLimited)
}

func TestConsentNeeded(t *testing.T) {
	e := sqliteEnv(t)
	ada := e.user(t, "ada", "ada@example.com", true)
	third := e.client(t, "Third")
	first := &storage.Client{ID: "c_first", FirstParty: true}
	must(t, e.svc.GrantConsent(e.ctx, ada.ID, third.ID, []string{"openid", "email"}))
	for _, tc := range []struct {
		client    *storage.Client
		requested []string
		ask       bool
	}{
		{first, []string{"openid", "profile"}, false},
		{third, []string{"openid"}, false},
		{third, []string{"openid", "email"}, false},
		{third, []string{"openid", "profile"}, true},
	} {
		granted, ask, err := e.svc.ConsentNeeded(e.ctx, tc.client, ada.ID, tc.requested)
		must(t, err)
		if ask != tc.ask || (!ask && len(granted) != len(tc.requested)) {
			t.Errorf("ConsentNeeded(%s, %v) = %v, %v", tc.client.ID, tc.requested, granted, ask)
		}
	}
}
