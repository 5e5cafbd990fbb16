package flagdiff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/repogen"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// The benchmark repository: repogen.Large in a first commit, and a second
// commit changing 10 files (benchEdits). It is generated once per process,
// and only when a benchmark asks for it; set GITFLAGS_BENCH_DIR to keep it
// between runs.
var bench struct {
	once   sync.Once
	root   string
	temp   bool
	dir    string // work tree, every object loose (as committed)
	packed string // bare clone of dir: one packfile, as a clone or git gc leaves it
	err    error
}

func cleanupBench() {
	if bench.temp && bench.root != "" {
		os.RemoveAll(bench.root)
	}
}

// benchEdits are the 10 files the second commit changes: feature states
// turned on or off, values, weights of multivariate features, a segment
// override, an identity override, a feature's description and a segment's
// condition.
func benchEdits() map[string]func(doc map[string]any) {
	env := func(e string, i int) string {
		return fmt.Sprintf("environments/%s/features/%s.json", e, repogen.FeatureKey(i))
	}
	flip := func(d map[string]any) { d["enabled"] = d["enabled"] != true }
	return map[string]func(map[string]any){
		env("production", 1):  flip,
		env("production", 2):  flip,
		env("staging", 3):     flip,
		env("development", 4): func(d map[string]any) { d["value"] = "changed" },
		env("production", 5): func(d map[string]any) { // multivariate (every 5th)
			w := d["weights"].(map[string]any)
			for k := range w {
				w[k] = 0
				break
			}
		},
		env("staging", 10): func(d map[string]any) { delete(d, "weights") },
		env("production", 7): func(d map[string]any) {
			o := d["segment_overrides"].([]any)[0].(map[string]any)
			o["enabled"] = o["enabled"] != true
		},
		env("production", 8): func(d map[string]any) {
			o := d["identity_overrides"].([]any)[0].(map[string]any)
			o["identifiers"] = append(o["identifiers"].([]any), "new@example.com")
		},
		"features/" + repogen.FeatureKey(9) + ".json": func(d map[string]any) { d["description"] = "Changed." },
		"segments/" + repogen.SegmentKey(11) + ".json": func(d map[string]any) {
			c := d["rules"].([]any)[0].(map[string]any)["conditions"].([]any)[0].(map[string]any)
			c["value"] = fmt.Sprint(c["value"]) + "x"
		},
	}
}

// editJSON rewrites the JSON document at path with fn.
func editJSON(path string, fn func(map[string]any)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fn(doc)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

// benchRepo returns the benchmark repository (HEAD~1: the generated
// repository, HEAD: benchEdits), with loose objects.
func benchRepo(b *testing.B) string {
	loose, _ := benchRepos(b)
	return loose
}

// benchRepos returns the benchmark repository with loose objects, and its
// packed clone.
func benchRepos(b *testing.B) (loose, packed string) {
	b.Helper()
	gittest.Available(b)
	bench.once.Do(func() {
		bench.root = os.Getenv("GITFLAGS_BENCH_DIR")
		if bench.root == "" {
			bench.root, bench.err = os.MkdirTemp("", "gitflags-diff-bench-")
			bench.temp = true
		}
		if bench.err != nil {
			return
		}
		bench.dir = filepath.Join(bench.root, "diff10k")
		bench.packed = filepath.Join(bench.root, "diff10k-packed.git")
		if _, err := os.Stat(filepath.Join(bench.root, "diff10k.ready")); err == nil {
			return
		}
		os.RemoveAll(bench.dir)
		os.RemoveAll(bench.packed)
		if bench.err = repogen.Write(bench.dir, repogen.Large()); bench.err != nil {
			return
		}
		if _, bench.err = gittest.CommitDir(bench.dir, "Generated flag repository"); bench.err != nil {
			return
		}
		for p, fn := range benchEdits() {
			if bench.err = editJSON(filepath.Join(bench.dir, p), fn); bench.err != nil {
				return
			}
		}
		if _, bench.err = gittest.CommitDir(bench.dir, "Change 10 files"); bench.err != nil {
			return
		}
		// A clone over the git protocol writes one packfile with deltas.
		if _, bench.err = gittest.Output(bench.root, "clone", "-q", "--bare", "--no-local", bench.dir, bench.packed); bench.err != nil {
			return
		}
		bench.err = os.WriteFile(filepath.Join(bench.root, "diff10k.ready"), nil, 0o644)
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.dir, bench.packed
}

// benchIdentities returns n identities with the traits the generated
// segments read.
func benchIdentities(n int) []Identity {
	plans := []string{"free", "starter", "premium", "enterprise"}
	countries := []string{"DE", "FR", "NL", "US", "JP"}
	out := make([]Identity, n)
	for i := range out {
		out[i] = Identity{
			Identifier: fmt.Sprintf("user%d@example.com", i),
			Traits: map[string]any{
				"plan":        plans[i%len(plans)],
				"country":     countries[i%len(countries)],
				"user_id":     json.Number(fmt.Sprint(i)),
				"app_version": fmt.Sprintf("%d.%d.0", 1+i%6, i%20),
			},
		}
	}
	return out
}

// diffOnce runs what `gitflags diff HEAD~1 HEAD` runs, from opening the
// repository to the rendered report.
func diffOnce(b *testing.B, dir string, opts Options) *Report {
	base, head, repo, err := Sources(dir, "HEAD~1", "HEAD", false)
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	r, err := Compare(base, head, opts)
	if err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.WriteMarkdown(&out); err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkDiff10k: `gitflags diff HEAD~1 HEAD` on the 10,000-feature
// repository, the two revisions 10 files apart; with 100,000 identities
// evaluated on both sides.
func BenchmarkDiff10k(b *testing.B) {
	dir, packed := benchRepos(b)
	check := func(r *Report) {
		if !r.Valid() || len(r.Changes) < 10 {
			b.Fatalf("valid %v, %d changes", r.Valid(), len(r.Changes))
		}
	}
	for _, c := range []struct{ name, dir string }{{"loose", dir}, {"packed", packed}} {
		b.Run("revisions/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				check(diffOnce(b, c.dir, Options{}))
			}
		})
	}
	b.Run("identities=100000", func(b *testing.B) {
		ids := &IdentitySet{Source: "generated", All: benchIdentities(100_000)}
		b.ReportAllocs()
		for b.Loop() {
			r := diffOnce(b, dir, Options{Identities: ids})
			check(r)
			if r.Identities == nil || len(r.Identities.Environments) == 0 {
				b.Fatal("no identities evaluated")
			}
		}
	})
}

// BenchmarkLoadSides10k is the part of BenchmarkDiff10k that loads the two
// sides (the full load of the base dominates).
func BenchmarkLoadSides10k(b *testing.B) {
	dir := benchRepo(b)
	repo, err := gitstore.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	h, _ := repo.Resolve("HEAD")
	p, _ := repo.Resolve("HEAD~1")
	for b.Loop() {
		l, err := loadSides(Source{Name: "HEAD~1", Repo: repo, Commit: p}, Source{Name: "HEAD", Repo: repo, Commit: h})
		if err != nil || l.snaps[1] == nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDiff10kGivenBase is what BenchmarkDiff10k costs on top of the
// full load of the base: HEAD listed and loaded incrementally from it (the
// 10 changed files parsed), the changes described and rendered.
func BenchmarkDiff10kGivenBase(b *testing.B) {
	dir := benchRepo(b)
	repo, err := gitstore.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer repo.Close()
	p, _ := repo.Resolve("HEAD~1")
	h, _ := repo.Resolve("HEAD")
	base, err := repo.Snapshot(p.String(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		files, rev, err := repo.Files(h)
		if err != nil {
			b.Fatal(err)
		}
		head, err := gitstore.Load(rev, files, base)
		if err != nil {
			b.Fatal(err)
		}
		r := &Report{Compared: true, Changes: build(base, head)}
		sortChanges(r.Changes)
		var out bytes.Buffer
		if err := r.WriteMarkdown(&out); err != nil || len(r.Changes) < 10 {
			b.Fatal(err, len(r.Changes))
		}
	}
}
