package gitstore

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/repogen/gittest"
)

// gitDiffTree returns what git diff-tree says changed between two commits, in
// TreeChange form (submodules left out, as DiffTrees leaves them out).
func gitDiffTree(t *testing.T, dir, from, to string) []TreeChange {
	t.Helper()
	out := gittest.Run(t, dir, "diff-tree", "-r", "--no-renames", "--no-commit-id", "-z", from, to)
	fields := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
	var got []TreeChange
	for i := 0; i+1 < len(fields); i += 2 {
		// :<old mode> <new mode> <old sha> <new sha> <status>
		meta := strings.Fields(strings.TrimPrefix(fields[i], ":"))
		c := TreeChange{Path: fields[i+1], From: plumbing.NewHash(meta[2]), To: plumbing.NewHash(meta[3])}
		if meta[0] == "160000" {
			c.From = plumbing.ZeroHash
		}
		if meta[1] == "160000" {
			c.To = plumbing.ZeroHash
		}
		if c.From == c.To { // a mode change only, or a submodule on both sides
			continue
		}
		got = append(got, c)
	}
	return got
}

func treeOf(t *testing.T, r *Repo, rev string) plumbing.Hash {
	t.Helper()
	h, err := r.Resolve(rev)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.ReadCommit(h)
	if err != nil {
		t.Fatal(err)
	}
	return c.Tree
}

// TestDiffTreesMatchesGit: DiffTrees lists the same changes as git diff-tree
// -r for additions, modifications, deletions, files becoming directories and
// back, mode changes, submodules and names whose order depends on Git's
// directory rule ("a.json" sorts before the directory "a", which sorts as
// "a/", and after the file "a").
func TestDiffTreesMatchesGit(t *testing.T) {
	dir, _ := newRepo(t, map[string]string{
		"features/a.json":        "{}\n",
		"features/a-b.json":      "{}\n",
		"x/y/z.json":             "1\n",
		"x/y.json":               "2\n",
		"swap":                   "file\n",
		"exec.sh":                "#!/bin/sh\n",
		"environments/p/e.json":  "{}\n",
		"environments/p.json":    "{}\n",
		"schemas/same.json":      "{}\n",
		"environments/q/f/g.txt": "g\n",
	})
	// A submodule entry (a gitlink) without a .gitmodules: only the tree matters.
	gittest.Run(t, dir, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("1", 40)+",mod")
	gittest.Run(t, dir, "commit", "-q", "-m", "submodule")
	writeFiles(t, dir, map[string]string{
		"features/a.json":       "{\"changed\": true}\n",
		"features/a":            "now a file named like the directory\n",
		"x/y/z.json":            "1 changed\n",
		"environments/p/e.json": "{\"e\": 1}\n",
		"new/deep/file.json":    "new\n",
	})
	for _, p := range []string{"swap", "environments/q/f/g.txt", "x/y.json"} {
		if err := os.Remove(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	writeFiles(t, dir, map[string]string{"swap/inside.json": "dir now\n", "x/y.json/z": "a directory where a file was\n"})
	if err := os.Chmod(filepath.Join(dir, "exec.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	gittest.Run(t, dir, "add", "-A")
	gittest.Run(t, dir, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("2", 40)+",mod")
	gittest.Run(t, dir, "commit", "-q", "-m", "many changes")

	r := open(t, dir)
	// A TreeDiffer gives the same answers, also when it takes trees from
	// its previous call.
	differ := r.NewTreeDiffer()
	defer differ.Close()
	revs := []string{"HEAD~2", "HEAD~1", "HEAD"}
	for _, from := range revs {
		for _, to := range revs {
			want := gitDiffTree(t, dir, from, to)
			got, err := r.DiffTrees(treeOf(t, r, from), treeOf(t, r, to))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("DiffTrees(%s, %s):\n got %v\nwant %v", from, to, got, want)
			}
			got, err = differ.DiffTrees(treeOf(t, r, from), treeOf(t, r, to))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("TreeDiffer.DiffTrees(%s, %s):\n got %v\nwant %v", from, to, got, want)
			}
		}
	}
	if len(gitDiffTree(t, dir, "HEAD~1", "HEAD")) < 10 {
		t.Fatal("the test commit changes too little")
	}

	// The empty tree (zero hash) on either side: everything added or removed.
	all := gittest.Run(t, dir, "ls-tree", "-r", "--name-only", "HEAD")
	head := treeOf(t, r, "HEAD")
	for _, c := range []struct {
		from, to plumbing.Hash
		added    bool
	}{{plumbing.ZeroHash, head, true}, {head, plumbing.ZeroHash, false}} {
		got, err := r.DiffTrees(c.from, c.to)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, ch := range got {
			paths = append(paths, ch.Path)
			if ch.From.IsZero() != c.added || ch.To.IsZero() == c.added {
				t.Errorf("%s: from %s to %s; want only one side", ch.Path, ch.From, ch.To)
			}
		}
		want := slices.DeleteFunc(strings.Split(all, "\n"), func(p string) bool { return p == "mod" })
		if !slices.Equal(paths, want) {
			t.Errorf("DiffTrees against the empty tree: %v, want %v", paths, want)
		}
	}
}

// TestDiffTreesErrors: an object that is not there, or not a tree, is an
// error naming it.
func TestDiffTreesErrors(t *testing.T) {
	dir, sha := newRepo(t, minimal)
	r := open(t, dir)
	missing := plumbing.NewHash(strings.Repeat("ab", 20))
	if _, err := r.DiffTrees(plumbing.ZeroHash, missing); err == nil || !strings.Contains(err.Error(), missing.String()) {
		t.Errorf("missing tree: %v", err)
	}
	if _, err := r.DiffTrees(plumbing.ZeroHash, plumbing.NewHash(sha)); err == nil || !strings.Contains(err.Error(), sha) {
		t.Errorf("a commit given as a tree: %v", err)
	}
	if _, err := r.ReadCommit(missing); err == nil || !strings.Contains(err.Error(), missing.String()) {
		t.Errorf("missing commit: %v", err)
	}
}

// TestReadCommit: the commit's tree, parents (first parent first), author,
// time and whole message.
func TestReadCommit(t *testing.T) {
	dir, first := newRepo(t, minimal)
	gittest.Run(t, dir, "checkout", "-q", "-b", "side")
	writeFiles(t, dir, map[string]string{"features/side.json": "{}"})
	side := gittest.CommitAll(t, dir, "side")
	gittest.Run(t, dir, "checkout", "-q", "main")
	writeFiles(t, dir, map[string]string{"features/main.json": "{}"})
	main := gittest.CommitAll(t, dir, "main")
	gittest.Run(t, dir, "merge", "-q", "--no-ff", "-m", "Merge side\n\nBody.", "side")
	merge := gittest.Run(t, dir, "rev-parse", "HEAD")

	r := open(t, dir)
	c, err := r.ReadCommit(plumbing.NewHash(merge))
	if err != nil {
		t.Fatal(err)
	}
	wantParents := []plumbing.Hash{plumbing.NewHash(main), plumbing.NewHash(side)}
	if c.SHA != merge || !slices.Equal(c.Parents, wantParents) || c.Tree.String() != gittest.Run(t, dir, "rev-parse", "HEAD^{tree}") {
		t.Errorf("merge commit: %+v", c)
	}
	if c.Author != gittest.Name || c.AuthorEmail != gittest.Email || !c.Time.Equal(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) || c.Message != "Merge side\n\nBody.\n" {
		t.Errorf("merge commit: %+v", c.Revision)
	}
	root, err := r.ReadCommit(plumbing.NewHash(first))
	if err != nil {
		t.Fatal(err)
	}
	if len(root.Parents) != 0 || root.Message != "First commit\n\nWith a body.\n" {
		t.Errorf("root commit: %+v", root)
	}
	blob := plumbing.NewHash(gittest.Run(t, dir, "rev-parse", "HEAD:features/side.json"))
	data, err := r.ReadBlob(blob)
	if err != nil || string(data) != "{}" {
		t.Errorf("ReadBlob = %q, %v", data, err)
	}
}
