package flagdiff

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/gitflags/gitflags/changes"
	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
)

// Identity is an identity to evaluate on both sides.
type Identity struct {
	Identifier string
	// Traits holds trait values as evaluator.Identity takes them (strings,
	// booleans, json.Number, nil).
	Traits map[string]any
}

// IdentitySet says which identities to evaluate.
type IdentitySet struct {
	// Source describes where they come from, for the report.
	Source string
	// All is evaluated in every environment, unless ByEnvironment is set.
	All []Identity
	// ByEnvironment returns an environment's own identities (the server's
	// store keeps traits per environment). It is given the environment as
	// HEAD has it.
	ByEnvironment func(env *flagrepo.Environment) ([]Identity, error)
}

// IdentityImpact says how many identities change result, per environment
// and feature.
type IdentityImpact struct {
	Source       string              `json:"source"`
	Environments []EnvironmentImpact `json:"environments"`
}

// EnvironmentImpact is the effect on one environment's identities.
type EnvironmentImpact struct {
	Environment string `json:"environment"`
	Identities  int    `json:"identities"` // identities evaluated
	// Features lists every feature evaluated (those whose state or
	// segments changed here; when the environment's name or client key
	// changed, every feature that may evaluate differently), most changed
	// first. Features added or removed are not evaluated: every identity
	// gets or loses them.
	Features []FeatureImpact `json:"features"`
	// Note says why the environment was not evaluated (added or removed).
	Note string `json:"note,omitempty"`
}

// FeatureImpact is the number of identities whose flag changes.
type FeatureImpact struct {
	Feature  string            `json:"feature"`
	Changed  int               `json:"changed"`
	Percent  float64           `json:"percent"`
	Examples []IdentityExample `json:"examples"`
}

// IdentityExample is an identity whose flag changes.
type IdentityExample struct {
	Identifier string     `json:"identifier"`
	Before     FlagResult `json:"before"`
	After      FlagResult `json:"after"`
}

// FlagResult is an evaluated flag: what an application sees.
type FlagResult struct {
	Enabled bool `json:"enabled"`
	Value   any  `json:"value"`
}

// String formats the result: "on, value \"express\"".
func (f FlagResult) String() string { return onOff(f.Enabled) + ", value " + jsonText(f.Value) }

// ReadIdentities reads identities, one JSON object a line:
// {"identifier": "alice", "traits": {"plan": "premium", "age": 42}}. Traits
// may also be a list of {"trait_key": ..., "trait_value": ...} as the
// Flagsmith API writes them. Blank lines are skipped. name names the input
// in errors (file:line: message).
func ReadIdentities(r io.Reader, name string) ([]Identity, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var out []Identity
	seen := map[string]int{}
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		id, err := parseIdentity(b)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if first, dup := seen[id.Identifier]; dup {
			return nil, fmt.Errorf("%s:%d: identifier %q is already on line %d", name, line, id.Identifier, first)
		}
		seen[id.Identifier] = line
		out = append(out, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

func parseIdentity(b []byte) (Identity, error) {
	var doc struct {
		Identifier *string         `json:"identifier"`
		Traits     json.RawMessage `json:"traits"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return Identity{}, fmt.Errorf("not an identity object {\"identifier\": ..., \"traits\": {...}}: %w", err)
	}
	if dec.More() {
		return Identity{}, errors.New("more than one JSON value on the line")
	}
	if doc.Identifier == nil || *doc.Identifier == "" {
		return Identity{}, errors.New(`missing "identifier"`)
	}
	id := Identity{Identifier: *doc.Identifier}
	t := bytes.TrimSpace(doc.Traits)
	switch {
	case len(t) == 0 || string(t) == "null":
	case t[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.UseNumber()
		if err := dec.Decode(&id.Traits); err != nil {
			return Identity{}, fmt.Errorf("traits: %w", err)
		}
	case t[0] == '[':
		var list []struct {
			Key   *string `json:"trait_key"`
			Value any     `json:"trait_value"`
		}
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.UseNumber()
		if err := dec.Decode(&list); err != nil {
			return Identity{}, fmt.Errorf("traits: %w", err)
		}
		id.Traits = make(map[string]any, len(list))
		for i, tr := range list {
			if tr.Key == nil {
				return Identity{}, fmt.Errorf("traits[%d]: missing \"trait_key\"", i)
			}
			id.Traits[*tr.Key] = tr.Value
		}
	default:
		return Identity{}, errors.New(`"traits" must be an object of trait values or a list of {"trait_key", "trait_value"}`)
	}
	for k, v := range id.Traits {
		switch v.(type) {
		case nil, string, bool, json.Number:
		default:
			return Identity{}, fmt.Errorf("trait %q: a trait value is a string, number, boolean or null", k)
		}
	}
	return id, nil
}

// impact evaluates the identities on both sides, in the environments where
// something changed.
func impact(base, head *flagrepo.Snapshot, ids *IdentitySet, examples int) (*IdentityImpact, error) {
	out := &IdentityImpact{Source: ids.Source, Environments: []EnvironmentImpact{}}
	set := changes.Between(base, head)
	if len(set.Environments) == 0 {
		return out, nil
	}
	baseModels, err := evaluator.CompileSnapshot(base, nil)
	if err != nil {
		return nil, fmt.Errorf("compile BASE: %w", err)
	}
	headModels, err := evaluator.CompileSnapshot(head, baseModels)
	if err != nil {
		return nil, fmt.Errorf("compile HEAD: %w", err)
	}
	for _, ek := range slices.Sorted(maps.Keys(set.Environments)) {
		e := set.Environments[ek]
		ei := EnvironmentImpact{Environment: ek, Features: []FeatureImpact{}}
		switch e.Kind {
		case changes.Added:
			ei.Note = "new environment: nothing to compare with"
			out.Environments = append(out.Environments, ei)
			continue
		case changes.Removed:
			ei.Note = "removed environment"
			out.Environments = append(out.Environments, ei)
			continue
		}
		var features []string
		var probes map[string]*probe // segment-only features: by segment
		gates := map[string][]string{}
		if e.ReevaluateAll() {
			// The environment's name or client key changed: any feature may
			// evaluate differently. One whose state is the same on both
			// sides differs only through its segments (conditions may read
			// $.environment.*, percentage splits hash the identity key), or
			// its split when the identity key changed.
			oe, ne := base.Environments[ek], head.Environments[ek]
			rekey := oe.ClientKey != ne.ClientKey
			for _, k := range head.FeatureKeys() {
				of, nf := base.Features[k], head.Features[k]
				if of == nil {
					continue
				}
				ro, rn := oe.Resolve(of), ne.Resolve(nf)
				if !changes.ResolvedEqual(&ro, &rn) || rekey && (hasAnySplit(oe, of) || hasAnySplit(ne, nf)) {
					features = append(features, k)
					continue
				}
				if len(rn.SegmentOverrides) == 0 {
					continue // the same flag for everyone
				}
				segs := make([]string, len(rn.SegmentOverrides))
				for i := range rn.SegmentOverrides {
					segs[i] = rn.SegmentOverrides[i].Segment
				}
				features = append(features, k)
				gates[k] = segs
			}
		} else {
			for k, f := range e.Features {
				if f.Kind != changes.Modified {
					continue
				}
				features = append(features, k)
				if onlySegments(f, set.Segments) {
					gates[k] = f.Segments
				}
			}
			slices.Sort(features)
		}
		for _, segs := range gates {
			for _, sk := range segs {
				if probes[sk] != nil {
					continue
				}
				if probes == nil {
					probes = map[string]*probe{}
				}
				p, err := newProbe(base, head, ek, sk)
				if err != nil {
					return nil, err
				}
				probes[sk] = p
			}
		}
		if len(features) == 0 {
			continue
		}
		people := ids.All
		if ids.ByEnvironment != nil {
			if people, err = ids.ByEnvironment(head.Environments[ek]); err != nil {
				return nil, err
			}
		}
		ei.Identities = len(people)
		ei.Features = evaluate(baseModels[ek], headModels[ek], features, gates, probes, people, examples)
		out.Environments = append(out.Environments, ei)
	}
	return out, nil
}

// onlySegments reports whether a feature's state in an environment is the
// same on both sides, and it changed only because segments it uses did
// (their rules or ids, the segments existing on both sides).
func onlySegments(f *changes.Feature, segs map[string]changes.Kind) bool {
	if len(f.Segments) == 0 || !changes.ResolvedEqual(f.Before, f.After) {
		return false
	}
	for _, s := range f.Segments {
		if segs[s] != changes.Modified {
			return false
		}
	}
	return true
}

// probe tells whether an identity is in a segment, on each side: a model
// of the environment holding only the segment and one feature it turns on.
// A feature whose state is the same on both sides and that uses only
// segments whose membership an identity keeps gives that identity the
// same flag, so it is evaluated only for the identities a probe flags.
type probe struct{ base, head *evaluator.Model }

const probeFeature = "probe"

func newProbe(base, head *flagrepo.Snapshot, env, segment string) (*probe, error) {
	model := func(s *flagrepo.Snapshot) (*evaluator.Model, error) {
		e, g := s.Environments[env], s.Segments[segment]
		return evaluator.Compile(&evaluator.Environment{
			Key:      e.ClientKey,
			Name:     e.Name,
			Features: []evaluator.Feature{{Key: "0", Name: probeFeature}},
			Segments: []evaluator.Segment{{
				Key:       strconv.FormatInt(g.ID, 10),
				Name:      g.Key,
				Rules:     evalRules(g.Rules),
				Overrides: []evaluator.Override{{Name: probeFeature, Enabled: true}},
			}},
		})
	}
	b, err := model(base)
	if err != nil {
		return nil, fmt.Errorf("segment %s in BASE: %w", segment, err)
	}
	h, err := model(head)
	if err != nil {
		return nil, fmt.Errorf("segment %s in HEAD: %w", segment, err)
	}
	return &probe{b, h}, nil
}

// moves reports whether the identity's membership differs between the
// sides.
func (p *probe) moves(id *evaluator.Identity) bool {
	b, _ := p.base.Flag(probeFeature, id)
	h, _ := p.head.Flag(probeFeature, id)
	return b.Enabled != h.Enabled
}

// evalRules converts rules as evaluator.FromSnapshot does.
func evalRules(rs []flagrepo.Rule) []evaluator.Rule {
	if len(rs) == 0 {
		return nil
	}
	out := make([]evaluator.Rule, len(rs))
	for i, r := range rs {
		out[i] = evaluator.Rule{Type: r.Type, Rules: evalRules(r.Rules)}
		for _, c := range r.Conditions {
			out[i].Conditions = append(out[i].Conditions, evaluator.Condition{Property: c.Property, Operator: c.Operator, Value: c.Value})
		}
	}
	return out
}

// evaluate counts, per feature, the identities whose flag differs between
// the two models, in parallel. A feature of gates is evaluated only for
// the identities whose membership of one of its segments (probes) moves.
func evaluate(bm, hm *evaluator.Model, features []string, gates map[string][]string, probes map[string]*probe, people []Identity, examples int) []FeatureImpact {
	type found struct {
		index int
		ex    IdentityExample
	}
	type tally struct {
		changed  []int
		examples [][]found // per feature, the first ones found (lowest index)
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), len(people)/256))
	tallies := make([]tally, workers)
	var wg sync.WaitGroup
	chunk := (len(people) + workers - 1) / workers
	for w := range workers {
		lo, hi := w*chunk, min(len(people), (w+1)*chunk)
		t := &tallies[w]
		t.changed = make([]int, len(features))
		t.examples = make([][]found, len(features))
		wg.Go(func() {
			var id evaluator.Identity
			moved := make(map[string]bool, len(probes))
			for i := lo; i < hi; i++ {
				p := &people[i]
				id = evaluator.Identity{Identifier: p.Identifier, Traits: p.Traits}
				clear(moved)
				for sk, pr := range probes {
					moved[sk] = pr.moves(&id)
				}
				for fi, name := range features {
					if segs, gated := gates[name]; gated && !slices.ContainsFunc(segs, func(s string) bool { return moved[s] }) {
						continue
					}
					bf, _ := bm.Flag(name, &id)
					hf, _ := hm.Flag(name, &id)
					if bf.Enabled == hf.Enabled && bf.Value == hf.Value {
						continue
					}
					t.changed[fi]++
					if len(t.examples[fi]) < examples {
						t.examples[fi] = append(t.examples[fi], found{i, IdentityExample{
							Identifier: p.Identifier,
							Before:     FlagResult{bf.Enabled, bf.Value},
							After:      FlagResult{hf.Enabled, hf.Value},
						}})
					}
				}
			}
		})
	}
	wg.Wait()
	out := make([]FeatureImpact, len(features))
	for fi, name := range features {
		fimp := FeatureImpact{Feature: name, Examples: []IdentityExample{}}
		var all []found
		for w := range tallies {
			fimp.Changed += tallies[w].changed[fi]
			all = append(all, tallies[w].examples[fi]...)
		}
		slices.SortFunc(all, func(a, b found) int { return a.index - b.index })
		for _, f := range all[:min(len(all), examples)] {
			fimp.Examples = append(fimp.Examples, f.ex)
		}
		if len(people) > 0 {
			fimp.Percent = float64(fimp.Changed) / float64(len(people)) * 100
		}
		out[fi] = fimp
	}
	slices.SortStableFunc(out, func(a, b FeatureImpact) int { return b.Changed - a.Changed })
	return out
}
