package served

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/gitflags/gitflags/changes"
	"github.com/gitflags/gitflags/flagrepo"
)

// envWant is what a step changes in one environment: the features whose
// answers may differ there and the segments whose rules changed there.
type envWant struct{ features, segments []string }

// checkChanges checks st.Changes() against want, by environment (an
// environment absent from want must be absent from the changes).
func checkChanges(t *testing.T, step string, st *State, want map[string]envWant) {
	t.Helper()
	set := st.Changes()
	if set == nil {
		t.Fatalf("%s: no changes reported", step)
	}
	if got, w := slices.Sorted(maps.Keys(set.Environments)), slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) {
		t.Errorf("%s: changed environments %v, want %v", step, got, w)
	}
	for key, w := range want {
		e := set.Environments[key]
		if e == nil {
			continue
		}
		if got := slices.Sorted(maps.Keys(e.Features)); !slices.Equal(got, w.features) {
			t.Errorf("%s: %s: changed features %v, want %v", step, key, got, w.features)
		}
		if !slices.Equal(e.Segments, w.segments) {
			t.Errorf("%s: %s: changed segments %v, want %v", step, key, e.Segments, w.segments)
		}
	}
}

// digests returns the digest of every environment of st.
func digests(st *State) map[string][sha256.Size]byte {
	out := map[string][sha256.Size]byte{}
	for key, e := range st.Envs() {
		out[key] = e.Digest()
	}
	return out
}

// TestChanges builds successive states of edited repositories and checks
// what each says changed, per environment: the features whose state
// changed, and for a segment whose rules changed, the segment and every
// feature whose overrides use it there (and nothing where none does).
func TestChanges(t *testing.T) {
	r := readTemplate(t)
	b := &builder{t: t}
	st := b.build(r)
	if st.Changes() != nil {
		t.Fatalf("the first state reports changes: %+v", st.Changes())
	}

	// The same files at a new revision: nothing changed, nothing re-encoded.
	before := digests(st)
	st = b.build(r)
	if set := st.Changes(); set == nil || !set.Empty() {
		t.Fatalf("an unchanged revision: changes %+v, want none", set)
	}
	for key, e := range st.Envs() {
		if e.Encoded() != 0 || e.Digest() != before[key] {
			t.Errorf("unchanged %s: %d features encoded again, digest changed: %t", key, e.Encoded(), e.Digest() != before[key])
		}
	}

	// One feature's state in production.
	before = digests(st)
	r.Edit(t, "environments/production/features/max_cart_items.json", func(d map[string]any) { d["value"] = 75 })
	st = b.build(r)
	checkChanges(t, "production state", st, map[string]envWant{"production": {features: []string{"max_cart_items"}}})
	for key, e := range st.Envs() {
		changed, encoded := key == "production", 0
		if changed {
			encoded = 1
		}
		if (e.Digest() != before[key]) != changed || e.Encoded() != encoded {
			t.Errorf("production state: %s: digest changed %t, %d features encoded again", key, e.Digest() != before[key], e.Encoded())
		}
	}

	// A segment's rules: every feature overriding it changed, in each
	// environment where one does; the others did not change.
	before = digests(st)
	r.Edit(t, "segments/internal_staff.json", func(d map[string]any) {
		d["rules"] = []any{map[string]any{"type": "ALL", "conditions": []any{
			map[string]any{"property": "email", "operator": "CONTAINS", "value": "@acme.example"}}}}
	})
	st = b.build(r)
	checkChanges(t, "segment rules", st, map[string]envWant{
		"production": {features: []string{"ai_assistant", "api_rate_limit"}, segments: []string{"internal_staff"}},
		"staging":    {features: []string{"ai_assistant", "new_checkout"}, segments: []string{"internal_staff"}},
	})
	if set := st.Changes(); set.Segments["internal_staff"] != changes.Modified || len(set.Segments) != 1 {
		t.Errorf("segment rules: segment documents changed %v", set.Segments)
	}
	// The pieces of the features do not depend on segment rules: none is
	// encoded again; the segment's piece of the document is, which changes
	// every environment's document (it lists every segment).
	for key, e := range st.Envs() {
		if e.Encoded() != 0 || e.Digest() == before[key] {
			t.Errorf("segment rules: %s: %d features encoded again, digest changed: %t", key, e.Encoded(), e.Digest() != before[key])
		}
	}

	// A segment's description only: the document changed, no evaluation.
	r.Edit(t, "segments/internal_staff.json", func(d map[string]any) { d["description"] = "changed" })
	st = b.build(r)
	checkChanges(t, "segment description", st, map[string]envWant{})
	if set := st.Changes(); set.Segments["internal_staff"] != changes.Modified {
		t.Errorf("segment description: segment documents changed %v", set.Segments)
	}

	// A segment override added in staging: that feature, and the segment is
	// not reported (its rules did not change).
	r.Edit(t, "environments/staging/features/dark_mode.json", func(d map[string]any) {
		d["segment_overrides"] = append(d["segment_overrides"].([]any), map[string]any{"segment": "beta_users", "priority": 2, "enabled": false})
	})
	st = b.build(r)
	checkChanges(t, "segment override added", st, map[string]envWant{"staging": {features: []string{"dark_mode"}}})
	if n := st.Env("staging").Encoded(); n != 1 {
		t.Errorf("segment override added: %d features of staging encoded again, want 1", n)
	}

	// A feature document's description: no state changed anywhere, but the
	// feature is re-encoded everywhere (its flag objects carry it).
	r.Edit(t, "features/dark_mode.json", func(d map[string]any) { d["description"] = "changed" })
	st = b.build(r)
	checkChanges(t, "feature description", st, map[string]envWant{})
	if st.Changes().Features["dark_mode"] != changes.Modified {
		t.Errorf("feature description: feature documents changed %v", st.Changes().Features)
	}
	for key, e := range st.Envs() {
		if e.Encoded() != 1 {
			t.Errorf("feature description: %d features of %s encoded again, want 1", e.Encoded(), key)
		}
	}

	// An environment renamed: every feature may evaluate differently there.
	r.Edit(t, "environments/development/environment.json", func(d map[string]any) { d["name"] = "Dev" })
	st = b.build(r)
	if e := st.Changes().Environments["development"]; e == nil || !e.ReevaluateAll() || !slices.Contains(e.Settings, "name") || len(st.Changes().Environments) != 1 {
		t.Errorf("environment renamed: changes %+v", st.Changes().Environments)
	}

	// An environment removed.
	for p := range r {
		if len(p) > len("environments/staging/") && p[:len("environments/staging/")] == "environments/staging/" {
			delete(r, p)
		}
	}
	st = b.build(r)
	if e := st.Changes().Environments["staging"]; e == nil || e.Kind != changes.Removed || st.Env("staging") != nil {
		t.Errorf("environment removed: changes %+v, environment %v", st.Changes().Environments, st.Env("staging"))
	}
}

// TestLookup resolves client keys and server keys.
func TestLookup(t *testing.T) {
	const serverKey = "ser.test_production_0123456789"
	sum := sha256.Sum256([]byte(serverKey))
	r := readTemplate(t)
	r.Edit(t, "environments/production/environment.json", func(d map[string]any) {
		d["server_keys"] = []any{map[string]any{"name": "test", "sha256": hex.EncodeToString(sum[:])}}
	})
	st := (&builder{t: t}).build(r)
	prod := st.Env("production")
	clientKey := prod.Environment().ClientKey
	for _, c := range []struct {
		key    string
		want   *Env
		server bool
	}{
		{clientKey, prod, false},
		{serverKey, prod, true},
		{"ser.unknown", nil, true},
		{"unknown", nil, false},
		{"", nil, false},
	} {
		if e, server := st.Lookup(c.key); e != c.want || server != c.server {
			t.Errorf("Lookup(%q) = %v, %t; want %v, %t", c.key, e, server, c.want, c.server)
		}
	}
	if st.ByClientKey(clientKey) != prod || st.ByServerKeyHash(hex.EncodeToString(sum[:])) != prod {
		t.Error("ByClientKey or ByServerKeyHash do not find production")
	}
}

// TestUpdatedGrows: updated_at is the commit time, made to grow when a
// commit is dated earlier than the one served before, and kept when the
// same commit is built again.
func TestUpdatedGrows(t *testing.T) {
	files := readTemplate(t).Files()
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	build := func(sha string, when time.Time, prev *State) *State {
		t.Helper()
		snap, err := flagrepo.Load(flagrepo.Revision{SHA: sha, Time: when}, files, nil)
		if err != nil {
			t.Fatal(err)
		}
		st, err := Build(snap, prev)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	first := build("a", at, nil)
	if !first.Updated().Equal(at) {
		t.Errorf("first: updated_at %v, want the commit time %v", first.Updated(), at)
	}
	earlier := build("b", at.Add(-time.Hour), first)
	if !earlier.Updated().After(first.Updated()) {
		t.Errorf("an earlier commit: updated_at %v, not after %v", earlier.Updated(), first.Updated())
	}
	if again := build("b", at.Add(-time.Hour), earlier); !again.Updated().Equal(earlier.Updated()) {
		t.Errorf("the same commit again: updated_at %v, want %v", again.Updated(), earlier.Updated())
	}
	if tree := build("", at.Add(-time.Hour), earlier); !tree.Updated().After(earlier.Updated()) {
		t.Errorf("a working tree (no commit): updated_at %v, not after %v", tree.Updated(), earlier.Updated())
	}
}
