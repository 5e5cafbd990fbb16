package httpapi

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/repogen"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// largeWorkTree returns a work tree holding repogen.Large() committed with
// the git binary: under GITFLAGS_BENCH_DIR (kept, made once) or a temporary
// directory.
func largeWorkTree(b *testing.B) string {
	gittest.Available(b)
	root := os.Getenv("GITFLAGS_BENCH_DIR")
	if root == "" {
		root = b.TempDir()
	}
	dir := filepath.Join(root, "httpapi-large")
	if _, err := os.Stat(filepath.Join(root, "httpapi-large.ready")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	if err := repogen.Write(dir, repogen.Large()); err != nil {
		b.Fatal(err)
	}
	if _, err := gittest.CommitDir(dir, "Generated flag repository"); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "httpapi-large.ready"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkReloadLarge splits what serving a new commit costs on the
// 10,000-feature repository when the commit changes one feature file:
// loading the snapshot with the previous one (load-p50/p99: gitstore and
// flagrepo, reusing unchanged documents), and that plus Publish (p50/p99:
// compiling the models and precomputing every answer, reusing the pieces of
// unchanged features). The commit is made with the git binary, not timed;
// BenchmarkCommitToServed measures the whole path through gitsync.
//
//	go test -run '^$' -bench ReloadLarge -benchtime 100x ./httpapi/
func BenchmarkReloadLarge(b *testing.B) {
	dir := largeWorkTree(b)
	repo, err := gitstore.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	srv := New(Options{Log: ofrepQuietLog})
	snap, err := repo.Snapshot("HEAD", nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Publish(snap); err != nil {
		b.Fatal(err)
	}
	rel := "features/" + repogen.FeatureKey(7) + ".json"
	orig, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		b.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(orig, &doc); err != nil {
		b.Fatal(err)
	}
	parent := gittest.Run(b, dir, "rev-parse", "HEAD")
	var lat, loads []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		doc["description"] = fmt.Sprintf("bench %d at %d", i, time.Now().UnixNano())
		data, _ := json.MarshalIndent(doc, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, rel), append(data, '\n'), 0o644); err != nil {
			b.Fatal(err)
		}
		gittest.Run(b, dir, "add", rel)
		tree := gittest.Run(b, dir, "write-tree")
		c := gittest.Run(b, dir, "commit-tree", tree, "-p", parent, "-m", fmt.Sprint("bench ", i))
		gittest.Run(b, dir, "update-ref", "refs/heads/main", c)
		parent = c
		b.StartTimer()
		t0 := time.Now()
		next, err := repo.Snapshot(c, snap)
		if err != nil {
			b.Fatal(err)
		}
		loads = append(loads, time.Since(t0))
		if err := srv.Publish(next); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		snap = next
	}
	if os.Getenv("GITFLAGS_BENCH_VERBOSE") != "" {
		b.Logf("latencies: %v", lat)
	}
	reportLatencies(b, "", lat)
	reportLatencies(b, "load-", loads)
}

func reportLatencies(b *testing.B, prefix string, l []time.Duration) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	pct := func(p float64) float64 {
		i := max(0, min(int(float64(len(s))*p+0.5)-1, len(s)-1))
		return float64(s[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), prefix+"p50-ms")
	b.ReportMetric(pct(0.99), prefix+"p99-ms")
}
