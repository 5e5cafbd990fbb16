package evaluator

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen"
)

// largeFiles returns the files of repogen.Large(), generated under
// GITFLAGS_BENCH_DIR (kept, made once) or a temporary directory, with
// content hashes (as git's blob hashes) so that flagrepo.Load reuses the
// documents of unchanged files.
func largeFiles(b *testing.B) []flagrepo.File {
	root := os.Getenv("GITFLAGS_BENCH_DIR")
	if root == "" {
		root = b.TempDir()
	}
	dir := filepath.Join(root, "evaluator-large")
	ready := filepath.Join(root, "evaluator-large.ready")
	if _, err := os.Stat(ready); err != nil {
		os.RemoveAll(dir)
		if err := repogen.Write(dir, repogen.Large()); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(ready, nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	files, err := flagrepo.DirFiles(dir)
	if err != nil {
		b.Fatal(err)
	}
	for i := range files {
		data, err := files[i].Read()
		if err != nil {
			b.Fatal(err)
		}
		sum := sha1.Sum(data)
		files[i].Hash = hex.EncodeToString(sum[:])
	}
	return files
}

// memFile is a regular file with content data, hashed.
func memFile(path string, data []byte) flagrepo.File {
	sum := sha1.Sum(data)
	return flagrepo.File{
		Path: path, Mode: flagrepo.ModeRegular, Hash: hex.EncodeToString(sum[:]), Size: int64(len(data)),
		Read: func() ([]byte, error) { return data, nil },
	}
}

// editFile returns files with the JSON document at path changed by edit.
func editFile(b testing.TB, files []flagrepo.File, path string, edit func(doc map[string]any)) []flagrepo.File {
	i := slices.IndexFunc(files, func(f flagrepo.File) bool { return f.Path == path })
	if i < 0 {
		b.Fatalf("no file %s", path)
	}
	data, err := files[i].Read()
	if err != nil {
		b.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		b.Fatal(err)
	}
	edit(doc)
	if data, err = json.MarshalIndent(doc, "", "  "); err != nil {
		b.Fatal(err)
	}
	files = slices.Clone(files)
	files[i] = memFile(path, data)
	return files
}

// BenchmarkCompileSnapshotLarge compiles the 3 environments of
// repogen.Large() (10,000 features, 1,000 segments): from scratch (full),
// and with the previous snapshot's models after a commit that changes one
// file (a feature state, a feature, a segment) or adds one (a feature or a
// segment, sorted first: every index after it moves). p50/p99 in ms.
//
//	go test -run '^$' -bench CompileSnapshotLarge -benchmem ./evaluator/
func BenchmarkCompileSnapshotLarge(b *testing.B) {
	files := largeFiles(b)
	rev := flagrepo.Revision{SHA: "0000000000000000000000000000000000000001"}
	snap, err := flagrepo.Load(rev, files, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("full", func(b *testing.B) {
		benchCompile(b, snap, nil)
	})
	prev, err := CompileSnapshot(snap, nil)
	if err != nil {
		b.Fatal(err)
	}
	key := repogen.FeatureKey(7)
	edits := []struct {
		name, path string
		edit       func(map[string]any)
	}{
		{"feature-state", "environments/production/features/" + key + ".json", func(d map[string]any) { d["enabled"] = d["enabled"] != true }},
		{"feature", "features/" + key + ".json", func(d map[string]any) { d["description"] = "changed" }},
		{"segment", "segments/" + repogen.SegmentKey(3) + ".json", func(d map[string]any) { d["description"] = "changed" }},
	}
	for _, e := range edits {
		next, err := flagrepo.Load(rev, editFile(b, files, e.path, e.edit), snap)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("one-"+e.name, func(b *testing.B) {
			benchCompile(b, next, prev)
		})
	}
	// New files renumber the features or segments after them.
	adds := []struct{ name, path, doc string }{
		{"new-feature", "features/aaa_new.json", `{"id": 999999, "default": {"enabled": true}}`},
		{"new-segment", "segments/aaa_new.json", `{"id": 999999, "rules": [{"type": "ALL", "conditions": [{"property": "plan", "operator": "EQUAL", "value": "x"}]}]}`},
	}
	for _, a := range adds {
		next, err := flagrepo.Load(rev, append(slices.Clip(files), memFile(a.path, []byte(a.doc))), snap)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("one-"+a.name, func(b *testing.B) {
			benchCompile(b, next, prev)
		})
	}
}

func benchCompile(b *testing.B, snap *flagrepo.Snapshot, prev map[string]*Model) {
	b.ReportAllocs()
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := CompileSnapshot(snap, prev); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := min(max(int(float64(len(lat))*p+0.5)-1, 0), len(lat)-1)
		return float64(lat[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
