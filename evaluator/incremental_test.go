package evaluator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen"
)

// TestIncrementalCompile applies random sequences of edits to a generated
// repository and checks, after each commit, that compiling with the
// previous models gives the same results as compiling from scratch and as
// Compile(FromSnapshot), that work is reused exactly for unchanged
// documents, and that the previous models are left as they were.
func TestIncrementalCompile(t *testing.T) {
	seeds, steps := 4, 50
	if testing.Short() || raceEnabled {
		seeds, steps = 2, 25
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			runEdits(t, uint64(seed), steps)
		})
	}
}

func runEdits(t *testing.T, seed uint64, steps int) {
	opts := repogen.Small()
	opts.Seed = seed
	opts.Features, opts.Segments = 24, 8
	opts.MultivariateEvery = 3
	opts.SegmentOverridesPerFeature = 2
	opts.IdentityOverridesPerFeature = 2
	dir := t.TempDir()
	if err := repogen.Write(dir, opts); err != nil {
		t.Fatal(err)
	}
	r := &repo{t: t, rng: rand.New(rand.NewPCG(seed, 99)), files: map[string][]byte{}, nextID: 50_000}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		r.files[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	var (
		snap   *flagrepo.Snapshot
		models map[string]*Model // incremental
		refs   map[string]*Model // Compile(FromSnapshot) of the same snapshot
		ids    []*Identity
		reused int
	)
	for step := 0; step <= steps; step++ {
		var what []string
		if step > 0 {
			for range 1 + r.rng.IntN(3) {
				what = append(what, r.edit())
			}
		}
		next, err := flagrepo.Load(flagrepo.Revision{SHA: fmt.Sprint(step)}, r.fileList(), snap)
		if err != nil {
			t.Fatalf("step %d (%s): %v", step, strings.Join(what, ", "), err)
		}
		inc, err := CompileSnapshot(next, models)
		if err != nil {
			t.Fatalf("step %d (%s): %v", step, strings.Join(what, ", "), err)
		}
		scratch, err := CompileSnapshot(next, nil)
		if err != nil {
			t.Fatal(err)
		}
		nextRefs := map[string]*Model{}
		for _, key := range next.EnvironmentKeys() {
			env, err := FromSnapshot(next, key)
			if err != nil {
				t.Fatal(err)
			}
			if nextRefs[key], err = Compile(env); err != nil {
				t.Fatal(err)
			}
		}
		ids = r.identities()
		for _, key := range next.EnvironmentKeys() {
			ctx := fmt.Sprintf("step %d (%s) environment %s", step, strings.Join(what, ", "), key)
			sameResults(t, ctx+" incremental", inc[key], nextRefs[key], ids)
			sameResults(t, ctx+" from scratch", scratch[key], nextRefs[key], ids)
			reused += checkReuse(t, ctx, models[key], inc[key])
			if models[key] != nil {
				// The previous models still give their results.
				sameResults(t, ctx+" previous model", models[key], refs[key], ids)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		snap, models, refs = next, inc, nextRefs
	}
	if reused < steps {
		t.Fatalf("%d features and segments reused in %d steps: flagrepo.Load no longer shares unchanged documents?", reused, steps)
	}
}

// sameResults checks that got evaluates as want for every identity, through
// every entry point.
func sameResults(t *testing.T, ctx string, got, want *Model, ids []*Identity) {
	t.Helper()
	if !reflect.DeepEqual(got.EnvironmentFlags(), want.EnvironmentFlags()) {
		t.Errorf("%s: environment flags differ:\n got %v\nwant %v", ctx, got.EnvironmentFlags(), want.EnvironmentFlags())
		return
	}
	if g, w := got.Evaluate(nil), want.Evaluate(nil); !reflect.DeepEqual(g, w) {
		t.Errorf("%s: evaluation without identity differs:\n got %v\nwant %v", ctx, g, w)
	}
	for _, wf := range want.EnvironmentFlags() {
		if f, ok := got.Flag(wf.Name, nil); !ok || !reflect.DeepEqual(f, wf) {
			t.Errorf("%s: Flag(%s) without identity = %v, %v; want %v", ctx, wf.Name, f, ok, wf)
		}
	}
	for _, id := range ids {
		g, w := got.Evaluate(id), want.Evaluate(id)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: identity %+v:\n got %v\nwant %v", ctx, id, g, w)
			return
		}
		if fl := got.AppendFlags(nil, id); !reflect.DeepEqual(fl, w.Flags) {
			t.Errorf("%s: AppendFlags for %+v:\n got %v\nwant %v", ctx, id, fl, w.Flags)
		}
		for _, wf := range w.Flags {
			if f, ok := got.Flag(wf.Name, id); !ok || !reflect.DeepEqual(f, wf) {
				t.Errorf("%s: Flag(%s) for %+v = %v, %v; want %v", ctx, wf.Name, id, f, ok, wf)
			}
		}
	}
	if _, ok := got.Flag("no such feature", nil); ok {
		t.Errorf("%s: Flag of an unknown feature", ctx)
	}
}

// checkReuse checks that m shares the compiled parts of prev exactly for
// the documents that did not change, and returns how many it shares.
func checkReuse(t *testing.T, ctx string, prev, m *Model) (reused int) {
	t.Helper()
	if prev == nil {
		return 0
	}
	for i, fs := range m.src.feats {
		j, ok := prev.byName[fs.f.Key]
		want := ok && prev.src.feats[j].f == fs.f && prev.src.feats[j].st == fs.st
		got := ok && sameMap(m.features[i].def.Metadata, prev.features[j].def.Metadata)
		if got != want {
			t.Errorf("%s: feature %s reused %v, want %v", ctx, fs.f.Key, got, want)
		}
		if got {
			reused++
		}
	}
	sameEnv := prev.envKey == m.envKey && prev.envName == m.envName && !prev.src.sparse
	for i, g := range m.src.shared.segments {
		j, ok := prev.src.shared.segIdx[g.Key]
		want := ok && sameEnv && prev.src.shared.segments[j] == g
		got := ok && sameMap(m.segments[i].result.Metadata, prev.segments[j].result.Metadata)
		if got != want {
			t.Errorf("%s: segment %s reused %v, want %v", ctx, g.Key, got, want)
		}
		if got {
			reused++
		}
	}
	return reused
}

func sameMap(a, b map[string]any) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// repo is a flag repository in memory, edited at random.
type repo struct {
	t      *testing.T
	rng    *rand.Rand
	files  map[string][]byte
	nextID int64
	traits int // trait names made up so far
}

func (r *repo) fileList() []flagrepo.File {
	var files []flagrepo.File
	for _, p := range slices.Sorted(maps.Keys(r.files)) {
		files = append(files, memFile(p, r.files[p]))
	}
	return files
}

func (r *repo) read(p string) map[string]any {
	d := json.NewDecoder(bytes.NewReader(r.files[p]))
	d.UseNumber()
	var doc map[string]any
	if err := d.Decode(&doc); err != nil {
		r.t.Fatalf("%s: %v", p, err)
	}
	return doc
}

func (r *repo) write(p string, doc map[string]any) {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		r.t.Fatal(err)
	}
	r.files[p] = data
}

// keys lists the keys of the files matching dir/*.json.
func (r *repo) keys(dir string) []string {
	var out []string
	for p := range r.files {
		if rest, ok := strings.CutPrefix(p, dir+"/"); ok && !strings.Contains(rest, "/") && strings.HasSuffix(rest, ".json") {
			out = append(out, strings.TrimSuffix(rest, ".json"))
		}
	}
	slices.Sort(out)
	return out
}

func (r *repo) pick(keys []string) string { return keys[r.rng.IntN(len(keys))] }

func (r *repo) envs() []string {
	var out []string
	for p := range r.files {
		if strings.HasPrefix(p, "environments/") && strings.HasSuffix(p, "/environment.json") {
			out = append(out, strings.Split(p, "/")[1])
		}
	}
	slices.Sort(out)
	return out
}

func (r *repo) value() any {
	switch r.rng.IntN(5) {
	case 0:
		return nil
	case 1:
		return r.rng.IntN(3) == 0
	case 2:
		return int64(r.rng.IntN(100))
	}
	return fmt.Sprint("v", r.rng.IntN(20))
}

// variantKeys returns the variant keys of a feature.
func (r *repo) variantKeys(feature string) []string {
	var out []string
	vs, _ := r.read("features/" + feature + ".json")["variants"].([]any)
	for _, v := range vs {
		out = append(out, v.(map[string]any)["key"].(string))
	}
	return out
}

func (r *repo) weights(keys []string) map[string]any {
	w := map[string]any{}
	left := 100
	for _, k := range keys {
		n := r.rng.IntN(left + 1)
		left -= n
		if n > 0 && r.rng.IntN(4) == 0 {
			w[k] = float64(n) - 0.5 // not integral
		} else {
			w[k] = n
		}
	}
	return w
}

var identifierPool = []string{
	"user0-0@example.com", "user0-1@example.com", "user1-0@example.com", "user1-1@example.com",
	"alice", "bob@corp3.com", "7", "007", "carol@example.com",
}

func (r *repo) condition() map[string]any {
	prop := func() string {
		switch r.rng.IntN(6) {
		case 0:
			r.traits++
			return fmt.Sprint("trait_", r.traits) // a new trait name: a new slot
		case 1:
			return fmt.Sprint("trait_", r.rng.IntN(r.traits+1))
		case 2:
			return "$.identity.traits.plan"
		}
		return []string{"plan", "country", "age", "user_id", "email"}[r.rng.IntN(5)]
	}
	switch r.rng.IntN(12) {
	case 0:
		return map[string]any{"property": "$.environment.name", "operator": "EQUAL", "value": []string{"Production", "Staging", "Renamed"}[r.rng.IntN(3)]}
	case 1:
		return map[string]any{"operator": "PERCENTAGE_SPLIT", "value": r.rng.IntN(101)}
	case 2:
		return map[string]any{"property": "$.identity.identifier", "operator": "REGEX", "value": `^.+@(example|corp[0-9])\.com$`}
	case 3:
		return map[string]any{"property": "$.identity.identifier", "operator": "IN", "value": []any{"alice", 7, "carol@example.com"}}
	case 4:
		return map[string]any{"property": prop(), "operator": "IS_SET"}
	case 5:
		return map[string]any{"property": prop(), "operator": "IS_NOT_SET"}
	case 6:
		return map[string]any{"property": "app_version", "operator": "GREATER_THAN", "value": fmt.Sprintf("%d.0.0:semver", r.rng.IntN(4))}
	case 7:
		return map[string]any{"property": prop(), "operator": "MODULO", "value": "3|1"}
	case 8:
		return map[string]any{"property": "$.environment.key", "operator": "CONTAINS", "value": "prod"}
	}
	ops := []string{"EQUAL", "NOT_EQUAL", "GREATER_THAN", "LESS_THAN_INCLUSIVE", "CONTAINS", "IN"}
	return map[string]any{"property": prop(), "operator": ops[r.rng.IntN(len(ops))], "value": fmt.Sprint(r.rng.IntN(30))}
}

func (r *repo) rules() []any {
	var conds []any
	for range 1 + r.rng.IntN(3) {
		conds = append(conds, r.condition())
	}
	top := map[string]any{"type": []string{"ALL", "ANY", "NONE"}[r.rng.IntN(3)], "conditions": conds}
	if r.rng.IntN(2) == 0 {
		top["rules"] = []any{map[string]any{"type": "ANY", "conditions": []any{r.condition(), r.condition()}}}
	}
	return []any{top}
}

// edit changes the repository at random and says how.
func (r *repo) edit() string {
	features, segments, envs := r.keys("features"), r.keys("segments"), r.envs()
	env := r.pick(envs)
	feature := r.pick(features)
	state := "environments/" + env + "/features/" + feature + ".json"
	switch r.rng.IntN(16) {
	case 0: // a feature's default
		p := "features/" + feature + ".json"
		doc := r.read(p)
		def := doc["default"].(map[string]any)
		def["enabled"] = def["enabled"] != true
		if r.rng.IntN(2) == 0 {
			def["value"] = r.value()
		}
		r.write(p, doc)
		return "default of " + feature
	case 1: // a feature's variants
		p := "features/" + feature + ".json"
		doc := r.read(p)
		vs, _ := doc["variants"].([]any)
		if len(vs) == 0 {
			doc["description"] = fmt.Sprint("edited ", r.rng.IntN(1000))
			r.write(p, doc)
			return "description of " + feature
		}
		for i, w := range r.weights(r.variantKeys(feature)) {
			for _, v := range vs {
				if v.(map[string]any)["key"] == i {
					v.(map[string]any)["weight"] = w
				}
			}
		}
		vs[r.rng.IntN(len(vs))].(map[string]any)["value"] = r.value()
		r.write(p, doc)
		return "variants of " + feature
	case 2, 3: // a feature state's own fields
		doc := map[string]any{"enabled": true}
		if _, ok := r.files[state]; ok {
			doc = r.read(state)
		}
		doc["enabled"] = r.rng.IntN(2) == 0
		switch r.rng.IntN(3) {
		case 0:
			doc["value"] = r.value()
		case 1:
			delete(doc, "value")
		}
		if keys := r.variantKeys(feature); keys != nil {
			if r.rng.IntN(2) == 0 {
				doc["weights"] = r.weights(keys)
			} else {
				delete(doc, "weights")
			}
		}
		r.write(state, doc)
		return "state of " + feature + " in " + env
	case 4: // no feature state
		delete(r.files, state)
		return "no state of " + feature + " in " + env
	case 5, 6: // segment overrides
		doc := map[string]any{"enabled": false}
		if _, ok := r.files[state]; ok {
			doc = r.read(state)
		}
		ovs, _ := doc["segment_overrides"].([]any)
		switch {
		case len(ovs) > 0 && r.rng.IntN(3) == 0:
			i := r.rng.IntN(len(ovs))
			ovs = slices.Delete(ovs, i, i+1)
		case len(ovs) > 1 && r.rng.IntN(2) == 0: // swap two priorities
			a, b := ovs[0].(map[string]any), ovs[len(ovs)-1].(map[string]any)
			a["priority"], b["priority"] = b["priority"], a["priority"]
		default:
			used := map[string]bool{}
			prio := int64(0)
			for _, o := range ovs {
				om := o.(map[string]any)
				used[om["segment"].(string)] = true
				n, _ := om["priority"].(json.Number).Int64()
				prio = max(prio, n+1)
			}
			seg := r.pick(segments)
			if used[seg] {
				return "nothing"
			}
			o := map[string]any{"segment": seg, "priority": r.rng.Int64N(prio + 1), "enabled": r.rng.IntN(2) == 0}
			if r.rng.IntN(2) == 0 {
				o["value"] = r.value()
			}
			if keys := r.variantKeys(feature); keys != nil && r.rng.IntN(2) == 0 {
				o["weights"] = r.weights(keys)
			}
			// Keep priorities unique: move the others up.
			for _, x := range ovs {
				xm := x.(map[string]any)
				if n, _ := json.Number(fmt.Sprint(xm["priority"])).Int64(); n >= o["priority"].(int64) {
					xm["priority"] = n + 1
				}
			}
			ovs = append(ovs, o)
		}
		doc["segment_overrides"] = ovs
		r.write(state, doc)
		return "segment overrides of " + feature + " in " + env
	case 7, 8: // identity overrides
		doc := map[string]any{"enabled": true}
		if _, ok := r.files[state]; ok {
			doc = r.read(state)
		}
		ovs, _ := doc["identity_overrides"].([]any)
		if len(ovs) > 0 && r.rng.IntN(3) == 0 {
			i := r.rng.IntN(len(ovs))
			ovs = slices.Delete(ovs, i, i+1)
		} else {
			used := map[string]bool{}
			for _, o := range ovs {
				for _, id := range o.(map[string]any)["identifiers"].([]any) {
					used[id.(string)] = true
				}
			}
			var ids []any
			for range 1 + r.rng.IntN(3) {
				if id := r.pick(identifierPool); !used[id] && id != "007" {
					used[id] = true
					ids = append(ids, id)
				}
			}
			if len(ids) == 0 {
				return "nothing"
			}
			o := map[string]any{"identifiers": ids, "enabled": r.rng.IntN(2) == 0}
			if r.rng.IntN(2) == 0 {
				o["value"] = r.value()
			}
			ovs = slices.Insert(ovs, r.rng.IntN(len(ovs)+1), any(o))
		}
		doc["identity_overrides"] = ovs
		r.write(state, doc)
		return "identity overrides of " + feature + " in " + env
	case 9, 10: // a segment's rules
		seg := r.pick(segments)
		p := "segments/" + seg + ".json"
		doc := r.read(p)
		doc["rules"] = r.rules()
		r.write(p, doc)
		return "rules of " + seg
	case 11: // a new feature
		r.nextID++
		key := fmt.Sprint("new_feature_", r.nextID)
		doc := map[string]any{"id": r.nextID, "default": map[string]any{"enabled": r.rng.IntN(2) == 0, "value": r.value()}}
		if r.rng.IntN(2) == 0 {
			doc["variants"] = []any{
				map[string]any{"id": 1, "key": "red", "value": "R", "weight": 30},
				map[string]any{"id": 2, "key": "blue", "value": "B", "weight": 40},
			}
		}
		r.write("features/"+key+".json", doc)
		if r.rng.IntN(2) == 0 {
			r.write("environments/"+env+"/features/"+key+".json", map[string]any{
				"enabled": true,
				"segment_overrides": []any{map[string]any{
					"segment": r.pick(segments), "priority": 1, "enabled": false,
				}},
				"identity_overrides": []any{map[string]any{"identifiers": []any{"alice", "user0-0@example.com"}, "enabled": true, "value": "mine"}},
			})
		}
		return "new feature " + key
	case 12: // a feature removed
		if len(features) < 3 {
			return "nothing"
		}
		delete(r.files, "features/"+feature+".json")
		for _, e := range envs {
			delete(r.files, "environments/"+e+"/features/"+feature+".json")
		}
		return "removed feature " + feature
	case 13: // a new segment
		r.nextID++
		key := fmt.Sprint("new_segment_", r.nextID)
		r.write("segments/"+key+".json", map[string]any{"id": r.nextID, "rules": r.rules()})
		return "new segment " + key
	case 14: // a segment removed, with the overrides of it
		if len(segments) < 2 {
			return "nothing"
		}
		seg := r.pick(segments)
		delete(r.files, "segments/"+seg+".json")
		for p := range r.files {
			if !strings.Contains(p, "/features/") {
				continue
			}
			doc := r.read(p)
			ovs, _ := doc["segment_overrides"].([]any)
			kept := slices.DeleteFunc(slices.Clone(ovs), func(o any) bool { return o.(map[string]any)["segment"] == seg })
			if len(kept) != len(ovs) {
				doc["segment_overrides"] = kept
				r.write(p, doc)
			}
		}
		return "removed segment " + seg
	default: // an environment's name or client key
		p := "environments/" + env + "/environment.json"
		doc := r.read(p)
		if r.rng.IntN(2) == 0 {
			doc["name"] = []string{"Production", "Staging", "Renamed"}[r.rng.IntN(3)]
		} else {
			doc["client_key"] = fmt.Sprint(doc["client_key"], "x")
		}
		r.write(p, doc)
		return "environment " + env
	}
}

// identities returns identities with traits that exercise the repository's
// conditions and identity overrides.
func (r *repo) identities() []*Identity {
	var out []*Identity
	for i := range 30 {
		id := &Identity{Identifier: fmt.Sprint("id-", i)}
		if i < len(identifierPool) {
			id.Identifier = identifierPool[i]
		}
		if i%7 == 3 {
			id.Key = fmt.Sprint("key-", i)
		}
		traits := map[string]any{}
		for range r.rng.IntN(8) {
			switch r.rng.IntN(9) {
			case 0:
				traits["plan"] = []string{"free", "starter", "premium", "enterprise", "7"}[r.rng.IntN(5)]
			case 1:
				traits["country"] = []string{"DE", "FR", "US", "JP"}[r.rng.IntN(4)]
			case 2:
				traits["age"] = float64(10 + r.rng.IntN(20))
			case 3:
				traits["user_id"] = r.rng.IntN(100000)
			case 4:
				traits["app_version"] = fmt.Sprintf("%d.%d.0", r.rng.IntN(8), r.rng.IntN(20))
			case 5:
				traits["email"] = id.Identifier + "@example.com"
			case 6:
				traits[fmt.Sprint("trait_", r.rng.IntN(r.traits+1))] = fmt.Sprint(r.rng.IntN(30))
			case 7:
				traits["beta_tester"] = r.rng.IntN(2) == 0
			default:
				traits["company"], traits["orders"] = "acme", r.rng.IntN(100)
			}
		}
		if len(traits) > 0 {
			id.Traits = traits
		}
		out = append(out, id)
	}
	return out
}

// TestIncrementalSlots renames a segment's trait again and again: slots of
// traits no longer used are dropped from time to time, and results stay
// right.
func TestIncrementalSlots(t *testing.T) {
	r := &repo{t: t, rng: rand.New(rand.NewPCG(1, 2)), files: map[string][]byte{
		"gitflags.json":                      []byte(`{"format_version": 1, "project": {"id": 1, "name": "p"}}`),
		"features/f.json":                    []byte(`{"id": 1, "default": {"enabled": false, "value": "off"}}`),
		"features/g.json":                    []byte(`{"id": 2, "default": {"enabled": true}}`),
		"segments/keep.json":                 []byte(`{"id": 10, "rules": [{"type": "ALL", "conditions": [{"property": "plan", "operator": "EQUAL", "value": "pro"}]}]}`),
		"environments/prod/environment.json": []byte(`{"id": 1, "name": "Production", "client_key": "prod-key"}`),
		"environments/prod/features/g.json":  []byte(`{"enabled": true, "segment_overrides": [{"segment": "keep", "priority": 1, "enabled": false}]}`),
		"environments/prod/features/f.json":  []byte(`{"enabled": false, "segment_overrides": [{"segment": "moving", "priority": 1, "enabled": true, "value": "on"}]}`),
		"segments/moving.json":               []byte(`{"id": 11, "rules": [{"type": "ALL", "conditions": [{"property": "t0", "operator": "EQUAL", "value": "x"}]}]}`),
	}}
	var (
		snap      *flagrepo.Snapshot
		models    map[string]*Model
		compacted bool
	)
	for step := range 80 {
		if step > 0 {
			r.write("segments/moving.json", map[string]any{"id": 11, "rules": []any{map[string]any{
				"type": "ALL", "conditions": []any{map[string]any{"property": fmt.Sprint("t", step), "operator": "EQUAL", "value": "x"}},
			}}})
		}
		next, err := flagrepo.Load(flagrepo.Revision{}, r.fileList(), snap)
		if err != nil {
			t.Fatal(err)
		}
		inc, err := CompileSnapshot(next, models)
		if err != nil {
			t.Fatal(err)
		}
		env, err := FromSnapshot(next, "prod")
		if err != nil {
			t.Fatal(err)
		}
		ref, err := Compile(env)
		if err != nil {
			t.Fatal(err)
		}
		m := inc["prod"]
		ids := []*Identity{
			{Identifier: "a", Traits: map[string]any{fmt.Sprint("t", step): "x", "plan": "pro"}},
			{Identifier: "b", Traits: map[string]any{fmt.Sprint("t", step-1): "x"}},
		}
		sameResults(t, fmt.Sprint("step ", step), m, ref, ids)
		if f, _ := m.Flag("f", ids[0]); f.Value != "on" {
			t.Fatalf("step %d: %v", step, f)
		}
		if len(m.slotNames) > 2*m.usedSlots()+16+1 {
			t.Fatalf("step %d: %d slots, %d used", step, len(m.slotNames), m.usedSlots())
		}
		if models != nil && len(m.slotNames) < len(models["prod"].slotNames) {
			compacted = true
		}
		snap, models = next, inc
	}
	if !compacted {
		t.Error("slots were never renumbered")
	}
}

// TestIncrementalConcurrent evaluates the previous models while the next
// ones are compiled from them (run with -race).
func TestIncrementalConcurrent(t *testing.T) {
	opts := repogen.Small()
	dir := t.TempDir()
	if err := repogen.Write(dir, opts); err != nil {
		t.Fatal(err)
	}
	files, err := flagrepo.DirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range files {
		data, err := files[i].Read()
		if err != nil {
			t.Fatal(err)
		}
		files[i] = memFile(files[i].Path, data)
	}
	snap, err := flagrepo.Load(flagrepo.Revision{}, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	prev, err := CompileSnapshot(snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := repogen.FeatureKey(3)
	files = editFile(t, files, "environments/production/features/"+key+".json", func(d map[string]any) { d["enabled"] = d["enabled"] != true })
	files = editFile(t, files, "segments/"+repogen.SegmentKey(2)+".json", func(d map[string]any) { d["description"] = "changed" })
	next, err := flagrepo.Load(flagrepo.Revision{}, files, snap)
	if err != nil {
		t.Fatal(err)
	}
	id := &Identity{Identifier: "user0-0@example.com", Traits: map[string]any{"plan": "premium", "country": "DE", "user_id": 42}}
	want := prev["production"].Evaluate(id)
	done := make(chan bool)
	for range 4 {
		go func() {
			ok := true
			for range 50 {
				for _, m := range prev {
					_ = m.AppendFlags(nil, id)
				}
				ok = ok && reflect.DeepEqual(prev["production"].Evaluate(id), want)
			}
			done <- ok
		}()
	}
	for range 5 {
		if _, err := CompileSnapshot(next, prev); err != nil {
			t.Error(err)
		}
	}
	for range 4 {
		if !<-done {
			t.Error("a previous model changed while the next was compiled")
		}
	}
}

// TestCompileSnapshotOtherPrev: models of another repository, or not
// compiled from a snapshot, are fine as prev.
func TestCompileSnapshotOtherPrev(t *testing.T) {
	template := templateModels(t)
	dir := t.TempDir()
	if err := repogen.Write(dir, repogen.Small()); err != nil {
		t.Fatal(err)
	}
	files, err := flagrepo.DirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := flagrepo.Load(flagrepo.Revision{}, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := CompileSnapshot(snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := maps.Clone(template)
	other["staging"] = mustCompile(t, realisticEnvironment())
	got, err := CompileSnapshot(snap, other)
	if err != nil {
		t.Fatal(err)
	}
	r := &repo{rng: rand.New(rand.NewPCG(3, 4))}
	for key, m := range want {
		sameResults(t, key, got[key], m, r.identities())
	}
}
