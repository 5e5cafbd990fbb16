// Package identities stores identities and their traits: what the Flagsmith
// SDK API persists between requests. Identity overrides come from the flag
// repository; traits live here.
package identities

import (
	"context"
	"errors"
)

// Trait is one trait of an identity. Value is a string, bool, int64,
// float64, or nil (nil in an update deletes the trait).
type Trait struct {
	Key   string `json:"trait_key"`
	Value any    `json:"trait_value"`
}

// Store persists identities' traits per environment. Implementations are safe
// for concurrent use; a networked store can replace the embedded one.
type Store interface {
	// Traits returns the stored traits of an identity, sorted by key; none
	// (and no error) for an unknown identity.
	Traits(ctx context.Context, env, identifier string) ([]Trait, error)
	// Update applies changes to an identity atomically, creating it when
	// needed: a trait with a nil Value is deleted, any other is set. It
	// returns the identity's traits after the update, sorted by key. Either
	// every change is stored or none is.
	Update(ctx context.Context, env, identifier string, changes []Trait) ([]Trait, error)
	// Close releases the store.
	Close() error
}

// ErrClosed is returned by a closed store.
var ErrClosed = errors.New("identity store is closed")
