package main

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/provider/accounts"
	"github.com/latchkey/latchkey/provider/keys"
	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/sqlstore"
)

// The CLI and the admin API rotate and retire signing keys through one
// operation (keys.Manager.RotateAudited, RetireAudited): each step, taken
// once through `latchkey keys …` and once through /v1/keys on the same
// database, records the same audit events but for who acted, and a
// refused retirement (the last key) records nothing and changes no key.
func TestKeyAuditCLIAndAdminAgree(t *testing.T) {
	if keys.AuditRotate != accounts.AuditKeyRotate || keys.AuditRetire != accounts.AuditKeyRetire {
		t.Fatal("keys and accounts name the key audit actions differently")
	}
	backends(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		// Maintenance (which retires duplicate keys) first runs a minute
		// after start: it must not touch the twins added below.
		s := startServer(t, dsn, map[string]string{"LATCHKEY_KEY_REFRESH_EVERY": "1m"})
		token := adminToken(t, s)
		adminID := ""
		st, err := sqlstore.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()

		rows := func() []storage.SigningKey {
			t.Helper()
			ks, err := st.ListSigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return ks
		}
		// events returns the key events after the event with id after,
		// oldest first.
		events := func(after int64) []storage.AuditEvent {
			t.Helper()
			all, err := st.ListAudit(ctx, storage.AuditQuery{Actions: []string{"key."}, Limit: 500})
			if err != nil {
				t.Fatal(err)
			}
			var out []storage.AuditEvent
			for i := len(all) - 1; i >= 0; i-- {
				if all[i].ID > after {
					out = append(out, all[i])
				}
			}
			return out
		}
		lastID := func() int64 {
			all, err := st.ListAudit(ctx, storage.AuditQuery{Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(all) == 0 {
				return 0
			}
			return all[0].ID
		}
		// twin adds a second active key per algorithm, as two replicas
		// initialising an empty database at once would, and returns the
		// RS256 one: a key that can be retired.
		twin := func() string {
			t.Helper()
			scratch := testdb.OpenStore(t, testdb.SQLite(t))
			km, err := keys.New(scratch, keys.Config{Secret: []byte(s.env["LATCHKEY_SECRET"])})
			if err != nil {
				t.Fatal(err)
			}
			if err := km.Init(ctx); err != nil {
				t.Fatal(err)
			}
			ks, err := scratch.ListSigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			kid := ""
			for i := range ks {
				if err := st.CreateSigningKey(ctx, &ks[i]); err != nil {
					t.Fatal(err)
				}
				if ks[i].Algorithm == keys.RS256 {
					kid = ks[i].ID
				}
			}
			return kid
		}
		// lastRetired is the RS256 key retired most recently.
		lastRetired := func() string {
			t.Helper()
			var kid string
			var at time.Time
			for _, k := range rows() {
				if k.Algorithm == keys.RS256 && k.RetiredAt != nil && !k.RetiredAt.Before(at) {
					kid, at = k.ID, *k.RetiredAt
				}
			}
			return kid
		}
		// soleSigner is the one RS256 key that is not retired.
		soleSigner := func() string {
			t.Helper()
			var ids []string
			for _, k := range rows() {
				if k.Algorithm == keys.RS256 && k.RetiredAt == nil {
					ids = append(ids, k.ID)
				}
			}
			if len(ids) != 1 {
				t.Fatalf("want one unretired RS256 key, have %v", ids)
			}
			return ids[0]
		}

		type path struct {
			name string
			run  func(cliArgs []string, adminPath string, adminBody any) (ok bool)
		}
		paths := []path{
			{"cli", func(args []string, _ string, _ any) bool {
				_, err := s.cli("", args...)
				if err != nil {
					t.Logf("cli %v: %v", args, err)
				}
				return err == nil
			}},
			{"admin", func(_ []string, p string, body any) bool {
				status, _ := s.adminCall(t, token, http.MethodPost, p, body)
				return status == http.StatusOK || status == http.StatusNoContent
			}},
		}
		steps := []struct {
			name      string
			target    func() string // the key acted on; nil for rotations
			cli       []string
			adminPath string
			adminBody any
			ok        bool
			events    int
		}{
			{name: "rotate", cli: []string{"keys", "rotate"}, adminPath: "/v1/keys/rotate", adminBody: map[string]any{},
				ok: true, events: 2},
			{name: "rotate --now", cli: []string{"keys", "rotate", "--now"}, adminPath: "/v1/keys/rotate",
				adminBody: map[string]any{"now": true}, ok: true, events: 2},
			{name: "retire", target: twin, cli: []string{"keys", "retire", "--", "KID"}, adminPath: "/v1/keys/KID/retire",
				ok: true, events: 1},
			{name: "retire a retired key", target: lastRetired, cli: []string{"keys", "retire", "--", "KID"},
				adminPath: "/v1/keys/KID/retire", ok: true, events: 0},
			{name: "retire the last key", target: soleSigner, cli: []string{"keys", "retire", "--", "KID"},
				adminPath: "/v1/keys/KID/retire", ok: false, events: 0},
		}
		for _, step := range steps {
			got := map[string][]storage.AuditEvent{}
			for _, p := range paths {
				kid := ""
				if step.target != nil {
					kid = step.target()
				}
				args := make([]string, len(step.cli))
				for i, a := range step.cli {
					args[i] = strings.ReplaceAll(a, "KID", kid)
				}
				before, keysBefore := lastID(), rows()
				if ok := p.run(args, strings.ReplaceAll(step.adminPath, "KID", kid), step.adminBody); ok != step.ok {
					t.Fatalf("%s via %s: succeeded = %v, want %v", step.name, p.name, ok, step.ok)
				}
				evs := events(before)
				if len(evs) != step.events {
					t.Fatalf("%s via %s: %d events, want %d: %+v", step.name, p.name, len(evs), step.events, evs)
				}
				if !step.ok && !reflect.DeepEqual(rows(), keysBefore) {
					t.Fatalf("%s via %s: a refused retirement changed the keys", step.name, p.name)
				}
				keyByID := map[string]storage.SigningKey{}
				for _, k := range rows() {
					keyByID[k.ID] = k
				}
				for i := range evs {
					e := &evs[i]
					// Who acted differs by path, and nothing else may.
					switch p.name {
					case "cli":
						if e.ActorType != storage.ActorSystem || e.ActorID != "cli" {
							t.Fatalf("%s via cli: actor %s:%s", step.name, e.ActorType, e.ActorID)
						}
					case "admin":
						if adminID == "" {
							adminID = e.ActorID
						}
						if e.ActorType != storage.ActorClient || e.ActorID == "" || e.ActorID != adminID {
							t.Fatalf("%s via admin: actor %s:%s", step.name, e.ActorType, e.ActorID)
						}
					}
					k, ok := keyByID[e.TargetID]
					if !ok || (kid != "" && e.TargetID != kid) {
						t.Fatalf("%s via %s: event target %q is not the key acted on", step.name, p.name, e.TargetID)
					}
					if at, ok := e.Changes["activates_at"].(string); ok {
						if got, err := time.Parse(time.RFC3339Nano, at); err != nil || !got.Equal(k.ActivatesAt) {
							t.Fatalf("%s via %s: activates_at %q, key activates at %v", step.name, p.name, at, k.ActivatesAt)
						}
						e.Changes["activates_at"] = "<the key's>"
					}
					e.ID, e.Time, e.ActorType, e.ActorID, e.IP, e.UserAgent, e.TargetID = 0, time.Time{}, "", "", "", "", "<key>"
				}
				got[p.name] = evs
			}
			if !reflect.DeepEqual(got["cli"], got["admin"]) {
				t.Errorf("%s: the CLI and the admin API record different events:\ncli   %+v\nadmin %+v", step.name, got["cli"], got["admin"])
			}
			if step.name == "retire" {
				want := map[string]any{"algorithm": keys.RS256, "previous_state": keys.StateActive}
				if e := got["cli"][0]; e.Action != accounts.AuditKeyRetire || !reflect.DeepEqual(e.Changes, want) {
					t.Errorf("retire event %+v, want %s %v", e, accounts.AuditKeyRetire, want)
				}
			}
			if strings.HasPrefix(step.name, "rotate") {
				for _, e := range got["cli"] {
					if e.Action != accounts.AuditKeyRotate || e.Changes["immediate"] != (step.name == "rotate --now") {
						t.Errorf("%s event %+v", step.name, e)
					}
				}
			}
		}
	})
}
