package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// ---- users ----

const userCols = `id, username, email, email_verified, display_name, password_hash, status, picture_url, locale,
	created_at, updated_at, deleted_at, failed_logins, last_failed_at, locked_until, tier_id,
	given_name, family_name, middle_name, nickname, website, zoneinfo, birthdate, phone_number,
	phone_number_verified, address, user_metadata, app_metadata, last_login_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanUser(r rowScanner) (*storage.User, error) {
	var u storage.User
	var status string
	err := r.Scan(&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.DisplayName, &u.PasswordHash, &status,
		&u.PictureURL, &u.Locale, timeDest{&u.CreatedAt}, timeDest{&u.UpdatedAt}, nullTimeDest{&u.DeletedAt},
		&u.FailedLogins, nullTimeDest{&u.LastFailedAt}, nullTimeDest{&u.LockedUntil}, strDest{&u.TierID},
		&u.GivenName, &u.FamilyName, &u.MiddleName, &u.Nickname, &u.Website, &u.Zoneinfo, &u.Birthdate, &u.PhoneNumber,
		&u.PhoneNumberVerified, addressDest{&u.Address}, rawDest{&u.UserMetadata}, rawDest{&u.AppMetadata},
		nullTimeDest{&u.LastLoginAt})
	if err != nil {
		return nil, err
	}
	u.Status = storage.UserStatus(status)
	return &u, nil
}

// CreateUser inserts u, filling CreatedAt/UpdatedAt when zero and Status
// when empty. Times are written back as stored (UTC, microseconds).
func (s *SQLStore) CreateUser(ctx context.Context, u *storage.User) error {
	now := time.Now()
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	u.CreatedAt, u.UpdatedAt = normTime(u.CreatedAt), normTime(u.UpdatedAt)
	if u.Status == "" {
		u.Status = storage.UserActive
	}
	u.DeletedAt, u.LastFailedAt, u.LockedUntil = normTimePtr(u.DeletedAt), normTimePtr(u.LastFailedAt), normTimePtr(u.LockedUntil)
	u.LastLoginAt = normTimePtr(u.LastLoginAt)
	addr, err := addressVal(u.Address)
	if err != nil {
		return fmt.Errorf("storage: create user %s: %w", u.ID, err)
	}
	_, err = s.exec(ctx, `INSERT INTO users (`+userCols+`, email_fold)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.Email, u.EmailVerified, u.DisplayName, u.PasswordHash, string(u.Status),
		u.PictureURL, u.Locale, s.ts(u.CreatedAt), s.ts(u.UpdatedAt), s.tsPtr(u.DeletedAt),
		u.FailedLogins, s.tsPtr(u.LastFailedAt), s.tsPtr(u.LockedUntil), nullStr(u.TierID),
		u.GivenName, u.FamilyName, u.MiddleName, u.Nickname, u.Website, u.Zoneinfo, u.Birthdate, u.PhoneNumber,
		u.PhoneNumberVerified, addr, objectVal(u.UserMetadata), objectVal(u.AppMetadata), s.tsPtr(u.LastLoginAt),
		foldEmail(u.Email))
	if err != nil {
		if isFKViolation(err) {
			// The only reference a user row makes is its tier.
			return fmt.Errorf("storage: create user %s: tier %s: %w (%w)", u.ID, u.TierID, storage.ErrNotFound, err)
		}
		return fmt.Errorf("storage: create user %s: %w", u.ID, s.mapErr(err))
	}
	return nil
}

// foldEmail is the case-folded form emails are unique and looked up by.
// It is computed here, not with SQL lower(), which SQLite applies to ASCII
// only.
func foldEmail(email string) string { return strings.ToLower(email) }

// GetUser finds a user by id.
func (s *SQLStore) GetUser(ctx context.Context, id string) (*storage.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("storage: get user %s: %w", id, s.mapErr(err))
	}
	return u, nil
}

// GetUserByLogin finds a user by exact username, else by email ignoring
// case. The username wins if both would match different users.
func (s *SQLStore) GetUserByLogin(ctx context.Context, login string) (*storage.User, error) {
	if login == "" {
		return nil, fmt.Errorf("storage: get user by login: %w", storage.ErrNotFound)
	}
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE username = ?`, login))
	if err == nil {
		return u, nil
	}
	if err = s.mapErr(err); !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("storage: get user by login: %w", err)
	}
	u, err = scanUser(s.queryRow(ctx, `SELECT `+userCols+` FROM users WHERE email_fold <> '' AND email_fold = ?`, foldEmail(login)))
	if err != nil {
		return nil, fmt.Errorf("storage: get user by login: %w", s.mapErr(err))
	}
	return u, nil
}

// UpdateUserPasswordHash replaces a user's password hash.
func (s *SQLStore) UpdateUserPasswordHash(ctx context.Context, id, hash string) error {
	return s.updateOne(ctx, "update user password", `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`,
		hash, s.ts(time.Now()), id)
}

// SetUserStatus changes a user's lifecycle state.
func (s *SQLStore) SetUserStatus(ctx context.Context, id string, status storage.UserStatus) error {
	return s.updateOne(ctx, "set user status", `UPDATE users SET status = ?, updated_at = ? WHERE id = ?`,
		string(status), s.ts(time.Now()), id)
}

// UpdateUser writes the profile and lifecycle fields if nobody changed
// the user since u was read (u.UpdatedAt), and advances u.UpdatedAt.
func (s *SQLStore) UpdateUser(ctx context.Context, u *storage.User) error {
	next := normTime(time.Now())
	if !next.After(u.UpdatedAt) {
		// Two updates within one microsecond must still differ.
		next = u.UpdatedAt.Add(time.Microsecond)
	}
	u.DeletedAt = normTimePtr(u.DeletedAt)
	addr, err := addressVal(u.Address)
	if err != nil {
		return fmt.Errorf("storage: update user %s: %w", u.ID, err)
	}
	res, err := s.exec(ctx, `UPDATE users SET username = ?, email = ?, email_fold = ?, email_verified = ?, display_name = ?,
		picture_url = ?, locale = ?, given_name = ?, family_name = ?, middle_name = ?, nickname = ?, website = ?,
		zoneinfo = ?, birthdate = ?, phone_number = ?, phone_number_verified = ?, address = ?, user_metadata = ?,
		app_metadata = ?, status = ?, deleted_at = ?, updated_at = ?
		WHERE id = ? AND updated_at = ?`,
		u.Username, u.Email, foldEmail(u.Email), u.EmailVerified, u.DisplayName, u.PictureURL, u.Locale,
		u.GivenName, u.FamilyName, u.MiddleName, u.Nickname, u.Website, u.Zoneinfo, u.Birthdate, u.PhoneNumber,
		u.PhoneNumberVerified, addr, objectVal(u.UserMetadata), objectVal(u.AppMetadata), string(u.Status),
		s.tsPtr(u.DeletedAt), s.ts(next), u.ID, s.ts(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("storage: update user %s: %w", u.ID, s.mapErr(err))
	}
	ok, err := affected(res)
	if err != nil {
		return fmt.Errorf("storage: update user %s: %w", u.ID, err)
	}
	if !ok {
		// Missing, or changed since it was read: tell the two apart.
		if _, err := s.GetUser(ctx, u.ID); err != nil {
			return err
		}
		return fmt.Errorf("storage: update user %s: %w", u.ID, storage.ErrConflict)
	}
	u.UpdatedAt = next
	return nil
}

// RecordLastLogin sets a user's last sign-in time.
func (s *SQLStore) RecordLastLogin(ctx context.Context, id string, at time.Time) error {
	return s.updateOne(ctx, "record last login", `UPDATE users SET last_login_at = ? WHERE id = ?`, s.ts(at), id)
}

// ClaimLoginAttempt reads and updates the lockout state in one
// transaction holding the user's row (FOR UPDATE on PostgreSQL; SQLite
// transactions take the write lock up front), so concurrent attempts are
// serialised per user across every replica.
func (s *SQLStore) ClaimLoginAttempt(ctx context.Context, id string, now time.Time, memory time.Duration,
	lockFor func(failures int) time.Duration) (storage.LoginAttempt, error) {
	var out storage.LoginAttempt
	forUpdate := ""
	if s.dialect == DialectPostgres {
		forUpdate = " FOR UPDATE"
	}
	err := s.InTx(ctx, func(ctx context.Context) error {
		var failed int
		var last, locked *time.Time
		if err := s.queryRow(ctx, `SELECT failed_logins, last_failed_at, locked_until FROM users WHERE id = ?`+forUpdate, id).
			Scan(&failed, nullTimeDest{&last}, nullTimeDest{&locked}); err != nil {
			return s.mapErr(err)
		}
		if locked != nil && locked.After(now) {
			out = storage.LoginAttempt{Locked: true, Failures: failed, LockedUntil: locked}
			return nil
		}
		if last != nil && now.Sub(*last) > memory {
			failed = 0
		}
		out.Failures = failed + 1
		if d := lockFor(out.Failures); d > 0 {
			until := normTime(now.Add(d))
			out.LockedUntil = &until
		}
		_, err := s.exec(ctx, `UPDATE users SET failed_logins = ?, last_failed_at = ?, locked_until = ? WHERE id = ?`,
			out.Failures, s.ts(now), s.tsPtr(out.LockedUntil), id)
		return s.mapErr(err)
	})
	if err != nil {
		return storage.LoginAttempt{}, fmt.Errorf("storage: claim login attempt %s: %w", id, err)
	}
	return out, nil
}

// RecordLoginFailure counts a failed sign-in in one statement, so that
// concurrent failures on several replicas all count.
func (s *SQLStore) RecordLoginFailure(ctx context.Context, id string, at time.Time) (int, error) {
	var n int
	err := s.queryRow(ctx, `UPDATE users SET failed_logins = failed_logins + 1, last_failed_at = ?
		WHERE id = ? RETURNING failed_logins`, s.ts(at), id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("storage: record login failure %s: %w", id, s.mapErr(err))
	}
	return n, nil
}

// SetUserLockout sets the failure count and the lock; clearing the count
// also forgets when the last failure was.
func (s *SQLStore) SetUserLockout(ctx context.Context, id string, failures int, lockedUntil *time.Time) error {
	q := `UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?`
	if failures == 0 {
		q = `UPDATE users SET failed_logins = ?, locked_until = ?, last_failed_at = NULL WHERE id = ?`
	}
	return s.updateOne(ctx, "set user lockout", q, failures, s.tsPtr(normTimePtr(lockedUntil)), id)
}

// ---- user tokens ----

// CreateUserToken stores a single-use token (its hash only).
func (s *SQLStore) CreateUserToken(ctx context.Context, t *storage.UserToken) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	t.CreatedAt, t.ExpiresAt = normTime(t.CreatedAt), normTime(t.ExpiresAt)
	_, err := s.exec(ctx, `INSERT INTO user_tokens (token_hash, purpose, user_id, email, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, t.TokenHash, string(t.Purpose), t.UserID, t.Email, s.ts(t.CreatedAt), s.ts(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("storage: create user token: %w", s.mapErr(err))
	}
	return nil
}

// ConsumeUserToken deletes and returns a live token in one statement, so
// that two concurrent uses cannot both succeed.
func (s *SQLStore) ConsumeUserToken(ctx context.Context, hash []byte, purpose storage.TokenPurpose, now time.Time) (*storage.UserToken, error) {
	t := storage.UserToken{TokenHash: hash}
	var p string
	err := s.queryRow(ctx, `DELETE FROM user_tokens WHERE token_hash = ? AND purpose = ? AND expires_at > ?
		RETURNING purpose, user_id, email, created_at, expires_at`, hash, string(purpose), s.ts(now)).
		Scan(&p, &t.UserID, &t.Email, timeDest{&t.CreatedAt}, timeDest{&t.ExpiresAt})
	if err != nil {
		return nil, fmt.Errorf("storage: consume user token: %w", s.mapErr(err))
	}
	t.Purpose = storage.TokenPurpose(p)
	return &t, nil
}

// DeleteUserTokens removes a user's tokens of one purpose, or all of them.
func (s *SQLStore) DeleteUserTokens(ctx context.Context, userID string, purpose storage.TokenPurpose) error {
	q, args := `DELETE FROM user_tokens WHERE user_id = ?`, []any{userID}
	if purpose != "" {
		q, args = q+` AND purpose = ?`, append(args, string(purpose))
	}
	if _, err := s.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("storage: delete user tokens: %w", s.mapErr(err))
	}
	return nil
}

// ---- registrations ----

const registrationCols = `id, token_hash, username, email, display_name, password_hash, created_at, expires_at`

func scanRegistration(row interface{ Scan(...any) error }) (*storage.Registration, error) {
	var r storage.Registration
	err := row.Scan(&r.ID, &r.TokenHash, &r.Username, &r.Email, &r.DisplayName, &r.PasswordHash,
		timeDest{&r.CreatedAt}, timeDest{&r.ExpiresAt})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// CreateRegistration stores a pending sign-up (its token's hash only).
func (s *SQLStore) CreateRegistration(ctx context.Context, r *storage.Registration) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r.CreatedAt, r.ExpiresAt = normTime(r.CreatedAt), normTime(r.ExpiresAt)
	_, err := s.exec(ctx, `INSERT INTO registrations (id, token_hash, username, email, email_fold, display_name,
		password_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.TokenHash, r.Username, r.Email, foldEmail(r.Email), r.DisplayName, r.PasswordHash,
		s.ts(r.CreatedAt), s.ts(r.ExpiresAt))
	if err != nil {
		return fmt.Errorf("storage: create registration: %w", s.mapErr(err))
	}
	return nil
}

// ConsumeRegistration deletes and returns a live registration in one
// statement, so two uses of one link cannot both create the account.
func (s *SQLStore) ConsumeRegistration(ctx context.Context, hash []byte, now time.Time) (*storage.Registration, error) {
	r, err := scanRegistration(s.queryRow(ctx, `DELETE FROM registrations WHERE token_hash = ? AND expires_at > ?
		RETURNING `+registrationCols, hash, s.ts(now)))
	if err != nil {
		return nil, fmt.Errorf("storage: consume registration: %w", s.mapErr(err))
	}
	return r, nil
}

// LatestRegistration finds the newest live registration for an address.
func (s *SQLStore) LatestRegistration(ctx context.Context, email string, now time.Time) (*storage.Registration, error) {
	r, err := scanRegistration(s.queryRow(ctx, `SELECT `+registrationCols+` FROM registrations
		WHERE email_fold = ? AND expires_at > ? ORDER BY created_at DESC, id DESC LIMIT 1`, foldEmail(email), s.ts(now)))
	if err != nil {
		return nil, fmt.Errorf("storage: latest registration: %w", s.mapErr(err))
	}
	return r, nil
}

// RenewRegistration replaces a registration's token and expiry.
func (s *SQLStore) RenewRegistration(ctx context.Context, id string, hash []byte, expiresAt time.Time) error {
	return s.updateOne(ctx, "renew registration", `UPDATE registrations SET token_hash = ?, expires_at = ? WHERE id = ?`,
		hash, s.ts(normTime(expiresAt)), id)
}

// DeleteRegistrations removes every pending sign-up for an address.
func (s *SQLStore) DeleteRegistrations(ctx context.Context, email string) error {
	if _, err := s.exec(ctx, `DELETE FROM registrations WHERE email_fold = ?`, foldEmail(email)); err != nil {
		return fmt.Errorf("storage: delete registrations: %w", s.mapErr(err))
	}
	return nil
}

// updateOne runs a write that must touch a row; ErrNotFound otherwise.
func (s *SQLStore) updateOne(ctx context.Context, what, q string, args ...any) error {
	res, err := s.exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("storage: %s: %w", what, s.mapErr(err))
	}
	ok, err := affected(res)
	if err != nil {
		return fmt.Errorf("storage: %s: %w", what, err)
	}
	if !ok {
		return fmt.Errorf("storage: %s: %w", what, storage.ErrNotFound)
	}
	return nil
}

// ---- clients ----

const clientCols = `id, name, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, response_types,
	scopes, audience, public, first_party, access_token_format, created_at,
	access_token_ttl_ns, refresh_token_ttl_ns, id_token_ttl_ns, auth_code_ttl_ns, require_mfa, claims, claims_scope,
	metadata, sealed_secret`

func scanClient(r rowScanner) (*storage.Client, error) {
	var c storage.Client
	var format string
	err := r.Scan(&c.ID, &c.Name, &c.SecretHash, listDest{&c.RedirectURIs}, listDest{&c.PostLogoutRedirectURIs},
		listDest{&c.GrantTypes}, listDest{&c.ResponseTypes}, listDest{&c.Scopes}, listDest{&c.Audience},
		&c.Public, &c.FirstParty, &format, timeDest{&c.CreatedAt},
		(*int64)(&c.AccessTokenTTL), (*int64)(&c.RefreshTokenTTL), (*int64)(&c.IDTokenTTL), (*int64)(&c.AuthCodeTTL), &c.RequireMFA,
		claimsDest{&c.Claims}, &c.ClaimsScope, metaDest{&c.Meta}, &c.SealedSecret)
	if err != nil {
		return nil, err
	}
	if len(c.SecretHash) == 0 {
		c.SecretHash = nil
	}
	if len(c.SealedSecret) == 0 {
		c.SealedSecret = nil
	}
	c.AccessTokenFormat = storage.AccessTokenFormat(format)
	return &c, nil
}

// CreateClient inserts c, filling CreatedAt when zero and the access token
// format when empty.
func (s *SQLStore) CreateClient(ctx context.Context, c *storage.Client) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	c.CreatedAt = normTime(c.CreatedAt)
	if c.AccessTokenFormat == "" {
		c.AccessTokenFormat = storage.AccessTokenOpaque
	}
	var secret any
	if len(c.SecretHash) > 0 {
		secret = c.SecretHash
	}
	claims, err := claimsVal(c.Claims)
	if err != nil {
		return fmt.Errorf("storage: create client %s: %w", c.ID, err)
	}
	meta, err := json.Marshal(c.Meta)
	if err != nil {
		return fmt.Errorf("storage: create client %s: encode metadata: %w", c.ID, err)
	}
	_, err = s.exec(ctx, `INSERT INTO clients (`+clientCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, secret, listVal(c.RedirectURIs), listVal(c.PostLogoutRedirectURIs), listVal(c.GrantTypes),
		listVal(c.ResponseTypes), listVal(c.Scopes), listVal(c.Audience), c.Public, c.FirstParty,
		string(c.AccessTokenFormat), s.ts(c.CreatedAt),
		int64(c.AccessTokenTTL), int64(c.RefreshTokenTTL), int64(c.IDTokenTTL), int64(c.AuthCodeTTL), c.RequireMFA,
		claims, c.ClaimsScope, string(meta), nullBytes(c.SealedSecret))
	if err != nil {
		return fmt.Errorf("storage: create client %s: %w", c.ID, s.mapErr(err))
	}
	return nil
}

// GetClientByID finds a client; ErrNotFound when missing.
func (s *SQLStore) GetClientByID(ctx context.Context, id string) (*storage.Client, error) {
	c, err := scanClient(s.queryRow(ctx, `SELECT `+clientCols+` FROM clients WHERE id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("storage: get client %s: %w", id, s.mapErr(err))
	}
	return c, nil
}

// ListClients returns every client ordered by id.
func (s *SQLStore) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := s.query(ctx, `SELECT `+clientCols+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("storage: list clients: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: list clients: %w", err)
		}
		out = append(out, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list clients: %w", s.mapErr(err))
	}
	return out, nil
}

// UpdateClient writes every field of c but ID and CreatedAt (an empty
// access token format is stored as opaque, as CreateClient does) and drops
// the client from the cache, so this store serves the change at once.
// ErrNotFound when there is no such client.
func (s *SQLStore) UpdateClient(ctx context.Context, c *storage.Client) error {
	if c.AccessTokenFormat == "" {
		c.AccessTokenFormat = storage.AccessTokenOpaque
	}
	var secret any
	if len(c.SecretHash) > 0 {
		secret = c.SecretHash
	}
	claims, err := claimsVal(c.Claims)
	if err != nil {
		return fmt.Errorf("storage: update client %s: %w", c.ID, err)
	}
	meta, err := json.Marshal(c.Meta)
	if err != nil {
		return fmt.Errorf("storage: update client %s: encode metadata: %w", c.ID, err)
	}
	s.clients.forget(c.ID)
	// Forget again once written: a concurrent GetClient may have cached
	// the old record between the first forget and the write.
	defer s.clients.forget(c.ID)
	return s.updateOne(ctx, "update client "+c.ID, `UPDATE clients SET name = ?, secret_hash = ?, redirect_uris = ?,
		post_logout_redirect_uris = ?, grant_types = ?, response_types = ?, scopes = ?, audience = ?, public = ?,
		first_party = ?, access_token_format = ?, access_token_ttl_ns = ?, refresh_token_ttl_ns = ?,
		id_token_ttl_ns = ?, auth_code_ttl_ns = ?, require_mfa = ?, claims = ?, claims_scope = ?, metadata = ?,
		sealed_secret = ? WHERE id = ?`,
		c.Name, secret, listVal(c.RedirectURIs), listVal(c.PostLogoutRedirectURIs), listVal(c.GrantTypes),
		listVal(c.ResponseTypes), listVal(c.Scopes), listVal(c.Audience), c.Public, c.FirstParty,
		string(c.AccessTokenFormat), int64(c.AccessTokenTTL), int64(c.RefreshTokenTTL), int64(c.IDTokenTTL),
		int64(c.AuthCodeTTL), c.RequireMFA, claims, c.ClaimsScope, string(meta), nullBytes(c.SealedSecret), c.ID)
}

// DeleteClient removes a client; its codes, tokens, PKCE/OIDC/PAR
// sessions, consents and pending authorizations go with it (ON DELETE
// CASCADE). ErrNotFound when there is no such client.
func (s *SQLStore) DeleteClient(ctx context.Context, id string) error {
	s.clients.forget(id)
	return s.updateOne(ctx, "delete client", `DELETE FROM clients WHERE id = ?`, id)
}

// ---- signing keys ----

const keyCols = `id, algorithm, public_jwk, private_key, created_at, activates_at, retired_at, expires_at`

func scanKey(r rowScanner) (*storage.SigningKey, error) {
	var k storage.SigningKey
	err := r.Scan(&k.ID, &k.Algorithm, &k.PublicJWK, &k.PrivateKey, timeDest{&k.CreatedAt}, timeDest{&k.ActivatesAt},
		nullTimeDest{&k.RetiredAt}, nullTimeDest{&k.ExpiresAt})
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// CreateSigningKey inserts k, filling CreatedAt (and ActivatesAt) when zero.
func (s *SQLStore) CreateSigningKey(ctx context.Context, k *storage.SigningKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	if k.ActivatesAt.IsZero() {
		k.ActivatesAt = k.CreatedAt
	}
	k.CreatedAt, k.ActivatesAt = normTime(k.CreatedAt), normTime(k.ActivatesAt)
	k.RetiredAt, k.ExpiresAt = normTimePtr(k.RetiredAt), normTimePtr(k.ExpiresAt)
	_, err := s.exec(ctx, `INSERT INTO signing_keys (`+keyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, k.PublicJWK, k.PrivateKey, s.ts(k.CreatedAt), s.ts(k.ActivatesAt),
		s.tsPtr(k.RetiredAt), s.tsPtr(k.ExpiresAt))
	if err != nil {
		return fmt.Errorf("storage: create signing key %s: %w", k.ID, s.mapErr(err))
	}
	return nil
}

func normTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	n := normTime(*t)
	return &n
}

// ListSigningKeys returns every key, oldest first.
func (s *SQLStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := s.query(ctx, `SELECT `+keyCols+` FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("storage: list signing keys: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.SigningKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: list signing keys: %w", err)
		}
		out = append(out, *k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list signing keys: %w", s.mapErr(err))
	}
	return out, nil
}

// UpdateSigningKeyTimes writes ActivatesAt, RetiredAt and ExpiresAt.
func (s *SQLStore) UpdateSigningKeyTimes(ctx context.Context, k *storage.SigningKey) error {
	return s.updateOne(ctx, "update signing key "+k.ID,
		`UPDATE signing_keys SET activates_at = ?, retired_at = ?, expires_at = ? WHERE id = ?`,
		s.ts(k.ActivatesAt), s.tsPtr(k.RetiredAt), s.tsPtr(k.ExpiresAt), k.ID)
}

// DeleteSigningKey removes a key; ErrNotFound when missing.
func (s *SQLStore) DeleteSigningKey(ctx context.Context, id string) error {
	return s.updateOne(ctx, "delete signing key "+id, `DELETE FROM signing_keys WHERE id = ?`, id)
}

// ---- browser sessions ----

const sessionCols = `id, token_hash, user_id, auth_time, amr, ip, user_agent, created_at, last_seen_at, expires_at`

func scanSession(r rowScanner) (*storage.BrowserSession, error) {
	var b storage.BrowserSession
	err := r.Scan(&b.ID, &b.TokenHash, &b.UserID, timeDest{&b.AuthTime}, listDest{&b.AMR}, &b.IP, &b.UserAgent,
		timeDest{&b.CreatedAt}, timeDest{&b.LastSeenAt}, timeDest{&b.ExpiresAt})
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// CreateBrowserSession inserts b, filling CreatedAt/LastSeenAt when zero.
func (s *SQLStore) CreateBrowserSession(ctx context.Context, b *storage.BrowserSession) error {
	if b.CreatedAt.IsZero() {
		b.CreatedAt = time.Now()
	}
	if b.LastSeenAt.IsZero() {
		b.LastSeenAt = b.CreatedAt
	}
	if b.AuthTime.IsZero() {
		b.AuthTime = b.CreatedAt
	}
	b.CreatedAt, b.LastSeenAt, b.AuthTime, b.ExpiresAt =
		normTime(b.CreatedAt), normTime(b.LastSeenAt), normTime(b.AuthTime), normTime(b.ExpiresAt)
	_, err := s.exec(ctx, `INSERT INTO browser_sessions (`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.ID, b.TokenHash, b.UserID, s.ts(b.AuthTime), listVal(b.AMR), b.IP, b.UserAgent,
		s.ts(b.CreatedAt), s.ts(b.LastSeenAt), s.ts(b.ExpiresAt))
	if err != nil {
		return fmt.Errorf("storage: create browser session: %w", s.mapErr(err))
	}
	return nil
}

// GetBrowserSession finds a live session by its token hash.
func (s *SQLStore) GetBrowserSession(ctx context.Context, tokenHash []byte) (*storage.BrowserSession, error) {
	b, err := scanSession(s.queryRow(ctx, `SELECT `+sessionCols+` FROM browser_sessions WHERE token_hash = ? AND expires_at > ?`,
		tokenHash, s.ts(time.Now())))
	if err != nil {
		return nil, fmt.Errorf("storage: get browser session: %w", s.mapErr(err))
	}
	return b, nil
}

// GetBrowserSessionByID finds a live session by its public id.
func (s *SQLStore) GetBrowserSessionByID(ctx context.Context, id string) (*storage.BrowserSession, error) {
	b, err := scanSession(s.queryRow(ctx, `SELECT `+sessionCols+` FROM browser_sessions WHERE id = ? AND expires_at > ?`,
		id, s.ts(time.Now())))
	if err != nil {
		return nil, fmt.Errorf("storage: get browser session %s: %w", id, s.mapErr(err))
	}
	return b, nil
}

// TouchBrowserSession records activity.
func (s *SQLStore) TouchBrowserSession(ctx context.Context, id string, lastSeen time.Time) error {
	return s.updateOne(ctx, "touch browser session", `UPDATE browser_sessions SET last_seen_at = ? WHERE id = ?`,
		s.ts(lastSeen), id)
}

// DeleteBrowserSession removes one session; ErrNotFound when missing.
func (s *SQLStore) DeleteBrowserSession(ctx context.Context, id string) error {
	return s.updateOne(ctx, "delete browser session", `DELETE FROM browser_sessions WHERE id = ?`, id)
}

// DeleteUserBrowserSessions removes every session of a user (none is fine).
func (s *SQLStore) DeleteUserBrowserSessions(ctx context.Context, userID string) error {
	if _, err := s.exec(ctx, `DELETE FROM browser_sessions WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("storage: delete user browser sessions: %w", s.mapErr(err))
	}
	return nil
}

// ListUserBrowserSessions returns a user's live sessions, newest first.
func (s *SQLStore) ListUserBrowserSessions(ctx context.Context, userID string) ([]storage.BrowserSession, error) {
	rows, err := s.query(ctx, `SELECT `+sessionCols+` FROM browser_sessions WHERE user_id = ? AND expires_at > ?
		ORDER BY created_at DESC, id`, userID, s.ts(time.Now()))
	if err != nil {
		return nil, fmt.Errorf("storage: list browser sessions: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.BrowserSession
	for rows.Next() {
		b, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("storage: list browser sessions: %w", s.mapErr(err))
		}
		out = append(out, *b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list browser sessions: %w", s.mapErr(err))
	}
	return out, nil
}

// ---- pending authorizations ----

const pendingCols = `id, client_id, form, csrf_token, user_id, session_id, auth_time, amr, consent_given,
	granted_scopes, created_at, expires_at`

func scanPending(r rowScanner) (*storage.PendingAuthorization, error) {
	var p storage.PendingAuthorization
	err := r.Scan(&p.ID, strDest{&p.ClientID}, &p.Form, &p.CSRFToken, strDest{&p.UserID}, &p.SessionID,
		nullTimeDest{&p.AuthTime}, listDest{&p.AMR}, &p.ConsentGiven, listDest{&p.GrantedScopes},
		timeDest{&p.CreatedAt}, timeDest{&p.ExpiresAt})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// CreatePendingAuthorization inserts p, filling CreatedAt when zero.
func (s *SQLStore) CreatePendingAuthorization(ctx context.Context, p *storage.PendingAuthorization) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	p.CreatedAt, p.ExpiresAt, p.AuthTime = normTime(p.CreatedAt), normTime(p.ExpiresAt), normTimePtr(p.AuthTime)
	_, err := s.exec(ctx, `INSERT INTO pending_authorizations (`+pendingCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, nullStr(p.ClientID), p.Form, p.CSRFToken, nullStr(p.UserID), p.SessionID, s.tsPtr(p.AuthTime), listVal(p.AMR),
		p.ConsentGiven, listVal(p.GrantedScopes), s.ts(p.CreatedAt), s.ts(p.ExpiresAt))
	if err != nil {
		return fmt.Errorf("storage: create pending authorization: %w", s.mapErr(err))
	}
	return nil
}

// GetPendingAuthorization finds a live login challenge.
func (s *SQLStore) GetPendingAuthorization(ctx context.Context, id string) (*storage.PendingAuthorization, error) {
	p, err := scanPending(s.queryRow(ctx, `SELECT `+pendingCols+` FROM pending_authorizations WHERE id = ? AND expires_at > ?`,
		id, s.ts(time.Now())))
	if err != nil {
		return nil, fmt.Errorf("storage: get pending authorization: %w", s.mapErr(err))
	}
	return p, nil
}

// UpdatePendingAuthorization writes the login and consent fields.
func (s *SQLStore) UpdatePendingAuthorization(ctx context.Context, p *storage.PendingAuthorization) error {
	p.AuthTime = normTimePtr(p.AuthTime)
	return s.updateOne(ctx, "update pending authorization",
		`UPDATE pending_authorizations SET csrf_token = ?, user_id = ?, session_id = ?, auth_time = ?, amr = ?,
			consent_given = ?, granted_scopes = ? WHERE id = ?`,
		p.CSRFToken, nullStr(p.UserID), p.SessionID, s.tsPtr(p.AuthTime), listVal(p.AMR), p.ConsentGiven, listVal(p.GrantedScopes), p.ID)
}

// DeletePendingAuthorization removes a challenge; ErrNotFound when missing.
func (s *SQLStore) DeletePendingAuthorization(ctx context.Context, id string) error {
	return s.updateOne(ctx, "delete pending authorization", `DELETE FROM pending_authorizations WHERE id = ?`, id)
}

// ---- consents ----

// GetConsent returns the scopes userID granted clientID.
func (s *SQLStore) GetConsent(ctx context.Context, userID, clientID string) (*storage.Consent, error) {
	var c storage.Consent
	err := s.queryRow(ctx, `SELECT user_id, client_id, scopes, granted_at, updated_at FROM consents
		WHERE user_id = ? AND client_id = ?`, userID, clientID).
		Scan(&c.UserID, &c.ClientID, listDest{&c.Scopes}, timeDest{&c.GrantedAt}, timeDest{&c.UpdatedAt})
	if err != nil {
		return nil, fmt.Errorf("storage: get consent: %w", s.mapErr(err))
	}
	return &c, nil
}

// UpsertConsent replaces the granted scopes; GrantedAt keeps the first
// grant's time.
func (s *SQLStore) UpsertConsent(ctx context.Context, c *storage.Consent) error {
	now := time.Now()
	if c.GrantedAt.IsZero() {
		c.GrantedAt = now
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = now
	}
	c.GrantedAt, c.UpdatedAt = normTime(c.GrantedAt), normTime(c.UpdatedAt)
	_, err := s.exec(ctx, `INSERT INTO consents (user_id, client_id, scopes, granted_at, updated_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
		c.UserID, c.ClientID, listVal(c.Scopes), s.ts(c.GrantedAt), s.ts(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("storage: upsert consent: %w", s.mapErr(err))
	}
	return nil
}

// DeleteConsent removes a grant; ErrNotFound when missing.
func (s *SQLStore) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return s.updateOne(ctx, "delete consent", `DELETE FROM consents WHERE user_id = ? AND client_id = ?`, userID, clientID)
}

// ListUserConsents returns a user's grants ordered by client id.
func (s *SQLStore) ListUserConsents(ctx context.Context, userID string) ([]storage.Consent, error) {
	rows, err := s.query(ctx, `SELECT user_id, client_id, scopes, granted_at, updated_at FROM consents
		WHERE user_id = ? ORDER BY client_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("storage: list consents: %w", s.mapErr(err))
	}
	defer rows.Close()
	var out []storage.Consent
	for rows.Next() {
		var c storage.Consent
		if err := rows.Scan(&c.UserID, &c.ClientID, listDest{&c.Scopes}, timeDest{&c.GrantedAt}, timeDest{&c.UpdatedAt}); err != nil {
			return nil, fmt.Errorf("storage: list consents: %w", s.mapErr(err))
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: list consents: %w", s.mapErr(err))
	}
	return out, nil
}

// ---- housekeeping ----

// RevokeUserTokens deletes every access and refresh token whose subject is
// userID, and the codes (with their PKCE and OIDC sessions) not yet
// redeemed, so that a code issued before a suspension cannot mint new
// tokens after it.
func (s *SQLStore) RevokeUserTokens(ctx context.Context, userID string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		for _, t := range []string{tableAccess, tableRefresh, tableCodes, tablePKCE, tableOIDC} {
			if _, err := s.exec(ctx, `DELETE FROM `+t+` WHERE subject = ?`, userID); err != nil {
				return fmt.Errorf("storage: revoke user tokens: %w", s.mapErr(err))
			}
		}
		return nil
	})
}

// RevokeUserClientTokens deletes the access and refresh tokens clientID
// holds for userID.
func (s *SQLStore) RevokeUserClientTokens(ctx context.Context, userID, clientID string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		for _, t := range []string{tableAccess, tableRefresh, tableCodes, tablePKCE, tableOIDC} {
			if _, err := s.exec(ctx, `DELETE FROM `+t+` WHERE subject = ? AND client_id = ?`, userID, clientID); err != nil {
				return fmt.Errorf("storage: revoke user client tokens: %w", s.mapErr(err))
			}
		}
		return nil
	})
}

// RevokeClientTokens deletes every access and refresh token of a client.
func (s *SQLStore) RevokeClientTokens(ctx context.Context, clientID string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		for _, t := range []string{tableAccess, tableRefresh} {
			if _, err := s.exec(ctx, `DELETE FROM `+t+` WHERE client_id = ?`, clientID); err != nil {
				return fmt.Errorf("storage: revoke client tokens: %w", s.mapErr(err))
			}
		}
		return nil
	})
}

// prunable lists every table with an expires_at, and its key column.
var prunable = []struct{ table, key string }{
	{tableCodes, "signature"},
	{tableAccess, "signature"},
	{tableRefresh, "signature"},
	{tablePKCE, "signature"},
	{tableOIDC, "signature"},
	{tablePAR, "signature"},
	{"oauth2_jtis", "jti"},
	{"browser_sessions", "id"},
	{"pending_authorizations", "id"},
	{"user_tokens", "token_hash"},
	{"registrations", "id"},
	{"mail_outbox", "id"}, // emails given up on (expires_at is NULL until then)
}

// PruneExpired deletes up to batch rows that expired before now from each
// table, each table in its own short statement so that pruning never holds
// locks long, and reports the total deleted.
func (s *SQLStore) PruneExpired(ctx context.Context, now time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = 1000
	}
	var total int64
	for _, p := range prunable {
		res, err := s.exec(ctx, `DELETE FROM `+p.table+` WHERE `+p.key+` IN (SELECT `+p.key+` FROM `+p.table+
			` WHERE expires_at < ? LIMIT ?)`, s.ts(now), batch)
		if err != nil {
			return total, fmt.Errorf("storage: prune %s: %w", p.table, s.mapErr(err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("storage: prune %s: %w", p.table, err)
		}
		total += n
	}
	n, err := s.pruneRateLimits(ctx, now, batch)
	if err != nil {
		return total, err
	}
	return total + n, nil
}
