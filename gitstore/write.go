package gitstore

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// FileChange is a new content for one path of a commit's tree, or its
// removal.
type FileChange struct {
	Path   string // slash-separated, relative to the top of the repository
	Data   []byte // the new content; ignored when Delete is set
	Delete bool   // remove the file instead
}

// CommitOptions describe a commit to write.
type CommitOptions struct {
	Parent    plumbing.Hash    // the commit the change applies to (required)
	Changes   []FileChange     // at most one per path
	Author    object.Signature // the caller (token owner); a zero When means now
	Committer object.Signature // the server; a zero When means now
	Message   string           // a final newline is added when missing
}

// Commit writes the blobs, trees and commit of opts as loose objects,
// durably: every object file is fsynced before it is renamed into place, and
// every directory that received one is fsynced before Commit returns. It
// moves no reference (see UpdateRef) and returns the new commit's hash.
//
// Only the trees along changed paths are read and rewritten; the other
// subtrees keep their hashes. A directory left empty by deletions disappears
// from the tree, as in Git. New files get mode 100644; a changed file keeps
// its mode. Trees are written as Git writes them (entries in Git's order,
// canonical modes), so git fsck --strict accepts them.
//
// Paths are validated (see CommitOptions and the errors, which name the
// path); deleting a path that does not exist is an error wrapping
// fs.ErrNotExist.
func (r *Repo) Commit(opts CommitOptions) (plumbing.Hash, error) {
	h, err := r.writeCommit(opts)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("commit on %s in %s: %w", opts.Parent, r.path, err)
	}
	return h, nil
}

func (r *Repo) writeCommit(opts CommitOptions) (plumbing.Hash, error) {
	if err := r.writable(); err != nil {
		return plumbing.ZeroHash, err
	}
	if opts.Parent.IsZero() {
		return plumbing.ZeroHash, errors.New("no parent commit given")
	}
	if len(opts.Changes) == 0 {
		return plumbing.ZeroHash, errors.New("no changes given")
	}
	root := &changeDir{}
	for i, c := range opts.Changes {
		if err := root.add(c); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("change %d: %w", i, err)
		}
	}
	author, err := checkSignature("author", opts.Author)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	committer, err := checkSignature("committer", opts.Committer)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	msg := opts.Message
	if strings.TrimSpace(msg) == "" {
		return plumbing.ZeroHash, errors.New("the commit message is empty")
	}
	if strings.IndexByte(msg, 0) >= 0 {
		return plumbing.ZeroHash, errors.New("the commit message contains a NUL byte")
	}
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}

	var objs []looseObject
	r.mu.Lock()
	parent, err := r.commit(opts.Parent)
	var tree plumbing.Hash
	if err == nil {
		tree, _, err = r.buildTree(parent.TreeHash, "", root, &objs)
	}
	r.mu.Unlock()
	if err != nil {
		return plumbing.ZeroHash, err
	}

	c := &object.Commit{
		Author:       author,
		Committer:    committer,
		Message:      msg,
		TreeHash:     tree,
		ParentHashes: []plumbing.Hash{opts.Parent},
	}
	mo := &plumbing.MemoryObject{}
	if err := c.Encode(mo); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode commit: %w", err)
	}
	rd, _ := mo.Reader() // a MemoryObject's reader never fails
	data, _ := io.ReadAll(rd)
	commit := newLooseObject(plumbing.CommitObject, data)
	if err := r.writeObjects(append(objs, commit)); err != nil {
		return plumbing.ZeroHash, err
	}
	// The new trees are read next (Snapshot lists the commit, UpdateRef
	// compares it with the old head): keep them decoded.
	r.mu.Lock()
	for _, o := range objs {
		if o.entries != nil {
			r.trees.add(o.hash, o.entries)
		}
	}
	r.mu.Unlock()
	return commit.hash, nil
}

// checkSignature checks that sig can be written into a commit, and sets a
// zero time to now.
func checkSignature(field string, sig object.Signature) (object.Signature, error) {
	for _, f := range []struct{ name, v string }{{"name", sig.Name}, {"email", sig.Email}} {
		if strings.TrimSpace(f.v) == "" {
			return sig, fmt.Errorf("the %s's %s is empty", field, f.name)
		}
		if i := strings.IndexAny(f.v, "<>\n\x00"); i >= 0 {
			return sig, fmt.Errorf("the %s's %s %q contains %q, which a commit cannot hold", field, f.name, f.v, f.v[i])
		}
	}
	if sig.When.IsZero() {
		sig.When = time.Now()
	}
	return sig, nil
}

// changeDir is the changes under one directory, by name.
type changeDir struct {
	files map[string]*FileChange
	dirs  map[string]*changeDir
}

// add records c under d, refusing bad paths and paths given twice.
func (d *changeDir) add(c FileChange) error {
	parts, err := splitPath(c.Path)
	if err != nil {
		return err
	}
	for i, name := range parts[:len(parts)-1] {
		if _, ok := d.files[name]; ok {
			return fmt.Errorf("path %q: %q is changed as a file too", c.Path, strings.Join(parts[:i+1], "/"))
		}
		if d.dirs == nil {
			d.dirs = map[string]*changeDir{}
		}
		next := d.dirs[name]
		if next == nil {
			next = &changeDir{}
			d.dirs[name] = next
		}
		d = next
	}
	name := parts[len(parts)-1]
	if _, ok := d.files[name]; ok {
		return fmt.Errorf("path %q is changed twice", c.Path)
	}
	if _, ok := d.dirs[name]; ok {
		return fmt.Errorf("path %q is changed as a file, and files under it too", c.Path)
	}
	if d.files == nil {
		d.files = map[string]*FileChange{}
	}
	d.files[name] = &c
	return nil
}

// splitPath checks that p is a clean, relative, slash-separated path outside
// .git and returns its elements.
func splitPath(p string) ([]string, error) {
	switch {
	case p == "":
		return nil, errors.New("empty path")
	case strings.HasPrefix(p, "/"):
		return nil, fmt.Errorf("path %q is absolute; give a path relative to the top of the repository", p)
	case strings.Contains(p, `\`):
		return nil, fmt.Errorf("path %q contains a backslash; separate directories with /", p)
	case strings.IndexByte(p, 0) >= 0:
		return nil, fmt.Errorf("path %q contains a NUL byte", p)
	}
	parts := strings.Split(p, "/")
	for _, e := range parts {
		switch {
		case e == "":
			return nil, fmt.Errorf("path %q has an empty element (a doubled or trailing /)", p)
		case e == "." || e == "..":
			return nil, fmt.Errorf("path %q has a %q element", p, e)
		case strings.EqualFold(e, ".git"):
			return nil, fmt.Errorf("path %q is inside .git", p)
		}
	}
	return parts, nil
}

// buildTree applies the changes of d to tree h (zero for a new directory)
// at path dir ("" or "features/"), appending the objects to write to objs,
// and returns the new tree's hash and its number of entries. The caller
// holds r.mu.
func (r *Repo) buildTree(h plumbing.Hash, dir string, d *changeDir, objs *[]looseObject) (plumbing.Hash, int, error) {
	var entries []object.TreeEntry
	if !h.IsZero() {
		var err error
		cached, err := r.readTree(h, nil)
		if err != nil {
			return plumbing.ZeroHash, 0, fmt.Errorf("read directory %q: %w", dir, err)
		}
		entries = slices.Clone(cached) // readTree's entries are shared (treeCache)
	}
	find := func(name string) int {
		return slices.IndexFunc(entries, func(e object.TreeEntry) bool { return e.Name == name })
	}
	for name, c := range d.files {
		i := find(name)
		if c.Delete {
			switch {
			case i < 0:
				return plumbing.ZeroHash, 0, fmt.Errorf("delete %q: %w in commit", c.Path, fs.ErrNotExist)
			case entries[i].Mode == filemode.Dir:
				return plumbing.ZeroHash, 0, fmt.Errorf("delete %q: it is a directory; delete its files", c.Path)
			}
			entries = slices.Delete(entries, i, i+1)
			continue
		}
		blob := newLooseObject(plumbing.BlobObject, c.Data)
		*objs = append(*objs, blob)
		if i < 0 {
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: blob.hash})
			continue
		}
		switch entries[i].Mode {
		case filemode.Regular, filemode.Executable:
		case filemode.Dir:
			return plumbing.ZeroHash, 0, fmt.Errorf("write %q: it is a directory", c.Path)
		default:
			return plumbing.ZeroHash, 0, fmt.Errorf("write %q: it is a %s, not a regular file", c.Path, kindOf(entries[i].Mode))
		}
		entries[i].Hash = blob.hash
	}
	for name, sub := range d.dirs {
		i := find(name)
		var subHash plumbing.Hash
		if i >= 0 {
			if entries[i].Mode != filemode.Dir {
				return plumbing.ZeroHash, 0, fmt.Errorf("%q is a %s, not a directory", dir+name, kindOf(entries[i].Mode))
			}
			subHash = entries[i].Hash
		}
		nh, n, err := r.buildTree(subHash, dir+name+"/", sub, objs)
		switch {
		case err != nil:
			return plumbing.ZeroHash, 0, err
		case n == 0 && i >= 0:
			entries = slices.Delete(entries, i, i+1)
		case n == 0:
		case i >= 0:
			entries[i].Hash = nh
		default:
			entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: nh})
		}
	}
	if len(entries) == 0 && dir != "" {
		return plumbing.ZeroHash, 0, nil
	}
	tree := newLooseObject(plumbing.TreeObject, encodeTree(entries))
	tree.entries = entries
	*objs = append(*objs, tree)
	return tree.hash, len(entries), nil
}

// kindOf names the kind of a tree entry that is not a regular file.
func kindOf(m filemode.FileMode) string {
	switch m {
	case filemode.Dir:
		return "directory"
	case filemode.Symlink:
		return "symbolic link"
	case filemode.Submodule:
		return "submodule"
	}
	return "file"
}

// encodeTree encodes entries as a tree object, sorting them as Git does: by
// name, with a directory's name compared as if it ended in "/".
func encodeTree(entries []object.TreeEntry) []byte {
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	slices.SortFunc(entries, func(a, b object.TreeEntry) int { return strings.Compare(key(a), key(b)) })
	var buf []byte
	for _, e := range entries {
		buf = strconv.AppendUint(buf, uint64(e.Mode), 8)
		buf = append(buf, ' ')
		buf = append(buf, e.Name...)
		buf = append(buf, 0)
		buf = append(buf, e.Hash[:]...)
	}
	return buf
}

// ReadFile returns the content of path in the tree of commit, or an error
// wrapping fs.ErrNotExist when the commit has no file there.
func (r *Repo) ReadFile(commit plumbing.Hash, path string) ([]byte, error) {
	parts, err := splitPath(path)
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", path, commit, err)
	}
	r.mu.Lock()
	e, err := r.lookup(commit, parts)
	r.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", path, commit, err)
	}
	switch e.Mode {
	case filemode.Regular, filemode.Executable, filemode.Deprecated, filemode.Symlink:
	default:
		return nil, fmt.Errorf("read %s at %s: it is a %s", path, commit, kindOf(e.Mode))
	}
	return r.blobReader(e.Hash, path)()
}

// lookup returns the tree entry at parts in commit. The caller holds r.mu.
func (r *Repo) lookup(commit plumbing.Hash, parts []string) (object.TreeEntry, error) {
	c, err := r.commit(commit)
	if err != nil {
		return object.TreeEntry{}, err
	}
	e := object.TreeEntry{Mode: filemode.Dir, Hash: c.TreeHash}
	for i, name := range parts {
		if e.Mode != filemode.Dir {
			return object.TreeEntry{}, fmt.Errorf("%s is a %s: %w", strings.Join(parts[:i], "/"), kindOf(e.Mode), fs.ErrNotExist)
		}
		entries, err := r.readTree(e.Hash, nil)
		if err != nil {
			return object.TreeEntry{}, err
		}
		j := slices.IndexFunc(entries, func(e object.TreeEntry) bool { return e.Name == name })
		if j < 0 {
			return object.TreeEntry{}, fs.ErrNotExist
		}
		e = entries[j]
	}
	return e, nil
}

// writable reports why objects and references cannot be written into r.
func (r *Repo) writable() error {
	if r.closed.Load() {
		return errClosed
	}
	if r.objects == "" {
		return errors.New("writing to a linked work tree (git worktree add) is not supported; use the main work tree or a clone")
	}
	return nil
}

// looseObject is an encoded object to write.
type looseObject struct {
	hash plumbing.Hash
	typ  plumbing.ObjectType
	data []byte
	// entries are a tree's entries, in tree order (nil for other objects).
	entries []object.TreeEntry
}

func newLooseObject(t plumbing.ObjectType, data []byte) looseObject {
	return looseObject{hash: plumbing.ComputeHash(t, data), typ: t, data: data}
}

// writeObjects writes objs as loose objects that are not there yet. Each is
// written to a temporary file, fsynced and renamed into place (syncFile);
// then every directory that got an entry is fsynced (syncDir). The objects
// are written concurrently, and so are the directories synced: a write's
// handful of fsyncs then wait on the disk together rather than in turn.
func (r *Repo) writeObjects(objs []looseObject) error {
	dirs := make([][]string, len(objs)) // the directories each object changed
	errs := make([]error, len(objs))
	var wg sync.WaitGroup
	slots := make(chan struct{}, 8) // at most 8 at once (a commit may hold thousands)
	for i := range objs {
		slots <- struct{}{}
		wg.Go(func() {
			dirs[i], errs[i] = r.writeObject(&objs[i])
			<-slots
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	all := slices.Concat(dirs...)
	slices.Sort(all)
	all = slices.Compact(all)
	errs = make([]error, len(all))
	for i, d := range all {
		slots <- struct{}{}
		wg.Go(func() {
			errs[i] = syncDir(d)
			<-slots
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("write objects: %w", err)
	}
	return nil
}

// zlibWriters are reusable compressors at git's core.looseCompression
// default, the fastest level (a new one allocates about a megabyte).
var zlibWriters = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed) // a valid level: no error
	return w
}}

// writeObject writes o as a loose object unless it is there already, and
// returns the directories to fsync for it to be durable.
func (r *Repo) writeObject(o *looseObject) (dirs []string, err error) {
	hex := o.hash.String()
	dir := filepath.Join(r.objects, hex[:2])
	final := filepath.Join(dir, hex[2:])
	if _, err := os.Lstat(final); err == nil {
		return nil, nil
	}
	if err := os.Mkdir(dir, 0o755); err == nil {
		dirs = append(dirs, r.objects)
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("write object %s: %w", hex, err)
	}
	// A loose object is zlib("<type> <size>\0" + data), compressed at the
	// fastest level: the trees of a large repository are hundreds of
	// kilobytes each.
	var buf bytes.Buffer
	w := zlibWriters.Get().(*zlib.Writer)
	w.Reset(&buf)
	_, err = fmt.Fprintf(w, "%s %d\x00", o.typ, len(o.data))
	if err == nil {
		_, err = w.Write(o.data)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	zlibWriters.Put(w)
	if err == nil {
		err = syncFile(dir, "tmp_obj_*", final, buf.Bytes(), 0o444)
	}
	if err != nil {
		return nil, fmt.Errorf("write object %s: %w", hex, err)
	}
	return append(dirs, dir), nil
}

// syncFile writes data durably to the file final in directory dir: into a new
// temporary file named by pattern (see os.CreateTemp), fsynced, then renamed
// to final. The caller fsyncs dir (syncDir) for the rename to be durable.
// Every object and reference file is written through syncFile or syncLock.
func syncFile(dir, pattern, final string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = writeSync(f, data)
	if err == nil {
		err = os.Chmod(tmp, perm)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// writeSync writes data to f, fsyncs and closes it.
func writeSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return nil
}

// syncDir fsyncs directory dir, making the creation, removal and renaming
// of its entries durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
