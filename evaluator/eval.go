package evaluator

import (
	"github.com/gitflags/gitflags/flagrepo/condition"
	"strconv"
	"strings"
)

// evalState is the per-evaluation scratch space, pooled per Model.
type evalState struct {
	m       *Model
	id      *Identity
	seg     []uint8 // 0 unknown, 1 matches, 2 does not
	slots   []cval  // coerced trait values by slot
	ident   cval    // coerced identifier
	scratch cval    // a value computed for one condition (value's result)
	idKey   string  // identity key, once built
	hasK    bool
	idovs   []idOverride
	// the last semantic version parsed (see version)
	svStr       string
	sv          condition.Version
	svOK, svSet bool
}

func (m *Model) getState(id *Identity) *evalState {
	st := m.pool.Get().(*evalState)
	st.m, st.id = m, id
	st.ident = cval{}
	st.idKey, st.hasK = "", false
	st.idovs = nil
	if id != nil && m.idOverrides != nil {
		st.idovs = st.identityOverrides()
	}
	return st
}

func (m *Model) putState(st *evalState) {
	clear(st.seg)
	clear(st.slots)
	st.m, st.id, st.idovs = nil, nil, nil
	st.idKey = ""
	st.ident, st.scratch = cval{}, cval{}
	st.svStr, st.sv, st.svOK, st.svSet = "", condition.Version{}, false, false
	m.pool.Put(st)
}

// Evaluate returns every flag, in feature order, and the matched segments
// for id; a nil id evaluates without an identity and returns the
// precomputed result, shared by all callers.
func (m *Model) Evaluate(id *Identity) Result {
	if id == nil {
		return m.env
	}
	st := m.getState(id)
	r := Result{Flags: st.appendFlags(make([]Flag, 0, len(m.features)))}
	r.Segments = st.appendSegments(nil)
	m.putState(st)
	return r
}

// AppendFlags appends every flag for id, in feature order, to dst and
// returns the extended slice. With a dst of sufficient capacity it does not
// allocate in the common case; it is the hot path for serving all flags.
func (m *Model) AppendFlags(dst []Flag, id *Identity) []Flag {
	if id == nil {
		return append(dst, m.env.Flags...)
	}
	st := m.getState(id)
	dst = st.appendFlags(dst)
	m.putState(st)
	return dst
}

// EnvironmentFlags returns the flags evaluated without an identity,
// precomputed by Compile. The slice is shared and must not be modified.
func (m *Model) EnvironmentFlags() []Flag { return m.env.Flags }

// Flag evaluates the flag named name for id (nil: no identity). ok is false
// when the environment has no such feature.
func (m *Model) Flag(name string, id *Identity) (f Flag, ok bool) {
	fi, ok := m.byName[name]
	if !ok {
		return Flag{}, false
	}
	cf := &m.features[fi]
	if cf.static {
		return cf.def, true
	}
	if id == nil {
		return m.env.Flags[fi], true
	}
	st := m.getState(id)
	st.flag(fi, &f)
	m.putState(st)
	return f, true
}

// Len returns the number of features.
func (m *Model) Len() int { return len(m.features) }

func (st *evalState) appendFlags(dst []Flag) []Flag {
	n := len(dst)
	dst = growFlags(dst, len(st.m.features))
	for i := range st.m.features {
		st.flag(i, &dst[n+i])
	}
	return dst
}

func growFlags(dst []Flag, k int) []Flag {
	n := len(dst)
	if cap(dst)-n < k {
		nd := make([]Flag, n, n+k)
		copy(nd, dst)
		dst = nd
	}
	return dst[:n+k]
}

func (st *evalState) appendSegments(dst []SegmentResult) []SegmentResult {
	for i := range st.m.segments {
		if st.segMatch(i) {
			dst = append(dst, st.m.segments[i].result)
		}
	}
	if len(st.idovs) > 0 {
		dst = append(dst, st.m.idSegRes)
	}
	return dst
}

// identityOverrides finds the identity's overrides: the identity overrides
// segment's rule is "$.identity.identifier IN [identifiers]".
func (st *evalState) identityOverrides() []idOverride {
	m := st.m
	cv := st.trait(m.idSlot)
	if !cv.isSet() {
		cv = st.identifier()
	}
	switch cv.k {
	case kStr, kBigInt:
		return m.idOverrides[cv.s]
	case kInt:
		var buf [24]byte
		return m.idOverrides[string(strconv.AppendInt(buf[:0], cv.i, 10))]
	}
	return nil
}

func (st *evalState) flag(fi int, out *Flag) {
	f := &st.m.features[fi]
	if f.static {
		*out = f.def
		return
	}
	if f.hasIDOv {
		for _, io := range st.idovs {
			if io.feature == fi {
				st.override(io.ov, out)
				return
			}
		}
	}
	for i := range f.cands {
		c := &f.cands[i]
		if st.segMatch(c.seg) {
			st.override(c.ov, out)
			return
		}
	}
	if st.id != nil && len(f.variants) > 0 {
		st.split(f.key, f.variants, &f.def, out)
		return
	}
	*out = f.def
}

func (st *evalState) override(ov *cover, out *Flag) {
	if st.id != nil && len(ov.variants) > 0 {
		st.split(ov.key, ov.variants, &ov.flag, out)
		return
	}
	*out = ov.flag
}

// split picks the variant for the identity.
func (st *evalState) split(key string, vs []cvariant, base *Flag, out *Flag) {
	var arr [160]byte
	b := append(arr[:0], key...)
	b = append(b, ',')
	b = st.appendIdentityKey(b)
	p := percentage(b)
	start := 0.0
	for i := range vs {
		v := &vs[i]
		limit := v.weight + start
		if start <= p && p < limit {
			*out = *base
			out.Value, out.Reason, out.Variant = v.value, v.reason, v.key
			return
		}
		start = limit
	}
	*out = *base
	out.Variant = ControlVariant
}

func (st *evalState) appendIdentityKey(b []byte) []byte {
	if st.id.Key != "" {
		return append(b, st.id.Key...)
	}
	b = append(b, st.m.envKey...)
	b = append(b, '_')
	return append(b, st.id.Identifier...)
}

func (st *evalState) identityKey() string {
	if !st.hasK {
		if st.id.Key != "" {
			st.idKey = st.id.Key
		} else {
			st.idKey = st.m.envKey + "_" + st.id.Identifier
		}
		st.hasK = true
	}
	return st.idKey
}

// noValue is what a missing value resolves to. The pointers that
// identifier, trait and value return are read-only.
var noValue = cval{k: kNone}

func (st *evalState) identifier() *cval {
	if st.id == nil {
		return &noValue
	}
	if st.ident.k == kUnresolved {
		st.ident = coerceString(st.id.Identifier)
	}
	return &st.ident
}

func (st *evalState) trait(slot int32) *cval {
	if slot < 0 {
		return &noValue
	}
	v := &st.slots[slot]
	if v.k == kUnresolved {
		if st.id == nil || len(st.id.Traits) == 0 {
			v.k = kNone
		} else if raw, ok := st.id.Traits[st.m.slotNames[slot]]; ok {
			*v = coerceAny(raw)
		} else {
			v.k = kNone
		}
	}
	return v
}

// value resolves a condition's context value. The result stays valid until
// the next call of value.
func (st *evalState) value(a *accessor) *cval {
	if a.lit >= 0 {
		if v := st.trait(a.lit); v.isSet() {
			return v
		}
	}
	switch a.kind {
	case accTrait:
		return st.trait(a.slot)
	case accConst:
		return &a.konst
	case accIdentifier:
		return st.identifier()
	case accIdentityKey:
		if st.id == nil {
			return &noValue
		}
		st.scratch = coerceString(st.identityKey())
		return &st.scratch
	case accTraitPath:
		if len(a.rest) == 0 {
			v := st.trait(a.slot)
			if v.obj {
				return &noValue
			}
			return v
		}
		if st.id == nil {
			return &noValue
		}
		raw, ok := st.id.Traits[st.m.slotNames[a.slot]]
		if !ok {
			return &noValue
		}
		for _, s := range a.rest {
			if raw, ok = step(raw, s); !ok {
				return &noValue
			}
		}
		if !isPrimitive(raw) {
			return &noValue
		}
		st.scratch = coerceAny(raw)
		return &st.scratch
	}
	return &noValue
}

// step applies one JSONPath selector to a decoded JSON value.
func step(x any, s pathStep) (any, bool) {
	switch t := x.(type) {
	case map[string]any:
		if s.isIndex {
			return nil, false
		}
		v, ok := t[s.name]
		return v, ok
	case []any:
		if !s.isIndex {
			return nil, false
		}
		i := s.index
		if i < 0 {
			i += int64(len(t))
		}
		if i < 0 || i >= int64(len(t)) {
			return nil, false
		}
		return t[i], true
	}
	return nil, false
}

func (st *evalState) segMatch(si int) bool {
	switch st.seg[si] {
	case 1:
		return true
	case 2:
		return false
	}
	s := &st.m.segments[si]
	ok := len(s.rules) > 0
	for i := range s.rules {
		if !st.rule(&s.rules[i], s.key) {
			ok = false
			break
		}
	}
	if ok {
		st.seg[si] = 1
	} else {
		st.seg[si] = 2
	}
	return ok
}

func (st *evalState) rule(r *crule, segKey string) bool {
	if len(r.conds) > 0 {
		switch r.typ {
		case ruleAll:
			for i := range r.conds {
				if !st.cond(&r.conds[i], segKey) {
					return false
				}
			}
		case ruleAny:
			hit := false
			for i := range r.conds {
				if st.cond(&r.conds[i], segKey) {
					hit = true
					break
				}
			}
			if !hit {
				return false
			}
		case ruleNone:
			for i := range r.conds {
				if st.cond(&r.conds[i], segKey) {
					return false
				}
			}
		}
	}
	if len(r.rules) > 0 {
		switch r.typ {
		case ruleAll:
			for i := range r.rules {
				if !st.rule(&r.rules[i], segKey) {
					return false
				}
			}
		case ruleAny:
			for i := range r.rules {
				if st.rule(&r.rules[i], segKey) {
					return true
				}
			}
			return false
		case ruleNone:
			for i := range r.rules {
				if st.rule(&r.rules[i], segKey) {
					return false
				}
			}
		}
	}
	return true
}

func (st *evalState) cond(c *ccond, segKey string) bool {
	if c.op == opPercentageSplit {
		return st.percentageSplit(c, segKey)
	}
	cv := st.value(&c.acc)
	switch c.op {
	case opIsSet:
		return cv.isSet()
	case opIsNotSet:
		return !cv.isSet()
	case opIn:
		return c.in(cv)
	}
	if !cv.isSet() {
		return false
	}
	switch c.op {
	case opNotContains:
		return cv.k == kStr && !strings.Contains(cv.s, c.v)
	case opRegex:
		if cv.k == kStr {
			return c.re.MatchString(cv.s)
		}
		var buf [40]byte
		return c.re.Match(appendPyStr(buf[:0], cv))
	case opModulo:
		// Python's bool is an int: True % 2.0 is 1.0.
		if !c.modOK || !cv.isNumber() && cv.k != kBool {
			return false
		}
		x := cv.asFloat()
		if cv.k == kBool {
			x = float64(b2i(cv.b))
		}
		return condition.Mod(x, c.modDiv) == c.modRem
	case opUnknown:
		return false
	}
	if c.semver && cv.k == kStr {
		if !c.svOK || c.op == opContains {
			return false
		}
		v, ok := st.version(cv.s)
		return ok && cmpOp(c.op, v.Compare(c.sv))
	}
	return c.compare(cv)
}

// version parses s as a semantic version, remembering the last string it
// parsed: the semver conditions of a repository mostly read one trait (the
// application's version), whose value is then parsed once per evaluation.
func (st *evalState) version(s string) (condition.Version, bool) {
	if !st.svSet || st.svStr != s {
		st.svStr, st.svSet = s, true
		st.sv, st.svOK = condition.ParseVersion(s)
	}
	return st.sv, st.svOK
}

func (st *evalState) percentageSplit(c *ccond, segKey string) bool {
	if !c.pctOK {
		return false
	}
	var arr [160]byte
	b := append(arr[:0], segKey...)
	b = append(b, ',')
	if c.acc.kind == accEmpty {
		if st.id == nil {
			return false
		}
		b = st.appendIdentityKey(b)
	} else {
		cv := st.value(&c.acc)
		if !cv.isSet() {
			return false
		}
		b = appendPyStr(b, cv)
	}
	return percentage(b) <= c.pct
}

func (c *ccond) in(cv *cval) bool {
	var buf [24]byte
	var s []byte
	switch cv.k {
	case kStr, kBigInt:
		return c.inContains(cv.s)
	case kInt:
		s = strconv.AppendInt(buf[:0], cv.i, 10)
	default:
		return false
	}
	if c.inSet != nil {
		_, ok := c.inSet[string(s)]
		return ok
	}
	for _, e := range c.inList {
		if e == string(s) {
			return true
		}
	}
	return false
}

func (c *ccond) inContains(s string) bool {
	if c.inSet != nil {
		_, ok := c.inSet[s]
		return ok
	}
	for _, e := range c.inList {
		if e == s {
			return true
		}
	}
	return false
}

// compare implements the typed comparison operators: the condition value is
// cast to the context value's type (or both are parsed as semantic versions)
// and compared; a failed cast is false.
func (c *ccond) compare(cv *cval) bool {
	switch cv.k {
	case kStr: // semver conditions on strings are cond's
		if c.op == opContains {
			return strings.Contains(cv.s, c.v)
		}
		return cmpOp(c.op, strings.Compare(cv.s, c.v))
	case kBool:
		if c.op == opContains {
			return false
		}
		return cmpOp(c.op, cmpInt(b2i(cv.b), b2i(c.vBool)))
	case kInt:
		if c.op == opContains || !c.vIntOK {
			return false
		}
		if c.vIntBig { // cv is within int64, v outside it
			if c.vIntText[0] == '-' {
				return cmpOp(c.op, 1)
			}
			return cmpOp(c.op, -1)
		}
		return cmpOp(c.op, cmpInt(cv.i, c.vInt))
	case kBigInt:
		if c.op == opContains || !c.vIntOK {
			return false
		}
		return cmpOp(c.op, condition.CompareInts(cv.s, c.vIntText))
	case kFloat:
		if c.op == opContains || !c.vFloatOK {
			return false
		}
		return floatOp(c.op, cv.f, c.vFloat)
	}
	return false
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpOp(op opcode, r int) bool {
	switch op {
	case opEqual:
		return r == 0
	case opNotEqual:
		return r != 0
	case opGreaterThan:
		return r > 0
	case opGreaterThanInclusive:
		return r >= 0
	case opLessThan:
		return r < 0
	case opLessThanInclusive:
		return r <= 0
	}
	return false
}

func floatOp(op opcode, a, b float64) bool {
	switch op {
	case opEqual:
		return a == b
	case opNotEqual:
		return a != b
	case opGreaterThan:
		return a > b
	case opGreaterThanInclusive:
		return a >= b
	case opLessThan:
		return a < b
	case opLessThanInclusive:
		return a <= b
	}
	return false
}
