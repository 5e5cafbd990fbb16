package stream

// The value-carrying part of the realtime layer: a Fanout keeps, for each
// distinct subscriber context (environment, key kind, identifier, the sent
// traits the environment lets it use), the evaluated flags, and hands each
// subscriber only the flags whose evaluated result changed for it.
//
// Cost model. Subscribers with the same context share one evaluation (an
// evalCtx, refcounted by its subscribers). A new context is evaluated
// outside the fan-out's lock. A new revision (a served.State)
// re-evaluates, in each environment it changed (its Changes say which),
// only the features it changed there (every feature when the environment's
// settings, name or key changed), once per distinct context; an
// environment the revision did not change costs its subscribers nothing.
// The result is diffed against the context's previous result (updated in
// place unless a subscriber still holds it). Each distinct difference of
// a revision is encoded once (FanoutOptions.Frame wraps it) and the same
// bytes go to every subscriber due it, whatever its context: subscribers
// with distinct contexts but the same change share one message. Publish
// allocates nothing per subscriber: an outbox holding one pending change
// holds a pointer to the shared one. The fan-out never writes to a
// connection: each connection's owner takes its outbox (Sub.Take) when
// notified and writes it with its own deadline.
//
// Outboxes coalesce: a pending change of a flag is replaced by a newer one,
// so an outbox holds at most one entry per flag, whatever the number of
// revisions a slow reader missed.
//
// A Fanout follows one sequence of revisions (one branch); a server that
// serves several makes one Fanout each, on the same Hub or not.

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

// ErrClientTraits is returned by UpdateTraits for a subscriber with a
// client key in an environment that does not allow client traits.
var ErrClientTraits = errors.New("stream: this environment does not allow client-side traits")

// Flag is a flag's evaluated result.
type Flag struct {
	Enabled bool
	Value   any
	Variant string // "" when no split applied
}

func sameFlag(a, b Flag) bool {
	if a.Enabled != b.Enabled || a.Variant != b.Variant {
		return false
	}
	switch x := a.Value.(type) { // flag values: nil, string, bool, int64
	case nil:
		return b.Value == nil
	case string:
		y, ok := b.Value.(string)
		return ok && x == y
	case int64:
		y, ok := b.Value.(int64)
		return ok && x == y
	case bool:
		y, ok := b.Value.(bool)
		return ok && x == y
	}
	return reflect.DeepEqual(a.Value, b.Value)
}

// Context is what a subscriber is evaluated for.
type Context struct {
	Env        string // environment key
	Server     bool   // authenticated with a server key (sees server-key-only features)
	Identifier string // "" for the environment's flags
	// Traits are the sent traits (normalised values), merged over stored
	// ones. With a client key (Server false) they are used only while the
	// environment allows client traits: a subscriber is evaluated as a new
	// subscriber sending the same would be, in each revision.
	Traits map[string]any
}

// FanoutOptions configure a Fanout.
type FanoutOptions struct {
	// Traits reads an identity's stored traits (nil: none are stored).
	Traits func(ctx context.Context, storeEnv, identifier string) (map[string]any, error)
	// History is the number of revisions remembered for resuming (64).
	History int
	// Frame turns an encoded message (AppendMessage) into the bytes a
	// connection writes, e.g. a websocket frame; nil: the message itself.
	// It is called once per distinct message of a revision, under the
	// fan-out's lock, and must not keep payload.
	Frame func(payload []byte) []byte
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
	byIdentity map[identityKey][]*evalCtx // usually one
	history    []histEntry                // oldest first, at most opts.History
	traitSeq   map[identityKey]uint64
	traitFloor uint64 // trait changes at or before it were forgotten
	enc        encoder

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
	spec   Context             // Traits: the sent traits in use
	stored map[string]any      // stored traits
	traits map[string]any      // stored merged with sent
	id     *evaluator.Identity // of traits, made once (nil when traits change)
	result map[string]Flag     // visible flags
	// loans counts the subscribers that hold result outside the lock (a
	// full state due or taken and not released); while there are any, a
	// change copies result instead of updating it in place. gen counts the
	// copies: a loan of an older result is not counted.
	loans int
	gen   uint64
	seq   uint64 // the fan-out's seq when result was last evaluated
	subs  []*Sub // Sub.idx is its place
}

// NewFanout returns a fan-out that ends with hub (Subscribe fails once hub
// is closed).
func NewFanout(hub *Hub, opts FanoutOptions) *Fanout {
	if opts.History <= 0 {
		opts.History = 64
	}
	f := &Fanout{
		hub: hub, opts: opts,
		contexts:   map[[32]byte]*evalCtx{},
		byEnv:      map[string]map[*evalCtx]struct{}{},
		byIdentity: map[identityKey][]*evalCtx{},
		traitSeq:   map[identityKey]uint64{},
	}
	f.enc.frame = opts.Frame
	return f
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
	if len(sent) == 0 {
		return stored // read-only: replaced, never modified
	}
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

// clientTraits reports whether e lets client keys send traits.
func clientTraits(e *served.Env) bool { return e.Environment().ClientTraitsAllowed() }

// inUse is spec with the sent traits e lets it use.
func inUse(spec Context, e *served.Env) Context {
	if !spec.Server && !clientTraits(e) {
		spec.Traits = nil
	}
	if len(spec.Traits) == 0 {
		spec.Traits = nil
	}
	return spec
}

// identity is the evaluator's identity of c (nil for environment flags).
func (c *evalCtx) identity() *evaluator.Identity {
	if c.spec.Identifier == "" {
		return nil
	}
	if c.id == nil {
		c.id = &evaluator.Identity{Identifier: c.spec.Identifier, Traits: evaluator.FloatTraits(c.traits)}
	}
	return c.id
}

// visible reports whether a flag with result fl exists for c in e: disabled
// flags may be hidden, server-key-only features are for server keys.
func (c *evalCtx) visible(e *served.Env, name string, fl *evaluator.Flag) bool {
	return !(e.HidesDisabledFlags() && !fl.Enabled) && !(!c.spec.Server && e.ServerKeyOnly(name))
}

// evaluateAll evaluates every flag of c in e. It touches nothing shared:
// it may run outside the lock for a context not yet added.
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
	slices.Sort(removed)
	return changed, removed
}

// reevaluate re-evaluates c in e: every feature when names is nil, else
// only names. It updates c.result and returns the difference: changed and
// removed are the encoder's scratch space (valid until its next use;
// removed sorted), empty when nothing changed.
func (f *Fanout) reevaluate(c *evalCtx, e *served.Env, names []string) (changed map[string]Flag, removed []string) {
	c.seq = f.seq
	changed, removed = f.enc.scratch()
	if names == nil {
		next := f.evaluateAll(c, e)
		ch, rm := diff(c.result, next)
		if ch != nil || rm != nil {
			c.result, c.loans = next, 0
			c.gen++
		}
		for k, v := range ch {
			changed[k] = v
		}
		removed = append(removed, rm...)
		f.enc.removed = removed
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
				changed[name] = v
			}
		} else if had {
			removed = append(removed, name)
		}
	}
	if len(changed) == 0 && len(removed) == 0 {
		return changed, removed
	}
	slices.Sort(removed)
	f.enc.removed = removed
	next := c.result
	if c.loans > 0 {
		next = make(map[string]Flag, len(c.result)+len(changed))
		for k, v := range c.result {
			next[k] = v
		}
		c.loans = 0
		c.gen++
	}
	for k, v := range changed {
		next[k] = v
	}
	for _, k := range removed {
		delete(next, k)
	}
	c.result = next
	return changed, removed
}

// loan is a subscriber's hold on a context's result.
type loan struct {
	c   *evalCtx
	gen uint64
}

// lend returns c.result for use outside the lock, counted until the loan
// is given back. Called with f.mu held.
func (c *evalCtx) lend() (map[string]Flag, loan) {
	c.loans++
	return c.result, loan{c, c.gen}
}

// giveBack ends the loan. Called with f.mu held.
func (l *loan) giveBack() {
	if l.c != nil && l.c.gen == l.gen && l.c.loans > 0 {
		l.c.loans--
	}
	*l = loan{}
}

// encoder encodes the changes of one revision, once per distinct
// message. Guarded by Fanout.mu.
type encoder struct {
	frame   func([]byte) []byte
	rev     string
	shared  map[string]*change // by the encoded changed and removed parts
	buf     []byte
	changed map[string]Flag
	removed []string
}

// change is a changes message due, shared by every subscriber due it.
// Read-only.
type change struct {
	rev     string
	changed map[string]Flag
	removed []string // sorted
	data    []byte   // the encoded message, framed
}

// start begins the messages of revision rev.
func (enc *encoder) start(rev string) {
	enc.rev = rev
	clear(enc.shared)
	if enc.shared == nil {
		enc.shared = map[string]*change{}
	}
}

// scratch returns the empty scratch map and slice reevaluate fills.
func (enc *encoder) scratch() (map[string]Flag, []string) {
	if enc.changed == nil {
		enc.changed = map[string]Flag{}
	}
	clear(enc.changed)
	return enc.changed, enc.removed[:0]
}

// shared returns the change message of (changed, removed) at the
// current revision: the same one for every equal difference.
func (enc *encoder) sharedChange(changed map[string]Flag, removed []string) *change {
	enc.buf = appendChangesBody(enc.buf[:0], changed, removed)
	if ch := enc.shared[string(enc.buf)]; ch != nil {
		return ch
	}
	ch := enc.newChange(enc.rev, cloneFlags(changed), slices.Clone(removed))
	enc.shared[string(enc.buf)] = ch
	return ch
}

// newChange encodes a change message (changed and removed are kept).
func (enc *encoder) newChange(rev string, changed map[string]Flag, removed []string) *change {
	if changed == nil {
		changed = map[string]Flag{}
	}
	ch := &change{rev: rev, changed: changed, removed: removed}
	payload := AppendChangesMessage(make([]byte, 0, 64+len(enc.buf)), rev, changed, removed)
	ch.data = payload
	if enc.frame != nil {
		ch.data = enc.frame(payload)
	}
	return ch
}

func cloneFlags(m map[string]Flag) map[string]Flag {
	out := make(map[string]Flag, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Publish makes st the current revision and hands every subscriber whose
// flags it changed the difference. st.Changes() must say what changed since
// the state published before (served.Build's prev; nil: everything may
// have). Calls must be serialised (the server's publishing lock does).
func (f *Fanout) Publish(st *served.State) {
	set := st.Changes() // computed before taking the lock
	f.mu.Lock()
	defer f.mu.Unlock()
	prev := f.rev
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
	f.enc.start(rev)

	for envKey, ctxs := range f.byEnv {
		e := st.Env(envKey)
		if e == nil {
			for c := range ctxs {
				for _, s := range c.subs {
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
		if pe := prevEnv(prev, envKey); pe != nil && clientTraits(pe) != clientTraits(e) {
			f.retrait(envKey, e)
		}
		for c := range ctxs {
			if c.seq == f.seq {
				continue // made for this revision (retrait)
			}
			changed, removed := f.reevaluate(c, e, names)
			if len(changed) == 0 && len(removed) == 0 {
				continue
			}
			ch := f.enc.sharedChange(changed, removed)
			for _, s := range c.subs {
				s.push(ch, c)
			}
		}
	}
}

func prevEnv(st *served.State, key string) *served.Env {
	if st == nil {
		return nil
	}
	return st.Env(key)
}

// retrait moves the client-key subscribers of envKey that sent traits to
// the context of the traits e lets them use (its allow_client_traits
// changed): each gets what differs, as a new subscriber would be
// evaluated. Called with f.mu held, during Publish.
func (f *Fanout) retrait(envKey string, e *served.Env) {
	var moving []*Sub
	for c := range f.byEnv[envKey] {
		if c.spec.Server {
			continue
		}
		for _, s := range c.subs {
			if len(s.sent) > 0 {
				moving = append(moving, s)
			}
		}
	}
	for _, s := range moving {
		old := s.ctx
		spec := inUse(Context{Env: envKey, Identifier: s.identifier, Traits: s.sent}, e)
		key := contextKey(&spec)
		if key == old.key {
			continue
		}
		c := f.contexts[key]
		if c == nil {
			c = f.newContext(key, &spec, old.stored, e)
		}
		f.detach(s)
		c.join(s)
		changed, removed := diff(old.result, c.result)
		s.push(f.enc.newChange(f.revID(), changed, removed), c)
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

// maxUnlockedAttempts bounds the times Subscribe and UpdateTraits evaluate
// a new context outside the lock and find the revision moved on; then they
// evaluate under the lock.
const maxUnlockedAttempts = 4

// Subscribe adds a subscriber for spec. Its outbox starts with the full
// state, or, when resume names a revision still remembered, the changes
// since (possibly none: an empty changes message). notify is called
// (never blocking, possibly under the fan-out's lock: it must not call the
// Fanout or the Sub) each time a message may be due; with notify nil, the
// Sub's Notified channel receives instead. Subscribe fails with ErrClosed
// once the hub is closed and ErrUnknownEnvironment when the current
// revision has no such environment.
func (f *Fanout) Subscribe(ctx context.Context, spec Context, resume string, notify func()) (*Sub, error) {
	var (
		stored   map[string]any
		read     bool
		gen      uint64 // traitGen when the stored traits were read
		prepared *evalCtx
		prepRev  *served.State
	)
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
		e := f.rev.Env(spec.Env)
		use := inUse(spec, e)
		key := contextKey(&use)
		c := f.contexts[key]
		// Compared under f.mu: a trait change (TraitsChanged counts traitGen
		// before taking f.mu) that raced the read is read again; one that
		// comes later finds this subscriber attached and updates it.
		if c == nil && spec.Identifier != "" && f.opts.Traits != nil && (!read || (gen != f.traitGen.Load() && attempt < maxUnlockedAttempts)) {
			storeEnv := e.StoreEnv()
			gen = f.traitGen.Load()
			f.mu.Unlock()
			var err error
			if stored, err = f.opts.Traits(ctx, storeEnv, spec.Identifier); err != nil {
				return nil, err
			}
			read, prepared = true, nil
			continue
		}
		if c == nil {
			switch {
			case prepared != nil && prepared.key == key && prepRev == f.rev:
				c = prepared
				f.add(c)
			case attempt < maxUnlockedAttempts:
				// Evaluated outside the lock, then added if the revision
				// is still the same.
				rev := f.rev
				f.mu.Unlock()
				prepared, prepRev = f.prepare(key, &use, stored, e), rev
				continue
			default:
				c = f.newContext(key, &use, stored, e)
			}
		}
		s := f.attach(c, &spec, notify)
		s.resume(f, resume)
		f.mu.Unlock()
		return s, nil
	}
}

// prepare makes and evaluates a context for spec in e, not yet added.
func (f *Fanout) prepare(key [32]byte, spec *Context, stored map[string]any, e *served.Env) *evalCtx {
	c := &evalCtx{key: key, spec: *spec, stored: stored, subs: make([]*Sub, 0, 1)}
	c.traits = mergeTraits(stored, spec.Traits)
	c.result = f.evaluateAll(c, e)
	return c
}

// add adds a prepared context. Called with f.mu held.
func (f *Fanout) add(c *evalCtx) {
	c.seq = f.seq
	f.contexts[c.key] = c
	add(f.byEnv, c.spec.Env, c)
	if c.spec.Identifier != "" {
		ik := identityKey{c.spec.Env, c.spec.Identifier}
		f.byIdentity[ik] = append(f.byIdentity[ik], c)
	}
}

// attach adds a new subscriber (spec: what it sent) to context c. Called
// with f.mu held.
func (f *Fanout) attach(c *evalCtx, spec *Context, notify func()) *Sub {
	s := &Sub{f: f, ctx: c, identifier: spec.Identifier, server: spec.Server, notify: notify}
	if len(spec.Traits) > 0 {
		s.sent = spec.Traits
	}
	if notify == nil {
		s.wake = make(chan struct{}, 1)
	}
	c.join(s)
	return s
}

// newContext makes, evaluates and adds a context. Called with f.mu held.
func (f *Fanout) newContext(key [32]byte, spec *Context, stored map[string]any, e *served.Env) *evalCtx {
	c := f.prepare(key, spec, stored, e)
	f.add(c)
	return c
}

func add[K comparable](m map[K]map[*evalCtx]struct{}, k K, c *evalCtx) {
	set := m[k]
	if set == nil {
		set = make(map[*evalCtx]struct{}, 1)
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

// join adds s to c. Called with f.mu held.
func (c *evalCtx) join(s *Sub) {
	s.ctx, s.idx = c, len(c.subs)
	c.subs = append(c.subs, s)
}

// detach removes s from its context, dropping the context with its last
// subscriber. Called with f.mu held.
func (f *Fanout) detach(s *Sub) {
	c := s.ctx
	last := c.subs[len(c.subs)-1]
	c.subs[s.idx], last.idx = last, s.idx
	c.subs[len(c.subs)-1] = nil
	c.subs = c.subs[:len(c.subs)-1]
	if len(c.subs) == 0 {
		delete(f.contexts, c.key)
		remove(f.byEnv, c.spec.Env, c)
		if c.spec.Identifier != "" {
			ik := identityKey{c.spec.Env, c.spec.Identifier}
			if cs := slices.DeleteFunc(f.byIdentity[ik], func(x *evalCtx) bool { return x == c }); len(cs) > 0 {
				f.byIdentity[ik] = cs
			} else {
				delete(f.byIdentity, ik)
			}
		}
	}
}

// resume fills s's outbox on subscribing. Called with f.mu held.
func (s *Sub) resume(f *Fanout, from string) {
	c := s.ctx
	rev := f.revID()
	if from == "" {
		s.pushFull(rev, c)
		return
	}
	i := len(f.history) - 1
	for ; i >= 0 && f.history[i].id != from; i-- {
	}
	if i < 0 {
		s.pushFull(rev, c)
		return
	}
	since := f.history[i].seq
	if c.spec.Identifier != "" && (f.traitFloor > since || f.traitSeq[identityKey{c.spec.Env, c.spec.Identifier}] > since) {
		s.pushFull(rev, c) // its stored traits changed since
		return
	}
	names := map[string]bool{}
	for _, h := range f.history[i+1:] {
		if h.all {
			s.pushFull(rev, c)
			return
		}
		if ch := h.envs[c.spec.Env]; ch != nil {
			if ch.all {
				s.pushFull(rev, c)
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
	slices.Sort(removed)
	s.push(f.enc.newChange(rev, changed, removed), c) // always due, if only as an empty changes message
}

// UpdateTraits replaces s's sent traits: s moves to the context of its new
// traits and its outbox gets the flags that differ between the two. It
// fails with ErrClientTraits for a client-key subscriber in an
// environment that does not allow client traits (in the current
// revision); the traits in use stay.
func (s *Sub) UpdateTraits(traits map[string]any) error {
	f := s.f
	var prepared *evalCtx
	var prepRev *served.State
	var gen uint64
	for attempt := 0; ; attempt++ {
		f.mu.Lock()
		old := s.ctx
		if old == nil || f.rev == nil || f.rev.Env(old.spec.Env) == nil {
			f.mu.Unlock()
			return nil // closed, or its environment is gone
		}
		e := f.rev.Env(old.spec.Env)
		if !s.server && !clientTraits(e) {
			f.mu.Unlock()
			return ErrClientTraits
		}
		spec := old.spec
		spec.Traits = traits
		spec = inUse(spec, e)
		key := contextKey(&spec)
		if key == old.key {
			s.sent = spec.Traits
			f.mu.Unlock()
			return nil
		}
		c := f.contexts[key]
		if c == nil {
			switch {
			case prepared != nil && prepared.key == key && prepRev == f.rev && gen == f.traitGen.Load():
				c = prepared
				f.add(c)
			case attempt < maxUnlockedAttempts:
				stored, rev := old.stored, f.rev
				gen = f.traitGen.Load()
				f.mu.Unlock()
				prepared, prepRev = f.prepare(key, &spec, stored, e), rev
				continue
			default:
				c = f.newContext(key, &spec, old.stored, e)
			}
		}
		s.sent = spec.Traits
		f.detach(s)
		c.join(s)
		changed, removed := diff(old.result, c.result)
		s.push(f.enc.newChange(f.revID(), changed, removed), c)
		f.mu.Unlock()
		return nil
	}
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
	for _, c := range f.byIdentity[ik] {
		c.stored = stored
		c.traits, c.id = mergeTraits(stored, c.spec.Traits), nil
		changed, removed := f.reevaluate(c, e, nil)
		if len(changed) == 0 && len(removed) == 0 {
			continue
		}
		ch := f.enc.newChange(f.revID(), cloneFlags(changed), slices.Clone(removed))
		for _, s := range c.subs {
			s.push(ch, c)
		}
	}
}

// Sub is a subscriber's outbox. Its owner waits for a notification (the
// notify function given to Subscribe, or Notified), then Takes.
type Sub struct {
	f          *Fanout
	ctx        *evalCtx       // guarded by f.mu
	idx        int            // its place in ctx.subs (guarded by f.mu)
	sent       map[string]any // the traits it sent (guarded by f.mu)
	wake       chan struct{}  // nil when notify is set
	notify     func()
	identifier string
	server     bool

	mu      sync.Mutex
	pending bool            // a message is due
	rev     string          // of the due message
	full    map[string]Flag // the full state is due (replaces changes)
	// fullLoan is full's loan; taken, the loan of the full state taken
	// and not released (both given back under f.mu).
	fullLoan, taken loan
	one             *change         // the one change due, shared
	changed         map[string]Flag // the changes due, merged from two or more
	removed         map[string]struct{}
	ended           string // the reason the subscription ended
}

// Message is what a subscriber is due: the full state (Full) or the
// changes since the last message (Changed, Removed), at revision Revision;
// or the end of the subscription (End, a reason). Its maps and slices are
// read-only; once done with a full state, call Sub.Release. Data, when not nil, is the message encoded (AppendMessage)
// and framed (FanoutOptions.Frame), shared with other subscribers: write
// it as it is.
type Message struct {
	Revision string
	Full     map[string]Flag
	Changed  map[string]Flag
	Removed  []string
	End      string
	Data     []byte
}

func (s *Sub) signal() {
	if s.notify != nil {
		s.notify()
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pushFull sets c's full state as due. Called with f.mu held.
func (s *Sub) pushFull(rev string, c *evalCtx) {
	s.mu.Lock()
	s.fullLoan.giveBack()
	s.full, s.fullLoan = c.lend()
	s.pending, s.rev, s.one, s.changed, s.removed = true, rev, nil, nil, nil
	s.mu.Unlock()
	s.signal()
}

// push merges a change into the outbox; c is the context after it (a due
// full state is replaced by its state). Called with f.mu held.
func (s *Sub) push(ch *change, c *evalCtx) {
	s.mu.Lock()
	due := s.pending
	s.pending, s.rev = true, ch.rev
	switch {
	case s.full != nil:
		s.fullLoan.giveBack()
		s.full, s.fullLoan = c.lend()
	case !due:
		s.one = ch
	default:
		if s.changed == nil {
			s.changed = make(map[string]Flag, len(ch.changed)+1)
			s.removed = map[string]struct{}{}
		}
		if s.one != nil {
			s.merge(s.one)
			s.one = nil
		}
		s.merge(ch)
	}
	s.mu.Unlock()
	s.signal()
}

func (s *Sub) merge(ch *change) {
	for k, v := range ch.changed {
		s.changed[k] = v
		delete(s.removed, k)
	}
	for _, k := range ch.removed {
		delete(s.changed, k)
		s.removed[k] = struct{}{}
	}
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

// Notified receives a value when a message may be due (nil when
// Subscribe was given a notify function).
func (s *Sub) Notified() <-chan struct{} { return s.wake }

// Due reports whether Take would return a message.
func (s *Sub) Due() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending || s.ended != ""
}

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
	switch {
	case s.full != nil:
		m = Message{Revision: s.rev, Full: s.full}
		s.taken, s.fullLoan = s.fullLoan, loan{} // a previous one not released stays counted: copies, never a race
	case s.one != nil:
		m = Message{Revision: s.rev, Changed: s.one.changed, Removed: s.one.removed, Data: s.one.data}
	default:
		m = Message{Revision: s.rev, Changed: s.changed}
		for k := range s.removed {
			m.Removed = append(m.Removed, k)
		}
		slices.Sort(m.Removed)
		if m.Changed == nil {
			m.Changed = map[string]Flag{}
		}
	}
	s.pending, s.full, s.one, s.changed, s.removed = false, nil, nil, nil, nil
	return m, true
}

// Release tells the fan-out that the owner no longer reads the maps of
// the messages it took: their context may then update its flags in place
// rather than copy them on the next change. Not calling it costs that copy,
// nothing else.
func (s *Sub) Release() {
	f := s.f
	f.mu.Lock()
	s.mu.Lock()
	s.taken.giveBack()
	s.mu.Unlock()
	f.mu.Unlock()
}

// Close removes the subscriber. It is idempotent.
func (s *Sub) Close() {
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	s.mu.Lock()
	s.fullLoan.giveBack()
	s.taken.giveBack()
	s.mu.Unlock()
	if s.ctx == nil {
		return
	}
	f.detach(s)
	s.ctx = nil
}
