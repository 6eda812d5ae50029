// Package admin serves the admin listener: health and readiness probes,
// Prometheus metrics, optional pprof, and the admin REST API under /v1
// (described by the embedded openapi.yaml, served at /openapi.yaml). It is
// never mounted on the public listener.
//
// The API holds no rules of its own: every change goes through
// provider/accounts, which validates it and records it in the audit log in
// the change's transaction, with the admin client (from the bearer token)
// as the actor.
package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/provider/keys"
	"github.com/latchkey/latchkey/storage"
)

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// TokenChecker validates admin bearer tokens (provider implements it).
type TokenChecker interface {
	// CheckAdminToken returns who an active admin access token acts for
	// (a client, or a person holding admin roles: Type and ID set) and
	// the scopes it holds; storage.ErrUnavailable when that cannot be
	// known now.
	CheckAdminToken(ctx context.Context, token string) (actor accounts.Actor, scopes []string, err error)
}

// KeyManager is the part of *keys.Manager the API uses.
type KeyManager interface {
	List(ctx context.Context) ([]keys.KeyInfo, error)
	// RotateAudited and RetireAudited write their audit events through
	// the Accounts (a keys.Auditor), in the change's transaction.
	RotateAudited(ctx context.Context, a keys.Auditor, immediate bool) ([]storage.SigningKey, error)
	RetireAudited(ctx context.Context, a keys.Auditor, kid string) error
}

var _ KeyManager = (*keys.Manager)(nil)

// Accounts is the part of *accounts.Service the API calls: every rule the
// admin API applies lives there.
type Accounts interface {
	// users
	CreateUser(ctx context.Context, u accounts.NewUser) (*storage.User, error)
	GetUserAny(ctx context.Context, id string) (*storage.User, error)
	FindUser(ctx context.Context, login string) (*storage.User, error)
	SearchUsers(ctx context.Context, q storage.UserQuery) (*storage.UserPage, error)
	AdminUpdateUser(ctx context.Context, id string, version time.Time, up accounts.UserUpdate) (*storage.User, error)
	SetPassword(ctx context.Context, id, password string) error
	Suspend(ctx context.Context, id, reason string) (*storage.User, error)
	Unsuspend(ctx context.Context, id, reason string) (*storage.User, error)
	SoftDelete(ctx context.Context, id, reason string) (*storage.User, error)
	Restore(ctx context.Context, id, reason string) (*storage.User, error)
	HardDelete(ctx context.Context, id, reason string) error
	GetUserArchive(ctx context.Context, id string) (*storage.UserArchive, error)
	UserSessions(ctx context.Context, id string) ([]storage.BrowserSession, error)
	RevokeUserSessions(ctx context.Context, id string) error
	ClearLockout(ctx context.Context, userID string) error
	ExportUser(ctx context.Context, id string) (*accounts.UserExport, error)
	UserRateLimits(ctx context.Context, userID string) (*storage.Tier, []storage.RateLimit, error)
	AssignTier(ctx context.Context, userID, tierID string) (*storage.User, error)
	ImportUsers(ctx context.Context, r io.Reader) ([]accounts.ImportResult, error)
	ListIdentities(ctx context.Context, userID string) ([]storage.Identity, error)
	AdminUnlinkIdentity(ctx context.Context, userID, upstream, subject string) error
	Stats(ctx context.Context, days int) (*storage.Stats, error)
	ListFactors(ctx context.Context, userID string) ([]storage.Factor, int, error)
	ResetFactors(ctx context.Context, userID, reason string) (int, error)
	AdminDeleteFactor(ctx context.Context, userID, factorID, reason string) error
	MFAEnabledUsers(ctx context.Context, userIDs []string) (map[string]bool, error)

	// groups and roles
	CreateGroup(ctx context.Context, spec accounts.GroupSpec) (*storage.Group, error)
	GetGroup(ctx context.Context, id string) (*storage.Group, error)
	ListGroups(ctx context.Context, q storage.PageQuery) ([]storage.Group, string, error)
	UpdateGroup(ctx context.Context, id string, spec accounts.GroupSpec) (*storage.Group, error)
	DeleteGroup(ctx context.Context, id string) error
	GroupRoles(ctx context.Context, id string) ([]storage.Role, error)
	ListGroupMembers(ctx context.Context, id string, q storage.PageQuery) ([]storage.User, string, error)
	AddGroupMember(ctx context.Context, groupID, userID string) error
	RemoveGroupMember(ctx context.Context, groupID, userID string) error
	GrantGroupRole(ctx context.Context, groupID, roleID string) error
	RevokeGroupRole(ctx context.Context, groupID, roleID string) error
	GrantUserRole(ctx context.Context, userID, roleID string) error
	RevokeUserRole(ctx context.Context, userID, roleID string) error
	CreateRole(ctx context.Context, spec accounts.RoleSpec) (*storage.Role, error)
	GetRole(ctx context.Context, id string) (*storage.Role, error)
	ListRoles(ctx context.Context, q storage.RoleQuery) ([]storage.Role, string, error)
	UpdateRole(ctx context.Context, id string, spec accounts.RoleSpec) (*storage.Role, error)
	DeleteRole(ctx context.Context, id string) error
	Memberships(ctx context.Context, userID string) (*storage.Memberships, error)

	// audit
	ListAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditEvent, error)
	RecordAudit(ctx context.Context, action, target, reason string, changes map[string]any) error
	InTx(ctx context.Context, fn func(ctx context.Context) error) error

	// tiers
	ListTiers(ctx context.Context) ([]storage.Tier, error)
	GetTier(ctx context.Context, id string) (*storage.Tier, error)
	CreateTier(ctx context.Context, spec accounts.TierSpec) (*storage.Tier, error)
	UpdateTier(ctx context.Context, id string, spec accounts.TierSpec) (*storage.Tier, error)
	DeleteTier(ctx context.Context, id string) error
	TierRateLimits(ctx context.Context, id string) ([]storage.RateLimit, error)
	SetTierRateLimits(ctx context.Context, id string, limits []storage.RateLimit) error

	// clients
	ListClients(ctx context.Context) ([]storage.Client, error)
	GetClient(ctx context.Context, id string) (*storage.Client, error)
	CreateClient(ctx context.Context, spec accounts.ClientSpec) (*storage.Client, string, error)
	UpdateClient(ctx context.Context, id string, up accounts.ClientUpdate) (*storage.Client, error)
	RotateClientSecret(ctx context.Context, id string) (*storage.Client, string, error)
	DeleteClient(ctx context.Context, id string) error
}

var _ Accounts = (*accounts.Service)(nil)

// Deps are the admin server's collaborators.
type Deps struct {
	DB Pinger
	// Draining reports that the process is shutting down: /readyz answers
	// 503 so that load balancers stop sending requests while the ones in
	// flight finish. Nil means never.
	Draining func() bool
	Metrics  http.Handler // promhttp handler of the server's registry
	// MetricsToken, when set, is the bearer token /metrics requires.
	MetricsToken string
	// Profiling serves Go's pprof profiles under /debug/pprof/.
	Profiling bool

	// The REST API under /v1 exists only when Accounts and Tokens are set.
	Accounts Accounts
	Tokens   TokenChecker
	// Keys serves /v1/keys; without it those routes answer 503.
	Keys   KeyManager
	Logger *slog.Logger
	// Middleware wraps every matched route (the metrics middleware, which
	// reads the route template); nil = none.
	Middleware func(http.Handler) http.Handler
}

// NewServer returns the admin listener's handler.
func NewServer(d Deps) http.Handler {
	return newRouter(d)
}

func newRouter(d Deps) *mux.Router {
	if d.Metrics == nil {
		d.Metrics = http.NotFoundHandler()
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	r := mux.NewRouter()
	r.NotFoundHandler = handleNotFound()
	r.MethodNotAllowedHandler = handleMethodNotAllowed(r)
	if d.Middleware != nil {
		r.Use(mux.MiddlewareFunc(d.Middleware))
	}
	routes(r, d)
	return r
}

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// handleReadyz answers 200 only while the database is reachable, so a
// load balancer stops sending traffic to a replica that lost it.
func handleReadyz(db Pinger, draining func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining != nil && draining() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "database": "ok"})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
