package gitstore

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// The large repositories are generated once per process, and only when a
// benchmark asks for them, so tests stay fast. Set GITFLAGS_BENCH_DIR to keep
// them between runs (they are then generated only when missing), e.g. to
// measure the peak memory of the load alone.
var bench struct {
	once    sync.Once
	root    string // parent directory
	temp    bool   // root is ours to remove
	loose   string // work tree with one commit, loose objects
	packed  string // bare clone, one packfile
	changed string // clone of loose with a second commit changing one file
	err     error
}

func cleanupBench() {
	if bench.temp && bench.root != "" {
		os.RemoveAll(bench.root)
	}
}

// largeRepos generates (or finds) the benchmark repositories.
func largeRepos(b *testing.B) (loose, packed, changed string) {
	b.Helper()
	gittest.Available(b)
	bench.once.Do(func() {
		bench.root = os.Getenv("GITFLAGS_BENCH_DIR")
		if bench.root == "" {
			bench.root, bench.err = os.MkdirTemp("", "gitflags-bench-")
			bench.temp = true
		}
		if bench.err == nil {
			bench.err = prepareLarge(bench.root)
		}
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.loose, bench.packed, bench.changed
}

func prepareLarge(root string) error {
	bench.loose = filepath.Join(root, "loose")
	bench.packed = filepath.Join(root, "packed.git")
	bench.changed = filepath.Join(root, "changed")
	if _, err := os.Stat(filepath.Join(root, "ready")); err == nil {
		return nil
	}
	for _, d := range []string{bench.loose, bench.packed, bench.changed} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	if err := repogen.Write(bench.loose, repogen.Large()); err != nil {
		return err
	}
	if _, err := gittest.CommitDir(bench.loose, "Generated flag repository"); err != nil {
		return err
	}
	// A clone over the git protocol writes one packfile with deltas, as a
	// fetched or garbage-collected repository has.
	if _, err := gittest.Output(root, "clone", "-q", "--bare", "--no-local", bench.loose, bench.packed); err != nil {
		return err
	}
	if _, err := gittest.Output(root, "clone", "-q", "--no-local", bench.loose, bench.changed); err != nil {
		return err
	}
	p := filepath.Join(bench.changed, "environments", "production", "features", repogen.FeatureKey(42)+".json")
	if err := os.WriteFile(p, []byte("{\n  \"enabled\": true\n}\n"), 0o644); err != nil {
		return err
	}
	if _, err := gittest.CommitDir(bench.changed, "Enable one feature in production"); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, "ready"), nil, 0o644)
}

func snapshotOnce(b *testing.B, dir string) *flagrepo.Snapshot {
	r, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	snap, err := r.Snapshot("HEAD", nil)
	if err != nil {
		b.Fatal(err)
	}
	return snap
}

// BenchmarkSnapshotLarge opens a repository of 10,000 features in 3
// environments and 1,000 segments (41,000 documents) and loads HEAD without a
// previous snapshot: every blob is read, parsed and validated.
func BenchmarkSnapshotLarge(b *testing.B) {
	loose, packed, _ := largeRepos(b)
	for _, c := range []struct{ name, dir string }{{"loose", loose}, {"packed", packed}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var snap *flagrepo.Snapshot
			for b.Loop() {
				snap = snapshotOnce(b, c.dir)
			}
			if n := len(snap.Features); n != repogen.Large().Features {
				b.Fatalf("loaded %d features", n)
			}
		})
	}
}

// BenchmarkSnapshotLargeReuse loads a commit that changed one file of the
// large repository (a packed clone plus one loose commit), given the snapshot
// of its parent: only the changed file is read and parsed, and only the
// checks that depend on it run again. The first iteration lists the changed
// directory; the others find it unchanged since the previous listing. It
// reports the median and 99th percentile (with 20 iterations: the slowest).
func BenchmarkSnapshotLargeReuse(b *testing.B) { benchReload(b, false) }

// BenchmarkSnapshotLargeCommits is BenchmarkSnapshotLargeReuse where every
// iteration is a new commit: it loads HEAD and HEAD~1 in turn, each given
// the snapshot of the other, so each lists the changed directory again and
// reloads a changed file, as a server following a branch does on every push.
func BenchmarkSnapshotLargeCommits(b *testing.B) { benchReload(b, true) }

func benchReload(b *testing.B, alternate bool) {
	_, _, changed := largeRepos(b)
	r, err := Open(changed)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	prev, err := r.Snapshot("HEAD~1", nil)
	if err != nil {
		b.Fatal(err)
	}
	// A server loads the parent long before the next commit arrives: do not
	// time the collection of the full load's garbage.
	runtime.GC()
	b.ReportAllocs()
	before := r.blobReads.Load()
	var times []time.Duration
	for i := 0; b.Loop(); i++ {
		rev := "HEAD"
		if alternate && i%2 == 1 {
			rev = "HEAD~1"
		}
		start := time.Now()
		snap, err := r.Snapshot(rev, prev)
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
		if snap.Revision.SHA == prev.Revision.SHA {
			b.Fatal(fmt.Sprint("same revision ", snap.Revision.SHA))
		}
		if alternate {
			prev = snap
		}
	}
	b.ReportMetric(float64(r.blobReads.Load()-before)/float64(b.N), "blobs/op")
	reportPercentiles(b, times)
}

// reportPercentiles reports the median and 99th percentile of the iterations'
// durations, in milliseconds (with few iterations, p99 is the slowest).
func reportPercentiles(b *testing.B, times []time.Duration) {
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	at := func(q float64) float64 {
		i := min(int(q*float64(len(times))), len(times)-1)
		return float64(times[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
