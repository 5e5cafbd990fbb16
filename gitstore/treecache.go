package gitstore

import (
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// treeCache keeps the decoded entries of the trees read or written last, so
// that a write does not decode the same large directory again and again:
// Commit reads the directory it changes and writes its new version, then
// Snapshot lists the new tree and UpdateRef compares the old tree with the
// new one. Without it, each write to one file among 10,000 decompresses and
// parses the same half-megabyte tree three to four times.
//
// Cached entries are shared: whoever changes entries must copy them first
// (buildTree does). It is guarded by Repo.mu.
type treeCache struct {
	byHash  map[plumbing.Hash]*cachedTree
	order   []plumbing.Hash // least recently used first
	entries int             // entries held, over all trees
}

type cachedTree struct {
	entries []object.TreeEntry
}

const (
	treeCacheTrees   = 32      // most trees kept
	treeCacheEntries = 120_000 // most entries kept, over all trees (about 10 MB)
)

// get returns the entries of tree h, or nil.
func (c *treeCache) get(h plumbing.Hash) []object.TreeEntry {
	t := c.byHash[h]
	if t == nil {
		return nil
	}
	c.touch(h)
	return t.entries
}

// touch moves h to the most recently used end.
func (c *treeCache) touch(h plumbing.Hash) {
	for i, o := range c.order {
		if o == h {
			copy(c.order[i:], c.order[i+1:])
			c.order[len(c.order)-1] = h
			return
		}
	}
}

// add keeps entries as tree h's; a tree with no entries or more than the
// cache's whole size is not kept.
func (c *treeCache) add(h plumbing.Hash, entries []object.TreeEntry) {
	if len(entries) == 0 || len(entries) > treeCacheEntries {
		return
	}
	if c.byHash == nil {
		c.byHash = map[plumbing.Hash]*cachedTree{}
	}
	if c.byHash[h] != nil {
		c.touch(h)
		return
	}
	for len(c.order) > 0 && (len(c.order) >= treeCacheTrees || c.entries+len(entries) > treeCacheEntries) {
		old := c.order[0]
		c.order = c.order[1:]
		c.entries -= len(c.byHash[old].entries)
		delete(c.byHash, old)
	}
	c.byHash[h] = &cachedTree{entries: entries}
	c.order = append(c.order, h)
	c.entries += len(entries)
}
