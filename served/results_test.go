package served

import (
	"crypto/sha256"
	"testing"
)

// TestResultCacheBound: the cache keeps at most twice half entries, drops
// the oldest, and keeps an old entry that is used again.
func TestResultCacheBound(t *testing.T) {
	c := &ResultCache{half: 2}
	key := func(i byte) [sha256.Size]byte { return [sha256.Size]byte{i} }
	for i := range byte(10) {
		c.Put(key(i), []uint8{i})
		if n := len(c.cur) + len(c.old); n > 4 {
			t.Fatalf("%d entries after %d puts, at most 4 allowed", n, i+1)
		}
	}
	if v, ok := c.Get(key(9)); !ok || v[0] != 9 {
		t.Fatalf("the newest entry is gone: %v %v", v, ok)
	}
	if _, ok := c.Get(key(0)); ok {
		t.Fatal("the oldest entry is still there")
	}
	// An entry of the old generation found by get survives the next turn.
	c = &ResultCache{half: 2}
	c.Put(key(1), []uint8{1})
	c.Put(key(2), []uint8{2})
	c.Put(key(3), []uint8{3}) // 1 and 2 are now old
	if _, ok := c.Get(key(1)); !ok {
		t.Fatal("entry 1 lost too early")
	}
	c.Put(key(4), []uint8{4}) // turns: 3 and 1 are old, 2 dropped
	if _, ok := c.Get(key(1)); !ok {
		t.Fatal("entry 1, used again, was dropped")
	}
	if _, ok := c.Get(key(2)); ok {
		t.Fatal("entry 2, never used again, is still there")
	}
	if got := newResultCache(1000).half; got != resultCacheBytes/1000/2 {
		t.Fatalf("half for 1000 features = %d", got)
	}
	if got := newResultCache(10).half; got != resultCacheEntries/2 {
		t.Fatalf("half for 10 features = %d", got)
	}
}
