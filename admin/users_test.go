package admin_test

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

func TestUserCreateGetPatch(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		r := want(t, e.send(t, req{method: "POST", path: "/v1/users", token: "tok-write", body: map[string]any{
			"username": "Ada", "email": "ada@example.com", "display_name": "Ada Lovelace", "password": goodPW,
			"email_verified": true,
		}}), 201)
		var u userJSON
		r.json(t, &u)
		if u.Username != "ada" || u.Email != "ada@example.com" || !u.EmailVerified || u.Status != "active" ||
			!u.HasPassword || u.Tier != nil || u.DeletedAt != nil || u.CreatedAt.Location() != time.UTC {
			t.Fatalf("created %+v", u)
		}
		if loc := r.header.Get("Location"); loc != "/v1/users/"+u.ID {
			t.Fatalf("Location %q", loc)
		}
		if strings.Contains(string(r.body), "argon2") || strings.Contains(string(r.body), "password_hash") {
			t.Fatalf("hash shown: %s", r.body)
		}
		e.wantEvent(t, u.ID, accounts.AuditUserCreate, "c_write")
		if _, err := e.acc.Authenticate(e.ctx, "ada", goodPW); err != nil {
			t.Fatalf("sign-in with the password given: %v", err)
		}

		get := want(t, e.send(t, req{method: "GET", path: "/v1/users/" + u.ID, token: "tok-read"}), 200)
		tag := get.header.Get("ETag")
		if tag == "" || tag != r.header.Get("ETag") {
			t.Fatalf("ETag %q after create %q", tag, r.header.Get("ETag"))
		}
		notMod := e.send(t, req{method: "GET", path: "/v1/users/" + u.ID, token: "tok-read", hdr: map[string]string{"If-None-Match": tag}})
		want(t, notMod, http.StatusNotModified)

		p := want(t, e.send(t, req{method: "PATCH", path: "/v1/users/" + u.ID, token: "tok-write", hdr: map[string]string{"If-Match": tag},
			body: map[string]any{"display_name": "Countess", "locale": "en-gb", "picture_url": "https://img.example/a.png"}}), 200)
		var pu userJSON
		p.json(t, &pu)
		if pu.DisplayName != "Countess" || pu.Locale != "en-GB" || pu.PictureURL != "https://img.example/a.png" || !pu.UpdatedAt.After(u.UpdatedAt) {
			t.Fatalf("patched %+v", pu)
		}
		if nt := p.header.Get("ETag"); nt == "" || nt == tag {
			t.Fatalf("ETag after PATCH %q (before %q)", nt, tag)
		}
		ev := e.wantEvent(t, u.ID, accounts.AuditUserUpdate, "c_write")
		if ev.Changes["display_name"] != "Countess" {
			t.Fatalf("changes %v", ev.Changes)
		}

		// null clears optional text; a new email is unverified.
		p = want(t, e.do(t, "PATCH", "/v1/users/"+u.ID, `{"picture_url": null, "email": "ada@new.example"}`), 200)
		p.json(t, &pu)
		if pu.PictureURL != "" || pu.Email != "ada@new.example" || pu.EmailVerified {
			t.Fatalf("patched %+v", pu)
		}
		// An empty PATCH changes nothing and records nothing.
		n := len(e.events(t, u.ID))
		want(t, e.do(t, "PATCH", "/v1/users/"+u.ID, `{}`), 200)
		if len(e.events(t, u.ID)) != n {
			t.Fatal("empty PATCH recorded an event")
		}

		// Passwordless (federated) users are allowed.
		fed := e.createUser(t, "fed")
		if fed.HasPassword {
			t.Fatalf("passwordless %+v", fed)
		}
	})
}

func TestCreateUserErrors(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		e.createUser(t, "taken")
		big := `{"username":"big","email":"big@example.com","display_name":"` + strings.Repeat("x", 70<<10) + `"}`
		tests := []struct {
			name   string
			body   any
			ctype  string
			status int
			field  string
			slug   string
		}{
			{"unknown field", `{"username":"a1","email":"a1@example.com","role":"admin"}`, "", 400, "role", "invalid-json"},
			{"malformed JSON", `{"username":`, "", 400, "", "invalid-json"},
			{"syntax error", `{"username" "a"}`, "", 400, "", "invalid-json"},
			{"trailing data", `{"username":"a1","email":"a1@example.com"} {}`, "", 400, "", "invalid-json"},
			{"wrong type", `{"username":"a1","email":"a1@example.com","email_verified":"yes"}`, "", 400, "email_verified", "invalid-json"},
			{"not an object", `[1,2]`, "", 400, "", "invalid-json"},
			{"no body", nil, "application/json", 400, "", "invalid-json"},
			{"form body", "username=a1", "application/x-www-form-urlencoded", 415, "", "unsupported-media-type"},
			{"no content type", `{"username":"a1"}`, "-", 415, "", "unsupported-media-type"},
			{"too large", big, "", 413, "", "payload-too-large"},
			{"bad username", `{"username":"-x","email":"x@example.com"}`, "", 422, "username", "validation"},
			{"bad email", `{"username":"x1","email":"not an email"}`, "", 422, "email", "validation"},
			{"short password", `{"username":"x1","email":"x1@example.com","password":"short"}`, "", 422, "password", "validation"},
			{"common password", `{"username":"x1","email":"x1@example.com","password":"password123"}`, "", 422, "password", "validation"},
			{"password and hash", `{"username":"x1","email":"x1@example.com","password":"` + goodPW + `","password_hash":"$2a$10$abc"}`, "", 422, "password_hash", "validation"},
			{"unknown hash", `{"username":"x1","email":"x1@example.com","password_hash":"md5:abc"}`, "", 422, "password_hash", "validation"},
			{"unknown tier", `{"username":"x1","email":"x1@example.com","tier":"t_nope"}`, "", 422, "tier", "validation"},
			{"taken username", `{"username":"taken","email":"other@example.com"}`, "", 409, "username", "conflict"},
			{"taken email", `{"username":"x2","email":"TAKEN@example.com"}`, "", 409, "email", "conflict"},
			{"display name too long", `{"username":"x1","email":"x1@example.com","display_name":"` + strings.Repeat("é", 101) + `"}`, "", 422, "display_name", "validation"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				hdr := map[string]string{}
				switch tt.ctype {
				case "-":
					hdr["Content-Type"] = ""
				case "":
				default:
					hdr["Content-Type"] = tt.ctype
				}
				r := e.send(t, req{method: "POST", path: "/v1/users", token: "tok-write", body: tt.body, hdr: hdr})
				p := wantField(t, r, tt.status, tt.field)
				if p.Type != "https://latchkey.dev/problems/"+tt.slug {
					t.Fatalf("type %s, want %s", p.Type, tt.slug)
				}
				if p.Detail == "" {
					t.Fatal("no detail")
				}
			})
		}
		// Nothing of the refused requests was written.
		page, err := e.acc.SearchUsers(e.ctx, storage.UserQuery{Limit: 200})
		must(t, err)
		if len(page.Users) != 1 {
			t.Fatalf("%d users after refused requests", len(page.Users))
		}
	})
}

func TestPatchUserErrors(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "pat")
		e.createUser(t, "other")
		path := "/v1/users/" + u.ID
		tests := []struct {
			name   string
			path   string
			body   string
			ifm    string
			status int
			field  string
		}{
			{"status is protected", path, `{"status":"suspended"}`, "", 422, "status"},
			{"tier is protected", path, `{"tier":"t_1"}`, "", 422, "tier"},
			{"password is protected", path, `{"password":"` + goodPW + `"}`, "", 422, "password"},
			{"password_hash is protected", path, `{"password_hash":"$2a$10$x"}`, "", 422, "password_hash"},
			{"id is protected", path, `{"id":"u_x"}`, "", 422, "id"},
			{"created_at is protected", path, `{"created_at":"2020-01-01T00:00:00Z"}`, "", 422, "created_at"},
			{"deleted_at is protected", path, `{"deleted_at":null}`, "", 422, "deleted_at"},
			{"locked_until is protected", path, `{"locked_until":null}`, "", 422, "locked_until"},
			{"protected with allowed", path, `{"display_name":"x","updated_at":"2020-01-01T00:00:00Z"}`, "", 422, "updated_at"},
			{"unknown field", path, `{"nick_name":"x"}`, "", 400, "nick_name"},
			{"wrong type", path, `{"email_verified":"yes"}`, "", 400, "email_verified"},
			{"null username", path, `{"username":null}`, "", 422, "username"},
			{"bad username", path, `{"username":"A B"}`, "", 422, "username"},
			{"taken username", path, `{"username":"other"}`, "", 409, "username"},
			{"taken email", path, `{"email":"Other@Example.com"}`, "", 409, "email"},
			{"bad email", path, `{"email":"nope"}`, "", 422, "email"},
			{"bad locale", path, `{"locale":"not a tag!"}`, "", 422, "locale"},
			{"http picture", path, `{"picture_url":"http://img.example/a.png"}`, "", 422, "picture_url"},
			{"not an object", path, `null`, "", 400, ""},
			{"unknown user", "/v1/users/u_nope", `{"display_name":"x"}`, "", 404, ""},
			{"stale If-Match", path, `{"display_name":"x"}`, `"12345"`, 412, ""},
			{"malformed If-Match", path, `{"display_name":"x"}`, `W/"12345"`, 412, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				hdr := map[string]string{}
				if tt.ifm != "" {
					hdr["If-Match"] = tt.ifm
				}
				r := e.send(t, req{method: "PATCH", path: tt.path, token: "tok-write", body: tt.body, hdr: hdr})
				p := wantField(t, r, tt.status, tt.field)
				if tt.status == 422 && strings.HasSuffix(tt.name, "protected") && !strings.Contains(p.Detail, tt.field) {
					t.Fatalf("detail %q does not name %s", p.Detail, tt.field)
				}
			})
		}
		// None of it changed the user or left an update event.
		for _, ev := range e.events(t, u.ID) {
			if ev.Action == accounts.AuditUserUpdate {
				t.Fatalf("refused PATCH recorded %+v", ev)
			}
		}
		want(t, e.send(t, req{method: "PATCH", path: path, token: "tok-write", body: `{"display_name":"x"}`, hdr: map[string]string{"If-Match": "*"}}), 200)
	})
}

// Two PATCHes with the same ETag at once: exactly one wins, the other is
// told the user changed (412).
func TestPatchIfMatchConcurrent(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "race")
		for round := range 5 {
			tag := want(t, e.do(t, "GET", "/v1/users/"+u.ID, nil), 200).header.Get("ETag")
			var wg sync.WaitGroup
			answers := make([]*http.Response, 2)
			errs := make([]error, 2)
			names := make([]string, 2)
			for i := range 2 {
				names[i] = fmt.Sprintf("name %d-%d", round, i)
				body := `{"display_name":"` + names[i] + `"}`
				hr, err := http.NewRequest("PATCH", e.srv.URL+"/v1/users/"+u.ID, strings.NewReader(body))
				must(t, err)
				hr.Header.Set("Authorization", "Bearer tok-write")
				hr.Header.Set("Content-Type", "application/json")
				hr.Header.Set("If-Match", tag)
				wg.Add(1)
				go func() {
					defer wg.Done()
					answers[i], errs[i] = e.srv.Client().Do(hr)
					if errs[i] == nil {
						answers[i].Body.Close()
					}
				}()
			}
			wg.Wait()
			ok, failed := -1, 0
			for i, a := range answers {
				must(t, errs[i])
				switch a.StatusCode {
				case 200:
					ok = i
				case 412:
					if ct := a.Header.Get("Content-Type"); ct != "application/problem+json" {
						t.Fatalf("412 as %s", ct)
					}
					failed++
				}
			}
			if ok < 0 || failed != 1 {
				t.Fatalf("round %d: statuses %d and %d, want one 200 and one 412", round, answers[0].StatusCode, answers[1].StatusCode)
			}
			var got userJSON
			want(t, e.do(t, "GET", "/v1/users/"+u.ID, nil), 200).json(t, &got)
			if got.DisplayName != names[ok] {
				t.Fatalf("round %d: display name %q, winner wrote %q", round, got.DisplayName, names[ok])
			}
		}
	})
}

// oauthTokens stores an access and a refresh token for subject, as fosite
// does after a code exchange, through the store's fosite methods.
func (e *env) oauthTokens(t *testing.T, subject, sig string) {
	t.Helper()
	c, _, err := e.acc.CreateClient(e.ctx, accounts.ClientSpec{Name: "rp " + sig, RedirectURIs: []string{"https://rp.example/cb"}})
	must(t, err)
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

// refreshAlive reports whether the refresh token named after sig exists.
func (e *env) refreshAlive(t *testing.T, sig string) bool {
	t.Helper()
	_, err := e.st.GetRefreshTokenSession(e.ctx, "rt-"+sig, openid.NewDefaultSession())
	switch {
	case err == nil:
		return true
	case errors.Is(err, fosite.ErrNotFound):
		return false
	}
	t.Fatal(err)
	return false
}

// session starts a browser session for the user and returns its cookie token.
func (e *env) session(t *testing.T, userID string) string {
	t.Helper()
	u, err := e.acc.GetUserAny(e.ctx, userID)
	must(t, err)
	tok, _, err := e.acc.StartSession(e.ctx, u, accounts.SessionMeta{AMR: []string{"pwd"}, IP: "192.0.2.7", UserAgent: "Browser/1"})
	must(t, err)
	return tok
}

func TestSuspendUnsuspend(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "sus", map[string]any{"password": goodPW})
		cookie := e.session(t, u.ID)
		e.oauthTokens(t, u.ID, "sus")
		if !e.refreshAlive(t, "sus") {
			t.Fatal("setup: no refresh token")
		}
		path := "/v1/users/" + u.ID

		for _, body := range []any{nil, `{}`, `{"reason":"   "}`} {
			wantField(t, e.send(t, req{method: "POST", path: path + "/suspend", token: "tok-write", body: body}), 422, "reason")
		}
		wantField(t, e.send(t, req{method: "POST", path: path + "/suspend", token: "tok-write", body: `{"reason":"x","why":"y"}`}), 400, "why")
		problemOf(t, e.send(t, req{method: "POST", path: "/v1/users/u_nope/suspend", token: "tok-write", body: `{"reason":"x"}`}), 404)

		var got userJSON
		want(t, e.send(t, req{method: "POST", path: path + "/suspend", token: "tok-write", body: `{"reason":"chargeback"}`}), 200).json(t, &got)
		if got.Status != "suspended" {
			t.Fatalf("%+v", got)
		}
		ev := e.wantEvent(t, u.ID, accounts.AuditUserSuspend, "c_write")
		if ev.Reason != "chargeback" {
			t.Fatalf("reason %q", ev.Reason)
		}
		if _, _, err := e.acc.Session(e.ctx, cookie); !errors.Is(err, accounts.ErrNoSession) {
			t.Fatalf("browser session after suspend: %v", err)
		}
		if e.refreshAlive(t, "sus") {
			t.Fatal("refresh token survived the suspension")
		}
		if _, err := e.acc.Authenticate(e.ctx, "sus", goodPW); !errors.Is(err, accounts.ErrInvalidCredentials) {
			t.Fatalf("sign-in while suspended: %v", err)
		}
		// Suspending twice is refused, naming the status.
		wantField(t, e.send(t, req{method: "POST", path: path + "/suspend", token: "tok-write", body: `{"reason":"again"}`}), 422, "status")

		wantField(t, e.send(t, req{method: "POST", path: path + "/unsuspend", token: "tok-write"}), 422, "reason")
		want(t, e.send(t, req{method: "POST", path: path + "/unsuspend", token: "tok-write", body: `{"reason":"resolved"}`}), 200).json(t, &got)
		if got.Status != "active" {
			t.Fatalf("%+v", got)
		}
		e.wantEvent(t, u.ID, accounts.AuditUserUnsuspend, "c_write")
		if _, err := e.acc.Authenticate(e.ctx, "sus", goodPW); err != nil {
			t.Fatalf("sign-in after unsuspend: %v", err)
		}
	})
}

func TestSoftDeleteAndRestore(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "del", map[string]any{"password": goodPW})
		cookie := e.session(t, u.ID)
		path := "/v1/users/" + u.ID

		var got userJSON
		want(t, e.send(t, req{method: "DELETE", path: path, token: "tok-write", body: `{"reason":"asked to"}`}), 200).json(t, &got)
		if got.Status != "deleted" || got.DeletedAt == nil {
			t.Fatalf("%+v", got)
		}
		if _, _, err := e.acc.Session(e.ctx, cookie); !errors.Is(err, accounts.ErrNoSession) {
			t.Fatalf("session after delete: %v", err)
		}
		if ev := e.wantEvent(t, u.ID, accounts.AuditUserDelete, "c_write"); ev.Reason != "asked to" {
			t.Fatalf("reason %q", ev.Reason)
		}
		// Still there for admins, and deleting again is refused.
		want(t, e.do(t, "GET", path, nil), 200)
		wantField(t, e.do(t, "DELETE", path, nil), 422, "status")

		want(t, e.send(t, req{method: "POST", path: path + "/restore", token: "tok-write"}), 200).json(t, &got)
		if got.Status != "active" || got.DeletedAt != nil {
			t.Fatalf("%+v", got)
		}
		e.wantEvent(t, u.ID, accounts.AuditUserRestore, "c_write")
		if _, err := e.acc.Authenticate(e.ctx, "del", goodPW); err != nil {
			t.Fatalf("sign-in after restore: %v", err)
		}
		wantField(t, e.do(t, "POST", path+"/restore", nil), 422, "status")

		// After the grace period a deleted user stays deleted.
		want(t, e.do(t, "DELETE", path+"?mode=soft", nil), 200)
		e.clock.advance(deleteGrace + time.Hour)
		p := problemOf(t, e.send(t, req{method: "POST", path: path + "/restore", token: "tok-write", body: `{"reason":"too late"}`}), 409)
		if p.Type != "https://latchkey.dev/problems/grace-period-over" {
			t.Fatalf("%+v", p)
		}
		want(t, e.do(t, "GET", path, nil), 200).json(t, &got)
		if got.Status != "deleted" {
			t.Fatalf("%+v", got)
		}
		wantField(t, e.do(t, "DELETE", path+"?mode=purge", nil), 422, "mode")
	})
}

func TestHardDelete(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "gone", map[string]any{"password": goodPW})
		e.session(t, u.ID)
		e.oauthTokens(t, u.ID, "gone")
		path := "/v1/users/" + u.ID

		wantField(t, e.do(t, "DELETE", path+"?mode=hard", nil), 422, "reason")
		wantField(t, e.do(t, "DELETE", path+"?mode=hard", `{"reason":""}`), 422, "reason")
		problemOf(t, e.do(t, "GET", path+"/archive", nil), 404)

		r := e.send(t, req{method: "DELETE", path: path + "?mode=hard", token: "tok-write", body: `{"reason":"GDPR erasure request"}`})
		want(t, r, 204)
		if len(r.body) != 0 {
			t.Fatalf("204 with a body: %s", r.body)
		}
		problemOf(t, e.do(t, "GET", path, nil), 404)
		problemOf(t, e.do(t, "GET", path+"/sessions", nil), 404)
		problemOf(t, e.do(t, "DELETE", path+"?mode=hard&reason=again", nil), 404)
		if e.refreshAlive(t, "gone") {
			t.Fatal("refresh token survived a hard delete")
		}

		var a struct {
			UserID, Username, Email, Reason, DeletedBy string
			DeletedAt                                  time.Time `json:"deleted_at"`
		}
		ar := want(t, e.send(t, req{method: "GET", path: path + "/archive", token: "tok-read"}), 200)
		ar.json(t, &a)
		m := ar.obj(t)
		if m["user_id"] != u.ID || m["username"] != "gone" || m["email"] != "gone@example.com" ||
			m["reason"] != "GDPR erasure request" || m["deleted_by"] != "client:c_write" || a.DeletedAt.IsZero() {
			t.Fatalf("archive %s", ar.body)
		}
		arc, err := e.acc.GetUserArchive(e.ctx, u.ID)
		must(t, err)
		if arc.UserID != u.ID || arc.Email != u.Email || arc.Username != "gone" || arc.Reason != "GDPR erasure request" || arc.DeletedBy != "client:c_write" {
			t.Fatalf("archive %+v", arc)
		}
		e.wantEvent(t, u.ID, accounts.AuditUserHardDelete, "c_write")

		// The reason may come in the query instead.
		v := e.createUser(t, "gone2")
		want(t, e.do(t, "DELETE", "/v1/users/"+v.ID+"?mode=hard&reason="+url.QueryEscape("duplicate account"), nil), 204)
		arc, err = e.acc.GetUserArchive(e.ctx, v.ID)
		must(t, err)
		if arc.Reason != "duplicate account" {
			t.Fatalf("archive %+v", arc)
		}
	})
}

func TestSessionsListAndRevoke(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "sess")
		other := e.createUser(t, "sess2")
		c1, c2 := e.session(t, u.ID), e.session(t, u.ID)
		keep := e.session(t, other.ID)
		e.oauthTokens(t, u.ID, "sess")
		path := "/v1/users/" + u.ID + "/sessions"

		var list struct {
			Sessions []struct {
				ID         string    `json:"id"`
				IP         string    `json:"ip"`
				UserAgent  string    `json:"user_agent"`
				AuthTime   time.Time `json:"auth_time"`
				CreatedAt  time.Time `json:"created_at"`
				LastSeenAt time.Time `json:"last_seen_at"`
				ExpiresAt  time.Time `json:"expires_at"`
				AMR        []string  `json:"amr"`
				TokenHash  any       `json:"token_hash"`
			} `json:"sessions"`
		}
		r := want(t, e.send(t, req{method: "GET", path: path, token: "tok-read"}), 200)
		r.json(t, &list)
		if len(list.Sessions) != 2 {
			t.Fatalf("%d sessions: %s", len(list.Sessions), r.body)
		}
		for _, s := range list.Sessions {
			if s.ID == "" || s.IP != "192.0.2.7" || s.UserAgent != "Browser/1" || s.AuthTime.IsZero() || s.CreatedAt.IsZero() ||
				s.LastSeenAt.IsZero() || !s.ExpiresAt.After(time.Now()) || s.TokenHash != nil || len(s.AMR) != 1 {
				t.Fatalf("session %s", r.body)
			}
		}
		if strings.Contains(string(r.body), "token_hash") {
			t.Fatalf("token hash shown: %s", r.body)
		}

		want(t, e.send(t, req{method: "DELETE", path: path, token: "tok-write"}), 204)
		r = want(t, e.do(t, "GET", path, nil), 200)
		r.json(t, &list)
		if len(list.Sessions) != 0 {
			t.Fatalf("sessions after revoke: %s", r.body)
		}
		for _, c := range []string{c1, c2} {
			if _, _, err := e.acc.Session(e.ctx, c); !errors.Is(err, accounts.ErrNoSession) {
				t.Fatalf("session after revoke: %v", err)
			}
		}
		if e.refreshAlive(t, "sess") {
			t.Fatal("refresh token survived revoking every session")
		}
		if _, _, err := e.acc.Session(e.ctx, keep); err != nil {
			t.Fatalf("another user's session was revoked: %v", err)
		}
		e.wantEvent(t, u.ID, accounts.AuditSessionsRevoke, "c_write")
		problemOf(t, e.do(t, "GET", "/v1/users/u_nope/sessions", nil), 404)
		problemOf(t, e.do(t, "DELETE", "/v1/users/u_nope/sessions", nil), 404)
	})
}

func TestClearLockout(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "locked", map[string]any{"password": goodPW})
		for range 5 {
			_, _ = e.acc.Authenticate(e.ctx, "locked", "wrong password!")
		}
		if _, err := e.acc.Authenticate(e.ctx, "locked", goodPW); !errors.Is(err, accounts.ErrLocked) {
			t.Fatalf("setup: not locked: %v", err)
		}
		var got userJSON
		want(t, e.do(t, "GET", "/v1/users/"+u.ID, nil), 200).json(t, &got)
		if got.LockedUntil == nil || got.FailedLogins != 5 {
			t.Fatalf("%+v", got)
		}
		want(t, e.send(t, req{method: "DELETE", path: "/v1/users/" + u.ID + "/lockout", token: "tok-write"}), 204)
		want(t, e.do(t, "GET", "/v1/users/"+u.ID, nil), 200).json(t, &got)
		if got.LockedUntil != nil || got.FailedLogins != 0 {
			t.Fatalf("%+v", got)
		}
		if _, err := e.acc.Authenticate(e.ctx, "locked", goodPW); err != nil {
			t.Fatalf("sign-in after clearing the lockout: %v", err)
		}
		e.wantEvent(t, u.ID, accounts.AuditUserUnlock, "c_write")
		problemOf(t, e.do(t, "DELETE", "/v1/users/u_nope/lockout", nil), 404)
	})
}

func TestSetPassword(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "pw", map[string]any{"password": goodPW})
		cookie := e.session(t, u.ID)
		path := "/v1/users/" + u.ID + "/password"
		for _, tt := range []struct {
			body   string
			status int
			field  string
		}{
			{`{}`, 422, "password"},
			{`{"password":"short"}`, 422, "password"},
			{`{"password":"pw"}`, 422, "password"},
			{`{"password":123}`, 400, "password"},
			{`{"password":"x","old":"y"}`, 400, "old"},
		} {
			wantField(t, e.send(t, req{method: "PUT", path: path, token: "tok-write", body: tt.body}), tt.status, tt.field)
		}
		problemOf(t, e.do(t, "PUT", "/v1/users/u_nope/password", `{"password":"staple grape lantern"}`), 404)
		want(t, e.send(t, req{method: "PUT", path: path, token: "tok-write", body: `{"password":"staple grape lantern"}`}), 204)
		if _, err := e.acc.Authenticate(e.ctx, "pw", "staple grape lantern"); err != nil {
			t.Fatalf("new password: %v", err)
		}
		if _, err := e.acc.Authenticate(e.ctx, "pw", goodPW); err == nil {
			t.Fatal("old password still works")
		}
		if _, _, err := e.acc.Session(e.ctx, cookie); !errors.Is(err, accounts.ErrNoSession) {
			t.Fatalf("session after password set: %v", err)
		}
		e.wantEvent(t, u.ID, accounts.AuditUserPasswordSet, "c_write")
	})
}

func TestExport(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "exp", map[string]any{"password": goodPW})
		e.session(t, u.ID)
		c, _, err := e.acc.CreateClient(e.ctx, accounts.ClientSpec{Name: "App", RedirectURIs: []string{"https://app.example/cb"}})
		must(t, err)
		must(t, e.acc.GrantConsent(e.ctx, u.ID, c.ID, []string{"openid", "email"}))
		stored, err := e.st.GetUser(e.ctx, u.ID)
		must(t, err)
		sessions, err := e.st.ListUserBrowserSessions(e.ctx, u.ID)
		must(t, err)

		r := want(t, e.send(t, req{method: "GET", path: "/v1/users/" + u.ID + "/export", token: "tok-read"}), 200)
		if cd := r.header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") || !strings.Contains(cd, u.ID) {
			t.Fatalf("Content-Disposition %q", cd)
		}
		body := string(r.body)
		forbidden := []string{"password_hash", "PasswordHash", "token_hash", "TokenHash", "secret", "$argon2id$", stored.PasswordHash}
		for _, s := range sessions {
			forbidden = append(forbidden, base64.StdEncoding.EncodeToString(s.TokenHash), hex.EncodeToString(s.TokenHash),
				base64.RawURLEncoding.EncodeToString(s.TokenHash))
		}
		for _, f := range forbidden {
			if strings.Contains(body, f) {
				t.Fatalf("export contains %q: %s", f, body)
			}
		}
		var x struct {
			User     userJSON `json:"user"`
			Sessions []struct {
				ID string `json:"id"`
			} `json:"sessions"`
			Consents []struct {
				ClientID string   `json:"client_id"`
				Scopes   []string `json:"scopes"`
			} `json:"consents"`
			AuditEvents []struct {
				Action string `json:"action"`
			} `json:"audit_events"`
			ExportedAt time.Time `json:"exported_at"`
		}
		r.json(t, &x)
		if x.User.Email != "exp@example.com" || len(x.Sessions) != 1 || x.Sessions[0].ID != sessions[0].ID ||
			len(x.Consents) != 1 || x.Consents[0].ClientID != c.ID || len(x.AuditEvents) == 0 || x.ExportedAt.IsZero() {
			t.Fatalf("export %s", body)
		}
		problemOf(t, e.do(t, "GET", "/v1/users/u_nope/export", nil), 404)
	})
}

// ---- search ----

func TestSearchUsers(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		var tier struct{ ID string }
		want(t, e.do(t, "POST", "/v1/tiers", `{"name":"Pro"}`), 201).json(t, &tier)
		start := time.Now().UTC()
		var all []userJSON
		for i := range 13 {
			extra := map[string]any{"email_verified": i%2 == 0}
			if i%3 == 0 {
				extra["tier"] = tier.ID
			}
			all = append(all, e.createUser(t, fmt.Sprintf("user%02d", i), extra))
			e.clock.advance(time.Minute) // distinct creation times
		}
		cut := all[6].CreatedAt
		want(t, e.do(t, "POST", "/v1/users/"+all[4].ID+"/suspend", `{"reason":"x"}`), 200)
		want(t, e.do(t, "DELETE", "/v1/users/"+all[5].ID, nil), 200)
		ids := func(us []userJSON) []string {
			var out []string
			for _, u := range us {
				out = append(out, u.ID)
			}
			return out
		}
		filter := func(keep func(i int, u userJSON) bool) []string {
			var out []userJSON
			for i, u := range all {
				if keep(i, u) {
					out = append(out, u)
				}
			}
			return ids(out)
		}
		reverse := func(s []string) []string {
			out := make([]string, len(s))
			for i, v := range s {
				out[len(s)-1-i] = v
			}
			return out
		}

		tests := []struct {
			name  string
			query string
			want  []string // in order
		}{
			{"default: newest first", "", reverse(ids(all))},
			{"oldest first", "sort=created_at", ids(all)},
			{"by username", "sort=username", ids(all)},
			{"q matches username", "q=USER1&sort=username", filter(func(i int, _ userJSON) bool { return i >= 10 })},
			{"q matches email", "q=user03@exa&sort=username", filter(func(i int, _ userJSON) bool { return i == 3 })},
			{"q matches display name", "q=User+user07&sort=username", filter(func(i int, _ userJSON) bool { return i == 7 })},
			{"q is literal", "q=user_%25", nil},
			{"status", "status=suspended", filter(func(i int, _ userJSON) bool { return i == 4 })},
			{"deleted", "status=deleted", filter(func(i int, _ userJSON) bool { return i == 5 })},
			{"tier", "tier=" + tier.ID + "&sort=created_at", filter(func(i int, _ userJSON) bool { return i%3 == 0 })},
			{"email_verified", "email_verified=false&sort=created_at", filter(func(i int, _ userJSON) bool { return i%2 == 1 })},
			{"created_after is inclusive", "created_after=" + url.QueryEscape(cut.Format(time.RFC3339Nano)) + "&sort=created_at",
				filter(func(i int, _ userJSON) bool { return i >= 6 })},
			{"created_before is exclusive", "created_before=" + url.QueryEscape(cut.Format(time.RFC3339Nano)) + "&sort=created_at",
				filter(func(i int, _ userJSON) bool { return i < 6 })},
			{"date form", "created_after=" + start.AddDate(0, 0, 1).Format(time.DateOnly), filter(func(i int, u userJSON) bool {
				return !u.CreatedAt.Before(time.Date(start.Year(), start.Month(), start.Day()+1, 0, 0, 0, 0, time.UTC))
			})},
			{"combined", "tier=" + tier.ID + "&email_verified=true&sort=created_at", filter(func(i int, _ userJSON) bool { return i%6 == 0 })},
		}
		for _, tt := range tests {
			for _, limit := range []int{200, 4} {
				t.Run(fmt.Sprintf("%s limit %d", tt.name, limit), func(t *testing.T) {
					got := e.pages(t, "tok-read", "/v1/users?limit="+fmt.Sprint(limit)+"&"+tt.query)
					if strings.Join(got, ",") != strings.Join(tt.want, ",") {
						t.Fatalf("got  %v\nwant %v", got, tt.want)
					}
				})
			}
		}

		t.Run("exact lookups", func(t *testing.T) {
			for _, tt := range []struct {
				query string
				want  []string
			}{
				{"username=user03", []string{all[3].ID}},
				{"username=USER03", []string{all[3].ID}},
				{"email=User03@Example.com", []string{all[3].ID}},
				{"email=user03", nil},    // a username is not an email
				{"username=nobody", nil}, // unknown
				{"email=nobody@example.com", nil},
			} {
				var page struct {
					Users []userJSON `json:"users"`
					Next  *string    `json:"next"`
				}
				want(t, e.do(t, "GET", "/v1/users?"+tt.query, nil), 200).json(t, &page)
				if strings.Join(ids(page.Users), ",") != strings.Join(tt.want, ",") || page.Next != nil || page.Users == nil {
					t.Fatalf("%s: %+v", tt.query, page)
				}
			}
		})

		t.Run("fields", func(t *testing.T) {
			r := want(t, e.do(t, "GET", "/v1/users?username=user03&fields=email,status", nil), 200)
			users := r.obj(t)["users"].([]any)
			u := users[0].(map[string]any)
			if len(u) != 3 || u["id"] != all[3].ID || u["email"] != "user03@example.com" || u["status"] != "active" {
				t.Fatalf("%s", r.body)
			}
			wantField(t, e.do(t, "GET", "/v1/users?fields=email,password_hash", nil), 422, "fields")
		})

		t.Run("bad parameters", func(t *testing.T) {
			for _, tt := range []struct{ query, field string }{
				{"limit=0", "limit"},
				{"limit=201", "limit"},
				{"limit=ten", "limit"},
				{"sort=email", "sort"},
				{"status=gone", "status"},
				{"email_verified=maybe", "email_verified"},
				{"created_after=yesterday", "created_after"},
				{"created_before=2025-13-01", "created_before"},
				{"after=not-a-cursor!", "after"},
				{"q=" + strings.Repeat("x", 201), "q"},
				{"username=a&email=a@example.com", "email"},
				{"username=a&q=b", "q"},
				{"username=", "username"},
			} {
				wantField(t, e.do(t, "GET", "/v1/users?"+tt.query, nil), 422, tt.field)
			}
		})
	})
}

// pages follows next links from path and returns the user ids in order,
// failing if a user comes twice.
func (e *env) pages(t *testing.T, token, path string) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	for n := 0; path != ""; n++ {
		if n > 100 {
			t.Fatal("too many pages")
		}
		var page struct {
			Users []map[string]any `json:"users"`
			Next  *string          `json:"next"`
		}
		want(t, e.send(t, req{method: "GET", path: path, token: token}), 200).json(t, &page)
		if page.Users == nil {
			t.Fatalf("%s: users is null", path)
		}
		for _, u := range page.Users {
			id := u["id"].(string)
			if seen[id] {
				t.Fatalf("%s: %s twice", path, id)
			}
			seen[id] = true
			out = append(out, id)
		}
		path = ""
		if page.Next != nil {
			if len(page.Users) == 0 {
				t.Fatal("an empty page with a next link")
			}
			path = *page.Next
			if !strings.HasPrefix(path, "/v1/users?") || !strings.Contains(path, "after=") {
				t.Fatalf("next %q", path)
			}
		}
	}
	return out
}

// With only the basic search scope a caller sees ids and usernames, never
// an email or anything else, whatever it asks for.
func TestBasicSearchScope(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		for i := range 7 {
			e.createUser(t, fmt.Sprintf("basic%d", i), map[string]any{"email": fmt.Sprintf("basic%d@corp.example", i)})
		}
		for _, path := range []string{
			"/v1/users",
			"/v1/users?q=basic",
			"/v1/users?q=sic3",
			"/v1/users?fields=email,display_name,status",
			"/v1/users?username=basic3",
			"/v1/users?sort=username&limit=3",
		} {
			t.Run(path, func(t *testing.T) {
				r := want(t, e.send(t, req{method: "GET", path: path, token: "tok-basic"}), 200)
				if strings.Contains(string(r.body), "@") {
					t.Fatalf("the body contains an email: %s", r.body)
				}
				users := r.obj(t)["users"].([]any)
				if len(users) == 0 {
					t.Fatalf("nothing found: %s", r.body)
				}
				for _, u := range users {
					m := u.(map[string]any)
					if len(m) != 2 || m["id"] == nil || m["username"] == nil {
						t.Fatalf("user %v", m)
					}
				}
			})
		}
		// A substring of an email matches nothing: the basic scope must not
		// be an oracle for who has which address.
		for _, path := range []string{"/v1/users?q=corp.example", "/v1/users?q=basic3%40corp"} {
			t.Run(path, func(t *testing.T) {
				r := want(t, e.send(t, req{method: "GET", path: path, token: "tok-basic"}), 200)
				if users := r.obj(t)["users"].([]any); len(users) != 0 {
					t.Fatalf("an email search matched for the basic scope: %s", r.body)
				}
			})
		}
		for _, q := range []string{"email=basic3@corp.example", "sort=-created_at"} {
			problemOf(t, e.send(t, req{method: "GET", path: "/v1/users?" + q, token: "tok-basic"}), 403)
		}
		t.Run("pages", func(t *testing.T) {
			got := e.pages(t, "tok-basic", "/v1/users?q=basic&limit=2")
			if len(got) != 7 {
				t.Fatalf("%d users over the pages", len(got))
			}
		})
		t.Run("revealing filters need users.read", func(t *testing.T) {
			for _, q := range []string{"status=active", "tier=t_1", "email_verified=true", "created_after=2020-01-01", "created_before=2030-01-01"} {
				p := problemOf(t, e.send(t, req{method: "GET", path: "/v1/users?" + q, token: "tok-basic"}), 403)
				if !strings.Contains(p.Detail, "admin:users.read") {
					t.Fatalf("%s: %+v", q, p)
				}
			}
		})
		t.Run("users.read sees emails", func(t *testing.T) {
			r := want(t, e.send(t, req{method: "GET", path: "/v1/users?q=basic3", token: "tok-read"}), 200)
			if !strings.Contains(string(r.body), "basic3@corp.example") {
				t.Fatalf("%s", r.body)
			}
		})
		t.Run("basic cannot read a user", func(t *testing.T) {
			problemOf(t, e.send(t, req{method: "GET", path: "/v1/users/u_x", token: "tok-basic"}), 403)
		})
	})
}

func TestStats(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		var tier struct{ ID string }
		want(t, e.do(t, "POST", "/v1/tiers", `{"name":"Gold"}`), 201).json(t, &tier)
		us := []userJSON{e.createUser(t, "st1"), e.createUser(t, "st2"), e.createUser(t, "st3"), e.createUser(t, "st4", map[string]any{"tier": tier.ID})}
		want(t, e.do(t, "POST", "/v1/users/"+us[0].ID+"/suspend", `{"reason":"x"}`), 200)
		want(t, e.do(t, "DELETE", "/v1/users/"+us[1].ID, nil), 200)

		var st struct {
			Days          int              `json:"days"`
			ByStatus      map[string]int64 `json:"users_by_status"`
			ByTier        map[string]int64 `json:"users_by_tier"`
			SignupsPerDay []struct {
				Day   string `json:"day"`
				Count int64  `json:"count"`
			} `json:"signups_per_day"`
		}
		want(t, e.send(t, req{method: "GET", path: "/v1/stats?days=7", token: "tok-read"}), 200).json(t, &st)
		if st.Days != 7 || st.ByStatus["active"] != 2 || st.ByStatus["suspended"] != 1 || st.ByStatus["deleted"] != 1 ||
			st.ByTier[tier.ID] != 1 || st.ByTier["none"] != 3 || len(st.SignupsPerDay) != 7 {
			t.Fatalf("%+v", st)
		}
		last := st.SignupsPerDay[6]
		if last.Day != time.Now().UTC().Format(time.DateOnly) || last.Count != 4 {
			t.Fatalf("today %+v", last)
		}
		want(t, e.do(t, "GET", "/v1/stats", nil), 200).json(t, &st)
		if st.Days != 30 || len(st.SignupsPerDay) != 30 {
			t.Fatalf("default days: %d", len(st.SignupsPerDay))
		}
		for _, q := range []string{"days=0", "days=367", "days=week"} {
			wantField(t, e.do(t, "GET", "/v1/stats?"+q, nil), 422, "days")
		}
	})
}

// ---- import ----

func TestImportUsers(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		var tier struct{ ID string }
		want(t, e.do(t, "POST", "/v1/tiers", `{"name":"Legacy"}`), 201).json(t, &tier)
		bc, err := bcryptHash("bcrypt pass phrase")
		must(t, err)
		ah, err := accounts.NewArgon2id(accounts.Argon2Params{MemoryKiB: 2048, Iterations: 1, Parallelism: 1}, 1).Hash(e.ctx, "argon pass phrase")
		must(t, err)
		lines := strings.Join([]string{
			`{"username":"imp1","email":"imp1@example.com","password_hash":"` + bc + `","email_verified":true,"tier":"legacy"}`,
			`{"username":"imp2","email":"imp2@example.com","password_hash":"` + ah + `","created_at":"2020-05-01T10:00:00Z"}`,
			``,
			`{"username":"imp3","email":"not-an-email","password_hash":"` + bc + `"}`,
			`{"username":"imp4","email":"imp4@example.com","colour":"blue"}`,
			`{"username":"imp5","email":"imp5@example.com","tier":"nope"}`,
			`{"username":"imp6","email":"imp6@example.com","password_hash":"plain"}`,
			`not json`,
			`{"username":"imp1","email":"again@example.com"}`,
			`{"username":"imp9","email":"imp9@example.com","display_name":"Nine"}`,
			// Two records on one line: refused whole (the second used to
			// be dropped without a word).
			`{"username":"imp10","email":"imp10@example.com"} {"username":"imp11","email":"imp11@example.com"}`,
		}, "\n")
		r := e.send(t, req{method: "POST", path: "/v1/users:import", token: "tok-write", body: lines,
			hdr: map[string]string{"Content-Type": "application/x-ndjson"}})
		var out struct {
			Imported, Failed int
			Results          []accounts.ImportResult
		}
		want(t, r, 200).json(t, &out)
		if out.Imported != 3 || out.Failed != 7 || len(out.Results) != 10 {
			t.Fatalf("%s", r.body)
		}
		type res struct {
			ok    bool
			field string
		}
		wantRes := map[int]res{1: {true, ""}, 2: {true, ""}, 4: {false, "email"}, 5: {false, ""}, 6: {false, "tier"},
			7: {false, "password_hash"}, 8: {false, ""}, 9: {false, "username"}, 10: {true, ""}, 11: {false, ""}}
		for _, got := range out.Results {
			w, ok := wantRes[got.Line]
			if !ok || got.OK != w.ok || got.Field != w.field || (!got.OK && got.Error == "") || (got.OK && got.ID == "") {
				t.Fatalf("line %d: %+v, want %+v", got.Line, got, w)
			}
		}
		// The bad lines left nothing behind.
		for _, login := range []string{"imp3", "imp4", "imp5", "imp6", "again@example.com", "imp10", "imp11"} {
			if _, err := e.acc.FindUser(e.ctx, login); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("%s was written: %v", login, err)
			}
		}
		// Imported hashes keep working.
		u1, err := e.acc.Authenticate(e.ctx, "imp1", "bcrypt pass phrase")
		if err != nil {
			t.Fatalf("bcrypt import: %v", err)
		}
		u2, err := e.acc.Authenticate(e.ctx, "imp2@example.com", "argon pass phrase")
		if err != nil {
			t.Fatalf("argon2id import: %v", err)
		}
		if _, err := e.acc.Authenticate(e.ctx, "imp1", "wrong"); err == nil {
			t.Fatal("a wrong password passed")
		}
		if u1.TierID != tier.ID || !u1.EmailVerified || !u2.CreatedAt.Equal(time.Date(2020, 5, 1, 10, 0, 0, 0, time.UTC)) {
			t.Fatalf("imported %+v %+v", u1, u2)
		}
		e.wantEvent(t, u1.ID, accounts.AuditUserImport, "c_write")

		// application/jsonl is accepted too; JSON is not.
		want(t, e.send(t, req{method: "POST", path: "/v1/users:import", token: "tok-write", body: `{"username":"imp20","email":"imp20@example.com"}`,
			hdr: map[string]string{"Content-Type": "application/jsonl"}}), 200)
		problemOf(t, e.send(t, req{method: "POST", path: "/v1/users:import", token: "tok-write", body: `{}`}), 415)
		// Over 10 MiB nothing is imported.
		huge := strings.Repeat(`{"username":"bulkx","email":"bulk@example.com","display_name":"`+strings.Repeat("x", 900)+`"}`+"\n", 12<<10)
		problemOf(t, e.send(t, req{method: "POST", path: "/v1/users:import", token: "tok-write", body: huge,
			hdr: map[string]string{"Content-Type": "application/x-ndjson"}}), 413)
		if _, err := e.acc.FindUser(e.ctx, "bulkx"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("an oversized import wrote users: %v", err)
		}
	})
}

func bcryptHash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	return string(h), err
}
