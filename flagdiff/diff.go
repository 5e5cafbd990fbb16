package flagdiff

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gitflags/gitflags/changes"
	"github.com/gitflags/gitflags/flagrepo"
)

// builder turns changes.Between's per-environment changes into Changes.
type builder struct {
	base, head *flagrepo.Snapshot
	set        changes.Set
	out        []Change
	uses       map[string]*segmentUse // by segment key, built on first use
}

// production reports whether environment key is a production environment:
// its key is production or prod, or it requires review on either side.
func (b *builder) production(key string) bool {
	if key == "production" || key == "prod" {
		return true
	}
	for _, s := range []*flagrepo.Snapshot{b.base, b.head} {
		if e := s.Environments[key]; e != nil && e.ReviewRequired {
			return true
		}
	}
	return false
}

// add appends a change, adding the production risk where it applies.
func (b *builder) add(c Change) {
	if c.Environment != "" && b.production(c.Environment) && !slices.Contains(c.Risks, RiskProduction) {
		c.Risks = append([]string{RiskProduction}, c.Risks...)
	}
	if c.Risks == nil {
		c.Risks = []string{}
	}
	b.out = append(b.out, c)
}

// build lists the changes from base to head.
func build(base, head *flagrepo.Snapshot) []Change {
	b := &builder{base: base, head: head, set: changes.Between(base, head)}
	b.settings()
	for _, k := range slices.Sorted(maps.Keys(b.set.Features)) {
		b.featureDefinition(k, b.set.Features[k])
	}
	for _, k := range slices.Sorted(maps.Keys(b.set.Segments)) {
		b.segment(k, b.set.Segments[k])
	}
	for _, k := range slices.Sorted(maps.Keys(b.set.Environments)) {
		b.environment(b.set.Environments[k])
	}
	return b.out
}

// sortChanges orders changes by environment (repository-wide first), risky
// first within an environment, then as they were made.
func sortChanges(cs []Change) {
	slices.SortStableFunc(cs, func(x, y Change) int {
		rx, ry := 0, 0
		if x.Risky() {
			rx = -1
		}
		if y.Risky() {
			ry = -1
		}
		return cmp.Or(cmp.Compare(x.Environment, y.Environment), cmp.Compare(rx, ry))
	})
}

func (b *builder) settings() {
	for _, field := range b.set.Settings {
		c := Change{Subject: "settings", Key: field, Kind: "settings_changed"}
		bs, hs := &b.base.Settings, &b.head.Settings
		switch field {
		case "format_version":
			c.Message = fmt.Sprintf("format version %d -> %d", bs.FormatVersion, hs.FormatVersion)
			c.Before, c.After = raw(bs.FormatVersion), raw(hs.FormatVersion)
		case "project":
			var parts []string
			if bs.Project.ID != hs.Project.ID {
				parts = append(parts, fmt.Sprintf("id %d -> %d", bs.Project.ID, hs.Project.ID))
			}
			if bs.Project.Name != hs.Project.Name {
				parts = append(parts, fmt.Sprintf("name %s -> %s", val(bs.Project.Name), val(hs.Project.Name)))
			}
			if bs.Project.HideDisabledFlags != hs.Project.HideDisabledFlags {
				parts = append(parts, fmt.Sprintf("hide_disabled_flags %t -> %t (environments without their own setting)", bs.Project.HideDisabledFlags, hs.Project.HideDisabledFlags))
			}
			c.Message = "project " + strings.Join(parts, ", ")
			c.Before, c.After = raw(bs.Project), raw(hs.Project)
		default:
			c.Message = "organisation changed"
			c.Before, c.After = raw(bs.Organisation), raw(hs.Organisation)
		}
		b.add(c)
	}
}

// featureDefinition describes a change of features/<key>.json as a whole:
// what every environment shares. Effects on each environment's state are
// the environment's changes.
func (b *builder) featureDefinition(key string, kind changes.Kind) {
	c := Change{Subject: "feature", Key: key}
	switch kind {
	case changes.Added:
		f := b.head.Features[key]
		c.Kind = "feature_added"
		c.Message = fmt.Sprintf("feature %s added: %s", code(key), definitionText(f))
		b.add(c)
		return
	case changes.Removed:
		c.Kind = "feature_removed"
		var envs []string
		for _, ek := range b.base.EnvironmentKeys() {
			if b.base.Environments[ek].Resolve(b.base.Features[key]).Enabled {
				envs = append(envs, ek)
			}
		}
		c.Message = fmt.Sprintf("feature %s removed", code(key))
		if len(envs) > 0 {
			c.Message += fmt.Sprintf(" (it was on in %s)", strings.Join(envs, ", "))
		}
		b.add(c)
		return
	}
	o, n := b.base.Features[key], b.head.Features[key]
	if o.ID != n.ID {
		var where []string
		for _, ek := range b.head.EnvironmentKeys() {
			if oe := b.base.Environments[ek]; oe != nil && (hasAnySplit(oe, o) || hasAnySplit(b.head.Environments[ek], n)) {
				where = append(where, ek)
			}
		}
		c := Change{Subject: "feature", Key: key, Kind: "feature_id_changed", Field: "id", Before: raw(o.ID), After: raw(n.ID)}
		c.Message = fmt.Sprintf("feature %s id %d -> %d: Flagsmith SDKs see a new feature id", code(key), o.ID, n.ID)
		if len(where) > 0 {
			c.Message += fmt.Sprintf(", and every identity is re-bucketed in its splits (%s)", strings.Join(where, ", "))
			c.Risks = []string{RiskRebuckets}
		}
		b.add(c)
	}
	if o.Default.Enabled != n.Default.Enabled {
		b.add(Change{Subject: "feature", Key: key, Kind: "feature_default_changed", Field: "enabled", Before: raw(o.Default.Enabled), After: raw(n.Default.Enabled),
			Message: fmt.Sprintf("feature %s default %s -> %s (environments without their own enabled)", code(key), onOff(o.Default.Enabled), onOff(n.Default.Enabled))})
	}
	if o.Default.Value.Value != n.Default.Value.Value {
		b.add(Change{Subject: "feature", Key: key, Kind: "feature_default_changed", Field: "value", Before: raw(o.Default.Value.Value), After: raw(n.Default.Value.Value),
			Message: fmt.Sprintf("feature %s default value %s -> %s (environments without their own value)", code(key), val(o.Default.Value.Value), val(n.Default.Value.Value))})
	}
	b.variants(key, o, n)
	var details []string
	if o.Description != n.Description {
		details = append(details, "description")
	}
	if !slices.Equal(o.Tags, n.Tags) {
		details = append(details, fmt.Sprintf("tags %s -> %s", setText(o.Tags), setText(n.Tags)))
	}
	if !slices.Equal(o.Owners, n.Owners) {
		details = append(details, fmt.Sprintf("owners %s -> %s", setText(o.Owners), setText(n.Owners)))
	}
	if len(details) > 0 {
		b.add(Change{Subject: "feature", Key: key, Kind: "feature_details_changed",
			Message: fmt.Sprintf("feature %s: %s changed", code(key), strings.Join(details, "; "))})
	}
}

// setText formats a list of tags or owners.
func setText(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return list(s, 10)
}

// definitionText summarises a new feature.
func definitionText(f *flagrepo.Feature) string {
	s := fmt.Sprintf("default %s, value %s", onOff(f.Default.Enabled), val(f.Default.Value.Value))
	if f.Multivariate() {
		var bs []band
		for _, v := range f.Variants {
			bs = append(bs, band{key: v.Key, weight: v.Weight})
		}
		s += ", variants " + splitText(bs)
	}
	if f.ServerKeyOnly {
		s += ", server keys only"
	}
	return s
}

// hasAnySplit reports whether feature f splits identities in environment e
// (its weights or a segment override's).
func hasAnySplit(e *flagrepo.Environment, f *flagrepo.Feature) bool {
	if e == nil || f == nil || !f.Multivariate() {
		return false
	}
	r := e.Resolve(f)
	if hasSplit(bands(r.Weights)) {
		return true
	}
	for i := range r.SegmentOverrides {
		if hasSplit(bands(r.SegmentOverrides[i].OverrideWeights(f))) {
			return true
		}
	}
	return false
}

// variants describes changes of a feature's variants.
func (b *builder) variants(key string, o, n *flagrepo.Feature) {
	for _, nv := range n.Variants {
		ov := o.Variant(nv.Key)
		c := Change{Subject: "feature", Key: key, Field: nv.Key}
		switch {
		case ov == nil:
			c.Kind, c.Message = "variant_added", fmt.Sprintf("feature %s: variant %s added (value %s, default weight %s%%)", code(key), code(nv.Key), val(nv.Value.Value), num(nv.Weight))
			b.add(c)
			continue
		}
		if ov.Value.Value != nv.Value.Value {
			c.Kind, c.Message = "variant_changed", fmt.Sprintf("feature %s: variant %s value %s -> %s", code(key), code(nv.Key), val(ov.Value.Value), val(nv.Value.Value))
			c.Before, c.After = raw(ov.Value.Value), raw(nv.Value.Value)
			b.add(c)
		}
		if ov.ID != nv.ID {
			c.Kind, c.Message = "variant_changed", fmt.Sprintf("feature %s: variant %s id %d -> %d (splits try variants in id order: the bands move)", code(key), code(nv.Key), ov.ID, nv.ID)
			c.Before, c.After = raw(ov.ID), raw(nv.ID)
			b.add(c)
		}
		if ov.Weight != nv.Weight {
			c.Kind, c.Message = "variant_changed", fmt.Sprintf("feature %s: variant %s default weight %s%% -> %s%% (environments without their own weights)", code(key), code(nv.Key), num(ov.Weight), num(nv.Weight))
			c.Before, c.After = raw(ov.Weight), raw(nv.Weight)
			b.add(c)
		}
	}
	for _, ov := range o.Variants {
		if n.Variant(ov.Key) == nil {
			b.add(Change{Subject: "feature", Key: key, Field: ov.Key, Kind: "variant_removed",
				Message: fmt.Sprintf("feature %s: variant %s removed (value %s)", code(key), code(ov.Key), val(ov.Value.Value))})
		}
	}
}

// usage returns the environments and features whose segment overrides use
// segment key, in either snapshot. The index of the changed segments' uses
// is built on first use: one pass over HEAD's feature states, and over
// BASE's states of the features that changed.
func (b *builder) usage(key string) (envs, features []string) {
	if b.uses == nil {
		b.uses = map[string]*segmentUse{}
		changed := slices.Collect(maps.Keys(b.set.Segments))
		isChanged := func(sk string) bool {
			if len(changed) <= 8 {
				return slices.Contains(changed, sk)
			}
			_, ok := b.set.Segments[sk]
			return ok
		}
		note := func(env, feature string, st *flagrepo.FeatureState) {
			for i := range st.SegmentOverrides {
				sk := st.SegmentOverrides[i].Segment
				if !isChanged(sk) {
					continue
				}
				u := b.uses[sk]
				if u == nil {
					u = &segmentUse{envs: map[string]bool{}, features: map[string]bool{}}
					b.uses[sk] = u
				}
				u.envs[env], u.features[feature] = true, true
			}
		}
		for ek, e := range b.head.Environments {
			for fk, st := range e.Features {
				note(ek, fk, st)
			}
		}
		// A state of BASE with other overrides than HEAD's changed the
		// feature's effective state: it is among the changes.
		for ek, e := range b.set.Environments {
			be := b.base.Environments[ek]
			if be == nil {
				continue
			}
			for fk := range e.Features {
				if st := be.Features[fk]; st != nil {
					note(ek, fk, st)
				}
			}
		}
	}
	u := b.uses[key]
	if u == nil {
		return nil, nil
	}
	return slices.Sorted(maps.Keys(u.envs)), slices.Sorted(maps.Keys(u.features))
}

// segmentUse is where a segment is used.
type segmentUse struct{ envs, features map[string]bool }

// segment describes a change of segments/<key>.json.
func (b *builder) segment(key string, kind changes.Kind) {
	envs, features := b.usage(key)
	used := fmt.Sprintf(" (used by %s in %s)", plural(len(features), "feature", "features"), plural(len(envs), "environment", "environments"))
	if len(features) == 0 {
		used = " (not used by any feature)"
	}
	var risks []string
	if slices.ContainsFunc(envs, b.production) {
		risks = append(risks, RiskProduction)
	}
	c := Change{Subject: "segment", Key: key}
	switch kind {
	case changes.Added:
		s := b.head.Segments[key]
		c.Kind = "segment_added"
		c.Message = fmt.Sprintf("segment %s added: %s%s", code(key), rulesText(s.Rules), used)
		c.Risks = risks
		b.add(c)
		return
	case changes.Removed:
		c.Kind = "segment_removed"
		c.Message = fmt.Sprintf("segment %s removed%s", code(key), used)
		c.Risks = risks
		b.add(c)
		return
	}
	o, n := b.base.Segments[key], b.head.Segments[key]
	if o.ID != n.ID {
		c := Change{Subject: "segment", Key: key, Kind: "segment_id_changed", Field: "id", Before: raw(o.ID), After: raw(n.ID), Risks: slices.Clone(risks)}
		c.Message = fmt.Sprintf("segment %s id %d -> %d", code(key), o.ID, n.ID)
		if hasPercentageSplit(o.Rules) && hasPercentageSplit(n.Rules) {
			c.Message += ": its percentage split hashes the id, so identities are re-drawn at random"
			c.Risks = append(c.Risks, RiskRebuckets)
		}
		b.add(c)
	}
	if d := rulesChanges(o.Rules, n.Rules); len(d.phrases) > 0 {
		c := Change{Subject: "segment", Key: key, Kind: "segment_rules_changed", Risks: slices.Clone(risks)}
		c.Message = fmt.Sprintf("segment %s %s%s", code(key), strings.Join(d.phrases, "; "), used)
		if d.split && d.moved > 0 {
			p := percentOf(d.moved)
			c.MovedPercent = &p
			c.Risks = append(c.Risks, RiskMovesIdentities)
		}
		b.add(c)
	}
	if o.Description != n.Description {
		b.add(Change{Subject: "segment", Key: key, Kind: "segment_details_changed", Risks: []string{}, Message: fmt.Sprintf("segment %s: description changed", code(key))})
	}
}

// rulesText summarises a new segment's rules.
func rulesText(rs []flagrepo.Rule) string {
	if len(rs) == 0 {
		return "no rules (it matches nobody)"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = ruleText(r)
	}
	return strings.Join(parts, "; and ")
}
