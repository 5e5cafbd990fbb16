package flagrepo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"
)

// KeyPattern is what every feature, segment, environment and variant key must
// match. Keys are file and directory names, so "." and ".." never match.
var KeyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// MaxKeyLength is the longest key accepted.
const MaxKeyLength = 128

// FormatVersion is the only repository format version this package reads.
const FormatVersion = 1

// Revision identifies the commit a snapshot was read from.
type Revision struct {
	SHA         string    `json:"sha"` // full commit hash; empty for a working directory
	Time        time.Time `json:"time"`
	Author      string    `json:"author"`
	AuthorEmail string    `json:"author_email"`
	Message     string    `json:"message,omitempty"`
}

// Snapshot is an immutable, fully validated view of a flag repository at one
// revision. Callers must not modify it, nor anything it points to.
//
// Snapshots loaded with a previous snapshot (Load's prev) share documents with
// it: a document whose file is unchanged since prev (same path and hash) is
// the same pointer as in prev, so callers may memoize per-document work by
// pointer. This holds for the *Feature values of Features, the *Segment values
// of Segments and the *FeatureState values of each Environment's Features. A
// changed file always yields a new pointer. Every *Environment is a new value
// per snapshot (it holds the snapshot's feature states), with its other fields
// equal to prev's when environment.json is unchanged. Maps and slices without
// a change (Features, an Environment's Features, the key lists, ...) may be
// prev's own, which is why neither snapshot may be modified.
type Snapshot struct {
	Revision     Revision
	Settings     Settings
	Features     map[string]*Feature     // by key
	Segments     map[string]*Segment     // by key
	Environments map[string]*Environment // by key

	featureKeys, segmentKeys, environmentKeys []string

	// What the next Load diffs against and patches (see reload.go).
	files                  fileIndex         // every file
	foldedPaths            map[string]string // lower-cased path -> path, for paths that lower-casing changes (ignored files left out)
	featureIDs, segmentIDs map[int64]string  // id -> key
}

// FeatureKeys returns the feature keys, sorted.
func (s *Snapshot) FeatureKeys() []string { return s.featureKeys }

// SegmentKeys returns the segment keys, sorted.
func (s *Snapshot) SegmentKeys() []string { return s.segmentKeys }

// EnvironmentKeys returns the environment keys, sorted.
func (s *Snapshot) EnvironmentKeys() []string { return s.environmentKeys }

// EnvironmentByClientKey returns the environment whose client key is key.
func (s *Snapshot) EnvironmentByClientKey(key string) *Environment {
	for _, e := range s.Environments {
		if e.ClientKey == key {
			return e
		}
	}
	return nil
}

// Settings is gitflags.json.
type Settings struct {
	Schema        string        `json:"$schema,omitempty"`
	FormatVersion int           `json:"format_version"`
	Project       Project       `json:"project"`
	Organisation  *Organisation `json:"organisation,omitempty"`
}

// Project holds the project all environments belong to.
type Project struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	HideDisabledFlags bool   `json:"hide_disabled_flags,omitempty"`
}

// Organisation is the organisation reported to Flagsmith SDKs.
type Organisation struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Value is a flag value: nil, string, bool or int64.
type Value = any

// OptionalValue is a flag value that may be absent from a document.
type OptionalValue struct {
	Set   bool  // whether the document has the field
	Value Value // nil, string, bool or int64
}

// UnmarshalJSON records that the value is present and decodes it. Numbers are
// kept as json.Number until validation turns them into int64.
func (o *OptionalValue) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	o.Set = true
	switch {
	case len(b) == 0:
		return errors.New("empty value")
	case string(b) == "null":
		o.Value = nil
	case string(b) == "true":
		o.Value = true
	case string(b) == "false":
		o.Value = false
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		o.Value = s
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		// encoding/json hands over a syntactically valid literal.
		o.Value = json.Number(b)
	default:
		return fmt.Errorf("a flag value must be a string, integer, boolean or null, not %s", b)
	}
	return nil
}

// MarshalJSON encodes the value (use with the omitzero option).
func (o OptionalValue) MarshalJSON() ([]byte, error) { return json.Marshal(o.Value) }

// IsZero reports whether the value is absent.
func (o OptionalValue) IsZero() bool { return !o.Set }

// Feature is features/<key>.json: a feature's definition and default state.
type Feature struct {
	Key           string    `json:"-"`
	Schema        string    `json:"$schema,omitempty"`
	ID            int64     `json:"id"`
	Description   string    `json:"description,omitempty"`
	Default       State     `json:"default"`
	Variants      []Variant `json:"variants,omitempty"` // sorted by ID after loading
	Tags          []string  `json:"tags,omitempty"`
	Owners        []string  `json:"owners,omitempty"`
	ServerKeyOnly bool      `json:"server_key_only,omitempty"`
}

// Multivariate reports whether the feature has variants.
func (f *Feature) Multivariate() bool { return len(f.Variants) > 0 }

// Variant returns the variant with the given key, or nil.
func (f *Feature) Variant(key string) *Variant {
	for i := range f.Variants {
		if f.Variants[i].Key == key {
			return &f.Variants[i]
		}
	}
	return nil
}

// State is a feature's default state.
type State struct {
	Enabled bool          `json:"enabled"`
	Value   OptionalValue `json:"value,omitzero"`
}

// Variant is one value of a multivariate feature.
type Variant struct {
	ID     int64         `json:"id"` // stable; also the variant's priority in splits
	Key    string        `json:"key"`
	Value  OptionalValue `json:"value"`
	Weight float64       `json:"weight,omitempty"` // default percentage
}

// Segment is segments/<key>.json.
type Segment struct {
	Key         string `json:"-"`
	Schema      string `json:"$schema,omitempty"`
	ID          int64  `json:"id"`
	Description string `json:"description,omitempty"`
	Rules       []Rule `json:"rules"`
}

// Rule combines conditions and sub-rules.
type Rule struct {
	Type       string      `json:"type"` // ALL, ANY or NONE
	Conditions []Condition `json:"conditions,omitempty"`
	Rules      []Rule      `json:"rules,omitempty"`
}

// Condition tests one property of the evaluation context.
type Condition struct {
	Property string          `json:"property,omitempty"`
	Operator string          `json:"operator"`
	RawValue json.RawMessage `json:"value,omitempty"`
	// Value is the condition's value as the engine reads it: a string. Numbers
	// and booleans become their JSON text, an IN array becomes its JSON text.
	Value string `json:"-"`
}

// Environment is environments/<key>/environment.json plus the environment's
// feature states.
type Environment struct {
	Key               string      `json:"-"`
	Schema            string      `json:"$schema,omitempty"`
	ID                int64       `json:"id"`
	Name              string      `json:"name"`
	Description       string      `json:"description,omitempty"`
	ClientKey         string      `json:"client_key"`
	ServerKeys        []ServerKey `json:"server_keys,omitempty"`
	HideDisabledFlags *bool       `json:"hide_disabled_flags,omitempty"`
	HideSensitiveData bool        `json:"hide_sensitive_data,omitempty"`
	AllowClientTraits *bool       `json:"allow_client_traits,omitempty"`
	ReviewRequired    bool        `json:"review_required,omitempty"`

	// Features holds the environment's feature files by feature key. A feature
	// without a file here has its default state.
	Features map[string]*FeatureState `json:"-"`
}

// ServerKey is the hash of one server-side key of an environment.
type ServerKey struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"` // lower-case hex SHA-256 of the whole key
	// Previews lets the key ask for a branch's flags (X-Gitflags-Ref,
	// package previews).
	Previews bool `json:"previews,omitempty"`
}

// FeatureState is environments/<env>/features/<feature>.json: how a feature
// differs from its default in one environment.
type FeatureState struct {
	Feature           string             `json:"-"` // the feature's key
	Schema            string             `json:"$schema,omitempty"`
	Enabled           *bool              `json:"enabled,omitempty"`
	Value             OptionalValue      `json:"value,omitzero"`
	Weights           map[string]float64 `json:"weights,omitempty"` // variant key -> percentage
	SegmentOverrides  []SegmentOverride  `json:"segment_overrides,omitempty"`
	IdentityOverrides []IdentityOverride `json:"identity_overrides,omitempty"`
}

// SegmentOverride gives identities in a segment their own state of a feature.
type SegmentOverride struct {
	Segment  string             `json:"segment"`
	Priority int                `json:"priority"` // lower wins
	Enabled  bool               `json:"enabled"`
	Value    OptionalValue      `json:"value,omitzero"`    // absent: the environment's value
	Weights  map[string]float64 `json:"weights,omitempty"` // absent: no split
}

// IdentityOverride gives named identities their own state of a feature.
type IdentityOverride struct {
	Identifiers []string      `json:"identifiers"`
	Enabled     bool          `json:"enabled"`
	Value       OptionalValue `json:"value,omitzero"` // absent: the environment's value
}

// VariantWeight is a variant with its weight in one environment or override.
type VariantWeight struct {
	Variant *Variant
	Weight  float64
}

// Resolved is a feature's effective state in one environment: the feature's
// default merged with the environment's feature file.
type Resolved struct {
	Feature           *Feature
	Enabled           bool
	Value             Value
	Weights           []VariantWeight // in variant id order; empty for standard features
	SegmentOverrides  []SegmentOverride
	IdentityOverrides []IdentityOverride
}

// Resolve returns the effective state of feature f in environment e.
func (e *Environment) Resolve(f *Feature) Resolved {
	r := Resolved{Feature: f, Enabled: f.Default.Enabled, Value: f.Default.Value.Value}
	st := e.Features[f.Key]
	var weights map[string]float64
	if st != nil {
		if st.Enabled != nil {
			r.Enabled = *st.Enabled
		}
		if st.Value.Set {
			r.Value = st.Value.Value
		}
		weights = st.Weights
		r.SegmentOverrides = st.SegmentOverrides
		r.IdentityOverrides = st.IdentityOverrides
	}
	r.Weights = f.weights(weights)
	return r
}

// OverrideWeights returns a segment override's split for feature f, in variant
// id order; nil when the override has no weights.
func (o *SegmentOverride) OverrideWeights(f *Feature) []VariantWeight {
	if o.Weights == nil {
		return nil
	}
	return f.weights(o.Weights)
}

// weights lists f's variants with the weights of m (or their defaults when m is
// nil; a variant missing from m weighs 0).
func (f *Feature) weights(m map[string]float64) []VariantWeight {
	if len(f.Variants) == 0 {
		return nil
	}
	out := make([]VariantWeight, len(f.Variants))
	for i := range f.Variants {
		v := &f.Variants[i]
		w := v.Weight
		if m != nil {
			w = m[v.Key]
		}
		out[i] = VariantWeight{Variant: v, Weight: w}
	}
	return out
}

// HidesDisabledFlags reports whether disabled flags are left out of SDK
// responses in environment e of snapshot s.
func (s *Snapshot) HidesDisabledFlags(e *Environment) bool {
	if e.HideDisabledFlags != nil {
		return *e.HideDisabledFlags
	}
	return s.Settings.Project.HideDisabledFlags
}

// ClientTraitsAllowed reports whether client keys may set traits.
func (e *Environment) ClientTraitsAllowed() bool {
	return e.AllowClientTraits == nil || *e.AllowClientTraits
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
