package gitstore

import (
	"fmt"
	"strings"

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

// Branches returns the branches whose names begin with prefix (such as
// "gitflags/"), with the commit each points at, by name.
func (r *Repo) Branches(prefix string) (map[string]plumbing.Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	refs, err := r.repo.Storer.IterReferences()
	if err != nil {
		return nil, fmt.Errorf("list branches of %s: %w", r.path, err)
	}
	defer refs.Close()
	out := map[string]plumbing.Hash{}
	err = refs.ForEach(func(ref *plumbing.Reference) error {
		if ref.Name().IsBranch() && ref.Type() == plumbing.HashReference && strings.HasPrefix(ref.Name().Short(), prefix) {
			out[ref.Name().Short()] = ref.Hash()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list branches of %s: %w", r.path, err)
	}
	return out, nil
}

// MergeBase returns a best common ancestor of commits a and b, or the zero
// hash when they share no history.
func (r *Repo) MergeBase(a, b plumbing.Hash) (plumbing.Hash, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ca, err := r.repo.CommitObject(a)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("merge base: %w", err)
	}
	cb, err := r.repo.CommitObject(b)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("merge base: %w", err)
	}
	bases, err := ca.MergeBase(cb)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("merge base of %s and %s: %w", a, b, err)
	}
	if len(bases) == 0 {
		return plumbing.ZeroHash, nil
	}
	return bases[0].Hash, nil
}

// RemoveRef deletes reference name, if it exists.
func (r *Repo) RemoveRef(name plumbing.ReferenceName) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.repo.Storer.RemoveReference(name); err != nil {
		return fmt.Errorf("remove %s from %s: %w", name, r.path, err)
	}
	return nil
}
