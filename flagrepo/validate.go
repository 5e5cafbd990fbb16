package flagrepo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/gitflags/gitflags/flagrepo/condition"
	"github.com/gitflags/gitflags/schemas"
)

// Operators lists every segment condition operator.
var Operators = condition.Operators

// maxRuleDepth bounds the nesting of segment rules.
const maxRuleDepth = 16

// schemaProblems turns a schema validation error into problems, one per leaf
// cause, with messages rewritten in plain English where it helps.
func schemaProblems(err error) []Problem {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []Problem{{Message: err.Error()}}
	}
	var out []Problem
	seen := map[string]bool{}
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		for _, p := range rewriteSchemaError(e.InstanceLocation, e.Message) {
			k := p.Pointer + "\x00" + p.Message
			if !seen[k] {
				seen[k] = true
				out = append(out, p)
			}
		}
	}
	walk(ve)
	// A value failing every branch of an anyOf yields one message per branch;
	// merge messages that share a pointer.
	merged := out[:0]
	index := map[string]int{}
	for _, p := range out {
		if i, ok := index[p.Pointer]; ok && !strings.HasPrefix(p.Message, "unknown field") && !strings.HasPrefix(p.Message, "missing required field") {
			merged[i].Message += "; or " + p.Message
			continue
		}
		index[p.Pointer] = len(merged)
		merged = append(merged, p)
	}
	return merged
}

var quoted = regexp.MustCompile(`'([^']*)'`)

func rewriteSchemaError(ptr, msg string) []Problem {
	switch {
	case strings.HasPrefix(msg, "additionalProperties "):
		var out []Problem
		for _, m := range quoted.FindAllStringSubmatch(msg, -1) {
			text := fmt.Sprintf("unknown field %q", m[1])
			if s := suggestField(m[1]); s != "" {
				text += fmt.Sprintf(" (did you mean %q?)", s)
			}
			out = append(out, Problem{Pointer: ptr + pointer(m[1]), Message: text})
		}
		return out
	case strings.HasPrefix(msg, "missing properties: "):
		var out []Problem
		for _, m := range quoted.FindAllStringSubmatch(msg, -1) {
			out = append(out, Problem{Pointer: ptr, Message: fmt.Sprintf("missing required field %q", m[1])})
		}
		return out
	case strings.Contains(msg, "does not match pattern '^[A-Za-z0-9][A-Za-z0-9_.-]*$'"):
		return []Problem{{Pointer: ptr, Message: "not a valid key: use letters, digits, '_', '.' and '-', starting with a letter or digit"}}
	case strings.HasPrefix(msg, "expected ") && strings.Contains(msg, ", but got "):
		return []Problem{{Pointer: ptr, Message: "wrong type: " + msg}}
	}
	return []Problem{{Pointer: ptr, Message: msg}}
}

var (
	fieldsOnce sync.Once
	fieldNames []string
)

// suggestField returns the known field name closest to name, or "".
func suggestField(name string) string {
	fieldsOnce.Do(func() {
		set := map[string]bool{}
		var walk func(any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				if props, ok := v["properties"].(map[string]any); ok {
					for k := range props {
						set[k] = true
					}
				}
				for _, c := range v {
					walk(c)
				}
			case []any:
				for _, c := range v {
					walk(c)
				}
			}
		}
		for _, k := range schemas.Kinds {
			data, _ := schemas.FS().(interface{ ReadFile(string) ([]byte, error) }).ReadFile(k.FileName())
			var doc any
			if json.Unmarshal(data, &doc) == nil {
				walk(doc)
			}
		}
		fieldNames = sortedKeys(set)
	})
	best, bestD := "", 3
	for _, f := range fieldNames {
		if d := editDistance(strings.ToLower(name), f); d < bestD {
			best, bestD = f, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// checkDocument normalises a schema-valid document and runs the checks that
// need only this file.
func checkDocument(doc any, c *collector) {
	switch d := doc.(type) {
	case *Feature:
		if msg := normalizeValue(&d.Default.Value); msg != "" {
			c.add("/default/value", "%s", msg)
		}
		ids := map[int64]int{}
		keys := map[string]int{}
		total := 0.0
		for i := range d.Variants {
			v := &d.Variants[i]
			if j, ok := ids[v.ID]; ok {
				c.add(pointer("variants", i, "id"), "variant id %d is already used by variants/%d; variant ids must be unique within a feature", v.ID, j)
			}
			ids[v.ID] = i
			if j, ok := keys[v.Key]; ok {
				c.add(pointer("variants", i, "key"), "variant key %q is already used by variants/%d", v.Key, j)
			}
			keys[v.Key] = i
			if msg := normalizeValue(&v.Value); msg != "" {
				c.add(pointer("variants", i, "value"), "%s", msg)
			}
			total += v.Weight
		}
		if total > 100+1e-9 {
			c.add("/variants", "the variants' default weights add up to %s%%; at most 100%% is allowed", formatFloat(total))
		}
		sort.SliceStable(d.Variants, func(i, j int) bool { return d.Variants[i].ID < d.Variants[j].ID })
	case *Segment:
		for i := range d.Rules {
			checkRule(&d.Rules[i], pointer("rules", i), 1, c)
		}
	case *Environment:
		if strings.HasPrefix(d.ClientKey, "ser.") {
			c.add("/client_key", "a client key must not start with \"ser.\": that prefix marks server keys, which are secret and stored only as hashes in server_keys")
		}
		names := map[string]bool{}
		hashes := map[string]bool{}
		for i, k := range d.ServerKeys {
			if names[k.Name] {
				c.add(pointer("server_keys", i, "name"), "server key name %q is used twice", k.Name)
			}
			names[k.Name] = true
			if hashes[k.SHA256] {
				c.add(pointer("server_keys", i, "sha256"), "this server key hash is listed twice")
			}
			hashes[k.SHA256] = true
		}
	case *FeatureState:
		if msg := normalizeValue(&d.Value); msg != "" {
			c.add("/value", "%s", msg)
		}
		checkWeightSum(d.Weights, "/weights", c)
		priorities := map[int]int{}
		segments := map[string]int{}
		for i := range d.SegmentOverrides {
			o := &d.SegmentOverrides[i]
			if j, ok := priorities[o.Priority]; ok {
				c.add(pointer("segment_overrides", i, "priority"), "priority %d is already used by segment_overrides/%d (segment %q); priorities must be unique per feature and environment so the winner is clear", o.Priority, j, d.SegmentOverrides[j].Segment)
			}
			priorities[o.Priority] = i
			if j, ok := segments[o.Segment]; ok {
				c.add(pointer("segment_overrides", i, "segment"), "segment %q is already overridden by segment_overrides/%d", o.Segment, j)
			}
			segments[o.Segment] = i
			if msg := normalizeValue(&o.Value); msg != "" {
				c.add(pointer("segment_overrides", i, "value"), "%s", msg)
			}
			checkWeightSum(o.Weights, pointer("segment_overrides", i, "weights"), c)
		}
		type at struct{ i, j int }
		ids := map[string]at{}
		for i := range d.IdentityOverrides {
			o := &d.IdentityOverrides[i]
			for j, id := range o.Identifiers {
				if prev, ok := ids[id]; ok {
					c.add(pointer("identity_overrides", i, "identifiers", j), "identity %q already has an override at %s", id, pointer("identity_overrides", prev.i, "identifiers", prev.j))
				}
				if why := unmatchableIdentifier(id); why != "" {
					c.add(pointer("identity_overrides", i, "identifiers", j), "identifier %q can never match: %s", id, why)
				}
				ids[id] = at{i, j}
			}
			if msg := normalizeValue(&o.Value); msg != "" {
				c.add(pointer("identity_overrides", i, "value"), "%s", msg)
			}
		}
	}
}

var (
	integerText = regexp.MustCompile(`^-?[0-9]+$`)
	decimalText = regexp.MustCompile(`^-?[0-9]+\.[0-9]+$`)
)

// unmatchableIdentifier explains why an identity override for id would never
// apply, or returns "". The engine matches identity overrides with IN, which
// coerces number-like identifiers: "007" is compared as "7", and decimals never
// match.
func unmatchableIdentifier(id string) string {
	if strings.Contains(id, ",") {
		return "SDKs evaluating locally (Flagsmith's engine) join override identifiers with commas, so an identifier containing a comma never matches there"
	}
	if id == "" || !(id[0] == '-' || (id[0] >= '0' && id[0] <= '9')) {
		return ""
	}
	switch {
	case decimalText.MatchString(id):
		return "identifiers that look like decimal numbers are compared as numbers and never match an override (Flagsmith engine rule)"
	case integerText.MatchString(id):
		if n, err := strconv.ParseInt(id, 10, 64); err == nil && strconv.FormatInt(n, 10) != id {
			return fmt.Sprintf("identifiers that look like integers are compared as numbers, so %q matches only %q (Flagsmith engine rule)", id, strconv.FormatInt(n, 10))
		}
	}
	return ""
}

func checkWeightSum(w map[string]float64, ptr string, c *collector) {
	total := 0.0
	for _, v := range w {
		total += v
	}
	if total > 100+1e-9 {
		c.add(ptr, "weights add up to %s%%; at most 100%% is allowed", formatFloat(total))
	}
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// normalizeValue turns a decoded json.Number into int64. It returns what is
// wrong, or "" (callers build the pointer only when needed).
func normalizeValue(v *OptionalValue) string {
	n, ok := v.Value.(json.Number)
	if !ok {
		return ""
	}
	if i, err := n.Int64(); err == nil {
		v.Value = i
		return ""
	}
	f, err := n.Float64()
	if err == nil && f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		v.Value = int64(f)
		return ""
	}
	return fmt.Sprintf("number %s is not a 64-bit integer: write decimals and large numbers as strings (\"%s\")", n, n)
}

func checkRule(r *Rule, ptr string, depth int, c *collector) {
	if depth > maxRuleDepth {
		c.add(ptr, "rules are nested more than %d deep", maxRuleDepth)
		return
	}
	for i := range r.Conditions {
		checkCondition(&r.Conditions[i], ptr+pointer("conditions", i), c)
	}
	for i := range r.Rules {
		checkRule(&r.Rules[i], ptr+pointer("rules", i), depth+1, c)
	}
}

// checkCondition normalises a condition's value to the engine's string form and
// checks it with condition.Check, the definition the evaluator runs.
func checkCondition(cond *Condition, ptr string, c *collector) {
	raw := bytes.TrimSpace(cond.RawValue)
	hasValue := len(raw) > 0
	vp := ptr + "/value"
	switch {
	case !hasValue:
		cond.Value = ""
	case raw[0] == '"':
		_ = json.Unmarshal(raw, &cond.Value)
	case raw[0] == '[':
		if cond.Operator != "IN" {
			c.add(vp, "an array value is only allowed with the IN operator; %s takes a string", cond.Operator)
			return
		}
		var items []any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		_ = d.Decode(&items)
		texts := make([]string, 0, len(items))
		for i, it := range items {
			switch it := it.(type) {
			case string:
				texts = append(texts, it)
			case json.Number:
				// The engine compares an integer context value as its decimal
				// text, and nothing else can equal a number's text.
				n, ok := condition.Int(it.String())
				if !ok || strings.ContainsAny(it.String(), ".eE") {
					c.add(fmt.Sprintf("%s/%d", vp, i), "IN compares text and integers: write %s as a string, or as an integer without a fraction or exponent", it)
					return
				}
				texts = append(texts, n)
			}
		}
		b, _ := json.Marshal(texts)
		cond.Value = string(b)
	default: // number or boolean: its JSON text
		cond.Value = string(raw)
	}
	op := cond.Operator
	if cond.Property == "" && op != "PERCENTAGE_SPLIT" {
		c.add(ptr, "missing \"property\": %s compares a trait or context property (only PERCENTAGE_SPLIT may leave it out, to split on the identity)", op)
	}
	if !hasValue && op != "IS_SET" && op != "IS_NOT_SET" {
		c.add(ptr, "missing \"value\": %s needs a value to compare with", op)
		return
	}
	if err := condition.Check(op, cond.Value); err != nil {
		c.add(vp, "%s", err.Error())
	}
}

// problemList gathers the cross-file problems of a load.
type problemList []Problem

func (l *problemList) add(file, ptr, format string, args ...any) {
	*l = append(*l, Problem{File: file, Pointer: ptr, Message: fmt.Sprintf(format, args...)})
}

func featurePath(key string) string     { return "features/" + key + ".json" }
func segmentPath(key string) string     { return "segments/" + key + ".json" }
func environmentPath(env string) string { return "environments/" + env + "/environment.json" }
func statePath(env, key string) string  { return "environments/" + env + "/features/" + key + ".json" }

func (l *problemList) caseCollision(path, other string) {
	l.add(path, "", "differs from %s only in letter case; the two would collide on case-insensitive file systems", other)
}

func (l *problemList) missingSettings() {
	l.add("gitflags.json", "", "missing: every flag repository has a gitflags.json at its root with format_version and project (gitflags init creates one)")
}

func (l *problemList) duplicateFeatureID(key, other string, id int64) {
	l.add(featurePath(key), "/id", "feature id %d is already used by features/%s.json; ids must be unique and never reused", id, other)
}

func (l *problemList) duplicateSegmentID(key, other string, id int64) {
	l.add(segmentPath(key), "/id", "segment id %d is already used by segments/%s.json; ids must be unique and never reused", id, other)
}

func (l *problemList) missingEnvironment(env string) {
	l.add(environmentPath(env), "", "missing: environments/%s/ holds feature files but no environment.json", env)
}

// assemble builds the snapshot from parsed files, sorted by path, and runs
// the cross-file checks on the whole tree.
func assemble(rev Revision, results []parsed) (*Snapshot, []Problem) {
	var problems problemList
	s := &Snapshot{
		Revision:     rev,
		Features:     map[string]*Feature{},
		Segments:     map[string]*Segment{},
		Environments: map[string]*Environment{},
		foldedPaths:  map[string]string{},
		featureIDs:   map[int64]string{},
		segmentIDs:   map[int64]string{},
	}
	var (
		hasSettings bool
		entries     = make([]fileEntry, 0, len(results))
		states      []*parsed
		caseFold    = make(map[string]string, len(results)) // lower-case path -> path
		envFiles    = map[string]bool{}                     // environments with an environment.json
		// Files that exist but are invalid: references to them are not
		// reported again as dangling.
		brokenFeatures = map[string]bool{}
		brokenSegments = map[string]bool{}
	)
	for i := range results {
		r := &results[i]
		problems = append(problems, r.problems...)
		if n := len(entries); n == 0 || entries[n-1].path != r.file.Path {
			entries = append(entries, fileEntry{path: r.file.Path, hash: r.file.Hash, doc: r.doc, mode: r.file.Mode, kind: r.kind})
		}
		if r.kind == kindIgnored {
			continue
		}
		lower := strings.ToLower(r.file.Path)
		if other, ok := caseFold[lower]; ok {
			problems.caseCollision(r.file.Path, other)
		}
		caseFold[lower] = r.file.Path
		if lower != r.file.Path {
			s.foldedPaths[lower] = r.file.Path
		}
		switch r.kind {
		case kindSettings:
			hasSettings = true
		case kindEnvironment:
			envFiles[r.env] = true
		}
		if r.doc == nil {
			switch r.kind {
			case kindFeature:
				brokenFeatures[r.key] = true
			case kindSegment:
				brokenSegments[r.key] = true
			}
			continue
		}
		switch d := r.doc.(type) {
		case *Settings:
			s.Settings = *d
		case *Feature:
			s.Features[r.key] = d
		case *Segment:
			s.Segments[r.key] = d
		case *Environment:
			e := *d // a new value per snapshot: it holds the snapshot's feature states
			e.Features = map[string]*FeatureState{}
			s.Environments[r.key] = &e
		case *FeatureState:
			states = append(states, r)
		}
	}
	s.files = chunkEntries(nil, entries)
	if !hasSettings {
		problems.missingSettings()
	}
	s.featureKeys = sortedKeys(s.Features)
	s.segmentKeys = sortedKeys(s.Segments)
	s.environmentKeys = sortedKeys(s.Environments)

	// Ids are unique per kind.
	for _, k := range s.featureKeys {
		f := s.Features[k]
		if other, ok := s.featureIDs[f.ID]; ok {
			problems.duplicateFeatureID(k, other, f.ID)
		}
		s.featureIDs[f.ID] = k
	}
	for _, k := range s.segmentKeys {
		g := s.Segments[k]
		if other, ok := s.segmentIDs[g.ID]; ok {
			problems.duplicateSegmentID(k, other, g.ID)
		}
		s.segmentIDs[g.ID] = k
	}
	checkEnvironments(s.environmentKeys, s.Environments, &problems)

	// Environment feature files: the environment and feature exist, and every
	// reference resolves.
	missingEnv := map[string]bool{}
	segmentExists := func(key string) bool { return s.Segments[key] != nil || brokenSegments[key] }
	for _, r := range states {
		e := s.Environments[r.env]
		if e == nil {
			if !missingEnv[r.env] && !envFiles[r.env] {
				problems.missingEnvironment(r.env)
			}
			missingEnv[r.env] = true
			continue
		}
		st := r.doc.(*FeatureState)
		checkState(&problems, r.file.Path, st, s.Features[r.key], brokenFeatures[r.key], segmentExists)
		e.Features[r.key] = st
	}
	return s, problems
}

// checkEnvironments checks that ids, client keys and server keys are unique
// across environments (keys sorted).
func checkEnvironments(keys []string, envs map[string]*Environment, problems *problemList) {
	envIDs := make(map[int64]string, len(keys))
	clientKeys := make(map[string]string, len(keys))
	serverKeys := map[string]string{}
	for _, k := range keys {
		e := envs[k]
		file := environmentPath(k)
		if other, ok := envIDs[e.ID]; ok {
			problems.add(file, "/id", "environment id %d is already used by environments/%s; ids must be unique and never reused", e.ID, other)
		}
		envIDs[e.ID] = k
		if other, ok := clientKeys[e.ClientKey]; ok {
			problems.add(file, "/client_key", "client key %q is already the client key of environment %q", e.ClientKey, other)
		}
		clientKeys[e.ClientKey] = k
		for i, sk := range e.ServerKeys {
			if other, ok := serverKeys[sk.SHA256]; ok && other != k {
				problems.add(file, pointer("server_keys", i, "sha256"), "this server key hash is also listed by environment %q; a server key belongs to one environment", other)
			}
			serverKeys[sk.SHA256] = k
		}
	}
}

// checkState checks the references of the feature state st at file, in an
// environment that exists: its feature f (nil when features/<key>.json does not
// exist, or is broken and reported on its own), the variants its weights name
// and the segments its overrides name.
func checkState(problems *problemList, file string, st *FeatureState, f *Feature, featureBroken bool, segmentExists func(key string) bool) {
	if f == nil {
		if !featureBroken {
			problems.add(file, "", "there is no feature %q: features/%s.json does not exist (remove this file or add the feature)", st.Feature, st.Feature)
		}
		return
	}
	checkWeightKeys(f, st.Weights, "/weights", file, problems)
	for i, o := range st.SegmentOverrides {
		if !segmentExists(o.Segment) {
			problems.add(file, pointer("segment_overrides", i, "segment"), "there is no segment %q: segments/%s.json does not exist", o.Segment, o.Segment)
		}
		checkWeightKeys(f, o.Weights, pointer("segment_overrides", i, "weights"), file, problems)
	}
}

func checkWeightKeys(f *Feature, w map[string]float64, ptr, file string, problems *problemList) {
	if w == nil {
		return
	}
	if !f.Multivariate() {
		problems.add(file, ptr, "feature %q has no variants, so it takes no weights (add variants to features/%s.json)", f.Key, f.Key)
		return
	}
	for _, k := range sortedKeys(w) {
		if f.Variant(k) == nil {
			keys := make([]string, len(f.Variants))
			for i, v := range f.Variants {
				keys[i] = v.Key
			}
			problems.add(file, ptr+pointer(k), "feature %q has no variant %q (its variants: %s)", f.Key, k, strings.Join(keys, ", "))
		}
	}
}
