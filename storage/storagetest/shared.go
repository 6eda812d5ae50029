package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
)

// sharedTests cover the state every replica shares: rate limits, the mail
// outbox and job locks.
var sharedTests = []struct {
	name string
	fn   func(t *testing.T, st storage.Store)
}{
	{"RateLimitGCRA", testRateLimitGCRA},
	{"RateLimitConcurrent", testRateLimitConcurrent},
	{"RateLimitResetAndPrune", testRateLimitResetAndPrune},
	{"MailOutbox", testMailOutbox},
	{"MailOutboxTransactions", testMailOutboxTransactions},
	{"MailOutboxConcurrentClaims", testMailOutboxConcurrentClaims},
	{"TryExclusive", testTryExclusive},
	{"Reseal", testReseal},
}

// rate is a limit of count events per per, as interval and window.
func rate(count int, per time.Duration) (interval, window time.Duration) {
	iv := per / time.Duration(count)
	return iv, iv * time.Duration(count)
}

func testRateLimitGCRA(t *testing.T, st storage.Store) {
	type step struct {
		advance time.Duration
		key     string
		wantOK  bool
		// wantWait is exact: the store reports nanoseconds.
		wantWait time.Duration
	}
	tests := []struct {
		name  string
		count int
		per   time.Duration
		steps []step
	}{
		{"burst then refusal", 3, time.Minute, []step{ // a token every 20s
			{0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0},
			{0, "k", false, 20 * time.Second},
			{0, "k", false, 20 * time.Second}, // refusals consume nothing
			{5 * time.Second, "k", false, 15 * time.Second},
			{14*time.Second + 999*time.Millisecond, "k", false, time.Millisecond},
			{time.Millisecond, "k", true, 0}, // exactly one token refilled
			{0, "k", false, 20 * time.Second},
		}},
		{"refill over time, never beyond the burst", 5, 15 * time.Minute, []step{ // a token every 3m
			{0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0},
			{0, "k", false, 3 * time.Minute},
			{3 * time.Minute, "k", true, 0},
			{0, "k", false, 3 * time.Minute},
			{6 * time.Minute, "k", true, 0}, {0, "k", true, 0},
			{0, "k", false, 3 * time.Minute},
			{time.Hour, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0},
			{0, "k", false, 3 * time.Minute},
		}},
		{"steady rate at exactly count/per", 2, time.Second, []step{
			{0, "k", true, 0}, {0, "k", true, 0},
			{500 * time.Millisecond, "k", true, 0},
			{500 * time.Millisecond, "k", true, 0},
			{0, "k", false, 500 * time.Millisecond},
		}},
		{"keys are independent", 1, time.Hour, []step{
			{0, "login:ip:203.0.113.9", true, 0},
			{0, "login:ip:203.0.113.9", false, time.Hour},
			{0, "login:ip:203.0.113.10", true, 0},
			{0, "login:acct:alice", true, 0},
			{30 * time.Minute, "login:ip:203.0.113.9", false, 30 * time.Minute},
		}},
		{"uneven division never allows more than count", 7, time.Hour, []step{
			{0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0},
			{0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0},
			{0, "k", false, time.Hour / 7},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := time.Unix(1_800_000_000, 0).Add(time.Duration(i) * 24 * time.Hour)
			iv, win := rate(tt.count, tt.per)
			for j, s := range tt.steps {
				clock = clock.Add(s.advance)
				key := fmt.Sprintf("%d:%s", i, s.key)
				ok, wait, err := st.TakeRate(bg, key, clock, iv, win)
				must(t, err)
				if ok != s.wantOK || wait != s.wantWait {
					t.Errorf("step %d: +%v TakeRate(%q) = %v, %v; want %v, %v", j, s.advance, s.key, ok, wait, s.wantOK, s.wantWait)
				}
			}
		})
	}
}

// testRateLimitConcurrent: however many take at once, exactly count are
// allowed (the point of one atomic statement).
func testRateLimitConcurrent(t *testing.T, st storage.Store) {
	const count, workers = 10, 40
	iv, win := rate(count, time.Hour)
	at := time.Now()
	var allowed atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for {
				ok, _, err := st.TakeRate(bg, "login:ip:198.51.100.7", at, iv, win)
				if errors.Is(err, storage.ErrConflict) {
					continue // SQLite: busy; the event was not recorded
				}
				if err != nil {
					errs <- err
					return
				}
				if ok {
					allowed.Add(1)
				}
				return
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := allowed.Load(); got != count {
		t.Fatalf("%d of %d concurrent events allowed; want exactly %d", got, workers, count)
	}
}

func testRateLimitResetAndPrune(t *testing.T, st storage.Store) {
	iv, win := rate(1, time.Minute)
	at := time.Now()
	for _, k := range []string{"a", "b"} {
		if ok, _, err := st.TakeRate(bg, k, at, iv, win); err != nil || !ok {
			t.Fatalf("first %s: %v %v", k, ok, err)
		}
	}
	if ok, _, _ := st.TakeRate(bg, "a", at, iv, win); ok {
		t.Fatal("second event allowed")
	}
	must(t, st.ResetRate(bg, "a"))
	must(t, st.ResetRate(bg, "never-seen"))
	if ok, _, err := st.TakeRate(bg, "a", at, iv, win); err != nil || !ok {
		t.Fatalf("after reset: %v %v", ok, err)
	}
	// A minute on, both buckets are full again: the rows carry nothing and
	// pruning removes them, after which the keys behave as new.
	n, err := st.PruneExpired(bg, at.Add(time.Minute+time.Second), 100)
	must(t, err)
	if n < 2 {
		t.Fatalf("pruned %d rows, want at least the 2 rate-limit rows", n)
	}
	if ok, _, err := st.TakeRate(bg, "b", at.Add(time.Minute+time.Second), iv, win); err != nil || !ok {
		t.Fatalf("after prune: %v %v", ok, err)
	}
	// A bucket still draining is not pruned.
	if n, err := st.PruneExpired(bg, at.Add(time.Minute+2*time.Second), 100); err != nil || n != 0 {
		t.Fatalf("pruned %d rows (%v), want 0", n, err)
	}
}

func mkMail(id string, at time.Time) storage.OutboxMail {
	return storage.OutboxMail{ID: id, Kind: "verify_email", Recipient: id + "@example.com", Body: []byte("sealed " + id), CreatedAt: at}
}

func testMailOutbox(t *testing.T, st storage.Store) {
	at := now()
	must(t, st.EnqueueMail(bg, mkMail("m1", at)))
	must(t, st.EnqueueMail(bg, mkMail("m2", at.Add(time.Millisecond))))
	wantErr(t, "duplicate id", st.EnqueueMail(bg, mkMail("m1", at)), storage.ErrDuplicate)
	if p, f, err := st.MailOutboxCounts(bg); err != nil || p != 2 || f != 0 {
		t.Fatalf("counts = %d, %d, %v; want 2, 0", p, f, err)
	}

	got, err := st.ClaimMail(bg, at.Add(time.Second), 1, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].ID != "m1" || got[0].Attempts != 1 || string(got[0].Body) != "sealed m1" ||
		got[0].Recipient != "m1@example.com" || got[0].Kind != "verify_email" || !got[0].CreatedAt.Equal(at) {
		t.Fatalf("first claim = %+v", got)
	}
	// m1 is leased: the next claim gets m2 only, and then nothing.
	got, err = st.ClaimMail(bg, at.Add(time.Second), 10, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].ID != "m2" {
		t.Fatalf("second claim = %+v", got)
	}
	if got, err := st.ClaimMail(bg, at.Add(2*time.Second), 10, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("claim during the lease = %+v, %v", got, err)
	}
	// A worker that died: once the lease is over, m2 is due again.
	got, err = st.ClaimMail(bg, at.Add(time.Second+time.Minute), 10, time.Minute)
	must(t, err)
	if len(got) != 2 || got[1].ID != "m2" || got[1].Attempts != 2 {
		t.Fatalf("claim after the lease = %+v", got)
	}

	must(t, st.MailSent(bg, "m1"))
	must(t, st.RetryMail(bg, "m2", at.Add(5*time.Minute), "451 try later"))
	if got, _ := st.ClaimMail(bg, at.Add(4*time.Minute), 10, time.Minute); len(got) != 0 {
		t.Fatalf("claimed before the retry time: %+v", got)
	}
	got, err = st.ClaimMail(bg, at.Add(5*time.Minute), 10, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].LastError != "451 try later" || got[0].Attempts != 3 {
		t.Fatalf("claim after retry = %+v", got)
	}
	must(t, st.FailMail(bg, "m2", "550 no such user", at.Add(30*24*time.Hour)))
	wantErr(t, "retry a failed mail", st.RetryMail(bg, "m2", at, "x"), storage.ErrNotFound)
	wantErr(t, "fail a missing mail", st.FailMail(bg, "nope", "x", at), storage.ErrNotFound)
	if got, _ := st.ClaimMail(bg, at.Add(time.Hour), 10, time.Minute); len(got) != 0 {
		t.Fatalf("a failed mail was claimed: %+v", got)
	}
	if p, f, err := st.MailOutboxCounts(bg); err != nil || p != 0 || f != 1 {
		t.Fatalf("counts = %d, %d, %v; want 0, 1", p, f, err)
	}
	// The failed row is kept (without its body) until it expires.
	if _, err := st.PruneExpired(bg, at.Add(29*24*time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	if _, f, _ := st.MailOutboxCounts(bg); f != 1 {
		t.Fatal("failed mail pruned before it expired")
	}
	if _, err := st.PruneExpired(bg, at.Add(31*24*time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	if _, f, _ := st.MailOutboxCounts(bg); f != 0 {
		t.Fatal("failed mail not pruned after it expired")
	}
}

// testMailOutboxTransactions: an email is part of the change that causes
// it: rolled back with it, visible to workers only once it commits.
func testMailOutboxTransactions(t *testing.T, st storage.Store) {
	at := now()
	boom := errors.New("boom")
	err := st.InTx(bg, func(ctx context.Context) error {
		must(t, st.CreateUser(ctx, &storage.User{ID: "rolled", Username: "rolled", Status: storage.UserActive}))
		must(t, st.EnqueueMail(ctx, mkMail("rolled", at)))
		return boom
	})
	wantErr(t, "InTx", err, boom)
	if p, _, _ := st.MailOutboxCounts(bg); p != 0 {
		t.Fatal("an email of a rolled-back change is queued")
	}
	must(t, st.InTx(bg, func(ctx context.Context) error {
		return st.EnqueueMail(ctx, mkMail("kept", at))
	}))
	got, err := st.ClaimMail(bg, at, 10, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].ID != "kept" {
		t.Fatalf("claim = %+v", got)
	}
}

// testMailOutboxConcurrentClaims: workers claiming at once never take the
// same email, and together take every one.
func testMailOutboxConcurrentClaims(t *testing.T, st storage.Store) {
	at := now()
	const mails, workers = 60, 6
	for i := range mails {
		must(t, st.EnqueueMail(bg, mkMail(fmt.Sprintf("c%03d", i), at)))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range 40 {
				got, err := st.ClaimMail(bg, at, 3, time.Hour)
				if errors.Is(err, storage.ErrConflict) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, m := range got {
					seen[m.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != mails {
		t.Fatalf("%d of %d emails claimed", len(seen), mails)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s claimed %d times", id, n)
		}
	}
}

func testTryExclusive(t *testing.T, st storage.Store) {
	inside := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		ran, err := st.TryExclusive(bg, "prune", func(context.Context) error {
			close(inside)
			<-release
			return nil
		})
		if err == nil && !ran {
			err = errors.New("the first holder did not run")
		}
		done <- err
	}()
	<-inside
	ran, err := st.TryExclusive(bg, "prune", func(context.Context) error { return nil })
	must(t, err)
	if ran {
		t.Fatal("a second holder ran while the first held the lock")
	}
	ran, err = st.TryExclusive(bg, "keys", func(context.Context) error { return nil })
	if err != nil || !ran {
		t.Fatalf("another job is blocked: %v %v", ran, err)
	}
	close(release)
	must(t, <-done)
	boom := errors.New("boom")
	ran, err = st.TryExclusive(bg, "prune", func(context.Context) error { return boom })
	if !ran || !errors.Is(err, boom) {
		t.Fatalf("after release: %v %v", ran, err)
	}
	ran, err = st.TryExclusive(bg, "prune", func(context.Context) error { return nil })
	if !ran || err != nil {
		t.Fatalf("the lock was not released after an error: %v %v", ran, err)
	}
}

func testReseal(t *testing.T, st storage.Store) {
	at := now()
	for _, id := range []string{"r1", "r2", "r3"} {
		must(t, st.EnqueueMail(bg, mkMail(id, at)))
	}
	must(t, st.FailMail(bg, "r3", "gone", at.Add(time.Hour))) // no body: not passed to fn
	var seen []string
	n, err := st.Reseal(bg, storage.SealedMail, func(id string, sealed []byte) ([]byte, bool, error) {
		seen = append(seen, id)
		if string(sealed) != "sealed "+id {
			return nil, false, fmt.Errorf("row %s holds %q", id, sealed)
		}
		if id == "r2" {
			return sealed, false, nil
		}
		return []byte("resealed " + id), true, nil
	})
	must(t, err)
	if n != 1 || len(seen) != 2 {
		t.Fatalf("Reseal changed %d rows and saw %v; want 1 and [r1 r2]", n, seen)
	}
	got, err := st.ClaimMail(bg, at, 10, time.Minute)
	must(t, err)
	if len(got) != 2 || string(got[0].Body) != "resealed r1" || string(got[1].Body) != "sealed r2" {
		t.Fatalf("after Reseal: %+v", got)
	}
	// An error from fn changes nothing.
	boom := errors.New("boom")
	_, err = st.Reseal(bg, storage.SealedMail, func(id string, sealed []byte) ([]byte, bool, error) {
		if id == "r2" {
			return nil, false, boom
		}
		return []byte("again"), true, nil
	})
	wantErr(t, "failing Reseal", err, boom)
	got, err = st.ClaimMail(bg, at.Add(time.Hour), 10, time.Minute)
	must(t, err)
	if len(got) != 2 || string(got[0].Body) != "resealed r1" {
		t.Fatalf("a failed Reseal changed rows: %+v", got)
	}
	if _, err := st.Reseal(bg, "users.password_hash", nil); err == nil {
		t.Fatal("Reseal of a column that is not sealed succeeded")
	}
	for _, c := range storage.SealedColumns {
		if _, err := st.Reseal(bg, c, func(string, []byte) ([]byte, bool, error) { return nil, false, nil }); err != nil {
			t.Fatalf("Reseal(%s): %v", c, err)
		}
	}
}
