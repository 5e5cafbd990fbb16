package commits

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
)

// Break-glass writes (Options.OfflineWrites): when the remote cannot be
// reached, a write is committed in the server's clone on the reference
// UnpushedRef, served, and pushed when the remote answers again
// (Reconcile, after each successful fetch). If the remote moved meanwhile,
// the waiting commits are applied again on its new head, file by file; a
// commit that no longer applies (a file the remote changed too, or a result
// that does not validate) stops that, and the commits are kept on a branch
// gitflags/unpushed-<time> for a person to merge, and reported.

// UnpushedRef is the reference of the commits made while the remote of
// branch was unreachable, waiting to be pushed.
func UnpushedRef(branch string) plumbing.ReferenceName {
	return plumbing.ReferenceName("refs/gitflags/unpushed/" + branch)
}

// Status is the state of a Writer's pushes.
type Status struct {
	Branch string `json:"branch"`
	// Unpushed is the number of commits waiting for the remote (break-glass
	// writes), since the first of them was made.
	Unpushed      int       `json:"unpushed"`
	UnpushedSince time.Time `json:"unpushed_since,omitzero"`
	// LastPushError is the error of the last push that failed, until one
	// succeeds.
	LastPushError string `json:"last_push_error,omitempty"`
	// Kept are the branches holding waiting commits that no longer applied
	// on the remote's head, for a person to merge.
	Kept []string `json:"kept,omitempty"`
}

// Status returns the state of the Writer's pushes.
func (w *Writer) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.status
	st.Branch = w.branch
	st.Kept = slices.Clone(st.Kept)
	return st
}

// recoverStatus rebuilds the status from the repository at start: the
// commits still waiting from before a restart, and the kept branches.
func (w *Writer) recoverStatus() {
	if kept, err := w.opts.Repo.Branches(keptPrefix); err == nil {
		for name := range kept {
			w.status.Kept = append(w.status.Kept, name)
		}
		slices.Sort(w.status.Kept)
	}
	pending := w.unpushedHead()
	if pending.IsZero() {
		return
	}
	remote, err := w.opts.Repo.Resolve(gitstore.RemoteRef(w.branch))
	if err != nil {
		return
	}
	base, err := w.opts.Repo.MergeBase(remote, pending)
	if err != nil {
		return
	}
	for h := pending; h != base && w.status.Unpushed < 1_000_000; {
		c, err := w.opts.Repo.ReadCommit(h)
		if err != nil || len(c.Parents) == 0 {
			break
		}
		w.status.Unpushed++
		if w.status.UnpushedSince.IsZero() || c.Time.Before(w.status.UnpushedSince) {
			w.status.UnpushedSince = c.Time
		}
		h = c.Parents[0]
	}
	w.status.LastPushError = "not pushed before the server restarted"
}

// keptPrefix begins the branches that hold commits that no longer applied.
const keptPrefix = "gitflags/unpushed-"

// unpushedHead returns the head of the waiting commits, or the zero hash.
func (w *Writer) unpushedHead() plumbing.Hash {
	if !w.opts.Remote {
		return plumbing.ZeroHash
	}
	h, err := w.opts.Repo.Resolve(string(UnpushedRef(w.branch)))
	if err != nil {
		return plumbing.ZeroHash
	}
	return h
}

// keepUnpushed records commit, which the remote could not take, as the head
// of the waiting commits (its parent is the previous head, if any).
func (w *Writer) keepUnpushed(commit, previous plumbing.Hash, pushErr error) (int, error) {
	if err := w.opts.Repo.UpdateRef(UnpushedRef(w.branch), commit, previous); err != nil {
		return 0, fmt.Errorf("keep the commit for a later push: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status.Unpushed == 0 {
		w.status.UnpushedSince = time.Now()
	}
	w.status.Unpushed++
	w.status.LastPushError = pushErr.Error()
	return w.status.Unpushed, nil
}

// pushed records that nothing waits any more.
func (w *Writer) pushed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status.Unpushed, w.status.UnpushedSince, w.status.LastPushError = 0, time.Time{}, ""
}

// Fetched is gitsync.Options.Fetched: a fetch that failed marks the remote
// as down for break-glass writes (they are then kept locally without waiting
// for a push), one that succeeded clears it.
func (w *Writer) Fetched(err error) { w.setDown(err != nil) }

// Reconcile pushes the commits waiting for the remote, applying them again on
// the remote's head if it moved, and returns the reference to serve: ""
// when nothing waits (the remote branch), else UnpushedRef. It is
// gitsync.Options.Reconcile, called with the sync lock held after a
// successful fetch.
func (w *Writer) Reconcile(ctx context.Context) (string, error) {
	pending := w.unpushedHead()
	if pending.IsZero() {
		return "", nil
	}
	ref, err := w.reconcile(ctx, pending)
	if err != nil {
		w.mu.Lock()
		w.status.LastPushError = err.Error()
		w.mu.Unlock()
	}
	return ref, err
}

func (w *Writer) reconcile(ctx context.Context, pending plumbing.Hash) (string, error) {
	remote, err := w.opts.Repo.Resolve(gitstore.RemoteRef(w.branch))
	if err != nil {
		return string(UnpushedRef(w.branch)), err
	}
	base, err := w.opts.Repo.MergeBase(remote, pending)
	if err != nil {
		return string(UnpushedRef(w.branch)), err
	}
	if base == pending { // the remote has them already
		return "", w.dropUnpushed()
	}
	tip := pending
	var kept error // the commits that did not apply, kept on a branch
	if base != remote {
		replayed, skipped, err := w.replay(base, pending, remote)
		if err != nil {
			return w.keepOnBranch(ctx, pending, err, true)
		}
		if len(skipped) > 0 {
			// The whole chain as it was, for a person to merge; the
			// commits that still apply are pushed and served.
			_, kept = w.keepOnBranch(ctx, pending, errors.New(strings.Join(skipped, "; ")), replayed == remote)
			if replayed == remote {
				return "", kept
			}
		}
		if err := w.opts.Repo.UpdateRef(UnpushedRef(w.branch), replayed, pending); err != nil {
			return string(UnpushedRef(w.branch)), err
		}
		tip = replayed
	}
	if err := w.push(ctx, tip, plumbing.NewBranchReferenceName(w.branch)); err != nil {
		return string(UnpushedRef(w.branch)), fmt.Errorf("push the commits made while the remote was unreachable: %w", err)
	}
	if err := w.dropUnpushed(); err != nil {
		return "", err
	}
	return "", kept
}

func (w *Writer) dropUnpushed() error {
	if err := w.opts.Repo.RemoveRef(UnpushedRef(w.branch)); err != nil {
		return err
	}
	w.pushed()
	return nil
}

// keepOnBranch puts the waiting commits on a branch of their own, because
// they no longer apply on the remote's head, and stops serving them.
func (w *Writer) keepOnBranch(ctx context.Context, pending plumbing.Hash, why error, drop bool) (string, error) {
	branch := keptPrefix + time.Now().UTC().Format("20060102-150405.000")
	ref := plumbing.NewBranchReferenceName(branch)
	if err := w.opts.Repo.UpdateRef(ref, pending, plumbing.ZeroHash); err != nil {
		return string(UnpushedRef(w.branch)), fmt.Errorf("keep the unpushed commits on %s: %w", branch, err)
	}
	// Pushed too (a new branch cannot conflict), so that they are not only
	// on this server's disk.
	where := "pushed to the remote"
	if err := w.push(ctx, pending, ref); err != nil {
		where = "on this server only (" + err.Error() + ")"
	}
	if drop {
		if err := w.opts.Repo.RemoveRef(UnpushedRef(w.branch)); err != nil {
			return string(UnpushedRef(w.branch)), err
		}
		w.pushed()
	}
	w.mu.Lock()
	w.status.Kept = append(w.status.Kept, branch)
	w.mu.Unlock()
	return "", fmt.Errorf("%w: commits made while the remote was unreachable no longer apply on its %s (%v); all of them are kept on branch %s, %s", ErrConflict, w.branch, why, branch, where)
}

// replay applies the commits from base (exclusive) to tip on onto, oldest
// first, each with its own author and message, and returns the new tip and
// the commits it skipped. A commit is skipped when it changes a file the
// remote changed too (to other content) or that a skipped commit changed,
// or when its result does not validate. An error is a failure to read or
// write the repository.
func (w *Writer) replay(base, tip, onto plumbing.Hash) (plumbing.Hash, []string, error) {
	repo := w.opts.Repo
	var chain []gitstore.Commit
	var hashes []plumbing.Hash
	for h := tip; h != base; {
		c, err := repo.ReadCommit(h)
		if err != nil {
			return plumbing.ZeroHash, nil, err
		}
		if len(c.Parents) == 0 {
			return plumbing.ZeroHash, nil, errors.New("the unpushed commits do not descend from the remote's history")
		}
		chain, hashes = append(chain, c), append(hashes, h)
		h = c.Parents[0]
	}
	baseCommit, err := repo.ReadCommit(base)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	ontoCommit, err := repo.ReadCommit(onto)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	theirs, err := repo.DiffTrees(baseCommit.Tree, ontoCommit.Tree)
	if err != nil {
		return plumbing.ZeroHash, nil, err
	}
	changedThere := map[string]plumbing.Hash{}
	for _, c := range theirs {
		changedThere[c.Path] = c.To
	}
	snap, err := repo.Snapshot(onto.String(), nil)
	if err != nil {
		return plumbing.ZeroHash, nil, fmt.Errorf("the remote's head does not load: %w", err)
	}
	newTip := onto
	var skipped []string
	for i := len(chain) - 1; i >= 0; i-- {
		c := chain[i]
		what := fmt.Sprintf("%s (%q)", short(hashes[i].String()), strings.TrimSpace(c.Message))
		parent, err := repo.ReadCommit(c.Parents[0])
		if err != nil {
			return plumbing.ZeroHash, nil, err
		}
		ours, err := repo.DiffTrees(parent.Tree, c.Tree)
		if err != nil {
			return plumbing.ZeroHash, nil, err
		}
		var changes []gitstore.FileChange
		clash := ""
		for _, ch := range ours {
			if to, ok := changedThere[ch.Path]; ok && to != ch.To {
				clash = ch.Path
				break
			}
			fc := gitstore.FileChange{Path: ch.Path, Delete: ch.To.IsZero()}
			if !fc.Delete {
				if fc.Data, err = repo.ReadBlob(ch.To); err != nil {
					return plumbing.ZeroHash, nil, err
				}
			}
			changes = append(changes, fc)
		}
		if clash != "" {
			skipped = append(skipped, what+" changes "+clash+", which the remote changed too")
			for _, ch := range ours { // later commits on these files build on this one
				changedThere[ch.Path] = plumbing.ZeroHash
			}
			continue
		}
		if len(changes) == 0 {
			continue
		}
		next, err := repo.Commit(gitstore.CommitOptions{
			Parent: newTip, Changes: changes, Message: c.Message,
			Author:    object.Signature{Name: c.Author, Email: c.AuthorEmail, When: c.Time},
			Committer: w.committer(),
		})
		if err != nil {
			return plumbing.ZeroHash, nil, err
		}
		nextSnap, err := repo.Snapshot(next.String(), snap)
		if err != nil {
			var ve *flagrepo.ValidationError
			if !errors.As(err, &ve) {
				return plumbing.ZeroHash, nil, err
			}
			skipped = append(skipped, what+" does not validate on the remote's head: "+err.Error())
			for _, ch := range ours {
				changedThere[ch.Path] = plumbing.ZeroHash
			}
			continue
		}
		newTip, snap = next, nextSnap
	}
	return newTip, skipped, nil
}
