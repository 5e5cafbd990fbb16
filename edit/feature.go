package edit

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gitflags/gitflags/flagrepo"
)

// FeatureSpec is a feature's definition for CreateFeature and UpdateFeature.
// A zero field is left as it is (absent from a new feature).
type FeatureSpec struct {
	Description *string // "" removes it
	Enabled     *bool   // default.enabled; false for a new feature without it
	// Value, when Set, is default.value (the control value of a multivariate
	// feature). Its type is the feature's type: see SetFeatureState.
	Value flagrepo.OptionalValue
	// Variants, when not nil, is the new list of variants. A variant keeps its
	// id by its key; a new key gets the next unused id of the feature.
	Variants      []Variant
	Owners, Tags  []string // when not nil, the new list
	ServerKeyOnly *bool
}

// Variant is one value of a multivariate feature.
type Variant struct {
	Key    string
	Value  flagrepo.Value
	Weight float64 // default percentage
}

// Limits of a feature's fields (as the schema says).
const (
	maxVariants    = 100
	maxListItems   = 50
	maxDescription = 2000
)

// CreateFeature adds features/<key>.json with the next feature id (one more
// than the largest id of snap).
func CreateFeature(snap *flagrepo.Snapshot, files Files, key string, spec FeatureSpec) (Result, error) {
	if err := checkNewKey("feature", key, snap.FeatureKeys()); err != nil {
		return Result{}, err
	}
	f := &flagrepo.Feature{Key: key}
	if err := checkFeatureSpec(f, &spec); err != nil {
		return Result{}, err
	}
	path := featurePath(key)
	if doc, _, err := readDoc(files, path); err != nil || doc != nil {
		if err == nil {
			err = inputErr("key", "%s already exists", path)
		}
		return Result{}, err
	}
	var id int64
	for _, f := range snap.Features {
		id = max(id, f.ID)
	}
	doc := objectNode()
	doc.set("$schema", stringNode(featureSchema), featureOrder)
	doc.set("id", numberNode(strconv.FormatInt(id+1, 10)), featureOrder)
	def := objectNode()
	def.set("enabled", boolNode(spec.Enabled != nil && *spec.Enabled), defaultOrder)
	doc.set("default", def, featureOrder)
	applyFeatureSpec(doc, f, spec)
	return Result{Changes: changes(path, nil, doc), Summary: "feature " + key + " created"}, nil
}

// UpdateFeature changes features/<key>.json. Changing the type of the
// default value is refused while an environment holds a value of the old type.
func UpdateFeature(snap *flagrepo.Snapshot, files Files, key string, spec FeatureSpec) (Result, error) {
	f, err := lookupFeature(snap, key)
	if err != nil {
		return Result{}, err
	}
	if err := checkFeatureSpec(f, &spec); err != nil {
		return Result{}, err
	}
	if spec.Value.Set {
		if err := checkEnvironmentValues(snap, f, spec.Value.Value); err != nil {
			return Result{}, err
		}
	}
	path := featurePath(key)
	doc, old, err := readDoc(files, path)
	if err != nil {
		return Result{}, err
	}
	if doc == nil {
		return Result{}, &NotFoundError{Kind: "feature", Key: key}
	}
	before := doc.encode()
	parts := applyFeatureSpec(doc, f, spec)
	if len(parts) == 0 || string(before) == string(doc.encode()) {
		return Result{Summary: "feature " + key + " no change"}, nil
	}
	return Result{Changes: changes(path, old, doc), Summary: "feature " + key + " changed: " + strings.Join(parts, ", ")}, nil
}

// DeleteFeature removes features/<key>.json and the feature's state in every
// environment.
func DeleteFeature(snap *flagrepo.Snapshot, files Files, key string) (Result, error) {
	if _, err := lookupFeature(snap, key); err != nil {
		return Result{}, err
	}
	c := map[string][]byte{featurePath(key): nil}
	var envs []string
	for _, env := range snap.EnvironmentKeys() {
		path := statePath(env, key)
		doc, _, err := readDoc(files, path)
		if err != nil {
			return Result{}, err
		}
		if doc != nil {
			c[path] = nil
			envs = append(envs, env)
		}
	}
	summary := "feature " + key + " deleted"
	if len(envs) > 0 {
		summary += ", with its state in " + strings.Join(envs, ", ")
	}
	return Result{Changes: c, Summary: summary}, nil
}

// checkFeatureSpec checks spec for feature f (the current one, or a new one
// with only its key), normalising its values.
func checkFeatureSpec(f *flagrepo.Feature, spec *FeatureSpec) error {
	if spec.Description != nil {
		if err := checkText("description", *spec.Description, 0, maxDescription); err != nil {
			return err
		}
	}
	// The feature as it would be, for the type of its values.
	typed := &flagrepo.Feature{Key: f.Key, Default: f.Default}
	if spec.Value.Set {
		if err := checkValue("value", nil, &spec.Value.Value); err != nil {
			return err
		}
		typed.Default.Value = spec.Value
	}
	if spec.Variants != nil {
		if len(spec.Variants) > maxVariants {
			return inputErr("variants", "%d variants; at most %d are allowed", len(spec.Variants), maxVariants)
		}
		seen := map[string]bool{}
		total := 0.0
		for i := range spec.Variants {
			v := &spec.Variants[i]
			field := fmt.Sprintf("variants[%d]", i)
			switch {
			case len(v.Key) > flagrepo.MaxKeyLength:
				return inputErr(field+".key", "is %d characters long; at most %d are allowed", len(v.Key), flagrepo.MaxKeyLength)
			case !flagrepo.KeyPattern.MatchString(v.Key):
				return inputErr(field+".key", "%s is not a valid key: use letters, digits, '_', '.' and '-', starting with a letter or digit", quote(v.Key))
			case seen[v.Key]:
				return inputErr(field+".key", "variant %q is listed twice", v.Key)
			case math.IsNaN(v.Weight) || v.Weight < 0 || v.Weight > 100:
				return inputErr(field+".weight", "%s is not a percentage from 0 to 100", formatFloat(v.Weight))
			}
			seen[v.Key] = true
			total += v.Weight
			if err := checkValue(field+".value", typed, &v.Value); err != nil {
				return err
			}
		}
		if total > 100+1e-9 {
			return inputErr("variants", "the variants' weights add up to %s%%; at most 100%% is allowed", formatFloat(total))
		}
	} else if spec.Value.Set {
		for i, v := range f.Variants {
			if want, got := valueType(spec.Value.Value), valueType(v.Value.Value); want != "" && got != want {
				return inputErr("value", "a %s default value, but variant %q (variants[%d]) has the %s value %s: change the variants too", want, v.Key, i, got, formatValue(v.Value.Value))
			}
		}
	}
	for name, list := range map[string][]string{"owners": spec.Owners, "tags": spec.Tags} {
		if len(list) > maxListItems {
			return inputErr(name, "%d items; at most %d are allowed", len(list), maxListItems)
		}
		for i, s := range list {
			maxLen := 100
			if name == "owners" {
				maxLen = 200
			}
			if err := checkText(fmt.Sprintf("%s[%d]", name, i), s, 1, maxLen); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkEnvironmentValues refuses a default value of a type other than the
// values environments give feature f.
func checkEnvironmentValues(snap *flagrepo.Snapshot, f *flagrepo.Feature, v flagrepo.Value) error {
	want := valueType(v)
	if want == "" || want == valueType(f.Default.Value.Value) {
		return nil
	}
	for _, env := range snap.EnvironmentKeys() {
		st := snap.Environments[env].Features[f.Key]
		if st == nil {
			continue
		}
		type at struct {
			ptr string
			v   flagrepo.OptionalValue
		}
		values := []at{{"/value", st.Value}}
		for i, o := range st.SegmentOverrides {
			values = append(values, at{fmt.Sprintf("/segment_overrides/%d/value", i), o.Value})
		}
		for i, o := range st.IdentityOverrides {
			values = append(values, at{fmt.Sprintf("/identity_overrides/%d/value", i), o.Value})
		}
		for _, x := range values {
			if got := valueType(x.v.Value); x.v.Set && got != "" && got != want {
				return inputErr("value", "a %s default value, but %s has the %s value %s at %s: change it first",
					want, statePath(env, f.Key), got, formatValue(x.v.Value), x.ptr)
			}
		}
	}
	return nil
}

// applyFeatureSpec writes spec (checked) into the feature document doc of
// feature f and says what changed.
func applyFeatureSpec(doc *node, f *flagrepo.Feature, spec FeatureSpec) (parts []string) {
	if spec.Description != nil {
		cur := doc.get("description")
		switch {
		case *spec.Description == "" && cur != nil:
			doc.remove("description")
			parts = append(parts, "description removed")
		case *spec.Description != "" && (cur == nil || cur.text != *spec.Description):
			doc.set("description", stringNode(*spec.Description), featureOrder)
			parts = append(parts, "description")
		}
	}
	def := doc.get("default")
	if def == nil || def.kind != kObject {
		def = objectNode()
		doc.set("default", def, featureOrder)
	}
	if spec.Enabled != nil {
		if cur := def.get("enabled"); cur == nil || (cur.text == "true") != *spec.Enabled {
			def.set("enabled", boolNode(*spec.Enabled), defaultOrder)
			parts = append(parts, "default "+onOff(*spec.Enabled))
		}
	}
	if spec.Value.Set {
		cur := def.get("value")
		if v, ok := nodeValue(orNull(cur)); cur == nil || !ok || v != spec.Value.Value {
			def.set("value", valueNode(spec.Value.Value), defaultOrder)
			part := "default value " + formatValue(spec.Value.Value)
			if cur != nil {
				part += " (was " + formatValue(v) + ")"
			}
			parts = append(parts, part)
		}
	}
	if spec.Variants != nil {
		if n := variantsNode(doc.get("variants"), spec.Variants); !equal(n, doc.get("variants")) {
			if len(n.items) == 0 {
				doc.remove("variants")
			} else {
				doc.set("variants", n, featureOrder)
			}
			if doc.get("variants") != nil || len(f.Variants) > 0 {
				parts = append(parts, "variants")
			}
		}
	}
	for _, l := range []struct {
		name string
		list []string
	}{{"owners", spec.Owners}, {"tags", spec.Tags}} {
		if l.list == nil {
			continue
		}
		n := arrayNode()
		for _, s := range l.list {
			n.items = append(n.items, stringNode(s))
		}
		cur := doc.get(l.name)
		switch {
		case len(l.list) == 0 && cur != nil:
			doc.remove(l.name)
			parts = append(parts, l.name)
		case len(l.list) > 0 && !equal(n, cur):
			doc.set(l.name, n, featureOrder)
			parts = append(parts, l.name)
		}
	}
	if spec.ServerKeyOnly != nil {
		cur := doc.get("server_key_only")
		on := cur != nil && cur.text == "true"
		if *spec.ServerKeyOnly != on {
			if *spec.ServerKeyOnly {
				doc.set("server_key_only", boolNode(true), featureOrder)
			} else {
				doc.remove("server_key_only")
			}
			parts = append(parts, "server_key_only "+onOff(*spec.ServerKeyOnly))
		}
	}
	return parts
}

// variantsNode writes variants over the variants array old (nil for none):
// a variant whose key old has keeps its id and its place, new ones follow
// with ids after the largest in old.
func variantsNode(old *node, variants []Variant) *node {
	byKey := map[string]*node{}
	var next int64 = 1
	var order []string
	if old != nil {
		for _, it := range old.items {
			if k := it.get("key"); k != nil {
				byKey[k.text] = it
				order = append(order, k.text)
			}
			if id := it.get("id"); id != nil {
				n, _ := strconv.ParseInt(id.text, 10, 64)
				next = max(next, n+1)
			}
		}
	}
	want := map[string]*Variant{}
	for i := range variants {
		want[variants[i].Key] = &variants[i]
	}
	out := arrayNode()
	for _, k := range order {
		v := want[k]
		if v == nil {
			continue
		}
		it := &node{kind: kObject, fields: append([]field(nil), byKey[k].fields...)}
		if cur, ok := nodeValue(orNull(it.get("value"))); it.get("value") == nil || !ok || cur != v.Value {
			it.set("value", valueNode(v.Value), variantOrder)
		}
		if w := it.get("weight"); w != nil || v.Weight != 0 {
			it.set("weight", weightNode(v.Weight, w), variantOrder)
		}
		out.items = append(out.items, it)
	}
	for _, v := range variants {
		if byKey[v.Key] != nil {
			continue
		}
		it := objectNode()
		it.set("id", numberNode(strconv.FormatInt(next, 10)), variantOrder)
		it.set("key", stringNode(v.Key), variantOrder)
		it.set("value", valueNode(v.Value), variantOrder)
		it.set("weight", weightNode(v.Weight, nil), variantOrder)
		next++
		out.items = append(out.items, it)
	}
	return out
}
