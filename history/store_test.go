package history

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/gitstore"
)

// logBuffer is a logger that keeps what it logs.
type logBuffer struct {
	bytes.Buffer
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(&l.Buffer, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openIndex opens the saved index of key in dir and indexes head, returning
// it with the number of commits it diffed to do so.
func openIndex(t *testing.T, repo *gitstore.Repo, dir, key, head string, log *slog.Logger) (*Index, int) {
	t.Helper()
	ix, err := Open(repo, dir, key, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	if err := ix.Update(context.Background(), plumbing.NewHash(head)); err != nil {
		t.Fatal(err)
	}
	return ix, ix.diffed
}

// answers lists every page of a set of queries, encoded.
func answers(t *testing.T, ix *Index, head string) []string {
	t.Helper()
	var out []string
	for _, q := range []Query{
		{}, {Limit: 1}, {Limit: 3}, {Feature: "a"}, {Feature: "b"}, {Feature: "c"}, {Feature: "z"},
		{Segment: "beta"}, {Environment: "prod"}, {Environment: "dev"},
		{Feature: "a", Environment: "prod", Limit: 2}, {Segment: "beta", Environment: "prod"},
	} {
		for {
			p := query(t, ix, head, q)
			out = append(out, dump(q)+" "+dump(p))
			if p.Next == "" {
				break
			}
			q.Cursor = p.Next
		}
	}
	return out
}

// sameAnswers checks that ix answers as a fresh in-memory index of head.
func sameAnswers(t *testing.T, ix *Index, repo *gitstore.Repo, head string) {
	t.Helper()
	got, want := answers(t, ix, head), answers(t, New(repo), head)
	if len(got) != len(want) {
		t.Fatalf("%d pages, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("page %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// TestOpenReopen: an index saved to a file and opened again diffs no commit
// it had indexed, only the new ones, and answers as a fresh index does.
func TestOpenReopen(t *testing.T) {
	r, c := example(t)
	repo := r.open()
	dir := t.TempDir()
	ix, n := openIndex(t, repo, dir, "k", c["c10"], nil)
	if n != 9 || ix.Len() != 9 {
		t.Fatalf("first build: diffed %d, Len %d; want 9, 9", n, ix.Len())
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName("k"))); err != nil {
		t.Fatal(err)
	}

	ix, n = openIndex(t, repo, dir, "k", c["c10"], nil)
	if n != 0 || ix.Len() != 9 {
		t.Errorf("reopened: diffed %d, Len %d; want 0, 9", n, ix.Len())
	}
	sameAnswers(t, ix, repo, c["c10"])

	// Two new commits: only they are diffed, and saved.
	c11 := r.commit(alice, "z added", map[string]string{"features/z.json": "{}"})
	c12 := r.commit(bob, "z changed", map[string]string{"features/z.json": `{"id": 26}`, "environments/prod/features/z.json": prodB})
	if err := ix.Update(context.Background(), plumbing.NewHash(c12)); err != nil {
		t.Fatal(err)
	}
	if ix.diffed != 2 {
		t.Errorf("two new commits: diffed %d", ix.diffed)
	}
	ix.Close()
	ix, n = openIndex(t, repo, dir, "k", c12, nil)
	if n != 0 || ix.Len() != 11 {
		t.Errorf("reopened after two more: diffed %d, Len %d; want 0, 11", n, ix.Len())
	}
	sameAnswers(t, ix, repo, c12)
	// An older head of the saved chain costs nothing either.
	if err := ix.Update(context.Background(), plumbing.NewHash(c11)); err != nil || ix.diffed != 0 {
		t.Errorf("older head: %v, diffed %d", err, ix.diffed)
	}

	// After Close the index goes on in memory.
	ix.Close()
	c13 := r.commit(alice, "z removed", map[string]string{"features/z.json": ""})
	if got := summary(query(t, ix, c13, Query{Feature: "z", Limit: 1}), map[string]string{"c13": c13}); len(got) != 1 || got[0] != "c13 features/z.json" {
		t.Errorf("after Close: %q", got)
	}
}

// TestOpenRewrite: a branch rewritten while the server was down is indexed
// again from the last commit the saved and the new history share, and the
// file forgets the dropped commits.
func TestOpenRewrite(t *testing.T) {
	r, c := example(t)
	repo := r.open()
	dir := t.TempDir()
	ix, _ := openIndex(t, repo, dir, "k", c["c10"], nil)
	ix.Close()
	size := fileSize(t, filepath.Join(dir, FileName("k")))

	r.git("reset", "-q", "--hard", c["c6"])
	r.commit(bob, "a rewritten", map[string]string{"features/a.json": `{"id": 1, "rewritten": true}`})
	n2 := r.commit(alice, "b again", map[string]string{"environments/prod/features/b.json": prodB})
	ix, n := openIndex(t, repo, dir, "k", n2, nil)
	// c1 c2 c3 c4 c6 are kept; n1 and n2 are new.
	if n != 2 || ix.Len() != 7 {
		t.Errorf("after the rewrite: diffed %d, Len %d; want 2, 7", n, ix.Len())
	}
	sameAnswers(t, ix, repo, n2)
	ix.Close()
	ix, n = openIndex(t, repo, dir, "k", n2, nil)
	if n != 0 || ix.Len() != 7 {
		t.Errorf("reopened after the rewrite: diffed %d, Len %d; want 0, 7", n, ix.Len())
	}
	sameAnswers(t, ix, repo, n2)
	if _, err := ix.Query(context.Background(), plumbing.NewHash(n2), Query{Cursor: c["c9"]}); !isQueryError(err, "cursor") {
		t.Errorf("cursor of a dropped commit: %v", err)
	}
	ix.Close()
	if got := fileSize(t, filepath.Join(dir, FileName("k"))); got >= size {
		t.Errorf("file of 7 commits is %d bytes, that of 9 was %d", got, size)
	}

	// An unrelated history replaces everything.
	r.git("checkout", "-q", "--orphan", "other")
	r.git("rm", "-rqf", ".")
	o1 := r.commit(alice, "other root", map[string]string{"features/z.json": "{}"})
	ix, n = openIndex(t, repo, dir, "k", o1, nil)
	if n != 1 || ix.Len() != 1 {
		t.Errorf("orphan history: diffed %d, Len %d; want 1, 1", n, ix.Len())
	}
	ix.Close()
	ix, n = openIndex(t, repo, dir, "k", o1, nil)
	if n != 0 || ix.Len() != 1 {
		t.Errorf("orphan history reopened: diffed %d, Len %d; want 0, 1", n, ix.Len())
	}
	sameAnswers(t, ix, repo, o1)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestOpenDamaged: a damaged file is repaired with a warning: the commits
// of its good records are kept, the others indexed again; a file that is
// not an index of this key is rebuilt. The answers are those of a fresh
// index, and the next start diffs nothing.
func TestOpenDamaged(t *testing.T) {
	r, c := example(t)
	repo := r.open()
	head := c["c10"]
	src := t.TempDir()
	ix, _ := openIndex(t, repo, src, "k", head, nil)
	ix.Close()
	good, err := os.ReadFile(filepath.Join(src, FileName("k")))
	if err != nil {
		t.Fatal(err)
	}
	last := int(lastRecord(t, repo, src)) // the start of the last record

	for _, tc := range []struct {
		name   string
		damage func(path string) error
		diffed int    // commits indexed again
		warn   string // in the log; "" for none
	}{
		{"last record's byte flipped", func(p string) error {
			b := bytes.Clone(good)
			b[len(b)-3] ^= 0x40
			return os.WriteFile(p, b, 0o644)
		}, 1, "damaged"},
		{"first record's byte flipped", func(p string) error {
			b := bytes.Clone(good)
			b[headerSize+20] ^= 1
			return os.WriteFile(p, b, 0o644)
		}, 9, "damaged"},
		{"cut in the last record", func(p string) error {
			return os.WriteFile(p, good[:len(good)-5], 0o644)
		}, 1, "damaged"},
		{"cut in a length", func(p string) error {
			return os.WriteFile(p, good[:last+3], 0o644)
		}, 1, "damaged"},
		{"zeros appended", func(p string) error {
			return os.WriteFile(p, append(bytes.Clone(good), make([]byte, 4096)...), 0o644)
		}, 0, "damaged"},
		{"last record repeated", func(p string) error {
			return os.WriteFile(p, append(bytes.Clone(good), good[last:]...), 0o644)
		}, 0, "does not continue the chain"},
		{"huge length", func(p string) error {
			b := bytes.Clone(good)
			copy(b[last:], []byte{0xff, 0xff, 0xff, 0x7f})
			return os.WriteFile(p, b, 0o644)
		}, 1, "damaged"},
		{"header damaged", func(p string) error {
			b := bytes.Clone(good)
			b[10] ^= 1
			return os.WriteFile(p, b, 0o644)
		}, 9, "not one of this version"},
		{"another format version", func(p string) error {
			b := bytes.Clone(good)
			b[7]++
			return os.WriteFile(p, b, 0o644)
		}, 9, "not one of this version"},
		{"not an index", func(p string) error {
			return os.WriteFile(p, []byte(strings.Repeat("not an index\n", 100)), 0o644)
		}, 9, "not one of this version"},
		{"short", func(p string) error {
			return os.WriteFile(p, good[:5], 0o644)
		}, 9, "not one of this version"},
		{"empty", func(p string) error {
			return os.WriteFile(p, nil, 0o644)
		}, 9, ""},
		{"a directory", func(p string) error {
			return os.Mkdir(p, 0o755)
		}, 9, "cannot be opened"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName("k"))
			if err := tc.damage(path); err != nil {
				t.Fatal(err)
			}
			var log logBuffer
			ix, n := openIndex(t, repo, dir, "k", head, log.logger())
			if n != tc.diffed || ix.Len() != 9 {
				t.Errorf("diffed %d, Len %d; want %d, 9", n, ix.Len(), tc.diffed)
			}
			if tc.warn == "" && log.Len() > 0 || tc.warn != "" && (!strings.Contains(log.String(), tc.warn) || !strings.Contains(log.String(), "level=WARN")) {
				t.Errorf("log %q, want a warning with %q", log.String(), tc.warn)
			}
			sameAnswers(t, ix, repo, head)
			ix.Close()
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, good) {
				t.Errorf("repaired file: %v, equal to the good one: %t", err, bytes.Equal(got, good))
			}
			_, n = openIndex(t, repo, dir, "k", head, log.logger())
			if n != 0 {
				t.Errorf("after the repair: diffed %d", n)
			}
		})
	}
}

// lastRecord returns where the last record of the index of key "k" in dir
// starts, read back by a fresh Open.
func lastRecord(t *testing.T, repo *gitstore.Repo, dir string) int64 {
	t.Helper()
	o, err := Open(repo, dir, "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	o.update.Lock()
	o.load()
	ends := o.store.ends
	o.update.Unlock()
	if len(ends) != 9 {
		t.Fatalf("%d records, want 9", len(ends))
	}
	return ends[len(ends)-2]
}

// TestOpenKeys: indexes of different branches or repositories in one
// directory keep different files; a file of another key is not used.
func TestOpenKeys(t *testing.T) {
	r1, c := example(t)
	r2 := newTestRepo(t)
	o1 := r2.commit(alice, "other root", map[string]string{"features/a.json": featureA1})
	o2 := r2.commit(bob, "other a", map[string]string{"features/a.json": featureA2})
	repo1, repo2 := r1.open(), r2.open()
	side := r1.git("rev-parse", "side") // c1 c2 c3 c4 c5
	dir := t.TempDir()
	keys := []struct {
		repo      *gitstore.Repo
		key, head string
		len       int
	}{
		{repo1, r1.dir + "\x00main", c["c10"], 9},
		{repo1, r1.dir + "\x00side", side, 5},
		{repo2, r2.dir + "\x00main", o2, 2},
	}
	for _, k := range keys {
		ix, n := openIndex(t, k.repo, dir, k.key, k.head, nil)
		if n != k.len {
			t.Errorf("%q: diffed %d, want %d", k.key, n, k.len)
		}
		ix.Close()
	}
	files, err := os.ReadDir(dir)
	if err != nil || len(files) != len(keys) {
		t.Fatalf("%d files, want %d: %v", len(files), len(keys), err)
	}
	for _, k := range keys {
		ix, n := openIndex(t, k.repo, dir, k.key, k.head, nil)
		if n != 0 || ix.Len() != k.len {
			t.Errorf("%q reopened: diffed %d, Len %d; want 0, %d", k.key, n, ix.Len(), k.len)
		}
		sameAnswers(t, ix, k.repo, k.head)
		ix.Close()
	}
	if got := summary(query(t, New(repo2), o2, Query{Feature: "a"}), map[string]string{"o1": o1, "o2": o2}); len(got) != 2 {
		t.Errorf("second repository: %q", got)
	}

	// The file of one key given the name of another is rebuilt.
	b, err := os.ReadFile(filepath.Join(dir, FileName(keys[0].key)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName(keys[2].key)), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var log logBuffer
	ix, n := openIndex(t, repo2, dir, keys[2].key, o2, log.logger())
	if n != 2 || !strings.Contains(log.String(), "not one of this version, repository and branch") {
		t.Errorf("another key's file: diffed %d, log %q", n, log.String())
	}
	sameAnswers(t, ix, repo2, o2)
}

// TestOpenWriteFails: when the file cannot be written, the index says so
// once and goes on in memory.
func TestOpenWriteFails(t *testing.T) {
	r, c := example(t)
	repo := r.open()
	dir := t.TempDir()
	var log logBuffer
	ix, _ := openIndex(t, repo, dir, "k", c["c4"], log.logger())
	ix.store.f.Close() // every write fails from now on
	if err := ix.Update(context.Background(), plumbing.NewHash(c["c10"])); err != nil {
		t.Fatal(err)
	}
	if ix.store != nil || strings.Count(log.String(), "cannot be saved") != 1 {
		t.Errorf("store %v, log %q", ix.store, log.String())
	}
	sameAnswers(t, ix, repo, c["c10"])
	// The next start indexes the commits that were not saved.
	ix, n := openIndex(t, repo, dir, "k", c["c10"], nil)
	if n != 5 || ix.Len() != 9 {
		t.Errorf("reopened: diffed %d, Len %d; want 5, 9", n, ix.Len())
	}
}
