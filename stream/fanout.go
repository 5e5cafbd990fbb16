package stream

// The value-carrying part of the realtime layer: a Fanout keeps, for each
// distinct subscriber context (environment, key kind, identifier, sent
// traits), the evaluated flags, and hands each subscriber only the flags
// whose evaluated result changed for it.
//
// Cost model. Subscribers with the same context share one evaluation (an
// evalCtx, refcounted by its subscribers). A new revision (a served.State)
// re-evaluates, in each environment it changed (its Changes say which),
// only the features it changed there (every feature when the environment's
// settings, name or key changed), once per distinct context; an
// environment the revision did not change costs its subscribers nothing. The result is diffed against
// the context's previous result and the diff merged into each subscriber's
// outbox. The fan-out never writes to a connection: each connection's own
// goroutine takes its outbox (Sub.Take) and writes it with its own deadline.
//
// Outboxes coalesce: a pending change of a flag is replaced by a newer one,
// so an outbox holds at most one entry per flag, whatever the number of
// revisions a slow reader missed.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gitflags/gitflags/changes"
	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/served"
)

// ErrUnknownEnvironment is returned by Subscribe for an environment the
// current revision does not have.
var ErrUnknownEnvironment = errors.New("stream: no such environment in the served revision")

// Flag is a flag's evaluated result.
type Flag struct {
	Enabled bool
	Value   any
	Variant string // "" when no split applied
}

func sameFlag(a, b Flag) bool {
	return a.Enabled == b.Enabled && a.Variant == b.Variant && reflect.DeepEqual(a.Value, b.Value)
}

// Context is what a subscriber is evaluated for.
type Context struct {
	Env        string         // environment key
	Server     bool           // authenticated with a server key (sees server-key-only features)
	Identifier string         // "" for the environment's flags
	Traits     map[string]any // sent traits (normalised values), merged over stored ones
}

// FanoutOptions configure a Fanout.
type FanoutOptions struct {
	// Traits reads an identity's stored traits (nil: none are stored).
	Traits func(ctx context.Context, storeEnv, identifier string) (map[string]any, error)
	// History is the number of revisions remembered for resuming (64).
	History int
}

// Fanout evaluates flags for subscribers and fans changes out. Its methods
// are safe for concurrent use.
type Fanout struct {
	hub  *Hub
	opts FanoutOptions

	mu         sync.Mutex
	rev        *served.State // the current revision
	seq        uint64
	contexts   map[[32]byte]*evalCtx
	byEnv      map[string]map[*evalCtx]struct{}
	byIdentity map[identityKey]map[*evalCtx]struct{}
	history    []histEntry // oldest first, at most opts.History
	traitSeq   map[identityKey]uint64
	traitFloor uint64 // trait changes at or before it were forgotten

	traitGen    atomic.Uint64 // bumped by every TraitsChanged
	evaluations atomic.Int64
}

type identityKey struct{ env, identifier string }

// maxTraitSeq bounds the identities whose last trait change is remembered.
const maxTraitSeq = 10000

type histEntry struct {
	id   string
	seq  uint64
	all  bool                  // everything may have changed everywhere
	envs map[string]*envChange // environments changed by the revision
}

type envChange struct {
	all      bool
	features []string
}

// evalCtx is one distinct context and its evaluated flags. Guarded by
// Fanout.mu.
type evalCtx struct {
	key    [32]byte
	spec   Context
	stored map[string]any  // stored traits
	traits map[string]any  // stored merged with sent
	result map[string]Flag // visible flags; replaced, never modified
	subs   map[*Sub]struct{}
}

// NewFanout returns a fan-out that ends with hub (Subscribe fails once hub
// is closed).
func NewFanout(hub *Hub, opts FanoutOptions) *Fanout {
	if opts.History <= 0 {
		opts.History = 64
	}
	return &Fanout{
		hub: hub, opts: opts,
		contexts:   map[[32]byte]*evalCtx{},
		byEnv:      map[string]map[*evalCtx]struct{}{},
		byIdentity: map[identityKey]map[*evalCtx]struct{}{},
		traitSeq:   map[identityKey]uint64{},
	}
}

// Evaluations returns the number of context evaluations made so far (a
// full evaluation or a re-evaluation of changed features each count one).
func (f *Fanout) Evaluations() int64 { return f.evaluations.Load() }

// Contexts returns the number of distinct contexts subscribed.
func (f *Fanout) Contexts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.contexts)
}

// Revision returns the current revision's id.
func (f *Fanout) Revision() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.revID()
}

// revID is the current revision's id: its commit ("" for a working tree,
// which cannot be resumed from, or before the first). Called with f.mu held.
func (f *Fanout) revID() string {
	if f.rev == nil {
		return ""
	}
	return f.rev.Revision().SHA
}

func contextKey(c *Context) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%q\x00%t\x00%q\x00", c.Env, c.Server, c.Identifier)
	for _, k := range slices.Sorted(mapsKeys(c.Traits)) {
		fmt.Fprintf(h, "%q=%T:%#v\x00", k, c.Traits[k], c.Traits[k])
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func mergeTraits(stored, sent map[string]any) map[string]any {
	m := make(map[string]any, len(stored)+len(sent))
	for k, v := range stored {
		m[k] = v
	}
	for k, v := range sent {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// identity is the evaluator's identity of c (nil for environment flags).
func (c *evalCtx) identity() *evaluator.Identity {
	if c.spec.Identifier == "" {
		return nil
	}
	return &evaluator.Identity{Identifier: c.spec.Identifier, Traits: c.traits}
}

// visible reports whether a flag with result fl exists for c in e: disabled
// flags may be hidden, server-key-only features are for server keys.
func (c *evalCtx) visible(e *served.Env, name string, fl *evaluator.Flag) bool {
	return !(e.HidesDisabledFlags() && !fl.Enabled) && !(!c.spec.Server && e.ServerKeyOnly(name))
}

// evaluateAll evaluates every flag of c in e.
func (f *Fanout) evaluateAll(c *evalCtx, e *served.Env) map[string]Flag {
	f.evaluations.Add(1)
	m := e.Model()
	var flags []evaluator.Flag
	if id := c.identity(); id == nil {
		flags = m.EnvironmentFlags()
	} else {
		flags = m.AppendFlags(make([]evaluator.Flag, 0, m.Len()), id)
	}
	out := make(map[string]Flag, len(flags))
	for i := range flags {
		fl := &flags[i]
		if c.visible(e, fl.Name, fl) {
			out[fl.Name] = Flag{Enabled: fl.Enabled, Value: fl.Value, Variant: fl.Variant}
		}
	}
	return out
}

// diff returns what changed from old to new.
func diff(old, new map[string]Flag) (changed map[string]Flag, removed []string) {
	for k, v := range new {
		if o, ok := old[k]; !ok || !sameFlag(o, v) {
			if changed == nil {
				changed = map[string]Flag{}
			}
			changed[k] = v
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			removed = append(removed, k)
		}
	}
	return changed, removed
}

// reevaluate re-evaluates c in e: every feature when names is nil, else
// only names. It updates c.result and returns the difference.
func (f *Fanout) reevaluate(c *evalCtx, e *served.Env, names []string) (changed map[string]Flag, removed []string) {
	if names == nil {
		next := f.evaluateAll(c, e)
		changed, removed = diff(c.result, next)
		if changed != nil || removed != nil {
			c.result = next
		}
		return changed, removed
	}
	f.evaluations.Add(1)
	id := c.identity()
	for _, name := range names {
		fl, ok := e.Model().Flag(name, id)
		old, had := c.result[name]
		if ok && c.visible(e, name, &fl) {
			v := Flag{Enabled: fl.Enabled, Value: fl.Value, Variant: fl.Variant}
			if !had || !sameFlag(old, v) {
				if changed == nil {
					changed = map[string]Flag{}
				}
				changed[name] = v
			}
		} else if had {
			removed = append(removed, name)
		}
	}
	if changed != nil || removed != nil {
		next := make(map[string]Flag, len(c.result)+len(changed))
		for k, v := range c.result {
			next[k] = v
		}
		for k, v := range changed {
			next[k] = v
		}
		for _, k := range removed {
			delete(next, k)
		}
		c.result = next
	}
	return changed, removed
}

// Publish makes st the current revision and hands every subscriber whose
// flags it changed the difference. st.Changes() must say what changed since
// the state published before (served.Build's prev; nil: everything may
// have). Calls must be serialised (the server's publishing lock does).
func (f *Fanout) Publish(st *served.State) {
	set := st.Changes() // computed before taking the lock
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev = st
	f.seq++
	rev := st.Revision().SHA
	ent := histEntry{id: rev, seq: f.seq, all: set == nil}
	if set != nil {
		ent.envs = envChanges(st, set)
	}
	if len(f.history) >= f.opts.History {
		f.history = slices.Delete(f.history, 0, len(f.history)-f.opts.History+1)
	}
	f.history = append(f.history, ent)

	for envKey, ctxs := range f.byEnv {
		e := st.Env(envKey)
		if e == nil {
			for c := range ctxs {
				for s := range c.subs {
					s.end("environment removed")
				}
			}
			continue
		}
		var names []string // nil: all
		if !ent.all {
			ch := ent.envs[envKey]
			if ch == nil {
				continue // nothing changed here: nothing to do
			}
			if !ch.all {
				names = ch.features
			}
		}
		for c := range ctxs {
			changed, removed := f.reevaluate(c, e, names)
			if changed == nil && removed == nil {
				continue
			}
			for s := range c.subs {
				s.push(rev, changed, removed, c.result)
			}
		}
	}
}

// envChanges says, per environment, what st changed (set, its Changes):
// the features whose state changed there (or that use a segment whose
// rules changed), the feature documents changed anywhere (their
// server_key_only may change who sees them), or everything when the
// environment's settings, the project's settings, name or key changed.
func envChanges(st *served.State, set *changes.Set) map[string]*envChange {
	out := map[string]*envChange{}
	for key, ce := range set.Environments {
		ch := &envChange{all: ce.ReevaluateAll() || len(ce.Settings) > 0 || len(set.Settings) > 0}
		if !ch.all {
			for name := range ce.Features {
				ch.features = append(ch.features, name)
			}
		}
		out[key] = ch
	}
	if len(set.Features) == 0 && len(set.Settings) == 0 {
		return out
	}
	for key := range st.Envs() {
		ch := out[key]
		if ch == nil {
			ch = &envChange{}
			out[key] = ch
		}
		if len(set.Settings) > 0 {
			ch.all, ch.features = true, nil
		}
		if ch.all {
			continue
		}
		for name := range set.Features {
			if !slices.Contains(ch.features, name) {
				ch.features = append(ch.features, name)
			}
		}
	}
	return out
}

// Subscribe adds a subscriber for spec. Its outbox starts with the full
// state, or, when resume names a revision still remembered, the changes
// since (possibly none: an empty changes message). It fails with ErrClosed
// once the hub is closed and ErrUnknownEnvironment when the current
// revision has no such environment.
func (f *Fanout) Subscribe(ctx context.Context, spec Context, resume string) (*Sub, error) {
	key := contextKey(&spec)
	var stored map[string]any
	read := false
	var gen uint64 // traitGen when the stored traits were read
	for attempt := 0; ; attempt++ {
		select {
		case <-f.hub.Done():
			return nil, ErrClosed
		default:
		}
		f.mu.Lock()
		if f.rev == nil || f.rev.Env(spec.Env) == nil {
			f.mu.Unlock()
			return nil, ErrUnknownEnvironment
		}
		c := f.contexts[key]
		// Compared under f.mu: a trait change (TraitsChanged counts traitGen
		// before taking f.mu) that raced the read is read again; one that
		// comes later finds this subscriber attached and updates it.
		if c == nil && spec.Identifier != "" && f.opts.Traits != nil && (!read || (gen != f.traitGen.Load() && attempt < 4)) {
			storeEnv := f.rev.Env(spec.Env).StoreEnv()
			gen = f.traitGen.Load()
			f.mu.Unlock()
			var err error
			if stored, err = f.opts.Traits(ctx, storeEnv, spec.Identifier); err != nil {
				return nil, err
			}
			read = true
			continue
		}
		s := f.attach(key, &spec, stored, c)
		s.resume(f, resume)
		f.mu.Unlock()
		return s, nil
	}
}

// attach adds a new subscriber to context key (c, nil when new, created
// from spec and stored). Called with f.mu held.
func (f *Fanout) attach(key [32]byte, spec *Context, stored map[string]any, c *evalCtx) *Sub {
	if c == nil {
		c = f.newContext(key, spec, stored)
	}
	s := &Sub{f: f, wake: make(chan struct{}, 1), ctx: c, identifier: spec.Identifier}
	c.subs[s] = struct{}{}
	return s
}

func (f *Fanout) newContext(key [32]byte, spec *Context, stored map[string]any) *evalCtx {
	c := &evalCtx{key: key, spec: *spec, stored: stored, subs: map[*Sub]struct{}{}}
	c.traits = mergeTraits(stored, spec.Traits)
	c.result = f.evaluateAll(c, f.rev.Env(spec.Env))
	f.contexts[key] = c
	add(f.byEnv, spec.Env, c)
	if spec.Identifier != "" {
		add(f.byIdentity, identityKey{spec.Env, spec.Identifier}, c)
	}
	return c
}

func add[K comparable](m map[K]map[*evalCtx]struct{}, k K, c *evalCtx) {
	set := m[k]
	if set == nil {
		set = map[*evalCtx]struct{}{}
		m[k] = set
	}
	set[c] = struct{}{}
}

func remove[K comparable](m map[K]map[*evalCtx]struct{}, k K, c *evalCtx) {
	if set := m[k]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

// detach removes s from its context, dropping the context with its last
// subscriber. Called with f.mu held.
func (f *Fanout) detach(s *Sub) {
	c := s.ctx
	delete(c.subs, s)
	if len(c.subs) == 0 {
		delete(f.contexts, c.key)
		remove(f.byEnv, c.spec.Env, c)
		if c.spec.Identifier != "" {
			remove(f.byIdentity, identityKey{c.spec.Env, c.spec.Identifier}, c)
		}
	}
}

// resume fills s's outbox on subscribing. Called with f.mu held.
func (s *Sub) resume(f *Fanout, from string) {
	c := s.ctx
	rev := f.revID()
	if from == "" {
		s.pushFull(rev, c.result)
		return
	}
	i := len(f.history) - 1
	for ; i >= 0 && f.history[i].id != from; i-- {
	}
	if i < 0 {
		s.pushFull(rev, c.result)
		return
	}
	since := f.history[i].seq
	if c.spec.Identifier != "" && (f.traitFloor > since || f.traitSeq[identityKey{c.spec.Env, c.spec.Identifier}] > since) {
		s.pushFull(rev, c.result) // its stored traits changed since
		return
	}
	names := map[string]bool{}
	for _, h := range f.history[i+1:] {
		if h.all {
			s.pushFull(rev, c.result)
			return
		}
		if ch := h.envs[c.spec.Env]; ch != nil {
			if ch.all {
				s.pushFull(rev, c.result)
				return
			}
			for _, n := range ch.features {
				names[n] = true
			}
		}
	}
	changed := map[string]Flag{}
	var removed []string
	for n := range names {
		if v, ok := c.result[n]; ok {
			changed[n] = v
		} else {
			removed = append(removed, n)
		}
	}
	s.push(rev, changed, removed, c.result) // always due, if only as an empty changes message
}

// UpdateTraits replaces s's sent traits: s moves to the context of its new
// traits and its outbox gets the flags that differ between the two.
func (s *Sub) UpdateTraits(traits map[string]any) {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	old := s.ctx
	if old == nil || f.rev == nil || f.rev.Env(old.spec.Env) == nil {
		return // closed, or its environment is gone
	}
	spec := old.spec
	spec.Traits = traits
	key := contextKey(&spec)
	if key == old.key {
		return
	}
	c := f.contexts[key]
	if c == nil {
		c = f.newContext(key, &spec, old.stored)
	}
	f.detach(s)
	s.ctx = c
	c.subs[s] = struct{}{}
	changed, removed := diff(old.result, c.result)
	s.push(f.revID(), changed, removed, c.result)
}

// TraitsChanged tells the fan-out that the stored traits of identifier in
// environment env changed (through the REST API): its subscribers'
// contexts read them again and get the flags that changed.
func (f *Fanout) TraitsChanged(ctx context.Context, env, identifier string) {
	f.traitGen.Add(1)
	ik := identityKey{env, identifier}
	f.mu.Lock()
	f.seq++
	if len(f.traitSeq) >= maxTraitSeq {
		clear(f.traitSeq)
		f.traitFloor = f.seq
	}
	f.traitSeq[ik] = f.seq
	mine := f.seq
	subscribed := len(f.byIdentity[ik]) > 0 && f.rev != nil && f.rev.Env(env) != nil && f.opts.Traits != nil
	var storeEnv string
	if subscribed {
		storeEnv = f.rev.Env(env).StoreEnv()
	}
	f.mu.Unlock()
	if !subscribed {
		return
	}
	stored, err := f.opts.Traits(ctx, storeEnv, identifier)
	if err != nil {
		return // the subscribers keep their traits; the next change reads again
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq, ok := f.traitSeq[ik]; ok && seq > mine {
		return // a later change of the same identity read the store after this one: it applies
	}
	e := f.rev.Env(env)
	if e == nil {
		return
	}
	for c := range f.byIdentity[ik] {
		c.stored = stored
		c.traits = mergeTraits(stored, c.spec.Traits)
		changed, removed := f.reevaluate(c, e, nil)
		if changed == nil && removed == nil {
			continue
		}
		for s := range c.subs {
			s.push(f.revID(), changed, removed, c.result)
		}
	}
}

// Sub is a subscriber's outbox. Its owner waits on Notified, then Takes.
type Sub struct {
	f          *Fanout
	ctx        *evalCtx // guarded by f.mu
	wake       chan struct{}
	identifier string

	mu      sync.Mutex
	pending bool            // a message is due
	full    map[string]Flag // the full state is due (replaces changes)
	changed map[string]Flag
	removed map[string]struct{}
	rev     string
	ended   string // the reason the subscription ended
}

// Message is what a subscriber is due: the full state (Full) or the
// changes since the last message (Changed, Removed), at revision Revision;
// or the end of the subscription (End, a reason).
type Message struct {
	Revision string
	Full     map[string]Flag // read-only
	Changed  map[string]Flag
	Removed  []string
	End      string
}

func (s *Sub) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pushFull sets the full state as due.
func (s *Sub) pushFull(rev string, full map[string]Flag) {
	s.mu.Lock()
	s.pending, s.rev, s.full, s.changed, s.removed = true, rev, full, nil, nil
	s.mu.Unlock()
	s.signal()
}

// push merges a change into the outbox; result is the context's state
// after it (a due full state is replaced by it).
func (s *Sub) push(rev string, changed map[string]Flag, removed []string, result map[string]Flag) {
	s.mu.Lock()
	s.pending, s.rev = true, rev
	if s.full != nil {
		s.full = result
	} else {
		if s.changed == nil {
			s.changed = map[string]Flag{}
		}
		if s.removed == nil {
			s.removed = map[string]struct{}{}
		}
		for k, v := range changed {
			s.changed[k] = v
			delete(s.removed, k)
		}
		for _, k := range removed {
			delete(s.changed, k)
			s.removed[k] = struct{}{}
		}
	}
	s.mu.Unlock()
	s.signal()
}

func (s *Sub) end(reason string) {
	s.mu.Lock()
	if s.ended == "" {
		s.ended = reason
	}
	s.mu.Unlock()
	s.signal()
}

// Identifier returns the identifier subscribed for ("" for environment flags).
func (s *Sub) Identifier() string { return s.identifier }

// Notified receives a value when a message may be due.
func (s *Sub) Notified() <-chan struct{} { return s.wake }

// Take returns the due message and empties the outbox; ok is false when
// nothing is due.
func (s *Sub) Take() (m Message, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended != "" {
		return Message{End: s.ended}, true
	}
	if !s.pending {
		return Message{}, false
	}
	m = Message{Revision: s.rev, Full: s.full, Changed: s.changed}
	for k := range s.removed {
		m.Removed = append(m.Removed, k)
	}
	slices.Sort(m.Removed)
	if m.Full == nil && m.Changed == nil {
		m.Changed = map[string]Flag{}
	}
	s.pending, s.full, s.changed, s.removed = false, nil, nil, nil
	return m, true
}

// Close removes the subscriber. It is idempotent.
func (s *Sub) Close() {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.ctx == nil {
		return
	}
	f.detach(s)
	s.ctx = nil
}
