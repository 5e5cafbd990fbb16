package gitstore

import (
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
)

// HeadBranch returns the branch HEAD names (main for refs/heads/main), or an
// error when HEAD is detached or names something other than a branch.
func (r *Repo) HeadBranch() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, err := r.repo.Storer.Reference(plumbing.HEAD)
	if err != nil {
		return "", fmt.Errorf("read HEAD of %s: %w", r.path, err)
	}
	if ref.Type() != plumbing.SymbolicReference || !ref.Target().IsBranch() {
		return "", fmt.Errorf("HEAD of %s is detached (at %s): name a branch to write to", r.path, ref.Hash())
	}
	return ref.Target().Short(), nil
}

// SetRef points reference name at commit, whatever it pointed at before.
// It is for the server's own scratch references (refs/gitflags/...); use
// UpdateRef for branches.
func (r *Repo) SetRef(name plumbing.ReferenceName, commit plumbing.Hash) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.repo.Storer.SetReference(plumbing.NewHashReference(name, commit)); err != nil {
		return fmt.Errorf("set %s in %s: %w", name, r.path, err)
	}
	return nil
}
