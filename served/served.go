// Package served is the per-revision served state: for one revision of the
// flag repository, each environment's evaluation model and every answer
// that does not depend on an identity, encoded in advance (the Flagsmith
// SDK API's flags and environment document, OFREP's answers), the digests
// their ETags and change notifications derive from, and what changed since
// the state built before it: which features and segments, in which
// environments (Changes).
//
// It sits between the evaluator and the transports. Package httpapi writes
// its answers over HTTP and package stream fans its changes out to
// subscribers; both read a State, neither reaches into the other. It knows
// no HTTP: the pieces it holds are bytes of answers.
//
// Build is incremental. Each feature's pieces in each environment (its
// /flags/ object, its environment-document feature states, its OFREP
// answers) are a featureOut, computed from a featureIn. flagrepo keeps a
// document whose file did not change as the same pointer from one snapshot
// to the next, so a featureIn equal to the previous state's means the
// pieces are reused as they are; a commit that touches one file re-encodes
// only the features it touches, and Build then concatenates pieces.
// Segments work the same way (segmentOut).
package served

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitflags/gitflags/changes"
	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
)

// State is everything served for one snapshot, derived once by Build. It is
// read-only: requests of any number of goroutines share it.
type State struct {
	snap      *flagrepo.Snapshot
	byEnv     map[string]*Env  // by environment key
	byClient  map[string]*Env  // by client key
	byServer  map[string]*Env  // by hex SHA-256 of a server key
	byName    map[string]int32 // feature key -> position in Env.features
	segments  []*segmentOut    // in segment id order
	segmentAt map[string]int32 // segment key -> position in segments
	updated   time.Time        // the document's updated_at: only ever increases

	// changes is what changed since prevSnap, the snapshot of the state
	// Build was given, computed once when first asked (see Changes).
	changesOnce sync.Once
	prevSnap    *flagrepo.Snapshot // nil once changes is computed, or without a previous state
	changes     *changes.Set
}

// Env is one environment of a State: its evaluation model and precomputed
// answers. Each surface keeps what it precomputes in its own field,
// assembled by its own function (see Build).
type Env struct {
	env       *flagrepo.Environment
	model     *evaluator.Model
	features  []*featureOut    // in feature key order
	byName    map[string]int32 // feature key -> position in features (shared by the state's environments)
	segmentAt map[string]int32 // the state's segment positions (State.segmentAt)
	hide      bool             // disabled flags are hidden (hide_disabled_flags, effective)
	encoded   int              // features whose pieces Build encoded (not reused)
	// flags is GET /api/v1/flags/, concatenated from the features' pieces
	// when first asked for: a state that is replaced before anyone asks
	// (a burst of writes) never pays for it.
	flags    func() flagsBodies
	digest   [sha256.Size]byte // see environmentDigest
	document Document          // document.go
	ofrep    OFREP             // ofrep.go
	results  *ResultCache      // results.go
}

// flagsBodies are the GET /api/v1/flags/ answers of an environment: all is
// for server keys; client is without the server-key-only features, nil when
// there are none. The lengths are in decimal.
type flagsBodies struct {
	all, client       []byte
	allLen, clientLen []string
}

// featureIn is what a feature's precomputed pieces in one environment
// depend on, besides the feature's evaluation without an identity (which
// segment rules and the environment's name and key may change; reuse also
// requires it to be the same, see sameEvaluation). Equal inputs give
// byte-identical pieces.
type featureIn struct {
	feature *flagrepo.Feature
	state   *flagrepo.FeatureState // nil when the environment has no file for it
	envID   int64
	hide    bool   // the environment hides disabled flags
	created string // the feature's created_date, see buildEnvironment
}

// featureOut is one feature's precomputed pieces in one environment.
type featureOut struct {
	in    featureIn
	eval  evaluator.Flag // its evaluation without an identity
	flag  []byte         // its GET /api/v1/flags/ object
	base  IdentityFlag   // identity.go
	doc   featureDocument
	ofrep OFREPFeature
	// digest hashes every piece that decides answers (not created_date), for
	// the ETags.
	digest [sha256.Size]byte
}

// segmentOut is a segment's precomputed piece of the environment document,
// the same in every environment.
type segmentOut struct {
	segment *flagrepo.Segment
	head    []byte // {"id":..,"name":..,"rules":[..],"feature_states":[
	digest  [sha256.Size]byte
}

// createdFormat is how created_date is written.
const createdFormat = time.RFC3339

// Build compiles snap and precomputes its served state. prev is the state
// served before (nil for the first): its models and the pieces of whatever
// did not change are reused, Changes reports what changed since it, and
// updated_at only ever grows from it.
//
// Build updates caches in the pieces it shares with prev: calls given the
// same prev, or states built from one another, must be serialised (a
// server builds each state from the one it serves, under one lock).
func Build(snap *flagrepo.Snapshot, prev *State) (*State, error) {
	var prevModels map[string]*evaluator.Model
	if prev != nil {
		prevModels = make(map[string]*evaluator.Model, len(prev.byEnv))
		for k, es := range prev.byEnv {
			prevModels[k] = es.model
		}
	}
	models, err := evaluator.CompileSnapshot(snap, prevModels)
	if err != nil {
		return nil, fmt.Errorf("compile revision %s: %w", snap.Revision.SHA, err)
	}
	// SDKs refetch when updated_at grows and loop when it runs ahead of the
	// document, so it is the commit time, bumped when a new revision's would
	// not grow (a commit dated earlier than the one served before). The same
	// commit published again keeps its updated_at.
	updated := snap.Revision.Time.UTC().Truncate(time.Microsecond)
	if prev != nil {
		switch {
		case snap.Revision.SHA != "" && prev.snap.Revision.SHA == snap.Revision.SHA:
			updated = prev.updated // a working-tree snapshot (no SHA) is always new
		case !updated.After(prev.updated):
			updated = prev.updated.Add(time.Microsecond)
		}
	}
	st := &State{
		snap:     snap,
		updated:  updated,
		byEnv:    make(map[string]*Env, len(models)),
		byClient: make(map[string]*Env, len(models)),
		byServer: map[string]*Env{},
	}
	st.byName = featureIndex(snap.FeatureKeys(), prev)
	if err := buildSegments(st, prev); err != nil {
		return nil, err
	}
	// Environments share no mutable piece (each has its own features'
	// pieces; segments are built above): they are built concurrently.
	features := make([]*flagrepo.Feature, len(snap.FeatureKeys())) // in key order, shared
	for i, k := range snap.FeatureKeys() {
		features[i] = snap.Features[k]
	}
	keys := snap.EnvironmentKeys()
	built := make([]*Env, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, key := range keys {
		var pes *Env
		if prev != nil {
			pes = prev.byEnv[key]
		}
		wg.Go(func() {
			if built[i], errs[i] = buildEnvironment(st, features, snap.Environments[key], models[key], prev, pes); errs[i] != nil {
				errs[i] = fmt.Errorf("environment %s: %w", key, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, key := range keys {
		e, es := snap.Environments[key], built[i]
		st.byEnv[key] = es
		st.byClient[e.ClientKey] = es
		for _, k := range e.ServerKeys {
			st.byServer[k.SHA256] = es
		}
	}
	if prev != nil {
		st.prevSnap = prev.snap
	}
	return st, nil
}

// Snapshot returns the snapshot the state was built from.
func (st *State) Snapshot() *flagrepo.Snapshot { return st.snap }

// Revision returns the revision served.
func (st *State) Revision() flagrepo.Revision { return st.snap.Revision }

// Updated returns the environment documents' updated_at: the commit time,
// made to grow from one state to the next (see Build).
func (st *State) Updated() time.Time { return st.updated }

// Changes returns what changed since the state given to Build as prev
// (changes.Between their snapshots): per environment, which features
// changed their effective state (or use a segment whose rules changed) and
// which segments changed, and which environments were added or removed. It
// is nil for a state built without a previous one: everything may have
// changed. It is computed on the first call (so a state is served before
// its changes are computed), and must not be modified.
func (st *State) Changes() *changes.Set {
	st.changesOnce.Do(func() {
		if st.prevSnap != nil {
			set := changes.Between(st.prevSnap, st.snap)
			st.changes, st.prevSnap = &set, nil
		}
	})
	return st.changes
}

// Env returns the environment with key key, or nil.
func (st *State) Env(key string) *Env { return st.byEnv[key] }

// Envs yields the environments by key, in key order.
func (st *State) Envs() iter.Seq2[string, *Env] {
	return func(yield func(string, *Env) bool) {
		for _, k := range st.snap.EnvironmentKeys() {
			if !yield(k, st.byEnv[k]) {
				return
			}
		}
	}
}

// ByClientKey returns the environment whose client key is key, or nil.
func (st *State) ByClientKey(key string) *Env { return st.byClient[key] }

// ByServerKeyHash returns the environment that lists a server key whose
// SHA-256 is sum (hex), or nil.
func (st *State) ByServerKeyHash(sum string) *Env { return st.byServer[sum] }

// Lookup resolves an environment key: a client key, or a server key ("ser."
// prefix) whose SHA-256 an environment lists. server reports which kind of
// key it is.
func (st *State) Lookup(key string) (es *Env, server bool) {
	if strings.HasPrefix(key, "ser.") {
		sum := sha256.Sum256([]byte(key))
		return st.byServer[hex.EncodeToString(sum[:])], true
	}
	return st.byClient[key], false
}

// CreatedDate returns the created_date of a feature in the SDK API: the
// time of the first revision this process served it in (see
// buildEnvironment). ok is false when there is no such feature.
func (st *State) CreatedDate(feature string) (created string, ok bool) {
	if i, ok := st.byName[feature]; ok {
		for _, es := range st.byEnv {
			return es.features[i].in.created, true
		}
	}
	return "", false
}

// Key returns the environment's key.
func (e *Env) Key() string { return e.env.Key }

// Environment returns the environment's documents.
func (e *Env) Environment() *flagrepo.Environment { return e.env }

// Model returns the environment's evaluation model.
func (e *Env) Model() *evaluator.Model { return e.model }

// HidesDisabledFlags reports whether disabled flags are left out of the
// environment's answers (hide_disabled_flags, the environment's or the
// project's).
func (e *Env) HidesDisabledFlags() bool { return e.hide }

// StoreEnv returns the name the environment's identities are stored under
// (its id).
func (e *Env) StoreEnv() string { return strconv.FormatInt(e.env.ID, 10) }

// Digest returns the hash of what decides the environment's answers (see
// environmentDigest): equal digests, equal answers.
func (e *Env) Digest() [sha256.Size]byte { return e.digest }

// FeatureIndex returns the position of feature name in the environment's
// features (the model's flag order), and whether it exists.
func (e *Env) FeatureIndex(name string) (int, bool) {
	i, ok := e.byName[name]
	return int(i), ok
}

// ServerKeyOnly reports whether feature name exists and only server keys
// may see it.
func (e *Env) ServerKeyOnly(name string) bool {
	i, ok := e.byName[name]
	return ok && e.features[i].base.serverOnly
}

// Flags returns the GET /api/v1/flags/ answer for a server key or a client
// key (without the server-key-only features), and its length in decimal
// (shared: read-only).
func (e *Env) Flags(server bool) (body []byte, length []string) {
	b := e.flags()
	if !server && b.client != nil {
		return b.client, b.clientLen
	}
	return b.all, b.allLen
}

// Flag returns the flag object of feature name in GET /api/v1/flags/, or
// false when the caller (a server key or not) does not see it.
func (e *Env) Flag(name string, server bool) ([]byte, bool) {
	i, ok := e.byName[name]
	if !ok {
		return nil, false
	}
	f := e.features[i]
	if !f.visible() || (!server && f.base.serverOnly) {
		return nil, false
	}
	return f.flag, true
}

// Document returns the environment document.
func (e *Env) Document() *Document { return &e.document }

// OFREP returns the environment's OFREP answers.
func (e *Env) OFREP() *OFREP { return &e.ofrep }

// IdentityFlags returns the flag objects of the identity endpoints, in
// feature key order (the order of evaluator results).
func (e *Env) IdentityFlags() []*IdentityFlag { return e.document.ordered }

// Results returns the environment's cache of identity evaluations, which
// starts empty with each state.
func (e *Env) Results() *ResultCache { return e.results }

// Encoded returns the number of the environment's features whose pieces
// Build encoded; the others were reused from the previous state.
func (e *Env) Encoded() int { return e.encoded }

// featureIndex maps feature keys to their position; prev's map is kept when
// the keys are the same.
func featureIndex(keys []string, prev *State) map[string]int32 {
	if prev != nil && len(prev.byName) == len(keys) {
		same := true
		for i, k := range keys {
			if j, ok := prev.byName[k]; !ok || int(j) != i {
				same = false
				break
			}
		}
		if same {
			return prev.byName
		}
	}
	m := make(map[string]int32, len(keys))
	for i, k := range keys {
		m[k] = int32(i)
	}
	return m
}

// buildEnvironment precomputes environment e of st, reusing prev's pieces
// (pes, environment e in the previous state pst) whose inputs are unchanged;
// features are the snapshot's, in key order.
func buildEnvironment(st *State, features []*flagrepo.Feature, e *flagrepo.Environment, m *evaluator.Model, pst *State, pes *Env) (*Env, error) {
	snap := st.snap
	keys := snap.FeatureKeys()
	flags := m.EnvironmentFlags()
	if len(flags) != len(keys) {
		return nil, fmt.Errorf("the model has %d flags, the snapshot %d features", len(flags), len(keys))
	}
	hide := snap.HidesDisabledFlags(e)
	es := &Env{env: e, model: m, features: make([]*featureOut, len(keys)), byName: st.byName, segmentAt: st.segmentAt, hide: hide, results: newResultCache(len(keys))}
	// A feature's created_date is the time of the first revision this
	// process served it in: git keeps no creation date, and a date that
	// moved with every commit would change every answer.
	created := snap.Revision.Time.UTC().Format(createdFormat)
	sameIndex := pst != nil && sameMap(pst.byName, st.byName)
	for i, k := range keys {
		if flags[i].Name != k {
			return nil, fmt.Errorf("flag %d of the model is %q, feature %q expected", i, flags[i].Name, k)
		}
		in := featureIn{feature: features[i], state: e.Features[k], envID: e.ID, hide: hide, created: created}
		var old *featureOut
		switch {
		case pes == nil:
		case sameIndex: // the same features as before, in the same order
			old = pes.features[i]
		default:
			if j, ok := pst.byName[k]; ok {
				old = pes.features[j]
			}
		}
		if old != nil {
			in.created = old.in.created
		}
		if old != nil && old.in == in && old.sameEvaluation(&flags[i]) {
			es.features[i] = old
			continue
		}
		out, err := newFeatureOut(e, in, &flags[i])
		if err != nil {
			return nil, fmt.Errorf("feature %s: %w", k, err)
		}
		es.features[i] = out
		es.encoded++
	}
	es.flags = sync.OnceValue(func() flagsBodies {
		var b flagsBodies
		b.all, b.client = assembleFlags(es.features)
		b.allLen, b.clientLen = []string{strconv.Itoa(len(b.all))}, []string{strconv.Itoa(len(b.client))}
		return b
	})
	es.digest = environmentDigest(st, es, hide)
	if err := assembleDocument(st, es, pes); err != nil {
		return nil, fmt.Errorf("environment document: %w", err)
	}
	assembleOFREP(es, hide)
	return es, nil
}

// newFeatureOut encodes the pieces of a feature in environment e; flag is
// its evaluation without an identity.
func newFeatureOut(e *flagrepo.Environment, in featureIn, flag *evaluator.Flag) (*featureOut, error) {
	f := in.feature
	r := e.Resolve(f)
	out := &featureOut{in: in, eval: *flag}
	ff := flagsmithFlag{
		// A feature state's id is the feature's id: SDKs hash it for
		// multivariate buckets, so it must be stable across reloads.
		ID:                f.ID,
		Feature:           NewFlagsmithFeature(f, in.created),
		FeatureStateValue: flag.Value,
		Environment:       e.ID,
		Enabled:           flag.Enabled,
	}
	var err error
	if out.flag, err = json.Marshal(ff); err != nil {
		return nil, fmt.Errorf("encode flag: %w", err)
	}
	feature, err := json.Marshal(ff.Feature)
	if err != nil {
		return nil, fmt.Errorf("encode feature: %w", err)
	}
	out.base = IdentityFlag{
		prefix:     fmt.Appendf(nil, `{"id":%d,"feature":%s,"environment":%d,"identity":null,"feature_segment":null,"feature_state_value":`, f.ID, feature, e.ID),
		name:       f.Key,
		serverOnly: f.ServerKeyOnly,
	}
	out.base.outcomes = identityOutcomes(&r)
	for i := range out.base.outcomes {
		o := &out.base.outcomes[i]
		o.suffix = appendFlagSuffix(nil, o.enabled, o.variant, o.value)
	}
	if out.doc, err = newFeatureDocument(e, &r); err != nil {
		return nil, err
	}
	out.ofrep = newOFREPFeature(&r, flag, in.hide)

	h := sha256.New()
	h.Write(out.doc.state)
	for _, p := range out.doc.segments {
		fmt.Fprintf(h, "\x00s%q", p.key)
		h.Write(p.body)
	}
	for _, p := range out.doc.identities {
		fmt.Fprintf(h, "\x00i%q", p.key)
		h.Write(p.body)
	}
	for _, o := range out.ofrep.outcomes {
		h.Write([]byte{0, 'o'})
		h.Write(o.body)
	}
	h.Write([]byte{0, 'f'})
	h.Write(out.ofrep.single)
	fmt.Fprintf(h, "\x00%t%t", f.ServerKeyOnly, out.visible())
	h.Sum(out.digest[:0])
	return out, nil
}

// eachOutcome calls fn with every answer a flag with state r can have, for
// the surfaces that encode them in advance: its default (with reason
// defaultReason), each band of each split, each segment override and each
// identity override. reason and segment are as OFREP reports them.
func eachOutcome(r *flagrepo.Resolved, defaultReason string, fn func(enabled bool, reason, segment, variant string, value any)) {
	fn(r.Enabled, defaultReason, "", "", r.Value)
	split := func(enabled bool, segment string, value any, ws []flagrepo.VariantWeight) {
		if len(ws) == 0 {
			return
		}
		reason := "SPLIT"
		if segment != "" {
			reason = "TARGETING_MATCH"
		}
		fn(enabled, reason, segment, evaluator.ControlVariant, value)
		for _, w := range ws {
			if w.Weight > 0 {
				fn(enabled, "SPLIT", "", w.Variant.Key, w.Variant.Value.Value)
			}
		}
	}
	split(r.Enabled, "", r.Value, r.Weights)
	for i := range r.SegmentOverrides {
		so := &r.SegmentOverrides[i]
		value := r.Value
		if so.Value.Set {
			value = so.Value.Value
		}
		fn(so.Enabled, "TARGETING_MATCH", so.Segment, "", value)
		split(so.Enabled, so.Segment, value, so.OverrideWeights(r.Feature))
	}
	for _, io := range r.IdentityOverrides {
		value := r.Value
		if io.Value.Set {
			value = io.Value.Value
		}
		fn(io.Enabled, "TARGETING_MATCH", evaluator.IdentityOverridesSegment, "", value)
	}
}

// sameEvaluation reports whether flag, the feature's evaluation without an
// identity in a new model, is the one f's pieces were encoded from.
func (f *featureOut) sameEvaluation(flag *evaluator.Flag) bool {
	e := &f.eval
	return e.Enabled == flag.Enabled && e.Reason == flag.Reason && e.Variant == flag.Variant && sameValue(e.Value, flag.Value)
}

// sameValue reports whether two flag values are equal.
func sameValue(a, b any) bool {
	if isScalar(a) {
		return sameScalar(a, b)
	}
	if fa, ok := a.(float64); ok {
		fb, ok := b.(float64)
		return ok && fa == fb
	}
	return reflect.DeepEqual(a, b)
}

// visible reports whether the flag is shown without an identity: enabled,
// or disabled flags not hidden.
func (f *featureOut) visible() bool { return !f.ofrep.hidden }

// assembleFlags concatenates the GET /api/v1/flags/ answer for server keys
// and, when some features are server-key-only, the one for client keys (nil
// otherwise).
func assembleFlags(features []*featureOut) (all, client []byte) {
	size, serverOnly := 2, false
	for _, f := range features {
		size += len(f.flag) + 1
		serverOnly = serverOnly || f.base.serverOnly
	}
	join := func(skipServerOnly bool) []byte {
		b := make([]byte, 0, size)
		b = append(b, '[')
		first := true
		for _, f := range features {
			if !f.visible() || (skipServerOnly && f.base.serverOnly) {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, f.flag...)
		}
		return append(b, ']')
	}
	all = join(false)
	if serverOnly {
		client = join(true)
	}
	return all, client
}

// environmentDigest hashes what decides an environment's answers: the
// server build, the answer formats, the environment's id, name and client
// key (identity keys and $.environment.* rules read them), and every
// feature's and segment's pieces. A commit that changes nothing for an
// environment (or a restart, or another replica) keeps its digest, and so
// its ETags.
func environmentDigest(st *State, es *Env, hide bool) [sha256.Size]byte {
	h := sha256.New()
	e := es.env
	fmt.Fprintf(h, "%s\x00%s\x00%t\x00%d\x00%d\x00%q\x00%q\x00", ofrepETagFormat, ofrepBuild(), hide, len(es.features), e.ID, e.Name, e.ClientKey)
	for _, f := range es.features {
		h.Write(f.digest[:])
	}
	for _, s := range st.segments {
		h.Write(s.digest[:])
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// sameMap reports whether a and b are the same map (not merely equal).
func sameMap[K comparable, V any](a, b map[K]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}
