package httpapi

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/stream"
)

// Publish turns a snapshot into the served state: the evaluation models and
// every answer that does not depend on an identity, encoded in advance.
//
// It is incremental. Each feature's pieces in each environment (its /flags/
// object, its environment-document feature states, its OFREP answers) are a
// featureOut, computed from a featureIn. flagrepo keeps a document whose
// file did not change as the same pointer from one snapshot to the next, so
// a featureIn equal to the previous state's means the pieces are reused as
// they are; a commit that touches one file re-encodes only the features it
// touches, and Publish then concatenates pieces. Segments work the same way
// (segmentOut).

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
	created string // the feature's created_date, see Publish
}

// featureOut is one feature's precomputed pieces in one environment.
type featureOut struct {
	in    featureIn
	eval  evaluator.Flag // its evaluation without an identity
	flag  []byte         // its GET /api/v1/flags/ object
	base  flagBase
	doc   featureDocument // environment-document.go
	ofrep ofrepFeature    // ofrep.go
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

// Publish compiles snap and makes it the served state. On error the previous
// state keeps serving.
func (s *Server) Publish(snap *flagrepo.Snapshot) error {
	s.publishing.Lock()
	defer s.publishing.Unlock()
	prev := s.current.Load()
	var prevModels map[string]*evaluator.Model
	if prev != nil {
		prevModels = make(map[string]*evaluator.Model, len(prev.byEnv))
		for k, es := range prev.byEnv {
			prevModels[k] = es.model
		}
	}
	models, err := evaluator.CompileSnapshot(snap, prevModels)
	if err != nil {
		return fmt.Errorf("compile revision %s: %w", snap.Revision.SHA, err)
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
	st := &state{
		snap:      snap,
		updated:   updated,
		byEnv:     make(map[string]*envState, len(models)),
		byClient:  make(map[string]*envState, len(models)),
		byServer:  map[string]*envState{},
		updatedAt: []string{fmt.Sprintf("%.6f", float64(updated.UnixMicro())/1e6)},
	}
	st.byName = featureIndex(snap.FeatureKeys(), prev)
	if err := buildSegments(st, prev); err != nil {
		return err
	}
	for _, key := range snap.EnvironmentKeys() {
		e := snap.Environments[key]
		var pes *envState
		if prev != nil {
			pes = prev.byEnv[key]
		}
		es, err := buildEnvironment(st, e, models[key], prev, pes)
		if err != nil {
			return fmt.Errorf("environment %s: %w", key, err)
		}
		st.byEnv[key] = es
		st.byClient[e.ClientKey] = es
		for _, k := range e.ServerKeys {
			st.byServer[k.SHA256] = es
		}
	}
	s.current.Store(st)
	notifyChanged(s.hub, prev, st)
	s.ws.publish(prev, st)
	s.metrics.published(snap.Revision.SHA, snap.Revision.Time)
	s.log.Debug("published", "revision", snap.Revision.SHA, "environments", len(models), "features", len(snap.Features))
	return nil
}

// notifyChanged tells the streams of each environment whose answers differ
// between prev and st (its digest changed, or it was added or removed);
// the others hear nothing.
func notifyChanged(hub *stream.Hub, prev, st *state) {
	if prev == nil {
		return // nobody can be subscribed before the first revision
	}
	for key, es := range st.byEnv {
		if pes := prev.byEnv[key]; pes == nil || pes.digest != es.digest {
			hub.Notify(key, stream.Event{Revision: st.snap.Revision.SHA, Updated: st.updated, Digest: es.digest})
		}
	}
	for key := range prev.byEnv {
		if st.byEnv[key] == nil {
			hub.Notify(key, stream.Event{Revision: st.snap.Revision.SHA, Updated: st.updated, Removed: true})
		}
	}
}

// featureIndex maps feature keys to their position; prev's map is kept when
// the keys are the same.
func featureIndex(keys []string, prev *state) map[string]int32 {
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
// (pes, environment e in the previous state pst) whose inputs are unchanged.
func buildEnvironment(st *state, e *flagrepo.Environment, m *evaluator.Model, pst *state, pes *envState) (*envState, error) {
	snap := st.snap
	keys := snap.FeatureKeys()
	flags := m.EnvironmentFlags()
	if len(flags) != len(keys) {
		return nil, fmt.Errorf("the model has %d flags, the snapshot %d features", len(flags), len(keys))
	}
	es := &envState{env: e, model: m, features: make([]*featureOut, len(keys)), byName: st.byName, segmentAt: st.segmentAt, results: newResultCache(len(keys))}
	hide := snap.HidesDisabledFlags(e)
	// A feature's created_date is the time of the first revision this
	// process served it in: git keeps no creation date, and a date that
	// moved with every commit would change every answer.
	created := snap.Revision.Time.UTC().Format(timeFormat)
	sameIndex := pst != nil && sameMap(pst.byName, st.byName)
	for i, k := range keys {
		if flags[i].Name != k {
			return nil, fmt.Errorf("flag %d of the model is %q, feature %q expected", i, flags[i].Name, k)
		}
		in := featureIn{feature: snap.Features[k], state: e.Features[k], envID: e.ID, hide: hide, created: created}
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
	}
	es.flagsJSON, es.clientFlagsJSON = assembleFlags(es.features)
	es.flagsLen, es.clientFlagsLen = []string{strconv.Itoa(len(es.flagsJSON))}, []string{strconv.Itoa(len(es.clientFlagsJSON))}
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
		Feature:           newFlagsmithFeature(f, in.created),
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
	out.base = flagBase{
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
	if ofrepIsScalar(a) {
		return ofrepSameScalar(a, b)
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
func environmentDigest(st *state, es *envState, hide bool) [sha256.Size]byte {
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
