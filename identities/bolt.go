package identities

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// BoltStore is the embedded Store: one bbolt file, a bucket per environment
// mapping identifier to the JSON object of the identity's traits. Writes are
// single bbolt transactions (atomic and durable when they return).
type BoltStore struct {
	db *bolt.DB
}

var _ Store = (*BoltStore)(nil)

// openTimeout bounds the wait for the file lock another process may hold.
const openTimeout = 5 * time.Second

// Open opens (creating when needed) the identity store at path.
func Open(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: openTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open identity store %s: locked by another process (waited %s)", path, openTimeout)
		}
		return nil, fmt.Errorf("open identity store %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// Close closes the file; later calls fail with ErrClosed.
func (s *BoltStore) Close() error { return s.db.Close() }

func mapErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func checkEnv(env string) error {
	if env == "" {
		return errors.New("identity store: empty environment name")
	}
	return nil
}

// Traits implements Store.
func (s *BoltStore) Traits(ctx context.Context, env, identifier string) ([]Trait, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkEnv(env); err != nil {
		return nil, err
	}
	if err := CheckIdentifier(identifier); err != nil {
		return nil, err
	}
	var out []Trait
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(env))
		if b == nil {
			return nil
		}
		data := b.Get([]byte(identifier))
		if data == nil {
			return nil
		}
		m, err := decodeTraits(data)
		if err != nil {
			return fmt.Errorf("identity %q: %w", identifier, err)
		}
		out = sortedTraits(m)
		return nil
	})
	return out, mapErr(err)
}

// Update implements Store.
func (s *BoltStore) Update(ctx context.Context, env, identifier string, changes []Trait) ([]Trait, error) {
	if len(changes) == 0 {
		return s.Traits(ctx, env, identifier)
	}
	var out []Trait
	err := s.write(ctx, env, []Change{{Identifier: identifier, Traits: changes}}, func(_ string, m map[string]any) {
		out = sortedTraits(m)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateMany implements Store.
func (s *BoltStore) UpdateMany(ctx context.Context, env string, changes []Change) error {
	if len(changes) == 0 {
		return ctx.Err()
	}
	return s.write(ctx, env, changes, nil)
}

// write validates every change, then applies them all in one transaction.
// done sees each identity's traits after its change.
func (s *BoltStore) write(ctx context.Context, env string, changes []Change, done func(string, map[string]any)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkEnv(env); err != nil {
		return err
	}
	checked := make([]Change, len(changes))
	for i, c := range changes {
		if err := CheckIdentifier(c.Identifier); err != nil {
			return err
		}
		ts, err := checkTraits(c.Traits)
		if err != nil {
			return invalidf("identity %q: %v", c.Identifier, err)
		}
		checked[i] = Change{Identifier: c.Identifier, Traits: ts}
	}
	// SDKs send the same traits on every call: when nothing would change, a
	// read-only transaction answers without a write (and its fsync).
	unchanged := true
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(env))
		results := make([]map[string]any, len(checked))
		for i, c := range checked {
			m := map[string]any{}
			if b != nil {
				var err error
				if m, err = load(b, c.Identifier); err != nil {
					return err
				}
			}
			if wouldChange(m, c.Traits) {
				unchanged = false
				return nil
			}
			results[i] = m
		}
		if done != nil {
			for i, c := range checked {
				done(c.Identifier, results[i])
			}
		}
		return nil
	})
	if err != nil || unchanged {
		return mapErr(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(env))
		if err != nil {
			return err
		}
		for _, c := range checked {
			if err := ctx.Err(); err != nil {
				return err
			}
			m, err := load(b, c.Identifier)
			if err != nil {
				return err
			}
			for _, t := range c.Traits {
				if t.Value == nil {
					delete(m, t.Key)
				} else {
					m[t.Key] = t.Value
				}
			}
			if err := store(b, c.Identifier, m); err != nil {
				return err
			}
			if done != nil {
				done(c.Identifier, m)
			}
		}
		return ctx.Err() // a request cancelled meanwhile stores nothing
	})
	return mapErr(err)
}

// Increment implements Store.
func (s *BoltStore) Increment(ctx context.Context, env, identifier, key string, by int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := checkEnv(env); err != nil {
		return 0, err
	}
	if err := CheckIdentifier(identifier); err != nil {
		return 0, err
	}
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	var result int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(env))
		if err != nil {
			return err
		}
		m, err := load(b, identifier)
		if err != nil {
			return err
		}
		var cur int64
		switch v := m[key].(type) {
		case nil:
		case int64:
			cur = v
		default:
			return invalidf("trait %q holds %s, not an integer: only integer traits can be incremented", key, typeName(v))
		}
		if (by > 0 && cur > math.MaxInt64-by) || (by < 0 && cur < math.MinInt64-by) {
			return invalidf("incrementing trait %q (%d) by %d overflows a 64-bit integer", key, cur, by)
		}
		result = cur + by
		m[key] = result
		if err := store(b, identifier, m); err != nil {
			return err
		}
		return ctx.Err()
	})
	return result, mapErr(err)
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64:
		return "a float"
	}
	return fmt.Sprintf("a %T", v)
}

// wouldChange reports whether applying traits to m would change it.
func wouldChange(m map[string]any, traits []Trait) bool {
	for _, t := range traits {
		old, ok := m[t.Key]
		if t.Value == nil {
			if ok {
				return true
			}
			continue
		}
		if !ok || old != t.Value {
			return true
		}
	}
	return false
}

func load(b *bolt.Bucket, identifier string) (map[string]any, error) {
	data := b.Get([]byte(identifier))
	if data == nil {
		return map[string]any{}, nil
	}
	m, err := decodeTraits(data)
	if err != nil {
		return nil, fmt.Errorf("identity %q: %w", identifier, err)
	}
	return m, nil
}

// store writes an identity's traits, removing an identity left without any.
func store(b *bolt.Bucket, identifier string, m map[string]any) error {
	if len(m) > MaxTraits {
		return invalidf("identity %q would have %d traits; at most %d are allowed", identifier, len(m), MaxTraits)
	}
	if len(m) == 0 {
		return b.Delete([]byte(identifier))
	}
	data, err := encodeTraits(m)
	if err != nil {
		return err
	}
	return b.Put([]byte(identifier), data)
}
