package gitsync

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWorktree serves uncommitted edits of a working directory, debounced:
// a burst of saves is one load; an invalid save is not served; a new
// directory is watched.
func TestWorktree(t *testing.T) {
	dir := templateRepo(t)
	s, rec, logs := start(t, Options{WatchWorktree: true, Dir: dir, Debounce: 50 * time.Millisecond})
	waitFor(t, "the initial load", func() bool { return rec.count() == 1 })
	if snap := rec.last(); snap.Revision.SHA != "" || snap.Revision.Author != "working directory" {
		t.Fatalf("revision %+v", snap.Revision)
	}
	if st := s.Status(); st.Mode != ModeWorktree || st.Dir != dir {
		t.Fatalf("status %+v", st)
	}

	// A burst of saves within the debounce time: one load, the last content.
	for i := range 5 {
		setDescription(t, dir, fmt.Sprint("save ", i))
	}
	waitFor(t, "the last save", func() bool { return description(rec.last()) == "save 4" })
	if n := rec.count(); n > 3 {
		t.Errorf("%d publishes for a burst of 5 saves; want them debounced", n)
	}

	// An invalid save is not served, and logged once even when saved again.
	before := rec.count()
	breakFeature(t, dir)
	waitFor(t, "the invalid tree in the status", func() bool {
		n := s.Status().Newest
		return n != nil && !n.Valid && len(n.Problems) > 0
	})
	breakFeature(t, dir)
	writeFile(t, dir, "notes.txt", "unrelated")
	waitFor(t, "the second load", func() bool { return s.Status().Successes >= 4 })
	if rec.count() != before {
		t.Fatal("an invalid working tree was published")
	}
	if n := strings.Count(logs.String(), "not served"); n != 1 {
		t.Errorf("logged %d times", n)
	}

	// A feature in a directory created after the start (watched as created).
	setDescription(t, dir, "fixed")
	waitFor(t, "the fix", func() bool { return description(rec.last()) == "fixed" })
	// A directory created after the start is watched: a save in it, then
	// another save in it, each make a load.
	n := s.Status().Successes
	if err := os.MkdirAll(filepath.Join(dir, "docs", "notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the load after mkdir", func() bool { return s.Status().Successes > n })
	for i := range 2 {
		n := s.Status().Successes
		writeFile(t, dir, "docs/notes/note.md", fmt.Sprint("note ", i))
		waitFor(t, "a load after a save in a new directory", func() bool { return s.Status().Successes > n })
	}
}
