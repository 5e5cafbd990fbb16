package httpapi

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/gitflags/gitflags/identities"
)

// resultCache keeps, for one environment of one revision, the outcomes of
// recent identity evaluations: for each flag, the index of its answer in
// flagBase.outcomes. An evaluation depends only on the revision, the
// identifier and the traits, so the same identity with the same traits gets
// the same answer without being evaluated again; a new revision starts with
// an empty cache.
//
// It is bounded: two generations of at most half the entries each; when the
// current one is full it becomes the old one and the oldest is dropped, and
// an entry found in the old generation moves to the current one.
type resultCache struct {
	mu       sync.Mutex
	cur, old map[[sha256.Size]byte][]uint8
	half     int // entries per generation
}

// resultCacheBytes bounds the outcome vectors kept per environment.
const (
	resultCacheBytes   = 4 << 20
	resultCacheEntries = 32 << 10
)

func newResultCache(features int) *resultCache {
	n := min(resultCacheEntries, resultCacheBytes/max(features, 1))
	return &resultCache{half: max(n/2, 1)}
}

func (c *resultCache) get(k [sha256.Size]byte) ([]uint8, bool) {
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

func (c *resultCache) put(k [sha256.Size]byte, v []uint8) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.add(k, v)
}

func (c *resultCache) add(k [sha256.Size]byte, v []uint8) {
	if len(c.cur) >= c.half {
		c.old, c.cur = c.cur, nil
	}
	if c.cur == nil {
		c.cur = make(map[[sha256.Size]byte][]uint8, c.half)
	}
	c.cur[k] = v
}

// resultKey hashes what an evaluation depends on besides the revision: the
// identifier and the traits (keys sorted), each string prefixed with its
// length so that no two different inputs hash the same text (identifiers
// and keys may hold any character). ok is false when a trait value cannot
// be encoded.
func resultKey(scratch *identifyBuffers, identifier string, keys []string, traits map[string]any) (k [sha256.Size]byte, ok bool) {
	b := binary.AppendUvarint(scratch.key[:0], uint64(len(identifier)))
	b = append(b, identifier...)
	for _, key := range keys {
		b = binary.AppendUvarint(b, uint64(len(key)))
		b = append(b, key...)
		var err error
		if b, err = identities.AppendValue(b, traits[key]); err != nil { // JSON: self-delimiting
			return k, false
		}
	}
	scratch.key = b
	return sha256.Sum256(b), true
}
