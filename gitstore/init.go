package gitstore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// InitialCommitMessage is the message of the first commit Init makes.
const InitialCommitMessage = "Initial flag repository from the gitflags template"

// DefaultBranch is the branch Init creates.
const DefaultBranch = "main"

// DefaultAuthor returns the author of commits made on the user's behalf: the
// GIT_AUTHOR_NAME and GIT_AUTHOR_EMAIL environment variables, else user.name
// and user.email of the user's global Git configuration, else "gitflags"
// <gitflags@localhost>. The time is now.
func DefaultAuthor() object.Signature {
	sig := object.Signature{Name: os.Getenv("GIT_AUTHOR_NAME"), Email: os.Getenv("GIT_AUTHOR_EMAIL"), When: time.Now()}
	if sig.Name == "" || sig.Email == "" {
		if cfg, err := config.LoadConfig(config.GlobalScope); err == nil {
			if sig.Name == "" {
				sig.Name = cfg.User.Name
			}
			if sig.Email == "" {
				sig.Email = cfg.User.Email
			}
		}
	}
	if sig.Name == "" {
		sig.Name = "gitflags"
	}
	if sig.Email == "" {
		sig.Email = "gitflags@localhost"
	}
	return sig
}

// Init creates a Git repository at dir holding the files of template, all
// committed as the first commit on branch main by author (as author and
// committer; a zero author.When means now). dir must not exist or be an empty
// directory. Nothing is left behind when Init fails. It returns the commit's
// hash.
func Init(dir string, template fs.FS, author object.Signature) (plumbing.Hash, error) {
	created, err := prepareDir(dir)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("init %s: %w", dir, err)
	}
	h, err := initRepo(dir, template, author)
	if err != nil {
		cleanup(dir, created)
		return plumbing.ZeroHash, fmt.Errorf("init %s: %w", dir, err)
	}
	return h, nil
}

// prepareDir makes sure dir is a new or empty directory, reporting whether it
// created it.
func prepareDir(dir string) (created bool, err error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, err
		}
		return true, nil
	case err != nil:
		if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
			return false, errors.New("a file of that name exists; give a new or empty directory")
		}
		return false, err
	case len(entries) > 0:
		return false, fmt.Errorf("the directory is not empty (it holds %s); give a new or empty directory", entries[0].Name())
	}
	return false, nil
}

// cleanup removes what a failed Init wrote.
func cleanup(dir string, created bool) {
	if created {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

func initRepo(dir string, template fs.FS, author object.Signature) (plumbing.Hash, error) {
	if author.Name == "" || author.Email == "" {
		return plumbing.ZeroHash, errors.New("the author needs a name and an email")
	}
	if author.When.IsZero() {
		author.When = time.Now()
	}
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(DefaultBranch)},
	})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("create repository: %w", err)
	}
	n, err := copyTemplate(dir, template)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if n == 0 {
		return plumbing.ZeroHash, errors.New("the template has no files")
	}
	wt, err := repo.Worktree()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("add files: %w", err)
	}
	h, err := wt.Commit(InitialCommitMessage, &git.CommitOptions{Author: &author, Committer: &author})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("commit: %w", err)
	}
	return h, nil
}

// copyTemplate writes every regular file of template under dir, returning how
// many it wrote. Other kinds of entries are refused.
func copyTemplate(dir string, template fs.FS) (int, error) {
	n := 0
	err := fs.WalkDir(template, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read template: %w", err)
		}
		if p == "." {
			return nil
		}
		if path.Base(p) == ".git" {
			return fmt.Errorf("template: %s: a template must not hold a .git entry", p)
		}
		target := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("template: %s is not a regular file", p)
		}
		mode := os.FileMode(0o644)
		if info, err := d.Info(); err == nil && info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := copyFile(template, p, target, mode); err != nil {
			return fmt.Errorf("template: %s: %w", p, err)
		}
		n++
		return nil
	})
	return n, err
}

func copyFile(fsys fs.FS, p, target string, mode os.FileMode) error {
	src, err := fsys.Open(p)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
