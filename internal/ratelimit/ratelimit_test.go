package ratelimit_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/ratelimit"
	"github.com/latchkey/latchkey/internal/testdb"
)

// The GCRA itself is in the store and covered by the storage conformance
// suite on both backends; these tests cover what the Limiter adds on a real
// SQLite store: Limit to interval and window, rounding for Retry-After,
// unlimited, reset, rejections, and failing closed.

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestAllow(t *testing.T) {
	store := testdb.OpenStore(t, testdb.SQLite(t))
	type step struct {
		advance   time.Duration
		wantOK    bool
		wantRetry time.Duration
	}
	tests := []struct {
		name  string
		limit ratelimit.Limit
		steps []step
	}{
		{"retryAfter rounds up to whole seconds, at least 1s", ratelimit.Limit{Count: 3, Per: time.Minute}, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0},
			{0, false, 20 * time.Second},
			{5 * time.Second, false, 15 * time.Second},
			{14*time.Second + 500*time.Millisecond, false, time.Second}, // 0.5s left rounds up
			{499 * time.Millisecond, false, time.Second},                // 1ms left: at least 1s
			{time.Millisecond, true, 0},
		}},
		{"uneven division never allows more than Count", ratelimit.Limit{Count: 7, Per: time.Hour}, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0},
			{0, false, 515 * time.Second}, // 3600/7 = 514.28s
		}},
		{"unlimited", ratelimit.Limit{}, []step{{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, true, 0}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: time.Unix(1_800_000_000, 0)}
			rejected := 0
			lim := ratelimit.New(store, tt.limit, ratelimit.WithNow(clk.Now), ratelimit.WithOnReject(func() { rejected++ }))
			want := 0
			for j, s := range tt.steps {
				clk.Advance(s.advance)
				ok, retry, err := lim.Allow(context.Background(), fmt.Sprint("k", i))
				if err != nil || ok != s.wantOK || retry != s.wantRetry {
					t.Errorf("step %d: +%v Allow = %v, %v, %v; want %v, %v", j, s.advance, ok, retry, err, s.wantOK, s.wantRetry)
				}
				if !s.wantOK {
					want++
				}
			}
			if rejected != want {
				t.Errorf("%d rejections counted, want %d", rejected, want)
			}
		})
	}
}

func TestReset(t *testing.T) {
	ctx := context.Background()
	lim := ratelimit.New(testdb.OpenStore(t, testdb.SQLite(t)), ratelimit.Limit{Count: 1, Per: time.Hour})
	if ok, _, err := lim.Allow(ctx, "login:alice"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, retry, _ := lim.Allow(ctx, "login:alice"); ok || retry < 59*time.Minute {
		t.Fatalf("second Allow = %v, %v", ok, retry)
	}
	if err := lim.Reset(ctx, "login:alice"); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := lim.Allow(ctx, "login:alice"); !ok || err != nil {
		t.Fatalf("after Reset: %v %v", ok, err)
	}
}

// TestFailsClosed: when the store cannot answer, Allow says no and returns
// the error, so that an outage never turns the limit off.
func TestFailsClosed(t *testing.T) {
	store := testdb.OpenStore(t, testdb.SQLite(t))
	lim := ratelimit.New(store, ratelimit.Limit{Count: 10, Per: time.Minute})
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	ok, _, err := lim.Allow(context.Background(), "k")
	if ok || err == nil || !strings.HasPrefix(err.Error(), "ratelimit: ") {
		t.Fatalf("Allow on a closed store = %v, %v; want a refusal and an error", ok, err)
	}
	if err := lim.Reset(context.Background(), "k"); err == nil {
		t.Fatal("Reset on a closed store succeeded")
	}
	// Unlimited needs no store at all.
	if ok, _, err := ratelimit.New(store, ratelimit.Limit{}).Allow(context.Background(), "k"); !ok || err != nil {
		t.Fatal(ok, err)
	}
}

func TestNewPanicsOnInvalidLimit(t *testing.T) {
	for _, l := range []ratelimit.Limit{{Count: 1, Per: 0}, {Count: 10, Per: -time.Second}, {Count: 10, Per: 5}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", l)
				}
			}()
			ratelimit.New(nil, l)
		}()
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    ratelimit.Limit
		wantStr string
		wantErr string
	}{
		{in: "10/1m", want: ratelimit.Limit{10, time.Minute}, wantStr: "10/1m"},
		{in: "5/15m", want: ratelimit.Limit{5, 15 * time.Minute}, wantStr: "5/15m"},
		{in: "100/1h", want: ratelimit.Limit{100, time.Hour}, wantStr: "100/1h"},
		{in: "3/30s", want: ratelimit.Limit{3, 30 * time.Second}, wantStr: "3/30s"},
		{in: "20/24h", want: ratelimit.Limit{20, 24 * time.Hour}, wantStr: "20/24h"},
		{in: "1/1h30m", want: ratelimit.Limit{1, 90 * time.Minute}, wantStr: "1/90m"},
		{in: "2/1500ms", want: ratelimit.Limit{2, 1500 * time.Millisecond}, wantStr: "2/1.5s"},
		{in: "10/m", want: ratelimit.Limit{10, time.Minute}, wantStr: "10/1m"},
		{in: " 10 / 1m ", want: ratelimit.Limit{10, time.Minute}, wantStr: "10/1m"},
		{in: "0", want: ratelimit.Limit{}, wantStr: "off"},
		{in: "off", want: ratelimit.Limit{}, wantStr: "off"},
		{in: "OFF", want: ratelimit.Limit{}, wantStr: "off"},
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
			got, err := ratelimit.ParseLimit(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ratelimit.ParseLimit(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ratelimit.ParseLimit(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if s := got.String(); s != tt.wantStr {
				t.Errorf("String() = %q, want %q", s, tt.wantStr)
			}
			if back, err := ratelimit.ParseLimit(got.String()); err != nil || back != got {
				t.Errorf("round trip of %q: %v, %v", got.String(), back, err)
			}
		})
	}
}
