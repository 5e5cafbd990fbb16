package evaluator

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gitflags/gitflags/flagrepo"
)

// FromSnapshot builds the evaluation input for environment envKey of a
// validated snapshot. Hash keys are the repository's stable ids: a feature's
// id for its multivariate split, a segment's id for PERCENTAGE_SPLIT, and a
// variant's id orders the variants. Features and segments come in key order.
// CompileSnapshot compiles the same input without building it.
func FromSnapshot(snap *flagrepo.Snapshot, envKey string) (*Environment, error) {
	e := snap.Environments[envKey]
	if e == nil {
		return nil, fmt.Errorf("no environment %q", envKey)
	}
	env := &Environment{
		Key:      e.ClientKey,
		Name:     e.Name,
		Features: make([]Feature, 0, len(snap.Features)),
	}
	overrides := map[string][]Override{} // segment key -> overrides
	for _, key := range snap.FeatureKeys() {
		f := snap.Features[key]
		r := e.Resolve(f)
		env.Features = append(env.Features, Feature{
			Key:      strconv.FormatInt(f.ID, 10),
			Name:     f.Key,
			Enabled:  r.Enabled,
			Value:    r.Value,
			Variants: variants(r.Weights),
			Metadata: map[string]any{"id": f.ID},
		})
		for i := range r.SegmentOverrides {
			o := &r.SegmentOverrides[i]
			ov := segmentOverride(f, &r, o)
			p := float64(o.Priority)
			ov.Priority = &p
			overrides[o.Segment] = append(overrides[o.Segment], ov)
		}
		for i := range r.IdentityOverrides {
			o := &r.IdentityOverrides[i]
			for _, id := range o.Identifiers {
				if env.IdentityOverrides == nil {
					env.IdentityOverrides = map[string][]Override{}
				}
				env.IdentityOverrides[id] = append(env.IdentityOverrides[id], identityOverride(f, &r, o))
			}
		}
	}
	for _, key := range snap.SegmentKeys() {
		s := snap.Segments[key]
		env.Segments = append(env.Segments, Segment{
			Key:       strconv.FormatInt(s.ID, 10),
			Name:      s.Key,
			Rules:     rules(s.Rules),
			Overrides: overrides[key],
			Metadata:  map[string]any{"id": s.ID},
		})
	}
	return env, nil
}

// segmentOverride returns a segment override of feature f, but for its
// priority.
func segmentOverride(f *flagrepo.Feature, r *flagrepo.Resolved, o *flagrepo.SegmentOverride) Override {
	value := r.Value
	if o.Value.Set {
		value = o.Value.Value
	}
	return Override{
		Name:     f.Key,
		Enabled:  o.Enabled,
		Value:    value,
		Variants: variants(o.OverrideWeights(f)),
	}
}

func identityOverride(f *flagrepo.Feature, r *flagrepo.Resolved, o *flagrepo.IdentityOverride) Override {
	value := r.Value
	if o.Value.Set {
		value = o.Value.Value
	}
	return Override{Name: f.Key, Enabled: o.Enabled, Value: value}
}

// CompileSnapshot compiles every environment of snap, by environment key,
// in parallel.
//
// prev, which may be nil, holds the models of a previous snapshot of the
// same repository, by environment key (normally the result of the previous
// call). Work is reused by document identity: flagrepo.Load gives the
// document of a file unchanged since the previous snapshot the same pointer,
// and documents are never modified. A segment (snap.Segments[k]) that is the
// same pointer is not compiled again (unless the environment's client key or
// name changed, or unused trait slots have piled up and every segment is
// compiled afresh with new slot numbers), nor is a feature whose
// *flagrepo.Feature and
// *flagrepo.FeatureState of the environment are both the same pointers, so
// recompiling after a small change costs little more than copying the
// models. The result is the same as without prev; models in prev are not
// modified and stay usable. Models keep references to snap's documents.
func CompileSnapshot(snap *flagrepo.Snapshot, prev map[string]*Model) (map[string]*Model, error) {
	sh := &shared{featureKeys: snap.FeatureKeys(), segmentKeys: snap.SegmentKeys()}
	sh.features = make([]*flagrepo.Feature, len(sh.featureKeys))
	for i, k := range sh.featureKeys {
		sh.features[i] = snap.Features[k]
	}
	sh.segments = make([]*flagrepo.Segment, len(sh.segmentKeys))
	for i, k := range sh.segmentKeys {
		sh.segments[i] = snap.Segments[k]
	}
	// Relate the snapshot to the ones prev was compiled from (usually one).
	keys := snap.EnvironmentKeys()
	prevs := make([]*Model, len(keys))
	links := map[*shared]*link{}
	for i, key := range keys {
		pm := prev[key]
		if pm == nil || pm.src == nil {
			continue // none, or not compiled from a snapshot
		}
		prevs[i] = pm
		if old := pm.src.shared; links[old] == nil {
			l := relate(old, sh)
			links[old] = l
			if l.featOld == nil && sh.byName == nil {
				sh.byName = old.byName
			}
			if l.segOld == nil && sh.segIdx == nil {
				sh.segIdx = old.segIdx
			}
		}
	}
	if sh.byName == nil {
		sh.byName = indexOf(sh.featureKeys)
	}
	if sh.segIdx == nil {
		sh.segIdx = indexOf(sh.segmentKeys)
	}

	// Environments are independent: compile them in parallel.
	out := make([]*Model, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, key := range keys {
		var l *link
		if prevs[i] != nil {
			l = links[prevs[i].src.shared]
		}
		wg.Go(func() {
			out[i], errs[i] = compileEnvironment(sh, snap.Environments[key], prevs[i], l)
		})
	}
	wg.Wait()
	models := make(map[string]*Model, len(keys))
	for i, key := range keys {
		if errs[i] != nil {
			return nil, fmt.Errorf("environment %s: %w", key, errs[i])
		}
		models[key] = out[i]
	}
	return models, nil
}

// shared is what the models of one snapshot's environments have in common.
// It is immutable.
type shared struct {
	featureKeys []string // sorted
	features    []*flagrepo.Feature
	byName      map[string]int // feature key -> index
	segmentKeys []string       // sorted
	segments    []*flagrepo.Segment
	segIdx      map[string]int // segment key -> index
}

// link relates the features and segments of an earlier snapshot (old) to
// those of a new one by key. Each slice is nil when the keys are the same.
type link struct {
	featOld, featNew []int32 // new index -> old index, old -> new; -1: none
	segOld, segNew   []int32
}

func relate(old, cur *shared) *link {
	l := &link{}
	if !slices.Equal(old.featureKeys, cur.featureKeys) {
		l.featOld, l.featNew = match(old.featureKeys, cur.featureKeys)
	}
	if !slices.Equal(old.segmentKeys, cur.segmentKeys) {
		l.segOld, l.segNew = match(old.segmentKeys, cur.segmentKeys)
	}
	return l
}

// match pairs equal keys of two sorted lists.
func match(old, cur []string) (curToOld, oldToCur []int32) {
	curToOld, oldToCur = make([]int32, len(cur)), make([]int32, len(old))
	for i := range curToOld {
		curToOld[i] = -1
	}
	for i := range oldToCur {
		oldToCur[i] = -1
	}
	for i, j := 0, 0; i < len(old) && j < len(cur); {
		switch c := strings.Compare(old[i], cur[j]); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			curToOld[j], oldToCur[i] = int32(i), int32(j)
			i++
			j++
		}
	}
	return curToOld, oldToCur
}

func indexOf(keys []string) map[string]int {
	m := make(map[string]int, len(keys))
	for i, k := range keys {
		m[k] = i
	}
	return m
}

// snapSource is what a model compiled from a snapshot keeps for the next
// compile: the documents it was compiled from and their compiled parts not
// held in the model itself. It is immutable.
type snapSource struct {
	shared *shared
	feats  []featSource     // as Model.features
	slots  map[string]int32 // the builder's slots
	// sparse says that many slots are no longer used: the next compile
	// numbers them afresh (and so compiles every segment again).
	sparse bool
}

// featSource is a feature compiled from its documents.
type featSource struct {
	f      *flagrepo.Feature
	st     *flagrepo.FeatureState // nil: the feature has no file in the environment
	segOvs []segOverride
	idOvs  []identOverride
}

type segOverride struct {
	segment string // key
	prio    float64
	ov      *cover
}

type identOverride struct {
	identifiers []string
	ov          *cover
}

// compileEnvironment compiles environment e of a snapshot. prev, when not
// nil, is a model compiled from an earlier snapshot related to this one by
// l: the segments and features compiled from the same documents are reused.
func compileEnvironment(sh *shared, e *flagrepo.Environment, prev *Model, l *link) (*Model, error) {
	m := newModel(e.ClientKey, e.Name)
	m.byName = sh.byName
	b := m.newBuilder()
	s := &snapSource{shared: sh}
	m.src = s
	var ps *snapSource
	if prev != nil {
		ps = prev.src
	}

	// Segments. Compiled rules hold slot numbers and the environment's key
	// and name: they are reused with the previous numbering, in the same
	// environment.
	reuseSegs := ps != nil && !ps.sparse && prev.envKey == m.envKey && prev.envName == m.envName
	if reuseSegs {
		b.slots = maps.Clone(ps.slots)
		m.slotNames = slices.Clone(prev.slotNames)
	}
	nSlots := len(m.slotNames)
	m.segments = make([]csegment, len(sh.segments))
	for i, g := range sh.segments {
		if reuseSegs {
			j := i
			if l.segOld != nil {
				j = int(l.segOld[i])
			}
			if j >= 0 && ps.shared.segments[j] == g {
				m.segments[i] = prev.segments[j]
				continue
			}
		}
		cs := csegment{
			key:    strconv.FormatInt(g.ID, 10),
			result: SegmentResult{Name: g.Key, Metadata: map[string]any{"id": g.ID}},
		}
		var err error
		if cs.rules, err = b.rules(rules(g.Rules), g.Key, "rule"); err != nil {
			return nil, err
		}
		m.segments[i] = cs
	}

	// Features. Candidates hold segment indexes, renumbered when segments
	// were added or removed. With the same features as prev, prev's slices
	// are shared until a feature differs.
	var kept []bool   // by old index: reused
	borrowed := false // m.features and s.feats are prev's
	if ps != nil {
		kept = make([]bool, len(ps.feats))
		if l.featOld == nil && l.segNew == nil {
			m.features, s.feats, borrowed = prev.features, ps.feats, true
		} else if l.featOld == nil {
			m.features, s.feats = slices.Clone(prev.features), slices.Clone(ps.feats)
		}
	}
	if m.features == nil {
		m.features = make([]cfeature, len(sh.features))
		s.feats = make([]featSource, len(sh.features))
	}
	var candBuf []candidate // backs renumbered candidates
	if l != nil && l.segNew != nil {
		n := 0
		for i := range prev.features {
			n += len(prev.features[i].cands)
		}
		candBuf = make([]candidate, 0, n)
	}
	var fresh []int // compiled features, ascending
	for i, f := range sh.features {
		st := e.Features[sh.featureKeys[i]]
		if ps != nil {
			j := i
			if l.featOld != nil {
				j = int(l.featOld[i])
			}
			if j >= 0 && ps.feats[j].f == f && ps.feats[j].st == st {
				kept[j] = true
				if l.featOld != nil {
					m.features[i], s.feats[i] = prev.features[j], ps.feats[j]
				}
				if l.segNew != nil {
					m.features[i].cands, candBuf = renumber(m.features[i].cands, s.feats[i].segOvs, l.segNew, sh.segIdx, candBuf)
					m.features[i].setStatic()
				}
				continue
			}
		}
		if borrowed {
			m.features, s.feats, borrowed = slices.Clone(m.features), slices.Clone(s.feats), false
		}
		m.features[i], s.feats[i] = compileFeature(e, f, st)
		m.features[i].cands = candidates(s.feats[i].segOvs, sh.segIdx)
		m.features[i].setStatic()
		fresh = append(fresh, i)
	}

	m.identityOverrides(prev, l, kept, fresh)
	if len(m.idOverrides) > 0 {
		m.idSlot = b.slot("$.identity.identifier")
	}
	s.slots = b.slots
	if len(m.slotNames) > nSlots {
		s.sparse = len(m.slotNames) > 2*m.usedSlots()+16
	}
	m.prepare()
	m.env = m.environmentResult(prev, l, kept, fresh)
	return m, nil
}

// environmentResult evaluates m without identity. The flags of features
// reused from prev are prev's when the same segments match.
func (m *Model) environmentResult(prev *Model, l *link, kept []bool, fresh []int) Result {
	st := m.compileState()
	r := Result{Segments: st.appendSegments(nil)}
	if prev == nil || !slices.EqualFunc(r.Segments, prev.env.Segments, func(a, b SegmentResult) bool { return a.Name == b.Name }) {
		r.Flags = st.appendFlags(make([]Flag, 0, len(m.features)))
		return r
	}
	if l.featOld == nil && len(fresh) == 0 {
		r.Flags = prev.env.Flags // the same flags
		return r
	}
	if l.featOld == nil {
		r.Flags = slices.Clone(prev.env.Flags)
		for _, i := range fresh {
			st.flag(i, &r.Flags[i])
		}
		return r
	}
	r.Flags = make([]Flag, len(m.features))
	for i := range r.Flags {
		if j := l.featOld[i]; j >= 0 && kept[j] {
			r.Flags[i] = prev.env.Flags[j]
		} else {
			st.flag(i, &r.Flags[i])
		}
	}
	return r
}

// identityOverrides sets m.idOverrides from the identity overrides of its
// features, in feature order; the first override of a feature for an
// identifier shadows later ones. With prev (related by l), the lists of
// identifiers whose overrides did not change are reused or renumbered:
// kept says which of prev's features m reuses, fresh lists m's features
// compiled anew.
func (m *Model) identityOverrides(prev *Model, l *link, kept []bool, fresh []int) {
	feats := m.src.feats
	// The fresh features' overrides, by identifier.
	var add map[string][]idOverride
	for _, i := range fresh {
		for _, o := range feats[i].idOvs {
			for _, id := range o.identifiers {
				if add == nil {
					add = map[string][]idOverride{}
				}
				list := add[id]
				if n := len(list); n > 0 && list[n-1].feature == i {
					continue
				}
				add[id] = append(list, idOverride{feature: i, ov: o.ov})
			}
		}
	}
	if prev == nil || len(prev.idOverrides) == 0 {
		m.idOverrides = add
		return
	}
	// merge renumbers the kept entries of an old list and merges in the
	// fresh ones.
	merge := func(old, fresh []idOverride) []idOverride {
		out := make([]idOverride, 0, len(old)+len(fresh))
		for _, o := range old {
			if !kept[o.feature] {
				continue
			}
			if l.featNew != nil {
				o.feature = int(l.featNew[o.feature])
			}
			for len(fresh) > 0 && fresh[0].feature < o.feature {
				out, fresh = append(out, fresh[0]), fresh[1:]
			}
			out = append(out, o)
		}
		return append(out, fresh...)
	}
	if l.featNew != nil {
		// Renumber every list.
		m.idOverrides = make(map[string][]idOverride, len(prev.idOverrides)+len(add))
		for id, old := range prev.idOverrides {
			if list := merge(old, add[id]); len(list) > 0 {
				m.idOverrides[id] = list
			}
		}
		for id, list := range add {
			if _, ok := prev.idOverrides[id]; !ok {
				m.idOverrides[id] = list
			}
		}
		return
	}
	// Same features: only the lists of identifiers with overrides in
	// features that were compiled anew or dropped change.
	m.idOverrides = maps.Clone(prev.idOverrides)
	done := map[string]bool{}
	changed := func(id string) {
		if done[id] {
			return
		}
		done[id] = true
		if list := merge(prev.idOverrides[id], add[id]); len(list) > 0 {
			m.idOverrides[id] = list
		} else {
			delete(m.idOverrides, id)
		}
	}
	for j, k := range kept {
		if !k {
			for _, o := range prev.src.feats[j].idOvs {
				for _, id := range o.identifiers {
					changed(id)
				}
			}
		}
	}
	for id := range add {
		changed(id)
	}
}

// compileFeature compiles feature f with its state st in environment e.
func compileFeature(e *flagrepo.Environment, f *flagrepo.Feature, st *flagrepo.FeatureState) (cfeature, featSource) {
	r := e.Resolve(f)
	ef := Feature{Key: strconv.FormatInt(f.ID, 10), Name: f.Key, Metadata: map[string]any{"id": f.ID}}
	cf := cfeature{
		key:      ef.Key,
		def:      Flag{Name: f.Key, Enabled: r.Enabled, Value: r.Value, Reason: "DEFAULT", Metadata: ef.Metadata},
		variants: compileVariants(variants(r.Weights)),
	}
	fs := featSource{f: f, st: st}
	if len(r.SegmentOverrides) > 0 {
		fs.segOvs = make([]segOverride, len(r.SegmentOverrides))
		for i := range r.SegmentOverrides {
			o := &r.SegmentOverrides[i]
			ov := segmentOverride(f, &r, o)
			fs.segOvs[i] = segOverride{
				segment: o.Segment,
				prio:    float64(o.Priority),
				ov:      compileOverride(&ov, &ef, "TARGETING_MATCH; segment="+o.Segment),
			}
		}
	}
	if len(r.IdentityOverrides) > 0 {
		fs.idOvs = make([]identOverride, len(r.IdentityOverrides))
		reason := "TARGETING_MATCH; segment=" + IdentityOverridesSegment
		for i := range r.IdentityOverrides {
			o := &r.IdentityOverrides[i]
			ov := identityOverride(f, &r, o)
			fs.idOvs[i] = identOverride{identifiers: o.Identifiers, ov: compileOverride(&ov, &ef, reason)}
			cf.hasIDOv = cf.hasIDOv || len(o.Identifiers) > 0
		}
	}
	return cf, fs
}

// candidates returns a feature's segment overrides as Compile orders them:
// by priority, then segment, then position. Overrides of unknown segments
// are left out.
func candidates(ovs []segOverride, segIdx map[string]int) []candidate {
	if len(ovs) == 0 {
		return nil
	}
	out := make([]candidate, 0, len(ovs))
	for _, o := range ovs {
		if si, ok := segIdx[o.segment]; ok {
			out = append(out, candidate{seg: si, prio: o.prio, ov: o.ov})
		}
	}
	slices.SortStableFunc(out, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.prio, b.prio), cmp.Compare(a.seg, b.seg))
	})
	return out
}

// renumber returns a reused feature's candidates with the segments
// renumbered (segNew maps old segment indexes to new ones), appended to buf
// when possible, and buf.
func renumber(cands []candidate, ovs []segOverride, segNew []int32, segIdx map[string]int, buf []candidate) ([]candidate, []candidate) {
	if len(cands) != len(ovs) {
		// Some overrides were of segments that did not exist.
		return candidates(ovs, segIdx), buf
	}
	if len(cands) == 0 {
		return nil, buf
	}
	start := len(buf)
	for _, c := range cands {
		if c.seg = int(segNew[c.seg]); c.seg < 0 {
			return candidates(ovs, segIdx), buf[:start]
		}
		buf = append(buf, c) // old and new indexes are in the same order
	}
	return buf[start:len(buf):len(buf)], buf
}

// usedSlots counts the slots the model's conditions and identity overrides
// read.
func (m *Model) usedSlots() int {
	used := make([]bool, len(m.slotNames))
	var walk func(rs []crule)
	walk = func(rs []crule) {
		for i := range rs {
			for j := range rs[i].conds {
				a := &rs[i].conds[j].acc
				if a.slot >= 0 && (a.kind == accTrait || a.kind == accTraitPath) {
					used[a.slot] = true
				}
				if a.lit >= 0 {
					used[a.lit] = true
				}
			}
			walk(rs[i].rules)
		}
	}
	for i := range m.segments {
		walk(m.segments[i].rules)
	}
	if m.idSlot >= 0 {
		used[m.idSlot] = true
	}
	n := 0
	for _, u := range used {
		if u {
			n++
		}
	}
	return n
}

func variants(ws []flagrepo.VariantWeight) []Variant {
	if len(ws) == 0 {
		return nil
	}
	out := make([]Variant, len(ws))
	for i, w := range ws {
		out[i] = Variant{Key: w.Variant.Key, Value: w.Variant.Value.Value, Weight: w.Weight, Priority: float64(w.Variant.ID)}
	}
	return out
}

func rules(rs []flagrepo.Rule) []Rule {
	if len(rs) == 0 {
		return nil
	}
	out := make([]Rule, len(rs))
	for i, r := range rs {
		out[i] = Rule{Type: r.Type, Rules: rules(r.Rules)}
		if len(r.Conditions) > 0 {
			out[i].Conditions = make([]Condition, len(r.Conditions))
			for j, c := range r.Conditions {
				out[i].Conditions[j] = Condition{Property: c.Property, Operator: c.Operator, Value: c.Value}
			}
		}
	}
	return out
}
