// Package previews serves the flags of branches that are not served: a
// proposal or any branch matching the server's --preview-branches patterns
// can be evaluated before it is merged.
//
// A branch's served state is built when it is first asked for, from the
// branch head's snapshot loaded against the served one (unchanged files
// share their documents, and served.Build reuses the compiled pieces of
// everything the branch did not change, as a reload does), and kept for the
// next requests while the branch stays at that commit. At most
// Options.MaxBranches states are kept (least recently used first out), so
// memory stays bounded however many branches there are.
package previews

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/flagdiff"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/served"
)

// ProposalPrefix begins the proposal branches of the admin API
// (commits.ProposalPrefix), which are previewable whenever Options.Proposals
// is set.
const ProposalPrefix = "gitflags/"

// DefaultMaxBranches is the number of branch states kept by default.
const DefaultMaxBranches = 8

// Errors of Set.State, for errors.Is.
var (
	// ErrNotPreviewable: the branch matches no preview pattern.
	ErrNotPreviewable = errors.New("not a preview branch")
	// ErrUnknownBranch: no such branch in the repository.
	ErrUnknownBranch = errors.New("no such branch")
	// ErrNotReady: nothing is served yet to preview against.
	ErrNotReady = errors.New("no revision is served yet")
)

// Options configure a Set.
type Options struct {
	// Repo is the served repository. Branches are its local branches
	// (refs/heads/), then, for a clone, the remote's branches fetched with
	// the served one (refs/remotes/origin/, see gitsync.Options).
	Repo *gitstore.Repo
	// Patterns are the branches that may be previewed: a name with at most
	// one *, which matches any text, slashes included.
	Patterns []string
	// Proposals makes the admin API's proposal branches (gitflags/...)
	// previewable too.
	Proposals bool
	// Served returns the snapshot served now (nil before the first).
	Served func() *flagrepo.Snapshot
	// Build builds a branch's served state from its snapshot against prev,
	// or against the state served now when prev is nil, serialised with the
	// server's own publishes (see served.Build).
	Build func(snap *flagrepo.Snapshot, prev *served.State) (*served.State, error)
	// MaxBranches bounds the states kept (DefaultMaxBranches when 0).
	MaxBranches int
}

// Set keeps the served states of previewed branches.
type Set struct {
	opts Options

	build sync.Mutex // one build at a time: they share pieces with the served state

	mu     sync.Mutex
	lru    *list.List               // of *entry, most recently used first
	byName map[string]*list.Element // branch -> element of lru
	builds int                      // states built, for tests and metrics
}

type entry struct {
	branch string
	commit plumbing.Hash
	state  *served.State
}

// New returns a Set; it checks the patterns.
func New(opts Options) (*Set, error) {
	for _, p := range opts.Patterns {
		if err := CheckPattern(p); err != nil {
			return nil, err
		}
	}
	if opts.MaxBranches <= 0 {
		opts.MaxBranches = DefaultMaxBranches
	}
	return &Set{opts: opts, lru: list.New(), byName: map[string]*list.Element{}}, nil
}

// CheckPattern says what is wrong with a --preview-branches pattern.
func CheckPattern(p string) error {
	switch {
	case p == "":
		return errors.New("an empty branch pattern")
	case strings.Count(p, "*") > 1:
		return fmt.Errorf("branch pattern %q has more than one *", p)
	case strings.ContainsAny(p, " ~^:?[\\") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, ".."):
		return fmt.Errorf("branch pattern %q is not a branch name (with at most one *)", p)
	}
	return nil
}

// Match reports whether branch matches pattern (see Options.Patterns).
func Match(pattern, branch string) bool {
	before, after, star := strings.Cut(pattern, "*")
	if !star {
		return pattern == branch
	}
	return len(branch) >= len(before)+len(after) && strings.HasPrefix(branch, before) && strings.HasSuffix(branch, after)
}

// Previewable reports whether branch may be previewed.
func (p *Set) Previewable(branch string) bool {
	if p.opts.Proposals && strings.HasPrefix(branch, ProposalPrefix) {
		return true
	}
	for _, pat := range p.opts.Patterns {
		if Match(pat, branch) {
			return true
		}
	}
	return false
}

// Head returns the commit branch is at.
func (p *Set) Head(branch string) (plumbing.Hash, error) {
	if !p.Previewable(branch) {
		return plumbing.ZeroHash, fmt.Errorf("%w: %q (previewable: %s)", ErrNotPreviewable, branch, p.describe())
	}
	if err := plumbing.NewBranchReferenceName(branch).Validate(); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("%w: %q is not a branch name", ErrUnknownBranch, branch)
	}
	for _, ref := range []string{"refs/heads/" + branch, gitstore.RemoteRef(branch)} {
		if h, err := p.opts.Repo.Resolve(ref); err == nil {
			return h, nil
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("%w: %q", ErrUnknownBranch, branch)
}

// describe names what may be previewed, for errors.
func (p *Set) describe() string {
	parts := append([]string(nil), p.opts.Patterns...)
	if p.opts.Proposals {
		parts = append(parts, ProposalPrefix+"* (proposals)")
	}
	if len(parts) == 0 {
		return "none: start the server with --preview-branches"
	}
	return strings.Join(parts, ", ")
}

// State returns the served state of branch at its head. A head that does
// not validate is an error wrapping a *flagrepo.ValidationError.
func (p *Set) State(ctx context.Context, branch string) (*served.State, error) {
	head, err := p.Head(branch)
	if err != nil {
		return nil, err
	}
	if st := p.cached(branch, head); st != nil {
		return st, nil
	}
	p.build.Lock()
	defer p.build.Unlock()
	if st := p.cached(branch, head); st != nil { // built while this waited
		return st, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	base := p.opts.Served()
	if base == nil {
		return nil, ErrNotReady
	}
	snap, err := p.opts.Repo.Snapshot(head.String(), base)
	if err != nil {
		return nil, fmt.Errorf("branch %s at %s: %w", branch, short(head), err)
	}
	st, err := p.opts.Build(snap, nil)
	if err != nil {
		return nil, fmt.Errorf("branch %s at %s: %w", branch, short(head), err)
	}
	p.keep(branch, head, st)
	return st, nil
}

// Follow returns the served state of branch at its head built against
// prev, a state of the same branch (or of the served branch), so that the
// state's Changes say what changed since prev: what a stream of the branch
// sends. It returns prev itself while the branch has not moved.
func (p *Set) Follow(ctx context.Context, branch string, prev *served.State) (*served.State, error) {
	head, err := p.Head(branch)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.Revision().SHA == head.String() {
		return prev, nil
	}
	p.build.Lock()
	defer p.build.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var base *flagrepo.Snapshot
	if prev != nil {
		base = prev.Snapshot()
	}
	snap, err := p.opts.Repo.Snapshot(head.String(), base)
	if err != nil {
		return nil, fmt.Errorf("branch %s at %s: %w", branch, short(head), err)
	}
	st, err := p.opts.Build(snap, prev)
	if err != nil {
		return nil, fmt.Errorf("branch %s at %s: %w", branch, short(head), err)
	}
	return st, nil
}

// cached returns the kept state of branch at commit, or nil.
func (p *Set) cached(branch string, commit plumbing.Hash) *served.State {
	p.mu.Lock()
	defer p.mu.Unlock()
	el := p.byName[branch]
	if el == nil {
		return nil
	}
	e := el.Value.(*entry)
	if e.commit != commit {
		p.lru.Remove(el)
		delete(p.byName, branch)
		return nil
	}
	p.lru.MoveToFront(el)
	return e.state
}

// keep records st as branch's state at commit, dropping the least recently
// used beyond MaxBranches.
func (p *Set) keep(branch string, commit plumbing.Hash, st *served.State) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.builds++
	if el := p.byName[branch]; el != nil {
		p.lru.Remove(el)
	}
	p.byName[branch] = p.lru.PushFront(&entry{branch: branch, commit: commit, state: st})
	for p.lru.Len() > p.opts.MaxBranches {
		last := p.lru.Back()
		p.lru.Remove(last)
		delete(p.byName, last.Value.(*entry).branch)
	}
}

// Kept returns the number of branch states kept and built so far.
func (p *Set) Kept() (kept, built int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lru.Len(), p.builds
}

// Diff compares branch's head with the served revision: what it changes,
// per environment, and whether each side validates (flagdiff.Compare).
func (p *Set) Diff(branch string) (*flagdiff.Report, plumbing.Hash, error) {
	head, err := p.Head(branch)
	if err != nil {
		return nil, head, err
	}
	base := p.opts.Served()
	if base == nil || base.Revision.SHA == "" {
		return nil, head, ErrNotReady
	}
	r, err := flagdiff.Compare(
		flagdiff.Source{Name: "served", Repo: p.opts.Repo, Commit: plumbing.NewHash(base.Revision.SHA)},
		flagdiff.Source{Name: branch, Repo: p.opts.Repo, Commit: head},
		flagdiff.Options{})
	return r, head, err
}

func short(h plumbing.Hash) string { return h.String()[:12] }
