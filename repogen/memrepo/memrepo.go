// Package memrepo holds a flag repository in memory for tests: files by
// path, loaded the way gitstore loads commits (with blob hashes, so that
// flagrepo.Load reuses the documents of unchanged files from one snapshot
// to the next).
package memrepo

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
)

// Repo is a flag repository in memory: path -> content.
type Repo map[string][]byte

// Read reads the flag repository in directory dir.
func Read(tb testing.TB, dir string) Repo {
	tb.Helper()
	files, err := flagrepo.DirFiles(dir)
	if err != nil {
		tb.Fatal(err)
	}
	r := Repo{}
	for _, f := range files {
		data, err := f.Read()
		if err != nil {
			tb.Fatal(err)
		}
		r[f.Path] = data
	}
	return r
}

// Files lists r's files in path order, with their git-style blob hashes.
func (r Repo) Files() []flagrepo.File {
	out := make([]flagrepo.File, 0, len(r))
	for _, p := range slices.Sorted(maps.Keys(r)) {
		data := r[p]
		sum := sha1.Sum(data)
		out = append(out, flagrepo.File{Path: p, Mode: flagrepo.ModeRegular, Hash: hex.EncodeToString(sum[:]), Size: int64(len(data)),
			Read: func() ([]byte, error) { return data, nil }})
	}
	return out
}

// Edit decodes the JSON document at path, lets change modify it and
// stores it, indented; a path with no file fails the test (Set creates
// one).
func (r Repo) Edit(tb testing.TB, path string, change func(doc map[string]any)) {
	tb.Helper()
	data, ok := r[path]
	if !ok {
		tb.Fatalf("no file %s", path)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	change(doc)
	r.Set(tb, path, doc)
}

// Set stores doc at path, indented.
func (r Repo) Set(tb testing.TB, path string, doc map[string]any) {
	tb.Helper()
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	r[path] = append(data, '\n')
}
