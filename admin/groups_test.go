package admin_test

import (
	"net/http"
	"testing"

	"github.com/latchkey/latchkey/provider/accounts"
)

type groupJSON struct {
	ID, Name, Description string
	ParentID              *string `json:"parent_id"`
	Roles                 []roleJSON
}

type roleJSON struct {
	ID, Name, Description string
	ClientID              *string `json:"client_id"`
	BuiltIn               bool    `json:"built_in"`
}

func TestGroupsAndRoles(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		asGroups := func(method, path string, body any) *resp {
			return e.send(t, req{method: method, path: path, token: "tok-groups", body: body})
		}
		var eng, backend groupJSON
		want(t, asGroups(http.MethodPost, "/v1/groups", map[string]any{"name": "engineering", "description": "builders"}), http.StatusCreated).json(t, &eng)
		want(t, asGroups(http.MethodPost, "/v1/groups", map[string]any{"name": "backend", "parent_id": eng.ID}), http.StatusCreated).json(t, &backend)
		e.wantEvent(t, eng.ID, accounts.AuditGroupCreate, "c_groups")

		// Field errors.
		for _, tc := range []struct {
			name   string
			method string
			path   string
			body   any
			status int
			field  string
		}{
			{"no name", http.MethodPost, "/v1/groups", map[string]any{"description": "x"}, 422, "name"},
			{"taken name", http.MethodPost, "/v1/groups", map[string]any{"name": "Engineering"}, 409, "name"},
			{"unknown parent", http.MethodPost, "/v1/groups", map[string]any{"name": "x", "parent_id": "g_nope"}, 422, "parent_id"},
			{"cycle", http.MethodPatch, "/v1/groups/" + eng.ID, map[string]any{"parent_id": backend.ID}, 422, "parent_id"},
			{"unknown field", http.MethodPatch, "/v1/groups/" + eng.ID, map[string]any{"colour": "red"}, 400, "colour"},
			{"reserved role name", http.MethodPost, "/v1/roles", map[string]any{"name": "latchkey:admin:x"}, 422, "name"},
			{"role of unknown client", http.MethodPost, "/v1/roles", map[string]any{"name": "viewer", "client_id": "c_nope"}, 422, "client_id"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantField(t, asGroups(tc.method, tc.path, tc.body), tc.status, tc.field)
			})
		}
		problemOf(t, asGroups(http.MethodDelete, "/v1/groups/"+eng.ID, nil), http.StatusConflict) // has a child
		problemOf(t, e.send(t, req{method: http.MethodGet, path: "/v1/groups", token: "tok-read"}), http.StatusForbidden)

		var editor roleJSON
		want(t, asGroups(http.MethodPost, "/v1/roles", map[string]any{"name": "editor"}), http.StatusCreated).json(t, &editor)
		u := e.createUser(t, "ada")
		want(t, asGroups(http.MethodPut, "/v1/groups/"+backend.ID+"/members/"+u.ID, nil), http.StatusNoContent)
		want(t, asGroups(http.MethodPut, "/v1/groups/"+backend.ID+"/members/"+u.ID, nil), http.StatusNoContent) // idempotent
		want(t, asGroups(http.MethodPut, "/v1/groups/"+eng.ID+"/roles/"+editor.ID, nil), http.StatusNoContent)
		want(t, asGroups(http.MethodPut, "/v1/users/"+u.ID+"/roles/"+editor.ID, nil), http.StatusNoContent)
		problemOf(t, asGroups(http.MethodPut, "/v1/groups/"+backend.ID+"/members/u_nope", nil), http.StatusNotFound)
		e.wantEvent(t, u.ID, accounts.AuditGroupMemberAdd, "c_groups")
		e.wantEvent(t, u.ID, accounts.AuditUserRoleGrant, "c_groups")

		// The user shows groups and effective roles with their sources.
		var got struct {
			Groups []struct {
				ID     string
				Name   string
				Direct bool
			}
			Roles []struct {
				Name string
				From []struct {
					Type      string
					GroupName string `json:"group_name"`
				}
			}
		}
		want(t, e.do(t, http.MethodGet, "/v1/users/"+u.ID, nil), http.StatusOK).json(t, &got)
		if len(got.Groups) != 2 || got.Groups[0].Name != "backend" || !got.Groups[0].Direct || got.Groups[1].Direct {
			t.Fatalf("groups = %+v", got.Groups)
		}
		if len(got.Roles) != 1 || got.Roles[0].Name != "editor" || len(got.Roles[0].From) != 2 ||
			got.Roles[0].From[0].Type != "direct" || got.Roles[0].From[1].GroupName != "engineering" {
			t.Fatalf("roles = %+v", got.Roles)
		}

		// Search by group (subgroups included) and role, with other filters.
		e.createUser(t, "bob")
		var page struct{ Users []userJSON }
		want(t, e.do(t, http.MethodGet, "/v1/users?group="+eng.ID, nil), http.StatusOK).json(t, &page)
		if len(page.Users) != 1 || page.Users[0].ID != u.ID {
			t.Fatalf("?group= %+v", page.Users)
		}
		want(t, e.do(t, http.MethodGet, "/v1/users?role="+editor.ID+"&status=suspended", nil), http.StatusOK).json(t, &page)
		if len(page.Users) != 0 {
			t.Fatalf("?role=&status=suspended %+v", page.Users)
		}
		problemOf(t, e.send(t, req{method: http.MethodGet, path: "/v1/users?group=" + eng.ID, token: "tok-basic"}), http.StatusForbidden)

		var members struct{ Users []userJSON }
		want(t, asGroups(http.MethodGet, "/v1/groups/"+backend.ID+"/members", nil), http.StatusOK).json(t, &members)
		if len(members.Users) != 1 {
			t.Fatalf("members = %+v", members)
		}
		var g groupJSON
		want(t, asGroups(http.MethodGet, "/v1/groups/"+eng.ID, nil), http.StatusOK).json(t, &g)
		if len(g.Roles) != 1 || g.Roles[0].ID != editor.ID {
			t.Fatalf("group roles = %+v", g.Roles)
		}

		// Revocations and deletes.
		want(t, asGroups(http.MethodDelete, "/v1/users/"+u.ID+"/roles/"+editor.ID, nil), http.StatusNoContent)
		problemOf(t, asGroups(http.MethodDelete, "/v1/users/"+u.ID+"/roles/"+editor.ID, nil), http.StatusNotFound)
		want(t, asGroups(http.MethodDelete, "/v1/groups/"+backend.ID+"/members/"+u.ID, nil), http.StatusNoContent)
		want(t, asGroups(http.MethodDelete, "/v1/groups/"+backend.ID, nil), http.StatusNoContent)
		want(t, asGroups(http.MethodDelete, "/v1/roles/"+editor.ID, nil), http.StatusNoContent)
		e.wantEvent(t, editor.ID, accounts.AuditRoleDelete, "c_groups")
	})
}

// TestBuiltInRolesNeedAdmin: handing out latchkey:admin… gives admin
// scopes, so only a caller with scope admin may.
func TestBuiltInRolesNeedAdmin(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		var roles struct{ Roles []roleJSON }
		want(t, e.do(t, http.MethodGet, "/v1/roles?client_id=&limit=200", nil), http.StatusOK).json(t, &roles)
		var superuser roleJSON
		for _, r := range roles.Roles {
			if r.Name == accounts.RoleAdmin {
				superuser = r
			}
		}
		if !superuser.BuiltIn {
			t.Fatalf("no built-in %s in %+v", accounts.RoleAdmin, roles)
		}
		u := e.createUser(t, "eve")
		path := "/v1/users/" + u.ID + "/roles/" + superuser.ID
		problemOf(t, e.send(t, req{method: http.MethodPut, path: path, token: "tok-groups"}), http.StatusForbidden)
		problemOf(t, e.send(t, req{method: http.MethodPatch, path: "/v1/roles/" + superuser.ID, token: "tok-groups",
			body: map[string]any{"name": "boss"}}), http.StatusConflict)
		problemOf(t, e.do(t, http.MethodDelete, "/v1/roles/"+superuser.ID, nil), http.StatusConflict)

		// A group carrying the role: its members change only with admin.
		var admins groupJSON
		want(t, e.do(t, http.MethodPost, "/v1/groups", map[string]any{"name": "admins"}), http.StatusCreated).json(t, &admins)
		want(t, e.do(t, http.MethodPut, "/v1/groups/"+admins.ID+"/roles/"+superuser.ID, nil), http.StatusNoContent)
		problemOf(t, e.send(t, req{method: http.MethodPut, path: "/v1/groups/" + admins.ID + "/members/" + u.ID, token: "tok-groups"}),
			http.StatusForbidden)
		var sub groupJSON
		want(t, e.send(t, req{method: http.MethodPost, path: "/v1/groups", token: "tok-groups", body: map[string]any{"name": "sub"}}),
			http.StatusCreated).json(t, &sub)
		problemOf(t, e.send(t, req{method: http.MethodPatch, path: "/v1/groups/" + sub.ID, token: "tok-groups",
			body: map[string]any{"parent_id": admins.ID}}), http.StatusForbidden)
		want(t, e.do(t, http.MethodPut, path, nil), http.StatusNoContent)
	})
}

func TestProfileThroughAdminAPI(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "ada")
		path := "/v1/users/" + u.ID
		var got map[string]any
		want(t, e.do(t, http.MethodPatch, path, map[string]any{
			"given_name": "Ada", "family_name": "Lovelace", "zoneinfo": "Europe/London", "birthdate": "1815-12-10",
			"phone_number": "+44 20 7123 4567", "phone_number_verified": true, "website": "https://ada.example",
			"address":      map[string]any{"locality": "London", "country": "GB"},
			"app_metadata": map[string]any{"department": "R&D"}, "user_metadata": map[string]any{"theme": "dark"},
		}), http.StatusOK).json(t, &got)
		if got["phone_number"] != "+442071234567" || got["phone_number_verified"] != true || got["zoneinfo"] != "Europe/London" {
			t.Fatalf("after PATCH: %v", got)
		}
		if md, _ := got["app_metadata"].(map[string]any); md["department"] != "R&D" {
			t.Fatalf("app_metadata = %v", got["app_metadata"])
		}
		for _, tc := range []struct{ body, field string }{
			{`{"phone_number":"0612345678"}`, "phone_number"},
			{`{"zoneinfo":"Nowhere/Land"}`, "zoneinfo"},
			{`{"birthdate":"10/12/1815"}`, "birthdate"},
			{`{"app_metadata":[1]}`, "app_metadata"},
			{`{"address":{"town":"x"}}`, "address"},
			{`{"last_login_at":"2020-01-01T00:00:00Z"}`, "last_login_at"},
			{`{"groups":[]}`, "groups"},
		} {
			r := e.send(t, req{method: http.MethodPatch, path: path, token: "tok-admin", body: tc.body})
			if r.status != http.StatusUnprocessableEntity && r.status != http.StatusBadRequest {
				t.Fatalf("%s: %s", tc.body, r)
			}
			if p := problemOf(t, r, r.status); p.field() != tc.field {
				t.Errorf("%s: field %q, want %q", tc.body, p.field(), tc.field)
			}
		}
		want(t, e.do(t, http.MethodPatch, path, map[string]any{"address": nil, "app_metadata": nil}), http.StatusOK).json(t, &got)
		if got["address"] != nil || len(got["app_metadata"].(map[string]any)) != 0 {
			t.Fatalf("after clearing: %v", got)
		}
	})
}
