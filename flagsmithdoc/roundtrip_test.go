package flagsmithdoc

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
)

// Import followed by export: the exported documents evaluate as the
// originals (testdata/<set>/exported/expected.json holds the engine's
// answers from the exported documents, written by engine_answers.py), and
// importing them again gives the same repository.

var roundTripSets = []string{"single", "multienv", "legacy"}

// exportTime is the revision time of the exported goldens (their
// updated_at and created_date).
var exportTime = time.Date(2026, 3, 2, 10, 15, 30, 0, time.UTC)

// exportSet imports a set and exports it at exportTime.
func exportSet(t *testing.T, set string) (*Result, map[string][]byte) {
	t.Helper()
	sources, _ := loadSet(t, set)
	res, err := Import(sources)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := flagrepo.Load(flagrepo.Revision{Time: exportTime, Author: "test"}, fileList(res.Files), nil)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := Export(snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != len(snap.Environments) {
		t.Fatalf("%d documents for %d environments", len(docs), len(snap.Environments))
	}
	return res, docs
}

// TestExportGolden pins the exported documents the engine's answers in
// exported/expected.json were computed from.
func TestExportGolden(t *testing.T) {
	for _, set := range roundTripSets {
		t.Run(set, func(t *testing.T) {
			_, docs := exportSet(t, set)
			for key, doc := range docs {
				golden(t, filepath.Join("testdata", set, "exported", ExportFileName(key)), doc)
			}
			if !*update {
				files, _ := filepath.Glob(filepath.Join("testdata", set, "exported", "*.json"))
				if len(files) != len(docs)+1 { // + expected.json
					t.Errorf("testdata/%s/exported holds %d files, want %d documents and expected.json", set, len(files), len(docs))
				}
			}
		})
	}
}

// TestExportEvaluatesLikeTheOriginal compares the engine's answers from the
// exported documents with its answers from the originals: the same enabled
// and value for every identity; the same variant, except that the exported
// document names no variant for a band (gitflags' environment document
// carries no option keys, so SDKs report variant null there).
func TestExportEvaluatesLikeTheOriginal(t *testing.T) {
	for _, set := range roundTripSets {
		t.Run(set, func(t *testing.T) {
			var orig, exported expectedSet
			readJSONFile(t, filepath.Join("testdata", set, "expected.json"), &orig)
			readJSONFile(t, filepath.Join("testdata", set, "exported", "expected.json"), &exported)
			byKey := map[string]expectedDoc{}
			for _, d := range exported.Documents {
				byKey[d.APIKey] = d
			}
			if len(byKey) != len(orig.Documents) {
				t.Fatalf("%d exported documents, %d originals", len(byKey), len(orig.Documents))
			}
			n := 0
			for _, o := range orig.Documents {
				e, ok := byKey[o.APIKey]
				if !ok {
					t.Fatalf("no exported document for %s", o.File)
				}
				if e.HideDisabledFlags != o.HideDisabledFlags || !reflect.DeepEqual(e.ServerKeyOnly, o.ServerKeyOnly) {
					t.Errorf("%s: hide_disabled_flags %t, server-key-only %v; original %t, %v", e.File, e.HideDisabledFlags, e.ServerKeyOnly, o.HideDisabledFlags, o.ServerKeyOnly)
				}
				cmp := func(who string, want, got map[string]engineFlag) {
					if len(want) != len(got) {
						t.Errorf("%s %s: %d flags, original %d", e.File, who, len(got), len(want))
					}
					for name, w := range want {
						g, ok := got[name]
						switch {
						case !ok:
							t.Errorf("%s %s: no flag %s", e.File, who, name)
						case g.Enabled != w.Enabled || canonical(g.Value) != canonical(w.Value):
							t.Errorf("%s %s: flag %s: %t %s (%s), original %t %s (%s)", e.File, who, name, g.Enabled, g.Value, g.Reason, w.Enabled, w.Value, w.Reason)
						case !sameVariant(g.Variant, w.Variant) && !(g.Variant == nil && strings.HasPrefix(w.Reason, "SPLIT")):
							t.Errorf("%s %s: flag %s: variant %s, original %s (%s)", e.File, who, name, show(g.Variant), show(w.Variant), w.Reason)
						default:
							n++
						}
					}
				}
				cmp("(no identity)", o.Environment, e.Environment)
				for id, want := range o.Identities {
					cmp(id, want, e.Identities[id])
				}
			}
			t.Logf("%d flags compared", n)
		})
	}
}

// TestReimportServesTheExport imports the exported documents and checks
// that gitflags serves what the engine evaluates from them.
func TestReimportServesTheExport(t *testing.T) {
	ids := loadIdentities(t)
	for _, set := range roundTripSets {
		t.Run(set, func(t *testing.T) {
			var exp expectedSet
			readJSONFile(t, filepath.Join("testdata", set, "exported", "expected.json"), &exp)
			var sources []Source
			for _, d := range exp.Documents {
				data, err := os.ReadFile(filepath.Join("testdata", set, "exported", d.File))
				if err != nil {
					t.Fatal(err)
				}
				sources = append(sources, Source{Name: d.File, Data: data})
			}
			res, err := Import(sources)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range res.Issues {
				t.Errorf("issue: %s", i)
			}
			ts := serve(t, withServerKeys(t, res.Files))
			t.Logf("%d flags compared", compareServed(t, ts, res.Snapshot, exp, ids, nil))
		})
	}
}

// TestReimportSameRepository imports, exports and imports again: the two
// repositories evaluate the same (every environment's features, segments,
// overrides and settings; variant keys aside: see
// TestExportEvaluatesLikeTheOriginal), and the second import reports
// nothing lost.
func TestReimportSameRepository(t *testing.T) {
	for _, set := range roundTripSets {
		t.Run(set, func(t *testing.T) {
			first, docs := exportSet(t, set)
			var sources []Source
			for _, k := range sortedKeys(docs) {
				sources = append(sources, Source{Name: ExportFileName(k), Data: docs[k]})
			}
			second, err := Import(sources)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range second.Issues {
				t.Errorf("re-import issue: %s", i)
			}
			a, b := first.Snapshot, second.Snapshot
			if !reflect.DeepEqual(a.EnvironmentKeys(), b.EnvironmentKeys()) || !reflect.DeepEqual(a.FeatureKeys(), b.FeatureKeys()) || !reflect.DeepEqual(a.SegmentKeys(), b.SegmentKeys()) {
				t.Fatalf("keys differ:\n%v %v %v\n%v %v %v", a.EnvironmentKeys(), a.FeatureKeys(), a.SegmentKeys(), b.EnvironmentKeys(), b.FeatureKeys(), b.SegmentKeys())
			}
			if !reflect.DeepEqual(a.Settings.Project, b.Settings.Project) || !reflect.DeepEqual(a.Settings.Organisation, b.Settings.Organisation) {
				t.Errorf("settings differ: %+v %+v", a.Settings, b.Settings)
			}
			for _, key := range a.EnvironmentKeys() {
				ea, eb := a.Environments[key], b.Environments[key]
				if ea.ID != eb.ID || ea.Name != eb.Name || ea.ClientKey != eb.ClientKey || a.HidesDisabledFlags(ea) != b.HidesDisabledFlags(eb) ||
					ea.HideSensitiveData != eb.HideSensitiveData || ea.ClientTraitsAllowed() != eb.ClientTraitsAllowed() {
					t.Errorf("environment %s differs: %+v %+v", key, ea, eb)
				}
				ma, mb := semantic(t, a, key), semantic(t, b, key)
				if !bytes.Equal(ma, mb) {
					t.Errorf("environment %s evaluates differently after export and import:\n%s\n%s", key, ma, mb)
				}
			}
			for _, k := range a.FeatureKeys() {
				fa, fb := a.Features[k], b.Features[k]
				if fa.ID != fb.ID || fa.ServerKeyOnly != fb.ServerKeyOnly || len(fa.Variants) != len(fb.Variants) {
					t.Errorf("feature %s: id %d, server-key-only %t, %d variants; re-imported %d, %t, %d", k, fa.ID, fa.ServerKeyOnly, len(fa.Variants), fb.ID, fb.ServerKeyOnly, len(fb.Variants))
				}
			}
		})
	}
}

// semantic is what an environment evaluates: the evaluator's input, with
// variant keys left out (the exported documents do not carry them).
func semantic(t *testing.T, snap *flagrepo.Snapshot, env string) []byte {
	t.Helper()
	e, err := evaluator.FromSnapshot(snap, env)
	if err != nil {
		t.Fatal(err)
	}
	strip := func(vs []evaluator.Variant) {
		for i := range vs {
			vs[i].Key, vs[i].WeightText = "", ""
		}
	}
	for i := range e.Features {
		strip(e.Features[i].Variants)
	}
	for i := range e.Segments {
		for j := range e.Segments[i].Overrides {
			strip(e.Segments[i].Overrides[j].Variants)
		}
	}
	b, err := json.MarshalIndent(e, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
