package evaluator

import (
	"cmp"
	"errors"
	"fmt"
	"github.com/gitflags/gitflags/flagrepo/condition"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Model is a compiled environment. It is immutable and safe for concurrent
// use. Results it returns share values and metadata with it; they must not
// be modified.
type Model struct {
	envKey, envName string
	features        []cfeature
	byName          map[string]int
	segments        []csegment
	slotNames       []string
	// idOverrides maps an identifier to its overrides, sorted by feature.
	idOverrides map[string][]idOverride
	// idSlot is the slot of a trait literally named "$.identity.identifier"
	// (it would win over the JSONPath in the identity overrides segment).
	idSlot   int32
	env      Result // evaluation without identity
	pool     sync.Pool
	nSegs    int
	idSegRes SegmentResult
	// src is what a model compiled from a repository snapshot keeps for the
	// next compile to reuse (see CompileSnapshot); nil for Compile.
	src *snapSource
}

type cfeature struct {
	key      string
	def      Flag // environment default, reason DEFAULT
	variants []cvariant
	cands    []candidate // segment overrides by ascending priority
	hasIDOv  bool
	static   bool // result never depends on the context
}

type cvariant struct {
	key    string
	value  any
	weight float64
	reason string
}

// cover is a compiled segment or identity override.
type cover struct {
	key      string // hashed for variants
	flag     Flag   // result without a split
	variants []cvariant
}

type candidate struct {
	seg  int
	prio float64
	ov   *cover
}

type idOverride struct {
	feature int
	ov      *cover
}

type csegment struct {
	key    string
	rules  []crule
	result SegmentResult
}

type ruleType uint8

const (
	ruleAll ruleType = iota
	ruleAny
	ruleNone
)

type crule struct {
	typ   ruleType
	conds []ccond
	rules []crule
}

type accKind uint8

const (
	accNone        accKind = iota // never a value
	accEmpty                      // empty property
	accTrait                      // plain trait, by slot
	accConst                      // $.environment.*
	accIdentifier                 // $.identity.identifier
	accIdentityKey                // $.identity.key
	accTraitPath                  // $.identity.traits.<name>...
)

type accessor struct {
	kind  accKind
	slot  int32 // accTrait, accTraitPath: slot of the trait
	lit   int32 // JSONPath kinds: slot of a trait literally named like the property, or -1
	konst cval
	rest  []pathStep // accTraitPath: steps below the trait
}

type ccond struct {
	op  opcode
	acc accessor
	v   string

	vBool    bool
	vInt     int64  // when vIntOK and !vIntBig
	vIntText string // when vIntOK: condition.Int's canonical decimal
	vIntBig  bool   // outside the int64 range
	vIntOK   bool
	vFloat   float64
	vFloatOK bool

	semver bool // value ends with :semver
	sv     condition.Version
	svOK   bool

	re *regexp.Regexp

	modDiv, modRem float64
	modOK          bool

	inList []string
	inSet  map[string]struct{}

	pct   float64
	pctOK bool
}

// builder holds compile-time state.
type builder struct {
	envKey, envName string // for $.environment.key and $.environment.name
	m               *Model
	slots           map[string]int32 // trait name -> slot, as in m.slotNames
}

func (b *builder) slot(name string) int32 {
	if s, ok := b.slots[name]; ok {
		return s
	}
	s := int32(len(b.m.slotNames))
	b.slots[name] = s
	b.m.slotNames = append(b.m.slotNames, name)
	return s
}

var identityOverridesMetadata = map[string]any{"source": "identity_override"}

// Compile validates and compiles env. It fails on duplicate feature names,
// unknown rule types and REGEX patterns that condition.Regex rejects; any
// other odd condition value makes that condition false at evaluation, as
// in the engine (see condition.Check).
func Compile(env *Environment) (*Model, error) {
	if env == nil {
		return nil, errors.New("evaluator: nil environment")
	}
	m := newModel(env.Key, env.Name)
	m.byName = make(map[string]int, len(env.Features))
	b := m.newBuilder()

	m.features = make([]cfeature, len(env.Features))
	for i := range env.Features {
		f := &env.Features[i]
		if _, dup := m.byName[f.Name]; dup {
			return nil, fmt.Errorf("feature %q: duplicate name", f.Name)
		}
		m.byName[f.Name] = i
		m.features[i] = cfeature{
			key:      f.Key,
			def:      Flag{Name: f.Name, Enabled: f.Enabled, Value: f.Value, Reason: "DEFAULT", Metadata: f.Metadata},
			variants: compileVariants(f.Variants),
		}
	}

	m.segments = make([]csegment, len(env.Segments))
	for si := range env.Segments {
		s := &env.Segments[si]
		cs := csegment{key: s.Key, result: SegmentResult{Name: s.Name, Metadata: s.Metadata}}
		var err error
		if cs.rules, err = b.rules(s.Rules, s.Name, "rule"); err != nil {
			return nil, err
		}
		m.segments[si] = cs
		reason := "TARGETING_MATCH; segment=" + s.Name
		for oi := range s.Overrides {
			o := &s.Overrides[oi]
			fi, ok := m.byName[o.Name]
			if !ok {
				continue
			}
			prio := math.Inf(1)
			if o.Priority != nil && !math.IsNaN(*o.Priority) {
				prio = *o.Priority
			}
			m.features[fi].cands = append(m.features[fi].cands, candidate{
				seg: si, prio: prio, ov: compileOverride(o, &env.Features[fi], reason),
			})
		}
	}
	for i := range m.features {
		slices.SortStableFunc(m.features[i].cands, func(a, b candidate) int { return cmp.Compare(a.prio, b.prio) })
	}

	if len(env.IdentityOverrides) > 0 {
		m.idOverrides = make(map[string][]idOverride, len(env.IdentityOverrides))
		reason := "TARGETING_MATCH; segment=" + IdentityOverridesSegment
		for ident, ovs := range env.IdentityOverrides {
			list := make([]idOverride, 0, len(ovs))
			for oi := range ovs {
				o := &ovs[oi]
				if fi, ok := m.byName[o.Name]; ok {
					list = append(list, idOverride{feature: fi, ov: compileOverride(o, &env.Features[fi], reason)})
				}
			}
			// By feature; the first override of a feature shadows later ones.
			slices.SortStableFunc(list, func(a, b idOverride) int { return cmp.Compare(a.feature, b.feature) })
			list = slices.CompactFunc(list, func(a, b idOverride) bool { return a.feature == b.feature })
			if len(list) > 0 {
				for _, io := range list {
					m.features[io.feature].hasIDOv = true
				}
				m.idOverrides[ident] = slices.Clip(list)
			}
		}
		if len(m.idOverrides) > 0 {
			m.idSlot = b.slot("$.identity.identifier")
		}
	}
	for i := range m.features {
		m.features[i].setStatic()
	}
	m.finish()
	return m, nil
}

func newModel(envKey, envName string) *Model {
	return &Model{
		envKey:   envKey,
		envName:  envName,
		idSlot:   -1,
		idSegRes: SegmentResult{Name: IdentityOverridesSegment, Metadata: identityOverridesMetadata},
	}
}

func (m *Model) newBuilder() *builder {
	return &builder{envKey: m.envKey, envName: m.envName, m: m, slots: map[string]int32{}}
}

// setStatic records whether the feature's result never depends on the
// context.
func (f *cfeature) setStatic() {
	f.static = len(f.cands) == 0 && len(f.variants) == 0 && !f.hasIDOv
}

// finish completes a model whose features, segments, identity overrides and
// slots are in place: it sets up the evaluation state pool and precomputes
// the evaluation without identity.
func (m *Model) finish() {
	m.prepare()
	st := m.compileState()
	m.env = Result{Flags: st.appendFlags(make([]Flag, 0, len(m.features))), Segments: st.appendSegments(nil)}
}

// prepare is finish but for the evaluation without identity. It does not
// modify the features, which may be shared with another model.
func (m *Model) prepare() {
	m.nSegs = len(m.segments)
	nSegs, nSlots := m.nSegs, len(m.slotNames)
	m.pool.New = func() any {
		return &evalState{seg: make([]uint8, nSegs), slots: make([]cval, nSlots)}
	}
}

// compileState returns a state for evaluating without identity while
// compiling. It does not come from the pool: a pool in use stays reachable
// until the second garbage collection after its last use, and with it the
// whole model, which would keep every model ever compiled in memory for a
// while, a lot of it for large environments compiled often.
func (m *Model) compileState() *evalState {
	st := m.pool.New().(*evalState)
	st.m = m
	return st
}

func compileVariants(vs []Variant) []cvariant {
	if len(vs) == 0 {
		return nil
	}
	sorted := slices.Clone(vs)
	slices.SortStableFunc(sorted, func(a, b Variant) int { return cmp.Compare(a.Priority, b.Priority) })
	out := make([]cvariant, len(sorted))
	for i, v := range sorted {
		out[i] = cvariant{key: v.Key, value: v.Value, weight: v.Weight, reason: "SPLIT; weight=" + formatWeight(v.Weight, v.WeightText)}
	}
	return out
}

func compileOverride(o *Override, f *Feature, reason string) *cover {
	key := o.Key
	if key == "" {
		key = f.Key
	}
	md := o.Metadata
	if md == nil {
		md = f.Metadata
	}
	return &cover{
		key:      key,
		flag:     Flag{Name: f.Name, Enabled: o.Enabled, Value: o.Value, Reason: reason, Metadata: md},
		variants: compileVariants(o.Variants),
	}
}

func (b *builder) rules(rs []Rule, segment, path string) ([]crule, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	out := make([]crule, len(rs))
	for i := range rs {
		r := &rs[i]
		p := fmt.Sprintf("%s %d", path, i)
		switch r.Type {
		case RuleAll:
			out[i].typ = ruleAll
		case RuleAny:
			out[i].typ = ruleAny
		case RuleNone:
			out[i].typ = ruleNone
		default:
			return nil, fmt.Errorf("segment %q %s: unknown rule type %q", segment, p, r.Type)
		}
		if len(r.Conditions) > 0 {
			out[i].conds = make([]ccond, len(r.Conditions))
			for ci := range r.Conditions {
				c, err := b.condition(&r.Conditions[ci])
				if err != nil {
					return nil, fmt.Errorf("segment %q %s condition %d: %w", segment, p, ci, err)
				}
				out[i].conds[ci] = c
			}
		}
		sub, err := b.rules(r.Rules, segment, p+" sub-rule")
		if err != nil {
			return nil, err
		}
		out[i].rules = sub
	}
	return out, nil
}

func (b *builder) condition(c *Condition) (ccond, error) {
	cc := ccond{op: lookupOp(c.Operator), v: c.Value, acc: b.accessor(c.Property)}
	v := c.Value
	switch cc.op {
	case opRegex:
		re, err := condition.Regex(v)
		if err != nil {
			return cc, fmt.Errorf("REGEX %q: %w", v, err)
		}
		cc.re = re
	case opModulo:
		cc.modDiv, cc.modRem, cc.modOK = condition.Modulo(v)
		if cc.modDiv == 0 {
			cc.modOK = false
		}
	case opPercentageSplit:
		cc.pct, cc.pctOK = condition.Float(v)
	case opIn:
		cc.inList = condition.InList(v)
		if len(cc.inList) > 8 {
			cc.inSet = make(map[string]struct{}, len(cc.inList))
			for _, s := range cc.inList {
				cc.inSet[s] = struct{}{}
			}
			cc.inList = nil
		}
	default:
		if cc.op.isComparison() {
			cc.vBool = v != "False" && v != "false"
			if cc.vIntText, cc.vIntOK = condition.Int(v); cc.vIntOK {
				var err error
				cc.vInt, err = strconv.ParseInt(cc.vIntText, 10, 64)
				cc.vIntBig = err != nil
			}
			cc.vFloat, cc.vFloatOK = condition.Float(v)
			if condition.IsSemver(v) {
				cc.semver = true
				cc.sv, cc.svOK = condition.ParseVersion(strings.TrimSuffix(v, condition.SemverSuffix))
			}
		}
	}
	return cc, nil
}

func (b *builder) accessor(prop string) accessor {
	if prop == "" {
		return accessor{kind: accEmpty, lit: -1}
	}
	if !strings.HasPrefix(prop, "$.") && !strings.HasPrefix(prop, "$[") {
		return accessor{kind: accTrait, slot: b.slot(prop), lit: -1}
	}
	steps, singular, ok := parseJSONPath(prop)
	if !ok {
		return accessor{kind: accTrait, slot: b.slot(prop), lit: -1}
	}
	a := accessor{kind: accNone, lit: b.slot(prop), slot: -1}
	if !singular || len(steps) < 2 || steps[0].isIndex || steps[1].isIndex {
		return a
	}
	switch steps[0].name {
	case "environment":
		if len(steps) == 2 {
			switch steps[1].name {
			case "key":
				a.kind, a.konst = accConst, coerceString(b.envKey)
			case "name":
				a.kind, a.konst = accConst, coerceString(b.envName)
			}
		}
	case "identity":
		switch {
		case len(steps) == 2 && steps[1].name == "identifier":
			a.kind = accIdentifier
		case len(steps) == 2 && steps[1].name == "key":
			a.kind = accIdentityKey
		case len(steps) >= 3 && steps[1].name == "traits" && !steps[2].isIndex:
			a.kind, a.slot, a.rest = accTraitPath, b.slot(steps[2].name), steps[3:]
		}
	}
	return a
}
