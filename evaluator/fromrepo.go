package evaluator

import (
	"fmt"
	"strconv"

	"github.com/gitflags/gitflags/flagrepo"
)

// FromSnapshot builds the evaluation input for environment envKey of a
// validated snapshot. Hash keys are the repository's stable ids: a feature's
// id for its multivariate split, a segment's id for PERCENTAGE_SPLIT, and a
// variant's id orders the variants. Features and segments come in key order.
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
			value := r.Value
			if o.Value.Set {
				value = o.Value.Value
			}
			p := float64(o.Priority)
			overrides[o.Segment] = append(overrides[o.Segment], Override{
				Name:     f.Key,
				Enabled:  o.Enabled,
				Value:    value,
				Priority: &p,
				Variants: variants(o.OverrideWeights(f)),
			})
		}
		for _, o := range r.IdentityOverrides {
			value := r.Value
			if o.Value.Set {
				value = o.Value.Value
			}
			for _, id := range o.Identifiers {
				if env.IdentityOverrides == nil {
					env.IdentityOverrides = map[string][]Override{}
				}
				env.IdentityOverrides[id] = append(env.IdentityOverrides[id], Override{Name: f.Key, Enabled: o.Enabled, Value: value})
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

// CompileSnapshot compiles every environment of snap, by environment key.
func CompileSnapshot(snap *flagrepo.Snapshot) (map[string]*Model, error) {
	models := make(map[string]*Model, len(snap.Environments))
	for _, key := range snap.EnvironmentKeys() {
		env, err := FromSnapshot(snap, key)
		if err != nil {
			return nil, err
		}
		m, err := Compile(env)
		if err != nil {
			return nil, fmt.Errorf("environment %s: %w", key, err)
		}
		models[key] = m
	}
	return models, nil
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
