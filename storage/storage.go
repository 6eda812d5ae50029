// Package storage is Latchkey's persistence contract: the record types,
// the interfaces the rest of the server persists through, and their errors.
// The implementation (sqlx, on PostgreSQL and SQLite) is package
// storage/sqlstore; the conformance suite every implementation must pass
// is storage/storagetest.
//
// Storage never knows HTTP and never holds business rules: it stores and
// loads exactly what it is given. Rules live in provider/accounts.
package storage

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"
)

// Errors returned by the Latchkey-specific methods. fosite's own methods
// return fosite's errors (fosite.ErrNotFound, fosite.ErrInactiveToken, …)
// because fosite checks for those.
var (
	// ErrNotFound: no record with that key, or it has expired.
	ErrNotFound = errors.New("storage: not found")
	// ErrDuplicate: a unique key (id, username, email, …) is taken.
	ErrDuplicate = errors.New("storage: already exists")
	// ErrConflict: a concurrent transaction changed the same rows; retry.
	ErrConflict = errors.New("storage: concurrent update")
	// ErrUnavailable: the database cannot be reached or cannot serve now
	// (connection refused or lost, shutting down, out of resources). It
	// says nothing about the request: callers answer 503 with Retry-After,
	// never a refusal of the caller's credentials.
	ErrUnavailable = errors.New("storage: database unavailable")
)

// UserStatus is the lifecycle state of a user.
type UserStatus string

const (
	UserActive    UserStatus = "active"
	UserSuspended UserStatus = "suspended"
	UserDeleted   UserStatus = "deleted"
)

// User is a person who can sign in. Email is stored as given; lookups by
// email are case-insensitive.
type User struct {
	ID            string     `db:"id"`
	Username      string     `db:"username"`
	Email         string     `db:"email"`
	EmailVerified bool       `db:"email_verified"`
	DisplayName   string     `db:"display_name"`
	PasswordHash  string     `db:"password_hash"` // argon2id PHC string, bcrypt on import, "" for passwordless
	Status        UserStatus `db:"status"`
	PictureURL    string     `db:"picture_url"`
	Locale        string     `db:"locale"` // BCP 47 tag, e.g. "en-GB"
	CreatedAt     time.Time  `db:"created_at"`
	// UpdatedAt is also the optimistic-concurrency version: UpdateUser
	// writes only if the row still has this value.
	UpdatedAt time.Time  `db:"updated_at"`
	DeletedAt *time.Time `db:"deleted_at"` // set while Status is deleted

	// Sign-in lockout state, kept here so that it holds across replicas.
	FailedLogins int        `db:"failed_logins"`
	LastFailedAt *time.Time `db:"last_failed_at"`
	LockedUntil  *time.Time `db:"locked_until"`

	// TierID is the user's service tier ("" = none). CreateUser writes it;
	// afterwards only SetUserTier changes it (UpdateUser leaves it alone).
	TierID string `db:"tier_id"`

	// The rest of the standard OIDC profile (OIDC Core §5.1), validated
	// by provider/accounts: "" is unset.
	GivenName           string
	FamilyName          string
	MiddleName          string
	Nickname            string
	Website             string // http(s) URL
	Zoneinfo            string // IANA time zone, e.g. "Europe/Paris"
	Birthdate           string // YYYY-MM-DD, or 0000-MM-DD without the year
	PhoneNumber         string // E.164, e.g. "+33612345678"
	PhoneNumberVerified bool
	Address             *Address // nil: none

	// UserMetadata is a JSON object the person may edit (preferences, a
	// bio); AppMetadata one only admins may change (a plan, a
	// department). Empty means {}.
	UserMetadata []byte
	AppMetadata  []byte

	// LastLoginAt is the last successful sign-in (password, passkey or
	// upstream); nil when the user never signed in. Only
	// RecordLastLogin writes it, and it does not change UpdatedAt.
	LastLoginAt *time.Time
}

// Address is the OIDC structured address claim (OIDC Core §5.1.1).
type Address struct {
	Formatted     string `json:"formatted,omitempty"`
	StreetAddress string `json:"street_address,omitempty"`
	Locality      string `json:"locality,omitempty"`
	Region        string `json:"region,omitempty"`
	PostalCode    string `json:"postal_code,omitempty"`
	Country       string `json:"country,omitempty"`
}

// LoginAttempt is the outcome of ClaimLoginAttempt.
type LoginAttempt struct {
	Locked      bool       // the user was locked: the attempt is refused, nothing counted
	Failures    int        // the count including this attempt
	LockedUntil *time.Time // the lock now in place (the one found, when Locked)
}

// TokenPurpose types a UserToken: a token issued for one purpose is never
// accepted for another.
type TokenPurpose string

const (
	TokenVerifyEmail   TokenPurpose = "verify_email"
	TokenResetPassword TokenPurpose = "reset_password"
	TokenChangeEmail   TokenPurpose = "change_email"
)

// UserToken is a single-use token sent by email. Only the SHA-256 of the
// token is stored.
type UserToken struct {
	TokenHash []byte
	Purpose   TokenPurpose
	UserID    string
	Email     string // the address it was sent to (the new one, for change_email)
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Registration is a self-service sign-up waiting for its address to be
// confirmed. The account is created from it when the emailed link is used,
// so until then the username is not held and nothing about the address is
// stored in users. Only the SHA-256 of the emailed token is stored.
type Registration struct {
	ID           string
	TokenHash    []byte
	Username     string
	Email        string
	DisplayName  string
	PasswordHash string // argon2id PHC string
	CreatedAt    time.Time
	ExpiresAt    time.Time
}

// AccessTokenFormat selects how a client's access tokens look.
type AccessTokenFormat string

const (
	AccessTokenOpaque AccessTokenFormat = "opaque"
	AccessTokenJWT    AccessTokenFormat = "jwt"
)

// Client is a registered OAuth 2.0 / OIDC relying party. It implements
// fosite.Client so it can be handed to fosite as is.
type Client struct {
	ID                     string
	Name                   string
	SecretHash             []byte // SHA-256 of the secret; empty for public clients
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string
	ResponseTypes          []string
	Scopes                 []string
	Audience               []string
	Public                 bool
	FirstParty             bool // consent is skipped
	AccessTokenFormat      AccessTokenFormat
	// RequireMFA makes every sign-in to this client use a second factor
	// (issue 10 §3); a user without one is taken to enrolment first.
	RequireMFA bool
	// Claims maps claim names to a source in the user's metadata
	// ("app_metadata.department"); they are emitted when ClaimsScope is
	// granted ("" = profile).
	Claims      map[string]string
	ClaimsScope string
	CreatedAt   time.Time
	// Meta is the registration metadata of OIDC Dynamic Client
	// Registration (authentication method, keys, signing algorithms,
	// logout URIs, …).
	Meta ClientMeta
	// SealedSecret is the secret sealed under LATCHKEY_SECRET, kept only
	// for client_secret_jwt (the HMAC needs the secret itself); nil
	// otherwise.
	SealedSecret []byte

	// Token lifetimes for this client; 0 means the server's default.
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	IDTokenTTL      time.Duration
	AuthCodeTTL     time.Duration
}

var (
	_ fosite.Client                         = (*Client)(nil)
	_ fosite.ClientWithCustomTokenLifespans = (*Client)(nil)
	_ fosite.ResponseModeClient             = (*Client)(nil)
)

func (c *Client) GetID() string                      { return c.ID }
func (c *Client) GetHashedSecret() []byte            { return c.SecretHash }
func (c *Client) GetRedirectURIs() []string          { return c.RedirectURIs }
func (c *Client) GetGrantTypes() fosite.Arguments    { return c.GrantTypes }
func (c *Client) GetResponseTypes() fosite.Arguments { return c.ResponseTypes }
func (c *Client) GetScopes() fosite.Arguments        { return c.Scopes }
func (c *Client) IsPublic() bool                     { return c.Public }

// GetResponseModes are the response modes discovery advertises, for
// every client: the query (code flow's default) and form_post. fosite
// refuses any explicit response_mode for a client without this method.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeDefault, fosite.ResponseModeQuery, fosite.ResponseModeFormPost}
}

// GetAudience is the audiences the client may request; its own id is
// always one, since Latchkey grants it as the default "aud" of the
// client's access tokens.
func (c *Client) GetAudience() fosite.Arguments {
	return append(append(make([]string, 0, len(c.Audience)+1), c.Audience...), c.ID)
}

// GetEffectiveLifespan is the client's lifetime for the token type when it
// has one (> 0), else fallback. The grant type does not matter: a client's
// access tokens live as long whichever grant issued them.
func (c *Client) GetEffectiveLifespan(_ fosite.GrantType, tt fosite.TokenType, fallback time.Duration) time.Duration {
	var d time.Duration
	switch tt {
	case fosite.AccessToken:
		d = c.AccessTokenTTL
	case fosite.RefreshToken:
		d = c.RefreshTokenTTL
	case fosite.IDToken:
		d = c.IDTokenTTL
	case fosite.AuthorizeCode:
		d = c.AuthCodeTTL
	}
	if d > 0 {
		return d
	}
	return fallback
}

// SigningKey is one asymmetric key pair used to sign ID tokens and JWT
// access tokens. The private key is sealed (AES-256-GCM) by provider/keys;
// storage only keeps the bytes.
//
// Lifecycle, all derived from timestamps so that several processes agree:
//   - published in JWKS from CreatedAt until ExpiresAt (nil: no end);
//   - may sign from ActivatesAt until RetiredAt (nil: no end);
//   - the signer for an algorithm is the most recently activated key that
//     may sign now.
type SigningKey struct {
	ID          string     `db:"id"` // the JWK "kid"
	Algorithm   string     `db:"algorithm"`
	PublicJWK   []byte     `db:"public_jwk"`  // JSON of the public JWK
	PrivateKey  []byte     `db:"private_key"` // sealed private key
	CreatedAt   time.Time  `db:"created_at"`
	ActivatesAt time.Time  `db:"activates_at"`
	RetiredAt   *time.Time `db:"retired_at"`
	ExpiresAt   *time.Time `db:"expires_at"`
}

// BrowserSession is a signed-in browser. The cookie carries a random token;
// only its SHA-256 (TokenHash) is stored. ID is a separate public identifier
// used as the OIDC "sid" claim.
type BrowserSession struct {
	ID         string    `db:"id"`
	TokenHash  []byte    `db:"token_hash"`
	UserID     string    `db:"user_id"`
	AuthTime   time.Time `db:"auth_time"`
	AMR        []string  `db:"-"`
	IP         string    `db:"ip"`
	UserAgent  string    `db:"user_agent"`
	CreatedAt  time.Time `db:"created_at"`
	LastSeenAt time.Time `db:"last_seen_at"`
	ExpiresAt  time.Time `db:"expires_at"`
}

// PendingAuthorization is an authorization request waiting for the person to
// sign in and consent (the "login challenge"). Form holds the authorization
// request parameters, URL-encoded, exactly as fosite validated them.
//
// A direct sign-in (the account page, no application) that needs more
// than one step is parked here too: ClientID is "" and Form holds only
// "return_to".
type PendingAuthorization struct {
	ID        string
	ClientID  string // "" for a direct sign-in
	Form      string
	CSRFToken string // binds the challenge to the browser that started it

	// Set once the person has signed in for this request.
	UserID    string
	SessionID string
	AuthTime  *time.Time
	AMR       []string

	// Set once consent has been given (or skipped).
	ConsentGiven  bool
	GrantedScopes []string

	CreatedAt time.Time
	ExpiresAt time.Time
}

// Consent records the scopes a user has granted a client.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
	UpdatedAt time.Time
}

// Users persists users.
type Users interface {
	// CreateUser inserts u; ErrDuplicate when the id, username or email
	// (case-insensitive) is taken. CreatedAt/UpdatedAt are set when zero.
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, id string) (*User, error)
	// GetUserByLogin finds a user by username or by email (case-insensitive).
	GetUserByLogin(ctx context.Context, login string) (*User, error)
	// UpdateUserPasswordHash replaces the password hash (rehash on login).
	UpdateUserPasswordHash(ctx context.Context, id, hash string) error
	// SetUserStatus changes the lifecycle state.
	SetUserStatus(ctx context.Context, id string, status UserStatus) error
	// UpdateUser writes the profile and lifecycle fields (username, email,
	// email_verified, display name, picture, locale, the OIDC profile,
	// both metadata objects, status, deleted_at)
	// if the row's updated_at still equals u.UpdatedAt, then sets
	// u.UpdatedAt to the new value. ErrConflict when someone else changed
	// the user first, ErrDuplicate when the username or email is taken.
	UpdateUser(ctx context.Context, u *User) error
	// RecordLoginFailure counts one failed sign-in and returns the count.
	RecordLoginFailure(ctx context.Context, id string, at time.Time) (int, error)
	// ClaimLoginAttempt counts a sign-in attempt as a failure before the
	// password is checked, atomically with the lock decision, so that
	// concurrent guesses cannot all slip past a lock: unless the user is
	// locked at now, failures older than memory are forgotten, the count
	// is incremented, and the user is locked for lockFor(count) (0 = no
	// lock). A correct password then clears it with SetUserLockout.
	ClaimLoginAttempt(ctx context.Context, id string, now time.Time, memory time.Duration,
		lockFor func(failures int) time.Duration) (LoginAttempt, error)
	// SetUserLockout sets the failure count and lock (0, nil clears both).
	SetUserLockout(ctx context.Context, id string, failures int, lockedUntil *time.Time) error
	// RecordLastLogin sets LastLoginAt (not UpdatedAt: a sign-in is not
	// a profile change).
	RecordLastLogin(ctx context.Context, id string, at time.Time) error
}

// UserTokens persists single-use email tokens.
type UserTokens interface {
	CreateUserToken(ctx context.Context, t *UserToken) error
	// ConsumeUserToken deletes and returns the live token with that hash
	// and purpose; ErrNotFound when missing, expired, used or of another
	// purpose (in which case it is left alone).
	ConsumeUserToken(ctx context.Context, hash []byte, purpose TokenPurpose, now time.Time) (*UserToken, error)
	// DeleteUserTokens removes a user's tokens of one purpose ("" = all).
	DeleteUserTokens(ctx context.Context, userID string, purpose TokenPurpose) error
}

// Registrations persists sign-ups waiting for email confirmation. An
// address may have several (each registration attempt emails its own link).
type Registrations interface {
	// CreateRegistration inserts r; CreatedAt is set when zero.
	CreateRegistration(ctx context.Context, r *Registration) error
	// ConsumeRegistration deletes and returns the live registration whose
	// token hash is hash; ErrNotFound when missing or expired. Inside a
	// transaction that rolls back, the registration is kept.
	ConsumeRegistration(ctx context.Context, hash []byte, now time.Time) (*Registration, error)
	// LatestRegistration returns the newest live registration for email
	// (case-insensitive); ErrNotFound when there is none.
	LatestRegistration(ctx context.Context, email string, now time.Time) (*Registration, error)
	// RenewRegistration gives a registration a new token hash and expiry
	// (a resent link); ErrNotFound when it is gone.
	RenewRegistration(ctx context.Context, id string, hash []byte, expiresAt time.Time) error
	// DeleteRegistrations removes every registration for email
	// (case-insensitive): the address has an account now.
	DeleteRegistrations(ctx context.Context, email string) error
}

// Clients persists OAuth clients. fosite's GetClient is in FositeStore.
type Clients interface {
	// CreateClient inserts c; ErrDuplicate when the id is taken.
	CreateClient(ctx context.Context, c *Client) error
	GetClientByID(ctx context.Context, id string) (*Client, error)
	// ListClients returns every client ordered by id.
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient writes every field of c but its id and CreatedAt;
	// ErrNotFound when there is no such client. The change is visible at
	// once through this store (the client cache forgets c).
	UpdateClient(ctx context.Context, c *Client) error
	// DeleteClient removes the client and every token issued to it.
	DeleteClient(ctx context.Context, id string) error
}

// SigningKeys persists signing keys.
type SigningKeys interface {
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// ListSigningKeys returns every key, oldest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateSigningKeyTimes writes ActivatesAt, RetiredAt and ExpiresAt.
	UpdateSigningKeyTimes(ctx context.Context, k *SigningKey) error
	// DeleteSigningKey removes a key for good (after it left JWKS).
	DeleteSigningKey(ctx context.Context, id string) error
}

// BrowserSessions persists signed-in browsers.
type BrowserSessions interface {
	CreateBrowserSession(ctx context.Context, s *BrowserSession) error
	// GetBrowserSession finds a live session by the hash of its cookie
	// token; ErrNotFound when missing or expired.
	GetBrowserSession(ctx context.Context, tokenHash []byte) (*BrowserSession, error)
	// GetBrowserSessionByID finds a live session by its public id.
	GetBrowserSessionByID(ctx context.Context, id string) (*BrowserSession, error)
	TouchBrowserSession(ctx context.Context, id string, lastSeen time.Time) error
	DeleteBrowserSession(ctx context.Context, id string) error
	DeleteUserBrowserSessions(ctx context.Context, userID string) error
	// ListUserBrowserSessions returns a user's live sessions, newest first.
	ListUserBrowserSessions(ctx context.Context, userID string) ([]BrowserSession, error)
}

// PendingAuthorizations persists login challenges.
type PendingAuthorizations interface {
	CreatePendingAuthorization(ctx context.Context, p *PendingAuthorization) error
	// GetPendingAuthorization returns ErrNotFound when missing or expired.
	GetPendingAuthorization(ctx context.Context, id string) (*PendingAuthorization, error)
	// UpdatePendingAuthorization writes the browser binding (CSRFToken) and
	// the login and consent fields.
	UpdatePendingAuthorization(ctx context.Context, p *PendingAuthorization) error
	DeletePendingAuthorization(ctx context.Context, id string) error
}

// Consents persists granted scopes per user and client.
type Consents interface {
	GetConsent(ctx context.Context, userID, clientID string) (*Consent, error)
	// UpsertConsent replaces the scopes granted to the client.
	UpsertConsent(ctx context.Context, c *Consent) error
	DeleteConsent(ctx context.Context, userID, clientID string) error
	// ListUserConsents returns a user's grants ordered by client id.
	ListUserConsents(ctx context.Context, userID string) ([]Consent, error)
}

// FositeStore is the whole storage contract fosite needs, named in one
// place. Token tables are keyed by a hash of the signature and indexed by
// request_id, which is the refresh-token family.
type FositeStore interface {
	fosite.ClientManager
	oauth2.CoreStorage
	oauth2.TokenRevocationStorage
	openid.OpenIDConnectRequestStorage
	pkce.PKCERequestStorage
	fosite.PARStorage
	fositestorage.Transactional
}

// Store is everything Latchkey persists.
type Store interface {
	FositeStore
	Users
	Clients
	SigningKeys
	BrowserSessions
	PendingAuthorizations
	Consents
	UserTokens
	Registrations
	Tiers
	Audit
	Directory
	Identities
	Factors
	Groups
	RateLimits
	MailOutbox
	Locker
	Resealer

	// InTx runs fn in one transaction (joining the one in ctx, if any) and
	// commits when fn returns nil.
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
	// RevokeUserTokens deletes every access and refresh token whose subject
	// is userID (sign-out everywhere, suspension).
	RevokeUserTokens(ctx context.Context, userID string) error
	// RevokeUserClientTokens deletes the access and refresh tokens one
	// client holds for userID (a revoked consent).
	RevokeUserClientTokens(ctx context.Context, userID, clientID string) error
	// RevokeClientTokens deletes every access and refresh token issued to
	// clientID (its secret or scopes changed).
	RevokeClientTokens(ctx context.Context, clientID string) error
	// PruneExpired deletes up to batch expired rows from each table that
	// expires (codes, tokens, PKCE/OIDC/PAR sessions, browser sessions,
	// pending authorizations, used JTIs, email tokens, registrations) and
	// reports how many it deleted.
	PruneExpired(ctx context.Context, now time.Time, batch int) (int64, error)
	Ping(ctx context.Context) error
	Close() error
}
