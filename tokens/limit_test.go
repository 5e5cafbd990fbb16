package tokens

import (
	"fmt"
	"testing"
	"time"
)

func TestFailureLimit(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := NewLimiter(Limits{Now: clock.Now}) // 10 failures, one earned back every 6 s
	for i := range 10 {
		if w := l.Blocked("10.0.0.1"); w != 0 {
			t.Fatalf("blocked after %d failures (%s)", i, w)
		}
		l.Failed("10.0.0.1")
	}
	if w := l.Blocked("10.0.0.1"); w != 6*time.Second {
		t.Fatalf("after 10 failures: wait %s, want 6s", w)
	}
	if w := l.Blocked("10.0.0.2"); w != 0 {
		t.Fatalf("another client blocked: %s", w)
	}
	clock.Add(4 * time.Second)
	if w := l.Blocked("10.0.0.1"); w != 2*time.Second {
		t.Fatalf("4 s later: wait %s, want 2s", w)
	}
	clock.Add(2 * time.Second)
	if w := l.Blocked("10.0.0.1"); w != 0 {
		t.Fatalf("6 s later: wait %s, want 0", w)
	}
	l.Failed("10.0.0.1")
	if w := l.Blocked("10.0.0.1"); w != 6*time.Second {
		t.Fatalf("one more failure: wait %s, want 6s", w)
	}
	clock.Add(time.Hour)
	for range 10 {
		l.Failed("10.0.0.1")
	}
	if w := l.Blocked("10.0.0.1"); w == 0 {
		t.Fatal("a full allowance again after an hour, not more")
	}
}

func TestWriteLimit(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := NewLimiter(Limits{WritesPerSecond: 2, WriteBurst: 3, Now: clock.Now})
	a, b := Admin("a").tokens[0], Admin("b").tokens[0] // same name, other tokens
	for i := range 3 {
		if w := l.Write(a); w != 0 {
			t.Fatalf("write %d refused (%s)", i, w)
		}
	}
	if w := l.Write(a); w != 500*time.Millisecond {
		t.Fatalf("4th write: wait %s, want 500ms", w)
	}
	if w := l.Write(b); w != 0 {
		t.Fatalf("another token limited: %s", w)
	}
	clock.Add(500 * time.Millisecond)
	if w := l.Write(a); w != 0 {
		t.Fatalf("after 500ms: wait %s", w)
	}
	if w := l.Write(a); w == 0 {
		t.Fatal("a refused write took no allowance, yet the next passes")
	}
}

// TestLimiterBoundedMemory: the tables never hold more than MaxEntries;
// full buckets are dropped before busy ones.
func TestLimiterBoundedMemory(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := NewLimiter(Limits{Failures: 2, MaxEntries: 100, Now: clock.Now})
	l.Failed("attacker")
	l.Failed("attacker")
	for i := range 1000 {
		l.Failed(fmt.Sprintf("client-%d", i))
		clock.Add(time.Minute) // every earlier client is back to a full allowance
		l.Failed("attacker")   // ... but the attacker keeps failing
		l.Failed("attacker")
		if n := len(l.failures); n > 100 {
			t.Fatalf("%d entries, max 100", n)
		}
	}
	if l.Blocked("attacker") == 0 {
		t.Error("the busy entry was evicted, not the full ones")
	}
	// With no full bucket to drop, arbitrary ones go: still bounded.
	for i := range 1000 {
		l.Failed(fmt.Sprintf("flood-%d", i))
		l.Failed(fmt.Sprintf("flood-%d", i))
		if n := len(l.failures); n > 100 {
			t.Fatalf("%d entries, max 100", n)
		}
	}
	for i := range 1000 {
		l.Write(Admin(fmt.Sprint(i)).tokens[0])
		if n := len(l.writes); n > 100 {
			t.Fatalf("%d write entries, max 100", n)
		}
	}
}
