// Package ratelimit is an in-memory, per-key rate limiter for the credential
// endpoints (sign-in, registration, resend-verification, forgot-password,
// password reset), keyed by strings such as "login:ip:203.0.113.9" or
// "login:acct:alice".
//
// State is per process: with N replicas behind a load balancer the effective
// limit is up to N times the configured one. That is acceptable for throttling
// floods; account lockout, which must hold across replicas, is kept in the
// database, not here.
package ratelimit

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
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

// DefaultMaxKeys is the default bound on the number of keys a Limiter tracks.
const DefaultMaxKeys = 100_000

// Option configures a Limiter.
type Option func(*Limiter)

// WithNow sets the clock (for tests). The default is time.Now.
func WithNow(now func() time.Time) Option {
	return func(l *Limiter) { l.now = now }
}

// WithMaxKeys bounds the number of keys tracked (default DefaultMaxKeys).
// When full, the least recently used key is forgotten, which resets its
// budget; keys whose budget has fully refilled carry no state and are
// dropped first. n < 1 means 1.
func WithMaxKeys(n int) Option {
	return func(l *Limiter) { l.maxKeys = max(n, 1) }
}

// Limiter limits events per key. It is safe for concurrent use.
//
// It implements GCRA (the generic cell rate algorithm, the token bucket
// expressed as a "theoretical arrival time") directly rather than keeping a
// golang.org/x/time/rate.Limiter per key: GCRA needs a single int64 per key
// (rate.Limiter carries its own mutex and several fields), so a flood of
// distinct IPs costs little memory and all state sits under one lock together
// with the LRU bookkeeping; it is exact with an injected clock; and it keeps
// x/time out of the module's dependencies. A single mutex is enough: the
// critical section is a map lookup and a few integer operations.
type Limiter struct {
	limit    Limit
	interval int64 // nanoseconds between tokens: Per/Count
	window   int64 // burst tolerance: interval*Count
	now      func() time.Time
	maxKeys  int
	epoch    time.Time // TATs are nanoseconds since epoch (monotonic when now is time.Now)

	mu   sync.Mutex
	keys map[string]*entry
	lru  entry // sentinel of a circular list: lru.next is most, lru.prev least recently used
}

// entry is one key's state. tat is its theoretical arrival time: the bucket
// is full whenever tat <= now, and holds (window-(tat-now))/interval tokens
// otherwise.
type entry struct {
	key        string
	tat        int64
	prev, next *entry
}

// New returns a Limiter enforcing l per key. It panics if l.Count > 0 and
// l.Per/l.Count is not a positive duration (ParseLimit never returns such a
// Limit).
func New(l Limit, opts ...Option) *Limiter {
	lim := &Limiter{limit: l, now: time.Now, maxKeys: DefaultMaxKeys}
	for _, o := range opts {
		o(lim)
	}
	if !l.Unlimited() {
		iv := int64(l.Per) / int64(l.Count)
		if iv <= 0 {
			panic(fmt.Sprintf("ratelimit: invalid limit %d/%v", l.Count, l.Per))
		}
		lim.interval = iv
		lim.window = iv * int64(l.Count)
	}
	lim.epoch = lim.now()
	lim.keys = make(map[string]*entry)
	lim.lru.next, lim.lru.prev = &lim.lru, &lim.lru
	return lim
}

// Limit returns the limit l enforces.
func (l *Limiter) Limit() Limit { return l.limit }

// Allow consumes one token of key's budget and returns ok if one was
// available. Otherwise nothing is consumed and retryAfter is how long until a
// token is available, rounded up to whole seconds and at least 1s (for a
// Retry-After header). An unlimited Limiter always allows.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l.limit.Unlimited() {
		return true, 0
	}
	now := int64(l.now().Sub(l.epoch))

	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	tat := now
	if e != nil && e.tat > now {
		tat = e.tat
	}
	newTAT := tat + l.interval
	if wait := newTAT - now - l.window; wait > 0 {
		l.touch(e)
		return false, roundUpSeconds(time.Duration(wait))
	}
	if e == nil {
		e = l.insert(key, now)
	} else {
		l.touch(e)
	}
	e.tat = newTAT
	return true, 0
}

// Reset forgets key, restoring its full budget (e.g. clear the per-account
// counter after a successful sign-in).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.keys[key]; e != nil {
		l.remove(e)
	}
}

// Len returns the number of keys currently tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

func roundUpSeconds(d time.Duration) time.Duration {
	if d <= time.Second {
		return time.Second
	}
	return (d + time.Second - 1) / time.Second * time.Second
}

// insert adds key as most recently used, first making room: keys at the LRU
// end whose buckets are full again are dropped (they carry no state), and if
// the map is still at maxKeys the least recently used key is evicted.
// l.mu must be held.
func (l *Limiter) insert(key string, now int64) *entry {
	for i := 0; i < 2; i++ {
		if last := l.lru.prev; last != &l.lru && last.tat <= now {
			l.remove(last)
		}
	}
	for len(l.keys) >= l.maxKeys {
		l.remove(l.lru.prev)
	}
	e := &entry{key: key}
	l.keys[key] = e
	l.pushFront(e)
	return e
}

// touch marks e (if any) as most recently used. l.mu must be held.
func (l *Limiter) touch(e *entry) {
	if e == nil || l.lru.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	l.pushFront(e)
}

func (l *Limiter) pushFront(e *entry) {
	e.prev, e.next = &l.lru, l.lru.next
	l.lru.next.prev = e
	l.lru.next = e
}

func (l *Limiter) remove(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	delete(l.keys, e.key)
}
