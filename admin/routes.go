package admin

import (
	"net/http"
	"net/http/pprof"

	"github.com/gorilla/mux"
)

// routes lists every route of the admin listener.
func routes(r *mux.Router, d Deps) {
	r.Handle("/healthz", handleHealthz()).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/readyz", handleReadyz(d.DB, d.Draining)).Methods(http.MethodGet, http.MethodHead)
	r.Handle("/metrics", requireMetricsToken(d.MetricsToken, d.Metrics)).Methods(http.MethodGet)
	r.Handle("/openapi.yaml", handleOpenAPI()).Methods(http.MethodGet)
	if d.Profiling {
		r.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		r.HandleFunc("/debug/pprof/profile", pprof.Profile)
		r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		r.HandleFunc("/debug/pprof/trace", pprof.Trace)
		r.PathPrefix("/debug/pprof/").HandlerFunc(pprof.Index)
	}
	if d.Accounts == nil || d.Tokens == nil {
		return
	}
	for _, rt := range apiRoutes(d) {
		r.Handle(rt.path, requireScope(d, rt.scopes, rt.h)).Methods(rt.method)
	}
}

// apiRoute is one route of the REST API and the scopes that may call it
// (any one of them, or ScopeAdmin).
type apiRoute struct {
	method, path string
	scopes       []string
	h            http.Handler
}

func scopes(s ...string) []string { return s }

// apiRoutes is the REST API. Literal paths come before the {id} patterns
// they could be mistaken for ("/v1/users:import" before "/v1/users/{id}").
func apiRoutes(d Deps) []apiRoute {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	)
	usersRead, usersWrite := scopes(ScopeUsersRead), scopes(ScopeUsersWrite)
	return []apiRoute{
		// users
		{get, "/v1/users", scopes(ScopeUsersRead, ScopeUsersBasic), handleListUsers(d)},
		{post, "/v1/users", usersWrite, handleCreateUser(d)},
		{post, "/v1/users:import", usersWrite, handleImportUsers(d)},
		{get, "/v1/users/{id}", usersRead, handleGetUser(d)},
		{patch, "/v1/users/{id}", usersWrite, handlePatchUser(d)},
		{del, "/v1/users/{id}", usersWrite, handleDeleteUser(d)},
		{get, "/v1/users/{id}/archive", usersRead, handleGetArchive(d)},
		{post, "/v1/users/{id}/suspend", usersWrite, handleSuspendUser(d)},
		{post, "/v1/users/{id}/unsuspend", usersWrite, handleUnsuspendUser(d)},
		{post, "/v1/users/{id}/restore", usersWrite, handleRestoreUser(d)},
		{put, "/v1/users/{id}/password", usersWrite, handleSetPassword(d)},
		{get, "/v1/users/{id}/sessions", usersRead, handleListSessions(d)},
		{del, "/v1/users/{id}/sessions", usersWrite, handleRevokeSessions(d)},
		{del, "/v1/users/{id}/lockout", usersWrite, handleClearLockout(d)},
		{get, "/v1/users/{id}/factors", usersRead, handleListFactors(d)},
		{del, "/v1/users/{id}/factors", usersWrite, handleResetFactors(d)},
		{del, "/v1/users/{id}/factors/{factor_id}", usersWrite, handleDeleteFactor(d)},
		{get, "/v1/users/{id}/identities", usersRead, handleListIdentities(d)},
		{del, "/v1/users/{id}/identities/{upstream}/{subject}", usersWrite, handleDeleteIdentity(d)},
		{get, "/v1/users/{id}/export", usersRead, handleExportUser(d)},
		{get, "/v1/users/{id}/rate-limits", usersRead, handleUserRateLimits(d)},
		{put, "/v1/users/{id}/tier", usersWrite, handleSetUserTier(d)},
		{get, "/v1/stats", usersRead, handleStats(d)},
		{put, "/v1/users/{id}/roles/{role_id}", scopes(ScopeGroups), handleLink(d, func(r *http.Request) error {
			if err := guardBuiltInRole(r, d, pathVar(r, "role_id")); err != nil {
				return err
			}
			return d.Accounts.GrantUserRole(r.Context(), pathVar(r, "id"), pathVar(r, "role_id"))
		})},
		{del, "/v1/users/{id}/roles/{role_id}", scopes(ScopeGroups), handleLink(d, func(r *http.Request) error {
			if err := guardBuiltInRole(r, d, pathVar(r, "role_id")); err != nil {
				return err
			}
			return d.Accounts.RevokeUserRole(r.Context(), pathVar(r, "id"), pathVar(r, "role_id"))
		})},

		// groups and roles
		{get, "/v1/groups", scopes(ScopeGroups), handleListGroups(d)},
		{post, "/v1/groups", scopes(ScopeGroups), handleCreateGroup(d)},
		{get, "/v1/groups/{id}", scopes(ScopeGroups), handleGetGroup(d)},
		{patch, "/v1/groups/{id}", scopes(ScopeGroups), handlePatchGroup(d)},
		{del, "/v1/groups/{id}", scopes(ScopeGroups), handleDeleteGroup(d)},
		{get, "/v1/groups/{id}/members", scopes(ScopeGroups), handleListGroupMembers(d)},
		{put, "/v1/groups/{id}/members/{user_id}", scopes(ScopeGroups), handleLink(d, func(r *http.Request) error {
			if err := guardBuiltInGroup(r, d, pathVar(r, "id")); err != nil {
				return err
			}
			return d.Accounts.AddGroupMember(r.Context(), pathVar(r, "id"), pathVar(r, "user_id"))
		})},
		{del, "/v1/groups/{id}/members/{user_id}", scopes(ScopeGroups), handleLink(d, func(r *http.Request) error {
			if err := guardBuiltInGroup(r, d, pathVar(r, "id")); err != nil {
				return err
			}
			return d.Accounts.RemoveGroupMember(r.Context(), pathVar(r, "id"), pathVar(r, "user_id"))
		})},
		{put, "/v1/groups/{id}/roles/{role_id}", scopes(ScopeGroups), handleLink(d, func(r *http.Request) error {
			if err := guardBuiltInRole(r, d, pathVar(r, "role_id")); err != nil {
				return err
			}
			return d.Accounts.GrantGroupRole(r.Context(), pathVar(r, "id"), pathVar(r, "role_id"))
		})},
		{del, "/v1/groups/{id}/roles/{role_id}", scopes(ScopeGroups), handleLink(d, func(r *http.Request) error {
			if err := guardBuiltInRole(r, d, pathVar(r, "role_id")); err != nil {
				return err
			}
			return d.Accounts.RevokeGroupRole(r.Context(), pathVar(r, "id"), pathVar(r, "role_id"))
		})},
		{get, "/v1/roles", scopes(ScopeGroups), handleListRoles(d)},
		{post, "/v1/roles", scopes(ScopeGroups), handleCreateRole(d)},
		{get, "/v1/roles/{id}", scopes(ScopeGroups), handleGetRole(d)},
		{patch, "/v1/roles/{id}", scopes(ScopeGroups), handlePatchRole(d)},
		{del, "/v1/roles/{id}", scopes(ScopeGroups), handleDeleteRole(d)},

		// tiers
		{get, "/v1/tiers", scopes(ScopeTiers), handleListTiers(d)},
		{post, "/v1/tiers", scopes(ScopeTiers), handleCreateTier(d)},
		{get, "/v1/tiers/{id}", scopes(ScopeTiers), handleGetTier(d)},
		{patch, "/v1/tiers/{id}", scopes(ScopeTiers), handlePatchTier(d)},
		{del, "/v1/tiers/{id}", scopes(ScopeTiers), handleDeleteTier(d)},
		{get, "/v1/tiers/{id}/rate-limits", scopes(ScopeTiers), handleGetTierRateLimits(d)},
		{put, "/v1/tiers/{id}/rate-limits", scopes(ScopeTiers), handlePutTierRateLimits(d)},

		// clients
		{get, "/v1/clients", scopes(ScopeClients), handleListClients(d)},
		{post, "/v1/clients", scopes(ScopeClients), handleCreateClient(d)},
		{get, "/v1/clients/{id}", scopes(ScopeClients), handleGetClient(d)},
		{patch, "/v1/clients/{id}", scopes(ScopeClients), handlePatchClient(d)},
		{del, "/v1/clients/{id}", scopes(ScopeClients), handleDeleteClient(d)},
		{post, "/v1/clients/{id}/rotate-secret", scopes(ScopeClients), handleRotateClientSecret(d)},

		// signing keys
		{get, "/v1/keys", scopes(ScopeKeys), handleListKeys(d)},
		{post, "/v1/keys/rotate", scopes(ScopeKeys), handleRotateKeys(d)},
		{post, "/v1/keys/{kid}/retire", scopes(ScopeKeys), handleRetireKey(d)},

		// audit log
		{get, "/v1/audit-events", scopes(ScopeAudit), handleListAudit(d)},
	}
}
