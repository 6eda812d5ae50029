package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// writeUser answers with one user and its ETag.
func writeUser(w http.ResponseWriter, r *http.Request, d Deps, status int, u *storage.User) error {
	mfa, err := withMFA(r.Context(), d, []storage.User{*u})
	if err != nil {
		return err
	}
	m, err := d.Accounts.Memberships(r.Context(), u.ID)
	if err != nil {
		return err
	}
	v := viewUser(u, mfa[u.ID])
	v.Groups, v.Roles = viewMemberships(m)
	w.Header().Set("ETag", etag(u))
	writeJSON(w, status, v)
	return nil
}

// withMFA says which of users have a confirmed second factor, in one
// query for a page of them.
func withMFA(ctx context.Context, d Deps, users []storage.User) (map[string]bool, error) {
	ids := make([]string, len(users))
	for i := range users {
		ids[i] = users[i].ID
	}
	return d.Accounts.MFAEnabledUsers(ctx, ids)
}

func handleCreateUser(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Username      string  `json:"username"`
			Email         string  `json:"email"`
			DisplayName   string  `json:"display_name"`
			Password      string  `json:"password"`
			PasswordHash  string  `json:"password_hash"`
			EmailVerified bool    `json:"email_verified"`
			Tier          *string `json:"tier"`
		}
		if err := decodeJSON(w, r, &in, false); err != nil {
			return err
		}
		nu := accounts.NewUser{Username: in.Username, Email: in.Email, DisplayName: in.DisplayName,
			Password: in.Password, PasswordHash: in.PasswordHash, EmailVerified: in.EmailVerified}
		if in.Tier != nil {
			if nu.TierID = strings.TrimSpace(*in.Tier); nu.TierID == "" {
				return invalidField("tier", "must be a tier id, or left out for the default tier")
			}
		}
		u, err := d.Accounts.CreateUser(r.Context(), nu)
		if err != nil {
			return err
		}
		// Putting the user on a tier moved its version after CreateUser
		// read it: answer with the stored user, so the ETag is current.
		if u, err = d.Accounts.GetUserAny(r.Context(), u.ID); err != nil {
			return err
		}
		w.Header().Set("Location", location("/v1/users", u.ID))
		return writeUser(w, r, d, http.StatusCreated, u)
	})
}

func handleGetUser(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		u, err := d.Accounts.GetUserAny(r.Context(), pathVar(r, "id"))
		if err != nil {
			return err
		}
		if inm := r.Header.Get("If-None-Match"); inm != "" && (strings.TrimSpace(inm) == "*" || etagListHas(inm, etag(u))) {
			w.Header().Set("ETag", etag(u))
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		return writeUser(w, r, d, http.StatusOK, u)
	})
}

// etagListHas reports whether a comma-separated If-None-Match list names
// tag (weak comparison, as RFC 9110 §13.1.2 asks).
func etagListHas(list, tag string) bool {
	for _, t := range strings.Split(list, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == tag {
			return true
		}
	}
	return false
}

// ifMatch reads If-Match: the user version it names (zero for "*") and
// whether the header was sent. A tag that is not one of ours can match no
// version: 412 at once.
func ifMatch(r *http.Request) (time.Time, bool, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return time.Time{}, false, nil
	}
	if h == "*" {
		return time.Time{}, true, nil
	}
	if len(h) < 3 || h[0] != '"' || h[len(h)-1] != '"' {
		return time.Time{}, true, problem("precondition-failed", "If-Match must be one strong ETag from GET /v1/users/{id}")
	}
	n, err := strconv.ParseInt(h[1:len(h)-1], 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, true, problem("precondition-failed", "If-Match names no version of this user")
	}
	return time.Unix(0, n).UTC(), true, nil
}

// The user fields PATCH may change, and those it refuses (with where to
// change them instead).
var (
	userPatchable = []string{"username", "email", "email_verified", "display_name", "picture_url", "locale",
		"given_name", "family_name", "middle_name", "nickname", "website", "zoneinfo", "birthdate", "phone_number",
		"phone_number_verified", "address", "user_metadata", "app_metadata"}
	userProtected = map[string]string{
		"id":             "cannot be changed",
		"status":         "cannot be changed with PATCH; use POST /v1/users/{id}/suspend, /unsuspend, /restore or DELETE /v1/users/{id}",
		"tier":           "cannot be changed with PATCH; use PUT /v1/users/{id}/tier",
		"tier_id":        "cannot be changed with PATCH; use PUT /v1/users/{id}/tier",
		"created_at":     "cannot be changed",
		"updated_at":     "is set by the server",
		"deleted_at":     "cannot be changed with PATCH; use DELETE /v1/users/{id} or POST /v1/users/{id}/restore",
		"password":       "cannot be changed with PATCH; use PUT /v1/users/{id}/password",
		"password_hash":  "cannot be changed with PATCH; use PUT /v1/users/{id}/password",
		"has_password":   "is read-only; use PUT /v1/users/{id}/password",
		"locked_until":   "cannot be changed with PATCH; use DELETE /v1/users/{id}/lockout",
		"failed_logins":  "cannot be changed with PATCH; use DELETE /v1/users/{id}/lockout",
		"last_failed_at": "cannot be changed with PATCH; use DELETE /v1/users/{id}/lockout",
		"last_login_at":  "is set by the server at each sign-in",
		"groups":         "cannot be changed with PATCH; use PUT/DELETE /v1/groups/{id}/members/{user_id}",
		"roles":          "cannot be changed with PATCH; use PUT/DELETE /v1/users/{id}/roles/{role_id}",
	}
)

func handlePatchUser(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		id := pathVar(r, "id")
		p, err := decodePatch(w, r, userPatchable, userProtected)
		if err != nil {
			return err
		}
		version, conditional, err := ifMatch(r)
		if err != nil {
			return err
		}
		var up accounts.UserUpdate
		for _, f := range []struct {
			name      string
			dst       **string
			clearable bool
		}{
			{"username", &up.Username, false},
			{"email", &up.Email, false},
			{"display_name", &up.DisplayName, true},
			{"picture_url", &up.PictureURL, true},
			{"locale", &up.Locale, true},
			{"given_name", &up.GivenName, true},
			{"family_name", &up.FamilyName, true},
			{"middle_name", &up.MiddleName, true},
			{"nickname", &up.Nickname, true},
			{"website", &up.Website, true},
			{"zoneinfo", &up.Zoneinfo, true},
			{"birthdate", &up.Birthdate, true},
			{"phone_number", &up.PhoneNumber, true},
		} {
			if *f.dst, err = p.str(f.name, f.clearable); err != nil {
				return err
			}
		}
		if up.EmailVerified, err = p.boolean("email_verified"); err != nil {
			return err
		}
		if up.PhoneNumberVerified, err = p.boolean("phone_number_verified"); err != nil {
			return err
		}
		if up.Address, err = p.address("address"); err != nil {
			return err
		}
		if up.UserMetadata, err = p.object("user_metadata"); err != nil {
			return err
		}
		if up.AppMetadata, err = p.object("app_metadata"); err != nil {
			return err
		}
		if len(p) == 0 {
			// Nothing to change: answer with the user as it is (still
			// honouring If-Match), without an empty audit event.
			u, err := d.Accounts.GetUserAny(r.Context(), id)
			if err != nil {
				return err
			}
			if conditional && !version.IsZero() && !u.UpdatedAt.Equal(version) {
				return problem("precondition-failed", "the user changed since the ETag was read")
			}
			return writeUser(w, r, d, http.StatusOK, u)
		}
		u, err := d.Accounts.AdminUpdateUser(r.Context(), id, version, up)
		if conditional && errors.Is(err, storage.ErrConflict) {
			return problem("precondition-failed", "the user changed since the ETag was read; GET it again and retry")
		}
		if err != nil {
			return err
		}
		return writeUser(w, r, d, http.StatusOK, u)
	})
}

// reasonBody is the optional body of the lifecycle actions.
type reasonBody struct {
	Reason *string `json:"reason"`
}

func (b reasonBody) get() string {
	if b.Reason == nil {
		return ""
	}
	return *b.Reason
}

func handleDeleteUser(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		id := pathVar(r, "id")
		q := r.URL.Query()
		var in reasonBody
		if err := decodeJSON(w, r, &in, true); err != nil {
			return err
		}
		reason := in.get()
		if in.Reason == nil {
			reason = q.Get("reason")
		}
		switch mode := q.Get("mode"); mode {
		case "", "soft":
			u, err := d.Accounts.SoftDelete(r.Context(), id, reason)
			if err != nil {
				return err
			}
			return writeUser(w, r, d, http.StatusOK, u)
		case "hard":
			if err := d.Accounts.HardDelete(r.Context(), id, reason); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			return invalidField("mode", "must be soft or hard")
		}
		return nil
	})
}

// handleUserAction serves suspend, unsuspend and restore: a body with an
// optional reason (the rules decide when it is required), the user back.
// action is a method expression such as Accounts.Suspend.
func handleUserAction(d Deps, action func(a Accounts, ctx context.Context, id, reason string) (*storage.User, error)) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		var in reasonBody
		if err := decodeJSON(w, r, &in, true); err != nil {
			return err
		}
		u, err := action(d.Accounts, r.Context(), pathVar(r, "id"), in.get())
		if err != nil {
			return err
		}
		return writeUser(w, r, d, http.StatusOK, u)
	})
}

func handleSuspendUser(d Deps) http.Handler   { return handleUserAction(d, Accounts.Suspend) }
func handleUnsuspendUser(d Deps) http.Handler { return handleUserAction(d, Accounts.Unsuspend) }
func handleRestoreUser(d Deps) http.Handler   { return handleUserAction(d, Accounts.Restore) }

func handleSetPassword(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Password *string `json:"password"`
		}
		if err := decodeJSON(w, r, &in, false); err != nil {
			return err
		}
		if in.Password == nil {
			return invalidField("password", "is required")
		}
		if err := d.Accounts.SetPassword(r.Context(), pathVar(r, "id"), *in.Password); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func handleListSessions(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		ss, err := d.Accounts.UserSessions(r.Context(), pathVar(r, "id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"sessions": viewSessions(ss)})
		return nil
	})
}

func handleRevokeSessions(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		if err := d.Accounts.RevokeUserSessions(r.Context(), pathVar(r, "id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func handleClearLockout(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		if err := d.Accounts.ClearLockout(r.Context(), pathVar(r, "id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func handleExportUser(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		x, err := d.Accounts.ExportUser(r.Context(), pathVar(r, "id"))
		if err != nil {
			return err
		}
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment",
			map[string]string{"filename": "latchkey-user-" + x.User.ID + ".json"}))
		writeJSON(w, http.StatusOK, viewExport(x))
		return nil
	})
}

func handleGetArchive(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		a, err := d.Accounts.GetUserArchive(r.Context(), pathVar(r, "id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewArchive(a))
		return nil
	})
}

type tierRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func handleUserRateLimits(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		t, limits, err := d.Accounts.UserRateLimits(r.Context(), pathVar(r, "id"))
		if err != nil {
			return err
		}
		var ref *tierRef
		if t != nil {
			ref = &tierRef{ID: t.ID, Name: t.Name}
		}
		writeJSON(w, http.StatusOK, map[string]any{"tier": ref, "rate_limits": viewRateLimits(limits)})
		return nil
	})
}

func handleSetUserTier(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Tier json.RawMessage `json:"tier"`
		}
		if err := decodeJSON(w, r, &in, false); err != nil {
			return err
		}
		if in.Tier == nil {
			return invalidField("tier", "is required (a tier id, or null for none)")
		}
		var tierID string
		if !isNull(in.Tier) {
			if err := json.Unmarshal(in.Tier, &tierID); err != nil {
				return problem("invalid-json", "tier: must be a string or null", FieldError{Field: "tier", Message: "must be a string or null"})
			}
			if tierID = strings.TrimSpace(tierID); tierID == "" {
				return invalidField("tier", "must be a tier id, or null for none")
			}
		}
		ctx := r.Context()
		id := pathVar(r, "id")
		// AssignTier's ErrNotFound does not say whether the user or the
		// tier is missing; only the user is a 404.
		if _, err := d.Accounts.GetUserAny(ctx, id); err != nil {
			return err
		}
		if tierID != "" {
			if _, err := d.Accounts.GetTier(ctx, tierID); errors.Is(err, storage.ErrNotFound) {
				return invalidField("tier", "no such tier")
			} else if err != nil {
				return err
			}
		}
		u, err := d.Accounts.AssignTier(ctx, id, tierID)
		if err != nil {
			return err
		}
		return writeUser(w, r, d, http.StatusOK, u)
	})
}

// Import media types: JSON Lines under either of its names.
var importTypes = []string{"application/x-ndjson", "application/jsonl"}

func handleImportUsers(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		if err := checkMediaType(r, importTypes...); err != nil {
			return err
		}
		// Read it all first: a body over the limit is refused before any
		// line is imported.
		body, err := readBody(w, r, maxImportBody)
		if err != nil {
			return err
		}
		results, err := d.Accounts.ImportUsers(r.Context(), bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("import stopped after %d lines: %w", len(results), err)
		}
		ok := 0
		for _, res := range results {
			if res.OK {
				ok++
			}
		}
		if results == nil {
			results = []accounts.ImportResult{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"imported": ok, "failed": len(results) - ok, "results": results})
		return nil
	})
}

// Search filters that reveal more than id and username: a caller with only
// the basic search scope may not use them.
var fullFilters = []string{"status", "tier", "email_verified", "created_after", "created_before", "group", "role",
	"last_login_after", "last_login_before"}

// Parameters that an exact lookup (?username=, ?email=) cannot be combined with.
var searchParams = []string{"q", "status", "tier", "email_verified", "created_after", "created_before", "group", "role",
	"last_login_after", "last_login_before", "sort", "after"}

type basicUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
}

func handleListUsers(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		full := callerFrom(ctx).has(ScopeUsersRead)
		q := r.URL.Query()
		if !full {
			// A basic caller learns ids and usernames only: no filter, exact
			// lookup, substring match or cursor may reveal an email or any
			// other attribute.
			for _, f := range append(fullFilters, "email") {
				if q.Has(f) {
					return problemf("insufficient-scope", "filtering by %s needs scope %s", f, ScopeUsersRead)
				}
			}
			if s := q.Get("sort"); s != "" && s != string(storage.SortUsernameAsc) {
				return problemf("insufficient-scope", "sorting by %s needs scope %s", s, ScopeUsersRead)
			}
		}
		fields, err := userFields(q)
		if err != nil {
			return err
		}
		var users []storage.User
		var next *string
		if q.Has("username") || q.Has("email") {
			if users, err = lookupUser(d, r, q); err != nil {
				return err
			}
		} else {
			uq := storage.UserQuery{Q: q.Get("q"), Status: storage.UserStatus(q.Get("status")), TierID: q.Get("tier"),
				GroupID: q.Get("group"), RoleID: q.Get("role"), Sort: storage.UserSort(q.Get("sort")), After: q.Get("after")}
			if !full {
				uq.UsernameOnly, uq.Sort = true, storage.SortUsernameAsc // the cursor then holds a username, not a date
			}
			if uq.EmailVerified, err = qBool(q, "email_verified"); err != nil {
				return err
			}
			if uq.CreatedAfter, err = qTime(q, "created_after"); err != nil {
				return err
			}
			if uq.CreatedBefore, err = qTime(q, "created_before"); err != nil {
				return err
			}
			if uq.LastLoginAfter, err = qTime(q, "last_login_after"); err != nil {
				return err
			}
			if uq.LastLoginBefore, err = qTime(q, "last_login_before"); err != nil {
				return err
			}
			if uq.Limit, err = qInt(q, "limit", 50, 1, 200); err != nil {
				return err
			}
			page, err := d.Accounts.SearchUsers(ctx, uq)
			if err != nil {
				return err
			}
			users, next = page.Users, nextLink(r, page.Next)
		}
		mfa, err := withMFA(ctx, d, users)
		if err != nil {
			return err
		}
		out := make([]any, 0, len(users))
		for i := range users {
			switch {
			case !full:
				// Never more than id and username, whatever was asked.
				out = append(out, basicUser{ID: users[i].ID, Username: users[i].Username})
			case fields != nil:
				v := viewUser(&users[i], mfa[users[i].ID])
				m := make(map[string]any, len(fields))
				for _, f := range fields {
					m[f] = v.field(f)
				}
				out = append(out, m)
			default:
				out = append(out, viewUser(&users[i], mfa[users[i].ID]))
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"users": out, "next": next})
		return nil
	})
}

// userFields parses ?fields= (nil: all fields); id is always included.
func userFields(q map[string][]string) ([]string, error) {
	list := qList(q, "fields")
	if len(list) == 0 {
		return nil, nil
	}
	out := []string{"id"}
	for _, f := range list {
		known := false
		for _, n := range userFieldNames {
			known = known || n == f
		}
		if !known {
			return nil, invalidField("fields", fmt.Sprintf("%q is not a user field", f))
		}
		if f != "id" {
			out = append(out, f)
		}
	}
	return out, nil
}

// lookupUser serves ?username= and ?email=: exact, a list of 0 or 1.
func lookupUser(d Deps, r *http.Request, q map[string][]string) ([]storage.User, error) {
	vals := func(k string) (string, bool) {
		v, ok := q[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		return strings.TrimSpace(v[0]), true
	}
	username, byName := vals("username")
	email, byEmail := vals("email")
	if byName && byEmail {
		return nil, invalidField("email", "give username or email, not both")
	}
	for _, p := range searchParams {
		if _, ok := q[p]; ok {
			return nil, invalidField(p, "cannot be combined with an exact username or email lookup")
		}
	}
	// Usernames are stored lowercase; emails compare ignoring case.
	login, field := strings.ToLower(username), "username"
	if byEmail {
		login, field = email, "email"
	}
	if login == "" {
		return nil, invalidField(field, "must not be empty")
	}
	u, err := d.Accounts.FindUser(r.Context(), login)
	if errors.Is(err, storage.ErrNotFound) {
		return []storage.User{}, nil
	}
	if err != nil {
		return nil, err
	}
	// FindUser matches either column; keep only a match on the one asked.
	if (byName && u.Username != login) || (byEmail && !strings.EqualFold(u.Email, login)) {
		return []storage.User{}, nil
	}
	return []storage.User{*u}, nil
}

func handleStats(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		days, err := qInt(r.URL.Query(), "days", 30, 1, 366)
		if err != nil {
			return err
		}
		st, err := d.Accounts.Stats(r.Context(), days)
		if err != nil {
			return err
		}
		byStatus := map[string]int64{}
		for _, s := range []storage.UserStatus{storage.UserActive, storage.UserSuspended, storage.UserDeleted} {
			byStatus[string(s)] = 0
		}
		for s, n := range st.ByStatus {
			byStatus[string(s)] = n
		}
		byTier := map[string]int64{}
		for t, n := range st.ByTier {
			if t == "" {
				t = "none"
			}
			byTier[t] += n
		}
		type day struct {
			Day   string `json:"day"`
			Count int64  `json:"count"`
		}
		perDay := make([]day, 0, len(st.SignupsPerDay))
		for _, dc := range st.SignupsPerDay {
			perDay = append(perDay, day{dc.Day, dc.Count})
		}
		active := map[string]int64{}
		for n, c := range st.ActiveUsers {
			active[strconv.Itoa(n)+"d"] = c
		}
		writeJSON(w, http.StatusOK, map[string]any{"days": days, "users_by_status": byStatus,
			"users_by_tier": byTier, "signups_per_day": perDay, "active_users": active})
		return nil
	})
}

// identityView is a linked upstream account.
type identityView struct {
	Upstream   string    `json:"upstream"`
	Subject    string    `json:"subject"`
	Email      string    `json:"email"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
}

func handleListIdentities(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		id := pathVar(r, "id")
		if _, err := d.Accounts.GetUserAny(r.Context(), id); err != nil {
			return err
		}
		ids, err := d.Accounts.ListIdentities(r.Context(), id)
		if err != nil {
			return err
		}
		out := make([]identityView, 0, len(ids))
		for _, i := range ids {
			out = append(out, identityView{Upstream: i.UpstreamID, Subject: i.Subject, Email: i.Email,
				CreatedAt: i.CreatedAt.UTC(), LastUsedAt: i.LastUsedAt.UTC()})
		}
		writeJSON(w, http.StatusOK, map[string]any{"identities": out})
		return nil
	})
}

func handleDeleteIdentity(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		if err := d.Accounts.AdminUnlinkIdentity(r.Context(), pathVar(r, "id"), pathVar(r, "upstream"), pathVar(r, "subject")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
