package changes

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
)

// repo is a flag repository in memory: path -> content. Snapshots are loaded
// from it with content hashes, as from Git, so that a Load given the
// previous snapshot shares the documents of unchanged files.
type repo map[string][]byte

// template reads the template flag repository.
func template(t testing.TB) repo {
	t.Helper()
	return readDir(t, filepath.Join("..", "flags-repo-template"))
}

func readDir(t testing.TB, dir string) repo {
	t.Helper()
	files, err := flagrepo.DirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := repo{}
	for _, f := range files {
		data, err := f.Read()
		if err != nil {
			t.Fatal(err)
		}
		r[f.Path] = data
	}
	return r
}

func (r repo) files() []flagrepo.File {
	files := make([]flagrepo.File, 0, len(r))
	for _, p := range slices.Sorted(maps.Keys(r)) {
		data := r[p]
		sum := sha1.Sum(data)
		files = append(files, flagrepo.File{
			Path: p, Mode: flagrepo.ModeRegular, Hash: hex.EncodeToString(sum[:]), Size: int64(len(data)),
			Read: func() ([]byte, error) { return data, nil },
		})
	}
	return files
}

// load loads the repository, as a change of prev when prev is not nil.
func (r repo) load(t testing.TB, sha string, prev *flagrepo.Snapshot) *flagrepo.Snapshot {
	t.Helper()
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: sha, Author: "Ann", AuthorEmail: "ann@example.com"}, r.files(), prev)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// edit returns a copy of r with the JSON document at path changed by fn.
func (r repo) edit(t testing.TB, path string, fn func(doc map[string]any)) repo {
	t.Helper()
	data, ok := r[path]
	if !ok {
		t.Fatalf("no file %s", path)
	}
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	fn(doc)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	c := maps.Clone(r)
	c[path] = append(out, '\n')
	return c
}

// with returns a copy of r with path set to data (removed when nil).
func (r repo) with(path string, data []byte) repo {
	c := maps.Clone(r)
	if data == nil {
		delete(c, path)
	} else {
		c[path] = data
	}
	return c
}

// envKeys returns the keys of the environments in s.
func envKeys(s Set) []string { return slices.Sorted(maps.Keys(s.Environments)) }

// featureKeys returns the keys of the changed features of env in s.
func featureKeys(s Set, env string) []string {
	e := s.Environments[env]
	if e == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(e.Features))
}
