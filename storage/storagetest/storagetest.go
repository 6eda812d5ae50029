// Package storagetest is the conformance suite every storage.Store backend
// must pass. A backend's test calls Run with a constructor that returns a
// fresh, migrated, empty store.
package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/latchkey/latchkey/storage"
)

// Run runs the whole suite; newStore must return a fresh empty store for
// every call (each subtest gets its own), configured as the server runs
// it: a backend that caches (sqlstore's client cache) has its caches on,
// so the suite also checks that a change made through the store is
// visible through it at once.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st storage.Store)
	}{
		{"Users", testUsers},
		{"UserDuplicates", testUserDuplicates},
		{"Clients", testClients},
		{"DeleteClientCascades", testDeleteClientCascades},
		{"SigningKeys", testSigningKeys},
		{"BrowserSessions", testBrowserSessions},
		{"PendingAuthorizations", testPendingAuthorizations},
		{"Consents", testConsents},
		{"AuthorizeCodes", testAuthorizeCodes},
		{"AccessTokens", testAccessTokens},
		{"RefreshTokens", testRefreshTokens},
		{"RevokeFamily", testRevokeFamily},
		{"PKCE", testPKCE},
		{"OpenIDConnectSessions", testOIDC},
		{"PAR", testPAR},
		{"JTI", testJTI},
		{"Transactions", testTransactions},
		{"ConcurrentRotation", testConcurrentRotation},
		{"ConcurrentWrites", testConcurrentWrites},
		{"RevokeUserTokens", testRevokeUserTokens},
		{"PruneExpired", testPruneExpired},
		{"Ping", func(t *testing.T, st storage.Store) {
			if err := st.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	tests = append(tests, lifecycleTests...)
	tests = append(tests, struct {
		name string
		fn   func(t *testing.T, st storage.Store)
	}{"Identities", testIdentities})
	tests = append(tests, directoryTests...)
	tests = append(tests, factorTests...)
	tests = append(tests, groupTests...)
	tests = append(tests, sharedTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

var bg = context.Background()

// now is a timestamp as the store keeps it (UTC, microseconds), so records
// compare equal after a round trip.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func mkUser(t *testing.T, st storage.Store, id string) *storage.User {
	t.Helper()
	u := &storage.User{ID: id, Username: id, Email: id + "@example.com", Status: storage.UserActive}
	must(t, st.CreateUser(bg, u))
	return u
}

func mkClient(t *testing.T, st storage.Store, id string) *storage.Client {
	t.Helper()
	c := &storage.Client{
		ID:            id,
		Name:          "Client " + id,
		SecretHash:    []byte{1, 2, 3, 4},
		RedirectURIs:  []string{"https://" + id + ".example/cb"},
		GrantTypes:    []string{"authorization_code", "refresh_token"},
		ResponseTypes: []string{"code"},
		Scopes:        []string{"openid", "profile", "offline_access"},
		Audience:      []string{"https://api.example"},
	}
	must(t, st.CreateClient(bg, c))
	return c
}

// mkRequest builds what fosite would store: a request with an OIDC
// session whose every token type expires at exp.
func mkRequest(client fosite.Client, requestID, subject string, exp time.Time) *fosite.Request {
	sess := openid.NewDefaultSession()
	sess.Subject = subject
	sess.Username = subject + "-name"
	sess.Claims.Subject = subject
	sess.Claims.Issuer = "https://issuer.example"
	sess.Claims.Nonce = "nonce-" + requestID
	for _, tt := range []fosite.TokenType{fosite.AuthorizeCode, fosite.AccessToken, fosite.RefreshToken, fosite.PushedAuthorizeRequestContext} {
		sess.SetExpiresAt(tt, exp)
	}
	r := fosite.NewRequest()
	r.ID = requestID
	r.RequestedAt = now().Add(-time.Second)
	r.Client = client
	r.RequestedScope = fosite.Arguments{"openid", "profile", "offline_access"}
	r.GrantedScope = fosite.Arguments{"openid", "offline_access"}
	r.RequestedAudience = fosite.Arguments{"https://api.example"}
	r.GrantedAudience = fosite.Arguments{"https://api.example"}
	r.Form = url.Values{"redirect_uri": {"https://x.example/cb"}, "scope": {"openid profile"}, "nonce": {"n&=1"}}
	r.Session = sess
	return r
}

func later() time.Time   { return now().Add(time.Hour) }
func earlier() time.Time { return now().Add(-time.Hour) }

// checkRequest compares a loaded request with the stored one.
func checkRequest(t *testing.T, got fosite.Requester, want *fosite.Request) {
	t.Helper()
	if got == nil {
		t.Fatal("nil request")
	}
	if got.GetID() != want.ID {
		t.Errorf("id = %q, want %q", got.GetID(), want.ID)
	}
	if got.GetClient() == nil || got.GetClient().GetID() != want.Client.GetID() {
		t.Errorf("client = %v, want %s", got.GetClient(), want.Client.GetID())
	}
	if !got.GetRequestedAt().Equal(want.RequestedAt) {
		t.Errorf("requested_at = %v, want %v", got.GetRequestedAt(), want.RequestedAt)
	}
	for _, c := range []struct {
		name      string
		got, want fosite.Arguments
	}{
		{"requested scope", got.GetRequestedScopes(), want.RequestedScope},
		{"granted scope", got.GetGrantedScopes(), want.GrantedScope},
		{"requested audience", got.GetRequestedAudience(), want.RequestedAudience},
		{"granted audience", got.GetGrantedAudience(), want.GrantedAudience},
	} {
		if !reflect.DeepEqual([]string(c.got), []string(c.want)) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if !reflect.DeepEqual(got.GetRequestForm(), want.Form) {
		t.Errorf("form = %v, want %v", got.GetRequestForm(), want.Form)
	}
	gs, ok := got.GetSession().(*openid.DefaultSession)
	if !ok {
		t.Fatalf("session is %T", got.GetSession())
	}
	ws := want.Session.(*openid.DefaultSession)
	if gs.Subject != ws.Subject || gs.Username != ws.Username || gs.Claims.Nonce != ws.Claims.Nonce ||
		gs.Claims.Issuer != ws.Claims.Issuer {
		t.Errorf("session = %+v / %+v, want %+v / %+v", gs, gs.Claims, ws, ws.Claims)
	}
	if !gs.GetExpiresAt(fosite.AccessToken).Equal(ws.GetExpiresAt(fosite.AccessToken)) {
		t.Errorf("session expiry = %v, want %v", gs.GetExpiresAt(fosite.AccessToken), ws.GetExpiresAt(fosite.AccessToken))
	}
}

func sess() fosite.Session { return openid.NewDefaultSession() }

// ---- users ----

func testUsers(t *testing.T, st storage.Store) {
	u := &storage.User{ID: "u1", Username: "alice", Email: "Alice@Example.com", EmailVerified: true,
		DisplayName: "Alice", PasswordHash: "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA", Status: storage.UserActive}
	must(t, st.CreateUser(bg, u))
	if u.CreatedAt.IsZero() || !u.UpdatedAt.Equal(u.CreatedAt) {
		t.Fatalf("CreateUser did not set times: %+v", u)
	}
	got, err := st.GetUser(bg, "u1")
	must(t, err)
	if !reflect.DeepEqual(got, u) {
		t.Fatalf("GetUser = %+v, want %+v", got, u)
	}

	for _, login := range []string{"alice", "Alice@Example.com", "alice@example.com", "ALICE@EXAMPLE.COM"} {
		got, err := st.GetUserByLogin(bg, login)
		if err != nil || got.ID != "u1" {
			t.Errorf("GetUserByLogin(%q) = %v, %v", login, got, err)
		}
	}
	for _, login := range []string{"Alice", "bob", "", "alice@example.org"} {
		_, err := st.GetUserByLogin(bg, login)
		wantErr(t, fmt.Sprintf("GetUserByLogin(%q)", login), err, storage.ErrNotFound)
	}
	_, err = st.GetUser(bg, "nope")
	wantErr(t, "GetUser(missing)", err, storage.ErrNotFound)

	must(t, st.UpdateUserPasswordHash(bg, "u1", "new-hash"))
	must(t, st.SetUserStatus(bg, "u1", storage.UserSuspended))
	got, err = st.GetUser(bg, "u1")
	must(t, err)
	if got.PasswordHash != "new-hash" || got.Status != storage.UserSuspended || got.UpdatedAt.Before(u.UpdatedAt) {
		t.Fatalf("after updates: %+v", got)
	}
	wantErr(t, "UpdateUserPasswordHash(missing)", st.UpdateUserPasswordHash(bg, "nope", "x"), storage.ErrNotFound)
	wantErr(t, "SetUserStatus(missing)", st.SetUserStatus(bg, "nope", storage.UserDeleted), storage.ErrNotFound)

	// Users without an email do not collide with each other.
	must(t, st.CreateUser(bg, &storage.User{ID: "u2", Username: "noemail1"}))
	must(t, st.CreateUser(bg, &storage.User{ID: "u3", Username: "noemail2"}))
	got, err = st.GetUser(bg, "u2")
	must(t, err)
	if got.Status != storage.UserActive {
		t.Errorf("default status = %q", got.Status)
	}
}

func testUserDuplicates(t *testing.T, st storage.Store) {
	must(t, st.CreateUser(bg, &storage.User{ID: "u1", Username: "alice", Email: "alice@example.com"}))
	for _, tc := range []struct {
		name string
		u    storage.User
	}{
		{"id", storage.User{ID: "u1", Username: "other", Email: "other@example.com"}},
		{"username", storage.User{ID: "u2", Username: "alice", Email: "other@example.com"}},
		{"email", storage.User{ID: "u2", Username: "other", Email: "alice@example.com"}},
		{"email case", storage.User{ID: "u2", Username: "other", Email: "ALICE@Example.COM"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.u
			wantErr(t, "CreateUser", st.CreateUser(bg, &u), storage.ErrDuplicate)
		})
	}
}

// ---- clients ----

func testClients(t *testing.T, st storage.Store) {
	c := &storage.Client{
		ID:                     "web",
		Name:                   "Web app",
		SecretHash:             []byte{0xde, 0xad, 0xbe, 0xef},
		RedirectURIs:           []string{"https://a.example/cb", "https://a.example/cb2"},
		PostLogoutRedirectURIs: []string{"https://a.example/bye"},
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		ResponseTypes:          []string{"code"},
		Scopes:                 []string{"openid", "email"},
		Audience:               []string{"https://api.example"},
		FirstParty:             true,
		AccessTokenFormat:      storage.AccessTokenJWT,
		Meta: storage.ClientMeta{
			TokenEndpointAuthMethod: storage.AuthMethodPrivateKey, TokenEndpointAuthSigningAlg: "ES256",
			JWKS: json.RawMessage(`{"keys":[]}`), IDTokenSignedResponseAlg: "EdDSA",
			BackchannelLogoutURI: "https://a.example/bcl", BackchannelLogoutSessionRequired: true,
			SubjectType: "pairwise", DPoPBoundAccessTokens: true,
		},
		SealedSecret: []byte{1, 2, 3},
	}
	must(t, st.CreateClient(bg, c))
	got, err := st.GetClientByID(bg, "web")
	must(t, err)
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("GetClientByID = %+v, want %+v", got, c)
	}
	fc, err := st.GetClient(bg, "web")
	must(t, err)
	if fc.GetID() != "web" || string(fc.GetHashedSecret()) != string(c.SecretHash) || fc.IsPublic() {
		t.Fatalf("GetClient = %+v", fc)
	}

	pub := &storage.Client{ID: "cli", Public: true, GrantTypes: []string{"authorization_code"}}
	must(t, st.CreateClient(bg, pub))
	got, err = st.GetClientByID(bg, "cli")
	must(t, err)
	if !got.Public || got.SecretHash != nil || got.RedirectURIs != nil || got.AccessTokenFormat != storage.AccessTokenOpaque {
		t.Fatalf("public client = %+v", got)
	}

	wantErr(t, "CreateClient(dup)", st.CreateClient(bg, &storage.Client{ID: "web"}), storage.ErrDuplicate)
	_, err = st.GetClientByID(bg, "nope")
	wantErr(t, "GetClientByID(missing)", err, storage.ErrNotFound)
	_, err = st.GetClient(bg, "nope")
	wantErr(t, "GetClient(missing)", err, fosite.ErrNotFound)

	must(t, st.CreateClient(bg, &storage.Client{ID: "a-first"}))
	list, err := st.ListClients(bg)
	must(t, err)
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	if !reflect.DeepEqual(ids, []string{"a-first", "cli", "web"}) {
		t.Fatalf("ListClients order = %v", ids)
	}

	must(t, st.DeleteClient(bg, "cli"))
	_, err = st.GetClientByID(bg, "cli")
	wantErr(t, "GetClientByID(deleted)", err, storage.ErrNotFound)
	wantErr(t, "DeleteClient(missing)", st.DeleteClient(bg, "cli"), storage.ErrNotFound)
}

func testDeleteClientCascades(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "doomed")
	keep := mkClient(t, st, "kept")
	mkUser(t, st, "u1")
	r := mkRequest(c, "req-1", "u1", later())
	k := mkRequest(keep, "req-2", "u1", later())
	must(t, st.CreateAuthorizeCodeSession(bg, "code", r))
	must(t, st.CreateAccessTokenSession(bg, "at", r))
	must(t, st.CreateRefreshTokenSession(bg, "rt", "at", r))
	must(t, st.CreatePKCERequestSession(bg, "code", r))
	must(t, st.CreateOpenIDConnectSession(bg, "rawcode", r))
	must(t, st.CreatePARSession(bg, "urn:par:1", &fosite.AuthorizeRequest{Request: *r}))
	must(t, st.CreateAccessTokenSession(bg, "at-kept", k))
	must(t, st.UpsertConsent(bg, &storage.Consent{UserID: "u1", ClientID: "doomed", Scopes: []string{"openid"}}))
	must(t, st.CreatePendingAuthorization(bg, &storage.PendingAuthorization{ID: "p1", ClientID: "doomed", ExpiresAt: later()}))

	must(t, st.DeleteClient(bg, "doomed"))

	_, err := st.GetClient(bg, "doomed")
	wantErr(t, "GetClient", err, fosite.ErrNotFound)
	_, err = st.GetAuthorizeCodeSession(bg, "code", sess())
	wantErr(t, "code", err, fosite.ErrNotFound)
	_, err = st.GetAccessTokenSession(bg, "at", sess())
	wantErr(t, "access token", err, fosite.ErrNotFound)
	_, err = st.GetRefreshTokenSession(bg, "rt", sess())
	wantErr(t, "refresh token", err, fosite.ErrNotFound)
	_, err = st.GetPKCERequestSession(bg, "code", sess())
	wantErr(t, "pkce", err, fosite.ErrNotFound)
	_, err = st.GetOpenIDConnectSession(bg, "rawcode", fosite.NewAuthorizeRequest())
	wantErr(t, "oidc", err, fosite.ErrNotFound)
	_, err = st.GetPARSession(bg, "urn:par:1")
	wantErr(t, "par", err, fosite.ErrNotFound)
	_, err = st.GetConsent(bg, "u1", "doomed")
	wantErr(t, "consent", err, storage.ErrNotFound)
	_, err = st.GetPendingAuthorization(bg, "p1")
	wantErr(t, "pending", err, storage.ErrNotFound)

	_, err = st.GetAccessTokenSession(bg, "at-kept", sess())
	must(t, err)
}

// ---- signing keys ----

func testSigningKeys(t *testing.T, st storage.Store) {
	t0 := now().Add(-time.Hour)
	retired := t0.Add(30 * time.Minute)
	k1 := &storage.SigningKey{ID: "k1", Algorithm: "RS256", PublicJWK: []byte(`{"kty":"RSA"}`), PrivateKey: []byte{9, 8, 7},
		CreatedAt: t0, ActivatesAt: t0, RetiredAt: &retired}
	k2 := &storage.SigningKey{ID: "k2", Algorithm: "ES256", PublicJWK: []byte(`{"kty":"EC"}`), PrivateKey: []byte{1},
		CreatedAt: t0.Add(time.Minute), ActivatesAt: t0.Add(2 * time.Minute)}
	// Insert newest first: the list must still be oldest first.
	must(t, st.CreateSigningKey(bg, k2))
	must(t, st.CreateSigningKey(bg, k1))
	wantErr(t, "CreateSigningKey(dup)", st.CreateSigningKey(bg, &storage.SigningKey{ID: "k1", Algorithm: "RS256",
		PublicJWK: []byte("{}"), PrivateKey: []byte{1}}), storage.ErrDuplicate)

	list, err := st.ListSigningKeys(bg)
	must(t, err)
	if !reflect.DeepEqual(list, []storage.SigningKey{*k1, *k2}) {
		t.Fatalf("ListSigningKeys = %+v\nwant %+v %+v", list, *k1, *k2)
	}

	exp := now().Add(24 * time.Hour)
	k2.ActivatesAt = now()
	k2.RetiredAt = &exp
	k2.ExpiresAt = &exp
	must(t, st.UpdateSigningKeyTimes(bg, k2))
	k1.RetiredAt = nil
	must(t, st.UpdateSigningKeyTimes(bg, k1))
	list, err = st.ListSigningKeys(bg)
	must(t, err)
	if !reflect.DeepEqual(list, []storage.SigningKey{*k1, *k2}) {
		t.Fatalf("after update = %+v\nwant %+v %+v", list, *k1, *k2)
	}
	wantErr(t, "UpdateSigningKeyTimes(missing)", st.UpdateSigningKeyTimes(bg, &storage.SigningKey{ID: "nope"}), storage.ErrNotFound)

	must(t, st.DeleteSigningKey(bg, "k1"))
	wantErr(t, "DeleteSigningKey(missing)", st.DeleteSigningKey(bg, "k1"), storage.ErrNotFound)
	list, err = st.ListSigningKeys(bg)
	must(t, err)
	if len(list) != 1 || list[0].ID != "k2" {
		t.Fatalf("after delete = %+v", list)
	}
}

// ---- browser sessions ----

func testBrowserSessions(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	mkUser(t, st, "u2")
	s := &storage.BrowserSession{ID: "s1", TokenHash: []byte("hash-1"), UserID: "u1", AuthTime: now().Add(-time.Minute),
		AMR: []string{"pwd", "otp"}, IP: "192.0.2.1", UserAgent: "test/1.0", ExpiresAt: later()}
	must(t, st.CreateBrowserSession(bg, s))
	got, err := st.GetBrowserSession(bg, []byte("hash-1"))
	must(t, err)
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("GetBrowserSession = %+v, want %+v", got, s)
	}
	got, err = st.GetBrowserSessionByID(bg, "s1")
	must(t, err)
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("GetBrowserSessionByID = %+v, want %+v", got, s)
	}
	wantErr(t, "CreateBrowserSession(dup hash)", st.CreateBrowserSession(bg, &storage.BrowserSession{ID: "s9",
		TokenHash: []byte("hash-1"), UserID: "u1", ExpiresAt: later()}), storage.ErrDuplicate)

	must(t, st.CreateBrowserSession(bg, &storage.BrowserSession{ID: "expired", TokenHash: []byte("hash-x"), UserID: "u1",
		ExpiresAt: earlier()}))
	for _, tc := range []struct {
		name string
		get  func() (*storage.BrowserSession, error)
	}{
		{"by hash, expired", func() (*storage.BrowserSession, error) { return st.GetBrowserSession(bg, []byte("hash-x")) }},
		{"by id, expired", func() (*storage.BrowserSession, error) { return st.GetBrowserSessionByID(bg, "expired") }},
		{"by hash, missing", func() (*storage.BrowserSession, error) { return st.GetBrowserSession(bg, []byte("nope")) }},
		{"by id, missing", func() (*storage.BrowserSession, error) { return st.GetBrowserSessionByID(bg, "nope") }},
	} {
		_, err := tc.get()
		wantErr(t, tc.name, err, storage.ErrNotFound)
	}

	seen := now().Add(time.Minute)
	must(t, st.TouchBrowserSession(bg, "s1", seen))
	got, err = st.GetBrowserSessionByID(bg, "s1")
	must(t, err)
	if !got.LastSeenAt.Equal(seen) {
		t.Fatalf("LastSeenAt = %v, want %v", got.LastSeenAt, seen)
	}
	wantErr(t, "Touch(missing)", st.TouchBrowserSession(bg, "nope", seen), storage.ErrNotFound)

	must(t, st.DeleteBrowserSession(bg, "s1"))
	wantErr(t, "Delete(missing)", st.DeleteBrowserSession(bg, "s1"), storage.ErrNotFound)

	for i := range 3 {
		must(t, st.CreateBrowserSession(bg, &storage.BrowserSession{ID: fmt.Sprint("a", i), TokenHash: []byte(fmt.Sprint("a", i)),
			UserID: "u1", ExpiresAt: later()}))
	}
	must(t, st.CreateBrowserSession(bg, &storage.BrowserSession{ID: "b", TokenHash: []byte("b"), UserID: "u2", ExpiresAt: later()}))
	must(t, st.DeleteUserBrowserSessions(bg, "u1"))
	_, err = st.GetBrowserSessionByID(bg, "a1")
	wantErr(t, "after DeleteUserBrowserSessions", err, storage.ErrNotFound)
	_, err = st.GetBrowserSessionByID(bg, "b")
	must(t, err)
}

// ---- pending authorizations ----

func testPendingAuthorizations(t *testing.T, st storage.Store) {
	mkClient(t, st, "c1")
	mkUser(t, st, "u1")
	p := &storage.PendingAuthorization{ID: "p1", ClientID: "c1", Form: "client_id=c1&scope=openid+profile",
		CSRFToken: "csrf", ExpiresAt: later()}
	must(t, st.CreatePendingAuthorization(bg, p))
	got, err := st.GetPendingAuthorization(bg, "p1")
	must(t, err)
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("Get = %+v, want %+v", got, p)
	}
	wantErr(t, "Create(dup)", st.CreatePendingAuthorization(bg, &storage.PendingAuthorization{ID: "p1", ClientID: "c1",
		ExpiresAt: later()}), storage.ErrDuplicate)

	at := now().Add(-time.Second)
	p.UserID, p.SessionID, p.AuthTime, p.AMR = "u1", "sid-1", &at, []string{"pwd"}
	p.CSRFToken = "rebound-at-sign-in"
	must(t, st.UpdatePendingAuthorization(bg, p))
	got, err = st.GetPendingAuthorization(bg, "p1")
	must(t, err)
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("after login = %+v, want %+v", got, p)
	}
	p.ConsentGiven, p.GrantedScopes = true, []string{"openid"}
	must(t, st.UpdatePendingAuthorization(bg, p))
	got, err = st.GetPendingAuthorization(bg, "p1")
	must(t, err)
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("after consent = %+v, want %+v", got, p)
	}
	wantErr(t, "Update(missing)", st.UpdatePendingAuthorization(bg, &storage.PendingAuthorization{ID: "nope"}), storage.ErrNotFound)

	// A direct sign-in (no application) parks with no client.
	direct := &storage.PendingAuthorization{ID: "direct", Form: "return_to=%2Faccount", UserID: "u1",
		AuthTime: &at, AMR: []string{"pwd"}, ExpiresAt: later()}
	must(t, st.CreatePendingAuthorization(bg, direct))
	got, err = st.GetPendingAuthorization(bg, "direct")
	must(t, err)
	if !reflect.DeepEqual(got, direct) {
		t.Fatalf("direct = %+v, want %+v", got, direct)
	}

	must(t, st.CreatePendingAuthorization(bg, &storage.PendingAuthorization{ID: "old", ClientID: "c1", ExpiresAt: earlier()}))
	_, err = st.GetPendingAuthorization(bg, "old")
	wantErr(t, "Get(expired)", err, storage.ErrNotFound)

	must(t, st.DeletePendingAuthorization(bg, "p1"))
	_, err = st.GetPendingAuthorization(bg, "p1")
	wantErr(t, "Get(deleted)", err, storage.ErrNotFound)
	wantErr(t, "Delete(missing)", st.DeletePendingAuthorization(bg, "p1"), storage.ErrNotFound)
}

// ---- consents ----

func testConsents(t *testing.T, st storage.Store) {
	mkClient(t, st, "c1")
	mkUser(t, st, "u1")
	_, err := st.GetConsent(bg, "u1", "c1")
	wantErr(t, "Get(missing)", err, storage.ErrNotFound)

	first := now().Add(-time.Hour)
	must(t, st.UpsertConsent(bg, &storage.Consent{UserID: "u1", ClientID: "c1", Scopes: []string{"openid"},
		GrantedAt: first, UpdatedAt: first}))
	got, err := st.GetConsent(bg, "u1", "c1")
	must(t, err)
	want := &storage.Consent{UserID: "u1", ClientID: "c1", Scopes: []string{"openid"}, GrantedAt: first, UpdatedAt: first}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Get = %+v, want %+v", got, want)
	}

	second := now()
	must(t, st.UpsertConsent(bg, &storage.Consent{UserID: "u1", ClientID: "c1", Scopes: []string{"openid", "email"},
		GrantedAt: second, UpdatedAt: second}))
	got, err = st.GetConsent(bg, "u1", "c1")
	must(t, err)
	want = &storage.Consent{UserID: "u1", ClientID: "c1", Scopes: []string{"openid", "email"}, GrantedAt: first, UpdatedAt: second}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after upsert = %+v, want %+v (GrantedAt keeps the first grant)", got, want)
	}

	must(t, st.DeleteConsent(bg, "u1", "c1"))
	_, err = st.GetConsent(bg, "u1", "c1")
	wantErr(t, "Get(deleted)", err, storage.ErrNotFound)
	wantErr(t, "Delete(missing)", st.DeleteConsent(bg, "u1", "c1"), storage.ErrNotFound)
}

// ---- fosite ----

func testAuthorizeCodes(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	r := mkRequest(c, "req-1", "u1", later())
	must(t, st.CreateAuthorizeCodeSession(bg, "code-sig", r))
	got, err := st.GetAuthorizeCodeSession(bg, "code-sig", sess())
	must(t, err)
	checkRequest(t, got, r)

	must(t, st.InvalidateAuthorizeCodeSession(bg, "code-sig"))
	got, err = st.GetAuthorizeCodeSession(bg, "code-sig", sess())
	wantErr(t, "Get(invalidated)", err, fosite.ErrInvalidatedAuthorizeCode)
	if got == nil || got.GetID() != "req-1" {
		t.Fatalf("Get(invalidated) must return the request too, got %v", got)
	}
	if err := st.InvalidateAuthorizeCodeSession(bg, "code-sig"); err == nil {
		t.Fatal("a code could be invalidated twice")
	}

	_, err = st.GetAuthorizeCodeSession(bg, "nope", sess())
	wantErr(t, "Get(missing)", err, fosite.ErrNotFound)
	wantErr(t, "Invalidate(missing)", st.InvalidateAuthorizeCodeSession(bg, "nope"), fosite.ErrNotFound)

	must(t, st.CreateAuthorizeCodeSession(bg, "old", mkRequest(c, "req-2", "u1", earlier())))
	_, err = st.GetAuthorizeCodeSession(bg, "old", sess())
	wantErr(t, "Get(expired)", err, fosite.ErrNotFound)
}

func testAccessTokens(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	r := mkRequest(c, "req-1", "u1", later())
	must(t, st.CreateAccessTokenSession(bg, "at-1", r))
	got, err := st.GetAccessTokenSession(bg, "at-1", sess())
	must(t, err)
	checkRequest(t, got, r)

	must(t, st.DeleteAccessTokenSession(bg, "at-1"))
	_, err = st.GetAccessTokenSession(bg, "at-1", sess())
	wantErr(t, "Get(deleted)", err, fosite.ErrNotFound)
	must(t, st.DeleteAccessTokenSession(bg, "at-1")) // deleting twice is fine

	must(t, st.CreateAccessTokenSession(bg, "old", mkRequest(c, "req-2", "u1", earlier())))
	_, err = st.GetAccessTokenSession(bg, "old", sess())
	wantErr(t, "Get(expired)", err, fosite.ErrNotFound)

	// A session without an access-token expiry still gets one (a long
	// default) rather than living forever or dying at once.
	r3 := mkRequest(c, "req-3", "u1", time.Time{})
	must(t, st.CreateAccessTokenSession(bg, "no-exp", r3))
	_, err = st.GetAccessTokenSession(bg, "no-exp", sess())
	must(t, err)
}

func testRefreshTokens(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	r := mkRequest(c, "req-1", "u1", later())
	must(t, st.CreateAccessTokenSession(bg, "at-1", r))
	must(t, st.CreateRefreshTokenSession(bg, "rt-1", "at-1", r))
	got, err := st.GetRefreshTokenSession(bg, "rt-1", sess())
	must(t, err)
	checkRequest(t, got, r)

	// Rotation: the used refresh token turns inactive (still found, for
	// reuse detection) and its access token goes.
	must(t, st.RotateRefreshToken(bg, "req-1", "rt-1"))
	got, err = st.GetRefreshTokenSession(bg, "rt-1", sess())
	wantErr(t, "Get(rotated)", err, fosite.ErrInactiveToken)
	if got == nil || got.GetID() != "req-1" {
		t.Fatalf("Get(rotated) must return the request too, got %v", got)
	}
	_, err = st.GetAccessTokenSession(bg, "at-1", sess())
	wantErr(t, "access token after rotation", err, fosite.ErrNotFound)
	if err := st.RotateRefreshToken(bg, "req-1", "rt-1"); err == nil {
		t.Fatal("a refresh token could be rotated twice")
	}
	wantErr(t, "Rotate(missing)", st.RotateRefreshToken(bg, "req-1", "nope"), fosite.ErrNotFound)

	must(t, st.DeleteRefreshTokenSession(bg, "rt-1"))
	_, err = st.GetRefreshTokenSession(bg, "rt-1", sess())
	wantErr(t, "Get(deleted)", err, fosite.ErrNotFound)
	must(t, st.DeleteRefreshTokenSession(bg, "rt-1"))

	must(t, st.CreateRefreshTokenSession(bg, "old", "", mkRequest(c, "req-2", "u1", earlier())))
	_, err = st.GetRefreshTokenSession(bg, "old", sess())
	wantErr(t, "Get(expired)", err, fosite.ErrNotFound)
}

// testRevokeFamily: fosite revokes by request id, which every token of a
// refresh chain shares; revoking must reach the whole chain and nothing
// else.
func testRevokeFamily(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	r := mkRequest(c, "family", "u1", later())
	other := mkRequest(c, "other", "u1", later())
	must(t, st.CreateAccessTokenSession(bg, "at-1", r))
	must(t, st.CreateRefreshTokenSession(bg, "rt-1", "at-1", r))
	must(t, st.RotateRefreshToken(bg, "family", "rt-1"))
	must(t, st.CreateAccessTokenSession(bg, "at-2", r))
	must(t, st.CreateRefreshTokenSession(bg, "rt-2", "at-2", r))
	must(t, st.CreateAccessTokenSession(bg, "at-x", other))
	must(t, st.CreateRefreshTokenSession(bg, "rt-x", "at-x", other))

	// A replay of rt-1: fosite deletes it and revokes the family.
	_, err := st.GetRefreshTokenSession(bg, "rt-1", sess())
	wantErr(t, "replay", err, fosite.ErrInactiveToken)
	must(t, st.DeleteRefreshTokenSession(bg, "rt-1"))
	must(t, st.RevokeRefreshToken(bg, "family"))
	must(t, st.RevokeAccessToken(bg, "family"))

	_, err = st.GetRefreshTokenSession(bg, "rt-2", sess())
	wantErr(t, "rt-2 after revoke", err, fosite.ErrInactiveToken)
	_, err = st.GetAccessTokenSession(bg, "at-2", sess())
	wantErr(t, "at-2 after revoke", err, fosite.ErrNotFound)
	_, err = st.GetRefreshTokenSession(bg, "rt-x", sess())
	must(t, err)
	_, err = st.GetAccessTokenSession(bg, "at-x", sess())
	must(t, err)

	// Revoking an unknown family is not an error (RFC 7009).
	must(t, st.RevokeRefreshToken(bg, "nope"))
	must(t, st.RevokeAccessToken(bg, "nope"))
}

func testPKCE(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	r := mkRequest(c, "req-1", "u1", later())
	r.Form.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	r.Form.Set("code_challenge_method", "S256")
	must(t, st.CreatePKCERequestSession(bg, "code-sig", r))
	got, err := st.GetPKCERequestSession(bg, "code-sig", sess())
	must(t, err)
	checkRequest(t, got, r)
	if got.GetRequestForm().Get("code_challenge") != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatal("code_challenge lost")
	}
	must(t, st.DeletePKCERequestSession(bg, "code-sig"))
	_, err = st.GetPKCERequestSession(bg, "code-sig", sess())
	wantErr(t, "Get(deleted)", err, fosite.ErrNotFound)
}

func testOIDC(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	r := mkRequest(c, "req-1", "u1", later())
	// fosite keys the OIDC session by the raw authorization code.
	const code = "ory_ac_raw-code.with-signature"
	must(t, st.CreateOpenIDConnectSession(bg, code, r))
	tokenReq := fosite.NewAccessRequest(sess())
	got, err := st.GetOpenIDConnectSession(bg, code, tokenReq)
	must(t, err)
	checkRequest(t, got, r)
	_, err = st.GetOpenIDConnectSession(bg, "other-code", fosite.NewAccessRequest(sess()))
	wantErr(t, "Get(missing)", err, fosite.ErrNotFound)
	must(t, st.DeleteOpenIDConnectSession(bg, code))
	_, err = st.GetOpenIDConnectSession(bg, code, fosite.NewAccessRequest(sess()))
	wantErr(t, "Get(deleted)", err, fosite.ErrNotFound)
}

func testPAR(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	r := mkRequest(c, "req-1", "u1", later())
	redirect, _ := url.Parse("https://c1.example/cb?x=1")
	ar := &fosite.AuthorizeRequest{
		ResponseTypes:        fosite.Arguments{"code"},
		RedirectURI:          redirect,
		State:                "state-123",
		HandledResponseTypes: fosite.Arguments{},
		ResponseMode:         fosite.ResponseModeQuery,
		DefaultResponseMode:  fosite.ResponseModeQuery,
		Request:              *r,
	}
	const uri = "urn:ietf:params:oauth:request_uri:abc"
	must(t, st.CreatePARSession(bg, uri, ar))
	got, err := st.GetPARSession(bg, uri)
	must(t, err)
	checkRequest(t, got, r)
	if !reflect.DeepEqual([]string(got.GetResponseTypes()), []string{"code"}) || got.GetState() != "state-123" ||
		got.GetRedirectURI() == nil || got.GetRedirectURI().String() != redirect.String() ||
		got.GetResponseMode() != fosite.ResponseModeQuery {
		t.Fatalf("PAR fields: %+v", got)
	}
	must(t, st.DeletePARSession(bg, uri))
	_, err = st.GetPARSession(bg, uri)
	wantErr(t, "Get(deleted)", err, fosite.ErrNotFound)

	old := mkRequest(c, "req-2", "u1", earlier())
	must(t, st.CreatePARSession(bg, "urn:old", &fosite.AuthorizeRequest{Request: *old}))
	_, err = st.GetPARSession(bg, "urn:old")
	wantErr(t, "Get(expired)", err, fosite.ErrNotFound)
}

func testJTI(t *testing.T, st storage.Store) {
	must(t, st.ClientAssertionJWTValid(bg, "jti-1"))
	must(t, st.SetClientAssertionJWT(bg, "jti-1", later()))
	wantErr(t, "Valid(used)", st.ClientAssertionJWTValid(bg, "jti-1"), fosite.ErrJTIKnown)
	wantErr(t, "Set(used)", st.SetClientAssertionJWT(bg, "jti-1", later()), fosite.ErrJTIKnown)

	// An expired entry no longer blocks the jti and may be recorded again.
	must(t, st.SetClientAssertionJWT(bg, "jti-2", earlier()))
	must(t, st.ClientAssertionJWTValid(bg, "jti-2"))
	must(t, st.SetClientAssertionJWT(bg, "jti-2", later()))
	wantErr(t, "Valid(re-used)", st.ClientAssertionJWTValid(bg, "jti-2"), fosite.ErrJTIKnown)
}

// ---- transactions ----

func testTransactions(t *testing.T, st storage.Store) {
	userExists := func(t *testing.T, id string) bool {
		t.Helper()
		_, err := st.GetUser(bg, id)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}

	t.Run("rollback leaves nothing", func(t *testing.T) {
		ctx, err := st.BeginTX(bg)
		must(t, err)
		must(t, st.CreateUser(ctx, &storage.User{ID: "rb", Username: "rb"}))
		if _, err := st.GetUser(ctx, "rb"); err != nil {
			t.Fatalf("the transaction cannot read its own write: %v", err)
		}
		must(t, st.Rollback(ctx))
		if userExists(t, "rb") {
			t.Fatal("rolled back user exists")
		}
		must(t, st.Rollback(ctx)) // rolling back twice is harmless
	})

	t.Run("commit", func(t *testing.T) {
		ctx, err := st.BeginTX(bg)
		must(t, err)
		must(t, st.CreateUser(ctx, &storage.User{ID: "c", Username: "c"}))
		must(t, st.Commit(ctx))
		if !userExists(t, "c") {
			t.Fatal("committed user missing")
		}
	})

	t.Run("nested begin joins the outer transaction", func(t *testing.T) {
		outer, err := st.BeginTX(bg)
		must(t, err)
		inner, err := st.BeginTX(outer)
		must(t, err)
		must(t, st.CreateUser(inner, &storage.User{ID: "nested", Username: "nested"}))
		must(t, st.Commit(inner)) // only leaves the inner level
		must(t, st.Rollback(outer))
		if userExists(t, "nested") {
			t.Fatal("inner commit committed the outer transaction")
		}
	})

	t.Run("nested commit", func(t *testing.T) {
		outer, err := st.BeginTX(bg)
		must(t, err)
		inner, err := st.BeginTX(outer)
		must(t, err)
		must(t, st.CreateUser(inner, &storage.User{ID: "nested2", Username: "nested2"}))
		must(t, st.Commit(inner))
		must(t, st.Commit(outer))
		if !userExists(t, "nested2") {
			t.Fatal("nested commit lost the write")
		}
	})

	t.Run("inner rollback dooms the outer commit", func(t *testing.T) {
		outer, err := st.BeginTX(bg)
		must(t, err)
		must(t, st.CreateUser(outer, &storage.User{ID: "doomed", Username: "doomed"}))
		inner, err := st.BeginTX(outer)
		must(t, err)
		must(t, st.Rollback(inner))
		if err := st.Commit(outer); err == nil {
			t.Fatal("outer commit succeeded after an inner rollback")
		}
		if userExists(t, "doomed") {
			t.Fatal("doomed transaction was committed")
		}
	})

	t.Run("InTx", func(t *testing.T) {
		boom := errors.New("boom")
		err := st.InTx(bg, func(ctx context.Context) error {
			must(t, st.CreateUser(ctx, &storage.User{ID: "fail", Username: "fail"}))
			return boom
		})
		wantErr(t, "InTx", err, boom)
		if userExists(t, "fail") {
			t.Fatal("InTx kept the writes of a failed fn")
		}
		must(t, st.InTx(bg, func(ctx context.Context) error {
			return st.CreateUser(ctx, &storage.User{ID: "ok", Username: "ok"})
		}))
		if !userExists(t, "ok") {
			t.Fatal("InTx lost the writes of a successful fn")
		}

		// InTx inside a transaction joins it.
		outer, err := st.BeginTX(bg)
		must(t, err)
		must(t, st.InTx(outer, func(ctx context.Context) error {
			return st.CreateUser(ctx, &storage.User{ID: "joined", Username: "joined"})
		}))
		must(t, st.Rollback(outer))
		if userExists(t, "joined") {
			t.Fatal("InTx committed the transaction it joined")
		}
	})

	t.Run("commit without a transaction", func(t *testing.T) {
		if err := st.Commit(bg); err == nil {
			t.Fatal("Commit without BeginTX succeeded")
		}
	})
}

// testConcurrentRotation: several requests refresh with the same token at
// once, each in its own transaction, as fosite does. Exactly one may win;
// the others must fail rather than mint a second pair, and nobody may
// deadlock.
func testConcurrentRotation(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	r := mkRequest(c, "family", "u1", later())
	must(t, st.CreateAccessTokenSession(bg, "at-0", r))
	must(t, st.CreateRefreshTokenSession(bg, "rt-0", "at-0", r))

	const n = 8
	var (
		wins atomic.Int32
		wg   sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(bg, 60*time.Second)
	defer cancel()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx, err := st.BeginTX(ctx)
			if err != nil {
				t.Errorf("#%d BeginTX: %v", i, err)
				return
			}
			err = func() error {
				req, err := st.GetRefreshTokenSession(tx, "rt-0", sess())
				if err != nil {
					return err
				}
				if err := st.RotateRefreshToken(tx, req.GetID(), "rt-0"); err != nil {
					return err
				}
				at, rt := fmt.Sprint("at-", i+1), fmt.Sprint("rt-", i+1)
				if err := st.CreateAccessTokenSession(tx, at, req); err != nil {
					return err
				}
				if err := st.CreateRefreshTokenSession(tx, rt, at, req); err != nil {
					return err
				}
				return st.Commit(tx)
			}()
			if err != nil {
				_ = st.Rollback(tx)
				if ctx.Err() != nil {
					t.Errorf("#%d: %v", i, err)
				}
				return
			}
			wins.Add(1)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("concurrent rotation deadlocked")
	}
	if w := wins.Load(); w != 1 {
		t.Fatalf("%d of %d concurrent rotations succeeded, want exactly 1", w, n)
	}
	active := 0
	for i := 1; i <= n; i++ {
		if _, err := st.GetRefreshTokenSession(bg, fmt.Sprint("rt-", i), sess()); err == nil {
			active++
		}
	}
	if active != 1 {
		t.Fatalf("%d live refresh tokens after the race, want 1", active)
	}
	_, err := st.GetRefreshTokenSession(bg, "rt-0", sess())
	wantErr(t, "rt-0", err, fosite.ErrInactiveToken)
}

// testConcurrentWrites: many writers at once, some in transactions, as a
// busy server does. None may fail with a lock error or deadlock.
func testConcurrentWrites(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	const workers, each = 12, 15
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				var err error
				if i%3 == 0 {
					err = st.InTx(bg, func(ctx context.Context) error {
						r := mkRequest(c, id, "u", later())
						if err := st.CreateAccessTokenSession(ctx, "at-"+id, r); err != nil {
							return err
						}
						if _, err := st.GetAccessTokenSession(ctx, "at-"+id, sess()); err != nil {
							return err
						}
						return st.CreateRefreshTokenSession(ctx, "rt-"+id, "at-"+id, r)
					})
				} else {
					err = st.CreateUser(bg, &storage.User{ID: id, Username: id})
					if err == nil {
						_, err = st.GetUser(bg, id)
					}
				}
				if err != nil {
					t.Errorf("%s: %v", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// ---- housekeeping ----

func testRevokeUserTokens(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	for i, sub := range []string{"alice", "alice", "bob"} {
		r := mkRequest(c, fmt.Sprint("req-", i), sub, later())
		must(t, st.CreateAccessTokenSession(bg, fmt.Sprint("at-", i), r))
		must(t, st.CreateRefreshTokenSession(bg, fmt.Sprint("rt-", i), fmt.Sprint("at-", i), r))
	}
	must(t, st.RevokeUserTokens(bg, "alice"))
	for i, alive := range []bool{false, false, true} {
		_, errA := st.GetAccessTokenSession(bg, fmt.Sprint("at-", i), sess())
		_, errR := st.GetRefreshTokenSession(bg, fmt.Sprint("rt-", i), sess())
		if alive && (errA != nil || errR != nil) {
			t.Errorf("token %d revoked: %v / %v", i, errA, errR)
		}
		if !alive && (!errors.Is(errA, fosite.ErrNotFound) || !errors.Is(errR, fosite.ErrNotFound)) {
			t.Errorf("token %d not revoked: %v / %v", i, errA, errR)
		}
	}
	must(t, st.RevokeUserTokens(bg, "nobody"))
}

func testPruneExpired(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	mkUser(t, st, "u1")
	expired, live := mkRequest(c, "old", "u1", earlier()), mkRequest(c, "new", "u1", later())
	for i := range 5 {
		must(t, st.CreateAccessTokenSession(bg, fmt.Sprint("old-at-", i), expired))
	}
	for i := range 3 {
		must(t, st.CreateBrowserSession(bg, &storage.BrowserSession{ID: fmt.Sprint("old-s-", i),
			TokenHash: []byte(fmt.Sprint("old-s-", i)), UserID: "u1", ExpiresAt: earlier()}))
	}
	must(t, st.CreateAuthorizeCodeSession(bg, "old-code", expired))
	must(t, st.CreateRefreshTokenSession(bg, "old-rt", "", expired))
	must(t, st.CreatePendingAuthorization(bg, &storage.PendingAuthorization{ID: "old-p", ClientID: "c1", ExpiresAt: earlier()}))
	must(t, st.SetClientAssertionJWT(bg, "old-jti", earlier()))
	const wantTotal = 5 + 3 + 1 + 1 + 1 + 1

	must(t, st.CreateAccessTokenSession(bg, "live-at", live))
	must(t, st.CreateRefreshTokenSession(bg, "live-rt", "live-at", live))
	must(t, st.CreateBrowserSession(bg, &storage.BrowserSession{ID: "live-s", TokenHash: []byte("live-s"), UserID: "u1",
		ExpiresAt: later()}))

	var total int64
	for round := 0; ; round++ {
		n, err := st.PruneExpired(bg, time.Now(), 2)
		must(t, err)
		if round == 0 && n != 2+2+1+1+1+1 {
			t.Errorf("first batch deleted %d rows, want 8 (at most 2 per table)", n)
		}
		if n == 0 {
			break
		}
		total += n
		if round > 10 {
			t.Fatal("PruneExpired never finishes")
		}
	}
	if total != wantTotal {
		t.Fatalf("pruned %d rows, want %d", total, wantTotal)
	}
	if _, err := st.GetAccessTokenSession(bg, "live-at", sess()); err != nil {
		t.Fatalf("live access token pruned: %v", err)
	}
	if _, err := st.GetRefreshTokenSession(bg, "live-rt", sess()); err != nil {
		t.Fatalf("live refresh token pruned: %v", err)
	}
	if _, err := st.GetBrowserSessionByID(bg, "live-s"); err != nil {
		t.Fatalf("live browser session pruned: %v", err)
	}
}
