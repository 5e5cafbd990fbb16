package flagdiff

import (
	"encoding/json"

	"github.com/gitflags/gitflags/flagrepo"
)

// Report is what changed between two flag repositories, in words, per
// environment. Its JSON form is documented by schemas/output/diff.schema.json.
type Report struct {
	Base Side `json:"base"`
	Head Side `json:"head"`
	// Compared is false when the two sides could not be compared at all
	// (Failure says why; Files lists the files that differ).
	Compared bool   `json:"compared"`
	Failure  string `json:"failure,omitempty"`
	// NotCompared lists the files set aside because a side fails
	// validation: the changes they make are not in Changes.
	NotCompared []SetAside `json:"not_compared"`
	// Files lists the files that differ, when Compared is false.
	Files []FileChange `json:"files,omitempty"`
	// Changes lists every change: per environment in environment order
	// (repository-wide ones, Environment "", first), risky ones first
	// within each.
	Changes []Change `json:"changes"`
	// Identities is the effect on a set of identities, when asked for.
	Identities *IdentityImpact `json:"identities,omitempty"`
}

// Side describes one side of the comparison.
type Side struct {
	Name   string `json:"name"`             // as given: a revision or a directory
	Kind   string `json:"kind"`             // "revision" or "directory"
	Commit string `json:"commit,omitempty"` // full hash, for a revision
	// MergeBase is set when Commit is the common ancestor of the revision
	// Name and HEAD (BASE...HEAD).
	MergeBase bool `json:"merge_base,omitempty"`
	Valid     bool `json:"valid"`
	// Problems lists every validation problem of the side (none when valid).
	Problems []flagrepo.Problem `json:"problems"`
}

// SetAside is a file left out of the comparison on a side where it is
// invalid. Base and Head say which version each side was compared with:
// "own" (its own file), "other" (the other side's version, so no change is
// shown) or "left_out".
type SetAside struct {
	Path string `json:"path"`
	Base string `json:"base"`
	Head string `json:"head"`
}

// FileChange is a file that differs between the sides.
type FileChange struct {
	Path string `json:"path"`
	Kind string `json:"kind"` // "added", "removed" or "modified"
}

// Risks a change can carry.
const (
	// RiskProduction: the change is in a production environment (key
	// production or prod, or review_required set), or a repository-wide
	// change that production uses.
	RiskProduction = "production"
	// RiskMovesIdentities: a split change moves identities between
	// variants, or into or out of a segment (MovedPercent says how many).
	RiskMovesIdentities = "moves_identities"
	// RiskRebuckets: an id or key that bucketing hashes changed, so
	// identities are re-bucketed at random.
	RiskRebuckets = "rebuckets"
	// RiskRemovedStillReferenced: a feature or segment was removed while
	// files still refer to it (the side fails validation).
	RiskRemovedStillReferenced = "removed_still_referenced"
)

// Change is one change, in words.
type Change struct {
	// Environment is the environment's key; "" for a repository-wide
	// change (a feature's definition, a segment's rules, gitflags.json).
	Environment string `json:"environment,omitempty"`
	// Subject is what changed: "feature", "segment", "environment" or
	// "settings"; Key is its key (for settings: the gitflags.json field).
	Subject string `json:"subject"`
	Key     string `json:"key"`
	// Kind classifies the change (see the schema's list).
	Kind string `json:"kind"`
	// Field names the part that changed, where one does: a variant key, a
	// segment key of an override, an environment setting.
	Field string `json:"field,omitempty"`
	// Message says what the change does, names in backticks (Markdown
	// code spans), without the environment.
	Message string   `json:"message"`
	Risks   []string `json:"risks"`
	// MovedPercent is the share of identities reaching a split whose
	// variant (or segment membership) the change moves; Moves breaks it
	// down. Exact for weight changes (computed from the bands over the
	// whole hash space); the expected share for a re-bucketing.
	MovedPercent *float64 `json:"moved_percent,omitempty"`
	Moves        []Move   `json:"moves,omitempty"`
	// Before and After are the values compared, where they are simple.
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// Risky reports whether the change carries a risk.
func (c *Change) Risky() bool { return len(c.Risks) > 0 }

// Valid reports whether both sides passed validation.
func (r *Report) Valid() bool { return r.Base.Valid && r.Head.Valid }

// RiskyCount returns the number of risky changes.
func (r *Report) RiskyCount() int {
	n := 0
	for i := range r.Changes {
		if r.Changes[i].Risky() {
			n++
		}
	}
	return n
}
