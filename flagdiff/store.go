package flagdiff

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/gitflags/gitflags/flagrepo"
)

// StoreTimeout is how long SampleStore waits for the identity store's lock.
const StoreTimeout = 2 * time.Second

// ErrStoreLocked means another process (a running `gitflags serve`) holds
// the identity store.
var ErrStoreLocked = errors.New("identity store is locked")

// SampleStore opens the server's identity store (DATA/identities.db, the
// bbolt file of package identities: a bucket per environment id mapping an
// identifier to the JSON object of its traits) read-only, and returns an
// IdentitySet that takes up to n identities of each environment, spread
// evenly over its identifiers in key order. A running server holds the
// store's lock: SampleStore then fails with ErrStoreLocked after waiting
// StoreTimeout. close releases the store.
func SampleStore(path string, n int) (set *IdentitySet, close func() error, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("identity store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: StoreTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, nil, fmt.Errorf("%w: %s is held by another process (a running 'gitflags serve' keeps it open); waited %s. Stop the server, or pass identities in a file with --identities", ErrStoreLocked, path, StoreTimeout)
		}
		return nil, nil, fmt.Errorf("open identity store %s read-only: %w", path, err)
	}
	set = &IdentitySet{
		Source: fmt.Sprintf("identity store %s, up to %d identities per environment", path, n),
		ByEnvironment: func(env *flagrepo.Environment) ([]Identity, error) {
			return sampleBucket(db, strconv.FormatInt(env.ID, 10), n)
		},
	}
	return set, db.Close, nil
}

// sampleBucket reads up to n identities of a bucket, every k-th one.
func sampleBucket(db *bolt.DB, bucket string, n int) ([]Identity, error) {
	var out []Identity
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil || n <= 0 {
			return nil
		}
		total := b.Stats().KeyN
		step := max(1, total/n)
		c := b.Cursor()
		i := 0
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			if i%step == 0 {
				traits := map[string]any{}
				dec := json.NewDecoder(bytes.NewReader(v))
				dec.UseNumber()
				if err := dec.Decode(&traits); err != nil {
					return fmt.Errorf("identity store: environment %s, identity %q: %w", bucket, k, err)
				}
				out = append(out, Identity{Identifier: string(k), Traits: traits})
			}
			i++
		}
		return nil
	})
	return out, err
}
