package storagetest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/storage"
)

// directoryTests cover what the admin API stands on: tiers and their rate
// limits, the audit log, user search, hard deletes with their archive,
// directory statistics, and client updates.
var directoryTests = []struct {
	name string
	fn   func(t *testing.T, st storage.Store)
}{
	{"Tiers", testTiers},
	{"TierDefaultConcurrent", testTierDefaultConcurrent},
	{"DeleteTier", testDeleteTier},
	{"RateLimits", testRateLimits},
	{"SetUserTier", testSetUserTier},
	{"Audit", testAudit},
	{"AuditPaging", testAuditPaging},
	{"SearchUsersFilters", testSearchUsersFilters},
	{"SearchUsersQ", testSearchUsersQ},
	{"SearchUsersPaging", testSearchUsersPaging},
	{"SearchUsersLimits", testSearchUsersLimits},
	{"SearchUsersBadCursor", testSearchUsersBadCursor},
	{"HardDeleteUser", testHardDeleteUser},
	{"Stats", testStats},
	{"UpdateClient", testUpdateClient},
	{"MFAPolicy", testMFAPolicy},
}

// ---- tiers ----

func mkTier(t *testing.T, st storage.Store, id, name string, def bool) *storage.Tier {
	t.Helper()
	tr := &storage.Tier{ID: id, Name: name, Description: "the " + name + " plan", IsDefault: def}
	must(t, st.CreateTier(bg, tr))
	return tr
}

func defaults(t *testing.T, st storage.Store) []string {
	t.Helper()
	list, err := st.ListTiers(bg)
	must(t, err)
	var ids []string
	for _, tr := range list {
		if tr.IsDefault {
			ids = append(ids, tr.ID)
		}
	}
	return ids
}

func testTiers(t *testing.T, st storage.Store) {
	_, err := st.GetDefaultTier(bg)
	wantErr(t, "GetDefaultTier(none)", err, storage.ErrNotFound)

	free := mkTier(t, st, "t-free", "Free", true)
	if free.CreatedAt.IsZero() || !free.UpdatedAt.Equal(free.CreatedAt) {
		t.Fatalf("CreateTier did not set times: %+v", free)
	}
	got, err := st.GetTier(bg, "t-free")
	must(t, err)
	if !reflect.DeepEqual(got, free) {
		t.Fatalf("GetTier = %+v, want %+v", got, free)
	}
	mkTier(t, st, "t-team", "Team", false)
	pro := mkTier(t, st, "t-pro", "pro", true)

	// The new default replaced the old one.
	if d := defaults(t, st); !reflect.DeepEqual(d, []string{"t-pro"}) {
		t.Fatalf("defaults = %v", d)
	}
	def, err := st.GetDefaultTier(bg)
	must(t, err)
	if def.ID != "t-pro" || def.Name != "pro" || !def.IsDefault {
		t.Fatalf("GetDefaultTier = %+v", def)
	}

	// Names are unique ignoring case; a failed default create leaves the
	// current default alone.
	wantErr(t, "CreateTier(dup name)", st.CreateTier(bg, &storage.Tier{ID: "t-x", Name: "FREE", IsDefault: true}),
		storage.ErrDuplicate)
	wantErr(t, "CreateTier(dup id)", st.CreateTier(bg, &storage.Tier{ID: "t-free", Name: "Other"}), storage.ErrDuplicate)
	if d := defaults(t, st); !reflect.DeepEqual(d, []string{"t-pro"}) {
		t.Fatalf("defaults after failed creates = %v", d)
	}

	list, err := st.ListTiers(bg)
	must(t, err)
	var names []string
	for _, tr := range list {
		names = append(names, tr.Name)
	}
	if !reflect.DeepEqual(names, []string{"Free", "pro", "Team"}) {
		t.Fatalf("ListTiers order = %v", names)
	}

	// Update: rename and take over the default.
	old := free.UpdatedAt
	free.Name, free.Description, free.IsDefault = "Free plan", "costs nothing", true
	must(t, st.UpdateTier(bg, free))
	if free.UpdatedAt.Before(old) {
		t.Fatalf("UpdatedAt went back: %v → %v", old, free.UpdatedAt)
	}
	got, err = st.GetTier(bg, "t-free")
	must(t, err)
	if got.Name != "Free plan" || got.Description != "costs nothing" || !got.IsDefault || !got.CreatedAt.Equal(free.CreatedAt) ||
		!got.UpdatedAt.Equal(free.UpdatedAt) {
		t.Fatalf("after UpdateTier: %+v", got)
	}
	if d := defaults(t, st); !reflect.DeepEqual(d, []string{"t-free"}) {
		t.Fatalf("defaults after update = %v", d)
	}
	// Dropping the default flag leaves no default (the rule that there is
	// one belongs to the caller).
	pro.Description, pro.IsDefault = "changed", false
	must(t, st.UpdateTier(bg, pro))
	free.IsDefault = false
	must(t, st.UpdateTier(bg, free))
	_, err = st.GetDefaultTier(bg)
	wantErr(t, "GetDefaultTier(after unset)", err, storage.ErrNotFound)

	wantErr(t, "UpdateTier(dup name)", st.UpdateTier(bg, &storage.Tier{ID: "t-free", Name: "PRO"}), storage.ErrDuplicate)
	wantErr(t, "UpdateTier(missing)", st.UpdateTier(bg, &storage.Tier{ID: "nope", Name: "Nope", IsDefault: true}),
		storage.ErrNotFound)
	_, err = st.GetTier(bg, "nope")
	wantErr(t, "GetTier(missing)", err, storage.ErrNotFound)
}

// Several writers making their tier the default at once: each succeeds or
// is told to retry (ErrConflict), and exactly one default remains.
func testTierDefaultConcurrent(t *testing.T, st storage.Store) {
	mkTier(t, st, "t-0", "Zero", true)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = st.CreateTier(bg, &storage.Tier{ID: fmt.Sprint("t-", i+1), Name: fmt.Sprint("Tier ", i+1), IsDefault: true})
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, storage.ErrConflict):
		default:
			t.Fatalf("concurrent CreateTier: %v", err)
		}
	}
	if wins == 0 {
		t.Fatal("no concurrent CreateTier succeeded")
	}
	if d := defaults(t, st); len(d) != 1 {
		t.Fatalf("defaults = %v, want exactly one", d)
	}
}

func testDeleteTier(t *testing.T, st storage.Store) {
	mkTier(t, st, "t-free", "Free", true)
	mkTier(t, st, "t-pro", "Pro", false)
	must(t, st.SetRateLimits(bg, "t-pro", []storage.RateLimit{{Match: "api.requests", Limit: 10, Period: time.Second}}))
	mkUser(t, st, "u1")
	must(t, st.SetUserTier(bg, "u1", "t-pro"))

	wantErr(t, "DeleteTier(default)", st.DeleteTier(bg, "t-free"), storage.ErrConflict)
	wantErr(t, "DeleteTier(in use)", st.DeleteTier(bg, "t-pro"), storage.ErrConflict)
	wantErr(t, "DeleteTier(missing)", st.DeleteTier(bg, "nope"), storage.ErrNotFound)

	must(t, st.SetUserTier(bg, "u1", ""))
	must(t, st.DeleteTier(bg, "t-pro"))
	_, err := st.GetTier(bg, "t-pro")
	wantErr(t, "GetTier(deleted)", err, storage.ErrNotFound)
	_, err = st.RateLimits(bg, "t-pro")
	wantErr(t, "RateLimits(deleted tier)", err, storage.ErrNotFound)
	wantErr(t, "DeleteTier(again)", st.DeleteTier(bg, "t-pro"), storage.ErrNotFound)
	// The same name can be used again.
	mkTier(t, st, "t-pro2", "pro", false)
}

func testRateLimits(t *testing.T, st storage.Store) {
	mkTier(t, st, "t1", "One", false)
	mkTier(t, st, "t2", "Two", false)
	got, err := st.RateLimits(bg, "t1")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("fresh tier limits = %+v", got)
	}
	first := []storage.RateLimit{
		{Match: "/v1/search/*", Limit: 5, Period: time.Second},
		{Match: "api.requests", Limit: 1000, Period: time.Hour},
		{Match: "/v1/export", Limit: 1, Period: 24 * time.Hour},
	}
	must(t, st.SetRateLimits(bg, "t1", first))
	must(t, st.SetRateLimits(bg, "t2", []storage.RateLimit{{Match: "api.requests", Limit: 7, Period: time.Minute}}))
	got, err = st.RateLimits(bg, "t1")
	must(t, err)
	want := slices.Clone(first)
	sort.Slice(want, func(i, j int) bool { return want[i].Match < want[j].Match })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("RateLimits = %+v, want %+v", got, want)
	}

	// Replaced as a whole.
	second := []storage.RateLimit{{Match: "api.requests", Limit: 2000, Period: 90 * time.Minute}}
	must(t, st.SetRateLimits(bg, "t1", second))
	got, err = st.RateLimits(bg, "t1")
	must(t, err)
	if !reflect.DeepEqual(got, second) {
		t.Fatalf("after replace = %+v, want %+v", got, second)
	}
	// A failed replace changes nothing.
	wantErr(t, "SetRateLimits(dup match)", st.SetRateLimits(bg, "t1", []storage.RateLimit{
		{Match: "a", Limit: 1, Period: time.Second}, {Match: "a", Limit: 2, Period: time.Second}}), storage.ErrDuplicate)
	got, err = st.RateLimits(bg, "t1")
	must(t, err)
	if !reflect.DeepEqual(got, second) {
		t.Fatalf("after failed replace = %+v, want %+v", got, second)
	}
	// Other tiers are untouched; an empty list clears.
	got, err = st.RateLimits(bg, "t2")
	must(t, err)
	if len(got) != 1 || got[0].Limit != 7 {
		t.Fatalf("t2 limits = %+v", got)
	}
	must(t, st.SetRateLimits(bg, "t1", nil))
	got, err = st.RateLimits(bg, "t1")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("cleared limits = %+v", got)
	}

	wantErr(t, "SetRateLimits(missing tier)", st.SetRateLimits(bg, "nope", second), storage.ErrNotFound)
	_, err = st.RateLimits(bg, "nope")
	wantErr(t, "RateLimits(missing tier)", err, storage.ErrNotFound)
}

func testSetUserTier(t *testing.T, st storage.Store) {
	mkTier(t, st, "gold", "Gold", false)
	mkTier(t, st, "silver", "Silver", false)

	// CreateUser writes the tier; an unknown tier is ErrNotFound.
	u := &storage.User{ID: "u0", Username: "u0", TierID: "gold"}
	must(t, st.CreateUser(bg, u))
	got, err := st.GetUser(bg, "u0")
	must(t, err)
	if got.TierID != "gold" {
		t.Fatalf("created with tier: %+v", got)
	}
	wantErr(t, "CreateUser(unknown tier)", st.CreateUser(bg, &storage.User{ID: "ux", Username: "ux", TierID: "nope"}),
		storage.ErrNotFound)

	u1 := mkUser(t, st, "u1")
	if u1.TierID != "" {
		t.Fatalf("new user tier = %q", u1.TierID)
	}
	must(t, st.SetUserTier(bg, "u1", "silver"))
	got, err = st.GetUser(bg, "u1")
	must(t, err)
	if got.TierID != "silver" || got.UpdatedAt.Before(u1.UpdatedAt) {
		t.Fatalf("after SetUserTier: %+v", got)
	}
	// Every user query reads the tier.
	byLogin, err := st.GetUserByLogin(bg, "u1@example.com")
	must(t, err)
	if byLogin.TierID != "silver" {
		t.Fatalf("GetUserByLogin tier = %q", byLogin.TierID)
	}
	// UpdateUser leaves the tier alone.
	got.DisplayName = "renamed"
	must(t, st.UpdateUser(bg, got))
	got, err = st.GetUser(bg, "u1")
	must(t, err)
	if got.TierID != "silver" || got.DisplayName != "renamed" {
		t.Fatalf("after UpdateUser: %+v", got)
	}

	wantErr(t, "SetUserTier(unknown tier)", st.SetUserTier(bg, "u1", "nope"), storage.ErrNotFound)
	wantErr(t, "SetUserTier(unknown user)", st.SetUserTier(bg, "nobody", "gold"), storage.ErrNotFound)
	wantErr(t, "SetUserTier(unknown user, no tier)", st.SetUserTier(bg, "nobody", ""), storage.ErrNotFound)
	got, err = st.GetUser(bg, "u1")
	must(t, err)
	if got.TierID != "silver" {
		t.Fatalf("tier after failed set = %q", got.TierID)
	}

	must(t, st.SetUserTier(bg, "u1", ""))
	got, err = st.GetUser(bg, "u1")
	must(t, err)
	if got.TierID != "" {
		t.Fatalf("cleared tier = %q", got.TierID)
	}
}

// ---- audit ----

func ids(evs []storage.AuditEvent) []int64 {
	out := []int64{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func testAudit(t *testing.T, st storage.Store) {
	t0 := now().Add(-time.Hour)
	evs := []*storage.AuditEvent{
		{Time: t0, ActorType: storage.ActorClient, ActorID: "c1", Action: "user.suspend", TargetID: "u1", IP: "10.0.0.1",
			UserAgent: "admin/1", Reason: "spam", Changes: map[string]any{"status": "suspended", "count": float64(3)}},
		{Time: t0.Add(time.Minute), ActorType: storage.ActorClient, ActorID: "c1", Action: "user.password.reset", TargetID: "u2", IP: "10.0.0.2"},
		{Time: t0.Add(2 * time.Minute), ActorType: storage.ActorUser, ActorID: "u1", Action: "user.update", TargetID: "u1", IP: "10.0.0.1"},
		{Time: t0.Add(3 * time.Minute), ActorType: storage.ActorSystem, ActorID: "latchkey", Action: "tier.create", TargetID: "gold"},
		{Time: t0.Add(4 * time.Minute), ActorType: storage.ActorClient, ActorID: "c2", Action: "client.update", TargetID: "c9"},
		{Time: t0.Add(5 * time.Minute), ActorType: storage.ActorClient, ActorID: "c2", Action: "userAx.foo", TargetID: "c9"},
	}
	for i, e := range evs {
		must(t, st.AppendAudit(bg, e))
		if i > 0 && e.ID <= evs[i-1].ID {
			t.Fatalf("ids not increasing: %d then %d", evs[i-1].ID, e.ID)
		}
	}
	id := func(is ...int) []int64 {
		out := []int64{}
		for _, i := range is {
			out = append(out, evs[i].ID)
		}
		return out
	}

	all, err := st.ListAudit(bg, storage.AuditQuery{})
	must(t, err)
	if !reflect.DeepEqual(ids(all), id(5, 4, 3, 2, 1, 0)) {
		t.Fatalf("all = %v", ids(all))
	}
	if !reflect.DeepEqual(all[5], *evs[0]) {
		t.Fatalf("round trip = %+v, want %+v", all[5], *evs[0])
	}
	if all[4].Changes != nil {
		t.Fatalf("no changes read back as %#v", all[4].Changes)
	}

	for _, tc := range []struct {
		name string
		q    storage.AuditQuery
		want []int64
	}{
		{"target", storage.AuditQuery{TargetID: "u1"}, id(2, 0)},
		{"actor", storage.AuditQuery{ActorID: "c1"}, id(1, 0)},
		{"action exact", storage.AuditQuery{Actions: []string{"user.update"}}, id(2)},
		{"action prefix", storage.AuditQuery{Actions: []string{"user."}}, id(2, 1, 0)},
		{"action prefix, nested", storage.AuditQuery{Actions: []string{"user.password."}}, id(1)},
		{"actions mixed", storage.AuditQuery{Actions: []string{"user.suspend", "tier."}}, id(3, 0)},
		{"action is not a prefix without the dot", storage.AuditQuery{Actions: []string{"user.pass"}}, id()},
		{"underscore in a prefix is literal", storage.AuditQuery{Actions: []string{"user_x."}}, id()},
		{"ip", storage.AuditQuery{IP: "10.0.0.1"}, id(2, 0)},
		{"since inclusive, until exclusive", storage.AuditQuery{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, id(2, 1)},
		{"since", storage.AuditQuery{Since: t0.Add(4 * time.Minute)}, id(5, 4)},
		{"combined", storage.AuditQuery{ActorID: "c1", Actions: []string{"user."}, IP: "10.0.0.2"}, id(1)},
		{"after", storage.AuditQuery{After: evs[2].ID}, id(1, 0)},
		{"limit", storage.AuditQuery{Limit: 2}, id(5, 4)},
		{"no match", storage.AuditQuery{TargetID: "nobody"}, id()},
	} {
		got, err := st.ListAudit(bg, tc.q)
		must(t, err)
		if !reflect.DeepEqual(ids(got), tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, ids(got), tc.want)
		}
	}

	// Time is filled when zero.
	e := &storage.AuditEvent{ActorType: storage.ActorSystem, Action: "key.rotate"}
	before := now()
	must(t, st.AppendAudit(bg, e))
	if e.Time.Before(before) || e.Time.After(now().Add(time.Second)) {
		t.Fatalf("filled time = %v", e.Time)
	}

	// An event appended in a transaction that rolls back is gone with it.
	boom := errors.New("boom")
	err = st.InTx(bg, func(ctx context.Context) error {
		if err := st.AppendAudit(ctx, &storage.AuditEvent{ActorType: storage.ActorSystem, Action: "rolled.back"}); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, "InTx", err, boom)
	got, err := st.ListAudit(bg, storage.AuditQuery{Actions: []string{"rolled.back"}})
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("rolled-back event listed: %+v", got)
	}
}

func testAuditPaging(t *testing.T, st storage.Store) {
	const n = 55
	var want []int64
	for i := range n {
		e := &storage.AuditEvent{ActorType: storage.ActorSystem, Action: "x.y", TargetID: fmt.Sprint("t", i%2)}
		must(t, st.AppendAudit(bg, e))
		want = append([]int64{e.ID}, want...)
	}
	// Default limit is 50.
	first, err := st.ListAudit(bg, storage.AuditQuery{})
	must(t, err)
	if len(first) != 50 {
		t.Fatalf("default page = %d events", len(first))
	}
	// Keyset paging visits every event once, newest first.
	var seen []int64
	var after int64
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		page, err := st.ListAudit(bg, storage.AuditQuery{After: after, Limit: 10})
		must(t, err)
		if len(page) == 0 {
			break
		}
		seen = append(seen, ids(page)...)
		after = page[len(page)-1].ID
	}
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("paged = %v\nwant %v", seen, want)
	}
	// Paging with a filter.
	page, err := st.ListAudit(bg, storage.AuditQuery{TargetID: "t0", After: want[10], Limit: 3})
	must(t, err)
	for _, e := range page {
		if e.TargetID != "t0" || e.ID >= want[10] {
			t.Fatalf("filtered page has %+v", e)
		}
	}
	if len(page) != 3 {
		t.Fatalf("filtered page = %d events", len(page))
	}
}

// ---- search ----

func usernames(us []storage.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.Username)
	}
	return out
}

func search(t *testing.T, st storage.Store, q storage.UserQuery) []string {
	t.Helper()
	p, err := st.SearchUsers(bg, q)
	must(t, err)
	return usernames(p.Users)
}

func ptr[T any](v T) *T { return &v }

// searchFixture: five users created a minute apart, oldest first.
func searchFixture(t *testing.T, st storage.Store) time.Time {
	t.Helper()
	mkTier(t, st, "gold", "Gold", false)
	t0 := now().Add(-time.Hour)
	for i, u := range []storage.User{
		{ID: "id-a", Username: "alice", Email: "Alice@Example.com", EmailVerified: true, DisplayName: "Alice Liddell", TierID: "gold"},
		{ID: "id-b", Username: "bob", Email: "bob@example.org", DisplayName: "Bobby Tables", Status: storage.UserSuspended},
		{ID: "id-c", Username: "carol_x", Email: "carol@example.net", EmailVerified: true, DisplayName: "100% Carol", TierID: "gold"},
		{ID: "id-d", Username: "dan", Email: "dan@example.com", DisplayName: `D\an`, Status: storage.UserDeleted},
		{ID: "id-e", Username: "erin", Email: "", EmailVerified: false, DisplayName: "ERIN ADLER"},
	} {
		u.CreatedAt = t0.Add(time.Duration(i) * time.Minute)
		must(t, st.CreateUser(bg, &u))
	}
	return t0
}

func testSearchUsersFilters(t *testing.T, st storage.Store) {
	t0 := searchFixture(t, st)
	for _, tc := range []struct {
		name string
		q    storage.UserQuery
		want []string
	}{
		{"all, newest first", storage.UserQuery{}, []string{"erin", "dan", "carol_x", "bob", "alice"}},
		{"status", storage.UserQuery{Status: storage.UserActive}, []string{"erin", "carol_x", "alice"}},
		{"status suspended", storage.UserQuery{Status: storage.UserSuspended}, []string{"bob"}},
		{"tier", storage.UserQuery{TierID: "gold"}, []string{"carol_x", "alice"}},
		{"unknown tier", storage.UserQuery{TierID: "nope"}, []string{}},
		{"verified", storage.UserQuery{EmailVerified: ptr(true)}, []string{"carol_x", "alice"}},
		{"unverified", storage.UserQuery{EmailVerified: ptr(false)}, []string{"erin", "dan", "bob"}},
		{"created after (inclusive)", storage.UserQuery{CreatedAfter: t0.Add(3 * time.Minute)}, []string{"erin", "dan"}},
		{"created before (exclusive)", storage.UserQuery{CreatedBefore: t0.Add(2 * time.Minute)}, []string{"bob", "alice"}},
		{"created range", storage.UserQuery{CreatedAfter: t0.Add(time.Minute), CreatedBefore: t0.Add(3 * time.Minute)},
			[]string{"carol_x", "bob"}},
		{"combined", storage.UserQuery{Q: "example.com", Status: storage.UserActive, TierID: "gold", EmailVerified: ptr(true)},
			[]string{"alice"}},
		{"sort created asc", storage.UserQuery{Sort: storage.SortCreatedAsc}, []string{"alice", "bob", "carol_x", "dan", "erin"}},
		{"sort created desc", storage.UserQuery{Sort: storage.SortCreatedDesc}, []string{"erin", "dan", "carol_x", "bob", "alice"}},
		{"sort username", storage.UserQuery{Sort: storage.SortUsernameAsc, Status: storage.UserActive},
			[]string{"alice", "carol_x", "erin"}},
	} {
		if got := search(t, st, tc.q); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	p, err := st.SearchUsers(bg, storage.UserQuery{})
	must(t, err)
	if p.Next != "" {
		t.Errorf("single page has Next %q", p.Next)
	}
	// Search results are whole users.
	if u := p.Users[2]; u.ID != "id-c" || u.TierID != "gold" || !u.EmailVerified || u.DisplayName != "100% Carol" {
		t.Errorf("search row = %+v", u)
	}
	_, err = st.SearchUsers(bg, storage.UserQuery{Sort: "password"})
	if err == nil {
		t.Error("SearchUsers accepted an unknown sort")
	}
}

func testSearchUsersQ(t *testing.T, st storage.Store) {
	searchFixture(t, st)
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"alice", []string{"alice"}},              // username
		{"EXAMPLE.COM", []string{"dan", "alice"}}, // email, ignoring case
		{"liddell", []string{"alice"}},            // display name, ignoring case
		{"adler", []string{"erin"}},               // upper-case display name
		{"BoB", []string{"bob"}},                  // username and email of one user: once
		{"example", []string{"dan", "carol_x", "bob", "alice"}},
		{"%", []string{"carol_x"}},  // literal percent
		{"0%", []string{"carol_x"}}, // "100% Carol"
		{"_", []string{"carol_x"}},  // literal underscore
		{"l_x", []string{"carol_x"}},
		{"a_i", []string{}}, // would match "alice" if _ were a wildcard
		{`\`, []string{"dan"}},
		{`D\a`, []string{"dan"}},
		{`\a`, []string{"dan"}}, // would match every "a" if \ escaped it
		{"zzz", []string{}},
	} {
		if got := search(t, st, storage.UserQuery{Q: tc.q}); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Q %q: got %v, want %v", tc.q, got, tc.want)
		}
	}
}

// Paging through 25 users ten at a time returns each exactly once, in
// order, for every sort; a third of them share a creation time with a
// neighbour, so the id tie-break matters.
func testSearchUsersPaging(t *testing.T, st storage.Store) {
	base := now().Add(-time.Hour)
	var users []storage.User
	for i := range 25 {
		u := storage.User{
			ID:        fmt.Sprintf("u%02d", 24-i), // ids run against usernames
			Username:  fmt.Sprintf("p%02d", (i*7)%25),
			Email:     fmt.Sprintf("p%02d@example.com", i),
			CreatedAt: base.Add(time.Duration(i/3) * time.Minute),
		}
		must(t, st.CreateUser(bg, &u))
		users = append(users, u)
	}
	for _, tc := range []struct {
		sort storage.UserSort
		less func(a, b storage.User) bool
	}{
		{"", func(a, b storage.User) bool {
			if !a.CreatedAt.Equal(b.CreatedAt) {
				return a.CreatedAt.After(b.CreatedAt)
			}
			return a.ID > b.ID
		}},
		{storage.SortCreatedAsc, func(a, b storage.User) bool {
			if !a.CreatedAt.Equal(b.CreatedAt) {
				return a.CreatedAt.Before(b.CreatedAt)
			}
			return a.ID < b.ID
		}},
		{storage.SortUsernameAsc, func(a, b storage.User) bool { return a.Username < b.Username }},
	} {
		want := slices.Clone(users)
		sort.Slice(want, func(i, j int) bool { return tc.less(want[i], want[j]) })
		var got []string
		var sizes []int
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatalf("sort %q: paging does not end", tc.sort)
			}
			p, err := st.SearchUsers(bg, storage.UserQuery{Sort: tc.sort, Limit: 10, After: cursor})
			must(t, err)
			got = append(got, usernames(p.Users)...)
			sizes = append(sizes, len(p.Users))
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		if !reflect.DeepEqual(got, usernames(want)) {
			t.Errorf("sort %q: paged %v\nwant %v", tc.sort, got, usernames(want))
		}
		if !reflect.DeepEqual(sizes, []int{10, 10, 5}) {
			t.Errorf("sort %q: page sizes %v", tc.sort, sizes)
		}
	}

	// A filter holds across pages.
	var got []string
	cursor := ""
	for {
		p, err := st.SearchUsers(bg, storage.UserQuery{Q: "p1", Limit: 2, After: cursor, Sort: storage.SortUsernameAsc})
		must(t, err)
		got = append(got, usernames(p.Users)...)
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	// Email p1x@ and username p1x: usernames of users whose email or name
	// contains "p1".
	var want []string
	for _, u := range users {
		if strings.Contains(u.Username, "p1") || strings.Contains(u.Email, "p1") {
			want = append(want, u.Username)
		}
	}
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("filtered paging = %v, want %v", got, want)
	}
}

func testSearchUsersLimits(t *testing.T, st storage.Store) {
	must(t, st.InTx(bg, func(ctx context.Context) error {
		for i := range 205 {
			if err := st.CreateUser(ctx, &storage.User{ID: fmt.Sprintf("u%03d", i), Username: fmt.Sprintf("u%03d", i)}); err != nil {
				return err
			}
		}
		return nil
	}))
	for _, tc := range []struct{ limit, want int }{{0, 50}, {-1, 50}, {1000, 200}, {7, 7}} {
		p, err := st.SearchUsers(bg, storage.UserQuery{Limit: tc.limit})
		must(t, err)
		if len(p.Users) != tc.want || p.Next == "" {
			t.Errorf("Limit %d: %d users, next %q", tc.limit, len(p.Users), p.Next)
		}
	}
}

func testSearchUsersBadCursor(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	mkUser(t, st, "u2")
	p, err := st.SearchUsers(bg, storage.UserQuery{Limit: 1, Sort: storage.SortUsernameAsc})
	must(t, err)
	if p.Next == "" {
		t.Fatal("no next page")
	}
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, c := range []struct {
		name, cursor string
		sort         storage.UserSort
	}{
		{"not base64", "!!!", ""},
		{"not JSON", b64("not json"), ""},
		{"no id", b64(`{"k":"2024-01-01T00:00:00Z"}`), ""},
		{"not a time", b64(`{"k":"alice","id":"u1"}`), storage.SortCreatedAsc},
		{"wrong shape", b64(`[1,2]`), storage.SortUsernameAsc},
		{"username cursor on a time sort", p.Next, storage.SortCreatedDesc},
	} {
		_, err := st.SearchUsers(bg, storage.UserQuery{After: c.cursor, Sort: c.sort})
		if !errors.Is(err, storage.ErrBadCursor) {
			t.Errorf("%s: err = %v, want ErrBadCursor", c.name, err)
		}
	}
}

// ---- hard delete ----

func testHardDeleteUser(t *testing.T, st storage.Store) {
	c := mkClient(t, st, "c1")
	u := &storage.User{ID: "u1", Username: "alice", Email: "alice@example.com", DisplayName: "Alice", PasswordHash: "secret-hash"}
	must(t, st.CreateUser(bg, u))
	mkUser(t, st, "u2")
	for _, id := range []string{"u1", "u2"} {
		must(t, st.CreateBrowserSession(bg, &storage.BrowserSession{ID: "s-" + id, TokenHash: []byte("h-" + id), UserID: id,
			ExpiresAt: later()}))
		must(t, st.UpsertConsent(bg, &storage.Consent{UserID: id, ClientID: "c1", Scopes: []string{"openid"}}))
		must(t, st.CreateUserToken(bg, &storage.UserToken{TokenHash: []byte("ut-" + id), Purpose: storage.TokenVerifyEmail,
			UserID: id, ExpiresAt: later()}))
		r := mkRequest(c, "req-"+id, id, later())
		must(t, st.CreateAuthorizeCodeSession(bg, "code-"+id, r))
		must(t, st.CreateAccessTokenSession(bg, "at-"+id, r))
		must(t, st.CreateRefreshTokenSession(bg, "rt-"+id, "at-"+id, r))
		must(t, st.CreatePKCERequestSession(bg, "pkce-"+id, r))
		must(t, st.CreateOpenIDConnectSession(bg, "oidc-"+id, r))
	}
	must(t, st.CreatePendingAuthorization(bg, &storage.PendingAuthorization{ID: "p1", ClientID: "c1", UserID: "u1",
		ExpiresAt: later()}))
	must(t, st.AppendAudit(bg, &storage.AuditEvent{ActorType: storage.ActorClient, ActorID: "admin", Action: "user.suspend",
		TargetID: "u1"}))

	a := &storage.UserArchive{UserID: "u1", Reason: "GDPR erasure request", DeletedBy: "client:admin",
		Profile: map[string]any{"locale": "en-GB"}}
	must(t, st.HardDeleteUser(bg, a))
	if a.Username != "alice" || a.Email != "alice@example.com" || a.DisplayName != "Alice" ||
		!a.CreatedAt.Equal(u.CreatedAt) || a.DeletedAt.IsZero() {
		t.Fatalf("archive not filled from the row: %+v", a)
	}
	got, err := st.GetUserArchive(bg, "u1")
	must(t, err)
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("GetUserArchive = %+v, want %+v", got, a)
	}

	_, err = st.GetUser(bg, "u1")
	wantErr(t, "GetUser(deleted)", err, storage.ErrNotFound)
	_, err = st.GetBrowserSessionByID(bg, "s-u1")
	wantErr(t, "session", err, storage.ErrNotFound)
	_, err = st.GetConsent(bg, "u1", "c1")
	wantErr(t, "consent", err, storage.ErrNotFound)
	_, err = st.ConsumeUserToken(bg, []byte("ut-u1"), storage.TokenVerifyEmail, now())
	wantErr(t, "user token", err, storage.ErrNotFound)
	_, err = st.GetPendingAuthorization(bg, "p1")
	wantErr(t, "pending authorization", err, storage.ErrNotFound)
	_, err = st.GetAuthorizeCodeSession(bg, "code-u1", sess())
	wantErr(t, "code", err, fosite.ErrNotFound)
	_, err = st.GetAccessTokenSession(bg, "at-u1", sess())
	wantErr(t, "access token", err, fosite.ErrNotFound)
	_, err = st.GetRefreshTokenSession(bg, "rt-u1", sess())
	wantErr(t, "refresh token", err, fosite.ErrNotFound)
	_, err = st.GetPKCERequestSession(bg, "pkce-u1", sess())
	wantErr(t, "pkce", err, fosite.ErrNotFound)
	_, err = st.GetOpenIDConnectSession(bg, "oidc-u1", fosite.NewAuthorizeRequest())
	wantErr(t, "oidc", err, fosite.ErrNotFound)

	// The other user keeps everything; the audit trail stays.
	_, err = st.GetUser(bg, "u2")
	must(t, err)
	_, err = st.GetBrowserSessionByID(bg, "s-u2")
	must(t, err)
	_, err = st.GetConsent(bg, "u2", "c1")
	must(t, err)
	_, err = st.GetAccessTokenSession(bg, "at-u2", sess())
	must(t, err)
	_, err = st.GetRefreshTokenSession(bg, "rt-u2", sess())
	must(t, err)
	_, err = st.GetAuthorizeCodeSession(bg, "code-u2", sess())
	must(t, err)
	evs, err := st.ListAudit(bg, storage.AuditQuery{TargetID: "u1"})
	must(t, err)
	if len(evs) != 1 {
		t.Fatalf("audit of deleted user = %+v", evs)
	}

	wantErr(t, "HardDeleteUser(again)", st.HardDeleteUser(bg, &storage.UserArchive{UserID: "u1"}), storage.ErrNotFound)
	wantErr(t, "HardDeleteUser(missing)", st.HardDeleteUser(bg, &storage.UserArchive{UserID: "nobody"}), storage.ErrNotFound)
	_, err = st.GetUserArchive(bg, "nobody")
	wantErr(t, "GetUserArchive(missing)", err, storage.ErrNotFound)
	// The username and email are free again.
	must(t, st.CreateUser(bg, &storage.User{ID: "u3", Username: "alice", Email: "alice@example.com"}))
}

// ---- stats ----

func testStats(t *testing.T, st storage.Store) {
	empty, err := st.Stats(bg, 0)
	must(t, err)
	if len(empty.ByStatus) != 0 || len(empty.ByTier) != 0 || len(empty.SignupsPerDay) != 0 {
		t.Fatalf("empty stats = %+v", empty)
	}

	mkTier(t, st, "gold", "Gold", false)
	mkTier(t, st, "silver", "Silver", false)
	n := time.Now().UTC()
	users := []storage.User{
		{ID: "a", Status: storage.UserActive, TierID: "gold", CreatedAt: n},
		{ID: "b", Status: storage.UserActive, CreatedAt: n},
		{ID: "c", Status: storage.UserActive, CreatedAt: n.AddDate(0, 0, -1)},
		{ID: "d", Status: storage.UserSuspended, TierID: "gold", CreatedAt: n.AddDate(0, 0, -3)},
		{ID: "e", Status: storage.UserDeleted, TierID: "silver", CreatedAt: n.AddDate(0, 0, -40)},
	}
	for _, u := range users {
		u.Username = u.ID
		must(t, st.CreateUser(bg, &u))
	}
	s, err := st.Stats(bg, 7)
	must(t, err)
	if want := map[storage.UserStatus]int64{storage.UserActive: 3, storage.UserSuspended: 1, storage.UserDeleted: 1}; !reflect.DeepEqual(s.ByStatus, want) {
		t.Errorf("ByStatus = %v, want %v", s.ByStatus, want)
	}
	if want := map[string]int64{"gold": 2, "silver": 1, "": 2}; !reflect.DeepEqual(s.ByTier, want) {
		t.Errorf("ByTier = %v, want %v", s.ByTier, want)
	}
	if len(s.SignupsPerDay) != 7 {
		t.Fatalf("SignupsPerDay = %+v, want 7 days", s.SignupsPerDay)
	}
	perDay := map[string]int64{}
	for _, u := range users[:4] {
		perDay[u.CreatedAt.Format(time.DateOnly)]++
	}
	var total int64
	for i, d := range s.SignupsPerDay {
		if i > 0 && d.Day <= s.SignupsPerDay[i-1].Day {
			t.Errorf("days out of order: %+v", s.SignupsPerDay)
		}
		if d.Count != perDay[d.Day] {
			t.Errorf("%s: %d sign-ups, want %d", d.Day, d.Count, perDay[d.Day])
		}
		total += d.Count
	}
	if total != 4 {
		t.Errorf("sign-ups in the last 7 days = %d, want 4 (%+v)", total, s.SignupsPerDay)
	}
	if last := s.SignupsPerDay[6].Day; last != time.Now().UTC().Format(time.DateOnly) {
		t.Errorf("last day = %s, want today", last)
	}
	s, err = st.Stats(bg, 60)
	must(t, err)
	total = 0
	for _, d := range s.SignupsPerDay {
		total += d.Count
	}
	if len(s.SignupsPerDay) != 60 || total != 5 {
		t.Errorf("60 days: %d entries, %d sign-ups", len(s.SignupsPerDay), total)
	}
}

// ---- clients ----

func testUpdateClient(t *testing.T, st storage.Store) {
	// The store runs with its client cache on, if it has one (see Run):
	// an update must be visible at once through the same store.
	c := mkClient(t, st, "c1")
	fc, err := st.GetClient(bg, "c1")
	must(t, err)
	if got := fosite.GetEffectiveLifespan(fc, fosite.GrantTypeAuthorizationCode, fosite.AccessToken, time.Minute); got != time.Minute {
		t.Fatalf("lifespan without a client value = %v, want the fallback", got)
	}

	c.Name = "Renamed"
	c.SecretHash = []byte{9, 9, 9}
	c.RedirectURIs = []string{"https://new.example/cb"}
	c.PostLogoutRedirectURIs = []string{"https://new.example/bye"}
	c.GrantTypes = []string{"client_credentials"}
	c.ResponseTypes = []string{"token"}
	c.Scopes = []string{"api"}
	c.Audience = []string{"https://api2.example"}
	c.FirstParty = true
	c.AccessTokenFormat = storage.AccessTokenJWT
	c.AccessTokenTTL = 5 * time.Minute
	c.RefreshTokenTTL = 48 * time.Hour
	c.IDTokenTTL = 10 * time.Minute
	c.AuthCodeTTL = 30 * time.Second
	must(t, st.UpdateClient(bg, c))
	got, err := st.GetClientByID(bg, "c1")
	must(t, err)
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("after UpdateClient = %+v\nwant %+v", got, c)
	}
	fc, err = st.GetClient(bg, "c1")
	must(t, err)
	if fc.(*storage.Client).Name != "Renamed" || string(fc.GetHashedSecret()) != string(c.SecretHash) {
		t.Fatalf("GetClient after UpdateClient still serves the old record: %+v", fc)
	}
	for tt, want := range map[fosite.TokenType]time.Duration{
		fosite.AccessToken: 5 * time.Minute, fosite.RefreshToken: 48 * time.Hour,
		fosite.IDToken: 10 * time.Minute, fosite.AuthorizeCode: 30 * time.Second,
	} {
		if got := fosite.GetEffectiveLifespan(fc, fosite.GrantTypeRefreshToken, tt, time.Hour); got != want {
			t.Errorf("lifespan of %s = %v, want %v", tt, got, want)
		}
	}

	// Back to a public client on server defaults.
	c.Public, c.SecretHash, c.AccessTokenFormat = true, nil, ""
	c.AccessTokenTTL, c.RefreshTokenTTL, c.IDTokenTTL, c.AuthCodeTTL = 0, 0, 0, 0
	c.PostLogoutRedirectURIs = nil
	must(t, st.UpdateClient(bg, c))
	got, err = st.GetClientByID(bg, "c1")
	must(t, err)
	if !got.Public || got.SecretHash != nil || got.AccessTokenFormat != storage.AccessTokenOpaque ||
		got.AccessTokenTTL != 0 || got.PostLogoutRedirectURIs != nil || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Fatalf("after second UpdateClient = %+v", got)
	}
	fc, err = st.GetClient(bg, "c1")
	must(t, err)
	if !fc.IsPublic() || fosite.GetEffectiveLifespan(fc, "", fosite.IDToken, time.Hour) != time.Hour {
		t.Fatalf("GetClient after second UpdateClient = %+v", fc)
	}

	wantErr(t, "UpdateClient(missing)", st.UpdateClient(bg, &storage.Client{ID: "nope"}), storage.ErrNotFound)
}
