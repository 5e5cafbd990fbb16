package httpapi

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"testing"
)

// TestIdentityResultCache: an identity asked for again with the same traits
// gets its answer from the result cache, byte for byte the answer of an
// evaluation, and a change of traits is evaluated anew.
func TestIdentityResultCache(t *testing.T) {
	f := newFSFixture(t, "")
	ask := func(beta bool) []byte {
		t.Helper()
		code, body, _ := f.do(http.MethodPost, "/api/v1/identities/", prodKey, map[string]any{
			"identifier": "cache-user@example.com",
			"traits":     []map[string]any{{"trait_key": "beta_tester", "trait_value": beta}},
		})
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		return body
	}
	es := f.srv.current.Load().byClient[prodKey]
	entries := func() int {
		es.results.mu.Lock()
		defer es.results.mu.Unlock()
		return len(es.results.cur) + len(es.results.old)
	}
	first := ask(false)
	if n := entries(); n != 1 {
		t.Fatalf("%d cached results after one identity, want 1", n)
	}
	if again := ask(false); !bytes.Equal(again, first) {
		t.Fatalf("cached answer differs from the evaluated one:\n%s\n%s", again, first)
	}
	beta := ask(true)
	if bytes.Equal(beta, first) {
		t.Fatal("changing beta_tester did not change the answer: a stale result was served")
	}
	if got := f.identify(prodKey, map[string]any{"identifier": "cache-user@example.com"}).flag("beta_features_banner"); got == nil || !got.Enabled {
		t.Fatalf("beta_features_banner for a beta tester (stored trait) = %+v, want enabled", got)
	}
	if back := ask(false); !bytes.Equal(back, first) {
		t.Fatalf("answer after setting the trait back differs:\n%s\n%s", back, first)
	}
	// A new revision starts with an empty cache.
	if err := f.srv.Publish(f.srv.Snapshot()); err != nil {
		t.Fatal(err)
	}
	if n := len(f.srv.current.Load().byClient[prodKey].results.cur); n != 0 {
		t.Fatalf("new state has %d cached results", n)
	}
}

func TestResultCacheBound(t *testing.T) {
	c := &resultCache{half: 2}
	key := func(i byte) [sha256.Size]byte { return [sha256.Size]byte{i} }
	for i := range byte(10) {
		c.put(key(i), []uint8{i})
		if n := len(c.cur) + len(c.old); n > 4 {
			t.Fatalf("%d entries after %d puts, at most 4 allowed", n, i+1)
		}
	}
	if v, ok := c.get(key(9)); !ok || v[0] != 9 {
		t.Fatalf("the newest entry is gone: %v %v", v, ok)
	}
	if _, ok := c.get(key(0)); ok {
		t.Fatal("the oldest entry is still there")
	}
	// An entry of the old generation found by get survives the next turn.
	c = &resultCache{half: 2}
	c.put(key(1), []uint8{1})
	c.put(key(2), []uint8{2})
	c.put(key(3), []uint8{3}) // 1 and 2 are now old
	if _, ok := c.get(key(1)); !ok {
		t.Fatal("entry 1 lost too early")
	}
	c.put(key(4), []uint8{4}) // turns: 3 and 1 are old, 2 dropped
	if _, ok := c.get(key(1)); !ok {
		t.Fatal("entry 1, used again, was dropped")
	}
	if _, ok := c.get(key(2)); ok {
		t.Fatal("entry 2, never used again, is still there")
	}
	if got := newResultCache(1000).half; got != resultCacheBytes/1000/2 {
		t.Fatalf("half for 1000 features = %d", got)
	}
	if got := newResultCache(10).half; got != resultCacheEntries/2 {
		t.Fatalf("half for 10 features = %d", got)
	}
}

// TestResultKeyUnambiguous: identifiers and trait keys may hold any
// character, so no identifier can pose as another identity with traits.
func TestResultKeyUnambiguous(t *testing.T) {
	scratch := new(identifyBuffers)
	a, ok1 := resultKey(scratch, "u\x00plan\x00\"pro\"", nil, nil)
	b, ok2 := resultKey(scratch, "u", []string{"plan"}, map[string]any{"plan": "pro"})
	c, ok3 := resultKey(scratch, "u", []string{"plan"}, map[string]any{"plan": "pro"})
	if !ok1 || !ok2 || !ok3 {
		t.Fatal("keys not made")
	}
	if a == b {
		t.Fatal("an identifier with the traits' encoding in it has the key of the identity with those traits")
	}
	if b != c {
		t.Fatal("the same identity and traits give different keys")
	}
	d, _ := resultKey(scratch, "ab", []string{"c"}, map[string]any{"c": 1})
	e, _ := resultKey(scratch, "a", []string{"bc"}, map[string]any{"bc": 1})
	if d == e {
		t.Fatal("moving characters between identifier and key keeps the key")
	}
}
