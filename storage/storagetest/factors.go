package storagetest

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// factorTests cover second factors and recovery codes.
var factorTests = []struct {
	name string
	fn   func(t *testing.T, st storage.Store)
}{
	{"Factors", testFactors},
	{"TOTPReplay", testTOTPReplay},
	{"RecoveryCodes", testRecoveryCodes},
}

func testFactors(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	mkUser(t, st, "u2")
	f := &storage.Factor{ID: "f1", UserID: "u1", Type: storage.FactorTOTP, Name: "Phone", Secret: []byte("sealed"), CreatedAt: now()}
	must(t, st.CreateFactor(bg, f))
	wantErr(t, "Create(dup)", st.CreateFactor(bg, &storage.Factor{ID: "f1", UserID: "u1", Type: storage.FactorTOTP}), storage.ErrDuplicate)
	got, err := st.GetFactor(bg, "u1", "f1")
	must(t, err)
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("Get = %+v, want %+v", got, f)
	}
	_, err = st.GetFactor(bg, "u2", "f1")
	wantErr(t, "Get(another user's)", err, storage.ErrNotFound)

	// A passkey, with its credential id unique across users.
	wa := &storage.Factor{ID: "f2", UserID: "u1", Type: storage.FactorWebAuthn, Name: "Laptop", CredentialID: []byte{1, 2, 3},
		Credential: `{"id":"AQID"}`, CreatedAt: now().Add(time.Second)}
	must(t, st.CreateFactor(bg, wa))
	wantErr(t, "Create(dup credential)", st.CreateFactor(bg, &storage.Factor{ID: "f3", UserID: "u2", Type: storage.FactorWebAuthn,
		CredentialID: []byte{1, 2, 3}}), storage.ErrDuplicate)

	byCred, err := st.GetFactorByCredentialID(bg, []byte{1, 2, 3})
	must(t, err)
	if byCred.ID != "f2" || byCred.UserID != "u1" {
		t.Fatalf("GetFactorByCredentialID = %+v", byCred)
	}
	_, err = st.GetFactorByCredentialID(bg, []byte{9})
	wantErr(t, "GetFactorByCredentialID(unknown)", err, storage.ErrNotFound)
	must(t, st.UpdateFactorCredential(bg, "u1", "f2", `{"id":"AQID","n":2}`, now()))
	if got, _ := st.GetFactor(bg, "u1", "f2"); got.Credential != `{"id":"AQID","n":2}` || got.LastUsedAt == nil {
		t.Fatalf("after UpdateFactorCredential: %+v", got)
	}
	wantErr(t, "UpdateFactorCredential(another user's)", st.UpdateFactorCredential(bg, "u2", "f2", "{}", now()), storage.ErrNotFound)

	at := now()
	if m, err := st.UsersWithMFA(bg, []string{"u1", "u2"}); err != nil || len(m) != 0 {
		t.Fatalf("UsersWithMFA before confirming = %v, %v", m, err)
	}
	must(t, st.ConfirmFactor(bg, "u1", "f1", at))
	if m, err := st.UsersWithMFA(bg, []string{"u1", "u2"}); err != nil || !m["u1"] || m["u2"] {
		t.Fatalf("UsersWithMFA = %v, %v; want u1 only", m, err)
	}
	wantErr(t, "Confirm(again)", st.ConfirmFactor(bg, "u1", "f1", at), storage.ErrNotFound)
	wantErr(t, "Confirm(another user's)", st.ConfirmFactor(bg, "u2", "f2", at), storage.ErrNotFound)
	list, err := st.ListFactors(bg, "u1")
	must(t, err)
	if len(list) != 2 || list[0].ID != "f1" || list[1].ID != "f2" || list[0].ConfirmedAt == nil || !list[0].ConfirmedAt.Equal(at) || list[1].ConfirmedAt != nil {
		t.Fatalf("List = %+v", list)
	}
	wantErr(t, "Delete(another user's)", st.DeleteFactor(bg, "u2", "f1"), storage.ErrNotFound)
	must(t, st.DeleteFactor(bg, "u1", "f2"))
	must(t, st.ReplaceRecoveryCodes(bg, "u1", [][]byte{{9}}, now()))
	n, err := st.DeleteUserFactors(bg, "u1")
	must(t, err)
	if n != 1 {
		t.Fatalf("DeleteUserFactors = %d, want 1", n)
	}
	if left, _ := st.CountRecoveryCodes(bg, "u1"); left != 0 {
		t.Fatalf("recovery codes left after DeleteUserFactors: %d", left)
	}

	// Factors go with their user.
	must(t, st.CreateFactor(bg, &storage.Factor{ID: "f4", UserID: "u2", Type: storage.FactorTOTP, Secret: []byte("s")}))
	must(t, st.ReplaceRecoveryCodes(bg, "u2", [][]byte{{1}}, now()))
	must(t, st.HardDeleteUser(bg, &storage.UserArchive{UserID: "u2", Reason: "test"}))
	_, err = st.GetFactor(bg, "u2", "f4")
	wantErr(t, "Get(after user deleted)", err, storage.ErrNotFound)
}

func testTOTPReplay(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	must(t, st.CreateFactor(bg, &storage.Factor{ID: "f1", UserID: "u1", Type: storage.FactorTOTP, Secret: []byte("s")}))
	must(t, st.UseTOTPStep(bg, "u1", "f1", 100, now()))
	wantErr(t, "same step", st.UseTOTPStep(bg, "u1", "f1", 100, now()), storage.ErrReplay)
	wantErr(t, "older step", st.UseTOTPStep(bg, "u1", "f1", 99, now()), storage.ErrReplay)
	wantErr(t, "missing factor", st.UseTOTPStep(bg, "u1", "nope", 200, now()), storage.ErrNotFound)
	f, err := st.GetFactor(bg, "u1", "f1")
	must(t, err)
	if f.LastStep == nil || *f.LastStep != 100 || f.LastUsedAt == nil {
		t.Fatalf("after use: %+v", f)
	}

	// Eight requests with one code: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, replays := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := st.UseTOTPStep(context.Background(), "u1", "f1", 101, now())
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, storage.ErrReplay):
				replays++
			default:
				t.Errorf("concurrent use: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || replays != 7 {
		t.Fatalf("concurrent use of one step: %d accepted, %d refused; want 1 and 7", wins, replays)
	}
}

func testRecoveryCodes(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	must(t, st.ReplaceRecoveryCodes(bg, "u1", [][]byte{{1}, {2}, {3}}, now()))
	must(t, st.ConsumeRecoveryCode(bg, "u1", []byte{2}, now()))
	wantErr(t, "used twice", st.ConsumeRecoveryCode(bg, "u1", []byte{2}, now()), storage.ErrNotFound)
	wantErr(t, "unknown", st.ConsumeRecoveryCode(bg, "u1", []byte{7}, now()), storage.ErrNotFound)
	if n, err := st.CountRecoveryCodes(bg, "u1"); err != nil || n != 2 {
		t.Fatalf("Count = %d, %v; want 2", n, err)
	}
	// Regenerating kills the old ones.
	must(t, st.ReplaceRecoveryCodes(bg, "u1", [][]byte{{4}, {5}}, now()))
	wantErr(t, "old code after regenerate", st.ConsumeRecoveryCode(bg, "u1", []byte{1}, now()), storage.ErrNotFound)
	must(t, st.ConsumeRecoveryCode(bg, "u1", []byte{4}, now()))
	if n, _ := st.CountRecoveryCodes(bg, "u1"); n != 1 {
		t.Fatalf("Count after regenerate and one use = %d, want 1", n)
	}
}
