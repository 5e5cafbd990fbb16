package gitstore

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitflags/gitflags"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// minimal is a small valid flag repository.
var minimal = map[string]string{
	"gitflags.json":           `{"format_version": 1, "project": {"id": 1, "name": "Test"}}`,
	"README.md":               "# Flags\n",
	"features/dark_mode.json": `{"id": 10, "description": "Dark mode", "default": {"enabled": false}}`,
	"features/banner.json": `{"id": 11, "default": {"enabled": true, "value": "hello"},
		"variants": [{"id": 1, "key": "a", "value": "A", "weight": 50}, {"id": 2, "key": "b", "value": "B", "weight": 50}]}`,
	"segments/beta.json":                       `{"id": 100, "rules": [{"type": "ALL", "conditions": [{"property": "beta", "operator": "EQUAL", "value": true}]}]}`,
	"environments/production/environment.json": `{"id": 1, "name": "Production", "client_key": "prod_client_key_1"}`,
	"environments/production/features/dark_mode.json": `{"enabled": true,
		"segment_overrides": [{"segment": "beta", "priority": 1, "enabled": false}]}`,
	"environments/production/features/banner.json": `{"weights": {"a": 10, "b": 90}}`,
}

func mapFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for p, c := range files {
		m[p] = &fstest.MapFile{Data: []byte(c), Mode: 0o644}
	}
	return m
}

// writeFiles writes files (path -> content) into dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// newRepo creates a work tree with files committed on main.
func newRepo(t *testing.T, files map[string]string) (dir, sha string) {
	t.Helper()
	gittest.Available(t)
	dir = t.TempDir()
	gittest.Init(t, dir)
	writeFiles(t, dir, files)
	return dir, gittest.CommitAll(t, dir, "First commit\n\nWith a body.")
}

func open(t *testing.T, dir string) *Repo {
	t.Helper()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func snapshot(t *testing.T, r *Repo, rev string) *flagrepo.Snapshot {
	t.Helper()
	snap, err := r.Snapshot(rev, nil)
	if err != nil {
		t.Fatalf("Snapshot(%q): %v", rev, err)
	}
	return snap
}

// problems returns the validation problems of Snapshot(rev), failing when
// the snapshot loads or fails otherwise.
func problems(t *testing.T, r *Repo, rev string) []flagrepo.Problem {
	t.Helper()
	_, err := r.Snapshot(rev, nil)
	var ve *flagrepo.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Snapshot(%q) = %v, want a validation error", rev, err)
	}
	return ve.Problems
}

func wantProblem(t *testing.T, ps []flagrepo.Problem, file, message string) {
	t.Helper()
	for _, p := range ps {
		if p.File == file && strings.Contains(p.Message, message) {
			return
		}
	}
	t.Errorf("no problem in %s containing %q; got:\n%v", file, message, ps)
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "missing"), "does not exist"},
		{dir, "not a git repository"},
		{file, "not a directory"},
	} {
		_, err := Open(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("Open(%s) = %v, want an error naming the path and saying %q", c.path, err, c.want)
		}
	}
}

func TestResolve(t *testing.T) {
	dir, first := newRepo(t, minimal)
	gittest.Run(t, dir, "tag", "v1")
	gittest.Run(t, dir, "tag", "-a", "-m", "annotated", "v1-annotated")
	writeFiles(t, dir, map[string]string{"README.md": "# Changed\n"})
	second := gittest.CommitAll(t, dir, "Second")
	gittest.Run(t, dir, "branch", "other", first)
	r := open(t, dir)
	for rev, want := range map[string]string{
		"":                          second,
		"HEAD":                      second,
		"main":                      second,
		"refs/heads/main":           second,
		"HEAD~1":                    first,
		"HEAD^":                     first,
		"main~1":                    first,
		"other":                     first,
		"v1":                        first,
		"v1-annotated":              first,
		"refs/tags/v1":              first,
		first:                       first,
		first[:7]:                   first,
		second[:12]:                 second,
		strings.ToUpper(first[:10]): first,
	} {
		h, err := r.Resolve(rev)
		if err != nil {
			t.Errorf("Resolve(%q): %v", rev, err)
			continue
		}
		if h.String() != want {
			t.Errorf("Resolve(%q) = %s, want %s", rev, h, want)
		}
	}
	for _, rev := range []string{"nope", "HEAD~5", "refs/heads/nope", "0123456789abcdef0123456789abcdef01234567", "v2", "main~~~~~"} {
		_, err := r.Resolve(rev)
		if !errors.Is(err, ErrUnknownRevision) || !strings.Contains(err.Error(), fmt.Sprintf("%q", rev)) {
			t.Errorf("Resolve(%q) = %v, want ErrUnknownRevision naming the revision", rev, err)
		}
	}
}

func TestEmptyRepository(t *testing.T) {
	gittest.Available(t)
	dir := t.TempDir()
	gittest.Init(t, dir)
	r := open(t, dir)
	for _, rev := range []string{"", "main", "HEAD~1"} {
		_, err := r.Resolve(rev)
		name := rev
		if name == "" {
			name = "HEAD"
		}
		if !errors.Is(err, ErrNoCommits) || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) || !strings.Contains(err.Error(), "no commits") {
			t.Errorf("Resolve(%q) = %v, want ErrNoCommits naming %q", rev, err, name)
		}
	}
	if _, err := r.Snapshot("", nil); !errors.Is(err, ErrNoCommits) {
		t.Errorf("Snapshot of an empty repository = %v, want ErrNoCommits", err)
	}
}

func TestFilesReadsCommittedTree(t *testing.T) {
	dir, sha := newRepo(t, minimal)
	// Uncommitted changes: an edit, an untracked file, a deletion.
	writeFiles(t, dir, map[string]string{
		"features/dark_mode.json": `{"id": 10, "description": "EDITED", "default": {"enabled": true}}`,
		"features/untracked.json": `not even JSON`,
	})
	if err := os.Remove(filepath.Join(dir, "segments/beta.json")); err != nil {
		t.Fatal(err)
	}
	r := open(t, dir)
	h, err := r.Resolve("")
	if err != nil {
		t.Fatal(err)
	}
	files, rev, err := r.Files(h)
	if err != nil {
		t.Fatal(err)
	}
	if rev.SHA != sha || rev.Author != gittest.Name || rev.AuthorEmail != gittest.Email ||
		rev.Message != "First commit\n\nWith a body.\n" || !rev.Time.Equal(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("revision = %+v", rev)
	}
	if len(files) != len(minimal) {
		t.Errorf("%d files, want %d", len(files), len(minimal))
	}
	for _, f := range files {
		want, ok := minimal[f.Path]
		if !ok {
			t.Errorf("unexpected file %s", f.Path)
			continue
		}
		if f.Mode != flagrepo.ModeRegular {
			t.Errorf("%s: mode %v", f.Path, f.Mode)
		}
		if wantHash := gittest.Run(t, dir, "rev-parse", "HEAD:"+f.Path); f.Hash != wantHash {
			t.Errorf("%s: hash %s, want %s", f.Path, f.Hash, wantHash)
		}
		data, err := f.Read()
		if err != nil {
			t.Errorf("%s: %v", f.Path, err)
		} else if string(data) != want {
			t.Errorf("%s: read %q, want the committed %q", f.Path, data, want)
		}
	}
	snap := snapshot(t, r, "")
	if d := snap.Features["dark_mode"].Description; d != "Dark mode" {
		t.Errorf("description %q: the snapshot saw the work tree", d)
	}
	if snap.Segments["beta"] == nil || snap.Features["untracked"] != nil {
		t.Error("the snapshot saw the work tree")
	}
	if snap.Revision != rev {
		t.Errorf("snapshot revision %+v, want %+v", snap.Revision, rev)
	}
}

func TestFilesModes(t *testing.T) {
	dir, _ := newRepo(t, minimal)
	if err := os.Symlink("dark_mode.json", filepath.Join(dir, "features", "link.json")); err != nil {
		t.Fatal("create a symbolic link:", err)
	}
	script := filepath.Join(dir, "check.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	gittest.Run(t, dir, "add", "-A")
	gittest.Run(t, dir, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("ab", 20)+",segments/vendored.json")
	gittest.Run(t, dir, "commit", "-q", "-m", "Add a symlink, a script and a submodule")
	sha := gittest.Run(t, dir, "rev-parse", "HEAD")
	r := open(t, dir)
	files, _, err := r.Files(plumbing.NewHash(sha))
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]flagrepo.FileMode{}
	for _, f := range files {
		modes[f.Path] = f.Mode
	}
	for p, want := range map[string]flagrepo.FileMode{
		"features/link.json":     flagrepo.ModeSymlink,
		"check.sh":               flagrepo.ModeRegular,
		"segments/vendored.json": flagrepo.ModeSubmodule,
		"gitflags.json":          flagrepo.ModeRegular,
	} {
		if got, ok := modes[p]; !ok || got != want {
			t.Errorf("%s: mode %v (listed %v), want %v", p, got, ok, want)
		}
	}
	ps := problems(t, r, "")
	wantProblem(t, ps, "features/link.json", "symbolic links are not allowed")
	wantProblem(t, ps, "segments/vendored.json", "submodules are not allowed")
}

func TestBareRepository(t *testing.T) {
	src, sha := newRepo(t, minimal)
	bare := filepath.Join(t.TempDir(), "flags.git")
	// --no-local makes a packfile, so blobs are read from a pack.
	gittest.Run(t, src, "clone", "-q", "--bare", "--no-local", src, bare)
	r := open(t, bare)
	snap := snapshot(t, r, "main")
	if snap.Revision.SHA != sha || len(snap.Features) != 2 {
		t.Errorf("revision %s with %d features", snap.Revision.SHA, len(snap.Features))
	}
	if r.objects == "" {
		t.Error("objects directory of a bare repository not found")
	}
}

func TestOlderRevision(t *testing.T) {
	dir, first := newRepo(t, minimal)
	writeFiles(t, dir, map[string]string{
		"features/dark_mode.json": `{"id": 10, "description": "Second version", "default": {"enabled": true}}`,
		"features/new.json":       `{"id": 12, "default": {"enabled": true}}`,
	})
	gittest.CommitAll(t, dir, "Second")
	r := open(t, dir)
	for _, rev := range []string{"HEAD~1", first, first[:8]} {
		old := snapshot(t, r, rev)
		if old.Revision.SHA != first || old.Features["dark_mode"].Description != "Dark mode" || old.Features["new"] != nil {
			t.Errorf("Snapshot(%q) did not read the first commit", rev)
		}
	}
	if cur := snapshot(t, r, "HEAD"); cur.Features["dark_mode"].Description != "Second version" || cur.Features["new"] == nil {
		t.Error("Snapshot(HEAD) did not read the second commit")
	}
}

func TestInvalidCommit(t *testing.T) {
	files := map[string]string{}
	for p, c := range minimal {
		files[p] = c
	}
	files["features/broken.json"] = "{\n  \"id\": 13,\n  \"default\": {\"enabled\": \"yes\"}\n}\n"
	dir, _ := newRepo(t, files)
	ps := problems(t, open(t, dir), "")
	wantProblem(t, ps, "features/broken.json", "")
	for _, p := range ps {
		if p.File == "features/broken.json" && p.Line != 3 {
			t.Errorf("problem at line %d, want 3: %v", p.Line, p)
		}
	}
}

func TestTooLargeFile(t *testing.T) {
	big := `{"id": 13, "description": "` + strings.Repeat("x", flagrepo.MaxFileSize) + `", "default": {"enabled": true}}`
	files := map[string]string{"features/big.json": big, "features/bad.json": "{"}
	for p, c := range minimal {
		files[p] = c
	}
	dir, _ := newRepo(t, files)
	bare := filepath.Join(t.TempDir(), "packed.git")
	gittest.Run(t, dir, "clone", "-q", "--bare", "--no-local", dir, bare)
	for name, d := range map[string]string{"loose": dir, "packed": bare} {
		t.Run(name, func(t *testing.T) {
			r := open(t, d)
			ps := problems(t, r, "")
			wantProblem(t, ps, "features/big.json", fmt.Sprintf("file is %d bytes; at most %d are allowed", len(big), flagrepo.MaxFileSize))
			wantProblem(t, ps, "features/bad.json", "invalid JSON")
			// Files alone: Read refuses the blob without reading it.
			h, _ := r.Resolve("")
			fs, _, err := r.Files(h)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fs {
				if f.Path == "features/big.json" {
					_, err := f.Read()
					var tl *TooLargeError
					if !errors.As(err, &tl) || tl.Size != int64(len(big)) || tl.Path != f.Path {
						t.Errorf("Read of a large blob = %v, want a TooLargeError", err)
					}
				}
			}
		})
	}
}

// TestConcurrentReads calls Read on every file from several goroutines at
// once, from loose objects and from a packfile (run with -race).
func TestConcurrentReads(t *testing.T) {
	dir, _ := newRepo(t, minimal)
	bare := filepath.Join(t.TempDir(), "packed.git")
	gittest.Run(t, dir, "clone", "-q", "--bare", "--no-local", dir, bare)
	for name, d := range map[string]string{"loose": dir, "packed": bare} {
		t.Run(name, func(t *testing.T) {
			r := open(t, d)
			h, err := r.Resolve("")
			if err != nil {
				t.Fatal(err)
			}
			files, _, err := r.Files(h)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 20; i++ {
						for _, f := range files {
							data, err := f.Read()
							if err != nil {
								t.Error(err)
								return
							}
							if string(data) != minimal[f.Path] {
								t.Errorf("%s: read %q", f.Path, data)
								return
							}
						}
					}
				}()
			}
			// Metadata operations at the same time.
			for i := 0; i < 20; i++ {
				if _, err := r.Snapshot("", nil); err != nil {
					t.Error(err)
				}
			}
			wg.Wait()
		})
	}
}

// TestSnapshotReuse checks that loading a commit with a previous snapshot
// reads only the files that changed.
func TestSnapshotReuse(t *testing.T) {
	dir, first := newRepo(t, minimal)
	writeFiles(t, dir, map[string]string{"environments/production/features/dark_mode.json": `{"enabled": false}`})
	second := gittest.CommitAll(t, dir, "Disable dark mode in production")
	r := open(t, dir)
	prev := snapshot(t, r, first)

	// Through Snapshot, counting the blobs the Repo reads.
	before := r.blobReads.Load()
	next, err := r.Snapshot(second, prev)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.blobReads.Load() - before; n != 1 {
		t.Errorf("Snapshot with a previous snapshot read %d blobs, want 1", n)
	}
	if e := *next.Environments["production"].Features["dark_mode"].Enabled; e {
		t.Error("the changed file was not read")
	}
	if next.Features["banner"] != prev.Features["banner"] && next.Features["banner"].ID != prev.Features["banner"].ID {
		t.Error("unchanged feature differs")
	}

	// Through Files and Load, counting calls of Read.
	h, _ := r.Resolve(second)
	files, rev, err := r.Files(h)
	if err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int32
	var readPaths sync.Map
	for i := range files {
		read, p := files[i].Read, files[i].Path
		files[i].Read = func() ([]byte, error) {
			reads.Add(1)
			readPaths.Store(p, true)
			return read()
		}
	}
	if _, err := flagrepo.Load(rev, files, prev); err != nil {
		t.Fatal(err)
	}
	if reads.Load() != 1 {
		t.Errorf("Load read %d files, want 1", reads.Load())
	}
	if _, ok := readPaths.Load("environments/production/features/dark_mode.json"); !ok {
		t.Error("the changed file was not read")
	}
	// Without a previous snapshot every document is read.
	before = r.blobReads.Load()
	snapshot(t, r, second)
	if n, want := r.blobReads.Load()-before, int64(len(minimal)-1); n != want { // README.md is not read
		t.Errorf("Snapshot without a previous snapshot read %d blobs, want %d", n, want)
	}
}

func TestInitRoundTrip(t *testing.T) {
	gittest.Available(t)
	dir := filepath.Join(t.TempDir(), "flags")
	when := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	author := object.Signature{Name: "Init Author", Email: "init@example.com", When: when}
	tmpl := mapFS(minimal)
	tmpl["scripts/check.sh"] = &fstest.MapFile{Data: []byte("#!/bin/sh\n"), Mode: 0o755}
	h, err := Init(dir, tmpl, author)
	if err != nil {
		t.Fatal(err)
	}
	r := open(t, dir)
	snap, err := r.Snapshot("main", nil)
	var ve *flagrepo.ValidationError
	if errors.As(err, &ve) {
		// scripts/ is not part of the layout; everything else must be valid.
		if len(ve.Problems) != 1 || ve.Problems[0].File != "scripts/check.sh" {
			t.Fatalf("unexpected problems: %v", err)
		}
	} else if err != nil || snap != nil {
		t.Fatalf("Snapshot = %v, %v", snap, err)
	}
	// The git binary agrees: branch main, one commit, clean work tree.
	if b := gittest.Run(t, dir, "rev-parse", "--abbrev-ref", "HEAD"); b != "main" {
		t.Errorf("branch %q, want main", b)
	}
	if got := gittest.Run(t, dir, "log", "--format=%H|%an|%ae|%cn|%at|%s"); got != fmt.Sprintf("%s|Init Author|init@example.com|Init Author|%d|%s", h, when.Unix(), InitialCommitMessage) {
		t.Errorf("git log: %s", got)
	}
	if mode := gittest.Run(t, dir, "ls-tree", "HEAD", "scripts/check.sh"); !strings.HasPrefix(mode, "100755 ") {
		t.Errorf("script committed as %q, want mode 100755", mode)
	}
	if n := gittest.Run(t, dir, "ls-files"); len(strings.Split(n, "\n")) != len(minimal)+1 {
		t.Errorf("committed files:\n%s", n)
	}
	gittest.Run(t, dir, "checkout", "-q", "--", ".")
	if st := gittest.Run(t, dir, "status", "--porcelain"); st != "" {
		t.Errorf("work tree not clean after Init:\n%s", st)
	}
	gittest.Run(t, dir, "fsck", "--strict")

	// A template without the stray script loads.
	dir2 := filepath.Join(t.TempDir(), "flags2")
	if _, err := Init(dir2, mapFS(minimal), author); err != nil {
		t.Fatal(err)
	}
	snap = snapshot(t, open(t, dir2), "")
	if snap.Revision.Author != "Init Author" || snap.Revision.Message != InitialCommitMessage || len(snap.Features) != 2 {
		t.Errorf("snapshot %+v", snap.Revision)
	}
}

func TestInitTemplate(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, gitflags.Template(), DefaultAuthor()); err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, open(t, dir), "main")
	if len(snap.Features) == 0 || len(snap.Environments) == 0 {
		t.Errorf("the template loaded with %d features and %d environments", len(snap.Features), len(snap.Environments))
	}
}

func TestInitErrors(t *testing.T) {
	author := object.Signature{Name: "A", Email: "a@example.com"}
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{
		{nonEmpty, "not empty"},
		{file, "a file of that name exists"},
	} {
		_, err := Init(c.dir, mapFS(minimal), author)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.dir) {
			t.Errorf("Init(%s) = %v, want an error saying %q", c.dir, err, c.want)
		}
	}
	if entries, _ := os.ReadDir(nonEmpty); len(entries) != 1 {
		t.Error("Init changed a non-empty directory")
	}

	// Failures leave nothing behind.
	bad := mapFS(minimal)
	bad["features/link.json"] = &fstest.MapFile{Data: []byte("x"), Mode: fs.ModeSymlink}
	for name, c := range map[string]struct {
		tmpl   fs.FS
		author object.Signature
		want   string
	}{
		"symlink":   {bad, author, "not a regular file"},
		"empty":     {fstest.MapFS{}, author, "no files"},
		"no author": {mapFS(minimal), object.Signature{}, "name and an email"},
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			fresh := filepath.Join(parent, "new")
			if _, err := Init(fresh, c.tmpl, c.author); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Init = %v, want an error saying %q", err, c.want)
			}
			if _, err := os.Stat(fresh); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Init left %s behind", fresh)
			}
			empty := t.TempDir()
			if _, err := Init(empty, c.tmpl, c.author); err == nil {
				t.Error("Init succeeded")
			}
			if entries, _ := os.ReadDir(empty); len(entries) != 0 {
				t.Errorf("Init left %d entries in an empty directory", len(entries))
			}
		})
	}
}

func TestDefaultAuthor(t *testing.T) {
	t.Setenv("GIT_AUTHOR_NAME", "Env Name")
	t.Setenv("GIT_AUTHOR_EMAIL", "env@example.com")
	if a := DefaultAuthor(); a.Name != "Env Name" || a.Email != "env@example.com" || a.When.IsZero() {
		t.Errorf("DefaultAuthor() = %+v", a)
	}
	t.Setenv("GIT_AUTHOR_NAME", "")
	t.Setenv("GIT_AUTHOR_EMAIL", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	if a := DefaultAuthor(); a.Name != "gitflags" || a.Email != "gitflags@localhost" {
		t.Errorf("DefaultAuthor() without configuration = %+v", a)
	}
}

func TestClosed(t *testing.T) {
	dir, _ := newRepo(t, minimal)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := r.Resolve("")
	files, _, err := r.Files(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	for _, f := range files {
		if f.Path == "gitflags.json" {
			// Loose objects need no open packfile; reading still works or fails clearly.
			if _, err := f.Read(); err != nil && !strings.Contains(err.Error(), "closed") {
				t.Errorf("Read after Close: %v", err)
			}
		}
	}
}

// deflate returns s compressed with zlib, as a loose object is stored.
func deflate(s string) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

// TestInflateLoose checks the loose object decoder on well-formed and
// malformed objects.
func TestInflateLoose(t *testing.T) {
	big := strings.Repeat("x", 100)
	for _, c := range []struct {
		name, object, want, err string
	}{
		{"blob", "blob 2\x00{}", "{}", ""},
		{"empty blob", "blob 0\x00", "", ""},
		{"longer than the header buffer", "blob 100\x00" + big, big, ""},
		{"a tree", "tree 2\x00{}", "", "object is a tree, not a blob"},
		{"short content", "blob 5\x00{}", "", "content: unexpected EOF"},
		{"long content", "blob 1\x00{}", "", "longer than its header's 1 bytes"},
		{"long content after the header buffer", "blob 100\x00" + big + "y", "", "longer than its header's 100 bytes"},
		{"no NUL", "blob 2 {}", "", "malformed object header"},
		{"no size", "blob\x00{}", "", "malformed object header"},
		{"bad size", "blob -1\x00{}", "", `malformed object size "-1"`},
		{"too large", fmt.Sprintf("blob %d\x00", flagrepo.MaxFileSize+1), "", "at most"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := inflateLoose(deflate(c.object), "blob", flagrepo.MaxFileSize)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil || string(got) != c.want {
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			}
		})
	}
	if _, err := inflateLoose([]byte("not zlib"), "blob", flagrepo.MaxFileSize); err == nil {
		t.Fatal("no error for data that is not zlib")
	}
	// A changed content byte fails the checksum; a truncated stream fails.
	good := deflate("blob 100\x00" + big)
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	if _, err := inflateLoose(bad, "blob", flagrepo.MaxFileSize); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("corrupt checksum: %v", err)
	}
	if _, err := inflateLoose(good[:len(good)-5], "blob", flagrepo.MaxFileSize); err == nil {
		t.Fatal("no error for a truncated object")
	}
}

// TestInflateLooseStrict: a flush inside the header is read through (git
// reads such objects), and what git refuses is refused: a size with a sign
// or a leading zero, data after the zlib stream.
func TestInflateLooseStrict(t *testing.T) {
	var flushed bytes.Buffer
	w := zlib.NewWriter(&flushed)
	w.Write([]byte("bl"))
	w.Flush()
	w.Write([]byte("ob 5\x00hel"))
	w.Flush()
	w.Write([]byte("lo"))
	w.Close()
	if got, err := inflateLoose(flushed.Bytes(), "blob", flagrepo.MaxFileSize); err != nil || string(got) != "hello" {
		t.Fatalf("flushed header: %q, %v", got, err)
	}
	for _, obj := range []string{"blob +2\x00{}", "blob 02\x00{}", "blob  2\x00{}"} {
		if _, err := inflateLoose(deflate(obj), "blob", flagrepo.MaxFileSize); err == nil || !strings.Contains(err.Error(), "malformed object size") {
			t.Errorf("%q: %v, want a malformed size", obj, err)
		}
	}
	if _, err := inflateLoose(append(deflate("blob 2\x00{}"), 'x'), "blob", flagrepo.MaxFileSize); err == nil || !strings.Contains(err.Error(), "data after the end") {
		t.Errorf("trailing data: %v", err)
	}
}
