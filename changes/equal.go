package changes

import (
	"maps"
	"slices"

	"github.com/gitflags/gitflags/flagrepo"
)

// ResolvedEqual reports whether two effective states of a feature give every
// client the same flag: id, visibility to client keys, enabled, value,
// variants (id, key, value, weight) and overrides, segments named by key
// (a segment's own changes are not compared). Descriptions, tags and owners
// do not count.
func ResolvedEqual(a, b *flagrepo.Resolved) bool {
	fa, fb := a.Feature, b.Feature
	if fa.ID != fb.ID || fa.ServerKeyOnly != fb.ServerKeyOnly || a.Enabled != b.Enabled || a.Value != b.Value {
		return false
	}
	return slices.EqualFunc(a.Weights, b.Weights, func(x, y flagrepo.VariantWeight) bool {
		return x.Weight == y.Weight && x.Variant.ID == y.Variant.ID && x.Variant.Key == y.Variant.Key && x.Variant.Value == y.Variant.Value
	}) &&
		slices.EqualFunc(a.SegmentOverrides, b.SegmentOverrides, func(x, y flagrepo.SegmentOverride) bool {
			return x.Segment == y.Segment && x.Priority == y.Priority && x.Enabled == y.Enabled && x.Value == y.Value && weightsEqual(x.Weights, y.Weights)
		}) &&
		slices.EqualFunc(a.IdentityOverrides, b.IdentityOverrides, func(x, y flagrepo.IdentityOverride) bool {
			return x.Enabled == y.Enabled && x.Value == y.Value && slices.Equal(x.Identifiers, y.Identifiers)
		})
}

// stateEqual is ResolvedEqual of features a and b with the states sa and
// sb (nil: none), without resolving them.
func stateEqual(a, b *flagrepo.Feature, sa, sb *flagrepo.FeatureState) bool {
	if a.ID != b.ID || a.ServerKeyOnly != b.ServerKeyOnly || len(a.Variants) != len(b.Variants) {
		return false
	}
	var zero flagrepo.FeatureState
	if sa == nil {
		sa = &zero
	}
	if sb == nil {
		sb = &zero
	}
	if enabled(a, sa) != enabled(b, sb) || value(a, sa) != value(b, sb) {
		return false
	}
	for i := range a.Variants {
		x, y := &a.Variants[i], &b.Variants[i]
		if x.ID != y.ID || x.Key != y.Key || x.Value != y.Value || weight(x, sa) != weight(y, sb) {
			return false
		}
	}
	ra := flagrepo.Resolved{Feature: a, SegmentOverrides: sa.SegmentOverrides, IdentityOverrides: sa.IdentityOverrides}
	rb := flagrepo.Resolved{Feature: b, SegmentOverrides: sb.SegmentOverrides, IdentityOverrides: sb.IdentityOverrides}
	return ResolvedEqual(&ra, &rb)
}

func enabled(f *flagrepo.Feature, s *flagrepo.FeatureState) bool {
	if s.Enabled != nil {
		return *s.Enabled
	}
	return f.Default.Enabled
}

func value(f *flagrepo.Feature, s *flagrepo.FeatureState) flagrepo.Value {
	if s.Value.Set {
		return s.Value.Value
	}
	return f.Default.Value.Value
}

// weight is variant v's weight with state s (as flagrepo.Resolve reads it).
func weight(v *flagrepo.Variant, s *flagrepo.FeatureState) float64 {
	if s.Weights != nil {
		return s.Weights[v.Key]
	}
	return v.Weight
}

// weightsEqual compares a segment override's weights; nil (no split) differs
// from an empty map.
func weightsEqual(a, b map[string]float64) bool {
	return (a == nil) == (b == nil) && maps.Equal(a, b)
}

// segmentEqual reports whether two versions of a segment match the same
// identities: same id (percentage splits hash it) and same rules.
func segmentEqual(a, b *flagrepo.Segment) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil || a.ID != b.ID {
		return false
	}
	return rulesEqual(a.Rules, b.Rules)
}

func rulesEqual(a, b []flagrepo.Rule) bool {
	return slices.EqualFunc(a, b, func(x, y flagrepo.Rule) bool {
		return x.Type == y.Type && rulesEqual(x.Rules, y.Rules) &&
			slices.EqualFunc(x.Conditions, y.Conditions, func(p, q flagrepo.Condition) bool {
				return p.Property == q.Property && p.Operator == q.Operator && p.Value == q.Value
			})
	})
}
