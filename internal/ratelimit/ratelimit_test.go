package ratelimit

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// step is one call in a scripted scenario: advance the clock, then Allow(key).
type step struct {
	advance   time.Duration
	key       string
	wantOK    bool
	wantRetry time.Duration
}

func runSteps(t *testing.T, lim *Limiter, clk *fakeClock, steps []step) {
	t.Helper()
	for i, s := range steps {
		clk.Advance(s.advance)
		ok, retry := lim.Allow(s.key)
		if ok != s.wantOK || retry != s.wantRetry {
			t.Errorf("step %d: +%v Allow(%q) = %v, %v; want %v, %v",
				i, s.advance, s.key, ok, retry, s.wantOK, s.wantRetry)
		}
	}
}

func TestAllow(t *testing.T) {
	tests := []struct {
		name  string
		limit Limit
		steps []step
	}{
		{
			name:  "burst then refusal",
			limit: Limit{Count: 3, Per: time.Minute}, // one token every 20s
			steps: []step{
				{0, "k", true, 0},
				{0, "k", true, 0},
				{0, "k", true, 0},
				{0, "k", false, 20 * time.Second},
				{0, "k", false, 20 * time.Second}, // refusals consume nothing
				{5 * time.Second, "k", false, 15 * time.Second},
				{14*time.Second + 500*time.Millisecond, "k", false, time.Second}, // 0.5s left rounds up
				{499 * time.Millisecond, "k", false, time.Second},                // 1ms left: at least 1s
				{time.Millisecond, "k", true, 0},                                 // exactly one token refilled
				{0, "k", false, 20 * time.Second},
			},
		},
		{
			name:  "retryAfter rounds up to whole seconds",
			limit: Limit{Count: 2, Per: 5 * time.Second}, // one token every 2.5s
			steps: []step{
				{0, "k", true, 0},
				{0, "k", true, 0},
				{0, "k", false, 3 * time.Second},
				{time.Second, "k", false, 2 * time.Second},
				{1500 * time.Millisecond, "k", true, 0},
			},
		},
		{
			name:  "refill over time",
			limit: Limit{Count: 5, Per: 15 * time.Minute}, // one token every 3m
			steps: []step{
				{0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0},
				{0, "k", false, 3 * time.Minute},
				{3 * time.Minute, "k", true, 0}, // one token back
				{0, "k", false, 3 * time.Minute},
				{6 * time.Minute, "k", true, 0}, // two tokens back
				{0, "k", true, 0},
				{0, "k", false, 3 * time.Minute},
				{time.Hour, "k", true, 0}, // refills to the burst, not beyond
				{0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0},
				{0, "k", false, 3 * time.Minute},
			},
		},
		{
			name:  "steady rate at exactly Count/Per is allowed",
			limit: Limit{Count: 2, Per: time.Second},
			steps: []step{
				{0, "k", true, 0}, {0, "k", true, 0},
				{500 * time.Millisecond, "k", true, 0},
				{500 * time.Millisecond, "k", true, 0},
				{500 * time.Millisecond, "k", true, 0},
				{0, "k", false, time.Second},
			},
		},
		{
			name:  "keys are independent",
			limit: Limit{Count: 1, Per: time.Hour},
			steps: []step{
				{0, "login:ip:203.0.113.9", true, 0},
				{0, "login:ip:203.0.113.9", false, time.Hour},
				{0, "login:ip:203.0.113.10", true, 0},
				{0, "login:acct:alice", true, 0},
				{0, "login:acct:alice", false, time.Hour},
				{0, "login:acct:bob", true, 0},
				{30 * time.Minute, "login:ip:203.0.113.9", false, 30 * time.Minute},
				{0, "login:ip:198.51.100.1", true, 0},
			},
		},
		{
			name:  "uneven division of Per by Count never allows more than Count",
			limit: Limit{Count: 7, Per: time.Hour},
			steps: []step{
				{0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0},
				{0, "k", true, 0}, {0, "k", true, 0}, {0, "k", true, 0},
				{0, "k", false, 515 * time.Second}, // 3600/7 = 514.28s
			},
		},
		{
			name:  "unlimited",
			limit: Limit{},
			steps: func() []step {
				var s []step
				for range 1000 {
					s = append(s, step{0, "k", true, 0})
				}
				return s
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			lim := New(tt.limit, WithNow(clk.Now))
			runSteps(t, lim, clk, tt.steps)
		})
	}
}

func TestUnlimitedKeepsNoState(t *testing.T) {
	lim := New(Limit{})
	for i := range 100 {
		if ok, retry := lim.Allow(fmt.Sprint("k", i)); !ok || retry != 0 {
			t.Fatalf("unlimited Allow = %v, %v", ok, retry)
		}
	}
	if n := lim.Len(); n != 0 {
		t.Errorf("unlimited limiter tracks %d keys", n)
	}
}

func TestReset(t *testing.T) {
	clk := newFakeClock()
	lim := New(Limit{Count: 2, Per: time.Hour}, WithNow(clk.Now))
	runSteps(t, lim, clk, []step{
		{0, "login:acct:alice", true, 0},
		{0, "login:acct:alice", true, 0},
		{0, "login:acct:alice", false, 30 * time.Minute},
		{0, "login:acct:bob", true, 0},
		{0, "login:acct:bob", true, 0},
	})
	lim.Reset("login:acct:alice")
	lim.Reset("login:acct:nobody") // no-op
	runSteps(t, lim, clk, []step{
		{0, "login:acct:alice", true, 0},
		{0, "login:acct:alice", true, 0},
		{0, "login:acct:alice", false, 30 * time.Minute},
		{0, "login:acct:bob", false, 30 * time.Minute}, // untouched
	})
}

func TestMaxKeys(t *testing.T) {
	const maxKeys = 100
	clk := newFakeClock()
	lim := New(Limit{Count: 1, Per: time.Hour}, WithNow(clk.Now), WithMaxKeys(maxKeys))

	// A flood of 10x distinct keys, each exhausted: the bound holds throughout.
	for i := range 10 * maxKeys {
		key := fmt.Sprintf("login:ip:10.0.%d.%d", i/256, i%256)
		if ok, _ := lim.Allow(key); !ok {
			t.Fatalf("first Allow(%q) refused", key)
		}
		if ok, _ := lim.Allow(key); ok {
			t.Fatalf("second Allow(%q) allowed", key)
		}
		if n := lim.Len(); n > maxKeys {
			t.Fatalf("after %d keys, Len = %d > %d", i+1, n, maxKeys)
		}
		if n := len(lim.keys); n != lim.listLen() {
			t.Fatalf("map has %d keys, LRU list %d", n, lim.listLen())
		}
	}
	if n := lim.Len(); n != maxKeys {
		t.Errorf("Len = %d, want %d", n, maxKeys)
	}

	// Least recently used keys are evicted first: a key used throughout the
	// flood keeps its state.
	lim = New(Limit{Count: 1, Per: time.Hour}, WithNow(clk.Now), WithMaxKeys(maxKeys))
	lim.Allow("hot")
	for i := range 10 * maxKeys {
		lim.Allow(fmt.Sprint("cold", i))
		if ok, _ := lim.Allow("hot"); ok {
			t.Fatalf("hot key lost its state after %d cold keys", i+1)
		}
	}

	// Keys whose budget has refilled are dropped as new keys arrive.
	lim = New(Limit{Count: 1, Per: time.Minute}, WithNow(clk.Now), WithMaxKeys(maxKeys))
	for i := range maxKeys / 2 {
		lim.Allow(fmt.Sprint("old", i))
	}
	clk.Advance(time.Minute)
	for i := range maxKeys / 2 {
		lim.Allow(fmt.Sprint("new", i))
	}
	if n := lim.Len(); n != maxKeys/2 {
		t.Errorf("after refill and %d new keys, Len = %d, want %d", maxKeys/2, n, maxKeys/2)
	}
}

func (l *Limiter) listLen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for e := l.lru.next; e != &l.lru; e = e.next {
		n++
	}
	return n
}

func TestConcurrentAllow(t *testing.T) {
	const (
		count      = 50
		keys       = 8
		goroutines = 16
		perG       = 200
	)
	clk := newFakeClock() // frozen: exactly count allowed per key
	lim := New(Limit{Count: count, Per: time.Hour}, WithNow(clk.Now), WithMaxKeys(keys))
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				k := (g + i) % keys
				if ok, _ := lim.Allow(fmt.Sprint("k", k)); ok {
					allowed[k].Add(1)
				}
				if i%50 == 0 {
					lim.Len()
				}
			}
		})
	}
	wg.Wait()
	for k := range allowed {
		if got := allowed[k].Load(); got != count {
			t.Errorf("key %d: %d allowed, want %d", k, got, count)
		}
	}

	// Mixed workload with a moving clock, evictions and resets, for -race.
	lim = New(Limit{Count: 5, Per: time.Second}, WithNow(clk.Now), WithMaxKeys(20))
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				key := fmt.Sprint("k", (g*perG+i)%64)
				lim.Allow(key)
				switch i % 20 {
				case 0:
					lim.Reset(key)
				case 1:
					clk.Advance(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if n := lim.Len(); n > 20 {
		t.Errorf("Len = %d > 20", n)
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    Limit
		wantStr string
		wantErr string
	}{
		{in: "10/1m", want: Limit{10, time.Minute}, wantStr: "10/1m"},
		{in: "5/15m", want: Limit{5, 15 * time.Minute}, wantStr: "5/15m"},
		{in: "100/1h", want: Limit{100, time.Hour}, wantStr: "100/1h"},
		{in: "3/30s", want: Limit{3, 30 * time.Second}, wantStr: "3/30s"},
		{in: "20/24h", want: Limit{20, 24 * time.Hour}, wantStr: "20/24h"},
		{in: "1/1h30m", want: Limit{1, 90 * time.Minute}, wantStr: "1/90m"},
		{in: "2/1500ms", want: Limit{2, 1500 * time.Millisecond}, wantStr: "2/1.5s"},
		{in: "10/m", want: Limit{10, time.Minute}, wantStr: "10/1m"},
		{in: " 10 / 1m ", want: Limit{10, time.Minute}, wantStr: "10/1m"},
		{in: "0", want: Limit{}, wantStr: "off"},
		{in: "off", want: Limit{}, wantStr: "off"},
		{in: "OFF", want: Limit{}, wantStr: "off"},
		{in: "", wantErr: "want COUNT/DURATION"},
		{in: "10", wantErr: "want COUNT/DURATION"},
		{in: "on", wantErr: "want COUNT/DURATION"},
		{in: "/1m", wantErr: "invalid count"},
		{in: "ten/1m", wantErr: "invalid count"},
		{in: "1.5/1m", wantErr: "invalid count"},
		{in: "-1/1m", wantErr: "invalid count"},
		{in: "0/1m", wantErr: "use 0 or off"},
		{in: "10/", wantErr: "invalid duration"},
		{in: "10/1", wantErr: "invalid duration"},
		{in: "10/fortnight", wantErr: "invalid duration"},
		{in: "10/1m/2", wantErr: "invalid duration"},
		{in: "10/0s", wantErr: "must be positive"},
		{in: "10/-1m", wantErr: "must be positive"},
		{in: "10/5ns", wantErr: "more than one event per nanosecond"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLimit(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseLimit(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseLimit(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if s := got.String(); s != tt.wantStr {
				t.Errorf("String() = %q, want %q", s, tt.wantStr)
			}
			if back, err := ParseLimit(got.String()); err != nil || back != got {
				t.Errorf("round trip of %q: %v, %v", got.String(), back, err)
			}
		})
	}
}

func TestNewPanicsOnInvalidLimit(t *testing.T) {
	for _, l := range []Limit{{Count: 1, Per: 0}, {Count: 10, Per: -time.Second}, {Count: 10, Per: 5}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", l)
				}
			}()
			New(l)
		}()
	}
}

func TestRealClock(t *testing.T) {
	lim := New(Limit{Count: 2, Per: time.Hour})
	lim.Allow("k")
	lim.Allow("k")
	ok, retry := lim.Allow("k")
	if ok || retry < 29*time.Minute || retry > 30*time.Minute || retry%time.Second != 0 {
		t.Errorf("third Allow = %v, %v; want refusal with ~30m", ok, retry)
	}
}

func BenchmarkAllow(b *testing.B) {
	lim := New(Limit{Count: 10, Per: time.Minute})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("login:ip:192.0.2.", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		lim.Allow(keys[i%len(keys)])
		i++
	}
}
