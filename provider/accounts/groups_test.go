package accounts

import (
	"errors"
	"reflect"
	"testing"

	"github.com/latchkey/latchkey/storage"
)

func TestGroupRules(t *testing.T) {
	e := sqliteEnv(t)
	admin := WithActor(e.ctx, Actor{Type: storage.ActorClient, ID: "c_admin"})
	eng, err := e.svc.CreateGroup(admin, GroupSpec{Name: strp(" engineering "), Description: strp("builders")})
	must(t, err)
	if eng.Name != "engineering" {
		t.Fatalf("name = %q", eng.Name)
	}
	for _, tc := range []struct {
		name  string
		spec  GroupSpec
		field string
	}{
		{"no name", GroupSpec{}, "name"},
		{"empty name", GroupSpec{Name: strp("  ")}, "name"},
		{"comma", GroupSpec{Name: strp("a,b")}, "name"},
		{"control", GroupSpec{Name: strp("a\nb")}, "name"},
		{"taken", GroupSpec{Name: strp("Engineering")}, "name"},
		{"unknown parent", GroupSpec{Name: strp("x"), ParentID: strp("g_nope")}, "parent_id"},
	} {
		_, err := e.svc.CreateGroup(admin, tc.spec)
		wantField(t, tc.name, err, tc.field)
	}
	backend, err := e.svc.CreateGroup(admin, GroupSpec{Name: strp("backend"), ParentID: &eng.ID})
	must(t, err)
	_, err = e.svc.UpdateGroup(admin, eng.ID, GroupSpec{ParentID: &backend.ID})
	wantField(t, "cycle", err, "parent_id")
	_, err = e.svc.UpdateGroup(admin, eng.ID, GroupSpec{ParentID: &eng.ID})
	wantField(t, "self", err, "parent_id")
	wantIs(t, "delete with children", e.svc.DeleteGroup(admin, eng.ID), storage.ErrConflict)

	u := e.user(t, "ada", "ada@example.com", true)
	must(t, e.svc.AddGroupMember(admin, backend.ID, u.ID))
	wantIs(t, "add unknown user", e.svc.AddGroupMember(admin, backend.ID, "u_nobody"), storage.ErrNotFound)
	wantIs(t, "remove non-member", e.svc.RemoveGroupMember(admin, eng.ID, u.ID), storage.ErrNotFound)

	events, err := e.st.ListAudit(e.ctx, storage.AuditQuery{Actions: []string{"group."}})
	must(t, err)
	var actions []string
	for _, ev := range events {
		if ev.ActorID != "c_admin" {
			t.Fatalf("event %s by %s", ev.Action, ev.ActorID)
		}
		actions = append(actions, ev.Action)
	}
	if want := []string{AuditGroupMemberAdd, AuditGroupCreate, AuditGroupCreate}; !reflect.DeepEqual(actions, want) {
		t.Fatalf("audit = %v, want %v (refused changes leave no event)", actions, want)
	}
}

func TestRoleRules(t *testing.T) {
	e := sqliteEnv(t)
	c := e.client(t, "grafana")
	for _, tc := range []struct {
		name  string
		spec  RoleSpec
		field string
	}{
		{"reserved prefix", RoleSpec{Name: strp("latchkey:admin")}, "name"},
		{"spaces", RoleSpec{Name: strp("an editor")}, "name"},
		{"unknown client", RoleSpec{Name: strp("viewer"), ClientID: strp("nope")}, "client_id"},
	} {
		_, err := e.svc.CreateRole(e.ctx, tc.spec)
		wantField(t, tc.name, err, tc.field)
	}
	viewer, err := e.svc.CreateRole(e.ctx, RoleSpec{Name: strp("viewer"), ClientID: &c.ID})
	must(t, err)
	_, err = e.svc.CreateRole(e.ctx, RoleSpec{Name: strp("viewer"), ClientID: &c.ID})
	if !errors.Is(err, ErrTaken) {
		t.Fatalf("duplicate client role: %v", err)
	}
	_, err = e.svc.UpdateRole(e.ctx, viewer.ID, RoleSpec{ClientID: strp("")})
	wantField(t, "move between clients", err, "client_id")

	builtin, err := e.svc.FindRole(e.ctx, "", RoleAdmin)
	must(t, err)
	_, err = e.svc.UpdateRole(e.ctx, builtin.ID, RoleSpec{Name: strp("boss")})
	wantIs(t, "rename built-in", err, ErrBuiltIn)
	wantIs(t, "delete built-in", e.svc.DeleteRole(e.ctx, builtin.ID), ErrBuiltIn)
}

func TestAdminScopesFor(t *testing.T) {
	role := func(name, client string) storage.EffectiveRole {
		return storage.EffectiveRole{Role: storage.Role{Name: name, ClientID: client}}
	}
	requested := []string{"openid", "admin:users.read", "admin:users.write", "admin"}
	for _, tc := range []struct {
		name  string
		roles []storage.EffectiveRole
		want  []string
	}{
		{"none", nil, nil},
		{"superuser", []storage.EffectiveRole{role(RoleAdmin, "")}, []string{"admin:users.read", "admin:users.write", "admin"}},
		{"read only", []storage.EffectiveRole{role("latchkey:admin:users.read", "")}, []string{"admin:users.read"}},
		{"a client role of the same name grants nothing", []storage.EffectiveRole{role(RoleAdmin, "c1")}, nil},
	} {
		got := AdminScopesFor(&storage.Memberships{Roles: tc.roles}, requested)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStartSessionRecordsLastLogin(t *testing.T) {
	e := sqliteEnv(t)
	u := e.user(t, "ada", "ada@example.com", true)
	before := e.get(t, u.ID)
	if before.LastLoginAt != nil {
		t.Fatal("a new user has a last login")
	}
	_, _, err := e.svc.StartSession(e.ctx, u, SessionMeta{AMR: []string{"pwd"}})
	must(t, err)
	got := e.get(t, u.ID)
	if got.LastLoginAt == nil || !got.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("last login = %v", got.LastLoginAt)
	}
}
