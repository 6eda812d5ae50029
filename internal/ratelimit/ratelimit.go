// Package ratelimit is the per-key rate limit of the credential endpoints
// (sign-in, registration, resend-verification, forgot-password, password
// reset), keyed by strings such as "login:ip:203.0.113.9" or
// "login:acct:alice".
//
// The state lives in the database (storage.RateLimits: one GCRA upsert per
// check), so a limit of N per period holds for every replica together, not
// N per process. Only credential and email endpoints are limited, so the
// token path pays nothing. When the store cannot answer, Allow returns the
// error and callers refuse the attempt (fail closed, 503): an outage must
// not switch the limit off.
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limit allows Count events per Per, in bursts of up to Count: a token bucket
// of capacity Count refilled at Count/Per. Count 0 means unlimited.
type Limit struct {
	Count int
	Per   time.Duration
}

// Unlimited reports whether l imposes no limit.
func (l Limit) Unlimited() bool { return l.Count <= 0 }

// ParseLimit parses "COUNT/DURATION" such as "10/1m", "5/15m" or "100/1h"
// (DURATION as for time.ParseDuration; a bare unit such as "10/m" means one of
// that unit). "0" or "off" means unlimited.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "0" || strings.EqualFold(s, "off") {
		return Limit{}, nil
	}
	cs, ps, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("ratelimit: invalid limit %q: want COUNT/DURATION (e.g. 10/1m), 0 or off", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(cs))
	if err != nil || n < 0 {
		return Limit{}, fmt.Errorf("ratelimit: invalid count in limit %q: want a positive integer", s)
	}
	if n == 0 {
		return Limit{}, fmt.Errorf("ratelimit: invalid limit %q: count is 0; use 0 or off to disable the limit", s)
	}
	ps = strings.TrimSpace(ps)
	per, err := time.ParseDuration(ps)
	if err != nil && ps != "" && (ps[0] < '0' || ps[0] > '9') {
		per, err = time.ParseDuration("1" + ps) // "10/m", "10/h"
	}
	if err != nil {
		return Limit{}, fmt.Errorf("ratelimit: invalid duration in limit %q: %v", s, err)
	}
	if per <= 0 {
		return Limit{}, fmt.Errorf("ratelimit: invalid limit %q: duration must be positive", s)
	}
	if per/time.Duration(n) <= 0 {
		return Limit{}, fmt.Errorf("ratelimit: invalid limit %q: more than one event per nanosecond", s)
	}
	return Limit{Count: n, Per: per}, nil
}

// String formats l as ParseLimit accepts it: "off", or e.g. "10/1m".
func (l Limit) String() string {
	if l.Unlimited() {
		return "off"
	}
	var per string
	switch d := l.Per; {
	case d%time.Hour == 0:
		per = strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		per = strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		per = strconv.FormatInt(int64(d/time.Second), 10) + "s"
	default:
		per = d.String()
	}
	return strconv.Itoa(l.Count) + "/" + per
}

// Store keeps the limits' state; storage/sqlstore implements it for
// PostgreSQL and SQLite.
type Store interface {
	TakeRate(ctx context.Context, key string, now time.Time, interval, window time.Duration) (ok bool, wait time.Duration, err error)
	ResetRate(ctx context.Context, key string) error
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithNow sets the clock (for tests). The default is time.Now.
func WithNow(now func() time.Time) Option {
	return func(l *Limiter) { l.now = now }
}

// WithOnReject calls f for every refused event (a metric).
func WithOnReject(f func()) Option {
	return func(l *Limiter) { l.onReject = f }
}

// Limiter limits events per key with GCRA (the generic cell rate
// algorithm: a token bucket of Count tokens refilled one every Per/Count,
// expressed as one "theoretical arrival time" per key). It is safe for
// concurrent use, within and across processes sharing the store.
type Limiter struct {
	store    Store
	limit    Limit
	interval time.Duration // between tokens: Per/Count
	window   time.Duration // burst tolerance: interval*Count
	now      func() time.Time
	onReject func()
}

// New returns a Limiter enforcing l per key in store. It panics if
// l.Count > 0 and l.Per/l.Count is not a positive duration (ParseLimit
// never returns such a Limit).
func New(store Store, l Limit, opts ...Option) *Limiter {
	lim := &Limiter{store: store, limit: l, now: time.Now}
	for _, o := range opts {
		o(lim)
	}
	if !l.Unlimited() {
		iv := l.Per / time.Duration(l.Count)
		if iv <= 0 {
			panic(fmt.Sprintf("ratelimit: invalid limit %d/%v", l.Count, l.Per))
		}
		// window is a whole number of intervals, so that an uneven
		// division never allows more than Count in a burst.
		lim.interval, lim.window = iv, iv*time.Duration(l.Count)
	}
	return lim
}

// Limit returns the limit l enforces.
func (l *Limiter) Limit() Limit { return l.limit }

// Allow consumes one event of key's budget and reports whether one was
// available. Otherwise nothing is consumed and retryAfter is how long until
// one is, rounded up to whole seconds and at least 1s (for a Retry-After
// header). An unlimited Limiter always allows without a statement. An error
// means the store could not decide; the caller must refuse.
func (l *Limiter) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	if l.limit.Unlimited() {
		return true, 0, nil
	}
	ok, wait, err := l.store.TakeRate(ctx, key, l.now(), l.interval, l.window)
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: %w", err)
	}
	if ok {
		return true, 0, nil
	}
	if l.onReject != nil {
		l.onReject()
	}
	return false, roundUpSeconds(wait), nil
}

// Reset forgets key, restoring its full budget (e.g. clear the per-account
// counter after a successful sign-in).
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if l.limit.Unlimited() {
		return nil
	}
	if err := l.store.ResetRate(ctx, key); err != nil {
		return fmt.Errorf("ratelimit: %w", err)
	}
	return nil
}

func roundUpSeconds(d time.Duration) time.Duration {
	if d <= time.Second {
		return time.Second
	}
	return (d + time.Second - 1) / time.Second * time.Second
}
