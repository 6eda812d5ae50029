package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// fosite's token tables. Every one is keyed by hashKey(signature) and
// indexed by request_id, the refresh-token family.
const (
	tableCodes   = "oauth2_authorize_codes"
	tableAccess  = "oauth2_access_tokens"
	tableRefresh = "oauth2_refresh_tokens"
	tablePKCE    = "oauth2_pkce"
	tableOIDC    = "oauth2_oidc_sessions"
	tablePAR     = "oauth2_par_sessions"
)

// defaultLifetime is how long a row lives when its session names no expiry
// for that token type.
const defaultLifetime = 30 * 24 * time.Hour

const requestCols = `request_id, client_id, subject, requested_at, expires_at, active, requested_scopes, granted_scopes,
	requested_audience, granted_audience, form, session`

// requestRow is one stored fosite request.
type requestRow struct {
	RequestID         string
	ClientID          string
	Subject           string
	RequestedAt       time.Time
	ExpiresAt         time.Time
	Active            bool
	RequestedScopes   []string
	GrantedScopes     []string
	RequestedAudience []string
	GrantedAudience   []string
	Form              string
	Session           string
}

func (r *requestRow) dest() []any {
	return []any{&r.RequestID, &r.ClientID, &r.Subject, timeDest{&r.RequestedAt}, timeDest{&r.ExpiresAt}, &r.Active,
		listDest{&r.RequestedScopes}, listDest{&r.GrantedScopes}, listDest{&r.RequestedAudience},
		listDest{&r.GrantedAudience}, &r.Form, &r.Session}
}

// insertRequest stores req in table under hashKey(key). extraCols/extraVals
// are the table's own columns (the refresh token's access token signature,
// the PAR request's authorize fields).
func (s *SQLStore) insertRequest(ctx context.Context, table, key string, tt fosite.TokenType, req fosite.Requester,
	extraCols string, extraVals ...any) error {
	sess := req.GetSession()
	sessJSON, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("storage: %s: encode session: %w", table, err)
	}
	requestedAt := req.GetRequestedAt()
	if requestedAt.IsZero() {
		requestedAt = time.Now()
	}
	var expiresAt time.Time
	var subject string
	if sess != nil {
		expiresAt = sess.GetExpiresAt(tt)
		subject = sess.GetSubject()
	}
	if expiresAt.IsZero() {
		expiresAt = requestedAt.Add(defaultLifetime)
	}
	var clientID string
	if c := req.GetClient(); c != nil {
		clientID = c.GetID()
	}
	var form string
	if f := req.GetRequestForm(); f != nil {
		form = f.Encode()
	}
	cols := `signature, ` + requestCols
	ph := `?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?`
	if extraCols != "" {
		cols += ", " + extraCols
		for range extraVals {
			ph += ", ?"
		}
	}
	args := append([]any{hashKey(key), req.GetID(), clientID, subject, s.ts(requestedAt), s.ts(expiresAt), true,
		listVal(req.GetRequestedScopes()), listVal(req.GetGrantedScopes()), listVal(req.GetRequestedAudience()),
		listVal(req.GetGrantedAudience()), form, string(sessJSON)}, extraVals...)
	if _, err := s.exec(ctx, `INSERT INTO `+table+` (`+cols+`) VALUES (`+ph+`)`, args...); err != nil {
		return fmt.Errorf("storage: %s: insert: %w", table, s.mapFositeErr(err))
	}
	return nil
}

// loadRequest reads the live (unexpired) row keyed by hashKey(key) and
// rebuilds the fosite.Request, unmarshalling the stored session into
// session. It returns the row too so callers can check Active. Missing or
// expired rows are fosite.ErrNotFound: expiry is enforced here, the same
// way for every token type, rather than left to each fosite handler.
func (s *SQLStore) loadRequest(ctx context.Context, table, key string, session fosite.Session,
	extraCols string, extraDest ...any) (*fosite.Request, *requestRow, error) {
	var row requestRow
	cols := requestCols
	if extraCols != "" {
		cols += ", " + extraCols
	}
	err := s.queryRow(ctx, `SELECT `+cols+` FROM `+table+` WHERE signature = ? AND expires_at > ?`,
		hashKey(key), s.ts(time.Now())).Scan(append(row.dest(), extraDest...)...)
	if err != nil {
		return nil, nil, s.mapFositeErr(err)
	}
	req, err := s.buildRequest(ctx, &row, session)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: %s: %w", table, err)
	}
	return req, &row, nil
}

func (s *SQLStore) buildRequest(ctx context.Context, row *requestRow, session fosite.Session) (*fosite.Request, error) {
	client, err := s.GetClient(ctx, row.ClientID)
	if err != nil {
		return nil, err
	}
	if session == nil {
		session = s.newSession()
	}
	if err := json.Unmarshal([]byte(row.Session), session); err != nil {
		return nil, fmt.Errorf("decode session: %w", err)
	}
	form, err := url.ParseQuery(row.Form)
	if err != nil {
		return nil, fmt.Errorf("decode form: %w", err)
	}
	return &fosite.Request{
		ID:                row.RequestID,
		RequestedAt:       row.RequestedAt,
		Client:            client,
		RequestedScope:    fosite.Arguments(row.RequestedScopes),
		GrantedScope:      fosite.Arguments(row.GrantedScopes),
		RequestedAudience: fosite.Arguments(row.RequestedAudience),
		GrantedAudience:   fosite.Arguments(row.GrantedAudience),
		Form:              form,
		Session:           session,
	}, nil
}

func (s *SQLStore) deleteByKey(ctx context.Context, table, key string) error {
	if _, err := s.exec(ctx, `DELETE FROM `+table+` WHERE signature = ?`, hashKey(key)); err != nil {
		return fmt.Errorf("storage: %s: delete: %w", table, s.mapFositeErr(err))
	}
	return nil
}

// ---- fosite.ClientManager ----

// GetClient implements fosite.ClientManager; fosite.ErrNotFound when
// missing.
func (s *SQLStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.cachedGetClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, s.mapFositeErr(err)
	}
	return c, nil
}

// ClientAssertionJWTValid reports fosite.ErrJTIKnown when jti was used and
// has not expired yet.
func (s *SQLStore) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM oauth2_jtis WHERE jti = ? AND expires_at > ?`,
		hashKey(jti), s.ts(time.Now())).Scan(&n)
	if err != nil {
		return fmt.Errorf("storage: check jti: %w", s.mapFositeErr(err))
	}
	if n > 0 {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT records jti until exp; fosite.ErrJTIKnown when it
// is already recorded and unexpired. An expired record is reused, in one
// statement so two concurrent uses cannot both succeed.
func (s *SQLStore) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	res, err := s.exec(ctx, `INSERT INTO oauth2_jtis (jti, expires_at) VALUES (?, ?)
		ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at WHERE oauth2_jtis.expires_at <= ?`,
		hashKey(jti), s.ts(exp), s.ts(time.Now()))
	if err != nil {
		return fmt.Errorf("storage: set jti: %w", s.mapFositeErr(err))
	}
	ok, err := affected(res)
	if err != nil {
		return fmt.Errorf("storage: set jti: %w", err)
	}
	if !ok {
		return fosite.ErrJTIKnown
	}
	return nil
}

// ---- authorize codes ----

// CreateAuthorizeCodeSession stores an authorization code's request.
func (s *SQLStore) CreateAuthorizeCodeSession(ctx context.Context, code string, req fosite.Requester) error {
	return s.insertRequest(ctx, tableCodes, code, fosite.AuthorizeCode, req, "")
}

// GetAuthorizeCodeSession returns the request of a code; for a used
// (invalidated) code it returns the request along with
// fosite.ErrInvalidatedAuthorizeCode, so fosite can revoke what the code
// issued.
func (s *SQLStore) GetAuthorizeCodeSession(ctx context.Context, code string, session fosite.Session) (fosite.Requester, error) {
	req, row, err := s.loadRequest(ctx, tableCodes, code, session, "")
	if err != nil {
		return nil, err
	}
	if !row.Active {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession marks a code used. Only one caller can
// flip it: a second (concurrent) exchange gets
// fosite.ErrInvalidatedAuthorizeCode.
func (s *SQLStore) InvalidateAuthorizeCodeSession(ctx context.Context, code string) error {
	res, err := s.exec(ctx, `UPDATE `+tableCodes+` SET active = ? WHERE signature = ? AND active = ?`, false, hashKey(code), true)
	if err != nil {
		return fmt.Errorf("storage: invalidate code: %w", s.mapFositeErr(err))
	}
	if ok, err := affected(res); err != nil {
		return fmt.Errorf("storage: invalidate code: %w", err)
	} else if ok {
		return nil
	}
	if s.exists(ctx, tableCodes, code) {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	return fosite.ErrNotFound
}

func (s *SQLStore) exists(ctx context.Context, table, key string) bool {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM `+table+` WHERE signature = ?`, hashKey(key)).Scan(&n)
	return err == nil && n > 0
}

// ---- access tokens ----

// CreateAccessTokenSession stores an access token's request.
func (s *SQLStore) CreateAccessTokenSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.insertRequest(ctx, tableAccess, signature, fosite.AccessToken, req, "")
}

// GetAccessTokenSession returns an access token's request;
// fosite.ErrNotFound when missing, revoked or expired.
func (s *SQLStore) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := s.loadRequest(ctx, tableAccess, signature, session, "")
	if err != nil {
		return nil, err
	}
	return req, nil
}

// DeleteAccessTokenSession deletes an access token (missing is fine).
func (s *SQLStore) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.deleteByKey(ctx, tableAccess, signature)
}

// ---- refresh tokens ----

// CreateRefreshTokenSession stores a refresh token's request and the
// signature of the access token issued with it.
func (s *SQLStore) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, req fosite.Requester) error {
	var at string
	if accessSignature != "" {
		at = hashKey(accessSignature)
	}
	return s.insertRequest(ctx, tableRefresh, signature, fosite.RefreshToken, req, "access_token_signature", at)
}

// GetRefreshTokenSession returns a refresh token's request; for a rotated
// or revoked token it returns the request along with
// fosite.ErrInactiveToken, which is how fosite detects reuse.
func (s *SQLStore) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, row, err := s.loadRequest(ctx, tableRefresh, signature, session, "")
	if err != nil {
		return nil, err
	}
	if !row.Active {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// DeleteRefreshTokenSession deletes a refresh token (missing is fine).
func (s *SQLStore) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.deleteByKey(ctx, tableRefresh, signature)
}

// RotateRefreshToken retires the refresh token being used (it stays, as
// inactive, so a replay is recognised) and deletes the access token issued
// with it. The conditional UPDATE is the concurrency guard: of several
// requests rotating the same token only one flips it; the others get
// fosite.ErrSerializationFailure (PostgreSQL waits for the winner's row
// lock and then sees active = false; SQLite's BEGIN IMMEDIATE serialises
// the whole exchange).
func (s *SQLStore) RotateRefreshToken(ctx context.Context, _ /* requestID */, signature string) error {
	sig := hashKey(signature)
	var atSig string
	err := s.queryRow(ctx, `UPDATE `+tableRefresh+` SET active = ? WHERE signature = ? AND active = ?
		RETURNING access_token_signature`, false, sig, true).Scan(&atSig)
	if err != nil {
		err = s.mapFositeErr(err)
		if errors.Is(err, fosite.ErrNotFound) {
			if s.exists(ctx, tableRefresh, signature) {
				return fmt.Errorf("storage: rotate refresh token: already rotated: %w", fosite.ErrSerializationFailure)
			}
			return fosite.ErrNotFound
		}
		return fmt.Errorf("storage: rotate refresh token: %w", err)
	}
	if atSig != "" {
		if _, err := s.exec(ctx, `DELETE FROM `+tableAccess+` WHERE signature = ?`, atSig); err != nil {
			return fmt.Errorf("storage: rotate refresh token: %w", s.mapFositeErr(err))
		}
	}
	return nil
}

// RevokeRefreshToken deactivates every refresh token of the family
// requestID. They are kept, inactive, so a later replay is still detected.
func (s *SQLStore) RevokeRefreshToken(ctx context.Context, requestID string) error {
	if _, err := s.exec(ctx, `UPDATE `+tableRefresh+` SET active = ? WHERE request_id = ?`, false, requestID); err != nil {
		return fmt.Errorf("storage: revoke refresh tokens: %w", s.mapFositeErr(err))
	}
	return nil
}

// RevokeAccessToken deletes every access token of the family requestID.
func (s *SQLStore) RevokeAccessToken(ctx context.Context, requestID string) error {
	if _, err := s.exec(ctx, `DELETE FROM `+tableAccess+` WHERE request_id = ?`, requestID); err != nil {
		return fmt.Errorf("storage: revoke access tokens: %w", s.mapFositeErr(err))
	}
	return nil
}

// ---- PKCE ----

// CreatePKCERequestSession stores the PKCE challenge request of a code.
func (s *SQLStore) CreatePKCERequestSession(ctx context.Context, signature string, req fosite.Requester) error {
	return s.insertRequest(ctx, tablePKCE, signature, fosite.AuthorizeCode, req, "")
}

// GetPKCERequestSession returns it; fosite.ErrNotFound when missing.
func (s *SQLStore) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := s.loadRequest(ctx, tablePKCE, signature, session, "")
	if err != nil {
		return nil, err
	}
	return req, nil
}

// DeletePKCERequestSession deletes it (missing is fine).
func (s *SQLStore) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return s.deleteByKey(ctx, tablePKCE, signature)
}

// ---- OpenID Connect ----

// CreateOpenIDConnectSession stores the OIDC request of an authorization
// code. fosite passes the raw code here, which is why every key is hashed.
func (s *SQLStore) CreateOpenIDConnectSession(ctx context.Context, authorizeCode string, req fosite.Requester) error {
	return s.insertRequest(ctx, tableOIDC, authorizeCode, fosite.AuthorizeCode, req, "")
}

// GetOpenIDConnectSession returns it, unmarshalling the stored session into
// requester's session; fosite.ErrNotFound when missing.
func (s *SQLStore) GetOpenIDConnectSession(ctx context.Context, authorizeCode string, requester fosite.Requester) (fosite.Requester, error) {
	var proto fosite.Session
	if requester != nil {
		proto = requester.GetSession()
	}
	req, _, err := s.loadRequest(ctx, tableOIDC, authorizeCode, proto, "")
	if err != nil {
		return nil, err
	}
	return req, nil
}

// DeleteOpenIDConnectSession deletes it (missing is fine).
func (s *SQLStore) DeleteOpenIDConnectSession(ctx context.Context, authorizeCode string) error {
	return s.deleteByKey(ctx, tableOIDC, authorizeCode)
}

// ---- PAR ----

// parFields are the fosite.AuthorizeRequest fields a plain Request lacks.
type parFields struct {
	ResponseTypes        []string `json:"response_types,omitempty"`
	RedirectURI          string   `json:"redirect_uri,omitempty"`
	State                string   `json:"state,omitempty"`
	HandledResponseTypes []string `json:"handled_response_types,omitempty"`
	ResponseMode         string   `json:"response_mode,omitempty"`
	DefaultResponseMode  string   `json:"default_response_mode,omitempty"`
}

// CreatePARSession stores a pushed authorization request under its
// request URI.
func (s *SQLStore) CreatePARSession(ctx context.Context, requestURI string, req fosite.AuthorizeRequester) error {
	f := parFields{
		ResponseTypes:       req.GetResponseTypes(),
		State:               req.GetState(),
		ResponseMode:        string(req.GetResponseMode()),
		DefaultResponseMode: string(req.GetDefaultResponseMode()),
	}
	if u := req.GetRedirectURI(); u != nil {
		f.RedirectURI = u.String()
	}
	if ar, ok := req.(*fosite.AuthorizeRequest); ok {
		f.HandledResponseTypes = ar.HandledResponseTypes
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("storage: par: encode: %w", err)
	}
	return s.insertRequest(ctx, tablePAR, requestURI, fosite.PushedAuthorizeRequestContext, req, "authorize", string(b))
}

// GetPARSession returns a pushed authorization request, its session
// unmarshalled into s.newSession(); fosite.ErrNotFound when missing or
// expired.
func (s *SQLStore) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	var raw string
	req, _, err := s.loadRequest(ctx, tablePAR, requestURI, s.newSession(), "authorize", &raw)
	if err != nil {
		return nil, err
	}
	var f parFields
	if err := json.Unmarshal([]byte(raw), &f); err != nil {
		return nil, fmt.Errorf("storage: par: decode: %w", err)
	}
	ar := &fosite.AuthorizeRequest{
		ResponseTypes:        fosite.Arguments(f.ResponseTypes),
		State:                f.State,
		HandledResponseTypes: fosite.Arguments(f.HandledResponseTypes),
		ResponseMode:         fosite.ResponseModeType(f.ResponseMode),
		DefaultResponseMode:  fosite.ResponseModeType(f.DefaultResponseMode),
		Request:              *req,
	}
	if ar.HandledResponseTypes == nil {
		ar.HandledResponseTypes = fosite.Arguments{}
	}
	if f.RedirectURI != "" {
		u, err := url.Parse(f.RedirectURI)
		if err != nil {
			return nil, fmt.Errorf("storage: par: redirect uri: %w", err)
		}
		ar.RedirectURI = u
	}
	return ar, nil
}

// DeletePARSession deletes it (missing is fine).
func (s *SQLStore) DeletePARSession(ctx context.Context, requestURI string) error {
	return s.deleteByKey(ctx, tablePAR, requestURI)
}
