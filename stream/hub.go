// Package stream is gitflags' realtime layer: it tells connected clients
// that what they were served has changed.
//
// Hub is the notification part: subscribers wait on an environment, and
// NotifyChanged notifies an environment for each served revision (a
// served.State) that changed its answers. Notify never blocks and never writes to a connection: it records
// the newest Event in each subscription and wakes it. A subscription holds
// at most one pending wake-up and the newest event, so a subscriber that is
// slow to act skips intermediate revisions (a notification means "refetch":
// only the newest matters) and costs the same memory however many revisions
// it missed. Each connection's own goroutine writes to its client, with its
// own write deadline (see httpapi's SSE handlers).
package stream

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitflags/gitflags/served"
)

// ErrClosed is returned by Subscribe once the hub is closed.
var ErrClosed = errors.New("stream: the hub is closed")

// Event is what changed in an environment: a served revision whose answers
// differ from the previous one's there.
type Event struct {
	Revision string    // the commit served ("" for a working tree)
	Updated  time.Time // the environment document's updated_at of that revision
	Digest   [32]byte  // the environment's answers' digest (its ETags derive from it)
	Removed  bool      // the environment no longer exists
}

// Hub fans notifications out to subscribers by environment. Its methods are
// safe for concurrent use.
type Hub struct {
	mu     sync.RWMutex
	envs   map[string]map[*Subscription]struct{}
	n      int
	closed bool
	done   chan struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{envs: map[string]map[*Subscription]struct{}{}, done: make(chan struct{})}
}

// Subscription is one subscriber's view of an environment. Its owner waits
// on Notified and then reads Latest; Close ends it.
type Subscription struct {
	hub    *Hub
	env    string
	wake   chan struct{} // capacity 1: a pending notification
	latest atomic.Pointer[Event]
	once   sync.Once
}

// Subscribe adds a subscriber to environment env (an environment key). It
// fails with ErrClosed once the hub is closed.
func (h *Hub) Subscribe(env string) (*Subscription, error) {
	s := &Subscription{hub: h, env: env, wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	subs := h.envs[env]
	if subs == nil {
		subs = map[*Subscription]struct{}{}
		h.envs[env] = subs
	}
	subs[s] = struct{}{}
	h.n++
	return s, nil
}

// Notify records ev as the newest event of environment env and wakes its
// subscribers. It does not block: a subscriber already woken and not yet
// done stays woken once, and will read ev.
func (h *Hub) Notify(env string, ev Event) {
	e := &ev
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return
	}
	for s := range h.envs[env] {
		s.latest.Store(e)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// NotifyChanged notifies the environments whose answers differ between
// prev and next, the served states of two successive revisions: those
// whose digest changed, and those added or removed. The others hear
// nothing. Without prev (the first revision) nobody can be subscribed yet,
// and nothing is notified.
func (h *Hub) NotifyChanged(prev, next *served.State) {
	if prev == nil {
		return
	}
	rev, updated := next.Revision().SHA, next.Updated()
	for key, e := range next.Envs() {
		if pe := prev.Env(key); pe == nil || pe.Digest() != e.Digest() {
			h.Notify(key, Event{Revision: rev, Updated: updated, Digest: e.Digest()})
		}
	}
	for key := range prev.Envs() {
		if next.Env(key) == nil {
			h.Notify(key, Event{Revision: rev, Updated: updated, Removed: true})
		}
	}
}

// Subscribers returns the number of subscribers of env, or of every
// environment when env is "".
func (h *Hub) Subscribers(env string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if env == "" {
		return h.n
	}
	return len(h.envs[env])
}

// Close ends every subscription: Done is closed, Subscribe fails from now
// on, and Notify does nothing. Subscribers are expected to watch Done and
// close their connections. Close is idempotent.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
}

// Done is closed when the hub is closed.
func (h *Hub) Done() <-chan struct{} { return h.done }

// Notified receives a value when an event arrived since the last receive.
func (s *Subscription) Notified() <-chan struct{} { return s.wake }

// Latest returns the newest event notified to the subscription, or nil
// before the first.
func (s *Subscription) Latest() *Event { return s.latest.Load() }

// Env returns the environment subscribed to.
func (s *Subscription) Env() string { return s.env }

// Close removes the subscription from its hub. It is idempotent.
func (s *Subscription) Close() {
	s.once.Do(func() {
		h := s.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		if subs := h.envs[s.env]; subs != nil {
			delete(subs, s)
			h.n--
			if len(subs) == 0 {
				delete(h.envs, s.env)
			}
		}
	})
}
