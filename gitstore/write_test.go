package gitstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitflags/gitflags/repogen"
	"github.com/gitflags/gitflags/repogen/gittest"
)

var (
	testAuthor    = object.Signature{Name: "Alice Example", Email: "alice@example.com", When: time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("", 3600))}
	testCommitter = object.Signature{Name: "gitflags server", Email: "gitflags@example.com", When: time.Date(2025, 3, 4, 5, 6, 8, 0, time.UTC)}
)

// commitOpts returns options for a commit of changes on parent.
func commitOpts(parent plumbing.Hash, changes ...FileChange) CommitOptions {
	return CommitOptions{Parent: parent, Changes: changes, Author: testAuthor, Committer: testCommitter, Message: "production: dark_mode off"}
}

// TestCommitAsGit writes a commit that modifies, adds (in new nested
// directories) and deletes files, and checks it with the git binary: fsck
// --strict is clean, the commit's header and files are what was written, and
// its tree is the one git itself makes for the same change.
func TestCommitAsGit(t *testing.T) {
	dir, sha := newRepo(t, minimal)
	r := open(t, dir)
	parent := plumbing.NewHash(sha)
	changes := []FileChange{
		{Path: "environments/production/features/dark_mode.json", Data: []byte("{\n  \"enabled\": false\n}\n")},
		{Path: "environments/staging/features/dark_mode.json", Data: []byte("{\n  \"enabled\": true\n}\n")},
		{Path: "environments/staging/environment.json", Data: []byte(`{"id": 2, "name": "Staging", "client_key": "staging_key_2"}`)},
		{Path: "features/banner.json", Delete: true},
		{Path: "environments/production/features/banner.json", Delete: true},
		{Path: "a.json", Data: []byte("{}\n")}, // sorts before the directories
		{Path: "features-extra/x.json", Data: []byte("{}\n")},
	}
	c, err := r.Commit(commitOpts(parent, changes...))
	if err != nil {
		t.Fatal(err)
	}
	gittest.Run(t, dir, "update-ref", "refs/heads/ours", c.String())
	gittest.Run(t, dir, "fsck", "--strict", "--no-dangling")

	raw := gittest.Run(t, dir, "cat-file", "-p", c.String())
	for _, want := range []string{
		"parent " + sha,
		"author Alice Example <alice@example.com> 1741061167 +0100",
		"committer gitflags server <gitflags@example.com> 1741064768 +0000",
		"\n\nproduction: dark_mode off",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("commit lacks %q:\n%s", want, raw)
		}
	}
	stat := gittest.Run(t, dir, "show", "--name-status", "--format=", c.String())
	wantStat := []string{
		"A\ta.json",
		"D\tenvironments/production/features/banner.json",
		"M\tenvironments/production/features/dark_mode.json",
		"A\tenvironments/staging/environment.json",
		"A\tenvironments/staging/features/dark_mode.json",
		"A\tfeatures-extra/x.json",
		"D\tfeatures/banner.json",
	}
	if got := strings.Split(stat, "\n"); !slices.Equal(got, wantStat) {
		t.Errorf("git show --name-status:\n%s\nwant\n%s", stat, strings.Join(wantStat, "\n"))
	}
	for _, ch := range changes {
		if ch.Delete {
			continue
		}
		if got := gittest.Run(t, dir, "show", c.String()+":"+ch.Path); got != strings.TrimSpace(string(ch.Data)) {
			t.Errorf("%s = %q", ch.Path, got)
		}
		got, err := r.ReadFile(c, ch.Path)
		if err != nil || string(got) != string(ch.Data) {
			t.Errorf("ReadFile %s = %q, %v", ch.Path, got, err)
		}
	}

	// git makes the same tree from the same change.
	gittest.Run(t, dir, "checkout", "-q", "-b", "by-git")
	for _, ch := range changes {
		p := filepath.Join(dir, filepath.FromSlash(ch.Path))
		if ch.Delete {
			gittest.Run(t, dir, "rm", "-q", ch.Path)
			continue
		}
		writeFiles(t, dir, map[string]string{ch.Path: string(ch.Data)})
		gittest.Run(t, dir, "add", p)
	}
	gittest.Run(t, dir, "commit", "-q", "-m", "same")
	if ours, theirs := gittest.Run(t, dir, "rev-parse", c.String()+"^{tree}"), gittest.Run(t, dir, "rev-parse", "HEAD^{tree}"); ours != theirs {
		t.Errorf("tree %s, git makes %s", ours, theirs)
	}
}

// TestCommitRemovesEmptyDirectories deletes every file of directories: they
// disappear from the tree, and the root tree may end up with fewer entries.
func TestCommitRemovesEmptyDirectories(t *testing.T) {
	dir, sha := newRepo(t, minimal)
	r := open(t, dir)
	c, err := r.Commit(commitOpts(plumbing.NewHash(sha),
		FileChange{Path: "environments/production/features/dark_mode.json", Delete: true},
		FileChange{Path: "environments/production/features/banner.json", Delete: true},
		FileChange{Path: "segments/beta.json", Delete: true},
	))
	if err != nil {
		t.Fatal(err)
	}
	gittest.Run(t, dir, "update-ref", "refs/heads/ours", c.String())
	gittest.Run(t, dir, "fsck", "--strict", "--no-dangling")
	if got := gittest.Run(t, dir, "ls-tree", "--name-only", c.String()); got != "README.md\nenvironments\nfeatures\ngitflags.json" {
		t.Errorf("root tree: %q", got)
	}
	if got := gittest.Run(t, dir, "ls-tree", "-r", "--name-only", c.String(), "environments"); got != "environments/production/environment.json" {
		t.Errorf("environments: %q", got)
	}
	if _, err := r.ReadFile(c, "segments/beta.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a deleted file: %v", err)
	}
}

// TestCommitRefusesBadInput checks that bad paths and options are refused
// with an error naming what is wrong, and that nothing is written.
func TestCommitRefusesBadInput(t *testing.T) {
	dir, sha := newRepo(t, minimal)
	r := open(t, dir)
	parent := plumbing.NewHash(sha)
	data := []byte("{}\n")
	for _, p := range []string{"", "/etc/passwd", "a//b", "a/", "./a", "a/./b", "a/../b", "..", `a\b`, ".git", ".git/config", "x/.GIT/hooks/pre-commit", "a\x00b"} {
		_, err := r.Commit(commitOpts(parent, FileChange{Path: p, Data: data}))
		if err == nil {
			t.Errorf("path %q: no error", p)
		} else if p != "" && !strings.Contains(err.Error(), strconv.Quote(p)) {
			t.Errorf("path %q: the error does not name it: %v", p, err)
		}
	}
	cases := []struct {
		name string
		opts CommitOptions
		want string
	}{
		{"delete missing", commitOpts(parent, FileChange{Path: "features/nope.json", Delete: true}), "features/nope.json"},
		{"delete under a file", commitOpts(parent, FileChange{Path: "README.md/x", Delete: true}), "README.md"},
		{"delete a directory", commitOpts(parent, FileChange{Path: "features", Delete: true}), "directory"},
		{"write over a directory", commitOpts(parent, FileChange{Path: "features", Data: data}), "features"},
		{"write under a file", commitOpts(parent, FileChange{Path: "README.md/x.json", Data: data}), "README.md"},
		{"twice", commitOpts(parent, FileChange{Path: "a.json", Data: data}, FileChange{Path: "a.json", Delete: true}), "twice"},
		{"file and directory", commitOpts(parent, FileChange{Path: "a", Data: data}, FileChange{Path: "a/b", Data: data}), `"a"`},
		{"directory and file", commitOpts(parent, FileChange{Path: "a/b", Data: data}, FileChange{Path: "a", Data: data}), `"a"`},
		{"no changes", commitOpts(parent), "no changes"},
		{"no parent", commitOpts(plumbing.ZeroHash, FileChange{Path: "a.json", Data: data}), "parent"},
		{"unknown parent", commitOpts(plumbing.NewHash(strings.Repeat("ab", 20)), FileChange{Path: "a.json", Data: data}), strings.Repeat("ab", 20)},
	}
	noMessage := commitOpts(parent, FileChange{Path: "a.json", Data: data})
	noMessage.Message = " \n"
	badAuthor := commitOpts(parent, FileChange{Path: "a.json", Data: data})
	badAuthor.Author.Email = "a>b@example.com"
	noCommitter := commitOpts(parent, FileChange{Path: "a.json", Data: data})
	noCommitter.Committer.Name = ""
	cases = append(cases,
		struct {
			name string
			opts CommitOptions
			want string
		}{"empty message", noMessage, "message"},
		struct {
			name string
			opts CommitOptions
			want string
		}{"bad author", badAuthor, "author's email"},
		struct {
			name string
			opts CommitOptions
			want string
		}{"no committer", noCommitter, "committer's name"},
	)
	for _, c := range cases {
		_, err := r.Commit(c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
		if c.name == "delete missing" && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v does not wrap fs.ErrNotExist", c.name, err)
		}
	}
	// Nothing was written: the object count is the first commit's.
	if got := gittest.Run(t, dir, "rev-list", "--all", "--objects", "--count"); got != looseCount(t, dir) {
		t.Errorf("%s reachable objects, %s loose ones", got, looseCount(t, dir))
	}
}

// looseCount returns the number of loose objects of the repository at dir.
func looseCount(t *testing.T, dir string) string {
	t.Helper()
	out := gittest.Run(t, dir, "count-objects", "-v")
	for line := range strings.SplitSeq(out, "\n") {
		if n, ok := strings.CutPrefix(line, "count: "); ok {
			return n
		}
	}
	t.Fatalf("count-objects: %s", out)
	return ""
}

// TestCommitKeepsModes checks that a changed executable file stays
// executable and that unchanged entries keep their hashes.
func TestCommitKeepsModes(t *testing.T) {
	dir, _ := newRepo(t, minimal)
	writeFiles(t, dir, map[string]string{"tools/run.sh": "#!/bin/sh\n", "tools/other.txt": "x\n"})
	if err := os.Chmod(filepath.Join(dir, "tools", "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	sha := gittest.CommitAll(t, dir, "tools")
	r := open(t, dir)
	c, err := r.Commit(commitOpts(plumbing.NewHash(sha), FileChange{Path: "tools/run.sh", Data: []byte("#!/bin/sh\necho\n")}))
	if err != nil {
		t.Fatal(err)
	}
	if got := gittest.Run(t, dir, "ls-tree", c.String(), "tools/run.sh"); !strings.HasPrefix(got, "100755 blob") {
		t.Errorf("ls-tree: %s", got)
	}
	for _, p := range []string{"features", "tools/other.txt"} {
		if a, b := gittest.Run(t, dir, "rev-parse", sha+":"+p), gittest.Run(t, dir, "rev-parse", c.String()+":"+p); a != b {
			t.Errorf("%s changed: %s -> %s", p, a, b)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir, sha := newRepo(t, minimal)
	r := open(t, dir)
	h := plumbing.NewHash(sha)
	if got, err := r.ReadFile(h, "features/dark_mode.json"); err != nil || string(got) != minimal["features/dark_mode.json"] {
		t.Errorf("ReadFile = %q, %v", got, err)
	}
	for _, p := range []string{"features/none.json", "nodir/x.json", "README.md/x"} {
		if _, err := r.ReadFile(h, p); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) {
			t.Errorf("ReadFile(%q): %v", p, err)
		}
	}
	if _, err := r.ReadFile(h, "features"); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("ReadFile of a directory: %v", err)
	}
	if _, err := r.ReadFile(h, "../x"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a bad path: %v", err)
	}
}

// BenchmarkCommitLarge writes a commit changing one file of the 10,000-feature
// repository and moves the branch to it (Commit and UpdateRef, with fsync),
// in a bare clone and in a work tree (where the file and the index of 41,000
// entries are updated too). Only the trees along the changed path are read
// and written.
func BenchmarkCommitLarge(b *testing.B) {
	loose, packed, _ := largeRepos(b)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"bare", []string{"clone", "-q", "--bare", "--local", packed}},
		{"worktree", []string{"clone", "-q", "--local", loose}},
	} {
		b.Run(c.name, func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "repo")
			if _, err := gittest.Output(filepath.Dir(dir), append(c.args, dir)...); err != nil {
				b.Fatal(err)
			}
			r, err := Open(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			cur, err := r.Resolve("refs/heads/main")
			if err != nil {
				b.Fatal(err)
			}
			path := "environments/production/features/" + repogen.FeatureKey(42) + ".json"
			b.ReportAllocs()
			var times []time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				next, err := r.Commit(commitOpts(cur, FileChange{Path: path, Data: fmt.Appendf(nil, "{\n  \"enabled\": %t\n}\n", i%2 == 0)}))
				if err == nil {
					err = r.UpdateRef("refs/heads/main", next, cur)
				}
				if err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(start))
				cur = next
			}
			b.StopTimer()
			reportPercentiles(b, times)
			if c.name == "worktree" {
				if st, err := gittest.Output(dir, "status", "--porcelain"); err != nil || st != "" {
					b.Fatalf("git status: %q, %v", st, err)
				}
			}
		})
	}
}
