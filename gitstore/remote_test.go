package gitstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/repogen/gittest"
)

func TestScrubURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pass@example.com/r.git":               "https://example.com/r.git",
		"fetch https://tok@example.com/r.git: 401":          "fetch https://example.com/r.git: 401",
		"ssh://git@example.com/r.git":                       "ssh://example.com/r.git",
		"file:///srv/r.git":                                 "file:///srv/r.git",
		"git@example.com:org/r.git":                         "git@example.com:org/r.git",
		"a http://x:y@h/p and https://u:v@h2/q, no secrets": "a http://h/p and https://h2/q, no secrets",
	} {
		if got := ScrubURL(in); got != want {
			t.Errorf("ScrubURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadPasswordFile(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string][2]string{
		"alice:s3cret\n":          {"alice", "s3cret"},
		"  alice:pa:ss  \nmore\n": {"alice", "pa:ss"},
		"ghp_abcdef\n":            {TokenUsername, "ghp_abcdef"},
		"glpat-xyz":               {TokenUsername, "glpat-xyz"},
	} {
		p := filepath.Join(dir, "cred")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		u, pw, err := readPasswordFile(p)
		if err != nil || u != want[0] || pw != want[1] {
			t.Errorf("%q: %q %q %v", content, u, pw, err)
		}
	}
	for _, content := range []string{"", "\n\n", ":nouser", "nopass:"} {
		p := filepath.Join(dir, "cred")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readPasswordFile(p); err == nil {
			t.Errorf("%q: no error", content)
		} else if strings.Contains(err.Error(), "nouser") {
			t.Errorf("the error quotes the file: %v", err)
		}
	}
	if _, _, err := readPasswordFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "credentials file") {
		t.Errorf("missing file: %v", err)
	}
}

// bareRemote returns a bare repository with the minimal flag repository on
// main, and a work tree that pushes to it.
func bareRemote(t *testing.T) (bare, work string) {
	t.Helper()
	src, _ := newRepo(t, minimal)
	root := t.TempDir()
	bare = filepath.Join(root, "remote.git")
	work = filepath.Join(root, "work")
	gittest.Run(t, root, "clone", "-q", "--bare", src, bare)
	gittest.Run(t, root, "clone", "-q", bare, work)
	return bare, work
}

func TestCloneAndFetch(t *testing.T) {
	bare, work := bareRemote(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "clone")
	r, err := Clone(ctx, "file://"+bare, dir, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, err := r.RemoteBranch(); err != nil || b != "main" {
		t.Fatalf("RemoteBranch = %q, %v", b, err)
	}
	want := gittest.Run(t, bare, "rev-parse", "main")
	if h, err := r.Resolve(RemoteRef("main")); err != nil || h.String() != want {
		t.Fatalf("Resolve = %s, %v; want %s", h, err, want)
	}
	if snap, err := r.Snapshot(RemoteRef("main"), nil); err != nil || snap.Revision.SHA != want {
		t.Fatalf("Snapshot: %v", err)
	}
	// No local branch is written.
	if _, err := r.Resolve("refs/heads/main"); err == nil {
		t.Error("the clone has a local branch")
	}

	if changed, err := r.Fetch(ctx, RemoteOptions{}); err != nil || changed {
		t.Fatalf("Fetch with nothing new: %v, %v", changed, err)
	}
	writeFiles(t, work, map[string]string{"README.md": "# changed\n"})
	next := gittest.CommitAll(t, work, "change")
	gittest.Run(t, work, "push", "-q", "origin", "main")
	if changed, err := r.Fetch(ctx, RemoteOptions{}); err != nil || !changed {
		t.Fatalf("Fetch after a push: %v, %v", changed, err)
	}
	if h, _ := r.Resolve(RemoteRef("main")); h.String() != next {
		t.Fatalf("after fetch: %s, want %s", h, next)
	}

	// A force-push to an unrelated history is followed.
	gittest.Run(t, work, "reset", "-q", "--hard", "HEAD~1")
	writeFiles(t, work, map[string]string{"README.md": "# rewritten\n"})
	forced := gittest.CommitAll(t, work, "rewrite")
	gittest.Run(t, work, "push", "-q", "--force", "origin", "main")
	if changed, err := r.Fetch(ctx, RemoteOptions{}); err != nil || !changed {
		t.Fatalf("Fetch after a force-push: %v, %v", changed, err)
	}
	if h, _ := r.Resolve(RemoteRef("main")); h.String() != forced {
		t.Fatalf("after force-push: %s, want %s", h, forced)
	}

	// A missing branch.
	_, err = r.Fetch(ctx, RemoteOptions{Branch: "nope"})
	if !errors.Is(err, ErrBranchNotFound) || !strings.Contains(err.Error(), `branch "nope" does not exist`) {
		t.Fatalf("missing branch: %v", err)
	}

	// Cloning again into the same directory reopens it.
	r2, err := Clone(ctx, "file://"+bare, dir, RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r2.Close()
	// Another URL into it is refused.
	if _, err := Clone(ctx, "file://"+work, dir, RemoteOptions{}); err == nil || !strings.Contains(err.Error(), "another repository") {
		t.Fatalf("clone of another URL into it: %v", err)
	}
}

func TestCloneErrors(t *testing.T) {
	bare, _ := bareRemote(t)
	ctx := context.Background()
	for name, tc := range map[string]struct{ url, branch, want string }{
		"no repository": {"file://" + filepath.Join(t.TempDir(), "missing.git"), "main", "fetch file://"},
		"no branch":     {"file://" + bare, "nope", `branch "nope" does not exist`},
		"bad URL":       {"https://user:hunter2@exa mple.com/r.git", "main", "not a repository URL"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "clone")
			_, err := Clone(ctx, tc.url, dir, RemoteOptions{Branch: tc.branch})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("the error shows the password: %v", err)
			}
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				t.Errorf("a failed clone left %s behind", dir)
			}
		})
	}
}

// TestFetchCorruptPack: a remote whose pack is corrupt is a clear error and
// the last fetched commit stays.
func TestFetchCorruptPack(t *testing.T) {
	bare, work := bareRemote(t)
	ctx := context.Background()
	r, err := Clone(ctx, "file://"+bare, filepath.Join(t.TempDir(), "clone"), RemoteOptions{Branch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	before, _ := r.Resolve(RemoteRef("main"))
	writeFiles(t, work, map[string]string{"README.md": "# new\n"})
	gittest.CommitAll(t, work, "new")
	gittest.Run(t, work, "push", "-q", "origin", "main")
	gittest.Run(t, bare, "repack", "-a", "-d", "-q")
	packs, _ := filepath.Glob(filepath.Join(bare, "objects", "pack", "*.pack"))
	if len(packs) == 0 {
		t.Fatal("no pack")
	}
	for _, p := range packs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := 32; i < len(data)-20; i += 7 {
			data[i] ^= 0xff
		}
		os.Chmod(p, 0o644)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if changed, err := r.Fetch(ctx, RemoteOptions{Branch: "main"}); err == nil {
		h, _ := r.Resolve(RemoteRef("main"))
		_, serr := r.Snapshot(RemoteRef("main"), nil)
		ref, rerr := os.ReadFile(filepath.Join(r.GitDir(), "refs/remotes/origin/main"))
		t.Fatalf("fetch from a corrupt remote succeeded: changed %v, %s, %v; ref %q %v", changed, h, serr, ref, rerr)
	} else {
		t.Log(err)
	}
	if after, _ := r.Resolve(RemoteRef("main")); after != before || after == plumbing.ZeroHash {
		t.Fatalf("the ref moved to %s", after)
	}
	if _, err := r.Snapshot(RemoteRef("main"), nil); err != nil {
		t.Fatalf("the last fetched commit cannot be read: %v", err)
	}
	// The remote is repaired: the next fetch gets the new commit.
	os.RemoveAll(bare)
	gittest.Run(t, work, "clone", "-q", "--bare", work, bare)
	if changed, err := r.Fetch(ctx, RemoteOptions{Branch: "main"}); err != nil || !changed {
		t.Fatalf("fetch from the repaired remote: %v %v", changed, err)
	}
	if _, err := r.Snapshot(RemoteRef("main"), nil); err != nil {
		t.Fatal(err)
	}
}

// TestCompact: packs accumulate with fetches; Compact folds them into one
// and the fetched commits stay readable.
func TestCompact(t *testing.T) {
	bare, work := bareRemote(t)
	ctx := context.Background()
	r, err := Clone(ctx, "file://"+bare, filepath.Join(t.TempDir(), "clone"), RemoteOptions{Branch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var last string
	for i := range 5 {
		writeFiles(t, work, map[string]string{"README.md": strings.Repeat("x", i+1)})
		last = gittest.CommitAll(t, work, "change")
		gittest.Run(t, work, "push", "-q", "origin", "main")
		if _, err := r.Fetch(ctx, RemoteOptions{Branch: "main"}); err != nil {
			t.Fatal(err)
		}
	}
	packs := func() int {
		m, _ := filepath.Glob(filepath.Join(r.GitDir(), "objects", "pack", "pack-*.pack"))
		return len(m)
	}
	if n := packs(); n < 5 {
		t.Fatalf("%d packs after 6 fetches", n)
	}
	if done, err := r.Compact(10); err != nil || done {
		t.Fatalf("Compact below the threshold: %v %v", done, err)
	}
	if done, err := r.Compact(2); err != nil || !done {
		t.Fatalf("Compact: %v %v", done, err)
	}
	if n := packs(); n != 1 {
		t.Fatalf("%d packs after Compact", n)
	}
	snap, err := r.Snapshot(RemoteRef("main"), nil)
	if err != nil || snap.Revision.SHA != last {
		t.Fatalf("after Compact: %v", err)
	}
	// Fetching goes on.
	writeFiles(t, work, map[string]string{"README.md": "after"})
	next := gittest.CommitAll(t, work, "after")
	gittest.Run(t, work, "push", "-q", "origin", "main")
	if changed, err := r.Fetch(ctx, RemoteOptions{Branch: "main"}); err != nil || !changed {
		t.Fatalf("fetch after Compact: %v %v", changed, err)
	}
	if snap, err := r.Snapshot(RemoteRef("main"), snap); err != nil || snap.Revision.SHA != next {
		t.Fatalf("snapshot after Compact and fetch: %v", err)
	}
}
