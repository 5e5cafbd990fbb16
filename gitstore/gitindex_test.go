package gitstore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// TestIndexReplace: random removals and additions (new files, changed
// files) give the index whose entries are exactly the expected ones, in name
// order, each readable back, with the spare's memory reused or not.
func TestIndexReplace(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	empty, err := parseIndex(nil)
	if err != nil {
		t.Fatal(err)
	}
	x := empty
	want := map[string]plumbing.Hash{}
	var spare *gitIndex
	for round := range 200 {
		remove := map[string]bool{}
		var added []newIndexEntry
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range want {
				if !yield(n) {
					return
				}
			}
		})
		for range rng.IntN(4) { // remove some
			if len(names) > 0 {
				n := names[rng.IntN(len(names))]
				remove[n] = true
				delete(want, n)
			}
		}
		for range rng.IntN(5) { // add or change some
			n := fmt.Sprintf("dir%d/f%03d.json", rng.IntN(3), rng.IntN(300))
			if slices.ContainsFunc(added, func(e newIndexEntry) bool { return e.name == n }) {
				continue
			}
			var h plumbing.Hash
			h[0], h[1] = byte(round), byte(rng.IntN(256))
			if _, ok := want[n]; ok {
				remove[n] = true
			}
			want[n] = h
			added = append(added, newIndexEntry{name: n, hash: h, mode: filemode.Regular, size: 10, mtime: time.Unix(1e9, 0)})
		}
		next := x.replace(remove, added, spare)
		spare, x = x, next
		y, err := parseIndex(slices.Clone(x.data))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(y.entries) != len(want) || len(x.entries) != len(want) {
			t.Fatalf("round %d: %d entries (parsed %d), want %d", round, len(x.entries), len(y.entries), len(want))
		}
		for i, e := range y.entries {
			if i > 0 && y.entries[i-1].name >= e.name {
				t.Fatalf("round %d: %q after %q", round, e.name, y.entries[i-1].name)
			}
			if want[e.name] != e.hash || x.entries[i].name != e.name || x.entries[i].start != e.start || x.entries[i].end != e.end {
				t.Fatalf("round %d: entry %q differs from what was written or read back", round, e.name)
			}
		}
	}
}
