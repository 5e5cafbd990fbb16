package served

import (
	"crypto/sha256"
	"sync"
)

// ResultCache keeps, for one environment of one state, the outcomes of
// recent identity evaluations: for each flag, the index of its answer in
// the encoded answers of its IdentityFlag (see IdentityFlag.Outcome). An
// evaluation depends only on the revision, the identifier and the traits,
// so the same identity with the same traits gets the same answer without
// being evaluated again; a new state starts with an empty cache. Its
// methods are safe for concurrent use.
//
// It is bounded: two generations of at most half the entries each; when the
// current one is full it becomes the old one and the oldest is dropped, and
// an entry found in the old generation moves to the current one.
type ResultCache struct {
	mu       sync.Mutex
	cur, old map[[sha256.Size]byte][]uint8
	half     int // entries per generation
}

// resultCacheBytes bounds the outcome vectors kept per environment.
const (
	resultCacheBytes   = 4 << 20
	resultCacheEntries = 32 << 10
)

func newResultCache(features int) *ResultCache {
	n := min(resultCacheEntries, resultCacheBytes/max(features, 1))
	return &ResultCache{half: max(n/2, 1)}
}

// Get returns the outcomes kept for key k (a hash of the identifier and
// the traits).
func (c *ResultCache) Get(k [sha256.Size]byte) ([]uint8, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.old[k]
	if ok {
		c.add(k, v)
	}
	return v, ok
}

// Put keeps the outcomes v for key k; v must not be modified afterwards.
func (c *ResultCache) Put(k [sha256.Size]byte, v []uint8) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(k, v)
}

// Len returns the number of entries kept.
func (c *ResultCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}

func (c *ResultCache) add(k [sha256.Size]byte, v []uint8) {
	if len(c.cur) >= c.half {
		c.old, c.cur = c.cur, nil
	}
	if c.cur == nil {
		c.cur = make(map[[sha256.Size]byte][]uint8, c.half)
	}
	c.cur[k] = v
}
