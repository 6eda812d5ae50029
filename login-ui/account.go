package loginui

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// accountNotices are the success messages the account page shows after a
// change (?saved=…), so that a reload does not repeat the POST.
func (s Strings) accountNotice(key string) string {
	return map[string]string{
		"profile":     s.Saved,
		"email":       s.EmailChangeSent,
		"password":    s.PasswordChanged,
		"session":     s.SessionEnded,
		"app":         s.AppRevoked,
		"identity":    s.IdentityUnlinked,
		"mfa":         s.MFAEnabledNotice,
		"mfa_removed": s.FactorRemoved,
		"passkey":     s.PasskeyAdded,
	}[key]
}

// signedIn returns the browser's session and user, or sends the browser
// to sign in first and returns ok=false.
func (u *UI) signedIn(w http.ResponseWriter, r *http.Request) (*storage.BrowserSession, *storage.User, bool) {
	sess, user, err := u.flow.CurrentSession(r)
	if err == nil {
		return sess, user, true
	}
	if !errors.Is(err, accounts.ErrNoSession) {
		u.internal(w, r, err)
		return nil, nil, false
	}
	http.Redirect(w, r, "/login?next="+url.QueryEscape("/account"), http.StatusFound)
	return nil, nil, false
}

// accountPage renders the account page for user with the given form state.
func (u *UI) accountPage(w http.ResponseWriter, r *http.Request, status int, sess *storage.BrowserSession, user *storage.User, data page) {
	ctx := r.Context()
	sessions, err := u.accounts.ListSessions(ctx, user.ID, sess.ID)
	if err != nil {
		u.internal(w, r, err)
		return
	}
	consents, err := u.accounts.ListConsents(ctx, user.ID)
	if err != nil {
		u.internal(w, r, err)
		return
	}
	ids, err := u.accounts.ListIdentities(ctx, user.ID)
	if err != nil {
		u.internal(w, r, err)
		return
	}
	for _, id := range ids {
		data.Identities = append(data.Identities, identityView{Upstream: id.UpstreamID, UpstreamName: u.upstreamName(id.UpstreamID),
			Subject: id.Subject, Email: id.Email})
	}
	if data.Factors, data.RecoveryLeft, err = u.accounts.ListFactors(ctx, user.ID); err != nil {
		u.internal(w, r, err)
		return
	}
	for _, s := range sessions {
		data.SessionRows = append(data.SessionRows, sessionRow{SessionView: s, Device: u.devices.Name(s.UserAgent)})
	}
	data.Passkeys = u.accounts.PasskeysEnabled()
	data.HasTOTP = slices.ContainsFunc(data.Factors, func(f storage.Factor) bool { return f.Type == storage.FactorTOTP })
	data.DeleteNote = u.pages.t.deleteNote(u.cfg.DeleteGrace, u.pages.brand.SupportEmail)
	data.Title = u.pages.t.AccountTitle
	data.Account, data.HasPassword, data.Sessions, data.Consents = user, user.PasswordHash != "", sessions, consents
	data.CSRF = u.flow.CSRFToken(w, r, "account")
	if data.Values == nil {
		data.Values = map[string]string{}
	}
	addr := user.Address
	if addr == nil {
		addr = &storage.Address{}
	}
	for k, v := range map[string]string{"display_name": user.DisplayName, "username": user.Username,
		"picture_url": user.PictureURL, "locale": user.Locale, "given_name": user.GivenName, "middle_name": user.MiddleName,
		"family_name": user.FamilyName, "nickname": user.Nickname, "website": user.Website, "zoneinfo": user.Zoneinfo,
		"birthdate": user.Birthdate, "phone_number": user.PhoneNumber, "address.street_address": addr.StreetAddress,
		"address.locality": addr.Locality, "address.region": addr.Region, "address.postal_code": addr.PostalCode,
		"address.country": addr.Country} {
		if _, typed := data.Values[k]; !typed {
			data.Values[k] = v
		}
	}
	u.pages.render(w, status, "account", data)
}

// handleAccount shows the account page.
func (u *UI) handleAccount() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, user, ok := u.signedIn(w, r)
		if !ok {
			return
		}
		u.accountPage(w, r, http.StatusOK, sess, user, page{Notice: u.pages.t.accountNotice(r.URL.Query().Get("saved"))})
	})
}

// accountForm is the start of every POST of the account page: the
// browser's session (or a redirect to sign in) and the form's CSRF token
// (or the bad-request page). ok is false when it answered itself.
func (u *UI) accountForm(w http.ResponseWriter, r *http.Request) (*storage.BrowserSession, *storage.User, bool) {
	sess, user, ok := u.signedIn(w, r)
	if !ok {
		return nil, nil, false
	}
	if err := u.parseForm(w, r, "account"); err != nil {
		u.badForm(w, r)
		return nil, nil, false
	}
	return sess, user, true
}

// accountAction is one POST of the account page: it checks the session
// and the CSRF token, runs do, and either redirects back with a notice or
// re-renders the page with the field errors do returned.
func (u *UI) accountAction(notice string, do func(r *http.Request, sess *storage.BrowserSession, user *storage.User) (page, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, user, ok := u.accountForm(w, r)
		if !ok {
			return
		}
		data, err := do(r, sess, user)
		if errors.Is(err, storage.ErrNotFound) {
			http.Redirect(w, r, "/account", http.StatusSeeOther)
			return
		}
		if err != nil {
			u.internal(w, r, err)
			return
		}
		if len(data.Fields) > 0 {
			// Show the user as stored, with what was typed kept.
			if fresh, _, err := u.reload(r, user); err == nil {
				user = fresh
			}
			u.accountPage(w, r, http.StatusUnprocessableEntity, sess, user, data)
			return
		}
		http.Redirect(w, r, "/account?saved="+notice, http.StatusSeeOther)
	})
}

func (u *UI) reload(r *http.Request, user *storage.User) (*storage.User, *storage.BrowserSession, error) {
	sess, fresh, err := u.flow.CurrentSession(r)
	if err != nil {
		return user, nil, err
	}
	return fresh, sess, nil
}

// validation turns an accounts.ValidationError into field errors on the
// page (renaming the accounts field to the form's); other errors pass.
func validation(err error, data *page, rename map[string]string) error {
	if err == nil {
		return nil
	}
	fe, err := fieldErrors(err, rename)
	if err != nil {
		return err
	}
	data.Fields = fe
	return nil
}

func (u *UI) handleAccountProfile() http.Handler {
	return u.accountAction("profile", func(r *http.Request, _ *storage.BrowserSession, user *storage.User) (page, error) {
		f := r.PostForm
		p := accounts.ProfileUpdate{}
		data := page{Values: map[string]string{}}
		for name, dst := range map[string]**string{"display_name": &p.DisplayName, "username": &p.Username,
			"picture_url": &p.PictureURL, "locale": &p.Locale, "given_name": &p.GivenName, "middle_name": &p.MiddleName,
			"family_name": &p.FamilyName, "nickname": &p.Nickname, "website": &p.Website, "zoneinfo": &p.Zoneinfo,
			"birthdate": &p.Birthdate, "phone_number": &p.PhoneNumber} {
			if vs, ok := f[name]; ok {
				v := strings.TrimSpace(vs[0])
				*dst = &v
				data.Values[name] = v
			}
		}
		// The address fields come together; the form always sends all
		// of them, so a form without them leaves the address alone.
		if _, ok := f["address.locality"]; ok {
			a := storage.Address{Formatted: ""}
			if user.Address != nil {
				a.Formatted = user.Address.Formatted // not on the form: kept
			}
			for name, dst := range map[string]*string{"address.street_address": &a.StreetAddress, "address.locality": &a.Locality,
				"address.region": &a.Region, "address.postal_code": &a.PostalCode, "address.country": &a.Country} {
				*dst = strings.TrimSpace(f.Get(name))
				data.Values[name] = *dst
			}
			p.Address = &a
		}
		_, err := u.accounts.UpdateProfile(r.Context(), user.ID, p)
		return data, validation(err, &data, nil)
	})
}

// recheckLimited applies the per-account sign-in limit to a password
// re-entered on the account page, so that a stolen session cannot guess
// the password there at will. It returns the field error when over.
func (u *UI) recheckLimited(r *http.Request, user *storage.User, field string) map[string]string {
	if ref, limited := u.limited(r, u.cfg.Limits.LoginAccount, "login:"+accounts.AccountLimitKey(user.ID)); limited {
		return map[string]string{field: u.refusalText(ref)}
	}
	return nil
}

func (u *UI) handleAccountEmail() http.Handler {
	return u.accountAction("email", func(r *http.Request, _ *storage.BrowserSession, user *storage.User) (page, error) {
		f := r.PostForm
		newEmail := strings.TrimSpace(f.Get("new_email"))
		data := page{Values: map[string]string{"new_email": newEmail}}
		if data.Fields = u.recheckLimited(r, user, "email_password"); data.Fields != nil {
			return data, nil
		}
		if err := u.accounts.VerifyPassword(r.Context(), user, f.Get("email_password")); err != nil {
			return data, validation(err, &data, map[string]string{"password": "email_password"})
		}
		err := u.accounts.ChangeEmail(r.Context(), user.ID, newEmail)
		return data, validation(err, &data, map[string]string{"email": "new_email"})
	})
}

func (u *UI) handleAccountPassword() http.Handler {
	return u.accountAction("password", func(r *http.Request, sess *storage.BrowserSession, user *storage.User) (page, error) {
		f := r.PostForm
		data := page{}
		if f.Get("new_password") != f.Get("new_password_confirm") {
			data.Fields = map[string]string{"new_password_confirm": u.pages.t.PasswordsDiffer}
			return data, nil
		}
		if data.Fields = u.recheckLimited(r, user, "current_password"); data.Fields != nil {
			return data, nil
		}
		err := u.accounts.ChangePassword(r.Context(), user.ID, f.Get("current_password"), f.Get("new_password"), sess.ID)
		return data, validation(err, &data, map[string]string{"password": "new_password"})
	})
}

func (u *UI) handleAccountRevokeSession() http.Handler {
	return u.accountAction("session", func(r *http.Request, _ *storage.BrowserSession, user *storage.User) (page, error) {
		return page{}, u.accounts.RevokeSession(r.Context(), user.ID, r.PostForm.Get("session_id"))
	})
}

func (u *UI) handleAccountRevokeApp() http.Handler {
	return u.accountAction("app", func(r *http.Request, _ *storage.BrowserSession, user *storage.User) (page, error) {
		return page{}, u.accounts.RevokeConsent(r.Context(), user.ID, r.PostForm.Get("client_id"))
	})
}

// handleAccountDelete soft-deletes the account after the password and an
// explicit confirmation, then signs this browser out.
func (u *UI) handleAccountDelete() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, user, ok := u.accountForm(w, r)
		if !ok {
			return
		}
		t := u.pages.t
		data := page{}
		if r.PostForm.Get("confirm") != "yes" {
			data.Fields = map[string]string{"confirm": capitalize(t.Required)}
			u.accountPage(w, r, http.StatusUnprocessableEntity, sess, user, data)
			return
		}
		if data.Fields = u.recheckLimited(r, user, "delete_password"); data.Fields != nil {
			u.accountPage(w, r, http.StatusTooManyRequests, sess, user, data)
			return
		}
		err := u.accounts.DeleteAccount(r.Context(), user.ID, r.PostForm.Get("delete_password"))
		if err := validation(err, &data, map[string]string{"password": "delete_password"}); err != nil {
			u.internal(w, r, err)
			return
		}
		if len(data.Fields) > 0 {
			u.accountPage(w, r, http.StatusUnprocessableEntity, sess, user, data)
			return
		}
		_ = u.flow.SignOut(w, r)
		u.pages.render(w, http.StatusOK, "message", page{Title: t.DeletedTitle, Detail: t.DeletedText})
	})
}

// upstreamName is the display name of a configured upstream (its id when
// it is no longer configured).
func (u *UI) upstreamName(id string) string {
	for _, up := range u.cfg.Upstreams {
		if up.ID == id {
			return up.Name
		}
	}
	return id
}

func (u *UI) handleAccountUnlinkIdentity() http.Handler {
	return u.accountAction("identity", func(r *http.Request, _ *storage.BrowserSession, user *storage.User) (page, error) {
		err := u.accounts.UnlinkIdentity(r.Context(), user.ID, r.PostForm.Get("upstream"), r.PostForm.Get("subject"))
		if errors.Is(err, accounts.ErrLastCredential) {
			return page{Fields: map[string]string{"identity": u.pages.t.LastCredential}}, nil
		}
		return page{}, err
	})
}
