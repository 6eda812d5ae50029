package storagetest

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// groupTests cover groups, roles, memberships and the full profile.
var groupTests = []struct {
	name string
	fn   func(t *testing.T, st storage.Store)
}{
	{"Groups", testGroups},
	{"GroupHierarchy", testGroupHierarchy},
	{"ConcurrentGroupMoves", testConcurrentGroupMoves},
	{"Roles", testRoles},
	{"EffectiveRoles", testEffectiveRoles},
	{"SearchByGroupAndRole", testSearchByGroupAndRole},
	{"Profile", testProfile},
	{"LastLogin", testLastLogin},
	{"ClientClaims", testClientClaims},
}

func mkGroup(t *testing.T, st storage.Store, id, parent string) *storage.Group {
	t.Helper()
	g := &storage.Group{ID: id, Name: "Group " + id, ParentID: parent, CreatedAt: now()}
	must(t, st.CreateGroup(bg, g))
	return g
}

func mkRole(t *testing.T, st storage.Store, id, client string) *storage.Role {
	t.Helper()
	r := &storage.Role{ID: id, Name: "role-" + id, ClientID: client, CreatedAt: now()}
	must(t, st.CreateRole(bg, r))
	return r
}

func testGroups(t *testing.T, st storage.Store) {
	g := &storage.Group{ID: "g1", Name: "Engineering", Description: "People who build", CreatedAt: now()}
	must(t, st.CreateGroup(bg, g))
	got, err := st.GetGroup(bg, "g1")
	must(t, err)
	if !reflect.DeepEqual(got, g) {
		t.Fatalf("GetGroup = %+v, want %+v", got, g)
	}
	wantErr(t, "CreateGroup(same name, other case)", st.CreateGroup(bg, &storage.Group{ID: "g2", Name: "ENGINEERING"}), storage.ErrDuplicate)
	wantErr(t, "CreateGroup(unknown parent)", st.CreateGroup(bg, &storage.Group{ID: "g2", Name: "x", ParentID: "nope"}), storage.ErrNotFound)
	_, err = st.GetGroup(bg, "nope")
	wantErr(t, "GetGroup(unknown)", err, storage.ErrNotFound)

	// Keyset pages by name, ignoring case.
	for _, n := range []string{"beta", "Alpha", "gamma"} {
		must(t, st.CreateGroup(bg, &storage.Group{ID: "g_" + n, Name: n}))
	}
	var names []string
	q := storage.PageQuery{Limit: 2}
	for {
		page, next, err := st.ListGroups(bg, q)
		must(t, err)
		for _, g := range page {
			names = append(names, g.Name)
		}
		if next == "" {
			break
		}
		q.After = next
	}
	if want := []string{"Alpha", "beta", "Engineering", "gamma"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("ListGroups pages = %v, want %v", names, want)
	}
	_, _, err = st.ListGroups(bg, storage.PageQuery{After: "!!"})
	wantErr(t, "ListGroups(bad cursor)", err, storage.ErrBadCursor)

	// Members.
	mkUser(t, st, "u1")
	mkUser(t, st, "u2")
	must(t, st.AddGroupMember(bg, "g1", "u2"))
	must(t, st.AddGroupMember(bg, "g1", "u1"))
	must(t, st.AddGroupMember(bg, "g1", "u1")) // idempotent
	wantErr(t, "AddGroupMember(unknown user)", st.AddGroupMember(bg, "g1", "nobody"), storage.ErrNotFound)
	wantErr(t, "AddGroupMember(unknown group)", st.AddGroupMember(bg, "nope", "u1"), storage.ErrNotFound)
	members, next, err := st.ListGroupMembers(bg, "g1", storage.PageQuery{Limit: 1})
	must(t, err)
	if len(members) != 1 || members[0].ID != "u1" || next == "" {
		t.Fatalf("ListGroupMembers page 1 = %v, %q", members, next)
	}
	members, next, err = st.ListGroupMembers(bg, "g1", storage.PageQuery{After: next})
	must(t, err)
	if len(members) != 1 || members[0].ID != "u2" || next != "" {
		t.Fatalf("ListGroupMembers page 2 = %v, %q", members, next)
	}
	_, _, err = st.ListGroupMembers(bg, "nope", storage.PageQuery{})
	wantErr(t, "ListGroupMembers(unknown group)", err, storage.ErrNotFound)
	must(t, st.RemoveGroupMember(bg, "g1", "u2"))
	wantErr(t, "RemoveGroupMember(not a member)", st.RemoveGroupMember(bg, "g1", "u2"), storage.ErrNotFound)

	// Update and delete.
	g.Name, g.Description, g.UpdatedAt = "Eng", "", now().Add(time.Second)
	must(t, st.UpdateGroup(bg, g))
	if got, _ := st.GetGroup(bg, "g1"); got.Name != "Eng" || !got.UpdatedAt.Equal(g.UpdatedAt) {
		t.Fatalf("after UpdateGroup: %+v", got)
	}
	wantErr(t, "UpdateGroup(taken name)", st.UpdateGroup(bg, &storage.Group{ID: "g1", Name: "alpha"}), storage.ErrDuplicate)
	wantErr(t, "UpdateGroup(unknown)", st.UpdateGroup(bg, &storage.Group{ID: "nope", Name: "zzz"}), storage.ErrNotFound)
	must(t, st.DeleteGroup(bg, "g1"))
	wantErr(t, "DeleteGroup(again)", st.DeleteGroup(bg, "g1"), storage.ErrNotFound)
	if m, err := st.UserMemberships(bg, "u1"); err != nil || len(m.Groups) != 0 {
		t.Fatalf("memberships after the group went = %+v, %v", m, err)
	}
}

func testGroupHierarchy(t *testing.T, st storage.Store) {
	// A chain at the maximum depth: root ← … ← leaf.
	ids := make([]string, storage.MaxGroupDepth)
	parent := ""
	for i := range ids {
		ids[i] = "g" + string(rune('a'+i))
		mkGroup(t, st, ids[i], parent)
		parent = ids[i]
	}
	wantErr(t, "CreateGroup(below the deepest)", st.CreateGroup(bg, &storage.Group{ID: "deeper", Name: "deeper", ParentID: parent}),
		storage.ErrTooDeep)
	wantErr(t, "DeleteGroup(with children)", st.DeleteGroup(bg, ids[0]), storage.ErrConflict)

	root, _ := st.GetGroup(bg, ids[0])
	root.ParentID = ids[len(ids)-1]
	wantErr(t, "UpdateGroup(under its own descendant)", st.UpdateGroup(bg, root), storage.ErrCycle)
	root.ParentID = ids[0]
	wantErr(t, "UpdateGroup(under itself)", st.UpdateGroup(bg, root), storage.ErrCycle)

	// Moving a subtree of height 2 under a group at depth MaxGroupDepth-1
	// would make it MaxGroupDepth+1 deep.
	other := mkGroup(t, st, "other", "")
	mkGroup(t, st, "other-child", "other")
	other.ParentID = ids[len(ids)-2]
	wantErr(t, "UpdateGroup(subtree too deep)", st.UpdateGroup(bg, other), storage.ErrTooDeep)
	other.ParentID = ids[len(ids)-3]
	must(t, st.UpdateGroup(bg, other))
	if got, _ := st.GetGroup(bg, "other"); got.ParentID != ids[len(ids)-3] {
		t.Fatalf("after the move: %+v", got)
	}
	other.ParentID = ""
	must(t, st.UpdateGroup(bg, other))
}

// testConcurrentGroupMoves: A under B and B under A, at once, must not
// both commit.
func testConcurrentGroupMoves(t *testing.T, st storage.Store) {
	for round := range 5 {
		a := mkGroup(t, st, "a"+string(rune('0'+round)), "")
		b := mkGroup(t, st, "b"+string(rune('0'+round)), "")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs[0] = st.UpdateGroup(bg, &storage.Group{ID: a.ID, Name: a.Name, ParentID: b.ID})
		}()
		go func() {
			defer wg.Done()
			errs[1] = st.UpdateGroup(bg, &storage.Group{ID: b.ID, Name: b.Name, ParentID: a.ID})
		}()
		wg.Wait()
		if errs[0] == nil && errs[1] == nil {
			t.Fatalf("round %d: both moves committed: a cycle", round)
		}
		for _, err := range errs {
			if err != nil && !errorsIsAny(err, storage.ErrCycle, storage.ErrConflict) {
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
		}
	}
}

func testRoles(t *testing.T, st storage.Store) {
	mkClient(t, st, "grafana")
	mkClient(t, st, "argo")
	r := &storage.Role{ID: "r1", Name: "viewer", Description: "Sees dashboards", ClientID: "grafana", CreatedAt: now()}
	must(t, st.CreateRole(bg, r))
	got, err := st.GetRole(bg, "r1")
	must(t, err)
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("GetRole = %+v, want %+v", got, r)
	}
	// Names are unique per client and among global roles.
	must(t, st.CreateRole(bg, &storage.Role{ID: "r2", Name: "viewer", ClientID: "argo"}))
	must(t, st.CreateRole(bg, &storage.Role{ID: "r3", Name: "viewer"}))
	wantErr(t, "CreateRole(dup in client)", st.CreateRole(bg, &storage.Role{ID: "r4", Name: "viewer", ClientID: "grafana"}), storage.ErrDuplicate)
	wantErr(t, "CreateRole(dup global)", st.CreateRole(bg, &storage.Role{ID: "r4", Name: "viewer"}), storage.ErrDuplicate)
	wantErr(t, "CreateRole(unknown client)", st.CreateRole(bg, &storage.Role{ID: "r4", Name: "x", ClientID: "nope"}), storage.ErrNotFound)

	list := func(q storage.RoleQuery) []string {
		t.Helper()
		var ids []string
		for {
			page, next, err := st.ListRoles(bg, q)
			must(t, err)
			for _, r := range page {
				ids = append(ids, r.ID)
			}
			if next == "" {
				return ids
			}
			q.After = next
		}
	}
	if got := list(storage.RoleQuery{ClientID: "grafana"}); !reflect.DeepEqual(got, []string{"r1"}) {
		t.Fatalf("ListRoles(grafana) = %v", got)
	}
	global := list(storage.RoleQuery{GlobalOnly: true, PageQuery: storage.PageQuery{Limit: 1}})
	if len(global) == 0 || !contains(global, "r3") || contains(global, "r1") {
		t.Fatalf("ListRoles(global) = %v", global)
	}
	all := list(storage.RoleQuery{PageQuery: storage.PageQuery{Limit: 2}})
	if !contains(all, "r1") || !contains(all, "r2") || !contains(all, "r3") {
		t.Fatalf("ListRoles(all) = %v", all)
	}

	r.Name, r.Description = "reader", "renamed"
	must(t, st.UpdateRole(bg, r))
	if got, _ := st.GetRole(bg, "r1"); got.Name != "reader" || got.ClientID != "grafana" {
		t.Fatalf("after UpdateRole: %+v", got)
	}
	wantErr(t, "UpdateRole(taken global name)", st.UpdateRole(bg, &storage.Role{ID: "r3", Name: "viewer",
		UpdatedAt: now()}), nil) // unchanged name
	must(t, st.CreateRole(bg, &storage.Role{ID: "r5", Name: "admin"}))
	wantErr(t, "UpdateRole(to a taken name)", st.UpdateRole(bg, &storage.Role{ID: "r5", Name: "viewer"}), storage.ErrDuplicate)
	must(t, st.DeleteRole(bg, "r2"))
	wantErr(t, "DeleteRole(again)", st.DeleteRole(bg, "r2"), storage.ErrNotFound)
	// A client's roles go with it.
	must(t, st.DeleteClient(bg, "grafana"))
	_, err = st.GetRole(bg, "r1")
	wantErr(t, "GetRole(client deleted)", err, storage.ErrNotFound)
}

func testEffectiveRoles(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	mkClient(t, st, "grafana")
	mkGroup(t, st, "org", "")
	mkGroup(t, st, "eng", "org")
	mkGroup(t, st, "backend", "eng")
	mkGroup(t, st, "unrelated", "")
	employee := mkRole(t, st, "employee", "")
	editor := mkRole(t, st, "editor", "")
	viewer := mkRole(t, st, "viewer", "grafana")
	mkRole(t, st, "unused", "")
	must(t, st.GrantGroupRole(bg, "org", employee.ID))
	must(t, st.GrantGroupRole(bg, "eng", viewer.ID))
	must(t, st.GrantGroupRole(bg, "eng", viewer.ID)) // idempotent
	must(t, st.GrantGroupRole(bg, "unrelated", editor.ID))
	must(t, st.GrantUserRole(bg, "u1", editor.ID))
	must(t, st.GrantUserRole(bg, "u1", employee.ID))
	must(t, st.AddGroupMember(bg, "backend", "u1"))
	wantErr(t, "GrantUserRole(unknown role)", st.GrantUserRole(bg, "u1", "nope"), storage.ErrNotFound)
	wantErr(t, "GrantGroupRole(unknown group)", st.GrantGroupRole(bg, "nope", editor.ID), storage.ErrNotFound)

	m, err := st.UserMemberships(bg, "u1")
	must(t, err)
	var groups []string
	for _, g := range m.Groups {
		groups = append(groups, g.ID+map[bool]string{true: "*", false: ""}[g.Direct])
	}
	if want := []string{"backend*", "eng", "org"}; !reflect.DeepEqual(groups, want) {
		t.Fatalf("groups = %v, want %v (* = direct)", groups, want)
	}
	type src struct{ role, from string }
	var got []src
	for _, r := range m.Roles {
		for _, s := range r.Sources {
			got = append(got, src{r.Name, s.GroupID})
		}
	}
	want := []src{{"role-editor", ""}, {"role-employee", ""}, {"role-employee", "org"}, {"role-viewer", "eng"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("effective roles = %v, want %v", got, want)
	}
	if m.Roles[len(m.Roles)-1].ClientID != "grafana" {
		t.Fatalf("client roles sort after global ones: %+v", m.Roles)
	}
	roles, err := st.GroupRoles(bg, "eng")
	must(t, err)
	if len(roles) != 1 || roles[0].ID != viewer.ID {
		t.Fatalf("GroupRoles(eng) = %+v", roles)
	}

	// Revoking shows at once.
	must(t, st.RevokeGroupRole(bg, "org", employee.ID))
	must(t, st.RevokeUserRole(bg, "u1", editor.ID))
	wantErr(t, "RevokeUserRole(again)", st.RevokeUserRole(bg, "u1", editor.ID), storage.ErrNotFound)
	m, err = st.UserMemberships(bg, "u1")
	must(t, err)
	if len(m.Roles) != 2 || m.Roles[0].Name != "role-employee" || len(m.Roles[0].Sources) != 1 {
		t.Fatalf("after revoking: %+v", m.Roles)
	}
	if m, err := st.UserMemberships(bg, "nobody"); err != nil || len(m.Groups)+len(m.Roles) != 0 {
		t.Fatalf("UserMemberships(unknown) = %+v, %v", m, err)
	}
}

func testSearchByGroupAndRole(t *testing.T, st storage.Store) {
	for _, id := range []string{"u1", "u2", "u3", "u4"} {
		mkUser(t, st, id)
	}
	must(t, st.SetUserStatus(bg, "u4", storage.UserSuspended))
	mkGroup(t, st, "eng", "")
	mkGroup(t, st, "backend", "eng")
	mkGroup(t, st, "sales", "")
	role := mkRole(t, st, "deployer", "")
	must(t, st.AddGroupMember(bg, "eng", "u1"))
	must(t, st.AddGroupMember(bg, "backend", "u2"))
	must(t, st.AddGroupMember(bg, "backend", "u4"))
	must(t, st.AddGroupMember(bg, "sales", "u3"))
	must(t, st.GrantGroupRole(bg, "eng", role.ID))
	must(t, st.GrantUserRole(bg, "u3", role.ID))

	search := func(q storage.UserQuery) []string {
		t.Helper()
		q.Sort = storage.SortUsernameAsc
		page, err := st.SearchUsers(bg, q)
		must(t, err)
		var ids []string
		for _, u := range page.Users {
			ids = append(ids, u.ID)
		}
		return ids
	}
	for _, tc := range []struct {
		name string
		q    storage.UserQuery
		want []string
	}{
		{"group with its subgroups", storage.UserQuery{GroupID: "eng"}, []string{"u1", "u2", "u4"}},
		{"subgroup", storage.UserQuery{GroupID: "backend"}, []string{"u2", "u4"}},
		{"role direct or through groups", storage.UserQuery{RoleID: role.ID}, []string{"u1", "u2", "u3", "u4"}},
		{"role AND group", storage.UserQuery{RoleID: role.ID, GroupID: "sales"}, []string{"u3"}},
		{"role AND status", storage.UserQuery{RoleID: role.ID, Status: storage.UserSuspended}, []string{"u4"}},
		{"group AND q", storage.UserQuery{GroupID: "eng", Q: "u2"}, []string{"u2"}},
		{"unknown group", storage.UserQuery{GroupID: "nope"}, nil},
	} {
		if got := search(tc.q); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func testProfile(t *testing.T, st storage.Store) {
	u := &storage.User{ID: "u1", Username: "ada", Email: "ada@example.com", Status: storage.UserActive,
		GivenName: "Ada", FamilyName: "Lovelace", MiddleName: "King", Nickname: "ada", Website: "https://ada.example",
		Zoneinfo: "Europe/London", Birthdate: "1815-12-10", PhoneNumber: "+442071234567", PhoneNumberVerified: true,
		Address:      &storage.Address{StreetAddress: "12 St James's Square", Locality: "London", Country: "GB"},
		UserMetadata: []byte(`{"bio":"Analyst","theme":"dark"}`), AppMetadata: []byte(`{"department":"R&D","plan":2}`),
		CreatedAt: now()}
	must(t, st.CreateUser(bg, u))
	got, err := st.GetUser(bg, "u1")
	must(t, err)
	if !reflect.DeepEqual(got, u) {
		t.Fatalf("GetUser =\n%+v\nwant\n%+v", got, u)
	}
	got.Address, got.UserMetadata, got.GivenName, got.PhoneNumberVerified = nil, nil, "", false
	got.AppMetadata = []byte(`{"department":"Ops"}`)
	must(t, st.UpdateUser(bg, got))
	again, err := st.GetUser(bg, "u1")
	must(t, err)
	if again.Address != nil || again.UserMetadata != nil || again.GivenName != "" || again.PhoneNumberVerified ||
		string(again.AppMetadata) != `{"department":"Ops"}` || again.FamilyName != "Lovelace" {
		t.Fatalf("after UpdateUser: %+v", again)
	}
}

func testLastLogin(t *testing.T, st storage.Store) {
	for _, id := range []string{"u1", "u2", "u3"} {
		mkUser(t, st, id)
	}
	u, _ := st.GetUser(bg, "u1")
	if u.LastLoginAt != nil {
		t.Fatalf("a new user has a last login: %v", u.LastLoginAt)
	}
	t0 := now()
	must(t, st.RecordLastLogin(bg, "u1", t0.Add(-2*time.Hour)))
	must(t, st.RecordLastLogin(bg, "u2", t0.Add(-10*24*time.Hour)))
	wantErr(t, "RecordLastLogin(unknown)", st.RecordLastLogin(bg, "nobody", t0), storage.ErrNotFound)
	after, _ := st.GetUser(bg, "u1")
	if after.LastLoginAt == nil || !after.LastLoginAt.Equal(t0.Add(-2*time.Hour)) || !after.UpdatedAt.Equal(u.UpdatedAt) {
		t.Fatalf("after RecordLastLogin: last %v, updated %v (was %v)", after.LastLoginAt, after.UpdatedAt, u.UpdatedAt)
	}

	ids := func(q storage.UserQuery) []string {
		t.Helper()
		var out []string
		for {
			page, err := st.SearchUsers(bg, q)
			must(t, err)
			for _, u := range page.Users {
				out = append(out, u.ID)
			}
			if page.Next == "" {
				return out
			}
			q.After = page.Next
		}
	}
	for _, tc := range []struct {
		name string
		q    storage.UserQuery
		want []string
	}{
		{"newest sign-in first, never last", storage.UserQuery{Sort: storage.SortLastLoginDesc, Limit: 1}, []string{"u1", "u2", "u3"}},
		{"oldest first, never first", storage.UserQuery{Sort: storage.SortLastLoginAsc, Limit: 1}, []string{"u3", "u2", "u1"}},
		{"after", storage.UserQuery{LastLoginAfter: t0.Add(-24 * time.Hour)}, []string{"u1"}},
		{"before", storage.UserQuery{LastLoginBefore: t0.Add(-24 * time.Hour)}, []string{"u2"}},
	} {
		if got := ids(tc.q); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	st2, err := st.Stats(bg, 0)
	must(t, err)
	if want := map[int]int64{1: 1, 7: 1, 30: 2}; !reflect.DeepEqual(st2.ActiveUsers, want) {
		t.Fatalf("ActiveUsers = %v, want %v", st2.ActiveUsers, want)
	}
}

func testClientClaims(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	c.Claims = map[string]string{"department": "app_metadata.department"}
	c.ClaimsScope = "org"
	must(t, st.UpdateClient(bg, c))
	got, err := st.GetClientByID(bg, "c1")
	must(t, err)
	if !reflect.DeepEqual(got.Claims, c.Claims) || got.ClaimsScope != "org" {
		t.Fatalf("claims = %v %q", got.Claims, got.ClaimsScope)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
