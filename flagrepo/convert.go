package flagrepo

import (
	"encoding/json"
	"math"
)

// The loader decodes every file once into a generic tree for the schema.
// For the two kinds that make up almost all of a large repository (feature
// states and features), the typed document is then built from that tree
// rather than by decoding the bytes a second time. The tree is
// schema-valid, so every type assertion below holds; conversions of numbers
// follow encoding/json's (json.Number kept in OptionalValue until
// normalizeValue).

func featureStateFromTree(m map[string]any) *FeatureState {
	st := &FeatureState{Schema: str(m["$schema"])}
	if v, ok := m["enabled"].(bool); ok {
		st.Enabled = &v
	}
	st.Value = optional(m, "value")
	st.Weights = weights(m["weights"])
	if l, ok := m["segment_overrides"].([]any); ok {
		st.SegmentOverrides = make([]SegmentOverride, 0, len(l))
	}
	for _, o := range list(m["segment_overrides"]) {
		om := o.(map[string]any)
		st.SegmentOverrides = append(st.SegmentOverrides, SegmentOverride{
			Segment:  str(om["segment"]),
			Priority: int(integer(om["priority"])),
			Enabled:  om["enabled"] == true,
			Value:    optional(om, "value"),
			Weights:  weights(om["weights"]),
		})
	}
	if l, ok := m["identity_overrides"].([]any); ok {
		st.IdentityOverrides = make([]IdentityOverride, 0, len(l))
	}
	for _, o := range list(m["identity_overrides"]) {
		om := o.(map[string]any)
		st.IdentityOverrides = append(st.IdentityOverrides, IdentityOverride{
			Identifiers: strs(om["identifiers"]),
			Enabled:     om["enabled"] == true,
			Value:       optional(om, "value"),
		})
	}
	return st
}

func featureFromTree(m map[string]any) *Feature {
	f := &Feature{
		Schema:        str(m["$schema"]),
		ID:            integer(m["id"]),
		Description:   str(m["description"]),
		Tags:          strs(m["tags"]),
		Owners:        strs(m["owners"]),
		ServerKeyOnly: m["server_key_only"] == true,
	}
	if d, ok := m["default"].(map[string]any); ok {
		f.Default = State{Enabled: d["enabled"] == true, Value: optional(d, "value")}
	}
	if l, ok := m["variants"].([]any); ok {
		f.Variants = make([]Variant, 0, len(l))
	}
	for _, v := range list(m["variants"]) {
		vm := v.(map[string]any)
		f.Variants = append(f.Variants, Variant{
			ID:     integer(vm["id"]),
			Key:    str(vm["key"]),
			Value:  optional(vm, "value"),
			Weight: number(vm["weight"]),
		})
	}
	return f
}

func str(v any) string { s, _ := v.(string); return s }

func list(v any) []any { l, _ := v.([]any); return l }

func strs(v any) []string {
	l := list(v)
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = str(s)
	}
	return out
}

func optional(m map[string]any, key string) OptionalValue {
	v, ok := m[key]
	return OptionalValue{Set: ok, Value: v}
}

func number(v any) float64 {
	n, _ := v.(json.Number)
	f, _ := n.Float64()
	return f
}

// integer converts a schema-checked integer (which may be written 1.0 or 1e3).
func integer(v any) int64 {
	n, _ := v.(json.Number)
	if i, err := n.Int64(); err == nil {
		return i
	}
	f, _ := n.Float64()
	return int64(math.Trunc(f))
}

func weights(v any) map[string]float64 {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, w := range m {
		out[k] = number(w)
	}
	return out
}
