// Package gitstore reads flag repositories out of Git: it opens a repository
// (a work tree or a bare repository), resolves revisions, reads the committed
// tree of a commit into flagrepo Files and loads them into an immutable
// flagrepo.Snapshot. It also creates new flag repositories from a template,
// and writes: commits of changed files (Commit), branches moved by
// compare-and-swap under git's lock files, a checked-out work tree following
// (UpdateRef), and pushes that are never forced (Push); objects and
// references are fsynced before a write returns.
//
// All Git access goes through go-git; the git binary is never run. Blobs and
// trees are read straight from the objects directory: loose ones by
// readLooseObject, packed ones by a pack reader of our own (pack.go);
// everything else, and what those do not handle, goes through go-git's
// storage.
//
// A Repo is safe for concurrent use. go-git's object storage is not, so a Repo
// serialises its metadata operations (resolving, reading trees and commits)
// behind a mutex and reads blobs through a small pool of independent object
// storages, one per concurrent reader, which share one object cache.
package gitstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/gitflags/gitflags/flagrepo"
)

// Errors that Resolve wraps, for errors.Is.
var (
	// ErrNoCommits means the repository has no commit yet, so no revision
	// resolves.
	ErrNoCommits = errors.New("the repository has no commits yet")
	// ErrUnknownRevision means a revision names no commit of the repository.
	ErrUnknownRevision = errors.New("unknown revision")
)

// cacheSize bounds the object cache shared by a Repo's blob readers. Reading
// loose objects fills it with blobs nobody reads twice, so it is kept small;
// it matters for packfiles, where it holds the bases of delta chains.
const cacheSize = 8 * cache.MiByte

// Repo is an open Git repository.
type Repo struct {
	path string

	mu   sync.Mutex // guards repo and its storage
	repo *git.Repository
	st   *filesystem.Storage

	dotgit  billy.Filesystem // the .git directory (or the bare repository)
	objects string           // its objects directory on disk, for loose objects; "" when unknown
	packs   *packSet         // reads blobs from objects/pack (pack.go); nil when objects is ""
	cache   cache.Object     // shared by the blob readers; safe for concurrent use
	readers chan *filesystem.Storage
	created atomic.Int32 // blob readers created so far
	maxRead int          // size of the reader pool
	closed  atomic.Bool

	blobReads atomic.Int64 // blobs read, for tests

	leaves  map[string]*leaf                // the last listing's leaf directories, by path ("features/"); guarded by mu
	treeBuf []byte                          // readTree's buffer; guarded by mu
	trees   treeCache                       // trees read and written last; guarded by mu
	listed  int                             // the number of files of the last listing; guarded by mu
	listing atomic.Pointer[[]flagrepo.File] // an array for Snapshot's listings, when no Snapshot is using it

	refMu sync.Mutex // serialises UpdateRef (updateref.go)
	index indexCache // the index file as UpdateRef wrote it last; guarded by refMu
	// indexOld is the index updateWorktree replaced, kept to undo until the
	// reference is written; then it becomes indexSpare, whose memory the
	// next index is written into. Guarded by refMu.
	indexOld, indexSpare *gitIndex

	fetchMu   sync.Mutex      // serialises Fetch and Push (remote.go, push.go)
	fetchRepo *git.Repository // Fetch's own storage, kept between fetches; guarded by fetchMu
}

// Open opens the Git repository at path: a work tree with a .git directory (or
// .git file) at its top, or a bare repository.
func Open(path string) (*Repo, error) {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("open repository %s: the directory does not exist", path)
		}
		return nil, fmt.Errorf("open repository %s: %w", path, err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("open repository %s: not a directory", path)
	}
	repo, err := git.PlainOpenWithOptions(path, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		if errors.Is(err, git.ErrRepositoryNotExists) {
			return nil, fmt.Errorf("open repository %s: not a git repository (no .git directory, and not a bare repository)", path)
		}
		return nil, fmt.Errorf("open repository %s: %w", path, err)
	}
	st, ok := repo.Storer.(*filesystem.Storage)
	if !ok {
		return nil, fmt.Errorf("open repository %s: unexpected storage %T", path, repo.Storer)
	}
	n := max(runtime.GOMAXPROCS(0), 1)
	objects := filepath.Join(st.Filesystem().Root(), "objects")
	if fi, err := os.Stat(objects); err != nil || !fi.IsDir() {
		objects = "" // e.g. a linked work tree: let go-git find the objects
	}
	r := &Repo{
		objects: objects,
		path:    path,
		repo:    repo,
		st:      st,
		dotgit:  st.Filesystem(),
		cache:   cache.NewObjectLRU(cacheSize),
		readers: make(chan *filesystem.Storage, n),
		maxRead: n,
	}
	if objects != "" {
		r.packs = newPackSet(objects, r.readLoose)
	}
	return r, nil
}

// Path returns the path the repository was opened at.
func (r *Repo) Path() string { return r.path }

// GitDir returns the repository's Git directory: the .git directory of a work
// tree, or the bare repository itself. Its HEAD, packed-refs and refs/ are what
// a watcher of new commits watches.
func (r *Repo) GitDir() string { return r.dotgit.Root() }

// Close releases the file descriptors the repository keeps open. Reads after
// Close fail.
func (r *Repo) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	var errs []error
	for i := int32(0); i < r.created.Load(); i++ {
		s := <-r.readers
		errs = append(errs, s.Close())
	}
	errs = append(errs, r.packs.close())
	r.mu.Lock()
	errs = append(errs, r.st.Close())
	r.mu.Unlock()
	r.fetchMu.Lock()
	errs = append(errs, r.closeFetchRepo())
	r.fetchMu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close repository %s: %w", r.path, err)
	}
	return nil
}

// Resolve returns the commit a revision names: a branch, a tag, a full or
// abbreviated commit hash, HEAD, a full reference name such as refs/heads/x,
// or any of these followed by ~n or ^n. The empty revision means HEAD.
func (r *Repo) Resolve(rev string) (plumbing.Hash, error) {
	if rev == "" {
		rev = "HEAD"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h, err := r.repo.ResolveRevision(plumbing.Revision(rev))
	if err != nil && errors.Is(err, plumbing.ErrObjectNotFound) {
		// Objects may have moved into a pack written by another process
		// (git gc, git fetch) since the pack index was loaded.
		r.st.Reindex()
		h, err = r.repo.ResolveRevision(plumbing.Revision(rev))
	}
	if err == nil {
		return *h, nil
	}
	// go-git reports a ref file it cannot open as a missing reference: make
	// sure the repository can be read at all (a process out of file
	// descriptors is not an unknown revision).
	if perr := r.readable(); perr != nil {
		return plumbing.ZeroHash, fmt.Errorf("resolve %q: cannot read the repository: %w", rev, perr)
	}
	if r.hasNoCommits() {
		return plumbing.ZeroHash, fmt.Errorf("resolve %q: %w", rev, ErrNoCommits)
	}
	if errors.Is(err, plumbing.ErrReferenceNotFound) || errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, io.EOF) {
		return plumbing.ZeroHash, fmt.Errorf("resolve %q: %w: no branch, tag or commit of that name in %s (or it reaches back beyond the first commit)", rev, ErrUnknownRevision, r.path)
	}
	return plumbing.ZeroHash, fmt.Errorf("resolve %q: %w", rev, err)
}

// readable reports why the repository's Git directory cannot be opened, or
// nil: for instance EMFILE when the process has no file descriptor left.
func (r *Repo) readable() error {
	f, err := os.Open(r.dotgit.Root())
	if err != nil {
		return err
	}
	return f.Close()
}

// hasNoCommits reports whether HEAD is unborn and no branch or tag exists.
// The caller holds r.mu.
func (r *Repo) hasNoCommits() bool {
	if _, err := r.repo.Head(); err == nil {
		return false
	}
	refs, err := r.repo.References()
	if err != nil {
		return false
	}
	defer refs.Close()
	found := false
	_ = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Type() == plumbing.HashReference {
			found = true
			return storer.ErrStop
		}
		return nil
	})
	return !found
}

// Revision describes a commit: its hash, author, time and message.
func (r *Repo) Revision(commit plumbing.Hash) (flagrepo.Revision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.commit(commit)
	if err != nil {
		return flagrepo.Revision{}, err
	}
	return revisionOf(c), nil
}

func revisionOf(c *object.Commit) flagrepo.Revision {
	return flagrepo.Revision{
		SHA:         c.Hash.String(),
		Time:        c.Author.When,
		Author:      c.Author.Name,
		AuthorEmail: c.Author.Email,
		Message:     c.Message,
	}
}

// commit reads a commit object. The caller holds r.mu.
func (r *Repo) commit(h plumbing.Hash) (*object.Commit, error) {
	c, err := r.repo.CommitObject(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		r.st.Reindex()
		c, err = r.repo.CommitObject(h)
	}
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	return c, nil
}

// Load is flagrepo.Load for files listed by Files: Files leaves sizes
// unknown (finding them costs about as much as reading the blobs), so an
// oversized file shows up as a TooLargeError from Read. Load records its
// size and loads again: flagrepo.Load then reports it as a problem, with
// every other problem of the tree. files may be modified.
func Load(rev flagrepo.Revision, files []flagrepo.File, prev *flagrepo.Snapshot) (*flagrepo.Snapshot, error) {
	snap, err := flagrepo.Load(rev, files, prev)
	for tl := (*TooLargeError)(nil); errors.As(err, &tl) && setSize(files, tl.Path, tl.Size); {
		snap, err = flagrepo.Load(rev, files, prev)
	}
	return snap, err
}

// setSize records the size of the too large file at path p, reporting
// whether it was unknown. Load does not read a file whose Size exceeds
// flagrepo.MaxFileSize; Read is cleared as well so that nothing else (such as
// positioning problems) tries to.
func setSize(files []flagrepo.File, p string, size int64) bool {
	for i := range files {
		if files[i].Path == p && files[i].Size < 0 {
			files[i].Size = size
			files[i].Read = nil
			return true
		}
	}
	return false
}

// Files lists the committed tree of a commit, recursively, as flagrepo Files,
// and describes the commit. Only what the commit holds is listed: changes in
// the work tree that are not committed are not seen. File contents are read
// lazily when a File's Read is called; Read is safe for concurrent use. Sizes
// are not known in advance (Size is -1): a blob larger than
// flagrepo.MaxFileSize is never read, its Read returns a *TooLargeError.
func (r *Repo) Files(commit plumbing.Hash) ([]flagrepo.File, flagrepo.Revision, error) {
	return r.list(commit, nil)
}

// list is Files, appending to buf[:0].
func (r *Repo) list(commit plumbing.Hash, buf []flagrepo.File) ([]flagrepo.File, flagrepo.Revision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.commit(commit)
	if err != nil {
		return nil, flagrepo.Revision{}, err
	}
	root, err := r.readTree(c.TreeHash, nil)
	if err != nil {
		return nil, flagrepo.Revision{}, fmt.Errorf("read tree of commit %s: %w", commit, err)
	}
	files := buf[:0]
	if files == nil {
		files = make([]flagrepo.File, 0, r.listed)
	}
	next := make(map[string]*leaf, len(r.leaves))
	if err := r.walk(root, "", &files, next); err != nil {
		return nil, flagrepo.Revision{}, fmt.Errorf("read tree of commit %s: %w", commit, err)
	}
	r.leaves, r.listed = next, len(files)
	return files, revisionOf(c), nil
}

// walk appends the entries of a tree under prefix to files. The caller holds
// r.mu.
//
// The listings of leaf directories (those without subdirectories) are kept
// in next by path, and taken from the previous listing's (r.leaves) when
// their tree is unchanged: a commit that touches one file of a large
// repository reads only the trees on that file's path. Even then, the
// unchanged entries of a changed leaf directory keep their name and File.
func (r *Repo) walk(entries []object.TreeEntry, prefix string, files *[]flagrepo.File, next map[string]*leaf) error {
	for _, e := range entries {
		if e.Mode != filemode.Dir {
			if len(*files) >= flagrepo.MaxFiles {
				return fmt.Errorf("more than %d files", flagrepo.MaxFiles)
			}
			*files = append(*files, r.file(prefix, e))
			continue
		}
		dir := prefix + e.Name + "/"
		l := r.leaves[dir]
		if l == nil || l.hash != e.Hash {
			var old []object.TreeEntry
			if l != nil {
				old = l.entries
			}
			sub, err := r.readTree(e.Hash, old)
			if err != nil {
				return fmt.Errorf("read directory %s: %w", prefix+e.Name, err)
			}
			if slices.ContainsFunc(sub, func(e object.TreeEntry) bool { return e.Mode == filemode.Dir }) {
				if err := r.walk(sub, dir, files, next); err != nil {
					return err
				}
				continue
			}
			if len(*files)+len(sub) > flagrepo.MaxFiles {
				return fmt.Errorf("more than %d files", flagrepo.MaxFiles)
			}
			l = r.listLeaf(sub, e.Hash, dir, l)
		}
		if len(*files)+len(l.files) > flagrepo.MaxFiles {
			return fmt.Errorf("more than %d files", flagrepo.MaxFiles)
		}
		*files = append(*files, l.files...)
		next[dir] = l
	}
	return nil
}

// treeData returns the content of tree h: from the packs or a loose object
// with gitstore's own readers (a listing of a large repository reads
// megabytes of trees), else through go-git into r.treeBuf. The caller holds
// r.mu.
func (r *Repo) treeData(h plumbing.Hash) ([]byte, error) {
	if r.objects != "" {
		if data, ok, err := r.packs.readTree(h); ok || err != nil {
			return data, err
		}
		if data, ok, err := r.readLooseTree(h); ok || err != nil {
			return data, err
		}
	}
	o, err := r.st.EncodedObject(plumbing.TreeObject, h)
	if err != nil {
		return nil, err
	}
	rd, err := o.Reader()
	if err != nil {
		return nil, err
	}
	if int64(cap(r.treeBuf)) < o.Size() {
		r.treeBuf = make([]byte, o.Size())
	}
	data := r.treeBuf[:o.Size()]
	_, err = io.ReadFull(rd, data)
	if cerr := rd.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	return data, nil
}

// readTree reads the entries of tree h as go-git's object.Tree.Decode does.
// old are the entries the directory had in the previous listing (or nil):
// the names of entries found there are taken from there rather than
// allocated. The caller holds r.mu.
func (r *Repo) readTree(h plumbing.Hash, old []object.TreeEntry) (entries []object.TreeEntry, err error) {
	if entries := r.trees.get(h); entries != nil {
		return entries, nil
	}
	defer func() {
		if err == nil {
			r.trees.add(h, entries)
		}
	}()
	data, err := r.treeData(h) // the entries keep no part of it
	if err != nil {
		return nil, err
	}
	entries = make([]object.TreeEntry, 0, max(len(old), 8))
	j := 0
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		if sp < 0 {
			return nil, fmt.Errorf("%w: missing mode terminator", object.ErrMalformedTree)
		}
		mode, ok := parseMode(data[:sp])
		if !ok {
			return nil, fmt.Errorf("%w: malformed mode", object.ErrMalformedTree)
		}
		data = data[sp+1:]
		nul := bytes.IndexByte(data, 0)
		switch {
		case nul < 0:
			return nil, fmt.Errorf("%w: missing filename terminator", object.ErrMalformedTree)
		case nul == 0:
			return nil, fmt.Errorf("%w: empty filename", object.ErrMalformedTree)
		}
		name := data[:nul]
		data = data[nul+1:]
		e := object.TreeEntry{Mode: mode}
		if len(data) < len(e.Hash) {
			return nil, fmt.Errorf("%w: truncated object id", object.ErrMalformedTree)
		}
		data = data[copy(e.Hash[:], data):]
		// Both are in tree order, which is name order but for directories.
		for j < len(old) && old[j].Name < string(name) {
			j++
		}
		if j < len(old) && old[j].Name == string(name) {
			e.Name = old[j].Name
		} else {
			e.Name = string(name)
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// parseMode parses an octal tree entry mode into its canonical form, as
// go-git does.
func parseMode(b []byte) (filemode.FileMode, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var m uint64
	for _, c := range b {
		if c < '0' || c > '7' {
			return 0, false
		}
		if m = m<<3 | uint64(c-'0'); m > math.MaxUint32 {
			return 0, false
		}
	}
	switch m & 0o170000 {
	case 0o040000:
		return filemode.Dir, true
	case 0o100000:
		if m&0o111 != 0 {
			return filemode.Executable, true
		}
		return filemode.Regular, true
	case 0o120000:
		return filemode.Symlink, true
	}
	return filemode.Submodule, true
}

// leaf is the listing of a directory without subdirectories.
type leaf struct {
	hash    plumbing.Hash
	entries []object.TreeEntry // the tree's entries
	files   []flagrepo.File    // one per entry; callers get copies
}

// listLeaf lists the leaf directory (tree h, its entries) at path dir.
// Entries that old, the previous listing of dir, holds unchanged (name, mode
// and hash) keep their File.
func (r *Repo) listLeaf(entries []object.TreeEntry, h plumbing.Hash, dir string, old *leaf) *leaf {
	l := &leaf{hash: h, entries: entries, files: make([]flagrepo.File, len(entries))}
	j := 0
	for i, e := range entries {
		if old != nil {
			for j < len(old.entries) && old.entries[j].Name < e.Name {
				j++
			}
			if j < len(old.entries) && old.entries[j] == e {
				l.files[i] = old.files[j]
				continue
			}
		}
		l.files[i] = r.file(dir, e)
	}
	return l
}

// file returns the File of a tree entry that is not a directory.
func (r *Repo) file(prefix string, e object.TreeEntry) flagrepo.File {
	p := prefix + e.Name
	f := flagrepo.File{Path: p, Hash: e.Hash.String(), Size: -1}
	switch e.Mode {
	case filemode.Regular, filemode.Executable, filemode.Deprecated:
		f.Mode = flagrepo.ModeRegular
		f.Read = r.blobReader(e.Hash, p)
	case filemode.Symlink:
		f.Mode = flagrepo.ModeSymlink
		f.Read = r.blobReader(e.Hash, p)
	case filemode.Submodule:
		f.Mode = flagrepo.ModeSubmodule
		f.Read = func() ([]byte, error) {
			return nil, fmt.Errorf("read %s: a submodule has no content in this repository", p)
		}
	default:
		f.Mode = flagrepo.ModeOther
		mode := e.Mode
		f.Read = func() ([]byte, error) {
			return nil, fmt.Errorf("read %s: unsupported tree entry mode %s", p, mode)
		}
	}
	return f
}

// Snapshot resolves rev, reads its committed tree and loads it into a
// validated snapshot. When prev is not nil, files unchanged since prev (same
// path and blob hash) are not read again. An invalid repository yields a
// *flagrepo.ValidationError.
func (r *Repo) Snapshot(rev string, prev *flagrepo.Snapshot) (*flagrepo.Snapshot, error) {
	h, err := r.Resolve(rev)
	if err != nil {
		return nil, err
	}
	// Load keeps nothing of files, so the listing's array is reused from one
	// call to the next: a large repository's is megabytes.
	var buf []flagrepo.File
	if p := r.listing.Swap(nil); p != nil {
		buf = *p
	}
	files, revision, err := r.list(h, buf)
	if err != nil {
		return nil, err
	}
	defer r.listing.Store(&files)
	snap, err := Load(revision, files, prev)
	if err != nil {
		var ve *flagrepo.ValidationError
		if errors.As(err, &ve) {
			return nil, err
		}
		return nil, fmt.Errorf("load %s at %s: %w", r.path, h, err)
	}
	return snap, nil
}
