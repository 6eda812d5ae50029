package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/internal/clientip"
	"github.com/latchkey/latchkey/internal/httpx"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// The account API lets a relying party act for the signed-in person with
// a bearer access token: account:read to look, account:write to change.
const (
	ScopeAccountRead  = "account:read"
	ScopeAccountWrite = "account:write"
)

// accountJSON is the person's account as the API shows it. The password
// hash, lockout state and internal fields are never shown; app_metadata
// is shown (it is about them) but only admins change it.
type accountJSON struct {
	ID                  string           `json:"id"`
	Username            string           `json:"username"`
	Email               string           `json:"email"`
	EmailVerified       bool             `json:"email_verified"`
	DisplayName         string           `json:"display_name"`
	PictureURL          string           `json:"picture_url"`
	Locale              string           `json:"locale"`
	GivenName           string           `json:"given_name"`
	FamilyName          string           `json:"family_name"`
	MiddleName          string           `json:"middle_name"`
	Nickname            string           `json:"nickname"`
	Website             string           `json:"website"`
	Zoneinfo            string           `json:"zoneinfo"`
	Birthdate           string           `json:"birthdate"`
	PhoneNumber         string           `json:"phone_number"`
	PhoneNumberVerified bool             `json:"phone_number_verified"`
	Address             *storage.Address `json:"address"`
	UserMetadata        json.RawMessage  `json:"user_metadata"`
	AppMetadata         json.RawMessage  `json:"app_metadata"`
	HasPassword         bool             `json:"has_password"`
	CreatedAt           time.Time        `json:"created_at"`
	UpdatedAt           time.Time        `json:"updated_at"`
	LastLoginAt         *time.Time       `json:"last_login_at"`
}

func jsonObject(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("{}")
	}
	return json.RawMessage(b)
}

func toAccountJSON(u *storage.User) accountJSON {
	a := accountJSON{ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		DisplayName: u.DisplayName, PictureURL: u.PictureURL, Locale: u.Locale,
		GivenName: u.GivenName, FamilyName: u.FamilyName, MiddleName: u.MiddleName, Nickname: u.Nickname,
		Website: u.Website, Zoneinfo: u.Zoneinfo, Birthdate: u.Birthdate, PhoneNumber: u.PhoneNumber,
		PhoneNumberVerified: u.PhoneNumberVerified, Address: u.Address, UserMetadata: jsonObject(u.UserMetadata),
		AppMetadata: jsonObject(u.AppMetadata), HasPassword: u.PasswordHash != "",
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
	if u.LastLoginAt != nil {
		t := u.LastLoginAt.UTC()
		a.LastLoginAt = &t
	}
	return a
}

type sessionJSON struct {
	ID         string    `json:"id"`
	Current    bool      `json:"current"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	AuthTime   time.Time `json:"auth_time"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// apiError is the JSON error body of the account API: an RFC 6749-style
// code, a message, and for validation failures the field at fault.
type apiError struct {
	Error       string            `json:"error"`
	Description string            `json:"error_description"`
	Fields      map[string]string `json:"fields,omitempty"`
}

func writeAPIJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, status int, code, desc string, fields map[string]string) {
	writeAPIJSON(w, status, apiError{Error: code, Description: desc, Fields: fields})
}

// accountCaller is who an account API request acts for.
type accountCaller struct {
	user      *storage.User
	sessionID string // the browser session the token came from, if known
}

// withAccount authenticates the bearer token, checks it carries scope and
// belongs to an active person, and calls h.
func (p *Provider) withAccount(scope string, h func(w http.ResponseWriter, r *http.Request, c accountCaller)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := fosite.AccessTokenFromRequest(r)
		if token == "" || r.URL.Query().Get("access_token") != "" {
			// RFC 6750 §2.3 query tokens leak into logs; only the header
			// (and, for form posts, the body) are accepted.
			w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey"`)
			writeAPIError(w, http.StatusUnauthorized, "invalid_request", "A bearer access token is required.", nil)
			return
		}
		use, ar, err := p.oauth.IntrospectToken(r.Context(), token, fosite.AccessToken, NewSession())
		if p.outage(w, "account api", err) {
			return
		}
		if err != nil || use != fosite.AccessToken { // fosite falls back to refresh tokens

			bearerErrorJSON(w, http.StatusUnauthorized, "invalid_token", "The access token is not active.")
			return
		}
		if !ar.GetGrantedScopes().Has(scope) {
			bearerErrorJSON(w, http.StatusForbidden, "insufficient_scope", "The access token lacks the "+scope+" scope.")
			return
		}
		sess, ok := ar.GetSession().(*Session)
		if !ok || sess.Subject == "" || sess.Subject == sess.ClientID {
			bearerErrorJSON(w, http.StatusForbidden, "invalid_token", "The access token does not belong to a person.")
			return
		}
		user, err := p.accounts.GetUser(r.Context(), sess.Subject)
		if p.outage(w, "account api", err) {
			return
		}
		if err != nil {
			bearerErrorJSON(w, http.StatusUnauthorized, "invalid_token", "The account is not active.")
			return
		}
		ctx := accounts.WithActor(r.Context(), accounts.Actor{Type: storage.ActorUser, ID: user.ID, IP: clientip.From(r), UserAgent: r.UserAgent()})
		h(w, r.WithContext(ctx), accountCaller{user: user, sessionID: sess.SessionID})
	})
}

func bearerErrorJSON(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="latchkey", error=%q, error_description=%q`, code, desc))
	writeAPIError(w, status, code, desc, nil)
}

// decodeStrict reads a JSON object into v, refusing unknown fields,
// trailing data and bodies over 16 KiB; the error names the problem.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return errors.New("the body must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<10))
	if err != nil {
		return errors.New("the body is too large")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the body is not valid: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	// Token, not More: More is false before a stray '}' or ']'.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("the body has data after the JSON object")
	}
	// PostgreSQL refuses NUL in text: a "\u0000" escape is refused here,
	// naming its field, instead of failing in the store.
	if field, bad := httpx.InvalidJSONText(body); bad {
		return &fieldError{field: field, msg: field + " " + httpx.TextRule}
	}
	return nil
}

// fieldError is a body decodeStrict refused because of one field.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.msg }

// writeBodyError answers 400 for a body decodeStrict refused, naming the
// field at fault when there is one.
func writeBodyError(w http.ResponseWriter, err error) {
	var fields map[string]string
	var fe *fieldError
	if errors.As(err, &fe) {
		fields = map[string]string{fe.field: httpx.TextRule}
	}
	writeAPIError(w, http.StatusBadRequest, "invalid_request", err.Error(), fields)
}

// apiFail writes err: a validation error names its field (422), anything
// else is a 500.
func (p *Provider) apiFail(w http.ResponseWriter, err error) {
	var limited errRecheckLimited
	if errors.As(err, &limited) {
		w.Header().Set("Retry-After", strconv.Itoa(int((max(limited.wait, time.Second)+time.Second-1)/time.Second)))
		writeAPIError(w, http.StatusTooManyRequests, "too_many_requests", "Too many password attempts; try again later.", nil)
		return
	}
	var ve *accounts.ValidationError
	if errors.As(err, &ve) {
		writeAPIError(w, http.StatusUnprocessableEntity, "invalid_request", ve.Error(), map[string]string{ve.Field: ve.Message})
		return
	}
	if errors.Is(err, storage.ErrNotFound) {
		writeAPIError(w, http.StatusNotFound, "not_found", "Not found.", nil)
		return
	}
	if p.outage(w, "account api", err) {
		return
	}
	p.log.Error("account api", "err", err)
	writeAPIError(w, http.StatusInternalServerError, "server_error", "Something went wrong.", nil)
}

// errRecheckLimited: the account's password was checked too often through
// the API; a stolen token cannot guess it at will.
type errRecheckLimited struct{ wait time.Duration }

func (e errRecheckLimited) Error() string { return "too many password attempts" }

// recheck is the account API's accounts.BeforePasswordCheck: the pages'
// per-account sign-in limit.
// When the limit cannot be checked the error (an outage) refuses the
// check, so it fails closed.
func (p *Provider) recheck(ctx context.Context, userID string) accounts.BeforePasswordCheck {
	return func() error {
		if p.recheckLimit == nil {
			return nil
		}
		ok, wait, err := p.recheckLimit.Allow(ctx, "login:"+accounts.AccountLimitKey(userID))
		if err != nil {
			return fmt.Errorf("%w: checking the password rate limit: %w", storage.ErrUnavailable, err)
		}
		if !ok {
			return errRecheckLimited{wait}
		}
		return nil
	}
}

func (p *Provider) handleAccountGet() http.Handler {
	return p.withAccount(ScopeAccountRead, func(w http.ResponseWriter, r *http.Request, c accountCaller) {
		writeAPIJSON(w, http.StatusOK, toAccountJSON(c.user))
	})
}

// handleAccountPatch changes the profile. A new email address is not set
// directly: a confirmation link goes to it (as on the account page).
func (p *Provider) handleAccountPatch() http.Handler {
	return p.withAccount(ScopeAccountWrite, func(w http.ResponseWriter, r *http.Request, c accountCaller) {
		var raw map[string]json.RawMessage
		if err := decodeStrict(w, r, &raw); err != nil {
			writeBodyError(w, err)
			return
		}
		if err := accounts.CheckSettableFields(slices.Sorted(maps.Keys(raw))); err != nil {
			p.apiFail(w, err)
			return
		}
		var body struct {
			Username     *string          `json:"username"`
			DisplayName  *string          `json:"display_name"`
			PictureURL   *string          `json:"picture_url"`
			Locale       *string          `json:"locale"`
			GivenName    *string          `json:"given_name"`
			FamilyName   *string          `json:"family_name"`
			MiddleName   *string          `json:"middle_name"`
			Nickname     *string          `json:"nickname"`
			Website      *string          `json:"website"`
			Zoneinfo     *string          `json:"zoneinfo"`
			Birthdate    *string          `json:"birthdate"`
			PhoneNumber  *string          `json:"phone_number"`
			Address      *storage.Address `json:"address"`
			UserMetadata *json.RawMessage `json:"user_metadata"`
			Email        *string          `json:"email"`
			// CurrentPassword is required with Email: a token alone must
			// not be enough to move the account to another address.
			CurrentPassword *string `json:"current_password"`
		}
		// Re-decode the checked object into the typed form (unknown
		// fields are refused here).
		b, _ := json.Marshal(raw)
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			writeAPIError(w, http.StatusBadRequest, "invalid_request",
				"the body is not valid: "+strings.TrimPrefix(err.Error(), "json: "), nil)
			return
		}
		user, moved, err := p.accounts.UpdateProfileByToken(r.Context(), c.user, accounts.TokenProfileChange{
			ProfileUpdate: accounts.ProfileUpdate{Username: body.Username, DisplayName: body.DisplayName,
				PictureURL: body.PictureURL, Locale: body.Locale, GivenName: body.GivenName, FamilyName: body.FamilyName,
				MiddleName: body.MiddleName, Nickname: body.Nickname, Website: body.Website, Zoneinfo: body.Zoneinfo,
				Birthdate: body.Birthdate, PhoneNumber: body.PhoneNumber, Address: addressOrClear(raw, body.Address),
				UserMetadata: rawBytes(raw, "user_metadata")},
			Email: body.Email, CurrentPassword: body.CurrentPassword,
		}, p.recheck(r.Context(), c.user.ID))
		if err != nil {
			p.apiFail(w, err)
			return
		}
		status := http.StatusOK
		if moved {
			status = http.StatusAccepted // the email changes once confirmed
		}
		writeAPIJSON(w, status, toAccountJSON(user))
	})
}

func (p *Provider) handleAccountPassword() http.Handler {
	return p.withAccount(ScopeAccountWrite, func(w http.ResponseWriter, r *http.Request, c accountCaller) {
		var body struct {
			CurrentPassword string `json:"current_password"`
			NewPassword     string `json:"new_password"`
		}
		if err := decodeStrict(w, r, &body); err != nil {
			writeBodyError(w, err)
			return
		}
		if err := p.accounts.ChangePasswordByToken(r.Context(), c.user, body.CurrentPassword, body.NewPassword,
			c.sessionID, p.recheck(r.Context(), c.user.ID)); err != nil {
			p.apiFail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (p *Provider) handleAccountDelete() http.Handler {
	return p.withAccount(ScopeAccountWrite, func(w http.ResponseWriter, r *http.Request, c accountCaller) {
		var body struct {
			Password string `json:"password"`
		}
		if err := decodeStrict(w, r, &body); err != nil {
			writeBodyError(w, err)
			return
		}
		if err := p.accounts.DeleteAccountByToken(r.Context(), c.user, body.Password, p.recheck(r.Context(), c.user.ID)); err != nil {
			p.apiFail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (p *Provider) handleAccountSessions() http.Handler {
	return p.withAccount(ScopeAccountRead, func(w http.ResponseWriter, r *http.Request, c accountCaller) {
		ss, err := p.accounts.ListSessions(r.Context(), c.user.ID, c.sessionID)
		if err != nil {
			p.apiFail(w, err)
			return
		}
		out := make([]sessionJSON, 0, len(ss))
		for _, s := range ss {
			out = append(out, sessionJSON{ID: s.ID, Current: s.Current, IP: s.IP, UserAgent: s.UserAgent,
				AuthTime: s.AuthTime.UTC(), CreatedAt: s.CreatedAt.UTC(), LastSeenAt: s.LastSeenAt.UTC(), ExpiresAt: s.ExpiresAt.UTC()})
		}
		writeAPIJSON(w, http.StatusOK, map[string]any{"sessions": out})
	})
}

func (p *Provider) handleAccountSessionDelete() http.Handler {
	return p.withAccount(ScopeAccountWrite, func(w http.ResponseWriter, r *http.Request, c accountCaller) {
		if err := p.accounts.RevokeSession(r.Context(), c.user.ID, mux.Vars(r)["id"]); err != nil {
			p.apiFail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// addressOrClear is the address change of a PATCH: a null address clears
// it (Address{}), an absent one leaves it.
func addressOrClear(raw map[string]json.RawMessage, a *storage.Address) *storage.Address {
	if v, ok := raw["address"]; ok && strings.TrimSpace(string(v)) == "null" {
		return &storage.Address{}
	}
	return a
}

// rawBytes is a JSON object field of a PATCH as its bytes (null clears
// it; the rules check it is an object); nil when absent.
func rawBytes(raw map[string]json.RawMessage, name string) *[]byte {
	v, ok := raw[name]
	if !ok {
		return nil
	}
	b := []byte(v)
	return &b
}
