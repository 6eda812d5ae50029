package accounts

import (
	"errors"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/storage"
)

func TestFederatedSignIn(t *testing.T) {
	backends(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := newEnv(t, dsn(t))
		ada := e.user(t, "ada", "ada@example.com", true)
		grace := e.user(t, "grace", "grace@example.com", true)

		// Verified email of an existing account: linked, that user.
		u, err := e.svc.FederatedSignIn(e.ctx, FederatedClaims{Upstream: "google", Subject: "g-ada", Email: "ADA@example.com", EmailVerified: true})
		must(t, err)
		if u.ID != ada.ID {
			t.Fatalf("linked to %s, want %s", u.ID, ada.ID)
		}
		// Next time, the identity signs in (even if the upstream email changed).
		u, err = e.svc.FederatedSignIn(e.ctx, FederatedClaims{Upstream: "google", Subject: "g-ada", Email: "other@example.com", EmailVerified: true})
		must(t, err)
		if u.ID != ada.ID {
			t.Fatal("a linked identity did not sign in its user")
		}

		// Unverified email of an existing account: refused, nothing linked.
		_, err = e.svc.FederatedSignIn(e.ctx, FederatedClaims{Upstream: "google", Subject: "g-x", Email: "grace@example.com", EmailVerified: false})
		if !errors.Is(err, ErrFederationRefused) || !strings.Contains(err.Error(), "not verified") {
			t.Fatalf("unverified email of an existing account: %v", err)
		}
		if ids, _ := e.svc.ListIdentities(e.ctx, grace.ID); len(ids) != 0 {
			t.Fatalf("identities linked to grace: %+v", ids)
		}

		// A new person: passwordless user, unique username from the email.
		u, err = e.svc.FederatedSignIn(e.ctx, FederatedClaims{Upstream: "google", Subject: "g-ada2", Email: "ada@other.example",
			EmailVerified: true, Name: "Ada Two", PictureURL: "https://img.example/a.png"})
		must(t, err)
		if u.ID == ada.ID || u.PasswordHash != "" || !u.EmailVerified || u.DisplayName != "Ada Two" ||
			!strings.HasPrefix(u.Username, "ada-") || u.PictureURL != "https://img.example/a.png" {
			t.Fatalf("federated sign-up = %+v", u)
		}
		// Unverified email, nobody has it: a new user, not verified.
		u, err = e.svc.FederatedSignIn(e.ctx, FederatedClaims{Upstream: "corp", Subject: "c-1", Email: "new@corp.example", Username: "New.Person"})
		must(t, err)
		if u.EmailVerified || u.Username != "new.person" {
			t.Fatalf("unverified sign-up = %+v", u)
		}
		// No email at all: refused.
		_, err = e.svc.FederatedSignIn(e.ctx, FederatedClaims{Upstream: "corp", Subject: "c-2"})
		if !errors.Is(err, ErrFederationRefused) {
			t.Fatalf("no email: %v", err)
		}

		// Suspended users are refused, linked or not.
		_, err = e.svc.Suspend(e.ctx, ada.ID, "test")
		must(t, err)
		_, err = e.svc.FederatedSignIn(e.ctx, FederatedClaims{Upstream: "google", Subject: "g-ada"})
		if !errors.Is(err, ErrFederationRefused) {
			t.Fatalf("suspended user: %v", err)
		}

		// Audit: link and federated sign-up recorded.
		evs, err := e.svc.ListAudit(e.ctx, storage.AuditQuery{Actions: []string{"user.identity.", AuditFederatedSignup}})
		must(t, err)
		if len(evs) < 3 {
			t.Fatalf("audit events = %+v", evs)
		}
	})
}

func TestUnlinkIdentity(t *testing.T) {
	e := sqliteEnv(t)
	ada := e.user(t, "ada", "ada@example.com", true)
	_, err := e.svc.FederatedSignIn(e.ctx, FederatedClaims{Upstream: "google", Subject: "g1", Email: "ada@example.com", EmailVerified: true})
	must(t, err)
	fed, err := e.svc.FederatedSignIn(e.ctx, FederatedClaims{Upstream: "google", Subject: "g2", Email: "fed@example.com", EmailVerified: true})
	must(t, err)

	// Someone else's identity looks like none.
	wantIs(t, "unlink another user's identity", e.svc.UnlinkIdentity(e.ctx, fed.ID, "google", "g1"), storage.ErrNotFound)
	// A passwordless user cannot drop their only identity…
	wantIs(t, "unlink the last credential", e.svc.UnlinkIdentity(e.ctx, fed.ID, "google", "g2"), ErrLastCredential)
	// …but can once another is linked.
	must(t, e.st.CreateIdentity(e.ctx, &storage.Identity{UpstreamID: "corp", Subject: "c9", UserID: fed.ID}))
	must(t, e.svc.UnlinkIdentity(e.ctx, fed.ID, "google", "g2"))
	// A user with a password can drop their only identity.
	must(t, e.svc.UnlinkIdentity(e.ctx, ada.ID, "google", "g1"))
	if ids, _ := e.svc.ListIdentities(e.ctx, ada.ID); len(ids) != 0 {
		t.Fatalf("identities left: %+v", ids)
	}
}

func TestUsernameFrom(t *testing.T) {
	for _, tc := range []struct{ preferred, email, want string }{
		{"", "Ada.Lovelace@example.com", "ada.lovelace"},
		{"The Count", "x@example.com", "thecount"},
		{"", "__x@example.com", "user-"},
		{"", strings.Repeat("a", 60) + "@example.com", strings.Repeat("a", 39)},
	} {
		if got := usernameFrom(tc.preferred, tc.email); !strings.HasPrefix(got, tc.want) || !usernamePattern.MatchString(got) {
			t.Errorf("usernameFrom(%q, %q) = %q, want %q…", tc.preferred, tc.email, got, tc.want)
		}
	}
}

// An account whose address was never verified (made by an admin or an
// import; self-service registration creates none before confirmation)
// does not get the upstream sign-in of that address: the local address must be verified
// too before an identity is linked to it.
func TestFederatedSignInRefusesUnverifiedLocalAccount(t *testing.T) {
	e := sqliteEnv(t)
	e.user(t, "squatter", "victim@gmail.example", false)
	_, err := e.svc.FederatedSignIn(e.ctx, FederatedClaims{Upstream: "google", Subject: "g-victim",
		Email: "victim@gmail.example", EmailVerified: true})
	if !errors.Is(err, ErrFederationRefused) {
		t.Fatalf("linked to an unverified local account: %v", err)
	}
	squatter, err := e.st.GetUserByLogin(e.ctx, "squatter")
	must(t, err)
	if ids, _ := e.svc.ListIdentities(e.ctx, squatter.ID); len(ids) != 0 {
		t.Fatalf("identities linked: %+v", ids)
	}
}
