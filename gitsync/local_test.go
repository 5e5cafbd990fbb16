package gitsync

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// TestLocalFollowsCommits follows a work tree's main branch through commits
// by the git binary and by go-git, a ref replaced by rename, git pack-refs,
// an update of packed-refs alone, and refs/heads removed and recreated.
func TestLocalFollowsCommits(t *testing.T) {
	dir := templateRepo(t)
	repo := openRepo(t, dir)
	gitDir := filepath.Join(dir, ".git")
	// A long interval: only fsnotify can make these changes seen in time.
	s, rec, _ := start(t, Options{Repo: repo, Branch: "main", Interval: time.Hour})
	head := gittest.Run(t, dir, "rev-parse", "HEAD")
	waitFor(t, "the initial revision", func() bool { return rec.lastSHA() == head })

	// The git binary.
	setDescription(t, dir, "by git")
	sha := commit(t, dir, "git commit")
	waitFor(t, "the git binary's commit", func() bool { return rec.lastSHA() == sha })
	if d := description(rec.last()); d != "by git" {
		t.Fatalf("served description %q", d)
	}

	// go-git.
	setDescription(t, dir, "by go-git")
	gg, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := gg.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wt.Add("features/dark_mode.json"); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("go-git commit", &git.CommitOptions{Author: &author})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "go-git's commit", func() bool { return rec.lastSHA() == h.String() })

	// A ref file replaced by rename.
	setDescription(t, dir, "renamed ref")
	c := commitTree(t, dir, h.String(), "renamed ref")
	writeRefAtomically(t, gitDir, "refs/heads/main", c)
	waitFor(t, "the renamed ref", func() bool { return rec.lastSHA() == c })

	// git pack-refs moves the ref into packed-refs: same commit, no error.
	n := rec.count()
	gittest.Run(t, dir, "pack-refs", "--all")
	if _, err := os.Stat(filepath.Join(gitDir, "refs/heads/main")); !os.IsNotExist(err) {
		t.Fatalf("pack-refs left the loose ref: %v", err)
	}
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.count() != n || s.Status().LastError != "" {
		t.Fatalf("after pack-refs: %d publishes (want %d), error %q", rec.count(), n, s.Status().LastError)
	}

	// Only packed-refs changes (rewritten and renamed into place).
	setDescription(t, dir, "packed")
	c2 := commitTree(t, dir, c, "packed")
	packed, err := os.ReadFile(filepath.Join(gitDir, "packed-refs"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(gitDir, "packed-refs.new")
	if err := os.WriteFile(tmp, []byte(strings.ReplaceAll(string(packed), c, c2)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(gitDir, "packed-refs")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the packed ref", func() bool { return rec.lastSHA() == c2 })

	// refs/heads removed and recreated; the new loose ref is still seen.
	if err := os.RemoveAll(filepath.Join(gitDir, "refs/heads")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(gitDir, "refs/heads"), 0o755); err != nil {
		t.Fatal(err)
	}
	setDescription(t, dir, "recreated")
	c3 := commitTree(t, dir, c2, "recreated")
	writeRefAtomically(t, gitDir, "refs/heads/main", c3)
	waitFor(t, "the ref in the recreated directory", func() bool { return rec.lastSHA() == c3 })

	// A branch in a new subdirectory of refs/heads, then checked out: HEAD
	// followers see it; main followers do not.
	if st := s.Status(); st.Served == nil || st.Served.SHA != c3 || st.Mode != ModeLocal || st.Failures != 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestLocalFollowsHEAD follows HEAD: a checkout of another branch, whose ref
// lives in a directory created after the watch started, is served.
func TestLocalFollowsHEAD(t *testing.T) {
	dir := templateRepo(t)
	repo := openRepo(t, dir)
	_, rec, _ := start(t, Options{Repo: repo, Interval: time.Hour})
	head := gittest.Run(t, dir, "rev-parse", "HEAD")
	waitFor(t, "the initial revision", func() bool { return rec.lastSHA() == head })

	gittest.Run(t, dir, "checkout", "-q", "-b", "team/feature")
	setDescription(t, dir, "on a branch")
	sha := commit(t, dir, "on a branch")
	waitFor(t, "the branch's commit", func() bool { return rec.lastSHA() == sha })
	gittest.Run(t, dir, "checkout", "-q", "main")
	waitFor(t, "main again", func() bool { return rec.lastSHA() == head })
}

// TestLocalLinkedWorktree follows a linked work tree (git worktree add),
// whose branches live in the main repository's Git directory: commits made
// in it, and in the main work tree on the branch it has checked out, are
// seen through fsnotify (the interval is an hour).
func TestLocalLinkedWorktree(t *testing.T) {
	main := templateRepo(t)
	linked := filepath.Join(t.TempDir(), "linked")
	gittest.Run(t, main, "worktree", "add", "-q", "-b", "review", linked)
	repo := openRepo(t, linked)
	_, rec, _ := start(t, Options{Repo: repo, Interval: time.Hour})
	head := gittest.Run(t, linked, "rev-parse", "HEAD")
	waitFor(t, "the initial revision", func() bool { return rec.lastSHA() == head })

	setDescription(t, linked, "committed in the linked work tree")
	sha := commit(t, linked, "in the linked work tree")
	waitFor(t, "the linked work tree's commit", func() bool { return rec.lastSHA() == sha })
	if got := description(rec.last()); got != "committed in the linked work tree" {
		t.Fatalf("served description %q", got)
	}

	// The branch moved from the main work tree (a merge, a reset, a push
	// into it): the linked work tree's HEAD names it, so it is served.
	gittest.Run(t, main, "update-ref", "refs/heads/review", head)
	waitFor(t, "the branch moved from the main work tree", func() bool { return rec.lastSHA() == head })
}

// TestLocalBareRepository follows a bare repository that commits are pushed
// into.
func TestLocalBareRepository(t *testing.T) {
	src := templateRepo(t)
	bare := filepath.Join(t.TempDir(), "flags.git")
	gittest.Run(t, src, "clone", "-q", "--bare", src, bare)
	gittest.Run(t, src, "remote", "add", "bare", bare)
	repo := openRepo(t, bare)
	_, rec, _ := start(t, Options{Repo: repo, Branch: "main", Interval: time.Hour})
	waitFor(t, "the initial revision", func() bool { return rec.count() == 1 })

	setDescription(t, src, "pushed")
	sha := commit(t, src, "pushed")
	gittest.Run(t, src, "push", "-q", "bare", "main")
	waitFor(t, "the pushed commit", func() bool { return rec.lastSHA() == sha })
}

// TestLocalInvalidCommit: an invalid commit is never published; its problems
// are in the status and logged once; a fix is published.
func TestLocalInvalidCommit(t *testing.T) {
	dir := templateRepo(t)
	repo := openRepo(t, dir)
	s, rec, logs := start(t, Options{Repo: repo, Branch: "main", Interval: time.Hour})
	good := gittest.Run(t, dir, "rev-parse", "HEAD")
	waitFor(t, "the initial revision", func() bool { return rec.lastSHA() == good })

	breakFeature(t, dir)
	bad := commit(t, dir, "break dark_mode")
	waitFor(t, "the invalid revision in the status", func() bool {
		n := s.Status().Newest
		return n != nil && n.Revision.SHA == bad
	})
	st := s.Status()
	if st.Newest.Valid || len(st.Newest.Problems) == 0 {
		t.Fatalf("newest %+v", st.Newest)
	}
	for _, p := range st.Newest.Problems {
		if p.File != "features/dark_mode.json" || p.Line == 0 || p.Message == "" {
			t.Errorf("problem without file and line: %+v", p)
		}
	}
	if st.Newest.Revision.Author != gittest.Name || st.Newest.Revision.Message == "" {
		t.Errorf("newest revision not described: %+v", st.Newest.Revision)
	}
	if st.Served == nil || st.Served.SHA != good || rec.lastSHA() != good || rec.count() != 1 {
		t.Fatalf("the invalid revision was served: status %s, published %d", st.Served.SHA, rec.count())
	}
	if st.Rejected != 1 {
		t.Errorf("rejected = %d", st.Rejected)
	}
	// More checks see the same revision: nothing is logged again.
	for range 3 {
		if err := s.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "not served"); n != 1 {
		t.Fatalf("the invalid revision was logged %d times:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), bad[:12]) {
		t.Errorf("the log does not name the revision:\n%s", logs)
	}

	setDescription(t, dir, "fixed")
	fix := commit(t, dir, "fix dark_mode")
	// The status is updated just after Publish returns: wait for both.
	waitFor(t, "the fix", func() bool {
		n := s.Status().Newest
		return rec.lastSHA() == fix && n != nil && n.Revision.SHA == fix
	})
	st = s.Status()
	if !st.Newest.Valid || st.Newest.Revision.SHA != fix || len(st.Newest.Problems) != 0 {
		t.Fatalf("newest after the fix: %+v", st.Newest)
	}
}

// TestPublishRefused: a revision Publish refuses is treated like an invalid
// one, and Sync reports the validation error of an invalid revision.
func TestPublishRefused(t *testing.T) {
	dir := templateRepo(t)
	repo := openRepo(t, dir)
	rec := &recorder{fail: errors.New("does not compile")}
	s, err := New(Options{Repo: repo, Branch: "main", Publish: rec.publish})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "does not compile") {
		t.Fatalf("Sync: %v", err)
	}
	if st := s.Status(); st.Served != nil || st.Newest == nil || st.Newest.Valid || st.Rejected != 1 {
		t.Fatalf("status %+v", st)
	}
	breakFeature(t, dir)
	commit(t, dir, "break")
	var ve *flagrepo.ValidationError
	if err := s.Sync(context.Background()); !errors.As(err, &ve) {
		t.Fatalf("Sync of an invalid revision: %v", err)
	}
}

// TestLocalMissingBranch: a branch that does not exist is a clear error.
func TestLocalMissingBranch(t *testing.T) {
	dir := templateRepo(t)
	repo := openRepo(t, dir)
	rec := &recorder{}
	s, err := New(Options{Repo: repo, Branch: "nope", Publish: rec.publish})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Sync(context.Background())
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("Sync: %v", err)
	}
	if st := s.Status(); st.ConsecutiveFailures != 1 || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
}
