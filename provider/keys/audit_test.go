package keys

import (
	"context"
	"errors"
	"testing"

	"github.com/latchkey/latchkey/storage"
)

// storeAuditor is a keys.Auditor on a store: events go to its audit log,
// or fail with fail.
type storeAuditor struct {
	st   storage.Store
	fail error
}

func (a storeAuditor) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	return a.st.InTx(ctx, fn)
}

func (a storeAuditor) RecordAudit(ctx context.Context, action, target, reason string, changes map[string]any) error {
	if a.fail != nil {
		return a.fail
	}
	return a.st.AppendAudit(ctx, &storage.AuditEvent{ActorType: storage.ActorSystem, ActorID: "test",
		Action: action, TargetID: target, Reason: reason, Changes: changes})
}

// When the audit event cannot be written, the change is rolled back with
// it, and the manager serves what the database holds (not the keys it
// loaded inside the abandoned transaction).
func TestAuditedChangesRollBackWithTheirEvent(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	m := initManager(t, st, newClock())
	before, err := st.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jwks := jwksKIDs(t, m)
	boom := errors.New("audit log unavailable")
	for _, immediate := range []bool{false, true} {
		if _, err := m.RotateAudited(ctx, storeAuditor{st, boom}, immediate); !errors.Is(err, boom) {
			t.Fatalf("RotateAudited(immediate=%v) = %v, want the audit error", immediate, err)
		}
		if got := jwksKIDs(t, m); len(got) != len(jwks) {
			t.Fatalf("JWKS %v after a failed rotation, want %v", got, jwks)
		}
	}
	// A twin (a second active key per algorithm, as two replicas
	// initialising at once leave) makes a key retirable.
	scratch := sqliteStore(t)
	initManager(t, scratch, newClock())
	twins, err := scratch.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range twins {
		if err := st.CreateSigningKey(ctx, &twins[i]); err != nil {
			t.Fatal(err)
		}
	}
	before = append(before, twins...)
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// Its retirement is refused too: retire the RS256 signer (the twin
	// or the first key; the other covers).
	target := signerKID(t, m)
	if err := m.RetireAudited(ctx, storeAuditor{st, boom}, target); !errors.Is(err, boom) {
		t.Fatalf("RetireAudited = %v, want the audit error", err)
	}
	after, err := st.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("%d keys after failed changes, want %d", len(after), len(before))
	}
	for i := range after {
		if after[i].RetiredAt != nil {
			t.Fatalf("key %s retired by a failed change", after[i].ID)
		}
	}
	if got := signerKID(t, m); got != target {
		t.Fatalf("signer %s after a failed retirement, want %s", got, target)
	}
	evs, err := st.ListAudit(ctx, storage.AuditQuery{})
	if err != nil || len(evs) != 0 {
		t.Fatalf("events %v, %v", evs, err)
	}

	// With a working audit log: one event for the retirement, one per new
	// key; none for retiring a key that no longer signs, none for a
	// refused retirement.
	a := storeAuditor{st: st}
	if err := m.RetireAudited(ctx, a, target); err != nil {
		t.Fatal(err)
	}
	created, err := m.RotateAudited(ctx, a, true)
	if err != nil || len(created) != 2 {
		t.Fatalf("RotateAudited = %v, %v", created, err)
	}
	if err := m.RetireAudited(ctx, a, target); err != nil {
		t.Fatal(err)
	}
	if err := m.RetireAudited(ctx, a, byAlg(t, created, RS256).ID); !errors.Is(err, ErrLastKey) {
		t.Fatalf("retiring the last RS256 key: %v", err)
	}
	if err := m.RetireAudited(ctx, a, "k_nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("retiring an unknown key: %v", err)
	}
	evs, err = st.ListAudit(ctx, storage.AuditQuery{})
	if err != nil || len(evs) != 3 {
		t.Fatalf("events %+v, %v", evs, err)
	}
	// Newest first: the two rotations, then the retirement.
	for _, e := range evs[:2] {
		if e.Action != AuditRotate || e.Changes["immediate"] != true || e.Changes["activates_at"] == nil {
			t.Fatalf("rotation event %+v", e)
		}
	}
	if e := evs[2]; e.Action != AuditRetire || e.TargetID != target ||
		e.Changes["algorithm"] != RS256 || e.Changes["previous_state"] != StateActive {
		t.Fatalf("retirement event %+v", e)
	}
}
