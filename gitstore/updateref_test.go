package gitstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/repogen/gittest"
)

const mainRef = plumbing.ReferenceName("refs/heads/main")

// bareRepo returns a bare clone of a repository holding minimal, and its
// commit.
func bareRepo(t *testing.T) (dir string, sha plumbing.Hash) {
	t.Helper()
	src, s := newRepo(t, minimal)
	dir = filepath.Join(t.TempDir(), "bare.git")
	gittest.Run(t, src, "clone", "-q", "--bare", src, dir)
	return dir, plumbing.NewHash(s)
}

// commitFile commits one file change on parent.
func commitFile(t *testing.T, r *Repo, parent plumbing.Hash, path, content string) plumbing.Hash {
	t.Helper()
	c, err := r.Commit(commitOpts(parent, FileChange{Path: path, Data: []byte(content)}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func revParse(t *testing.T, dir, rev string) string {
	t.Helper()
	return gittest.Run(t, dir, "rev-parse", "--verify", "-q", rev)
}

func TestUpdateRefCompareAndSwap(t *testing.T) {
	dir, first := bareRepo(t)
	r := open(t, dir)
	second := commitFile(t, r, first, "features/a.json", "{}\n")
	third := commitFile(t, r, first, "features/b.json", "{}\n")

	if err := r.UpdateRef(mainRef, second, first); err != nil {
		t.Fatal(err)
	}
	if got := revParse(t, dir, "main"); got != second.String() {
		t.Fatalf("main at %s, want %s", got, second)
	}
	// A stale old value moves nothing.
	err := r.UpdateRef(mainRef, third, first)
	if !errors.Is(err, ErrRefMoved) || !strings.Contains(err.Error(), second.String()) {
		t.Errorf("stale old: %v", err)
	}
	// A zero old value means the reference must not exist.
	if err := r.UpdateRef(mainRef, third, plumbing.ZeroHash); !errors.Is(err, ErrRefMoved) {
		t.Errorf("zero old on an existing branch: %v", err)
	}
	if got := revParse(t, dir, "main"); got != second.String() {
		t.Fatalf("main moved to %s", got)
	}
	// A new branch, in a new directory of refs/heads.
	branch := plumbing.ReferenceName("refs/heads/gitflags/production/dark_mode-1a2b3c")
	if err := r.UpdateRef(branch, third, plumbing.ZeroHash); err != nil {
		t.Fatal(err)
	}
	if got := revParse(t, dir, branch.String()); got != third.String() {
		t.Errorf("new branch at %s", got)
	}
	if err := r.UpdateRef("refs/heads/missing", third, first); !errors.Is(err, ErrRefMoved) {
		t.Errorf("old given for a missing branch: %v", err)
	}
	gittest.Run(t, dir, "fsck", "--strict", "--no-dangling")
	if left, _ := filepath.Glob(filepath.Join(dir, "refs", "heads", "*.lock")); len(left) > 0 {
		t.Errorf("lock files left: %v", left)
	}

	for _, bad := range []plumbing.ReferenceName{"main", "HEAD", "refs/heads/a..b", "refs/heads/x.lock", "refs/heads/../../config", "refs/heads/a b", "refs/heads/"} {
		if err := r.UpdateRef(bad, third, second); err == nil || errors.Is(err, ErrRefMoved) || !strings.Contains(err.Error(), string(bad)) {
			t.Errorf("UpdateRef(%q): %v", bad, err)
		}
	}
	if err := r.UpdateRef(mainRef, plumbing.NewHash(strings.Repeat("12", 20)), second); err == nil {
		t.Error("a missing commit was accepted")
	}
	if got := revParse(t, dir, "main"); got != second.String() {
		t.Fatalf("main moved to %s", got)
	}
}

// TestUpdateRefKeepsHandCommit: a commit made with the git binary between
// reading the branch and moving it is detected, and kept.
func TestUpdateRefKeepsHandCommit(t *testing.T) {
	dir, sha := newRepo(t, minimal)
	r := open(t, dir)
	base := plumbing.NewHash(sha)
	ours := commitFile(t, r, base, "features/ours.json", "{}\n")
	writeFiles(t, dir, map[string]string{"README.md": "# by hand\n"})
	hand := gittest.CommitAll(t, dir, "by hand")
	if err := r.UpdateRef(mainRef, ours, base); !errors.Is(err, ErrRefMoved) || !strings.Contains(err.Error(), hand) {
		t.Fatalf("UpdateRef over a hand commit: %v", err)
	}
	if got := revParse(t, dir, "main"); got != hand {
		t.Errorf("main at %s, want the hand commit %s", got, hand)
	}
	if st := gittest.Run(t, dir, "status", "--porcelain"); st != "" {
		t.Errorf("git status: %q", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "features", "ours.json")); err == nil {
		t.Error("the work tree got the refused commit's file")
	}
}

// TestUpdateRefLocked: a lock file held by another process refuses the update.
func TestUpdateRefLocked(t *testing.T) {
	dir, first := bareRepo(t)
	r := open(t, dir)
	second := commitFile(t, r, first, "features/a.json", "{}\n")
	lock := filepath.Join(dir, "refs", "heads", "main.lock")
	if err := os.WriteFile(lock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateRef(mainRef, second, first); err == nil || !strings.Contains(err.Error(), lock) {
		t.Errorf("UpdateRef with a lock held: %v", err)
	}
	if _, err := os.Stat(lock); err != nil {
		t.Errorf("someone else's lock file was removed: %v", err)
	}
	if got := revParse(t, dir, "main"); got != first.String() {
		t.Errorf("main moved to %s", got)
	}
}

// TestUpdateRefConcurrent: of goroutines moving the branch from the same
// commit, exactly one wins each round; the others see ErrRefMoved.
func TestUpdateRefConcurrent(t *testing.T) {
	dir, first := bareRepo(t)
	r := open(t, dir)
	cur := first
	const rounds, writers = 5, 8
	for round := range rounds {
		commits := make([]plumbing.Hash, writers)
		for i := range commits {
			commits[i] = commitFile(t, r, cur, "features/f.json", fmt.Sprintf("{\"round\": %d, \"writer\": %d}\n", round, i))
		}
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() { errs[i] = r.UpdateRef(mainRef, commits[i], cur) })
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both won", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, ErrRefMoved):
				t.Fatalf("round %d, writer %d: %v", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody won", round)
		}
		if got := revParse(t, dir, "main"); got != commits[winner].String() {
			t.Fatalf("round %d: main at %s, the winner wrote %s", round, got, commits[winner])
		}
		cur = commits[winner]
	}
	if n := gittest.Run(t, dir, "rev-list", "--count", "main"); n != fmt.Sprint(rounds+1) {
		t.Errorf("%s commits on main", n)
	}
}

// TestUpdateRefWorktree: moving the checked-out branch updates the work tree
// and the index like git's updateInstead; git status stays clean.
func TestUpdateRefWorktree(t *testing.T) {
	dir, sha := newRepo(t, minimal)
	r := open(t, dir)
	base := plumbing.NewHash(sha)
	c, err := r.Commit(commitOpts(base,
		FileChange{Path: "environments/production/features/dark_mode.json", Data: []byte("{\n  \"enabled\": false\n}\n")},
		FileChange{Path: "environments/staging/features/dark_mode.json", Data: []byte("{\n  \"enabled\": true\n}\n")},
		FileChange{Path: "segments/beta.json", Delete: true},
	))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateRef(mainRef, c, base); err != nil {
		t.Fatal(err)
	}
	if got := revParse(t, dir, "HEAD"); got != c.String() {
		t.Fatalf("HEAD at %s", got)
	}
	if st := gittest.Run(t, dir, "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Errorf("git status after the update:\n%s", st)
	}
	for p, want := range map[string]string{
		"environments/production/features/dark_mode.json": "{\n  \"enabled\": false\n}\n",
		"environments/staging/features/dark_mode.json":    "{\n  \"enabled\": true\n}\n",
		"README.md": minimal["README.md"],
	} {
		if got, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v", p, got, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "segments")); !os.IsNotExist(err) {
		t.Errorf("the emptied directory segments is still there: %v", err)
	}
	// git can go on committing on top, and the cache tree was not stale.
	writeFiles(t, dir, map[string]string{"environments/staging/features/x.json": "{}\n"})
	gittest.Run(t, dir, "add", "environments/staging/features/x.json")
	gittest.Run(t, dir, "commit", "-q", "-m", "next")
	if got := gittest.Run(t, dir, "ls-tree", "-r", "--name-only", "HEAD", "environments/staging"); got != "environments/staging/features/dark_mode.json\nenvironments/staging/features/x.json" {
		t.Errorf("commit by git after the update: %q", got)
	}
	gittest.Run(t, dir, "fsck", "--strict")

	// And back: the branch moves to an older commit, files come back.
	back, err := r.Resolve("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateRef(mainRef, base, back); err != nil {
		t.Fatal(err)
	}
	if st := gittest.Run(t, dir, "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Errorf("git status after moving back:\n%s", st)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "segments", "beta.json")); err != nil || string(got) != minimal["segments/beta.json"] {
		t.Errorf("segments/beta.json = %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "environments", "staging")); !os.IsNotExist(err) {
		t.Errorf("environments/staging is still there: %v", err)
	}
}

// TestUpdateRefWorktreeDirty: uncommitted changes to a file the update would
// change (in the work tree or staged, or an untracked file in the way) move
// nothing; changes to other files do not stop the update and are kept.
func TestUpdateRefWorktreeDirty(t *testing.T) {
	dir, sha := newRepo(t, minimal)
	r := open(t, dir)
	base := plumbing.NewHash(sha)
	touched := "environments/production/features/dark_mode.json"
	c, err := r.Commit(commitOpts(base,
		FileChange{Path: touched, Data: []byte("{\"enabled\": false}\n")},
		FileChange{Path: "features/new.json", Data: []byte("{}\n")},
	))
	if err != nil {
		t.Fatal(err)
	}
	refused := func(what, file string) {
		t.Helper()
		err := r.UpdateRef(mainRef, c, base)
		if !errors.Is(err, ErrWorktreeDirty) || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %v", what, err)
		}
		if got := revParse(t, dir, "main"); got != sha {
			t.Fatalf("%s: main moved to %s", what, got)
		}
	}

	writeFiles(t, dir, map[string]string{touched: "{\"enabled\": true, \"mine\": 1}\n"})
	refused("a modified file", touched)
	if got, _ := os.ReadFile(filepath.Join(dir, touched)); string(got) != "{\"enabled\": true, \"mine\": 1}\n" {
		t.Errorf("the uncommitted change was overwritten: %q", got)
	}
	gittest.Run(t, dir, "add", touched)
	refused("a staged change", touched)
	gittest.Run(t, dir, "reset", "-q", "--hard")

	writeFiles(t, dir, map[string]string{"features/new.json": "{\"untracked\": true}\n"})
	refused("an untracked file in the way", "features/new.json")
	if err := os.Remove(filepath.Join(dir, "features", "new.json")); err != nil {
		t.Fatal(err)
	}

	gittest.Run(t, dir, "rm", "-q", "--cached", touched)
	refused("a file removed from the index", touched)
	gittest.Run(t, dir, "reset", "-q", "--hard")

	// Dirty files the update does not touch are fine, and kept.
	writeFiles(t, dir, map[string]string{"README.md": "# mine\n", "notes.txt": "untracked\n"})
	if err := r.UpdateRef(mainRef, c, base); err != nil {
		t.Fatal(err)
	}
	if st := gittest.Run(t, dir, "status", "--porcelain"); st != "M README.md\n?? notes.txt" /* the leading space is trimmed */ {
		t.Errorf("git status: %q", st)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, touched)); string(got) != "{\"enabled\": false}\n" {
		t.Errorf("%s = %q", touched, got)
	}
}

// TestUpdateRefPackedRefs moves a branch held only in packed-refs.
func TestUpdateRefPackedRefs(t *testing.T) {
	for _, bare := range []bool{true, false} {
		t.Run(fmt.Sprint("bare=", bare), func(t *testing.T) {
			var dir string
			var first plumbing.Hash
			if bare {
				dir, first = bareRepo(t)
			} else {
				var sha string
				dir, sha = newRepo(t, minimal)
				first = plumbing.NewHash(sha)
			}
			gittest.Run(t, dir, "pack-refs", "--all")
			gitDir := gittest.Run(t, dir, "rev-parse", "--absolute-git-dir")
			if _, err := os.Stat(filepath.Join(gitDir, "refs", "heads", "main")); !os.IsNotExist(err) {
				t.Fatalf("main is still a loose reference: %v", err)
			}
			r := open(t, dir)
			second := commitFile(t, r, first, "features/a.json", "{}\n")
			if err := r.UpdateRef(mainRef, second, second); !errors.Is(err, ErrRefMoved) {
				t.Errorf("stale old: %v", err)
			}
			if err := r.UpdateRef(mainRef, second, first); err != nil {
				t.Fatal(err)
			}
			if got := revParse(t, dir, "main"); got != second.String() {
				t.Errorf("main at %s", got)
			}
			if !bare {
				if st := gittest.Run(t, dir, "status", "--porcelain"); st != "" {
					t.Errorf("git status: %q", st)
				}
			}
			gittest.Run(t, dir, "fsck", "--strict")
		})
	}
}

// TestUpdateRefIndexVersions: an index of version 3 (an intent-to-add entry
// has extended flags) keeps its other entries; version 4 is refused with a
// clear error and nothing moves.
func TestUpdateRefIndexVersions(t *testing.T) {
	dir, sha := newRepo(t, minimal)
	r := open(t, dir)
	base := plumbing.NewHash(sha)
	writeFiles(t, dir, map[string]string{"zz/later.txt": "later\n"})
	gittest.Run(t, dir, "add", "-N", "zz/later.txt")
	if v := indexVersion(t, dir); v != 3 {
		t.Fatalf("index version %d, want 3", v)
	}
	c := commitFile(t, r, base, "features/a.json", "{}\n")
	if err := r.UpdateRef(mainRef, c, base); err != nil {
		t.Fatal(err)
	}
	if st := gittest.Run(t, dir, "status", "--porcelain"); st != "A zz/later.txt" {
		t.Errorf("git status: %q", st)
	}
	if got := gittest.Run(t, dir, "ls-files"); got != "README.md\nenvironments/production/environment.json\nenvironments/production/features/banner.json\nenvironments/production/features/dark_mode.json\nfeatures/a.json\nfeatures/banner.json\nfeatures/dark_mode.json\ngitflags.json\nsegments/beta.json\nzz/later.txt" {
		t.Errorf("git ls-files:\n%s", got)
	}

	gittest.Run(t, dir, "update-index", "--index-version", "4")
	c2 := commitFile(t, r, c, "features/b.json", "{}\n")
	if err := r.UpdateRef(mainRef, c2, c); err == nil || !strings.Contains(err.Error(), "index version 4") {
		t.Errorf("index version 4: %v", err)
	}
	if got := revParse(t, dir, "main"); got != c.String() {
		t.Errorf("main moved to %s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "features", "b.json")); err == nil {
		t.Error("the work tree was changed")
	}
	for _, lock := range []string{"index.lock", "refs/heads/main.lock"} {
		if _, err := os.Stat(filepath.Join(dir, ".git", lock)); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", lock, err)
		}
	}
}

func indexVersion(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, ".git", "index"))
	if err != nil || len(data) < 8 {
		t.Fatalf("read the index: %v", err)
	}
	return int(data[7])
}

// TestUpdateRefIndexFollowsEveryWrite: a series of writes, each followed by
// the index and work tree (UpdateRef keeps the index it wrote, parsed, for
// the next write), with git changing the index in between: after each, the
// index lists exactly the commit's files with their blobs, plus what git
// staged meanwhile, and git sees no other change.
func TestUpdateRefIndexFollowsEveryWrite(t *testing.T) {
	dir, sha := newRepo(t, minimal)
	r := open(t, dir)
	head := plumbing.NewHash(sha)
	staged := ""
	for i := range 12 {
		var c plumbing.Hash
		switch i % 3 {
		case 0: // a new file
			c = commitFile(t, r, head, fmt.Sprintf("features/f%02d.json", i), fmt.Sprintf("{\"n\": %d}\n", i))
		case 1: // a changed file
			c = commitFile(t, r, head, "features/banner.json", fmt.Sprintf("{\"v\": %d}\n", i))
		default: // a removed file
			var err error
			c, err = r.Commit(commitOpts(head, FileChange{Path: fmt.Sprintf("features/f%02d.json", i-2), Delete: true}))
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := r.UpdateRef(mainRef, c, head); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		head = c
		if i == 4 { // git rewrites the index: a new staged file
			writeFiles(t, dir, map[string]string{"notes/staged.txt": "staged\n"})
			gittest.Run(t, dir, "add", "notes/staged.txt")
			staged = "A  notes/staged.txt"
		}
		if i == 7 { // git refreshes the index in place of ours
			gittest.Run(t, dir, "update-index", "--refresh")
		}
		if st := gittest.Run(t, dir, "status", "--porcelain"); st != staged {
			t.Fatalf("after write %d, git status: %q, want %q", i, st, staged)
		}
		want := gittest.Run(t, dir, "ls-tree", "-r", "--format=%(objectmode) %(objectname) 0\t%(path)", "HEAD")
		if got := gittest.Run(t, dir, "ls-files", "-s", "--", ":!notes"); got != want {
			t.Fatalf("after write %d, the index:\n%s\nwant the commit's files:\n%s", i, got, want)
		}
		if got := gittest.Run(t, dir, "diff-index", "--cached", "HEAD", "--", ":!notes"); got != "" {
			t.Fatalf("after write %d, the index differs from HEAD: %s", i, got)
		}
	}
	gittest.Run(t, dir, "fsck", "--strict")
}

// TestCommitSharedTrees: two commits on the same parent, each changing a
// different file of one directory, share that directory's decoded tree
// (treeCache); neither may see the other's change.
func TestCommitSharedTrees(t *testing.T) {
	dir, sha := newRepo(t, minimal)
	r := open(t, dir)
	base := plumbing.NewHash(sha)
	a := commitFile(t, r, base, "features/banner.json", "{\"a\": 1}\n")
	b := commitFile(t, r, base, "features/dark_mode.json", "{\"b\": 1}\n")
	for _, c := range []struct {
		commit  plumbing.Hash
		changed string
	}{{a, "features/banner.json"}, {b, "features/dark_mode.json"}} {
		if got := gittest.Run(t, dir, "diff", "--name-only", sha, c.commit.String()); got != c.changed {
			t.Errorf("commit %s changes %q, want only %s", c.commit, got, c.changed)
		}
	}
	gittest.Run(t, dir, "fsck", "--strict")
}
