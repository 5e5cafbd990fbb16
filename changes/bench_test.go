package changes

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen"
)

// largeRepo returns repogen.Large() (10,000 features in 3 environments, with
// a state file for each, and 1,000 segments), generated under
// GITFLAGS_BENCH_DIR (kept, made once) or a temporary directory.
func largeRepo(b *testing.B) repo {
	root := os.Getenv("GITFLAGS_BENCH_DIR")
	if root == "" {
		root = b.TempDir()
	}
	dir := filepath.Join(root, "changes-large")
	ready := filepath.Join(root, "changes-large.ready")
	if _, err := os.Stat(ready); err != nil {
		os.RemoveAll(dir)
		if err := repogen.Write(dir, repogen.Large()); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(ready, nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return readDir(b, dir)
}

// BenchmarkBetweenLarge measures Between on repogen.Large() after a commit
// changing one file (a feature state, a feature's default, a segment's
// rules), the new snapshot loaded with the old one as flagrepo.Load's prev
// (as the server loads every revision); and between two snapshots loaded
// independently (every document compared by content: the worst case).
//
//	go test -run '^$' -bench BetweenLarge -benchmem ./changes/
func BenchmarkBetweenLarge(b *testing.B) {
	r := largeRepo(b)
	old := r.load(b, "a", nil)
	key := repogen.FeatureKey(7)
	edits := []struct {
		name, path string
		edit       func(map[string]any)
	}{
		{"one-feature-state", "environments/production/features/" + key + ".json", func(d map[string]any) { d["enabled"] = d["enabled"] != true }},
		{"one-feature", "features/" + key + ".json", func(d map[string]any) { d["server_key_only"] = d["server_key_only"] != true }},
		{"one-feature-description", "features/" + key + ".json", func(d map[string]any) { d["description"] = "changed" }},
		{"one-segment", "segments/" + repogen.SegmentKey(3) + ".json", func(d map[string]any) {
			rule := d["rules"].([]any)[0].(map[string]any)
			rule["type"] = map[bool]string{true: "ALL", false: "ANY"}[rule["type"] == "ANY"]
		}},
	}
	for _, e := range edits {
		next := r.edit(b, e.path, e.edit).load(b, "b", old)
		benchBetween(b, e.name, old, next)
	}
	benchBetween(b, "unrelated-snapshots", old, r.load(b, "b", nil))
}

func benchBetween(b *testing.B, name string, old, next *flagrepo.Snapshot) {
	b.Run(name, func(b *testing.B) {
		b.ReportAllocs()
		var s Set
		for b.Loop() {
			s = Between(old, next)
		}
		n := 0
		for _, e := range s.Environments {
			n += len(e.Features)
		}
		if (name == "unrelated-snapshots" || name == "one-feature-description") != (n == 0) {
			b.Fatalf("%d features changed", n)
		}
		b.ReportMetric(float64(n), "features-changed")
	})
}
