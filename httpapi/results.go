package httpapi

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/gitflags/gitflags/identities"
)

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
