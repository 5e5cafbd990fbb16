package flagdiff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/identities"
)

// testIdentities returns n identities with traits the template's segments
// read.
func testIdentities(n int) []Identity {
	rng := rand.New(rand.NewPCG(7, 9))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	out := make([]Identity, n)
	for i := range out {
		out[i] = Identity{
			Identifier: fmt.Sprintf("user%d@%s", i, pick("example.com", "acme.example", "mail.example")),
			Traits: map[string]any{
				"beta_tester":      pick("true", "false"),
				"plan":             pick("free", "premium", "enterprise"),
				"country":          pick("DE", "FR", "US", "JP"),
				"platform":         pick("ios", "android", "web"),
				"app_version":      pick("3.1.0", "3.2.0", "4.0.1", "2.9.9"),
				"user_id":          json.Number(fmt.Sprint(rng.IntN(1000))),
				"account_age_days": json.Number(fmt.Sprint(rng.IntN(60))),
				"signup_source":    pick("ads", "organic"),
				"email":            fmt.Sprintf("u%d%s@example.com", i, pick("", "+test")),
				"lifetime_value":   json.Number(fmt.Sprint(rng.IntN(5000))),
				"weekly_sessions":  json.Number(fmt.Sprint(rng.IntN(20))),
			},
		}
	}
	return out
}

// directCounts evaluates every feature of every environment in both
// snapshots, each compiled on its own, and counts the identities whose
// flag (enabled, value) differs, by environment and feature.
func directCounts(t *testing.T, base, head *flagrepo.Snapshot, people []Identity) (counts map[string]map[string]int, results map[string]map[string]map[string][2]FlagResult) {
	t.Helper()
	bm, err := evaluator.CompileSnapshot(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	hm, err := evaluator.CompileSnapshot(head, nil)
	if err != nil {
		t.Fatal(err)
	}
	counts = map[string]map[string]int{}
	results = map[string]map[string]map[string][2]FlagResult{}
	for env, b := range bm {
		h := hm[env]
		if h == nil {
			continue
		}
		counts[env] = map[string]int{}
		results[env] = map[string]map[string][2]FlagResult{}
		for _, p := range people {
			id := &evaluator.Identity{Identifier: p.Identifier, Traits: p.Traits}
			hf := map[string]evaluator.Flag{}
			for _, f := range h.Evaluate(id).Flags {
				hf[f.Name] = f
			}
			for _, f := range b.Evaluate(id).Flags {
				g, ok := hf[f.Name]
				if !ok {
					continue
				}
				if f.Enabled != g.Enabled || f.Value != g.Value {
					counts[env][f.Name]++
					if results[env][f.Name] == nil {
						results[env][f.Name] = map[string][2]FlagResult{}
					}
					results[env][f.Name][p.Identifier] = [2]FlagResult{{f.Enabled, f.Value}, {g.Enabled, g.Value}}
				}
			}
		}
	}
	return counts, results
}

// TestIdentitiesMatchDirectEvaluation: --identities counts, per environment
// and feature, equal those of evaluating every flag of both sides for every
// identity; the examples are real.
func TestIdentitiesMatchDirectEvaluation(t *testing.T) {
	r := newFlagRepo(t)
	r.edit("environments/staging/features/dark_mode.json", func(d map[string]any) {
		d["segment_overrides"] = append(d["segment_overrides"].([]any), map[string]any{"segment": "gradual_rollout_10pct", "priority": 2, "enabled": true})
	})
	r.commit("a percentage split in staging")
	r.branch("change")
	// A segment's rules (features using it only through it are gated by
	// the segment's probe), a split, a value, a state, an identity
	// override, a percentage split, and a client key (every feature of
	// staging re-evaluated).
	r.edit("segments/beta_users.json", func(d map[string]any) {
		rule := d["rules"].([]any)[0].(map[string]any)
		rule["conditions"] = append(rule["conditions"].([]any), map[string]any{"property": "plan", "operator": "IN", "value": "enterprise"})
	})
	r.edit("segments/gradual_rollout_10pct.json", func(d map[string]any) {
		d["rules"].([]any)[0].(map[string]any)["conditions"].([]any)[0].(map[string]any)["value"] = "35"
	})
	r.edit("environments/production/features/recommendations_algorithm.json", func(d map[string]any) {
		d["weights"] = map[string]any{"collaborative": 0, "content_based": 10, "hybrid": 25}
	})
	r.edit("environments/production/features/new_checkout.json", func(d map[string]any) {
		d["value"] = "one-page"
		d["identity_overrides"].([]any)[0].(map[string]any)["identifiers"] = []any{"user1@example.com", "user2@acme.example"}
	})
	r.edit("environments/development/features/dark_mode.json", func(d map[string]any) { d["enabled"] = false })
	r.edit("environments/staging/environment.json", func(d map[string]any) { d["client_key"] = "stg_RotatedKey12345678" })
	r.commit("many changes")

	people := testIdentities(3000)
	rep := r.compare("main", "change", Options{Identities: &IdentitySet{Source: "test", All: people}, Examples: 2})
	if !rep.Valid() || rep.Identities == nil {
		t.Fatalf("valid %v identities %v", rep.Valid(), rep.Identities)
	}

	repo, err := gitstore.Open(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	base, err := repo.Snapshot("main", nil)
	if err != nil {
		t.Fatal(err)
	}
	head, err := repo.Snapshot("change", nil)
	if err != nil {
		t.Fatal(err)
	}
	want, results := directCounts(t, base, head, people)

	got := map[string]map[string]int{}
	for _, e := range rep.Identities.Environments {
		if e.Identities != len(people) {
			t.Errorf("%s: %d identities evaluated, want %d", e.Environment, e.Identities, len(people))
		}
		got[e.Environment] = map[string]int{}
		for _, f := range e.Features {
			if f.Changed > 0 {
				got[e.Environment][f.Feature] = f.Changed
			}
			if len(f.Examples) != min(f.Changed, 2) {
				t.Errorf("%s %s: %d examples of %d", e.Environment, f.Feature, len(f.Examples), f.Changed)
			}
			for _, x := range f.Examples {
				if w, ok := results[e.Environment][f.Feature][x.Identifier]; !ok || w[0] != x.Before || w[1] != x.After {
					t.Errorf("%s %s example %s: %v -> %v, direct evaluation %v", e.Environment, f.Feature, x.Identifier, x.Before, x.After, w)
				}
			}
		}
	}
	for env, fs := range want {
		for f, n := range fs {
			if n == 0 {
				delete(fs, f)
			}
		}
		if len(fs) == 0 {
			delete(want, env)
		}
	}
	for env, fs := range got {
		if len(fs) == 0 {
			delete(got, env)
		}
	}
	if !maps.EqualFunc(got, want, maps.Equal) {
		t.Errorf("identities changing per environment and feature:\n got  %v\n want %v", got, want)
	}
	// The changes exercised every path: a segment-gated feature, a split,
	// the re-evaluation of a whole environment.
	for _, k := range []struct{ env, feature string }{{"production", "beta_features_banner"}, {"production", "recommendations_algorithm"}, {"production", "new_checkout"}, {"development", "dark_mode"}} {
		if want[k.env][k.feature] == 0 {
			t.Errorf("no identity changes %s in %s: the test does not test it", k.feature, k.env)
		}
	}
	// staging's new client key re-draws a percentage split on the identity
	// key (dark_mode: gradual_rollout_10pct, through its probe) and
	// re-buckets a split (new_checkout, evaluated for everyone).
	if want["staging"]["dark_mode"] == 0 || want["staging"]["new_checkout"] == 0 {
		t.Errorf("the new client key of staging changes %v: the test does not test it", want["staging"])
	}

	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), fmt.Sprintf("| production | `recommendations_algorithm` | %d of 3000 (", want["production"]["recommendations_algorithm"])) {
		t.Errorf("Markdown identities table:\n%s", md.String())
	}
}

// TestReadIdentities: the file format and its errors.
func TestReadIdentities(t *testing.T) {
	in := `{"identifier": "alice", "traits": {"plan": "premium", "age": 42, "beta": true, "x": null}}

{"identifier": "bob", "traits": [{"trait_key": "plan", "trait_value": "free"}]}
{"identifier": "carol"}
`
	ids, err := ReadIdentities(strings.NewReader(in), "ids.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[0].Traits["age"] != json.Number("42") || ids[0].Traits["beta"] != true || ids[1].Traits["plan"] != "free" || ids[2].Traits != nil {
		t.Errorf("%+v", ids)
	}
	for in, want := range map[string]string{
		`{"identifier": "a"}` + "\n" + `{"identifer": "b"}`: `ids.jsonl:2: not an identity object`,
		`{"traits": {}}`: `ids.jsonl:1: missing "identifier"`,
		`{"identifier": "a"}` + "\n" + `{"identifier": "a"}`: `ids.jsonl:2: identifier "a" is already on line 1`,
		`{"identifier": "a", "traits": {"t": [1]}}`:          `ids.jsonl:1: trait "t": a trait value is a string, number, boolean or null`,
		`{"identifier": "a", "traits": "plan"}`:              `ids.jsonl:1: "traits" must be an object`,
		`{"identifier": "a"} {"identifier": "b"}`:            `ids.jsonl:1: more than one JSON value on the line`,
		`[1, 2]`: `ids.jsonl:1: not an identity object`,
	} {
		if _, err := ReadIdentities(strings.NewReader(in), "ids.jsonl"); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v, want %s...", in, err, want)
		}
	}
}

// TestSampleStore: identities from the server's store, per environment id;
// a store held by another process is refused, saying so.
func TestSampleStore(t *testing.T) {
	r := newFlagRepo(t)
	r.branch("change")
	r.edit("environments/production/features/dark_mode.json", func(d map[string]any) { d["enabled"] = true })
	r.commit("dark mode on")

	path := filepath.Join(t.TempDir(), "identities.db")
	store, err := identities.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var changes []identities.Change
	for i := range 100 {
		changes = append(changes, identities.Change{Identifier: fmt.Sprintf("id%03d", i), Traits: []identities.Trait{{Key: "plan", Value: "free"}, {Key: "n", Value: int64(i)}}})
	}
	ctx := context.Background()
	if err := store.UpdateMany(ctx, "3", changes); err != nil { // production's id
		t.Fatal(err)
	}
	if err := store.UpdateMany(ctx, "1", changes[:5]); err != nil {
		t.Fatal(err)
	}

	// The server holds the lock.
	start := time.Now()
	if _, _, err := SampleStore(path, 10); !errors.Is(err, ErrStoreLocked) || !strings.Contains(err.Error(), "a running 'gitflags serve' keeps it open") {
		t.Errorf("store held by another process: %v", err)
	}
	if d := time.Since(start); d < StoreTimeout/2 {
		t.Errorf("gave up after %s", d)
	}
	store.Close()

	set, closeStore, err := SampleStore(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	rep := r.compare("main", "change", Options{Identities: set})
	if len(rep.Identities.Environments) != 1 {
		t.Fatalf("%+v", rep.Identities)
	}
	e := rep.Identities.Environments[0]
	if e.Environment != "production" || e.Identities != 10 || len(e.Features) != 1 || e.Features[0].Feature != "dark_mode" {
		t.Errorf("%+v", e)
	}
	prod, err := set.ByEnvironment(&flagrepo.Environment{ID: 3})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range prod {
		names = append(names, p.Identifier)
		if p.Traits["plan"] != "free" {
			t.Errorf("%s: traits %v", p.Identifier, p.Traits)
		}
	}
	if !slices.Equal(names, []string{"id000", "id010", "id020", "id030", "id040", "id050", "id060", "id070", "id080", "id090"}) {
		t.Errorf("sample %v", names)
	}
	dev, _ := set.ByEnvironment(&flagrepo.Environment{ID: 1})
	none, _ := set.ByEnvironment(&flagrepo.Environment{ID: 2})
	if len(dev) != 5 || len(none) != 0 {
		t.Errorf("development %d, staging %d identities", len(dev), len(none))
	}
	if _, _, err := SampleStore(filepath.Join(t.TempDir(), "missing.db"), 10); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing store: %v", err)
	}
}
