package flagsmithdoc

import (
	"encoding/json"
	"fmt"
	"math/big"
	"path"
	"strconv"
	"strings"
)

// Source is one input: a Flagsmith environment document or feature export
// file, and the name it is reported under (its file name).
type Source struct {
	Name string
	Data []byte
}

// envSrc is one environment read from a source.
type envSrc struct {
	src               string
	order             int // position of the source
	id                int64
	hasID             bool // false for a feature export file
	apiKey            string
	name              string
	hideDisabled      *bool // nil: the project's setting
	hideSensitive     bool
	allowClientTraits bool
	composite         bool // use_identity_composite_key_for_hashing
	localOverrides    *bool
	noName            bool // the document names no environment (its name is made up)
	project           *projSrc
	states            []*stateSrc // the environment's feature states
	segments          []*segSrc
	identities        []*identSrc
	export            bool // from a feature export file (no ids)
}

type projSrc struct {
	id           int64
	name         string
	hideDisabled bool
	org          *orgSrc
	serverOnly   map[int64]bool // feature ids
	ptr          string
}

type orgSrc struct {
	id               int64
	name             string
	stopServingFlags bool
	ptr              string
}

type featSrc struct {
	id   int64 // 0 in feature export files
	name string
	typ  string
	ptr  string
}

// stateSrc is a feature state: an environment's, a segment override's or an
// identity override's.
type stateSrc struct {
	feature  featSrc
	enabled  bool
	value    any
	bad      string // why the state cannot be imported ("": it can)
	hashKey  string // what the engine hashes for its split: django_id, else featurestate_uuid
	priority *int64 // feature_segment.priority; nil: none (+Inf)
	mv       []*mvSrc
	ptr      string
	// serverOnly is the feature's is_server_key_only in a feature export
	// file (documents list server-key-only features in the project).
	serverOnly bool
}

// mvSrc is a multivariate feature state value.
type mvSrc struct {
	optID      int64 // 0: none (feature export files)
	optKey     string
	value      any
	weight     float64
	weightText string
	prio       *big.Int // the engine's variant priority: id, else the uuid's integer
	ptr        string
}

type segSrc struct {
	id     int64
	name   string
	rules  []ruleSrc
	raw    string // the rules as canonical JSON, to compare documents
	states []*stateSrc
	ptr    string
}

type ruleSrc struct {
	typ   string
	conds []condSrc
	rules []ruleSrc
}

type condSrc struct {
	op, prop string
	value    *string
}

type identSrc struct {
	identifier string
	states     []*stateSrc
	ptr        string
}

// Fields of each object of an environment document, as Flagsmith's
// EnvironmentModel dumps it (flagsmith api util/engine_models).
var (
	envFields = []string{"id", "api_key", "name", "project", "feature_states", "identity_overrides",
		"allow_client_traits", "updated_at", "hide_sensitive_data", "hide_disabled_flags",
		"use_identity_composite_key_for_hashing", "use_identity_overrides_in_local_eval", "onboarding_pending",
		"amplitude_config", "dynatrace_config", "heap_config", "mixpanel_config", "rudderstack_config",
		"segment_config", "webhook_config"}
	integrationFields = []string{"amplitude_config", "dynatrace_config", "heap_config", "mixpanel_config",
		"rudderstack_config", "segment_config", "webhook_config"}
	projectFields  = []string{"id", "name", "organisation", "hide_disabled_flags", "segments", "enable_realtime_updates", "server_key_only_feature_ids"}
	orgFields      = []string{"id", "name", "feature_analytics", "stop_serving_flags", "persist_trait_data"}
	segmentFields  = []string{"id", "name", "rules", "feature_states"}
	ruleFields     = []string{"type", "rules", "conditions"}
	condFields     = []string{"operator", "value", "property_"}
	stateFields    = []string{"feature", "enabled", "django_id", "feature_segment", "featurestate_uuid", "feature_state_value", "multivariate_feature_state_values"}
	featureFields  = []string{"id", "name", "type"}
	fsegFields     = []string{"priority"}
	mvFields       = []string{"multivariate_feature_option", "percentage_allocation", "id", "mv_fs_value_uuid"}
	optionFields   = []string{"value", "id", "key"}
	identityFields = []string{"identifier", "environment_api_key", "created_date", "identity_features", "identity_traits",
		"system_traits", "identity_uuid", "django_id", "dashboard_alias", "composite_key"}
)

// readSource reads one source: an environment document (a JSON object) or a
// feature export file (a JSON list).
func readSource(s Source, order int, iss *issues) (*envSrc, []string) {
	r := &reader{src: s.Name, iss: iss}
	v, err := parseJSON(s.Data)
	if err != nil {
		return nil, []string{s.Name + ": " + err.Error()}
	}
	var e *envSrc
	switch v := v.(type) {
	case map[string]any:
		_, hasKey := v["api_key"]
		_, hasProject := v["project"]
		if !hasKey && !hasProject {
			return nil, []string{s.Name + ": not a Flagsmith environment document (an object with api_key, project and feature_states) nor a feature export file (a list of features)"}
		}
		e = r.environment(object{r: r, m: v})
	case []any:
		e = r.exportFile(v)
	default:
		return nil, []string{fmt.Sprintf("%s: not a Flagsmith environment document (an object) nor a feature export file (a list): the file holds %s", s.Name, jsonType(v))}
	}
	if e != nil {
		e.order = order
	}
	return e, r.problems
}

func (r *reader) environment(o object) *envSrc {
	e := &envSrc{src: r.src}
	var ok bool
	e.id, ok = o.id("id")
	e.hasID = ok
	e.apiKey, _ = o.str("api_key")
	name, present, _ := o.optStr("name")
	if !present || name == "" {
		// Older documents may have no name: gitflags needs one.
		e.noName = true
		name = fmt.Sprintf("Environment %d", e.id)
	}
	e.name = name
	e.hideDisabled, _ = o.nullableBool("hide_disabled_flags")
	e.hideSensitive, _ = o.optBool("hide_sensitive_data", false)
	e.allowClientTraits, _ = o.optBool("allow_client_traits", true)
	e.composite, _ = o.optBool("use_identity_composite_key_for_hashing", false)
	e.localOverrides, _ = o.nullableBool("use_identity_overrides_in_local_eval")
	what := fmt.Sprintf("environment %q", name)
	for _, k := range integrationFields {
		if o.has(k) {
			r.iss.add(r.src, o.at(k), what, "the %s integration is not imported: gitflags has no integrations (configure the equivalent outside the flag repository)", strings.TrimSuffix(k, "_config"))
		}
	}
	o.unknown(what, envFields...)
	if p, ok := o.child("project", "project"); ok {
		e.project = r.project(p)
		if e.project != nil {
			for i, sv := range p.listOf("segments") {
				if so, ok := r.asObject(sv, ptrTo(p.ptr, "segments", i), "a segment"); ok {
					e.segments = append(e.segments, r.segment(so))
				}
			}
		}
	}
	for i, fv := range o.listOfRequired("feature_states") {
		if fo, ok := r.asObject(fv, ptrTo("", "feature_states", i), "a feature state"); ok {
			e.states = append(e.states, r.state(fo, "environment"))
		}
	}
	for i, iv := range o.listOf("identity_overrides") {
		if io, ok := r.asObject(iv, ptrTo("", "identity_overrides", i), "an identity override"); ok {
			if id := r.identity(io); id != nil {
				e.identities = append(e.identities, id)
			}
		}
	}
	return e
}

func (o object) listOf(key string) []any {
	l, _ := o.list(key, false)
	return l
}

func (o object) listOfRequired(key string) []any {
	l, _ := o.list(key, true)
	return l
}

func (r *reader) project(o object) *projSrc {
	p := &projSrc{ptr: o.ptr, serverOnly: map[int64]bool{}}
	p.id, _ = o.id("id")
	p.name, _ = o.str("name")
	p.hideDisabled, _ = o.optBool("hide_disabled_flags", false)
	o.unknown(fmt.Sprintf("project %q", p.name), projectFields...)
	for i, v := range o.listOf("server_key_only_feature_ids") {
		if id, ok := r.idValue(v, object{r: r, ptr: ptrTo(o.ptr, "server_key_only_feature_ids", i)}, ""); ok {
			p.serverOnly[id] = true
		}
	}
	if o.has("organisation") {
		if oo, ok := o.child("organisation", "organisation"); ok {
			org := &orgSrc{ptr: oo.ptr}
			org.id, _ = oo.id("id")
			org.name, _ = oo.str("name")
			org.stopServingFlags, _ = oo.optBool("stop_serving_flags", false)
			oo.optBool("feature_analytics", false)
			oo.optBool("persist_trait_data", true)
			oo.unknown(fmt.Sprintf("organisation %q", org.name), orgFields...)
			p.org = org
		}
	}
	return p
}

func (r *reader) segment(o object) *segSrc {
	s := &segSrc{ptr: o.ptr}
	s.id, _ = o.id("id")
	s.name, _ = o.str("name")
	what := fmt.Sprintf("segment %q (id %d)", s.name, s.id)
	o.unknown(what, segmentFields...)
	rules, _ := o.list("rules", false)
	raw := make([]any, 0, len(rules))
	for i, rv := range rules {
		if ro, ok := r.asObject(rv, ptrTo(o.ptr, "rules", i), "a segment rule"); ok {
			s.rules = append(s.rules, r.rule(ro, what))
			raw = append(raw, rv)
		}
	}
	s.raw = valueJSON(canonicalRules(raw))
	for i, fv := range o.listOf("feature_states") {
		if fo, ok := r.asObject(fv, ptrTo(o.ptr, "feature_states", i), "a feature state"); ok {
			s.states = append(s.states, r.state(fo, "segment"))
		}
	}
	return s
}

// canonicalRules drops what does not change a rule's meaning (absent and
// null fields, empty lists) so that documents compare equal when their
// segments mean the same.
func canonicalRules(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = canonicalRules(v[i])
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if l, ok := x.([]any); x == nil || ok && len(l) == 0 {
				continue
			}
			out[k] = canonicalRules(x)
		}
		return out
	}
	return v
}

func (r *reader) rule(o object, what string) ruleSrc {
	var rl ruleSrc
	rl.typ, _ = o.str("type")
	o.unknown(what, ruleFields...)
	for i, cv := range o.listOf("conditions") {
		co, ok := r.asObject(cv, ptrTo(o.ptr, "conditions", i), "a condition")
		if !ok {
			continue
		}
		var c condSrc
		c.op, _ = co.str("operator")
		prop, _, _ := co.optStr("property_")
		c.prop = prop
		switch v := co.m["value"].(type) {
		case nil:
		case string:
			c.value = &v
		default:
			// Flagsmith stores condition values as text; a document with
			// another type was not written by it.
			r.fail(co.at("value"), "a condition value must be a string or null (Flagsmith writes every condition value as text), not %s", jsonType(v))
		}
		co.unknown(what, condFields...)
		rl.conds = append(rl.conds, c)
	}
	for i, sv := range o.listOf("rules") {
		if so, ok := r.asObject(sv, ptrTo(o.ptr, "rules", i), "a segment rule"); ok {
			rl.rules = append(rl.rules, r.rule(so, what))
		}
	}
	return rl
}

// state reads a feature state; kind is "environment", "segment" or
// "identity" (which fields it may have).
func (r *reader) state(o object, kind string) *stateSrc {
	st := &stateSrc{ptr: o.ptr}
	if fo, ok := o.child("feature", "feature"); ok {
		st.feature.ptr = fo.ptr
		st.feature.id, _ = fo.id("id")
		st.feature.name, _ = fo.str("name")
		t, _, _ := fo.optStr("type")
		st.feature.typ = t
		fo.unknown(fmt.Sprintf("feature %q", st.feature.name), featureFields...)
	}
	what := fmt.Sprintf("feature %q", st.feature.name)
	st.enabled, _ = o.boolean("enabled")
	val, why := flagValue(o.m["feature_state_value"])
	st.value = val
	if why != "" {
		st.bad = why
	}
	if id, present, ok := o.optID("django_id"); present && ok {
		st.hashKey = strconv.FormatInt(id, 10)
	} else if u, present, ok := o.optStr("featurestate_uuid"); present && ok {
		st.hashKey = u
	}
	if o.has("feature_segment") {
		if so, ok := o.child("feature_segment", "feature_segment"); ok {
			so.unknown(what, fsegFields...)
			if pv := so.m["priority"]; pv != nil {
				n, isNum := pv.(json.Number)
				p, err := strconv.ParseInt(string(n), 10, 64)
				if !isNum || err != nil {
					r.fail(so.at("priority"), "must be an integer or null, not %s", jsonType(pv))
				} else {
					st.priority = &p
				}
			}
		}
	}
	for i, mv := range o.listOf("multivariate_feature_state_values") {
		if mo, ok := r.asObject(mv, ptrTo(o.ptr, "multivariate_feature_state_values", i), "a multivariate value"); ok {
			if m := r.mvValue(mo, what); m != nil {
				st.mv = append(st.mv, m)
			}
		}
	}
	o.unknown(what, stateFields...)
	return st
}

func (r *reader) mvValue(o object, what string) *mvSrc {
	m := &mvSrc{ptr: o.ptr}
	pv, present := o.m["percentage_allocation"]
	if !present || pv == nil {
		r.fail(o.ptr, "missing required field %q", "percentage_allocation")
		return nil
	}
	w, text, ok := number(pv)
	if !ok {
		r.fail(o.at("percentage_allocation"), "must be a number, not %s", jsonType(pv))
		return nil
	}
	m.weight, m.weightText = w, text
	// The engine's variant priority: the value's id, else its uuid's
	// integer (Python's `id or uuid.UUID(mv_fs_value_uuid).int`).
	id, hasID, idOK := o.optID("id")
	u, hasUUID, uuidOK := o.optStr("mv_fs_value_uuid")
	switch {
	case hasID && idOK:
		m.prio = big.NewInt(id)
	case hasID || (hasUUID && !uuidOK):
		return nil // reported
	case hasUUID:
		n, ok := uuidInt(u)
		if !ok {
			r.fail(o.at("mv_fs_value_uuid"), "%q is not a UUID", u)
			return nil
		}
		m.prio = n
	default:
		r.fail(o.ptr, "a multivariate value needs an \"id\" or an \"mv_fs_value_uuid\": the engine orders a split's variants by them")
		return nil
	}
	oo, ok := o.child("multivariate_feature_option", "multivariate_feature_option")
	if !ok {
		return nil
	}
	if id, present, ok := oo.optID("id"); present && ok {
		m.optID = id
	} else if !present {
		r.fail(oo.ptr, "a multivariate option without an \"id\": gitflags keeps option ids as variant ids, which order the split")
	}
	if k, present, ok := oo.optStr("key"); present && ok {
		m.optKey = k
	}
	val, why := flagValue(oo.m["value"])
	if why != "" {
		r.iss.add(r.src, oo.at("value"), what, "variant value: %s; the feature is left out", why)
		m.value = badValue{why}
	} else {
		m.value = val
	}
	oo.unknown(what, optionFields...)
	o.unknown(what, mvFields...)
	return m
}

// badValue marks a variant value that cannot be imported.
type badValue struct{ why string }

func (r *reader) identity(o object) *identSrc {
	id := &identSrc{ptr: o.ptr}
	var ok bool
	if id.identifier, ok = o.str("identifier"); !ok {
		return nil
	}
	what := fmt.Sprintf("identity override %q", id.identifier)
	o.unknown(what, identityFields...)
	if l := o.listOf("identity_traits"); len(l) > 0 {
		r.iss.add(r.src, o.at("identity_traits"), what, "%d stored trait(s) are not imported: gitflags keeps traits in its identity store, not in the flag repository (SDKs send traits with each request)", len(l))
	}
	if st, ok := o.m["system_traits"].(map[string]any); ok && len(st) > 0 {
		r.iss.add(r.src, o.at("system_traits"), what, "%d system trait(s) are not imported: gitflags has no system traits", len(st))
	}
	for i, fv := range o.listOf("identity_features") {
		if fo, ok := r.asObject(fv, ptrTo(o.ptr, "identity_features", i), "a feature state"); ok {
			id.states = append(id.states, r.state(fo, "identity"))
		}
	}
	return id
}

// Fields of a feature of a Flagsmith feature export file (project settings,
// Export tab: features.import_export in Flagsmith's API).
var (
	exportFeatureFields = []string{"name", "default_enabled", "is_server_key_only", "initial_value", "value", "type", "enabled", "multivariate"}
	exportMVFields      = []string{"percentage_allocation", "default_percentage_allocation", "value", "type"}
)

// exportFile reads a Flagsmith feature export file: one environment's
// features, without ids, segments or identity overrides.
func (r *reader) exportFile(list []any) *envSrc {
	// The file names the environment: "production.json" is "production".
	name := path.Base(strings.ReplaceAll(r.src, "\\", "/"))
	name = strings.TrimSuffix(name, path.Ext(name))
	e := &envSrc{src: r.src, name: name, export: true, allowClientTraits: true, composite: true}
	for i, fv := range list {
		o, ok := r.asObject(fv, ptrTo("", i), "a feature of a feature export file")
		if !ok {
			continue
		}
		st := &stateSrc{ptr: o.ptr}
		st.feature.ptr = o.ptr
		st.feature.name, _ = o.str("name")
		st.feature.typ, _, _ = o.optStr("type")
		what := fmt.Sprintf("feature %q", st.feature.name)
		o.unknown(what, exportFeatureFields...)
		st.enabled, _ = o.boolean("enabled")
		o.optBool("default_enabled", false)
		if so, _ := o.optBool("is_server_key_only", false); so {
			st.serverOnly = true
		}
		val, why := flagValue(o.m["value"])
		st.value, st.bad = val, why
		for j, mv := range o.listOf("multivariate") {
			mo, ok := r.asObject(mv, ptrTo(o.ptr, "multivariate", j), "a multivariate value")
			if !ok {
				continue
			}
			mo.unknown(what, exportMVFields...)
			pv := mo.m["percentage_allocation"]
			w, text, ok := number(pv)
			if !ok {
				r.fail(mo.at("percentage_allocation"), "must be a number, not %s", jsonType(pv))
				continue
			}
			m := &mvSrc{ptr: mo.ptr, weight: w, weightText: text}
			val, why := flagValue(mo.m["value"])
			if why != "" {
				r.iss.add(r.src, mo.at("value"), what, "variant value: %s; the feature is left out", why)
				m.value = badValue{why}
			} else {
				m.value = val
			}
			st.mv = append(st.mv, m)
		}
		e.states = append(e.states, st)
	}
	return e
}
