package gitstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Errors that UpdateRef wraps, for errors.Is.
var (
	// ErrRefMoved means the reference did not point at the commit the
	// caller expected: someone else moved it (or created or deleted it).
	ErrRefMoved = errors.New("the reference moved")
	// ErrWorktreeDirty means files of the checked-out work tree that the
	// update would change have uncommitted changes.
	ErrWorktreeDirty = errors.New("the work tree has uncommitted changes")
	// ErrLocked means another process holds the reference's (or the
	// index's) lock file, or a process that died left it.
	ErrLocked = errors.New("locked by another git process")
)

// errNotDir is the error of a path under a file.
var errNotDir = syscall.ENOTDIR

// refLockTimeout is how long UpdateRef waits for another process's lock on a
// reference, as git's core.filesRefLockTimeout.
const refLockTimeout = 100 * time.Millisecond

// UpdateRef moves reference name (such as refs/heads/main) from commit old to
// commit new, as a compare-and-swap: when the reference does not point at old
// (or, for a zero old, exists already), nothing is written and the error
// wraps ErrRefMoved. new must be a commit of the repository.
//
// It takes the reference's lock file (name.lock) as git does, so another
// process (git commit, git fetch) moving the reference meanwhile is either
// seen by the compare or refused by the lock. The new value is written to the
// lock file, fsynced and renamed over the reference, and the directory is
// fsynced. A reference held only in packed-refs is handled (the new value is
// written as a loose reference, which takes precedence, as git does).
// Concurrent calls on one Repo run one after the other. No reflog is written.
//
// When the repository has a work tree whose checked-out branch is name, the
// work tree follows, as with git's receive.denyCurrentBranch=updateInstead:
// the files that differ between old and new are written (or removed) and
// their index entries updated, so git status stays clean. If any of those
// files has uncommitted changes (in the work tree or the index), nothing is
// moved and the error wraps ErrWorktreeDirty and names the files. Changes to
// other files are left alone.
func (r *Repo) UpdateRef(name plumbing.ReferenceName, new, old plumbing.Hash) error {
	if err := r.updateRef(name, new, old); err != nil {
		return fmt.Errorf("update %s in %s: %w", name, r.path, err)
	}
	return nil
}

func (r *Repo) updateRef(name plumbing.ReferenceName, new, old plumbing.Hash) error {
	if err := r.writable(); err != nil {
		return err
	}
	if !strings.HasPrefix(name.String(), "refs/") || name.Validate() != nil || !name.IsSafe() {
		return fmt.Errorf("%q is not a valid reference name (refs/heads/<branch>, see git check-ref-format)", name)
	}
	if new.IsZero() {
		return errors.New("no new commit given (deleting references is not supported)")
	}
	r.mu.Lock()
	_, err := r.commit(new)
	r.mu.Unlock()
	if err != nil {
		return err
	}

	r.refMu.Lock()
	defer r.refMu.Unlock()
	refPath := filepath.Join(r.GitDir(), filepath.FromSlash(name.String()))
	lock, err := takeLock(refPath + ".lock")
	if err != nil {
		return err
	}
	defer func() {
		if lock != nil {
			lock.Close()
			os.Remove(lock.Name())
		}
	}()

	r.mu.Lock()
	cur, err := r.currentRef(name)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if cur != old {
		if cur.IsZero() {
			return fmt.Errorf("%w: it does not exist, expected it at %s", ErrRefMoved, old)
		}
		if old.IsZero() {
			return fmt.Errorf("%w: it exists already, at %s", ErrRefMoved, cur)
		}
		return fmt.Errorf("%w: it is at %s, expected %s", ErrRefMoved, cur, old)
	}

	wt, err := r.checkedOut(name)
	if err != nil {
		return err
	}
	var undo func()
	if wt != "" && old != new {
		if undo, err = r.updateWorktree(wt, old, new); err != nil {
			return err
		}
	}

	f := lock
	lock = nil
	err = writeSync(f, []byte(new.String()+"\n"))
	if err == nil {
		err = os.Rename(f.Name(), refPath)
	}
	if err == nil {
		err = syncDir(filepath.Dir(refPath))
	}
	if err != nil {
		os.Remove(f.Name())
		if undo != nil {
			undo()
		}
		r.indexOld = nil
		return err
	}
	// The index replaced is no longer needed to undo: the next index is
	// written into its memory.
	r.indexSpare, r.indexOld = r.indexOld, nil
	return nil
}

// mkdirAllSync creates dir and its missing parents, fsyncing the directory
// each new one is created in, so that a reference written under a new
// directory (refs/heads/gitflags/production/) survives a crash too.
func mkdirAllSync(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirAllSync(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return syncDir(parent)
}

// takeLock creates lock file path (and its directory) exclusively, waiting
// up to refLockTimeout for another process to release it.
func takeLock(path string) (*os.File, error) {
	if err := mkdirAllSync(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("create lock file: %w", err)
	}
	deadline := time.Now().Add(refLockTimeout)
	for wait := time.Millisecond; ; wait *= 2 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create lock file: %w", err)
		}
		if time.Now().After(deadline) {
			// Never removed here: git may hold a lock for as long as a
			// person's editor is open (git commit holds index.lock).
			return nil, fmt.Errorf("%w: lock file %s exists: another git process is updating it; if none is running, a crashed one left it, and it may be removed", ErrLocked, path)
		}
		time.Sleep(wait)
	}
}

// currentRef returns the commit reference name points at, read from its
// loose file or else packed-refs, or the zero hash when it does not exist.
// The caller holds r.mu.
func (r *Repo) currentRef(name plumbing.ReferenceName) (plumbing.Hash, error) {
	ref, err := r.st.Reference(name)
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		return plumbing.ZeroHash, nil
	case err != nil:
		return plumbing.ZeroHash, fmt.Errorf("read %s: %w", name, err)
	case ref.Type() != plumbing.HashReference:
		return plumbing.ZeroHash, fmt.Errorf("%s is a symbolic reference (to %s)", name, ref.Target())
	}
	return ref.Hash(), nil
}

// checkedOut returns the root of r's work tree when HEAD names branch name
// there, else "".
func (r *Repo) checkedOut(name plumbing.ReferenceName) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	head, err := r.st.Reference(plumbing.HEAD)
	if err != nil || head.Type() != plumbing.SymbolicReference || head.Target() != name {
		return "", nil
	}
	wt, err := r.repo.Worktree()
	if errors.Is(err, git.ErrIsBareRepository) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("open the work tree: %w", err)
	}
	return wt.Filesystem.Root(), nil
}

// treeChange is a path whose entry differs between two trees; from or to is
// nil where the path is absent.
type treeChange struct {
	path     string
	from, to *object.TreeEntry
}

// diffTrees appends the files that differ between trees a and b (zero for an
// empty tree) under prefix to out, reading only the subtrees that differ. The
// caller holds r.mu.
func (r *Repo) diffTrees(a, b plumbing.Hash, prefix string, out *[]treeChange) error {
	if a == b {
		return nil
	}
	read := func(h plumbing.Hash) ([]object.TreeEntry, error) {
		if h.IsZero() {
			return nil, nil
		}
		return r.readTree(h, nil)
	}
	ea, err := read(a)
	if err != nil {
		return err
	}
	eb, err := read(b)
	if err != nil {
		return err
	}
	inB := make(map[string]*object.TreeEntry, len(eb))
	for i := range eb {
		inB[eb[i].Name] = &eb[i]
	}
	for i := range ea {
		ae := &ea[i]
		be := inB[ae.Name]
		delete(inB, ae.Name)
		if err := r.diffEntry(prefix, ae, be, out); err != nil {
			return err
		}
	}
	for i := range eb {
		if be := inB[eb[i].Name]; be != nil {
			if err := r.diffEntry(prefix, nil, be, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// diffEntry appends the differences between the entries of one name in two
// trees (nil where absent). The caller holds r.mu.
func (r *Repo) diffEntry(prefix string, a, b *object.TreeEntry, out *[]treeChange) error {
	var aTree, bTree plumbing.Hash
	var name string
	if a != nil {
		name = a.Name
		if a.Mode == filemode.Dir {
			aTree, a = a.Hash, nil
		}
	}
	if b != nil {
		name = b.Name
		if b.Mode == filemode.Dir {
			bTree, b = b.Hash, nil
		}
	}
	if (a != nil || b != nil) && (a == nil || b == nil || a.Hash != b.Hash || a.Mode != b.Mode) {
		*out = append(*out, treeChange{path: prefix + name, from: a, to: b})
	}
	if aTree != bTree {
		return r.diffTrees(aTree, bTree, prefix+name+"/", out)
	}
	return nil
}

// updateWorktree brings the work tree at root and the index from commit old
// (zero: nothing) to commit new, as git's updateInstead does, after checking
// that none of the files it changes has uncommitted changes. It returns a
// function that puts the files and the index back, for when the reference
// cannot be moved after all.
func (r *Repo) updateWorktree(root string, old, new plumbing.Hash) (undo func(), err error) {
	var changes []treeChange
	r.mu.Lock()
	err = r.diffCommits(old, new, &changes)
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return nil, nil
	}
	// Removals first, so that a directory can replace a file and back.
	slices.SortStableFunc(changes, func(a, b treeChange) int {
		return boolInt(a.to != nil) - boolInt(b.to != nil)
	})

	indexPath := filepath.Join(r.GitDir(), "index")
	lock, err := takeLock(indexPath + ".lock")
	if err != nil {
		return nil, err
	}
	locked := true
	defer func() {
		if locked { // not renamed into place: remove it
			lock.Close()
			os.Remove(lock.Name())
		}
	}()
	idx, existed, err := r.readIndex(indexPath)
	if err != nil {
		return nil, err
	}
	var before []byte // the index file to put back, nil when there was none
	if existed {
		before = idx.data
	}

	var dirty []string
	for _, c := range changes {
		d, err := isDirty(root, idx, c)
		if err != nil {
			return nil, err
		}
		if d {
			dirty = append(dirty, c.path)
		}
	}
	if len(dirty) > 0 {
		return nil, fmt.Errorf("%w: %s (in %s; commit or discard them, then retry)", ErrWorktreeDirty, strings.Join(dirty, ", "), root)
	}

	undo = func() {
		r.index = indexCache{} // the index file is put back below
		for i := len(changes) - 1; i >= 0; i-- {
			c := changes[i]
			_ = r.checkout(root, c.path, c.from)
		}
		if before != nil {
			_ = os.WriteFile(indexPath, before, 0o644)
		}
	}
	changed := make(map[string]bool, len(changes))
	var added []newIndexEntry
	for _, c := range changes {
		changed[c.path] = true
		if err := r.checkout(root, c.path, c.to); err != nil {
			undo()
			return nil, err
		}
		if c.to == nil {
			continue
		}
		fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(c.path)))
		if err != nil {
			undo()
			return nil, err
		}
		added = append(added, newIndexEntry{name: c.path, hash: c.to.Hash, mode: c.to.Mode, size: fi.Size(), mtime: fi.ModTime()})
	}
	// The index is written and renamed into place but not fsynced, as git
	// does by default (core.fsync=committed covers objects and references,
	// not the index): it is a cache of the work tree that git rebuilds
	// (git reset), and fsyncing its 5 MB for a 10,000-feature repository
	// costs several milliseconds a write.
	next := idx.replace(changed, added, r.indexSpare)
	r.indexSpare = nil
	_, err = lock.Write(next.data)
	if cerr := lock.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(lock.Name(), indexPath)
	}
	if err != nil {
		r.index = indexCache{}
		undo()
		return nil, fmt.Errorf("write the index: %w", err)
	}
	locked = false
	r.keepIndex(indexPath, next)
	r.indexOld = idx // spare once the reference is written (see UpdateRef)
	return undo, nil
}

// indexCache is the index file as UpdateRef last wrote it, parsed, with the
// file's identity then: the next write reuses it while the file is the same
// (git replaces the index by renaming a new file over it, so any change by
// someone else shows in the identity, size or time). Parsing the index of a
// 10,000-feature repository (40,000 entries, 5 MB) takes several
// milliseconds a write otherwise. Guarded by refMu.
type indexCache struct {
	idx  *gitIndex
	info fs.FileInfo
}

// readIndex returns the parsed index file at path (an empty index when
// there is none, existed false), from r.index when the file is still the
// one written last. The caller holds refMu and the index lock.
func (r *Repo) readIndex(path string) (idx *gitIndex, existed bool, err error) {
	info, err := os.Stat(path)
	if c := r.index; err == nil && c.idx != nil && os.SameFile(info, c.info) && info.Size() == c.info.Size() && info.ModTime().Equal(c.info.ModTime()) {
		return c.idx, true, nil
	}
	r.index = indexCache{}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("read the index: %w", err)
	}
	if idx, err = parseIndex(data); err != nil {
		return nil, false, fmt.Errorf("read the index %s: %w", path, err)
	}
	return idx, err == nil && data != nil, nil
}

// keepIndex records idx as the index file at path, just written.
func (r *Repo) keepIndex(path string, idx *gitIndex) {
	if info, err := os.Stat(path); err == nil && info.Size() == int64(len(idx.data)) {
		r.index = indexCache{idx: idx, info: info}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// diffCommits appends the files that differ between commits a and b (zero:
// an empty tree). The caller holds r.mu.
func (r *Repo) diffCommits(a, b plumbing.Hash, out *[]treeChange) error {
	var trees [2]plumbing.Hash
	for i, h := range []plumbing.Hash{a, b} {
		if h.IsZero() {
			continue
		}
		c, err := r.commit(h)
		if err != nil {
			return err
		}
		trees[i] = c.TreeHash
	}
	if err := r.diffTrees(trees[0], trees[1], "", out); err != nil {
		return fmt.Errorf("compare %s and %s: %w", a, b, err)
	}
	for _, c := range *out {
		for _, e := range []*object.TreeEntry{c.from, c.to} {
			if e != nil && e.Mode == filemode.Submodule {
				return fmt.Errorf("submodule %s changes between %s and %s: updating a work tree's submodules is not supported", c.path, a, b)
			}
		}
	}
	return nil
}

// isDirty reports whether path c.path differs from c.from (nil: absent) in
// the index idx or in the work tree at root.
func isDirty(root string, idx *gitIndex, c treeChange) (bool, error) {
	entries := idx.lookup(c.path)
	if c.from == nil && len(entries) > 0 {
		return true, nil
	}
	if c.from != nil {
		if len(entries) != 1 {
			return true, nil
		}
		if e := entries[0]; e.stage != 0 || e.hash != c.from.Hash || e.mode != c.from.Mode {
			return true, nil
		}
	}
	full := filepath.Join(root, filepath.FromSlash(c.path))
	fi, err := os.Lstat(full)
	if c.from == nil {
		switch {
		case err == nil:
			return true, nil // untracked: the update would overwrite it
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, errNotDir):
			return false, nil
		}
		return false, fmt.Errorf("check %s: %w", c.path, err)
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("check %s: %w", c.path, err)
	}
	var data []byte
	switch {
	case c.from.Mode == filemode.Symlink && fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(full)
		if err != nil {
			return false, fmt.Errorf("check %s: %w", c.path, err)
		}
		data = []byte(target)
	case c.from.Mode != filemode.Symlink && fi.Mode().IsRegular():
		if data, err = os.ReadFile(full); err != nil {
			return false, fmt.Errorf("check %s: %w", c.path, err)
		}
	default:
		return true, nil
	}
	return plumbing.ComputeHash(plumbing.BlobObject, data) != c.from.Hash, nil
}

// checkout writes the blob of entry e (nil: removes the file) at path p of
// the work tree at root. Directories are created as needed, and removed when
// left empty.
func (r *Repo) checkout(root, p string, e *object.TreeEntry) error {
	full := filepath.Join(root, filepath.FromSlash(p))
	if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errNotDir) {
		return fmt.Errorf("update %s in the work tree: %w", p, err)
	}
	if e == nil {
		for d := filepath.Dir(full); d != root && strings.HasPrefix(d, root); d = filepath.Dir(d) {
			if os.Remove(d) != nil {
				break
			}
		}
		return nil
	}
	r.mu.Lock()
	data, err := r.readRaw(e.Hash)
	r.mu.Unlock()
	if err == nil {
		err = os.MkdirAll(filepath.Dir(full), 0o755)
	}
	if err == nil {
		switch e.Mode {
		case filemode.Symlink:
			err = os.Symlink(string(data), full)
		case filemode.Executable:
			err = os.WriteFile(full, data, 0o755)
		default:
			err = os.WriteFile(full, data, 0o644)
		}
	}
	if err != nil {
		return fmt.Errorf("update %s in the work tree: %w", p, err)
	}
	return nil
}

// readRaw reads a blob of any size. The caller holds r.mu.
func (r *Repo) readRaw(h plumbing.Hash) ([]byte, error) {
	o, err := r.st.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	rd, err := o.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	defer rd.Close()
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	return data, nil
}
