package storagetest

import (
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
)

func testIdentities(t *testing.T, st storage.Store) {
	mkUser(t, st, "u1")
	mkUser(t, st, "u2")
	id := &storage.Identity{UpstreamID: "google", Subject: "1234", UserID: "u1", Email: "u1@example.com"}
	must(t, st.CreateIdentity(bg, id))
	wantErr(t, "CreateIdentity(duplicate)", st.CreateIdentity(bg, &storage.Identity{UpstreamID: "google", Subject: "1234", UserID: "u2"}), storage.ErrDuplicate)
	wantErr(t, "CreateIdentity(unknown user)", st.CreateIdentity(bg, &storage.Identity{UpstreamID: "google", Subject: "9", UserID: "nope"}), storage.ErrNotFound)
	// The same subject at another upstream is another identity.
	must(t, st.CreateIdentity(bg, &storage.Identity{UpstreamID: "corp", Subject: "1234", UserID: "u1"}))

	got, err := st.GetIdentity(bg, "google", "1234")
	must(t, err)
	if got.UserID != "u1" || got.Email != "u1@example.com" || got.CreatedAt.IsZero() {
		t.Fatalf("GetIdentity = %+v", got)
	}
	_, err = st.GetIdentity(bg, "google", "nope")
	wantErr(t, "GetIdentity(missing)", err, storage.ErrNotFound)

	later := now().Add(time.Minute)
	must(t, st.TouchIdentity(bg, "google", "1234", later))
	got, err = st.GetIdentity(bg, "google", "1234")
	must(t, err)
	if !got.LastUsedAt.Equal(later) {
		t.Fatalf("LastUsedAt = %v, want %v", got.LastUsedAt, later)
	}
	wantErr(t, "TouchIdentity(missing)", st.TouchIdentity(bg, "x", "y", later), storage.ErrNotFound)

	list, err := st.ListUserIdentities(bg, "u1")
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("ListUserIdentities = %+v", list)
	}
	must(t, st.DeleteIdentity(bg, "corp", "1234"))
	wantErr(t, "DeleteIdentity(again)", st.DeleteIdentity(bg, "corp", "1234"), storage.ErrNotFound)

	// Identities go with a hard-deleted user.
	must(t, st.HardDeleteUser(bg, &storage.UserArchive{UserID: "u1", Reason: "test", DeletedBy: "test"}))
	_, err = st.GetIdentity(bg, "google", "1234")
	wantErr(t, "identity after hard delete", err, storage.ErrNotFound)
}
