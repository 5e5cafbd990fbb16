package flagdiff

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gitflags/gitflags/changes"
	"github.com/gitflags/gitflags/flagrepo"
)

// environment describes what changed in one environment.
func (b *builder) environment(e *changes.Environment) {
	switch e.Kind {
	case changes.Added:
		on := 0
		for _, f := range e.Features {
			if f.After.Enabled {
				on++
			}
		}
		b.add(Change{Environment: e.Key, Subject: "environment", Key: e.Key, Kind: "environment_added",
			Message: fmt.Sprintf("environment %s added: %s, %d on", code(e.Key), plural(len(e.Features), "feature", "features"), on)})
		return
	case changes.Removed:
		b.add(Change{Environment: e.Key, Subject: "environment", Key: e.Key, Kind: "environment_removed",
			Message: fmt.Sprintf("environment %s removed: SDKs using its keys stop getting flags", code(e.Key))})
		return
	}
	for _, s := range e.Settings {
		b.environmentSetting(e.Key, s)
	}
	for _, k := range slices.Sorted(maps.Keys(e.Features)) {
		b.featureState(e.Key, e.Features[k])
	}
	for _, sk := range e.Segments {
		if b.set.Segments[sk] != changes.Modified {
			continue // added or removed: the overrides' changes say it
		}
		var fs []string
		for _, k := range slices.Sorted(maps.Keys(e.Features)) {
			if slices.Contains(e.Features[k].Segments, sk) {
				fs = append(fs, k)
			}
		}
		b.add(Change{Environment: e.Key, Subject: "segment", Key: sk, Kind: "segment_changed_here",
			Message: fmt.Sprintf("segment %s changed (see the repository-wide changes); here it decides %s", code(sk), list(fs, 8))})
	}
}

func (b *builder) environmentSetting(env, setting string) {
	o, n := b.base.Environments[env], b.head.Environments[env]
	c := Change{Environment: env, Subject: "environment", Key: env, Kind: "environment_setting_changed", Field: setting}
	switch setting {
	case "id":
		c.Before, c.After = raw(o.ID), raw(n.ID)
		c.Message = fmt.Sprintf("environment id %d -> %d: Flagsmith SDKs see a new id, and traits stored under the old id are no longer found", o.ID, n.ID)
	case "name":
		c.Before, c.After = raw(o.Name), raw(n.Name)
		c.Message = fmt.Sprintf("name %s -> %s (segment conditions may read it as $.environment.name)", val(o.Name), val(n.Name))
	case "description":
		c.Message = "description changed"
	case "client_key":
		c.Before, c.After = raw(o.ClientKey), raw(n.ClientKey)
		c.Message = fmt.Sprintf("client key %s -> %s: SDKs still using the old key stop getting flags, and every identity's key (%s) changes, so splits and percentage splits re-bucket everyone", code(o.ClientKey), code(n.ClientKey), code("<client key>_<identifier>"))
		c.Risks = []string{RiskRebuckets}
	case "server_keys":
		c.Message = "server keys: " + serverKeysText(o.ServerKeys, n.ServerKeys)
	case "hide_disabled_flags":
		if b.head.HidesDisabledFlags(n) {
			c.Message = "disabled flags are now left out of SDK responses"
		} else {
			c.Message = "disabled flags are now sent to SDKs"
		}
		c.Before, c.After = raw(b.base.HidesDisabledFlags(o)), raw(b.head.HidesDisabledFlags(n))
	case "hide_sensitive_data":
		c.Before, c.After = raw(o.HideSensitiveData), raw(n.HideSensitiveData)
		c.Message = fmt.Sprintf("hide_sensitive_data %t -> %t", o.HideSensitiveData, n.HideSensitiveData)
	case "allow_client_traits":
		c.Before, c.After = raw(o.ClientTraitsAllowed()), raw(n.ClientTraitsAllowed())
		if n.ClientTraitsAllowed() {
			c.Message = "client keys may now set traits"
		} else {
			c.Message = "client keys may no longer set traits"
		}
	case "review_required":
		c.Before, c.After = raw(o.ReviewRequired), raw(n.ReviewRequired)
		c.Message = fmt.Sprintf("review_required %t -> %t", o.ReviewRequired, n.ReviewRequired)
	default:
		return // "project": said once for the repository
	}
	b.add(c)
}

// serverKeysText describes changed server keys by name.
func serverKeysText(o, n []flagrepo.ServerKey) string {
	find := func(ks []flagrepo.ServerKey, name string) *flagrepo.ServerKey {
		for i := range ks {
			if ks[i].Name == name {
				return &ks[i]
			}
		}
		return nil
	}
	var parts []string
	for _, k := range n {
		switch ok := find(o, k.Name); {
		case ok == nil:
			parts = append(parts, code(k.Name)+" added")
		case ok.SHA256 != k.SHA256:
			parts = append(parts, code(k.Name)+" replaced (callers need the new key)")
		}
	}
	for _, k := range o {
		if find(n, k.Name) == nil {
			parts = append(parts, code(k.Name)+" removed (callers using it are refused)")
		}
	}
	if len(parts) == 0 {
		return "reordered"
	}
	return strings.Join(parts, ", ")
}

// stateText summarises a feature's state in an environment.
func stateText(r *flagrepo.Resolved) string {
	s := fmt.Sprintf("%s, value %s", onOff(r.Enabled), val(r.Value))
	if bs := bands(r.Weights); hasSplit(bs) {
		s += ", split " + splitText(bs)
	}
	if n := len(r.SegmentOverrides); n > 0 {
		segs := make([]string, n)
		for i := range r.SegmentOverrides {
			segs[i] = r.SegmentOverrides[i].Segment
		}
		s += ", segment overrides for " + list(segs, 5)
	}
	if n := len(r.IdentityOverrides); n > 0 {
		s += ", " + plural(n, "identity override", "identity overrides")
	}
	return s
}

// featureState describes how a feature's state changed in an environment.
func (b *builder) featureState(env string, ch *changes.Feature) {
	key := ch.Key
	c := func(kind, msg string) Change {
		return Change{Environment: env, Subject: "feature", Key: key, Kind: kind, Message: msg}
	}
	switch ch.Kind {
	case changes.Added:
		// A new feature without a state of its own here is its default,
		// said once for the repository, unless it is on.
		if b.head.Environments[env].Features[key] == nil && !ch.After.Enabled {
			return
		}
		b.add(c("feature_added", fmt.Sprintf("%s added: %s", code(key), stateText(ch.After))))
		return
	case changes.Removed:
		if b.base.Environments[env].Features[key] == nil && !ch.Before.Enabled {
			return
		}
		b.add(c("feature_removed", fmt.Sprintf("%s removed (it was %s)", code(key), stateText(ch.Before))))
		return
	}
	o, n := ch.Before, ch.After
	rehash := o.Feature.ID != n.Feature.ID
	if rehash && (hasAnySplit(b.base.Environments[env], o.Feature) || hasAnySplit(b.head.Environments[env], n.Feature)) {
		x := c("feature_rebucketed", "")
		moved := rehashed(bands(o.Weights), bands(n.Weights))
		x.MovedPercent = &moved
		x.Message = fmt.Sprintf("%s re-bucketed: its id %d -> %d changes every identity's hash; about %s of identities change variant", code(key), o.Feature.ID, n.Feature.ID, pct(moved))
		x.Risks = []string{RiskRebuckets}
		b.add(x)
	}
	if o.Feature.ServerKeyOnly != n.Feature.ServerKeyOnly {
		msg := "is now sent to server keys only: client-side SDKs stop seeing it"
		if !n.Feature.ServerKeyOnly {
			msg = "is now sent to client keys too"
		}
		x := c("feature_visibility_changed", code(key)+" "+msg)
		x.Before, x.After = raw(o.Feature.ServerKeyOnly), raw(n.Feature.ServerKeyOnly)
		b.add(x)
	}
	if o.Enabled != n.Enabled {
		x := c("feature_enabled_changed", fmt.Sprintf("%s turned %s", code(key), onOff(n.Enabled)))
		x.Before, x.After = raw(o.Enabled), raw(n.Enabled)
		b.add(x)
	}
	if o.Value != n.Value {
		x := c("feature_value_changed", fmt.Sprintf("%s value %s -> %s", code(key), val(o.Value), val(n.Value)))
		x.Before, x.After = raw(o.Value), raw(n.Value)
		b.add(x)
	}
	if ob, nb := bands(o.Weights), bands(n.Weights); !slices.Equal(ob, nb) {
		x := c("feature_split_changed", "")
		x.Before, x.After = raw(weightsMap(ob)), raw(weightsMap(nb))
		x.Message = fmt.Sprintf("%s split changed: %s", code(key), weightChanges(ob, nb))
		if !rehash {
			addMoves(&x, ob, nb, "identities")
		}
		b.add(x)
	}
	b.segmentOverrides(env, key, o, n, rehash)
	b.identityOverrides(env, key, o, n)
}

// weightsMap returns a split's weights by variant key.
func weightsMap(bs []band) map[string]float64 {
	m := make(map[string]float64, len(bs))
	for _, b := range bs {
		m[b.key] = b.weight
	}
	return m
}

// overrideValue describes a segment override's value.
func overrideValue(o *flagrepo.SegmentOverride) string {
	if !o.Value.Set {
		return "the environment's value"
	}
	return val(o.Value.Value)
}

func (b *builder) segmentOverrides(env, key string, o, n *flagrepo.Resolved, rehash bool) {
	find := func(r *flagrepo.Resolved, seg string) *flagrepo.SegmentOverride {
		for i := range r.SegmentOverrides {
			if r.SegmentOverrides[i].Segment == seg {
				return &r.SegmentOverrides[i]
			}
		}
		return nil
	}
	c := func(kind, seg, msg string) Change {
		return Change{Environment: env, Subject: "feature", Key: key, Kind: kind, Field: seg, Message: msg}
	}
	for i := range n.SegmentOverrides {
		no := &n.SegmentOverrides[i]
		seg := no.Segment
		oo := find(o, seg)
		nb := bands(no.OverrideWeights(n.Feature))
		if oo == nil {
			msg := fmt.Sprintf("%s turned %s for segment %s (priority %d)", code(key), onOff(no.Enabled), code(seg), no.Priority)
			if no.Value.Set {
				msg += ", value " + val(no.Value.Value)
			}
			if no.Weights != nil {
				msg += ", split " + splitText(nb)
			}
			b.add(c("segment_override_added", seg, msg))
			continue
		}
		if oo.Enabled != no.Enabled {
			x := c("segment_override_changed", seg, fmt.Sprintf("%s turned %s for segment %s (priority %d)", code(key), onOff(no.Enabled), code(seg), no.Priority))
			x.Before, x.After = raw(oo.Enabled), raw(no.Enabled)
			b.add(x)
		}
		if oo.Value != no.Value {
			b.add(c("segment_override_changed", seg, fmt.Sprintf("%s value for segment %s %s -> %s", code(key), code(seg), overrideValue(oo), overrideValue(no))))
		}
		if oo.Priority != no.Priority {
			x := c("segment_override_changed", seg, fmt.Sprintf("%s: segment %s priority %d -> %d (the lowest of the segments an identity is in wins)", code(key), code(seg), oo.Priority, no.Priority))
			x.Before, x.After = raw(oo.Priority), raw(no.Priority)
			b.add(x)
		}
		if ob := bands(oo.OverrideWeights(o.Feature)); !slices.Equal(ob, nb) || (oo.Weights == nil) != (no.Weights == nil) {
			x := c("segment_override_split_changed", seg, "")
			x.Message = fmt.Sprintf("%s split for segment %s changed: %s", code(key), code(seg), weightChanges(ob, nb))
			if oo.Weights == nil {
				x.Message = fmt.Sprintf("%s now splits segment %s: %s", code(key), code(seg), splitText(nb))
			} else if no.Weights == nil {
				x.Message = fmt.Sprintf("%s no longer splits segment %s (was %s)", code(key), code(seg), splitText(ob))
			}
			if !rehash {
				addMoves(&x, ob, nb, "the segment's identities")
			}
			b.add(x)
		}
	}
	for i := range o.SegmentOverrides {
		oo := &o.SegmentOverrides[i]
		if find(n, oo.Segment) == nil {
			b.add(c("segment_override_removed", oo.Segment, fmt.Sprintf("%s: override for segment %s removed (it was %s, priority %d)", code(key), code(oo.Segment), onOff(oo.Enabled), oo.Priority)))
		}
	}
}

// identityState is an identity override's effect.
type identityState struct {
	enabled bool
	value   flagrepo.OptionalValue
}

func (s identityState) text() string {
	if !s.value.Set {
		return onOff(s.enabled)
	}
	return onOff(s.enabled) + ", value " + val(s.value.Value)
}

func (b *builder) identityOverrides(env, key string, o, n *flagrepo.Resolved) {
	states := func(r *flagrepo.Resolved) map[string]identityState {
		m := map[string]identityState{}
		for _, io := range r.IdentityOverrides {
			for _, id := range io.Identifiers {
				m[id] = identityState{io.Enabled, io.Value}
			}
		}
		return m
	}
	os, ns := states(o), states(n)
	var added, removed, changed []string
	for _, id := range slices.Sorted(maps.Keys(ns)) {
		prev, ok := os[id]
		switch {
		case !ok:
			added = append(added, code(id)+" ("+ns[id].text()+")")
		case prev != ns[id]:
			changed = append(changed, code(id)+" ("+prev.text()+" -> "+ns[id].text()+")")
		}
	}
	for _, id := range slices.Sorted(maps.Keys(os)) {
		if _, ok := ns[id]; !ok {
			removed = append(removed, code(id))
		}
	}
	if len(added)+len(removed)+len(changed) == 0 {
		return
	}
	var parts []string
	for _, p := range []struct {
		what string
		ids  []string
	}{{"added for", added}, {"changed for", changed}, {"removed for", removed}} {
		if len(p.ids) == 0 {
			continue
		}
		ids := p.ids
		more := ""
		if len(ids) > 5 {
			more = fmt.Sprintf(" and %d more", len(ids)-5)
			ids = ids[:5]
		}
		parts = append(parts, p.what+" "+strings.Join(ids, ", ")+more)
	}
	b.add(Change{Environment: env, Subject: "feature", Key: key, Kind: "identity_overrides_changed",
		Message: fmt.Sprintf("%s identity overrides %s", code(key), strings.Join(parts, "; "))})
}

// addMoves adds to x the identities that move between variants from the
// bands ob to nb (who: whose identities, for the message), a risk when any
// do.
func addMoves(x *Change, ob, nb []band, who string) {
	total, ms := moves(ob, nb)
	x.MovedPercent, x.Moves = &total, ms
	x.Message += ", " + movesText(total, ms, who)
	if total > 0 {
		x.Risks = []string{RiskMovesIdentities}
	}
}
