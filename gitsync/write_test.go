package gitsync

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// TestWrite: a write runs with the sync lock held, its snapshot is served
// before Write returns, and the sync does not load or publish it again.
func TestWrite(t *testing.T) {
	dir := templateRepo(t)
	repo := openRepo(t, dir)
	s, rec, _ := start(t, Options{Repo: repo, Branch: "main", Interval: time.Hour})
	head := gittest.Run(t, dir, "rev-parse", "HEAD")
	waitFor(t, "the initial revision", func() bool { return rec.lastSHA() == head })
	published := rec.count()

	var sha string
	err := s.Write(func(served *flagrepo.Snapshot) (*flagrepo.Snapshot, error) {
		if served == nil || served.Revision.SHA != head {
			t.Errorf("Write got the served snapshot %v, want %s", served, head)
		}
		setDescription(t, dir, "written")
		sha = commit(t, dir, "a write")
		return repo.Snapshot(sha, served)
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec.lastSHA() != sha || description(rec.last()) != "written" || rec.count() != published+1 {
		t.Fatalf("after Write: served %s (%d publishes), want %s once", rec.lastSHA(), rec.count()-published, sha)
	}
	if got := s.Status().Served.SHA; got != sha {
		t.Errorf("status serves %s, want %s", got, sha)
	}
	// The watch saw the branch move; a sync finds nothing new.
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.count() != published+1 {
		t.Errorf("the written revision was published %d times", rec.count()-published)
	}

	// A write that fails or serves nothing publishes nothing.
	boom := errors.New("boom")
	if err := s.Write(func(*flagrepo.Snapshot) (*flagrepo.Snapshot, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("Write = %v, want the write's error", err)
	}
	if err := s.Write(func(*flagrepo.Snapshot) (*flagrepo.Snapshot, error) { return nil, nil }); err != nil {
		t.Error(err)
	}
	if rec.count() != published+1 {
		t.Errorf("a failed or empty write published")
	}
}
