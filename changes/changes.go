// Package changes says what changed between two snapshots of a flag
// repository, per environment: which features changed their effective state
// there (with the state before and after), which segments changed, which
// environments were added or removed and which of their settings changed.
//
// The realtime stream re-evaluates only what a revision touched, and the
// change webhooks report it; both read a Set made by Between.
//
// Between is cheap for the small commits a server follows: snapshots loaded
// with a previous snapshot share the documents of unchanged files (see
// flagrepo.Snapshot), so documents are compared by pointer first, and only
// those that differ are compared by content. A reformatted file that changes
// nothing is not a change.
package changes

import (
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/gitflags/gitflags/flagrepo"
)

// Kind says how something changed.
type Kind uint8

const (
	Modified Kind = iota // exists before and after, and differs
	Added                // new in the new snapshot
	Removed              // gone from the new snapshot
)

// String returns "modified", "added" or "removed".
func (k Kind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	default:
		return "modified"
	}
}

// MarshalText encodes the kind as its String.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes "modified", "added" or "removed".
func (k *Kind) UnmarshalText(b []byte) error {
	switch string(b) {
	case "modified":
		*k = Modified
	case "added":
		*k = Added
	case "removed":
		*k = Removed
	default:
		return fmt.Errorf("unknown change kind %q (modified, added or removed)", b)
	}
	return nil
}

// Set is what changed between two snapshots. It refers to the snapshots'
// documents, which must not be modified.
type Set struct {
	From, To flagrepo.Revision // From is zero when there was no old snapshot

	// Settings lists the changed fields of gitflags.json: "format_version",
	// "project" (id, name or hide_disabled_flags), "organisation".
	Settings []string
	// Features are the feature documents (features/<key>.json) added,
	// removed or changed in any way, descriptions and tags included; whether
	// that changed a feature's state in an environment is in Environments.
	Features map[string]Kind
	// Segments are the segment documents added, removed or changed in any
	// way. Environment.Segments lists those whose rules or id changed.
	Segments map[string]Kind
	// Environments holds, by key, the environments where something changed;
	// an environment without a change is absent.
	Environments map[string]*Environment
}

// Empty reports whether nothing changed.
func (s *Set) Empty() bool {
	return len(s.Settings) == 0 && len(s.Features) == 0 && len(s.Segments) == 0 && len(s.Environments) == 0
}

// Environment is what changed in one environment.
type Environment struct {
	Key  string
	Kind Kind // Added: every feature is Added; Removed: every feature is Removed
	// Settings lists the environment's changed settings, by their
	// environment.json names: "id", "name", "description", "client_key",
	// "server_keys", "hide_disabled_flags" (the effective value, so a change
	// of the project's default counts where it applies),
	// "hide_sensitive_data", "allow_client_traits" (effective value),
	// "review_required", and "project" when gitflags.json's project or
	// organisation changed (they are part of every environment's document).
	Settings []string
	// Features holds, by key, the features whose effective state changed in
	// this environment, or that use a segment of Segments here.
	Features map[string]*Feature
	// Segments lists, sorted, the segments whose rules or id changed (added
	// and removed ones included) that a segment override of this
	// environment uses, before or after the change.
	Segments []string
}

// ReevaluateAll reports whether every feature's evaluation in the
// environment may have changed without its state changing: the environment
// is new or removed, or its name or client key changed (segment conditions
// can read $.environment.name and $.environment.key).
func (e *Environment) ReevaluateAll() bool {
	return e.Kind != Modified || slices.Contains(e.Settings, "name") || slices.Contains(e.Settings, "client_key")
}

// Feature is a feature whose effective state in an environment changed.
type Feature struct {
	Key  string
	Kind Kind // Added or Removed: the feature (or its environment) is new or gone
	// Before and After are the feature's effective state in the
	// environment; Before is nil when Added, After when Removed. They are
	// equal when only a segment it uses changed.
	Before, After *flagrepo.Resolved
	// Segments lists, sorted, the changed segments (see Environment.Segments)
	// that the feature's segment overrides use here, before or after.
	Segments []string
}

// Between returns what changed from old to new. old may be nil (everything
// in new is Added); so may new (everything in old is Removed).
func Between(old, new *flagrepo.Snapshot) Set {
	var o, n view
	var set Set
	if old != nil {
		o = view{old}
		set.From = old.Revision
	}
	if new != nil {
		n = view{new}
		set.To = new.Revision
	}
	set.Settings = settingsChanges(o, n)
	set.Features = docChanges(o.features(), n.features())
	set.Segments = docChanges(o.segments(), n.segments())

	// The segments whose evaluation changed.
	var segs map[string]bool
	for key, kind := range set.Segments {
		if kind != Modified || !segmentEqual(old.Segments[key], new.Segments[key]) {
			if segs == nil {
				segs = map[string]bool{}
			}
			segs[key] = true
		}
	}
	d := differ{old: o, new: n, features: set.Features, segments: segs, project: slices.Contains(set.Settings, "project") || slices.Contains(set.Settings, "organisation")}
	if len(segs) <= 8 {
		d.segList = slices.Collect(maps.Keys(segs))
	}
	for _, key := range unionKeys(o.environments(), n.environments()) {
		if e := d.environment(key); e != nil {
			if set.Environments == nil {
				set.Environments = map[string]*Environment{}
			}
			set.Environments[key] = e
		}
	}
	return set
}

// view is a snapshot that may be nil (empty).
type view struct{ s *flagrepo.Snapshot }

func (v view) features() map[string]*flagrepo.Feature {
	if v.s == nil {
		return nil
	}
	return v.s.Features
}

func (v view) segments() map[string]*flagrepo.Segment {
	if v.s == nil {
		return nil
	}
	return v.s.Segments
}

func (v view) environments() map[string]*flagrepo.Environment {
	if v.s == nil {
		return nil
	}
	return v.s.Environments
}

func settingsChanges(o, n view) []string {
	if o.s == nil || n.s == nil {
		return nil
	}
	a, b := &o.s.Settings, &n.s.Settings
	var out []string
	if a.FormatVersion != b.FormatVersion {
		out = append(out, "format_version")
	}
	if a.Project != b.Project {
		out = append(out, "project")
	}
	if (a.Organisation == nil) != (b.Organisation == nil) || a.Organisation != nil && *a.Organisation != *b.Organisation {
		out = append(out, "organisation")
	}
	return out
}

// sameMap reports whether a and b are the same map (or both nil).
func sameMap[V any](a, b map[string]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// docChanges compares two maps of documents by pointer.
func docChanges[D any](old, new map[string]*D) map[string]Kind {
	if sameMap(old, new) {
		return nil
	}
	var out map[string]Kind
	add := func(k string, kind Kind) {
		if out == nil {
			out = map[string]Kind{}
		}
		out[k] = kind
	}
	for k, d := range new {
		if od, ok := old[k]; !ok {
			add(k, Added)
		} else if od != d {
			add(k, Modified)
		}
	}
	if len(new)-len(out) != len(old) { // some are gone
		for k := range old {
			if _, ok := new[k]; !ok {
				add(k, Removed)
			}
		}
	}
	return out
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// differ compares one environment at a time.
type differ struct {
	old, new view
	features map[string]Kind // feature documents changed
	segments map[string]bool // segments whose rules or id changed
	segList  []string        // the same, when there are few (faster to search)
	project  bool            // gitflags.json's project or organisation changed
}

// segmentChanged reports whether the rules or id of segment key changed.
func (d *differ) segmentChanged(key string) bool {
	if d.segList != nil || len(d.segments) == 0 {
		return slices.Contains(d.segList, key)
	}
	return d.segments[key]
}

func (d *differ) environment(key string) *Environment {
	oe, ne := d.old.environments()[key], d.new.environments()[key]
	e := &Environment{Key: key}
	switch {
	case oe == nil:
		e.Kind = Added
		e.Features = make(map[string]*Feature, len(d.new.s.Features))
		for k, f := range d.new.s.Features {
			r := ne.Resolve(f)
			e.Features[k] = &Feature{Key: k, Kind: Added, After: &r}
		}
		d.segmentsUsed(e, ne.Features, nil, ne)
		return e
	case ne == nil:
		e.Kind = Removed
		e.Features = make(map[string]*Feature, len(d.old.s.Features))
		for k, f := range d.old.s.Features {
			r := oe.Resolve(f)
			e.Features[k] = &Feature{Key: k, Kind: Removed, Before: &r}
		}
		d.segmentsUsed(e, oe.Features, oe, nil)
		return e
	}
	e.Settings = d.environmentSettings(oe, ne)

	// Candidates: the features whose document or state here changed.
	check := func(k string) {
		if _, done := e.Features[k]; done {
			return
		}
		of, nf := d.old.s.Features[k], d.new.s.Features[k]
		var ch *Feature
		switch {
		case of == nil && nf == nil:
			return
		case of == nil:
			r := ne.Resolve(nf)
			ch = &Feature{Key: k, Kind: Added, After: &r}
		case nf == nil:
			r := oe.Resolve(of)
			ch = &Feature{Key: k, Kind: Removed, Before: &r}
		default:
			os, ns := oe.Features[k], ne.Features[k]
			if of == nf && os == ns || stateEqual(of, nf, os, ns) {
				return
			}
			before, after := oe.Resolve(of), ne.Resolve(nf)
			ch = &Feature{Key: k, Kind: Modified, Before: &before, After: &after}
		}
		if e.Features == nil {
			e.Features = map[string]*Feature{}
		}
		e.Features[k] = ch
	}
	for k := range d.features {
		check(k)
	}
	if !sameMap(oe.Features, ne.Features) {
		kept := 0 // states of ne that oe has
		for k, st := range ne.Features {
			if ost, ok := oe.Features[k]; ok {
				kept++
				if ost == st {
					continue
				}
			}
			check(k)
		}
		if kept < len(oe.Features) { // some are gone
			for k := range oe.Features {
				if _, ok := ne.Features[k]; !ok {
					check(k)
				}
			}
		}
	}
	d.segmentsUsed(e, ne.Features, oe, ne)
	if e.Features == nil && e.Settings == nil && e.Segments == nil {
		return nil
	}
	return e
}

// segmentsUsed adds the changed segments that states (ne's, or oe's for a
// removed environment) use to e.Segments, and the features using them to
// e.Features. For an environment in both snapshots, a feature that used a
// changed segment before (and not now) changed its state, so it is in
// e.Features already, and only the segments it used are added.
func (d *differ) segmentsUsed(e *Environment, states map[string]*flagrepo.FeatureState, oe, ne *flagrepo.Environment) {
	if len(d.segments) == 0 {
		return
	}
	used := map[string]bool{}
	note := func(ch *Feature, overrides []flagrepo.SegmentOverride) {
		for i := range overrides {
			if s := overrides[i].Segment; d.segmentChanged(s) {
				used[s] = true
				if !slices.Contains(ch.Segments, s) {
					ch.Segments = append(ch.Segments, s)
				}
			}
		}
	}
	for k, st := range states {
		i := 0
		for i < len(st.SegmentOverrides) && !d.segmentChanged(st.SegmentOverrides[i].Segment) {
			i++
		}
		if i == len(st.SegmentOverrides) {
			continue
		}
		ch := e.Features[k]
		if ch == nil { // an environment in both snapshots, the feature too
			before, after := oe.Resolve(d.old.s.Features[k]), ne.Resolve(d.new.s.Features[k])
			ch = &Feature{Key: k, Kind: Modified, Before: &before, After: &after}
			if e.Features == nil {
				e.Features = map[string]*Feature{}
			}
			e.Features[k] = ch
		}
		note(ch, st.SegmentOverrides)
	}
	if e.Kind == Modified {
		for _, ch := range e.Features {
			if ch.Before != nil {
				note(ch, ch.Before.SegmentOverrides)
			}
		}
	}
	for _, ch := range e.Features {
		slices.Sort(ch.Segments)
	}
	if len(used) > 0 {
		e.Segments = slices.Sorted(maps.Keys(used))
	}
}

func (d *differ) environmentSettings(a, b *flagrepo.Environment) []string {
	var out []string
	add := func(changed bool, name string) {
		if changed {
			out = append(out, name)
		}
	}
	add(a.ID != b.ID, "id")
	add(a.Name != b.Name, "name")
	add(a.Description != b.Description, "description")
	add(a.ClientKey != b.ClientKey, "client_key")
	add(!slices.Equal(a.ServerKeys, b.ServerKeys), "server_keys")
	add(d.old.s.HidesDisabledFlags(a) != d.new.s.HidesDisabledFlags(b), "hide_disabled_flags")
	add(a.HideSensitiveData != b.HideSensitiveData, "hide_sensitive_data")
	add(a.ClientTraitsAllowed() != b.ClientTraitsAllowed(), "allow_client_traits")
	add(a.ReviewRequired != b.ReviewRequired, "review_required")
	add(d.project, "project")
	return out
}
