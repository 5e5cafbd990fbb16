package commits

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/flagrepo"
)

// ProposalPrefix begins the name of every proposal branch.
const ProposalPrefix = "gitflags/"

// Proposal is an open proposal branch: one whose head is not in the served
// branch yet.
type Proposal struct {
	Branch   string `json:"branch"`
	Revision string `json:"revision"` // the branch head
	Base     string `json:"base"`     // where it left the served branch
	// Commits are the branch's own commits, newest first.
	Commits []flagrepo.Revision `json:"commits"`
	// Files are the files it changes against Base.
	Files []string `json:"files"`
	// Valid says whether its head validates; Problems says why not.
	Valid    bool               `json:"valid"`
	Problems []flagrepo.Problem `json:"problems,omitempty"`
	URL      string             `json:"url,omitempty"`
}

// maxProposalCommits bounds the commits listed per proposal.
const maxProposalCommits = 50

// Proposals lists the open proposal branches of the repository (gitflags/*
// branches this server made, or that are in its repository), by name,
// against served, the snapshot served.
func (w *Writer) Proposals(ctx context.Context, served *flagrepo.Snapshot) ([]Proposal, error) {
	if served == nil || served.Revision.SHA == "" {
		return nil, errors.New("no revision of the branch is served")
	}
	branches, err := w.opts.Repo.Branches(ProposalPrefix)
	if err != nil {
		return nil, err
	}
	head := plumbing.NewHash(served.Revision.SHA)
	out := []Proposal{}
	for name, tip := range branches {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if strings.HasPrefix(name, keptPrefix) { // break-glass commits kept aside: in status, not proposals
			continue
		}
		base, err := w.opts.Repo.MergeBase(head, tip)
		if err != nil {
			return nil, err
		}
		if base == tip { // merged (or not ahead): not open
			continue
		}
		p := Proposal{Branch: name, Revision: tip.String(), Base: base.String(), Files: []string{}, Valid: true,
			URL: pullRequestURL(w.opts.Repo.RemoteURL(), w.branch, name)}
		if err := w.describe(&p, base, tip); err != nil {
			return nil, fmt.Errorf("proposal %s: %w", name, err)
		}
		applied, err := w.applied(&p, head, tip)
		if err != nil {
			return nil, fmt.Errorf("proposal %s: %w", name, err)
		}
		if applied { // squash-merged or rebased: its files are as the served branch has them
			continue
		}
		if p.Problems, err = w.validate(tip, served); err != nil {
			return nil, fmt.Errorf("proposal %s: %w", name, err)
		}
		p.Valid = len(p.Problems) == 0
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Branch < out[j].Branch })
	return out, nil
}

// applied reports whether every file proposal p changes is, in the served
// head, as in the proposal's tip: the change was merged in another way
// (squash, rebase, or made again), so the proposal is no longer open.
func (w *Writer) applied(p *Proposal, head, tip plumbing.Hash) (bool, error) {
	if len(p.Files) == 0 {
		return false, nil
	}
	hc, err := w.opts.Repo.ReadCommit(head)
	if err != nil {
		return false, err
	}
	tc, err := w.opts.Repo.ReadCommit(tip)
	if err != nil {
		return false, err
	}
	differ, err := w.opts.Repo.DiffTrees(hc.Tree, tc.Tree)
	if err != nil {
		return false, err
	}
	mine := make(map[string]bool, len(p.Files))
	for _, f := range p.Files {
		mine[f] = true
	}
	for _, c := range differ {
		if mine[c.Path] {
			return false, nil
		}
	}
	return true, nil
}

// validate returns the problems of commit tip's tree (none when it
// validates), loading it once per commit.
func (w *Writer) validate(tip plumbing.Hash, served *flagrepo.Snapshot) ([]flagrepo.Problem, error) {
	w.mu.Lock()
	problems, ok := w.checked[tip]
	w.mu.Unlock()
	if ok {
		return problems, nil
	}
	if _, err := w.opts.Repo.Snapshot(tip.String(), served); err != nil {
		var ve *flagrepo.ValidationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		problems = ve.Problems
	}
	w.mu.Lock()
	if w.checked == nil || len(w.checked) >= maxChecked {
		w.checked = map[plumbing.Hash][]flagrepo.Problem{} // start afresh: a bound, not an LRU
	}
	w.checked[tip] = problems
	w.mu.Unlock()
	return problems, nil
}

// maxChecked bounds the proposal heads whose validation is remembered.
const maxChecked = 512

// describe fills in the commits of a proposal from tip back to base and the
// files it changes.
func (w *Writer) describe(p *Proposal, base, tip plumbing.Hash) error {
	repo := w.opts.Repo
	tipCommit, err := repo.ReadCommit(tip)
	if err != nil {
		return err
	}
	for c := tipCommit; len(p.Commits) < maxProposalCommits; {
		p.Commits = append(p.Commits, c.Revision)
		if len(c.Parents) == 0 || c.Parents[0] == base {
			break
		}
		if c, err = repo.ReadCommit(c.Parents[0]); err != nil {
			return err
		}
	}
	var baseTree plumbing.Hash
	if !base.IsZero() {
		bc, err := repo.ReadCommit(base)
		if err != nil {
			return err
		}
		baseTree = bc.Tree
	}
	changes, err := repo.DiffTrees(baseTree, tipCommit.Tree)
	if err != nil {
		return err
	}
	for _, c := range changes {
		p.Files = append(p.Files, c.Path)
	}
	return nil
}
