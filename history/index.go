package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/gitstore"
)

// publishEvery is the number of commits indexed between two publications of
// the index's progress, so that an interrupted build keeps what it did.
const publishEvery = 1024

// ownCacheAbove is the number of new commits above which an update walks
// with a gitstore.TreeDiffer.
const ownCacheAbove = 64

// Index is the history of one branch of a repository: for each commit of its
// first-parent chain, the feature, segment and environment documents it
// changed. It is built and extended on demand (Query, Update) and kept in
// memory, and, made with Open, saved to a file. Use one Index per branch: heads of branches that diverge make it
// re-index from their common commit each time the head alternates.
//
// An Index is safe for concurrent use.
type Index struct {
	repo *gitstore.Repo

	update sync.Mutex // held by the one update under way
	store  *store     // the file the index is saved to, or nil; under update
	diffed int        // commits diffed, for the tests; under update

	// The fields below change only with both update and mu held; readers
	// hold mu (or update) and never modify them.
	mu           sync.RWMutex
	chain        []plumbing.Hash // the first-parent chain, oldest first
	trees        []plumbing.Hash // the tree of each commit of chain
	changes      [][]*change     // what each commit of chain changed; never modified once set
	pos          map[plumbing.Hash]int
	any          []int            // positions of the commits with changes, ascending
	features     map[string][]int // positions by feature key, ascending
	segments     map[string][]int
	environments map[string][]int
}

// change is a document a commit changed.
type change struct {
	path          string
	before, after plumbing.Hash // zero where absent
	feature       string        // the feature the document belongs to, or ""
	environment   string        // the environment the document belongs to, or ""
	segments      []string      // the segment it defines, or whose overrides changed in it
}

// New returns an empty index of a branch of repo.
func New(repo *gitstore.Repo) *Index {
	return &Index{
		repo:         repo,
		pos:          map[plumbing.Hash]int{},
		features:     map[string][]int{},
		segments:     map[string][]int{},
		environments: map[string][]int{},
	}
}

// Len returns the number of commits indexed: the length of the first-parent
// chain of the newest head indexed.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return len(ix.chain)
}

// Update indexes the branch up to head: the commits since the newest
// indexed commit that is a first-parent ancestor of head. When head does not
// descend from the indexed head (the branch was rewritten), the commits after
// their last common one are dropped first; when they share none, the index
// is rebuilt. A head already indexed (including an older commit of the
// chain) costs nothing. Update returns when ctx is done, keeping the commits
// indexed so far (the next Update continues).
func (ix *Index) Update(ctx context.Context, head plumbing.Hash) error {
	ix.update.Lock()
	defer ix.update.Unlock()
	// Only this goroutine modifies the index while it holds update, so it
	// reads without mu.
	ix.load()
	if _, ok := ix.pos[head]; ok {
		return nil
	}
	// Walk back from head to the first commit the index knows.
	var todo []gitstore.Commit // newest first
	fork := -1
	for h := head; ; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("history: index %s: %w", head, err)
		}
		if p, ok := ix.pos[h]; ok {
			fork = p
			break
		}
		c, err := ix.repo.ReadCommit(h)
		if err != nil {
			return fmt.Errorf("history: index %s: %w", head, err)
		}
		todo = append(todo, c)
		if len(c.Parents) == 0 {
			break
		}
		h = c.Parents[0]
	}
	ix.truncate(fork + 1)
	ix.saveTruncate(fork + 1)

	var parent plumbing.Hash // tree of the parent of the next commit
	if fork >= 0 {
		parent = ix.trees[fork]
	}
	// A long walk gets an object cache of its own; a few new commits find
	// the previous versions of their trees in the repository's.
	diffTrees := ix.repo.DiffTrees
	if len(todo) > ownCacheAbove {
		differ := ix.repo.NewTreeDiffer()
		defer differ.Close()
		diffTrees = differ.DiffTrees
	}
	var done []indexed
	for i := len(todo) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			ix.add(done)
			return fmt.Errorf("history: index %s: %w", head, err)
		}
		c := todo[i]
		cs, err := ix.diff(diffTrees, parent, c.Tree)
		if err != nil {
			ix.add(done)
			return fmt.Errorf("history: index commit %s: %w", c.SHA, err)
		}
		ix.diffed++
		var first plumbing.Hash
		if len(c.Parents) > 0 {
			first = c.Parents[0]
		}
		done = append(done, indexed{plumbing.NewHash(c.SHA), first, c.Tree, cs})
		if len(done) == publishEvery {
			ix.add(done)
			done = done[:0]
		}
		parent = c.Tree
	}
	ix.add(done)
	return nil
}

// indexed is a commit ready to join the index.
type indexed struct {
	commit, parent, tree plumbing.Hash // parent: the first, zero for a root
	changes              []*change
}

// add saves commits and appends them to the chain.
func (ix *Index) add(commits []indexed) {
	ix.save(commits)
	ix.publish(commits)
}

// publish appends commits to the chain.
func (ix *Index) publish(commits []indexed) {
	if len(commits) == 0 {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, c := range commits {
		p := len(ix.chain)
		ix.chain = append(ix.chain, c.commit)
		ix.trees = append(ix.trees, c.tree)
		ix.changes = append(ix.changes, c.changes)
		ix.pos[c.commit] = p
		if len(c.changes) > 0 {
			ix.any = append(ix.any, p)
		}
		for _, ch := range c.changes {
			post(ix.features, ch.feature, p)
			post(ix.environments, ch.environment, p)
			for _, s := range ch.segments {
				post(ix.segments, s, p)
			}
		}
	}
}

// post adds position p to key's list, once.
func post(m map[string][]int, key string, p int) {
	if key == "" {
		return
	}
	if l := m[key]; len(l) == 0 || l[len(l)-1] != p {
		m[key] = append(l, p)
	}
}

// truncate drops the commits from position n on.
func (ix *Index) truncate(n int) {
	if n >= len(ix.chain) {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, h := range ix.chain[n:] {
		delete(ix.pos, h)
	}
	// Readers copy what they use under mu, so the arrays can be reused.
	ix.chain, ix.trees = ix.chain[:n], ix.trees[:n]
	clear(ix.changes[n:])
	ix.changes = ix.changes[:n]
	ix.any = cut(ix.any, n)
	for _, m := range []map[string][]int{ix.features, ix.segments, ix.environments} {
		for k, l := range m {
			if l = cut(l, n); len(l) == 0 {
				delete(m, k)
			} else {
				m[k] = l
			}
		}
	}
}

// cut drops the positions from n on of an ascending list.
func cut(l []int, n int) []int {
	i, _ := slices.BinarySearch(l, n)
	return l[:i]
}

// diff lists the documents that differ between two trees.
func (ix *Index) diff(diffTrees func(from, to plumbing.Hash) ([]gitstore.TreeChange, error), from, to plumbing.Hash) ([]*change, error) {
	tcs, err := diffTrees(from, to)
	if err != nil {
		return nil, err
	}
	var out []*change
	for _, tc := range tcs {
		c := classify(tc.Path)
		if c == nil {
			continue
		}
		c.before, c.after = tc.From, tc.To
		if c.feature != "" && c.environment != "" {
			if c.segments, err = ix.overridesChanged(c); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// classify says which feature, segment and environment the file at path p
// belongs to; nil when none (gitflags.json, schemas/, READMEs, ...).
func classify(p string) *change {
	parts := strings.Split(p, "/")
	key := func(name string) string {
		k, ok := strings.CutSuffix(name, ".json")
		if !ok {
			return ""
		}
		return k
	}
	c := &change{path: p}
	switch {
	case len(parts) == 2 && parts[0] == "features":
		c.feature = key(parts[1])
	case len(parts) == 2 && parts[0] == "segments":
		if s := key(parts[1]); s != "" {
			c.segments = []string{s}
		}
	case len(parts) >= 3 && parts[0] == "environments":
		c.environment = parts[1]
		if len(parts) == 4 && parts[2] == "features" {
			c.feature = key(parts[3])
		}
	}
	if c.feature == "" && c.environment == "" && c.segments == nil {
		return nil
	}
	return c
}

// overridesChanged returns the segments whose overrides differ between the
// two versions of an environment feature file, sorted. A version that is
// not a JSON document with a list of segment overrides has none.
func (ix *Index) overridesChanged(c *change) ([]string, error) {
	before, err := ix.overrides(c.before)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.path, err)
	}
	after, err := ix.overrides(c.after)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.path, err)
	}
	var out []string
	for s, o := range before {
		if !reflect.DeepEqual(o, after[s]) {
			out = append(out, s)
		}
	}
	for s := range after {
		if _, ok := before[s]; !ok {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out, nil
}

// overrides reads the segment overrides of an environment feature file, by
// segment; nil for the zero hash.
func (ix *Index) overrides(h plumbing.Hash) (map[string][]any, error) {
	if h.IsZero() {
		return nil, nil
	}
	data, err := ix.repo.ReadBlob(h)
	var tl *gitstore.TooLargeError
	if errors.As(err, &tl) {
		return nil, nil // not a valid document either
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		SegmentOverrides []json.RawMessage `json:"segment_overrides"`
	}
	if json.Unmarshal(data, &doc) != nil {
		return nil, nil
	}
	m := map[string][]any{}
	for _, raw := range doc.SegmentOverrides {
		var o struct {
			Segment string `json:"segment"`
		}
		var v any
		if json.Unmarshal(raw, &o) != nil || o.Segment == "" || json.Unmarshal(raw, &v) != nil {
			continue
		}
		m[o.Segment] = append(m[o.Segment], v)
	}
	return m, nil
}
