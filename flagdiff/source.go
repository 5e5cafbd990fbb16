package flagdiff

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
)

// Source is one side of a comparison: a commit of a Git repository, or a
// directory holding a flag repository (a work tree, uncommitted edits
// included).
type Source struct {
	// Name is how the user named the side ("origin/main", "HEAD", "."), for
	// messages and reports.
	Name string
	// Repo and Commit name a committed revision; Repo is nil for a
	// directory.
	Repo   *gitstore.Repo
	Commit plumbing.Hash
	// Dir is the directory, when Repo is nil.
	Dir string
	// MergeBase is set when Commit is the common ancestor of the revision
	// Name and HEAD (BASE...HEAD), rather than Name itself.
	MergeBase bool
}

// IsDir reports whether the source is a directory rather than a commit.
func (s Source) IsDir() bool { return s.Repo == nil }

// Errors of Sources, for errors.Is.
var (
	// ErrNoMergeBase means BASE...HEAD was asked for, but the two commits
	// share no history.
	ErrNoMergeBase = errors.New("no common ancestor")
	// ErrAmbiguous means an argument names both a revision and a directory.
	ErrAmbiguous = errors.New("ambiguous argument")
	// ErrNotFlagRepository means a side has no gitflags.json at its root.
	ErrNotFlagRepository = errors.New("not a flag repository")
)

// manifest is the file at the root of every flag repository.
const manifest = "gitflags.json"

// Sources resolves the BASE and HEAD arguments of `gitflags diff`. Each is a
// revision of the Git repository at repoDir (a branch, tag, commit, HEAD~1,
// origin/main, ...) or a directory. An argument is a directory when it
// exists as one and is written as a path (".", "..", absolute, or with a
// slash); a bare name that is both a directory and a revision is refused as
// ambiguous (write ./name for the directory). With mergeBase, BASE is
// replaced by the best common ancestor of BASE and HEAD (git's
// BASE...HEAD), which both must be revisions. An empty headArg is the
// directory repoDir (its work tree).
//
// The repository is opened only when a side is a revision; open returns it
// (nil otherwise) for the caller to close.
func Sources(repoDir, baseArg, headArg string, mergeBase bool) (base, head Source, open *gitstore.Repo, err error) {
	var repo *gitstore.Repo
	fail := func(err error) (Source, Source, *gitstore.Repo, error) {
		if repo != nil {
			repo.Close()
		}
		return Source{}, Source{}, nil, err
	}
	getRepo := func() (*gitstore.Repo, error) {
		if repo == nil {
			r, err := gitstore.Open(repoDir)
			if err != nil {
				return nil, err
			}
			repo = r
		}
		return repo, nil
	}
	resolve := func(arg, role string) (Source, error) {
		if arg == "" {
			return Source{}, fmt.Errorf("%s is empty: name a revision or a directory", role)
		}
		info, statErr := os.Stat(arg)
		isDir := statErr == nil && info.IsDir()
		if isDir && writtenAsPath(arg) {
			return Source{Name: arg, Dir: arg}, nil
		}
		r, err := getRepo()
		if err != nil {
			if isDir {
				return Source{Name: arg, Dir: arg}, nil
			}
			return Source{}, fmt.Errorf("%s %q is not a directory, and there is no Git repository to read it as a revision from: %w", role, arg, err)
		}
		h, rerr := r.Resolve(arg)
		switch {
		case rerr != nil && isDir:
			return Source{Name: arg, Dir: arg}, nil
		case rerr != nil:
			return Source{}, fmt.Errorf("%s: %w", role, rerr)
		case isDir:
			return Source{}, fmt.Errorf("%s %q: %w: it is both a revision (commit %s) and a directory; write ./%s for the directory", role, arg, ErrAmbiguous, short(h.String()), arg)
		}
		return Source{Name: arg, Repo: r, Commit: h}, nil
	}
	if base, err = resolve(baseArg, "BASE"); err != nil {
		return fail(err)
	}
	if headArg == "" {
		head = Source{Name: repoDir, Dir: repoDir}
	} else if head, err = resolve(headArg, "HEAD"); err != nil {
		return fail(err)
	}
	if mergeBase {
		if base.IsDir() || head.IsDir() {
			return fail(fmt.Errorf("%s...%s: both sides must be revisions to find their common ancestor", baseArg, headArg))
		}
		mb, err := repo.MergeBase(base.Commit, head.Commit)
		if err != nil {
			return fail(err)
		}
		if mb.IsZero() {
			return fail(fmt.Errorf("%s...%s: %w: the two histories are unrelated; compare the two trees with 'gitflags diff %s %s'", baseArg, headArg, ErrNoMergeBase, baseArg, headArg))
		}
		base = Source{Name: baseArg, Repo: repo, Commit: mb, MergeBase: true}
	}
	return base, head, repo, nil
}

// writtenAsPath reports whether an argument can only be a path: ".",
// "..", absolute, starting with "./" or "../", or ending with a slash.
func writtenAsPath(arg string) bool {
	return arg == "." || arg == ".." || filepath.IsAbs(arg) ||
		strings.HasPrefix(arg, "./") || strings.HasPrefix(arg, "../") || strings.HasSuffix(arg, "/") ||
		filepath.Separator != '/' && strings.ContainsRune(arg, filepath.Separator)
}

// short abbreviates a commit hash.
func short(sha string) string { return sha[:min(12, len(sha))] }

// files lists the source's files. Directory files get their Git blob hash,
// so that a directory loaded after a revision of the same repository shares
// the documents of the files it has unchanged, as a commit would.
func (s Source) files() ([]flagrepo.File, flagrepo.Revision, error) {
	if !s.IsDir() {
		files, rev, err := s.Repo.Files(s.Commit)
		if err != nil {
			return nil, flagrepo.Revision{}, fmt.Errorf("%s: %w", s.Name, err)
		}
		return files, rev, nil
	}
	if _, err := os.Lstat(filepath.Join(s.Dir, manifest)); errors.Is(err, fs.ErrNotExist) {
		return nil, flagrepo.Revision{}, fmt.Errorf("%s: %w: it has no %s at its root", s.Name, ErrNotFlagRepository, manifest)
	}
	files, err := flagrepo.DirFiles(s.Dir)
	if err != nil {
		return nil, flagrepo.Revision{}, fmt.Errorf("%s: %w", s.Name, err)
	}
	for i := range files {
		f := &files[i]
		if f.Mode != flagrepo.ModeRegular || f.Size > flagrepo.MaxFileSize {
			continue // Load reports it without reading it
		}
		data, err := f.Read()
		if err != nil {
			return nil, flagrepo.Revision{}, fmt.Errorf("%s: read %s: %w", s.Name, f.Path, err)
		}
		f.Hash = blobHash(data)
		f.Size = int64(len(data))
		f.Read = func() ([]byte, error) { return data, nil }
	}
	return files, flagrepo.WorkingRevision(), nil
}

// blobHash returns the Git blob hash of data, as Git names the file's
// content.
func blobHash(data []byte) string {
	h := sha1.New()
	h.Write([]byte("blob " + strconv.Itoa(len(data)) + "\x00"))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// hasManifest reports whether files hold gitflags.json.
func hasManifest(files []flagrepo.File) bool {
	for i := range files {
		if files[i].Path == manifest {
			return true
		}
	}
	return false
}
