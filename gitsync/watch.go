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
	// common is the common Git directory of a linked work tree (git
	// worktree add), where its branches live; "" otherwise.
	common string
}

// newRefWatcher watches gitdir (for HEAD and packed-refs), gitdir/refs and
// everything under gitdir/refs/heads; for a linked work tree, whose gitdir
// names a common directory, the same in the common directory too.
func newRefWatcher(gitdir string) (*watcher, error) {
	w, err := newWatcher(gitdir, true)
	if err != nil {
		return nil, err
	}
	if data, err := os.ReadFile(filepath.Join(w.root, "commondir")); err == nil {
		common := strings.TrimSpace(string(data))
		if !filepath.IsAbs(common) {
			common = filepath.Join(w.root, common)
		}
		if common = filepath.Clean(common); common != w.root {
			if err := w.fs.Add(common); err != nil {
				w.close()
				return nil, fmt.Errorf("watch %s: %w", common, err)
			}
			w.common = common
			w.rewatch()
		}
	}
	return w, nil
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
	for _, dir := range w.gitDirs() {
		_ = w.fs.Add(dir)
		_ = w.fs.Add(filepath.Join(dir, "refs"))
		w.addTree(filepath.Join(dir, "refs", "heads"))
	}
}

// gitDirs lists the Git directories whose references are watched.
func (w *watcher) gitDirs() []string {
	if w.common == "" {
		return []string{w.root}
	}
	return []string{w.root, w.common}
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
		for _, dir := range w.gitDirs() {
			if filepath.Dir(name) == dir {
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
			heads := filepath.Join(dir, "refs", "heads")
			if name == heads || strings.HasPrefix(name, heads+string(filepath.Separator)) {
				if created && isDir(name) {
					w.addTree(name)
				}
				return true
			}
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
