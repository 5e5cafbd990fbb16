package flagsmithdoc

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/flagrepo/condition"
)

// Limits of the repository format (schemas/*.schema.json).
const (
	maxRules        = 100 // rules per list
	maxConditions   = 100 // conditions per rule
	maxRuleDepth    = 16
	maxPropertyLen  = 1000
	maxPriority     = 1_000_000
	maxIdentifiers  = 10_000 // per identity override
	maxNameLen      = 200
	maxVariants     = 100
	maxVariantKey   = 64 // for keys made from values
	controlVariant  = "control"
	envKeyFallback  = "environment"
	segmentFallback = "segment"
)

// overrideRef is an imported segment override's source.
type overrideRef struct {
	st  *stateSrc
	seg *segment
}

// identRef is an imported identity override's source: one identifier's
// state of one feature.
type identRef struct {
	id *identSrc
	st *stateSrc
}

// envPlan is what an environment becomes.
type envPlan struct {
	e   *envSrc
	key string
	bad bool
	// segment overrides and identity overrides by feature, as imported
	segOvs map[*feature][]overrideRef
	idOvs  map[*feature][]identRef
}

// plan holds the decisions of a conversion, revised when validation finds
// something to leave out.
type plan struct {
	envs         []*envPlan
	droppedOv    map[*stateSrc]bool
	droppedIdent map[identRef]bool
}

func what(f *feature) string { return fmt.Sprintf("feature %q", f.name) }

func (g *segment) what() string { return fmt.Sprintf("segment %q (id %d)", g.name, g.id) }

func envWhat(e *envSrc) string { return fmt.Sprintf("environment %q", e.name) }

func (c *converter) dropFeature(f *feature, src, ptr, format string, args ...any) {
	c.iss.add(src, ptr, what(f), format+"; the feature is left out", args...)
	f.bad = true
}

// checkFeatures leaves out features the repository cannot hold.
func (c *converter) checkFeatures() {
	folded := map[string]*feature{}
	for _, f := range c.features {
		if len(f.inEnv) == 0 {
			c.dropFeature(f, f.src.src, f.ptr, "it is only in overrides, in no environment's feature_states (the engine ignores overrides of features an environment does not have)")
			continue
		}
		if !validKey(f.name) {
			c.dropFeature(f, f.src.src, f.ptr+"/name", "its name is not a valid gitflags key (letters, digits, '_', '.' and '-', starting with a letter or digit, at most %d characters), and SDKs ask for flags by name, so it cannot be renamed", flagrepo.MaxKeyLength)
			continue
		}
		low := strings.ToLower(f.name)
		if other := folded[low]; other != nil {
			c.dropFeature(f, f.src.src, f.ptr+"/name", "its name differs from feature %q only in letter case: the files features/%s.json and features/%s.json would collide on case-insensitive file systems", other.name, f.name, other.name)
			continue
		}
		folded[low] = f
		if len(f.options) > maxVariants {
			c.dropFeature(f, f.src.src, f.ptr, "it has %d multivariate options; gitflags allows %d", len(f.options), maxVariants)
			continue
		}
		for _, o := range f.options {
			if _, bad := o.value.(badValue); bad {
				f.bad = true // reported when read
			}
		}
		if f.bad {
			continue
		}
		for _, e := range c.envs {
			if st := f.inEnv[e]; st != nil {
				if st.bad != "" {
					c.dropFeature(f, e.src, st.ptr+"/feature_state_value", "its value: %s", st.bad)
					break
				}
				if why := c.checkSplit(f, st); why != "" {
					c.dropFeature(f, e.src, st.ptr+"/multivariate_feature_state_values", "%s", why)
					break
				}
			}
		}
	}
}

// checkSplit says why a state's multivariate values cannot be imported.
func (c *converter) checkSplit(f *feature, st *stateSrc) string {
	seen := map[int64]bool{}
	total := 0.0
	for _, m := range st.mv {
		if seen[m.optID] {
			return fmt.Sprintf("option %d has two values in one split", m.optID)
		}
		seen[m.optID] = true
		if !(m.weight >= 0 && m.weight <= 100) {
			return fmt.Sprintf("percentage_allocation %s is outside 0 to 100", m.weightText)
		}
		total += m.weight
	}
	if total > 100+1e-9 {
		return fmt.Sprintf("the split's percentage allocations add up to %s%%, more than 100%%", strconv.FormatFloat(total, 'f', -1, 64))
	}
	return ""
}

func validKey(k string) bool {
	return len(k) <= flagrepo.MaxKeyLength && flagrepo.KeyPattern.MatchString(k)
}

// checkSegments leaves out segments whose rules the repository cannot hold
// or would evaluate differently.
func (c *converter) checkSegments() {
	for _, g := range c.segments {
		if len(g.rules) == 0 {
			c.iss.add(g.src.src, g.ptr+"/rules", g.what(), "it has no rules, so Flagsmith matches no one with it, and a gitflags segment needs at least one rule; the segment and its overrides are left out")
			g.bad = true
			continue
		}
		if len(g.rules) > maxRules {
			c.iss.add(g.src.src, g.ptr+"/rules", g.what(), "it has %d rules; gitflags allows %d; the segment and its overrides are left out", len(g.rules), maxRules)
			g.bad = true
			continue
		}
		for i := range g.rules {
			if ptr, why := checkRule(&g.rules[i], ptrTo(g.ptr, "rules", i), 1); why != "" {
				c.iss.add(g.src.src, ptr, g.what(), "%s; the segment and its overrides are left out", why)
				g.bad = true
				break
			}
		}
	}
}

// checkRule returns where and why a rule cannot be imported.
func checkRule(r *ruleSrc, ptr string, depth int) (string, string) {
	switch {
	case r.typ != "ALL" && r.typ != "ANY" && r.typ != "NONE":
		return ptr + "/type", fmt.Sprintf("rule type %q is not supported (gitflags knows ALL, ANY and NONE)", r.typ)
	case depth > maxRuleDepth:
		return ptr, fmt.Sprintf("rules are nested more than %d deep", maxRuleDepth)
	case len(r.conds) > maxConditions:
		return ptr + "/conditions", fmt.Sprintf("the rule has %d conditions; gitflags allows %d", len(r.conds), maxConditions)
	case len(r.rules) > maxRules:
		return ptr + "/rules", fmt.Sprintf("the rule has %d sub-rules; gitflags allows %d", len(r.rules), maxRules)
	}
	for i, cd := range r.conds {
		if why := checkCondition(cd); why != "" {
			return ptrTo(ptr, "conditions", i), why
		}
	}
	for i := range r.rules {
		if p, why := checkRule(&r.rules[i], ptrTo(ptr, "rules", i), depth+1); why != "" {
			return p, why
		}
	}
	return "", ""
}

// checkCondition says why a condition cannot be imported, or "".
func checkCondition(cd condSrc) string {
	known := false
	for _, op := range condition.Operators {
		if op == cd.op {
			known = true
		}
	}
	if !known {
		return fmt.Sprintf("operator %q is not supported by gitflags (it knows %s)", cd.op, strings.Join(condition.Operators, ", "))
	}
	p := cd.prop
	switch {
	case p == "" && cd.op != "PERCENTAGE_SPLIT":
		return fmt.Sprintf("%s condition without a property: Flagsmith's engine reads the trait named \"\" for it, and gitflags needs a property (only PERCENTAGE_SPLIT may have none)", cd.op)
	case len(p) > maxPropertyLen:
		return fmt.Sprintf("the property is %d bytes long; gitflags allows %d", len(p), maxPropertyLen)
	case strings.HasPrefix(p, "$["):
		return fmt.Sprintf("property %q: Flagsmith's engine reads it as a trait name, gitflags as a JSONPath", p)
	case strings.HasPrefix(p, "$.") && !safeJSONPath(p):
		return fmt.Sprintf("JSONPath property %q: gitflags and Flagsmith's engine may read it differently; gitflags imports $.identity.identifier, $.identity.key, $.environment.key, $.environment.name and $.identity.traits.<name>", p)
	}
	if cd.value == nil {
		if cd.op == "IS_SET" || cd.op == "IS_NOT_SET" {
			return ""
		}
		return fmt.Sprintf("%s condition without a value (Flagsmith's engine compares with the text \"None\"); gitflags needs a value", cd.op)
	}
	if err := condition.Check(cd.op, *cd.value); err != nil {
		return err.Error()
	}
	return ""
}

// safeJSONPath reports whether a "$." property reads the same in gitflags
// and in Flagsmith's engine: a path to a member of the environment or the
// identity, or to a trait named by a JSONPath member-name shorthand.
func safeJSONPath(p string) bool {
	switch p {
	case "$.identity.identifier", "$.identity.key", "$.environment.key", "$.environment.name":
		return true
	}
	name, ok := strings.CutPrefix(p, "$.identity.traits.")
	if !ok || name == "" {
		return false
	}
	for i, ch := range name {
		switch {
		case ch == '_', ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z':
		case ch >= '0' && ch <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkOrganisation reports settings of the organisation gitflags cannot keep.
func (c *converter) checkOrganisation() {
	for _, e := range c.envs {
		if e.project != nil && e.project.org != nil && e.project.org.stopServingFlags {
			c.iss.add(e.src, e.project.org.ptr+"/stop_serving_flags", fmt.Sprintf("organisation %q", e.project.org.name), "Flagsmith stops serving flags for this organisation (stop_serving_flags); gitflags has no such setting and serves them")
			return
		}
	}
}

// splitRef is a state whose split hashes identities: an environment's
// default (seg nil) or a segment override's.
type splitRef struct {
	e   *envSrc
	seg *segment
	st  *stateSrc
}

func hasSplit(st *stateSrc) bool {
	for _, m := range st.mv {
		if m.weight > 0 {
			return true
		}
	}
	return false
}

func (s splitRef) where() string {
	if s.seg == nil {
		return fmt.Sprintf("in environment %q", s.e.name)
	}
	return fmt.Sprintf("in the override of segment %q in environment %q", s.seg.name, s.e.name)
}

// splits lists f's imported states with a split, environments in source
// order, each environment's default before its segment overrides.
func (c *converter) splits(p *plan, f *feature) []splitRef {
	var out []splitRef
	for _, ep := range p.envs {
		if ep.bad {
			continue
		}
		if st := f.inEnv[ep.e]; st != nil && hasSplit(st) {
			out = append(out, splitRef{e: ep.e, st: st})
		}
		for _, o := range ep.segOvs[f] {
			if hasSplit(o.st) {
				out = append(out, splitRef{e: ep.e, seg: o.seg, st: o.st})
			}
		}
	}
	return out
}

// assignIDs gives every feature its repository id: the key the engine hashes
// for its splits when they agree on one, else its Flagsmith id, else (taken,
// or an export file's feature) a new one. Splits that cannot keep their
// buckets are Issues.
func (c *converter) assignIDs(p *plan) {
	used := map[int64]*feature{}
	var later []*feature
	for _, f := range c.features {
		f.outID = 0
		if f.bad {
			continue
		}
		sp := c.splits(p, f)
		if c.export {
			for _, s := range sp {
				c.iss.add(s.e.src, s.st.ptr+"/multivariate", what(f), "the split %s cannot keep its buckets: a feature export file carries no feature state or option ids, so identities get new variants", s.where())
			}
			later = append(later, f)
			continue
		}
		if len(sp) == 0 {
			later = append(later, f)
			continue
		}
		key := sp[0].st.hashKey
		id, err := strconv.ParseInt(key, 10, 64)
		if err != nil || id < 1 || id > maxID {
			for _, s := range sp {
				c.iss.add(s.e.src, s.st.ptr, what(f), "the split %s is hashed with the feature state's uuid %q (the document has no django_id); gitflags hashes a numeric feature id, so identities get new variants", s.where(), s.st.hashKey)
			}
			later = append(later, f)
			continue
		}
		for _, s := range sp[1:] {
			if s.st.hashKey != key {
				c.iss.add(s.e.src, s.st.ptr, what(f), "the split %s is hashed with feature state id %s, the feature's first split (%s, %s) with %s; gitflags hashes one id per feature, so identities here get new variants", s.where(), s.st.hashKey, sp[0].where(), sp[0].e.src, key)
			}
		}
		if other := used[id]; other != nil {
			c.iss.add(sp[0].e.src, sp[0].st.ptr, what(f), "its split is hashed with %d, which feature %q needs as its id too; identities get new variants", id, other.name)
			later = append(later, f)
			continue
		}
		f.outID = id
		used[id] = f
		if id != f.id {
			c.iss.change(sp[0].e.src, sp[0].st.ptr+"/django_id", what(f), "its id is %d, the feature state id Flagsmith hashes for its split (to keep every identity's variant), instead of its Flagsmith id %d", id, f.id)
		}
	}
	next := int64(1)
	for id := range used {
		next = max(next, id+1)
	}
	for _, f := range later {
		if f.id != 0 && used[f.id] == nil {
			f.outID = f.id
			used[f.id] = f
			next = max(next, f.id+1)
		}
	}
	for _, f := range later {
		if f.outID != 0 {
			continue
		}
		for used[next] != nil {
			next++
		}
		f.outID = next
		used[next] = f
		if f.id != 0 {
			c.iss.change(f.src.src, f.ptr+"/id", what(f), "its id is %d: its Flagsmith id %d is the id another feature's split is hashed with", next, f.id)
		}
	}
}

// checkVariantOrder reports splits whose variants the engine orders
// differently from gitflags (by option id).
func (c *converter) checkVariantOrder(p *plan, f *feature) {
	if c.export {
		return
	}
	for _, s := range c.splits(p, f) {
		mv := make([]*mvSrc, len(s.st.mv))
		copy(mv, s.st.mv)
		sort.SliceStable(mv, func(i, j int) bool { return mv[i].prio.Cmp(mv[j].prio) < 0 })
		var engine, ours []int64
		for _, m := range mv {
			if m.weight > 0 {
				engine = append(engine, m.optID)
			}
		}
		ours = append(ours, engine...)
		sort.Slice(ours, func(i, j int) bool { return ours[i] < ours[j] })
		for i := range ours {
			if ours[i] != engine[i] {
				c.iss.add(s.e.src, s.st.ptr+"/multivariate_feature_state_values", what(f), "the split %s takes its variants in the order of their multivariate value ids (options %s), gitflags in option id order (%s), so identities get other variants", s.where(), joinIDs(engine), joinIDs(ours))
				break
			}
		}
	}
}

func joinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ", ")
}

// variantKeys names each option: its key in Flagsmith when it has a valid
// one, else its value when that is a short valid key, else option_<id>.
func (c *converter) variantKeys(f *feature) {
	taken := map[string]bool{controlVariant: true}
	var made []string
	for _, o := range f.options {
		o.vkey = ""
		if o.key != "" {
			if validKey(o.key) && !taken[strings.ToLower(o.key)] {
				o.vkey = o.key
			} else {
				c.iss.add(o.src, o.ptr+"/multivariate_feature_option/key", what(f), "option %d's key %q is not a valid gitflags variant key (or is taken); the variant is reported under another name", o.id, o.key)
			}
		}
		if o.vkey == "" {
			if s, ok := o.value.(string); ok && len(s) <= maxVariantKey && validKey(s) && !taken[strings.ToLower(s)] {
				o.vkey = s
			}
		}
		if o.vkey == "" {
			k := "option_" + strconv.FormatInt(o.id, 10)
			for taken[strings.ToLower(k)] {
				k += "_"
			}
			o.vkey = k
		}
		taken[strings.ToLower(o.vkey)] = true
		if o.key == "" {
			made = append(made, o.vkey)
		}
	}
	if len(made) > 0 && !c.export {
		c.iss.change(f.src.src, f.ptr, what(f), "its multivariate options have no keys in the document (SDKs report no variant name for them); gitflags names the variants %s and reports these names", strings.Join(made, ", "))
	}
}

// envKeys names the environments' directories after their names.
func (c *converter) envKeys(p *plan) {
	taken := map[string]bool{}
	for _, ep := range p.envs {
		base := ep.e.name
		if ep.e.export && base == "" {
			base = ep.e.src
		}
		k := makeKey(strings.ToLower(base), '-', envKeyFallback)
		if taken[k] {
			k = makeKey(fmt.Sprintf("%s-%d", k, ep.e.id), '-', envKeyFallback)
			for n := 2; taken[k]; n++ {
				k = makeKey(fmt.Sprintf("%s-%d-%d", k, ep.e.id, n), '-', envKeyFallback)
			}
		}
		taken[k] = true
		ep.key = k
	}
}

// segmentKeys names segments after their names, made valid keys.
func (c *converter) segmentKeys() {
	taken := map[string]bool{}
	for _, g := range c.segments {
		if g.bad {
			continue
		}
		k := makeKey(g.name, '_', segmentFallback)
		if taken[strings.ToLower(k)] {
			k = makeKey(fmt.Sprintf("%s_%d", k, g.id), '_', segmentFallback)
		}
		taken[strings.ToLower(k)] = true
		g.key = k
		if k != g.name {
			c.iss.change(g.src.src, g.ptr+"/name", g.what(), "its key is %q (a segment's key is its file name and its name in gitflags); reasons read \"TARGETING_MATCH; segment=%s\"", k, k)
		}
	}
}

// makeKey turns s into a valid key: runs of other characters become sep.
func makeKey(s string, sep byte, fallback string) string {
	var b strings.Builder
	pending := false
	for _, ch := range s {
		ok := ch < 128 && (ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '.' || ch == '-')
		if !ok {
			pending = true
			continue
		}
		if b.Len() == 0 && (ch == '_' || ch == '.' || ch == '-') {
			continue
		}
		if pending && b.Len() > 0 {
			b.WriteByte(sep)
		}
		pending = false
		b.WriteRune(ch)
	}
	k := b.String()
	if len(k) > flagrepo.MaxKeyLength {
		k = strings.TrimRight(k[:flagrepo.MaxKeyLength], "_.-")
	}
	if k == "" || k == "." || k == ".." {
		k = fallback
	}
	return k
}

// overrides collects each environment's segment and identity overrides.
func (c *converter) overrides(p *plan) {
	for _, ep := range p.envs {
		ep.segOvs = map[*feature][]overrideRef{}
		ep.idOvs = map[*feature][]identRef{}
		if ep.bad {
			continue
		}
		e := ep.e
		for _, s := range e.segments {
			g := c.segByID[s.id]
			if g == nil || g.bad {
				continue
			}
			for _, st := range s.states {
				f := c.lookup(st)
				if f == nil || f.bad || p.droppedOv[st] {
					continue
				}
				ow := fmt.Sprintf("override of feature %q by segment %q", f.name, g.name)
				if f.inEnv[e] == nil {
					c.iss.add(e.src, st.ptr, ow, "the environment has no state of the feature, so the engine ignores the override; left out")
					continue
				}
				if st.bad != "" {
					c.iss.add(e.src, st.ptr+"/feature_state_value", ow, "its value: %s; the override is left out", st.bad)
					continue
				}
				if why := c.checkSplit(f, st); why != "" {
					c.iss.add(e.src, st.ptr+"/multivariate_feature_state_values", ow, "%s; the override is left out", why)
					continue
				}
				dup := false
				for _, o := range ep.segOvs[f] {
					if o.seg == g {
						dup = true
					}
				}
				if dup {
					c.iss.add(e.src, st.ptr, ow, "the segment overrides the feature twice; the second override is left out")
					continue
				}
				ep.segOvs[f] = append(ep.segOvs[f], overrideRef{st: st, seg: g})
			}
		}
		seen := map[string]string{}
		for _, id := range e.identities {
			if prev, dup := seen[id.identifier]; dup {
				c.iss.add(e.src, id.ptr, fmt.Sprintf("identity override %q", id.identifier), "the identity is listed twice (also at %s); this entry is left out", prev)
				continue
			}
			seen[id.identifier] = id.ptr
			perFeature := map[*feature]bool{}
			for _, st := range id.states {
				f := c.lookup(st)
				if f == nil || f.bad {
					continue
				}
				ref := identRef{id: id, st: st}
				iw := fmt.Sprintf("identity override %q of feature %q", id.identifier, f.name)
				switch {
				case p.droppedIdent[ref]:
					continue
				case f.inEnv[e] == nil:
					c.iss.add(e.src, st.ptr, iw, "the environment has no state of the feature, so the engine ignores the override; left out")
					continue
				case st.bad != "":
					c.iss.add(e.src, st.ptr+"/feature_state_value", iw, "its value: %s; the override is left out", st.bad)
					continue
				case perFeature[f]:
					c.iss.add(e.src, st.ptr, iw, "the identity overrides the feature twice; the second override is left out")
					continue
				}
				perFeature[f] = true
				if len(st.mv) > 0 {
					c.iss.change(e.src, st.ptr+"/multivariate_feature_state_values", iw, "its multivariate values are not imported: Flagsmith's SDK engine serves an identity override's value without a split, as gitflags does")
				}
				ep.idOvs[f] = append(ep.idOvs[f], ref)
			}
		}
	}
}

// environmentChecks reports environment settings gitflags cannot keep.
func (c *converter) environmentChecks(p *plan) {
	for _, ep := range p.envs {
		e := ep.e
		if ep.bad || e.export {
			continue
		}
		w := envWhat(e)
		if e.noName {
			if c.readsEnvironmentName(ep) {
				c.iss.add(e.src, "/name", w, "the document has no environment name (an older Flagsmith): conditions on $.environment.name see no value in Flagsmith's engine, and %q in gitflags", e.name)
			} else {
				c.iss.change(e.src, "/name", w, "the document has no environment name (an older Flagsmith); it is named %q", e.name)
			}
		}
		if !e.composite && c.hashesIdentities(ep) {
			c.iss.add(e.src, "/use_identity_composite_key_for_hashing", w, "use_identity_composite_key_for_hashing is false: Flagsmith's API hashes the identifier alone for this environment's splits and percentage splits, where its SDKs in local evaluation and gitflags hash \"<environment key>_<identifier>\"; with remote evaluation, identities get other buckets")
		}
		if e.localOverrides == nil || !*e.localOverrides {
			if len(e.identities) == 0 {
				c.iss.change(e.src, "/use_identity_overrides_in_local_eval", w, "the document holds no identity overrides (Flagsmith puts them in only with use_identity_overrides_in_local_eval): identity overrides set in Flagsmith for this environment are not in it and not imported")
			}
		}
	}
}

// hashesIdentities reports whether an environment hashes identity keys:
// a split, a PERCENTAGE_SPLIT on the identity, or a condition on
// $.identity.key.
func (c *converter) hashesIdentities(ep *envPlan) bool {
	for _, f := range c.features {
		if f.bad {
			continue
		}
		if st := f.inEnv[ep.e]; st != nil && hasSplit(st) {
			return true
		}
		for _, o := range ep.segOvs[f] {
			if hasSplit(o.st) {
				return true
			}
		}
	}
	return c.anyCondition(ep, func(cd condSrc) bool {
		return cd.op == "PERCENTAGE_SPLIT" && cd.prop == "" || cd.prop == "$.identity.key"
	})
}

// readsEnvironmentName reports whether a segment of the environment has a
// condition on $.environment.name.
func (c *converter) readsEnvironmentName(ep *envPlan) bool {
	return c.anyCondition(ep, func(cd condSrc) bool { return cd.prop == "$.environment.name" })
}

// anyCondition reports whether a condition of a (convertible) segment of
// the environment, in any rule or sub-rule, satisfies match.
func (c *converter) anyCondition(ep *envPlan, match func(condSrc) bool) bool {
	var walk func(rs []ruleSrc) bool
	walk = func(rs []ruleSrc) bool {
		for _, r := range rs {
			if slices.ContainsFunc(r.conds, match) || walk(r.rules) {
				return true
			}
		}
		return false
	}
	for _, s := range ep.e.segments {
		if g := c.segByID[s.id]; g != nil && !g.bad && walk(g.rules) {
			return true
		}
	}
	return false
}

// priorities returns the priorities to write for an environment's
// overrides of a feature: Flagsmith's when they are unique integers in
// gitflags' range, else their ranks in the engine's order (priority, then
// the segment's position in the document; no priority last).
func priorities(e *envSrc, ovs []overrideRef) ([]int, bool) {
	out := make([]int, len(ovs))
	seen := map[int64]bool{}
	keep := true
	for i, o := range ovs {
		pr := o.st.priority
		if pr == nil || *pr < 0 || *pr > maxPriority || seen[*pr] {
			keep = false
			break
		}
		seen[*pr] = true
		out[i] = int(*pr)
	}
	if keep {
		return out, false
	}
	idx := make([]int, len(ovs))
	for i := range idx {
		idx[i] = i
	}
	prio := func(o overrideRef) float64 {
		if o.st.priority == nil {
			return math.Inf(1)
		}
		return float64(*o.st.priority)
	}
	sort.SliceStable(idx, func(a, b int) bool {
		x, y := ovs[idx[a]], ovs[idx[b]]
		if prio(x) != prio(y) {
			return prio(x) < prio(y)
		}
		return x.seg.pos[e] < y.seg.pos[e]
	})
	for rank, i := range idx {
		out[i] = rank
	}
	return out, true
}
