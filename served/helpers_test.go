package served

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gitflags/gitflags/flagrepo"
)

// memRepo is a flag repository held in memory (path -> content), loaded the
// way gitstore loads commits: with blob hashes, so that unchanged documents
// are reused from one snapshot to the next.
type memRepo map[string][]byte

func readTemplate(t testing.TB) memRepo {
	t.Helper()
	files, err := flagrepo.DirFiles(filepath.Join("..", "flags-repo-template"))
	if err != nil {
		t.Fatal(err)
	}
	r := memRepo{}
	for _, f := range files {
		data, err := f.Read()
		if err != nil {
			t.Fatal(err)
		}
		r[f.Path] = data
	}
	return r
}

func (r memRepo) files() []flagrepo.File {
	var out []flagrepo.File
	for _, p := range slices.Sorted(maps.Keys(r)) {
		data := r[p]
		sum := sha1.Sum(data)
		out = append(out, flagrepo.File{Path: p, Hash: hex.EncodeToString(sum[:]), Size: int64(len(data)),
			Read: func() ([]byte, error) { return data, nil }})
	}
	return out
}

// edit decodes the JSON document at path, lets change modify it and stores it.
func (r memRepo) edit(t testing.TB, path string, change func(doc map[string]any)) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(r[path], &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	change(doc)
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	r[path] = append(data, '\n')
}

// builder builds the served states of successive memRepo contents, as a
// server publishes successive revisions: each snapshot loaded with the
// previous one, each state built from the previous one.
type builder struct {
	t    testing.TB
	snap *flagrepo.Snapshot
	st   *State
	n    int
}

func (b *builder) build(r memRepo) *State {
	b.t.Helper()
	b.n++
	rev := flagrepo.Revision{SHA: fmt.Sprintf("%040d", b.n), Time: time.Date(2026, 1, 1, 0, 0, b.n, 0, time.UTC)}
	snap, err := flagrepo.Load(rev, r.files(), b.snap)
	if err != nil {
		b.t.Fatal(err)
	}
	st, err := Build(snap, b.st)
	if err != nil {
		b.t.Fatal(err)
	}
	b.snap, b.st = snap, st
	return st
}
