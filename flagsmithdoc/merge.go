package flagsmithdoc

import (
	"fmt"
	"sort"
)

// converter turns the sources' environments into a repository.
type converter struct {
	envs   []*envSrc
	iss    *issues
	export bool // the sources are feature export files (no ids)

	project *projSrc // the first document's
	projSrc string

	features []*feature // by Flagsmith id (by name for export files)
	byID     map[int64]*feature
	byName   map[string]*feature
	segments []*segment // by id
	segByID  map[int64]*segment

	problems []string // conflicts between or within documents (input errors)
}

// feature is a Flagsmith feature, merged from every state naming it.
type feature struct {
	id      int64 // Flagsmith's id; 0 for export files
	name    string
	typ     string
	src     *envSrc
	ptr     string
	options []*option // by id
	optByID map[int64]*option
	server  bool
	inEnv   map[*envSrc]*stateSrc // the environment's own state
	bad     bool                  // left out (an Issue says why)

	outID int64 // the repository's id
}

// option is a multivariate option of a feature.
type option struct {
	id    int64 // Flagsmith's id; for export files, its position from 1
	key   string
	value any
	src   string
	ptr   string
	vkey  string // the variant key in the repository
}

// segment is a Flagsmith segment, the same in every document.
type segment struct {
	id    int64
	name  string
	src   *envSrc
	ptr   string
	rules []ruleSrc
	raw   string
	bad   bool
	key   string
	pos   map[*envSrc]int // position in each document's segment list
}

func (c *converter) conflict(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// merge gathers the project, features, options and segments of every
// environment, reporting definitions that differ between (or within)
// documents as input errors.
func (c *converter) merge() error {
	c.byID = map[int64]*feature{}
	c.byName = map[string]*feature{}
	c.segByID = map[int64]*segment{}
	docs, exports := 0, 0
	for _, e := range c.envs {
		if e.export {
			exports++
		} else {
			docs++
		}
	}
	if docs > 0 && exports > 0 {
		return &InputError{Problems: []string{"environment documents and feature export files cannot be imported together: a feature export file has no ids to match the documents' features with; import the documents (they hold everything an export file does)"}}
	}
	c.export = exports > 0
	c.mergeEnvironments()
	for _, e := range c.envs {
		for _, st := range e.states {
			c.addFeature(e, st)
		}
		for _, s := range e.segments {
			c.addSegment(e, s)
			for _, st := range s.states {
				c.addFeature(e, st)
			}
		}
		for _, id := range e.identities {
			for _, st := range id.states {
				c.addFeature(e, st)
			}
		}
	}
	for _, e := range c.envs {
		for _, st := range e.states {
			f := c.lookup(st)
			if f == nil {
				continue // a conflict, reported
			}
			if prev := f.inEnv[e]; prev != nil {
				c.conflict("%s: %s and %s: feature %q has two states in one environment", e.src, prev.ptr, st.ptr, f.name)
				continue
			}
			if f.inEnv == nil {
				f.inEnv = map[*envSrc]*stateSrc{}
			}
			f.inEnv[e] = st
			if st.serverOnly {
				f.server = true
			}
		}
		if e.project != nil {
			for id := range e.project.serverOnly {
				if f := c.byID[id]; f != nil {
					f.server = true
				}
			}
		}
	}
	// Server-key-only is a feature's setting: every document says the same.
	for _, f := range c.features {
		for _, e := range c.envs {
			if _, ok := f.inEnv[e]; !ok {
				continue
			}
			so := false
			if e.project != nil {
				so = e.project.serverOnly[f.id]
			} else {
				so = f.inEnv[e].serverOnly
			}
			if so != f.server {
				c.conflict("%s: feature %q is not server-key-only in this document but is in %s", e.src, f.name, c.serverOnlySource(f))
				break
			}
		}
	}
	sort.Slice(c.features, func(i, j int) bool {
		if c.features[i].id != c.features[j].id {
			return c.features[i].id < c.features[j].id
		}
		return c.features[i].name < c.features[j].name
	})
	for _, f := range c.features {
		sort.Slice(f.options, func(i, j int) bool { return f.options[i].id < f.options[j].id })
	}
	sort.Slice(c.segments, func(i, j int) bool { return c.segments[i].id < c.segments[j].id })
	if len(c.problems) > 0 {
		return &InputError{Problems: c.problems}
	}
	return nil
}

func (c *converter) serverOnlySource(f *feature) string {
	for _, e := range c.envs {
		if _, ok := f.inEnv[e]; !ok {
			continue
		}
		if (e.project != nil && e.project.serverOnly[f.id]) || (e.project == nil && f.inEnv[e].serverOnly) {
			return e.src
		}
	}
	return "another"
}

// mergeEnvironments checks that the documents are of one project and of
// different environments.
func (c *converter) mergeEnvironments() {
	byID := map[int64]*envSrc{}
	byKey := map[string]*envSrc{}
	for _, e := range c.envs {
		if e.export {
			continue
		}
		if prev := byID[e.id]; prev != nil {
			c.conflict("%s and %s are documents of the same environment (id %d): give one document per environment", prev.src, e.src, e.id)
			continue
		}
		byID[e.id] = e
		if prev := byKey[e.apiKey]; prev != nil {
			c.conflict("%s and %s: two environments with the same key %q", prev.src, e.src, e.apiKey)
		}
		byKey[e.apiKey] = e
		p := e.project
		if p == nil {
			continue
		}
		if c.project == nil {
			c.project, c.projSrc = p, e.src
			continue
		}
		q := c.project
		switch {
		case p.id != q.id:
			c.conflict("%s and %s are documents of different projects (ids %d and %d): import one project at a time", c.projSrc, e.src, q.id, p.id)
		case p.name != q.name:
			c.conflict("%s: %s: project name %q differs from %q in %s", e.src, p.ptr+"/name", p.name, q.name, c.projSrc)
		case p.hideDisabled != q.hideDisabled:
			c.conflict("%s: %s: project hide_disabled_flags %t differs from %t in %s", e.src, p.ptr+"/hide_disabled_flags", p.hideDisabled, q.hideDisabled, c.projSrc)
		case (p.org == nil) != (q.org == nil) || p.org != nil && (p.org.id != q.org.id || p.org.name != q.org.name):
			c.conflict("%s: %s: the organisation differs from the one in %s", e.src, p.ptr+"/organisation", c.projSrc)
		}
	}
}

// lookup returns the merged feature of a state.
func (c *converter) lookup(st *stateSrc) *feature {
	if c.export {
		return c.byName[st.feature.name]
	}
	return c.byID[st.feature.id]
}

func (c *converter) addFeature(e *envSrc, st *stateSrc) {
	fs := st.feature
	var f *feature
	if c.export {
		f = c.byName[fs.name]
	} else {
		f = c.byID[fs.id]
		if other := c.byName[fs.name]; other != nil && other.id != fs.id {
			c.conflict("%s: %s: feature %q has id %d here and id %d in %s (%s)", e.src, fs.ptr, fs.name, fs.id, other.id, other.src.src, other.ptr)
			return
		}
	}
	if f == nil {
		f = &feature{id: fs.id, name: fs.name, typ: fs.typ, src: e, ptr: fs.ptr, optByID: map[int64]*option{}}
		c.features = append(c.features, f)
		c.byName[fs.name] = f
		if !c.export {
			c.byID[fs.id] = f
		}
	} else if f.name != fs.name {
		c.conflict("%s: %s: feature id %d is named %q here and %q in %s (%s)", e.src, fs.ptr, fs.id, fs.name, f.name, f.src.src, f.ptr)
		return
	}
	for _, m := range st.mv {
		if c.export {
			// Export files have no option ids: options are matched by value.
			var o *option
			for _, x := range f.options {
				if sameValue(x.value, m.value) {
					o = x
					break
				}
			}
			if o == nil {
				o = &option{id: int64(len(f.options) + 1), value: m.value, src: e.src, ptr: m.ptr}
				f.options = append(f.options, o)
				f.optByID[o.id] = o
			}
			m.optID = o.id
			continue
		}
		o := f.optByID[m.optID]
		if o == nil {
			o = &option{id: m.optID, key: m.optKey, value: m.value, src: e.src, ptr: m.ptr}
			f.options = append(f.options, o)
			f.optByID[m.optID] = o
			continue
		}
		if !sameValue(o.value, m.value) {
			c.conflict("%s: %s: multivariate option %d of feature %q has the value %s here and %s in %s (%s)", e.src, m.ptr, m.optID, f.name, showValue(m.value), showValue(o.value), o.src, o.ptr)
		} else if o.key != m.optKey {
			c.conflict("%s: %s: multivariate option %d of feature %q has the key %q here and %q in %s (%s)", e.src, m.ptr, m.optID, f.name, m.optKey, o.key, o.src, o.ptr)
		}
	}
}

func (c *converter) addSegment(e *envSrc, s *segSrc) {
	g := c.segByID[s.id]
	if g == nil {
		g = &segment{id: s.id, name: s.name, src: e, ptr: s.ptr, rules: s.rules, raw: s.raw, pos: map[*envSrc]int{}}
		c.segments = append(c.segments, g)
		c.segByID[s.id] = g
	} else {
		if _, dup := g.pos[e]; dup {
			c.conflict("%s: %s: segment id %d is listed twice in one document", e.src, s.ptr, s.id)
			return
		}
		switch {
		case g.name != s.name:
			c.conflict("%s: %s: segment %d is named %q here and %q in %s (%s)", e.src, s.ptr, s.id, s.name, g.name, g.src.src, g.ptr)
		case g.raw != s.raw:
			c.conflict("%s: %s: the rules of segment %q (id %d) differ from its rules in %s (%s): give documents of one moment of the project", e.src, s.ptr+"/rules", s.name, s.id, g.src.src, g.ptr+"/rules")
		}
	}
	for i, x := range e.segments {
		if x == s {
			g.pos[e] = i
		}
	}
}

func sameValue(a, b any) bool {
	if _, bad := a.(badValue); bad {
		_, bbad := b.(badValue)
		return bbad
	}
	return valueJSON(a) == valueJSON(b)
}

func showValue(v any) string {
	if b, ok := v.(badValue); ok {
		return "(" + b.why + ")"
	}
	return valueJSON(v)
}
