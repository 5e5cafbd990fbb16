package gitstore

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/gitflags/gitflags/flagrepo"
)

// Commit is what a walk of the history needs to know of a commit: who made
// it, when and why (Revision), its tree and its parents (the first parent
// first).
type Commit struct {
	flagrepo.Revision
	Tree    plumbing.Hash
	Parents []plumbing.Hash
}

// ReadCommit reads the commit h. It is safe for concurrent use and does not
// wait for the other metadata operations (it reads through the blob
// readers' pool).
func (r *Repo) ReadCommit(h plumbing.Hash) (Commit, error) {
	var c object.Commit
	err := r.withObject(plumbing.CommitObject, h, func(o plumbing.EncodedObject) error {
		return c.Decode(o)
	})
	if err != nil {
		return Commit{}, fmt.Errorf("read commit %s: %w", h, err)
	}
	return Commit{Revision: revisionOf(&c), Tree: c.TreeHash, Parents: c.ParentHashes}, nil
}

// ReadBlob reads the content of blob h. A blob larger than
// flagrepo.MaxFileSize is not read: the error is a *TooLargeError. It is safe
// for concurrent use.
func (r *Repo) ReadBlob(h plumbing.Hash) ([]byte, error) {
	data, err := r.readBlob(h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	return data, nil
}

// TreeChange is a file whose content differs between two trees.
type TreeChange struct {
	Path     string        // slash-separated path from the top of the tree
	From, To plumbing.Hash // its blob in each tree; the zero hash where it is absent
}

// DiffTrees lists the files whose content differs between the trees from and
// to, in Git's path order; either tree may be the zero hash, the empty tree.
// Files are blobs (regular files, executables and symbolic links): a
// submodule is not a file, and a file whose mode changed but not its content
// is not listed. Subtrees with the same hash on both sides are not read, so a
// commit that changed one file costs the trees on that file's path. Renames
// are not detected: a renamed file is removed at one path and added at
// another. It is safe for concurrent use.
func (r *Repo) DiffTrees(from, to plumbing.Hash) ([]TreeChange, error) {
	return diffTrees(r.treeBytes, from, to)
}

func diffTrees(read func(plumbing.Hash) ([]byte, error), from, to plumbing.Hash) ([]TreeChange, error) {
	var out []TreeChange
	if err := diffTreesRaw(read, "", from, to, &out); err != nil {
		return nil, fmt.Errorf("diff trees %s and %s: %w", from, to, err)
	}
	return out, nil
}

// differCache is the size of a TreeDiffer's object cache. Walking a history
// commit by commit reads each new version of a directory as a delta of the
// previous one: the cache must hold the previous versions of the directories
// that change in turn (a directory of 10,000 files is about 600 KB), or every
// read resolves a whole delta chain again.
const differCache = 64 * cache.MiByte

// A TreeDiffer diffs trees as DiffTrees does, through an object storage and
// cache of its own, sized for walking a long history in order: there the
// shared cache of a Repo is too small (and a walk would evict what the
// snapshot loads need). It is not safe for concurrent use; Close releases
// its files and memory.
type TreeDiffer struct {
	st   *filesystem.Storage
	last map[plumbing.Hash][]byte // the trees the previous DiffTrees read
}

// NewTreeDiffer returns a TreeDiffer reading r's objects.
func (r *Repo) NewTreeDiffer() *TreeDiffer {
	return &TreeDiffer{st: filesystem.NewStorageWithOptions(r.dotgit, cache.NewObjectLRU(differCache), filesystem.Options{
		KeepDescriptors:      true,
		LargeObjectThreshold: largeObject,
	})}
}

// DiffTrees is Repo.DiffTrees. The trees it reads are kept until the next
// call, which takes them from there: walking a history, the old side of a
// commit's diff is the new side of its parent's.
func (d *TreeDiffer) DiffTrees(from, to plumbing.Hash) ([]TreeChange, error) {
	read := map[plumbing.Hash][]byte{}
	changes, err := diffTrees(func(h plumbing.Hash) ([]byte, error) {
		data, ok := d.last[h]
		if !ok {
			var err error
			if data, err = readTreeBytes(d.st, h); err != nil {
				return nil, err
			}
		}
		read[h] = data
		return data, nil
	}, from, to)
	d.last = read
	return changes, err
}

// Close releases the TreeDiffer's files.
func (d *TreeDiffer) Close() error {
	if err := d.st.Close(); err != nil {
		return fmt.Errorf("close tree differ: %w", err)
	}
	return nil
}

func diffTreesRaw(read func(plumbing.Hash) ([]byte, error), prefix string, from, to plumbing.Hash, out *[]TreeChange) error {
	if from == to {
		return nil
	}
	a, err := read(from)
	if err != nil {
		return err
	}
	b, err := read(to)
	if err != nil {
		return err
	}
	var ea, eb rawEntry
	okA, okB := false, false
	for {
		if !okA && len(a) > 0 {
			if a, err = ea.parse(a); err != nil {
				return fmt.Errorf("tree %s (%s): %w", from, dirName(prefix), err)
			}
			okA = true
		}
		if !okB && len(b) > 0 {
			if b, err = eb.parse(b); err != nil {
				return fmt.Errorf("tree %s (%s): %w", to, dirName(prefix), err)
			}
			okB = true
		}
		if !okA && !okB {
			return nil
		}
		var c int
		switch {
		case !okA:
			c = 1
		case !okB:
			c = -1
		default:
			c = ea.compare(&eb)
		}
		switch {
		case c < 0: // only in from
			err = diffRawEntry(read, prefix, &ea, nil, out)
			okA = false
		case c > 0: // only in to
			err = diffRawEntry(read, prefix, nil, &eb, out)
			okB = false
		default:
			if ea.hash != eb.hash {
				err = diffRawEntry(read, prefix, &ea, &eb, out)
			}
			okA, okB = false, false
		}
		if err != nil {
			return err
		}
	}
}

// diffRawEntry records the change of one entry of the same name (and kind: a
// directory and a file never share a name in Git's order) between two trees;
// a or b is nil where the entry is absent. A submodule counts as absent.
func diffRawEntry(read func(plumbing.Hash) ([]byte, error), prefix string, a, b *rawEntry, out *[]TreeChange) error {
	if a != nil && a.mode == filemode.Submodule {
		a = nil
	}
	if b != nil && b.mode == filemode.Submodule {
		b = nil
	}
	e := a
	if e == nil {
		e = b
	}
	switch {
	case e == nil:
		return nil
	case e.mode == filemode.Dir:
		var from, to plumbing.Hash
		if a != nil {
			from = a.hash
		}
		if b != nil {
			to = b.hash
		}
		return diffTreesRaw(read, prefix+string(e.name)+"/", from, to, out)
	}
	var c TreeChange
	c.Path = prefix + string(e.name)
	if a != nil {
		c.From = a.hash
	}
	if b != nil {
		c.To = b.hash
	}
	*out = append(*out, c)
	return nil
}

func dirName(prefix string) string {
	if prefix == "" {
		return "the top directory"
	}
	return prefix
}

// rawEntry is a tree entry parsed in place: name points into the tree's bytes.
type rawEntry struct {
	mode filemode.FileMode
	name []byte
	hash plumbing.Hash
}

// parse reads the first entry of data and returns the rest.
func (e *rawEntry) parse(data []byte) ([]byte, error) {
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
	case len(data) < nul+1+len(e.hash):
		return nil, fmt.Errorf("%w: truncated object id", object.ErrMalformedTree)
	}
	e.mode, e.name = mode, data[:nul]
	copy(e.hash[:], data[nul+1:])
	return data[nul+1+len(e.hash):], nil
}

// compare orders entries as Git sorts a tree: by name, a directory's name
// compared as if it ended in '/'.
func (e *rawEntry) compare(o *rawEntry) int {
	n := min(len(e.name), len(o.name))
	if c := bytes.Compare(e.name[:n], o.name[:n]); c != 0 {
		return c
	}
	return cmp.Compare(e.after(n), o.after(n))
}

// after returns the character at position n of the entry's sort key: its
// name, followed by '/' for a directory; 0 past the end.
func (e *rawEntry) after(n int) int {
	switch {
	case n < len(e.name):
		return int(e.name[n])
	case n == len(e.name) && e.mode == filemode.Dir:
		return '/'
	}
	return 0
}

// treeBytes reads the raw content of tree h through the readers' pool; nil
// for the zero hash.
func (r *Repo) treeBytes(h plumbing.Hash) ([]byte, error) {
	if h.IsZero() {
		return nil, nil
	}
	s, err := r.acquire()
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	defer r.release(s)
	return readTreeBytes(s, h)
}

// readTreeBytes reads the raw content of tree h from s; nil for the zero
// hash.
func readTreeBytes(s *filesystem.Storage, h plumbing.Hash) ([]byte, error) {
	if h.IsZero() {
		return nil, nil
	}
	o, err := encodedObject(s, plumbing.TreeObject, h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	rd, err := o.Reader()
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	data := make([]byte, o.Size())
	_, err = io.ReadFull(rd, data)
	if cerr := rd.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	return data, nil
}

// withObject calls fn with the object h of type typ, read through a storage
// of the readers' pool.
func (r *Repo) withObject(typ plumbing.ObjectType, h plumbing.Hash, fn func(plumbing.EncodedObject) error) error {
	s, err := r.acquire()
	if err != nil {
		return err
	}
	defer r.release(s)
	o, err := encodedObject(s, typ, h)
	if err != nil {
		return err
	}
	return fn(o)
}

func encodedObject(s *filesystem.Storage, typ plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	o, err := s.EncodedObject(typ, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		// A pack written by another process since the indexes were loaded.
		s.Reindex()
		o, err = s.EncodedObject(typ, h)
	}
	return o, err
}
