package tokens

import (
	"sync"
	"time"
)

// Limits configure a Limiter. A zero field takes its value from
// DefaultLimits.
type Limits struct {
	// Failures is how many failed attempts (a wrong token) a client may make
	// in a row; FailureWindow is how long a client takes to earn them all
	// back, at an even rate (10 per minute: one every 6 seconds).
	Failures      int
	FailureWindow time.Duration
	// WritesPerSecond is the sustained rate of writes a token may make, and
	// WriteBurst how many it may make at once after a pause.
	WritesPerSecond float64
	WriteBurst      int
	// MaxEntries bounds each table (clients with failures, tokens with
	// writes). Entries that are back to a full allowance are dropped first;
	// if that is not enough, arbitrary ones.
	MaxEntries int
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// DefaultLimits are the limits of the admin API.
var DefaultLimits = Limits{
	Failures:        10,
	FailureWindow:   time.Minute,
	WritesPerSecond: 10,
	WriteBurst:      50,
	MaxEntries:      10000,
}

// Limiter rate-limits failed attempts per client and writes per token with
// token buckets. Its memory is bounded by Limits.MaxEntries; it starts no
// goroutine. It is safe for concurrent use.
type Limiter struct {
	limits   Limits
	mu       sync.Mutex
	failures map[string]*bucket
	writes   map[[32]byte]*bucket
}

// NewLimiter returns a Limiter with limits.
func NewLimiter(limits Limits) *Limiter {
	d := DefaultLimits
	if limits.Failures <= 0 {
		limits.Failures = d.Failures
	}
	if limits.FailureWindow <= 0 {
		limits.FailureWindow = d.FailureWindow
	}
	if limits.WritesPerSecond <= 0 {
		limits.WritesPerSecond = d.WritesPerSecond
	}
	if limits.WriteBurst <= 0 {
		limits.WriteBurst = d.WriteBurst
	}
	if limits.MaxEntries <= 0 {
		limits.MaxEntries = d.MaxEntries
	}
	if limits.Now == nil {
		limits.Now = time.Now
	}
	return &Limiter{limits: limits, failures: map[string]*bucket{}, writes: map[[32]byte]*bucket{}}
}

// Blocked returns how long client must wait before its next attempt, or 0
// when it may try now. It takes nothing from the client's allowance (see
// Failed).
func (l *Limiter) Blocked(client string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.failures[client]
	if b == nil {
		return 0
	}
	return b.wait(l.limits.Now(), l.failureInterval(), l.limits.Failures)
}

// Failed counts one failed attempt by client.
func (l *Limiter) Failed(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	take(l.failures, client, l.limits.Now(), l.failureInterval(), l.limits.Failures, l.limits.MaxEntries)
}

// Write takes one write from t's allowance and returns 0, or, when the
// allowance is used up, takes nothing and returns how long to wait. The
// allowance is the token's (its hash), so it survives reloads of its file;
// Tokens not made by this package share one.
func (l *Limiter) Write(t *Token) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	interval := time.Duration(float64(time.Second) / l.limits.WritesPerSecond)
	return take(l.writes, t.sum, l.limits.Now(), interval, l.limits.WriteBurst, l.limits.MaxEntries)
}

// failureInterval is the time to earn back one failure.
func (l *Limiter) failureInterval() time.Duration {
	return l.limits.FailureWindow / time.Duration(l.limits.Failures)
}

// bucket is a token bucket of burst allowances, one earned back every
// interval, kept as the time at which it is full again (the generic cell
// rate algorithm): exact, in integer time.
type bucket struct {
	full time.Time
}

// wait returns how long until the bucket holds one allowance (0: now).
func (b *bucket) wait(now time.Time, interval time.Duration, burst int) time.Duration {
	// Empty by full-now; one allowance is left while that is at most
	// (burst-1) intervals.
	return max(0, b.full.Sub(now)-time.Duration(burst-1)*interval)
}

// take takes one allowance from key's bucket in m (a new bucket is full),
// or takes nothing and returns how long to wait for one. m holds at most
// limit entries.
func take[K comparable](m map[K]*bucket, key K, now time.Time, interval time.Duration, burst, limit int) time.Duration {
	b := m[key]
	if b == nil {
		if len(m) >= limit {
			evict(m, now, limit)
		}
		b = &bucket{full: now}
		m[key] = b
	}
	if w := b.wait(now, interval, burst); w > 0 {
		return w
	}
	if b.full.Before(now) {
		b.full = now
	}
	b.full = b.full.Add(interval)
	return 0
}

// evict drops the buckets that are full again (they mean the same as no
// bucket) and, if m still holds three quarters of limit or more, arbitrary
// ones until it does not, so that the next eviction is limit/4 insertions away.
func evict[K comparable](m map[K]*bucket, now time.Time, limit int) {
	for k, b := range m {
		if !b.full.After(now) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < limit*3/4 {
			break
		}
		delete(m, k)
	}
}
