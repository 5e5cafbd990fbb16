package gitsync

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// watcher watches either the references of a Git directory or a working
// tree. Directories are watched rather than files, so that files replaced by
// a rename (as git writes every ref: <ref>.lock, then rename) stay watched;
// directories created later (a new ref directory, refs/heads removed and
// recreated) are added as their creation is seen.
type watcher struct {
	fs   *fsnotify.Watcher
	refs bool   // watching a Git directory's refs, not a working tree
	root string // the Git directory, or the working tree
}

// newRefWatcher watches gitdir (for HEAD and packed-refs), gitdir/refs and
// everything under gitdir/refs/heads.
func newRefWatcher(gitdir string) (*watcher, error) {
	return newWatcher(gitdir, true)
}

// newTreeWatcher watches every directory of a working tree but .git.
func newTreeWatcher(dir string) (*watcher, error) {
	return newWatcher(dir, false)
}

func newWatcher(root string, refs bool) (*watcher, error) {
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	w := &watcher{fs: fw, refs: refs, root: root}
	if err := fw.Add(root); err != nil {
		fw.Close()
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	w.rewatch()
	return w, nil
}

func (w *watcher) close() { w.fs.Close() }

// rewatch (re)adds the watches of every directory that should be watched.
// Adding a watched directory again is harmless.
func (w *watcher) rewatch() {
	if !w.refs {
		w.addTree(w.root)
		return
	}
	_ = w.fs.Add(w.root)
	_ = w.fs.Add(filepath.Join(w.root, "refs"))
	w.addTree(filepath.Join(w.root, "refs", "heads"))
}

// addTree watches dir and its subdirectories (but .git in a working tree).
// Directories that vanish meanwhile are skipped.
func (w *watcher) addTree(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if !w.refs && d.Name() == ".git" {
			return filepath.SkipDir
		}
		_ = w.fs.Add(p)
		return nil
	})
}

// handle keeps the watches up to date with ev and reports whether ev may
// change what is served.
func (w *watcher) handle(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := ev.Name
	created := ev.Has(fsnotify.Create)
	if w.refs {
		base := filepath.Base(name)
		if strings.HasSuffix(base, ".lock") {
			return false // written, then renamed onto the real name
		}
		if filepath.Dir(name) == w.root {
			switch base {
			case "HEAD", "packed-refs":
				return true
			case "refs":
				if created {
					w.rewatch()
				}
				return true
			}
			return false
		}
		refs := filepath.Join(w.root, "refs")
		heads := filepath.Join(refs, "heads")
		if name == heads || strings.HasPrefix(name, heads+string(filepath.Separator)) {
			if created && isDir(name) {
				w.addTree(name)
			}
			return true
		}
		return false // other refs: tags, remotes, notes
	}
	rel, err := filepath.Rel(w.root, name)
	if err != nil {
		return false
	}
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		if part == ".git" {
			return false
		}
	}
	if created && isDir(name) {
		w.addTree(name)
	}
	return true
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}
