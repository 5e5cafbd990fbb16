package httpapi

import (
	"bytes"
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
	entries := f.srv.current.Load().ByClientKey(prodKey).Results().Len
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
	if n := f.srv.current.Load().ByClientKey(prodKey).Results().Len(); n != 0 {
		t.Fatalf("new state has %d cached results", n)
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
