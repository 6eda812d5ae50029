package admin_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

type eventJSON struct {
	ID        int64          `json:"id"`
	Time      time.Time      `json:"time"`
	ActorType string         `json:"actor_type"`
	ActorID   string         `json:"actor_id"`
	Action    string         `json:"action"`
	TargetID  string         `json:"target_id"`
	IP        string         `json:"ip"`
	UserAgent string         `json:"user_agent"`
	Reason    string         `json:"reason"`
	Changes   map[string]any `json:"changes"`
}

// auditPages follows next links and returns the events, checking each
// page is newest first and no event comes twice.
func (e *env) auditPages(t *testing.T, path string) []eventJSON {
	t.Helper()
	var out []eventJSON
	for n := 0; path != ""; n++ {
		if n > 200 {
			t.Fatal("too many pages")
		}
		var page struct {
			Events []eventJSON `json:"events"`
			Next   *string     `json:"next"`
		}
		want(t, e.send(t, req{method: "GET", path: path, token: "tok-audit"}), 200).json(t, &page)
		if page.Events == nil {
			t.Fatalf("%s: events is null", path)
		}
		for _, ev := range page.Events {
			if len(out) > 0 && ev.ID >= out[len(out)-1].ID {
				t.Fatalf("%s: event %d after %d", path, ev.ID, out[len(out)-1].ID)
			}
			out = append(out, ev)
		}
		path = ""
		if page.Next != nil {
			path = *page.Next
			if !strings.HasPrefix(path, "/v1/audit-events?") {
				t.Fatalf("next %q", path)
			}
		}
	}
	return out
}

func actions(evs []eventJSON) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return out
}

func TestAuditEvents(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		u := e.createUser(t, "audited") // by c_admin
		want(t, e.send(t, req{method: "POST", path: "/v1/users/" + u.ID + "/suspend", token: "tok-write", body: `{"reason":"fraud"}`}), 200)
		want(t, e.send(t, req{method: "POST", path: "/v1/users/" + u.ID + "/unsuspend", token: "tok-write", body: `{"reason":"cleared"}`}), 200)
		e.clock.advance(time.Hour)
		mark := e.clock.Now().UTC()
		want(t, e.send(t, req{method: "PATCH", path: "/v1/users/" + u.ID, token: "tok-write", body: `{"display_name":"A"}`}), 200)
		tier := e.createTier(t, `{"name":"Audit tier"}`)
		// A refused change records nothing.
		other := e.createUser(t, "other")
		wantField(t, e.send(t, req{method: "PATCH", path: "/v1/users/" + u.ID, token: "tok-write", body: `{"username":"other"}`}), 409, "username")

		all := e.auditPages(t, "/v1/audit-events?limit=500")
		for _, tt := range []struct {
			name  string
			query string
			want  []string // actions, newest first
		}{
			{"by target", "target=" + u.ID, []string{"user.update", "user.unsuspend", "user.suspend", "user.create"}},
			{"by actor", "actor=c_write", []string{"user.update", "user.unsuspend", "user.suspend"}},
			{"by actor and target", "actor=c_admin&target=" + u.ID, []string{"user.create"}},
			{"exact action", "action=user.suspend", []string{"user.suspend"}},
			{"comma-separated", "action=user.suspend,user.unsuspend", []string{"user.unsuspend", "user.suspend"}},
			{"repeated", "action=user.suspend&action=tier.create", []string{"tier.create", "user.suspend"}},
			{"prefix", "action=tier.", []string{"tier.create"}},
			{"star prefix", "action=user.*&target=" + u.ID, []string{"user.update", "user.unsuspend", "user.suspend", "user.create"}},
			{"user prefix", "action=user.&actor=c_admin", []string{"user.create", "user.create"}},
			{"since", "since=" + url.QueryEscape(mark.Format(time.RFC3339Nano)), []string{"user.create", "tier.create", "user.update"}},
			{"until", "until=" + url.QueryEscape(mark.Format(time.RFC3339Nano)) + "&target=" + u.ID, []string{"user.unsuspend", "user.suspend", "user.create"}},
			{"ip", "ip=127.0.0.1&target=" + tier.ID, []string{"tier.create"}},
			{"other ip", "ip=192.0.2.1", nil},
			{"nothing", "target=u_nope", nil},
		} {
			for _, limit := range []string{"", "&limit=1", "&limit=2"} {
				t.Run(tt.name+limit, func(t *testing.T) {
					got := actions(e.auditPages(t, "/v1/audit-events?"+tt.query+limit))
					if strings.Join(got, " ") != strings.Join(tt.want, " ") {
						t.Fatalf("got  %v\nwant %v", got, tt.want)
					}
				})
			}
		}
		if slices.Contains(actions(e.auditPages(t, "/v1/audit-events?target="+other.ID)), "user.update") {
			t.Fatal("the refused PATCH was recorded")
		}

		t.Run("paging visits every event once", func(t *testing.T) {
			for _, limit := range []string{"1", "3", "7"} {
				paged := e.auditPages(t, "/v1/audit-events?limit="+limit)
				if len(paged) != len(all) {
					t.Fatalf("limit %s: %d events, want %d", limit, len(paged), len(all))
				}
				for i := range all {
					if paged[i].ID != all[i].ID {
						t.Fatalf("limit %s: event %d is %d, want %d", limit, i, paged[i].ID, all[i].ID)
					}
				}
			}
		})

		t.Run("event shape", func(t *testing.T) {
			var ev eventJSON
			for _, x := range all {
				if x.Action == "user.suspend" {
					ev = x
				}
			}
			if ev.ActorType != "client" || ev.ActorID != "c_write" || ev.TargetID != u.ID || ev.Reason != "fraud" ||
				ev.IP != "127.0.0.1" || ev.UserAgent != "admin-test/1" || ev.Time.Location() != time.UTC || ev.Changes["status"] != "suspended" {
				t.Fatalf("%+v", ev)
			}
		})

		t.Run("bad parameters", func(t *testing.T) {
			for _, tt := range []struct{ query, field string }{
				{"since=yesterday", "since"},
				{"until=2025-02-30", "until"},
				{"after=abc", "after"},
				{"after=-3", "after"},
				{"limit=0", "limit"},
				{"limit=501", "limit"},
				{"action=user.%25", "action"},
			} {
				wantField(t, e.send(t, req{method: "GET", path: "/v1/audit-events?" + tt.query, token: "tok-audit"}), 422, tt.field)
			}
		})
	})
}
