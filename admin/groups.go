package admin

import (
	"errors"
	"net/http"

	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/storage"
)

// Groups and roles (issue 11 §1). Every change goes through
// accounts.Service, which audits it in the change's transaction.

// pageQuery reads ?after= and ?limit= (1–200, default 50).
func pageQuery(r *http.Request) (storage.PageQuery, error) {
	q := r.URL.Query()
	limit, err := qInt(q, "limit", 50, 1, 200)
	if err != nil {
		return storage.PageQuery{}, err
	}
	return storage.PageQuery{After: q.Get("after"), Limit: limit}, nil
}

func handleListGroups(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		pq, err := pageQuery(r)
		if err != nil {
			return err
		}
		gs, next, err := d.Accounts.ListGroups(r.Context(), pq)
		if err != nil {
			return err
		}
		out := make([]groupView, 0, len(gs))
		for i := range gs {
			out = append(out, viewGroup(&gs[i]))
		}
		writeJSON(w, http.StatusOK, map[string]any{"groups": out, "next": nextLink(r, next)})
		return nil
	})
}

type groupBody struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	ParentID    *string `json:"parent_id"`
}

func handleCreateGroup(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		var in groupBody
		if err := decodeJSON(w, r, &in, false); err != nil {
			return err
		}
		g, err := d.Accounts.CreateGroup(r.Context(), accounts.GroupSpec{Name: in.Name, Description: in.Description, ParentID: in.ParentID})
		if err != nil {
			return err
		}
		w.Header().Set("Location", location("/v1/groups", g.ID))
		writeJSON(w, http.StatusCreated, viewGroup(g))
		return nil
	})
}

func handleGetGroup(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		g, err := d.Accounts.GetGroup(r.Context(), pathVar(r, "id"))
		if err != nil {
			return err
		}
		roles, err := d.Accounts.GroupRoles(r.Context(), g.ID)
		if err != nil {
			return err
		}
		v := viewGroup(g)
		rv := make([]roleView, 0, len(roles))
		for i := range roles {
			rv = append(rv, viewRole(&roles[i]))
		}
		v.Roles = &rv
		writeJSON(w, http.StatusOK, v)
		return nil
	})
}

func handlePatchGroup(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		p, err := decodePatch(w, r, []string{"name", "description", "parent_id"},
			map[string]string{"id": "cannot be changed", "created_at": "cannot be changed", "updated_at": "is set by the server",
				"roles": "cannot be changed with PATCH; use PUT/DELETE /v1/groups/{id}/roles/{role_id}"})
		if err != nil {
			return err
		}
		var spec accounts.GroupSpec
		if spec.Name, err = p.str("name", false); err != nil {
			return err
		}
		if spec.Description, err = p.str("description", true); err != nil {
			return err
		}
		if spec.ParentID, err = p.str("parent_id", true); err != nil {
			return err
		}
		if spec.ParentID != nil {
			// Moving a group moves its members under the roles of the
			// new ancestors, and out from under the old ones.
			for _, g := range []string{pathVar(r, "id"), *spec.ParentID} {
				if err := guardBuiltInGroup(r, d, g); err != nil && !errors.Is(err, storage.ErrNotFound) {
					return err
				}
			}
		}
		g, err := d.Accounts.UpdateGroup(r.Context(), pathVar(r, "id"), spec)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewGroup(g))
		return nil
	})
}

func handleDeleteGroup(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		if err := guardBuiltInGroup(r, d, pathVar(r, "id")); err != nil {
			return err
		}
		err := d.Accounts.DeleteGroup(r.Context(), pathVar(r, "id"))
		if errors.Is(err, storage.ErrConflict) {
			return problem("conflict", "the group has child groups; delete or move them first")
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func handleListGroupMembers(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		pq, err := pageQuery(r)
		if err != nil {
			return err
		}
		users, next, err := d.Accounts.ListGroupMembers(r.Context(), pathVar(r, "id"), pq)
		if err != nil {
			return err
		}
		mfa, err := withMFA(r.Context(), d, users)
		if err != nil {
			return err
		}
		out := make([]userView, 0, len(users))
		for i := range users {
			out = append(out, viewUser(&users[i], mfa[users[i].ID]))
		}
		writeJSON(w, http.StatusOK, map[string]any{"users": out, "next": nextLink(r, next)})
		return nil
	})
}

// handleLink serves the PUT (idempotent, 204) and DELETE (204, 404 when
// there was nothing) of one membership or grant.
func handleLink(d Deps, fn func(r *http.Request) error) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		if err := fn(r); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func handleListRoles(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		pq, err := pageQuery(r)
		if err != nil {
			return err
		}
		rq := storage.RoleQuery{PageQuery: pq}
		q := r.URL.Query()
		if q.Has("client_id") {
			if rq.ClientID = q.Get("client_id"); rq.ClientID == "" {
				rq.GlobalOnly = true // ?client_id= with no value: the global roles
			}
		}
		roles, next, err := d.Accounts.ListRoles(r.Context(), rq)
		if err != nil {
			return err
		}
		out := make([]roleView, 0, len(roles))
		for i := range roles {
			out = append(out, viewRole(&roles[i]))
		}
		writeJSON(w, http.StatusOK, map[string]any{"roles": out, "next": nextLink(r, next)})
		return nil
	})
}

func handleCreateRole(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		var in struct {
			Name        *string `json:"name"`
			Description *string `json:"description"`
			ClientID    *string `json:"client_id"`
		}
		if err := decodeJSON(w, r, &in, false); err != nil {
			return err
		}
		ro, err := d.Accounts.CreateRole(r.Context(), accounts.RoleSpec{Name: in.Name, Description: in.Description, ClientID: in.ClientID})
		if err != nil {
			return err
		}
		w.Header().Set("Location", location("/v1/roles", ro.ID))
		writeJSON(w, http.StatusCreated, viewRole(ro))
		return nil
	})
}

func handleGetRole(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		ro, err := d.Accounts.GetRole(r.Context(), pathVar(r, "id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewRole(ro))
		return nil
	})
}

func handlePatchRole(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		p, err := decodePatch(w, r, []string{"name", "description"},
			map[string]string{"id": "cannot be changed", "client_id": "cannot be changed: create a role for the other client instead",
				"built_in": "is read-only", "created_at": "cannot be changed", "updated_at": "is set by the server"})
		if err != nil {
			return err
		}
		var spec accounts.RoleSpec
		if spec.Name, err = p.str("name", false); err != nil {
			return err
		}
		if spec.Description, err = p.str("description", true); err != nil {
			return err
		}
		ro, err := d.Accounts.UpdateRole(r.Context(), pathVar(r, "id"), spec)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewRole(ro))
		return nil
	})
}

func handleDeleteRole(d Deps) http.Handler {
	return apiHandler(d, func(w http.ResponseWriter, r *http.Request) error {
		if err := d.Accounts.DeleteRole(r.Context(), pathVar(r, "id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// Holding a built-in role (latchkey:admin…) gives admin scopes, so whoever
// hands one out could give themselves powers: only a caller with scope
// admin may grant or revoke one, or change who is in a group that carries
// one (itself or through an ancestor). The same rule as giving a client
// an admin scope (guardAdminScopes).

func guardBuiltInRole(r *http.Request, d Deps, roleID string) error {
	if callerFrom(r.Context()).scopes[ScopeAdmin] {
		return nil
	}
	ro, err := d.Accounts.GetRole(r.Context(), roleID)
	if err != nil {
		return err
	}
	if accounts.IsBuiltInRole(ro) {
		return problemf("insufficient-scope", "only a caller with scope %s may grant or revoke the built-in role %s", ScopeAdmin, ro.Name)
	}
	return nil
}

func guardBuiltInGroup(r *http.Request, d Deps, groupID string) error {
	if groupID == "" || callerFrom(r.Context()).scopes[ScopeAdmin] {
		return nil
	}
	for range storage.MaxGroupDepth {
		g, err := d.Accounts.GetGroup(r.Context(), groupID)
		if err != nil {
			return err
		}
		roles, err := d.Accounts.GroupRoles(r.Context(), g.ID)
		if err != nil {
			return err
		}
		for i := range roles {
			if accounts.IsBuiltInRole(&roles[i]) {
				return problemf("insufficient-scope", "group %s carries the built-in role %s; changing its members needs scope %s",
					g.Name, roles[i].Name, ScopeAdmin)
			}
		}
		if g.ParentID == "" {
			return nil
		}
		groupID = g.ParentID
	}
	return nil
}
