package history

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/repogen"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// benchCommits is the number of commits on top of the generated repository.
const benchCommits = 10_000

// benchFeature is the feature whose history the benchmarks read: every
// 100th commit changes it (100 entries), the others change another
// feature's state in one environment.
var benchFeature = repogen.FeatureKey(42)

// The benchmark repository is generated once per process, and only when a
// benchmark asks for it. Set GITFLAGS_BENCH_DIR to keep it between runs.
var bench struct {
	once sync.Once
	root string
	temp bool
	dir  string
	err  error
}

func cleanupBench() {
	if bench.temp && bench.root != "" {
		os.RemoveAll(bench.root)
	}
}

// benchRepo returns a bare repository with the 10,000-feature repository of
// repogen.Large in its first commit and benchCommits commits on top, each
// changing one file, all written by git fast-import (packed, trees and blobs
// as deltas of their previous versions, as a fetched repository has them).
func benchRepo(b *testing.B) string {
	b.Helper()
	gittest.Available(b)
	bench.once.Do(func() {
		bench.root = os.Getenv("GITFLAGS_BENCH_DIR")
		if bench.root == "" {
			bench.root, bench.err = os.MkdirTemp("", "gitflags-history-bench-")
			bench.temp = true
		} else {
			bench.root = filepath.Join(bench.root, "history")
		}
		if bench.err == nil {
			bench.dir, bench.err = prepareBench(bench.root)
		}
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.dir
}

func prepareBench(root string) (string, error) {
	dir := filepath.Join(root, "repo.git")
	if _, err := os.Stat(filepath.Join(root, "ready")); err == nil {
		return dir, nil
	}
	gen := filepath.Join(root, "generated")
	for _, d := range []string{dir, gen} {
		if err := os.RemoveAll(d); err != nil {
			return "", err
		}
	}
	if err := repogen.Write(gen, repogen.Large()); err != nil {
		return "", err
	}
	if _, err := gittest.Output(root, "init", "-q", "--bare", "-b", "main", dir); err != nil {
		return "", err
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir, cmd.Env, cmd.Stderr = dir, gittest.Env, os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(in, 1<<20)
	werr := writeStream(w, gen)
	if err := w.Flush(); werr == nil {
		werr = err
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		return "", fmt.Errorf("git fast-import: %w", err)
	}
	if werr != nil {
		return "", werr
	}
	if err := os.RemoveAll(gen); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(root, "ready"), nil, 0o644)
}

// writeStream writes the fast-import stream: the generated files in one
// commit, then benchCommits commits of one file each.
func writeStream(w *bufio.Writer, gen string) error {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	data := func(s string) { fmt.Fprintf(w, "data %d\n%s\n", len(s), s) }
	header := func(n int, msg string) {
		who := fmt.Sprintf("Engineer %d <e%d@example.com> %d +0000", n%7, n%7, start+int64(n)*60)
		fmt.Fprintf(w, "commit refs/heads/main\nauthor %s\ncommitter %s\n", who, who)
		data(msg)
	}
	header(0, "Generated flag repository")
	err := filepath.WalkDir(gen, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		content, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(gen, p)
		fmt.Fprintf(w, "M 100644 inline %s\n", filepath.ToSlash(rel))
		data(string(content))
		return nil
	})
	if err != nil {
		return err
	}
	for n := 1; n <= benchCommits; n++ {
		var path, content string
		switch {
		case n%200 == 0:
			path = "features/" + benchFeature + ".json"
			content = fmt.Sprintf("{\n  \"id\": 43,\n  \"description\": \"revision %d\",\n  \"default\": {\"enabled\": false, \"value\": null}\n}\n", n)
		case n%100 == 0:
			path = "environments/production/features/" + benchFeature + ".json"
			content = fmt.Sprintf("{\n  \"enabled\": %t,\n  \"value\": \"v%d\"\n}\n", n%300 == 0, n)
		default:
			path = fmt.Sprintf("environments/%s/features/%s.json", repogen.EnvironmentKey(n%3), repogen.FeatureKey(n*7919%10_000))
			content = fmt.Sprintf("{\n  \"enabled\": %t,\n  \"value\": \"v%d\"\n}\n", n%2 == 0, n)
		}
		header(n, fmt.Sprintf("Change %s\n\nCommit %d of the benchmark.", strings.TrimSuffix(filepath.Base(path), ".json"), n))
		fmt.Fprintf(w, "M 100644 inline %s\n", path)
		data(content)
	}
	return nil
}

func openBench(b *testing.B) (*gitstore.Repo, plumbing.Hash) {
	b.Helper()
	repo, err := gitstore.Open(benchRepo(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { repo.Close() })
	head, err := repo.Resolve("main")
	if err != nil {
		b.Fatal(err)
	}
	return repo, head
}

// BenchmarkHistoryFeature reads the newest 50 entries of one feature from
// an index of the 10,001 commits (built before the timing starts).
func BenchmarkHistoryFeature(b *testing.B) {
	repo, head := openBench(b)
	ix := New(repo)
	if err := ix.Update(context.Background(), head); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := ix.Query(context.Background(), head, Query{Feature: benchFeature})
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Entries) != DefaultLimit || p.Next == "" || len(p.Entries[0].Changes) != 1 {
			b.Fatalf("%d entries, next %q", len(p.Entries), p.Next)
		}
	}
}

// BenchmarkHistoryFeatureLogWalk is what BenchmarkHistoryFeature costs
// without an index: walk the first-parent chain from the head, diffing each
// commit's tree with its parent's, until 50 commits touched the feature.
func BenchmarkHistoryFeatureLogWalk(b *testing.B) {
	repo, head := openBench(b)
	want := []string{"features/" + benchFeature + ".json", "environments/production/features/" + benchFeature + ".json"}
	for b.Loop() {
		found := 0
		for h := head; found < DefaultLimit; {
			c, err := repo.ReadCommit(h)
			if err != nil {
				b.Fatal(err)
			}
			parent, pt := plumbing.ZeroHash, plumbing.ZeroHash
			if len(c.Parents) > 0 {
				parent = c.Parents[0]
				pc, err := repo.ReadCommit(parent)
				if err != nil {
					b.Fatal(err)
				}
				pt = pc.Tree
			}
			changes, err := repo.DiffTrees(pt, c.Tree)
			if err != nil {
				b.Fatal(err)
			}
			for _, ch := range changes {
				if ch.Path == want[0] || ch.Path == want[1] {
					found++
					break
				}
			}
			if parent.IsZero() {
				b.Fatal("the history ended early")
			}
			h = parent
		}
	}
}

// BenchmarkHistoryBuild indexes the 10,001 commits from nothing, as a server
// does on the first history query after it starts. It reports the memory the
// index keeps (heap in use after a collection, index alive, minus before).
func BenchmarkHistoryBuild(b *testing.B) {
	repo, head := openBench(b)
	// Load the pack index of the readers' storage before the baseline.
	if _, err := repo.ReadCommit(head); err != nil {
		b.Fatal(err)
	}
	var kept float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		ix := New(repo)
		if err := ix.Update(context.Background(), head); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.GC() // and what sync.Pools held through the first
		runtime.ReadMemStats(&after)
		kept = float64(after.HeapInuse) - float64(before.HeapInuse)
		if ix.Len() != benchCommits+1 {
			b.Fatalf("indexed %d commits", ix.Len())
		}
		runtime.KeepAlive(ix)
	}
	b.ReportMetric(kept/(1<<20), "MiB-kept")
}

// BenchmarkHistoryUpdateOne indexes one new commit on top of an index of
// its parent, as a server does after every commit: each iteration the next
// of the last 100 commits (then the index is cut back, untimed).
func BenchmarkHistoryUpdateOne(b *testing.B) {
	repo, _ := openBench(b)
	var heads []plumbing.Hash
	for i := 100; i >= 0; i-- {
		h, err := repo.Resolve(fmt.Sprintf("main~%d", i))
		if err != nil {
			b.Fatal(err)
		}
		heads = append(heads, h)
	}
	ix := New(repo)
	if err := ix.Update(context.Background(), heads[0]); err != nil {
		b.Fatal(err)
	}
	next := 1
	for b.Loop() {
		if next == len(heads) {
			b.StopTimer()
			ix.update.Lock()
			ix.truncate(ix.Len() - len(heads) + 1)
			ix.update.Unlock()
			next = 1
			b.StartTimer()
		}
		if err := ix.Update(context.Background(), heads[next]); err != nil {
			b.Fatal(err)
		}
		next++
	}
}

// BenchmarkHistoryReopen opens an index of the 10,001 commits saved to a
// file (built once, before the timing starts) and brings it to the head, as
// a server does at start: no commit is diffed again.
func BenchmarkHistoryReopen(b *testing.B) {
	repo, head := openBench(b)
	dir := b.TempDir()
	ix, err := Open(repo, dir, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := ix.Update(context.Background(), head); err != nil {
		b.Fatal(err)
	}
	ix.Close()
	fi, err := os.Stat(filepath.Join(dir, FileName("bench")))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ix, err := Open(repo, dir, "bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := ix.Update(context.Background(), head); err != nil {
			b.Fatal(err)
		}
		if ix.Len() != benchCommits+1 || ix.diffed != 0 {
			b.Fatalf("indexed %d commits, diffed %d", ix.Len(), ix.diffed)
		}
		ix.Close()
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "MiB-file")
}
