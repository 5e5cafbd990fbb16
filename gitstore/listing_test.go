package gitstore

import (
	"fmt"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/repogen/gittest"
)

// TestFilesReusesLeafListings: listings built with the leaf directories of
// the previous listing equal fresh listings, whatever order commits are
// listed in, and changing a listing's Files does not leak into the next.
func TestFilesReusesLeafListings(t *testing.T) {
	dir, first := newRepo(t, minimal)
	writeFiles(t, dir, map[string]string{"features/dark_mode.json": `{"id": 10, "description": "changed", "default": {"enabled": true}}`})
	second := gittest.CommitAll(t, dir, "change a feature")
	writeFiles(t, dir, map[string]string{"environments/production/features/banner.json": `{"weights": {"a": 50, "b": 50}}`})
	third := gittest.CommitAll(t, dir, "change an environment")

	list := func(r *Repo, sha string) string {
		t.Helper()
		files, _, err := r.Files(plumbing.NewHash(sha))
		if err != nil {
			t.Fatal(err)
		}
		out := ""
		for _, f := range files {
			data, err := f.Read()
			if err != nil {
				t.Fatal(err)
			}
			out += fmt.Sprintf("%s %s %d %d\n", f.Path, f.Hash, f.Mode, len(data))
		}
		// Callers may change their Files (Snapshot records sizes).
		for i := range files {
			files[i].Size = 12345
			files[i].Read = func() ([]byte, error) { return nil, fmt.Errorf("changed") }
		}
		return out
	}
	r := open(t, dir)
	for _, sha := range []string{first, second, third, first, third, second, second} {
		fresh := open(t, dir)
		if got, want := list(r, sha), list(fresh, sha); got != want {
			t.Fatalf("listing of %s with reuse:\n%s\nfresh:\n%s", sha, got, want)
		}
		files, _, err := r.Files(plumbing.NewHash(sha))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if f.Size != -1 {
				t.Fatalf("%s: size %d leaked from a previous listing", f.Path, f.Size)
			}
		}
	}
	snap, err := r.Snapshot(third, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := snap.Features["dark_mode"].Description; d != "changed" {
		t.Fatalf("description %q", d)
	}
}
