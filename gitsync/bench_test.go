package gitsync

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/repogen"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// Commit-to-published latency. Each iteration makes a commit object with the
// git binary (not timed), then starts the clock when the commit lands:
//   - local: when the branch's ref file is renamed into place, as git
//     update-ref does (the last step of git commit, merge or pull);
//   - remote: after git push returned, when the webhook would call Trigger.
//
// The clock stops when Publish is called with the new revision; Publish
// compiles the snapshot's evaluation models (evaluator.CompileSnapshot) as the
// HTTP server's Publish does. Run with -benchtime=100x; p50 and p99 are
// reported in milliseconds.
//
//	go test -run '^$' -bench Latency -benchtime=100x ./gitsync/

// latencies records one latency per iteration and reports percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	pct := func(p float64) float64 {
		i := int(float64(len(s))*p+0.5) - 1
		i = max(0, min(i, len(s)-1))
		return float64(s[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(s[len(s)-1])/float64(time.Millisecond), "max-ms")
}

// compiling wraps a recorder's publish with the evaluator's compilation.
func compiling(rec *recorder) func(*flagrepo.Snapshot) error {
	return func(s *flagrepo.Snapshot) error {
		if _, err := evaluator.CompileSnapshot(s); err != nil {
			return err
		}
		return rec.publish(s)
	}
}

// startBench is start with a compiling Publish.
func startBench(b *testing.B, opts Options) (*Syncer, *recorder) {
	rec := &recorder{}
	opts.Publish = compiling(rec)
	s, r2, _ := start(b, opts)
	_ = r2
	return s, rec
}

// waitPublished spins until sha was published and returns when.
func waitPublished(b *testing.B, rec *recorder, sha string, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for {
		rec.mu.Lock()
		n := len(rec.snaps)
		if n > 0 && rec.snaps[n-1].Revision.SHA == sha {
			at := rec.at[n-1]
			rec.mu.Unlock()
			return at
		}
		rec.mu.Unlock()
		if time.Now().After(deadline) {
			b.Fatalf("%s not published within %s", sha, timeout)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func BenchmarkLatencyLocalTemplate(b *testing.B) {
	dir := templateRepo(b)
	repo := openRepo(b, dir)
	_, rec := startBench(b, Options{Repo: repo, Branch: "main", Interval: time.Hour})
	parent := gittest.Run(b, dir, "rev-parse", "HEAD")
	waitPublished(b, rec, parent, 10*time.Second)
	var lat latencies
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		setDescription(b, dir, fmt.Sprint("local ", i))
		c := commitTree(b, dir, parent, fmt.Sprint("commit ", i))
		b.StartTimer()
		t0 := time.Now()
		writeRefAtomically(b, filepath.Join(dir, ".git"), "refs/heads/main", c)
		lat = append(lat, waitPublished(b, rec, c, 10*time.Second).Sub(t0))
		parent = c
	}
	lat.report(b)
}

func BenchmarkLatencyRemoteTemplate(b *testing.B) {
	r := newRemote(b)
	repo := cloneRemote(b, "file://"+r.bare, gitstore.RemoteOptions{})
	s, rec := startBench(b, Options{Repo: repo, Remote: true, Interval: time.Hour})
	waitPublished(b, rec, gittest.Run(b, r.bare, "rev-parse", "main"), 10*time.Second)
	var lat latencies
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		c := r.push(b, fmt.Sprint("remote ", i))
		b.StartTimer()
		t0 := time.Now()
		s.Trigger()
		lat = append(lat, waitPublished(b, rec, c, 10*time.Second).Sub(t0))
	}
	lat.report(b)
}

// largeRepo returns a work tree holding repogen.Large() committed with the
// git binary: under GITFLAGS_BENCH_DIR (kept, made once) or a temporary
// directory.
func largeRepo(b *testing.B) string {
	gittest.Available(b)
	root := os.Getenv("GITFLAGS_BENCH_DIR")
	if root == "" {
		root = b.TempDir()
	}
	dir := filepath.Join(root, "gitsync-large")
	if _, err := os.Stat(filepath.Join(root, "gitsync-large.ready")); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	if err := repogen.Write(dir, repogen.Large()); err != nil {
		b.Fatal(err)
	}
	if _, err := gittest.CommitDir(dir, "Generated flag repository"); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "gitsync-large.ready"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}

// BenchmarkLatencyLocalLarge: a commit touching one feature file of the
// 10,000-feature repository. publish=load stops the clock when the validated
// snapshot is handed to Publish (gitsync's part); publish=compile also
// compiles the evaluation models as the HTTP server's Publish does.
func BenchmarkLatencyLocalLarge(b *testing.B) {
	dir := largeRepo(b)
	b.Run("publish=load", func(b *testing.B) { benchLarge(b, dir, false) })
	b.Run("publish=compile", func(b *testing.B) { benchLarge(b, dir, true) })
}

func benchLarge(b *testing.B, dir string, compile bool) {
	repo := openRepo(b, dir)
	rec := &recorder{}
	opts := Options{Repo: repo, Branch: "main", Interval: time.Hour, Publish: rec.publish}
	if compile {
		opts.Publish = compiling(rec)
	}
	start(b, opts)
	parent := gittest.Run(b, dir, "rev-parse", "HEAD")
	waitPublished(b, rec, parent, 2*time.Minute)
	rel := "features/" + repogen.FeatureKey(7) + ".json"
	orig, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		b.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(orig, &doc); err != nil {
		b.Fatal(err)
	}
	var lat latencies
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		doc["description"] = fmt.Sprintf("bench %d at %d", i, time.Now().UnixNano())
		data, _ := json.MarshalIndent(doc, "", "  ")
		writeFile(b, dir, rel, string(data)+"\n")
		gittest.Run(b, dir, "add", rel)
		tree := gittest.Run(b, dir, "write-tree")
		c := gittest.Run(b, dir, "commit-tree", tree, "-p", parent, "-m", fmt.Sprint("bench ", i))
		b.StartTimer()
		t0 := time.Now()
		writeRefAtomically(b, filepath.Join(dir, ".git"), "refs/heads/main", c)
		lat = append(lat, waitPublished(b, rec, c, 30*time.Second).Sub(t0))
		parent = c
	}
	lat.report(b)
}
