package changehooks

import (
	"time"

	"github.com/gitflags/gitflags/changes"
	"github.com/gitflags/gitflags/flagrepo"
)

// Payload is the JSON body of a delivery.
type Payload struct {
	Revision         string `json:"revision"`          // the commit now served ("" for a working tree)
	PreviousRevision string `json:"previous_revision"` // the commit served before
	Commit           Commit `json:"commit"`            // the commit now served
	// Environments holds the configured environments where something
	// changed, by key.
	Environments map[string]*Environment `json:"environments"`
}

// Commit describes the revision now served.
type Commit struct {
	Author      string    `json:"author"`
	AuthorEmail string    `json:"author_email"`
	Time        time.Time `json:"time"`
	Message     string    `json:"message"`
}

// Environment is what changed in one environment.
type Environment struct {
	Change          changes.Kind        `json:"change"`                     // added, removed or modified
	SettingsChanged []string            `json:"settings_changed,omitempty"` // environment.json names
	SegmentsChanged []string            `json:"segments_changed"`           // segments whose rules changed, used here
	Features        map[string]*Feature `json:"features"`                   // left empty for an added or removed environment
}

// Feature is a feature whose effective state changed in an environment.
type Feature struct {
	Change   changes.Kind `json:"change"`             // added, removed or modified
	Before   *State       `json:"before"`             // null when added
	After    *State       `json:"after"`              // null when removed
	Segments []string     `json:"segments,omitempty"` // changed segments it uses here
}

// State is a feature's effective state in an environment.
type State struct {
	Enabled           bool                        `json:"enabled"`
	Value             flagrepo.Value              `json:"value"`
	Weights           map[string]float64          `json:"weights,omitempty"` // variant key -> percentage (multivariate)
	SegmentOverrides  []flagrepo.SegmentOverride  `json:"segment_overrides,omitempty"`
	IdentityOverrides []flagrepo.IdentityOverride `json:"identity_overrides,omitempty"`
	ServerKeyOnly     bool                        `json:"server_key_only,omitempty"`
}

func stateOf(r *flagrepo.Resolved) *State {
	if r == nil {
		return nil
	}
	s := &State{
		Enabled: r.Enabled, Value: r.Value, ServerKeyOnly: r.Feature.ServerKeyOnly,
		SegmentOverrides: r.SegmentOverrides, IdentityOverrides: r.IdentityOverrides,
	}
	if len(r.Weights) > 0 {
		s.Weights = make(map[string]float64, len(r.Weights))
		for _, w := range r.Weights {
			s.Weights[w.Variant.Key] = w.Weight
		}
	}
	return s
}

// payload returns the body for hook h of set, or nil when nothing changed
// in h's environments.
func payload(set *changes.Set, h *Hook) *Payload {
	var p *Payload
	for key, e := range set.Environments {
		if !h.wants(key) {
			continue
		}
		if p == nil {
			p = &Payload{
				Revision: set.To.SHA, PreviousRevision: set.From.SHA,
				Commit:       Commit{Author: set.To.Author, AuthorEmail: set.To.AuthorEmail, Time: set.To.Time, Message: set.To.Message},
				Environments: map[string]*Environment{},
			}
		}
		pe := &Environment{Change: e.Kind, SettingsChanged: e.Settings, SegmentsChanged: e.Segments, Features: map[string]*Feature{}}
		if pe.SegmentsChanged == nil {
			pe.SegmentsChanged = []string{}
		}
		if e.Kind == changes.Modified {
			for fk, f := range e.Features {
				pe.Features[fk] = &Feature{Change: f.Kind, Before: stateOf(f.Before), After: stateOf(f.After), Segments: f.Segments}
			}
		}
		p.Environments[key] = pe
	}
	return p
}
