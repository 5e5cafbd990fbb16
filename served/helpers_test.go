package served

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen/memrepo"
)

// memRepo is a flag repository held in memory (memrepo.Repo).
type memRepo = memrepo.Repo

func readTemplate(t testing.TB) memRepo {
	return memrepo.Read(t, filepath.Join("..", "flags-repo-template"))
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
	snap, err := flagrepo.Load(rev, r.Files(), b.snap)
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
