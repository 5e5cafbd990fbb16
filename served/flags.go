package served

import (
	"fmt"
	"strconv"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
)

// The flag objects of the Flagsmith SDK API: GET /api/v1/flags/ (encoded
// whole in advance) and the identity endpoints (encoded in advance as far
// as they are the same for everyone, see IdentityFlag).

// flagsmithFlag is a flag as the Flagsmith SDK API returns it.
type flagsmithFlag struct {
	ID                int64            `json:"id"`
	Feature           FlagsmithFeature `json:"feature"`
	FeatureStateValue any              `json:"feature_state_value"`
	Environment       int64            `json:"environment"`
	Identity          any              `json:"identity"`
	FeatureSegment    any              `json:"feature_segment"`
	Enabled           bool             `json:"enabled"`
}

// FlagsmithFeature is the "feature" object of a flag in the Flagsmith SDK
// API, which Flagsmith's admin objects share.
type FlagsmithFeature struct {
	ID             int64   `json:"id"`
	Name           string  `json:"name"`
	CreatedDate    string  `json:"created_date"`
	Description    *string `json:"description"`
	InitialValue   *string `json:"initial_value"`
	DefaultEnabled bool    `json:"default_enabled"`
	Type           string  `json:"type"`
}

// NewFlagsmithFeature is the "feature" object of a flag; created is its
// created_date (see State.CreatedDate).
func NewFlagsmithFeature(feat *flagrepo.Feature, created string) FlagsmithFeature {
	ff := FlagsmithFeature{
		ID:             feat.ID,
		Name:           feat.Key,
		CreatedDate:    created,
		DefaultEnabled: feat.Default.Enabled,
		Type:           FeatureType(feat),
	}
	if feat.Description != "" {
		d := feat.Description
		ff.Description = &d
	}
	if v := feat.Default.Value.Value; v != nil {
		s := fmt.Sprint(v)
		ff.InitialValue = &s
	}
	return ff
}

// FeatureType is Flagsmith's type of a feature: MULTIVARIATE or STANDARD.
func FeatureType(f *flagrepo.Feature) string {
	if f.Multivariate() {
		return "MULTIVARIATE"
	}
	return "STANDARD"
}

// IdentityFlag is a flag object of the identity endpoints, as far as it is
// the same for everyone: the object up to its value, and the whole objects
// of the answers the flag can have, encoded in advance (see
// identityOutcomes).
type IdentityFlag struct {
	// prefix is the flag's JSON object up to its feature_state_value, which
	// Append appends with enabled and variant.
	prefix     []byte
	name       string // the feature key
	serverOnly bool
	outcomes   []identityOutcome
}

// identityOutcome is one possible flag object of the identity endpoints.
type identityOutcome struct {
	enabled bool
	variant string
	value   any    // a scalar
	suffix  []byte // the flag object after IdentityFlag.prefix
}

// identityOutcomes lists the answers a flag with state r can have: its
// default, each split band, each segment and identity override.
func identityOutcomes(r *flagrepo.Resolved) []identityOutcome {
	var out []identityOutcome
	add := func(enabled bool, variant string, value any) {
		if len(out) == maxOutcomes || !isScalar(value) {
			return
		}
		for _, o := range out {
			if o.enabled == enabled && o.variant == variant && sameScalar(o.value, value) {
				return
			}
		}
		out = append(out, identityOutcome{enabled: enabled, variant: variant, value: value})
	}
	eachOutcome(r, "", func(enabled bool, _, _, variant string, value any) { add(enabled, variant, value) })
	return out
}

// Name returns the feature key.
func (fb *IdentityFlag) Name() string { return fb.name }

// ServerKeyOnly reports whether only server keys may see the flag.
func (fb *IdentityFlag) ServerKeyOnly() bool { return fb.serverOnly }

// Outcome returns the index of the answer encoded in advance that fl, an
// evaluation of this flag, gives, or -1.
func (fb *IdentityFlag) Outcome(fl *evaluator.Flag) int {
	for i := range fb.outcomes {
		o := &fb.outcomes[i]
		if o.enabled == fl.Enabled && o.variant == fl.Variant && sameScalar(o.value, fl.Value) {
			return i
		}
	}
	return -1
}

// OutcomeEnabled reports whether answer i (see Outcome) is enabled.
func (fb *IdentityFlag) OutcomeEnabled(i int) bool { return fb.outcomes[i].enabled }

// AppendOutcome appends the flag object of answer i (see Outcome).
func (fb *IdentityFlag) AppendOutcome(b []byte, i int) []byte {
	return append(append(b, fb.prefix...), fb.outcomes[i].suffix...)
}

// Append appends the flag object with enabled, variant and value.
func (fb *IdentityFlag) Append(b []byte, enabled bool, variant string, value any) []byte {
	return appendFlagSuffix(append(b, fb.prefix...), enabled, variant, value)
}

// appendFlagSuffix appends what follows IdentityFlag.prefix in a flag object.
func appendFlagSuffix(b []byte, enabled bool, variant string, value any) []byte {
	b = AppendJSONValue(b, value)
	b = append(b, `,"enabled":`...)
	b = strconv.AppendBool(b, enabled)
	b = append(b, `,"variant":`...)
	if variant != "" {
		b = AppendJSONString(b, variant)
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}')
}
