package evaluator

// Environment is the input to Compile: one environment's features, segments
// and identity overrides, mirroring the Flagsmith engine's evaluation
// context. Compile does not retain or modify it, except that flag values,
// variant values and metadata maps are shared with the results.
type Environment struct {
	// Key is the environment's client key. It forms the default identity
	// key ("<Key>_<identifier>") and is the value of $.environment.key.
	Key string
	// Name is the value of $.environment.name.
	Name string
	// Features are evaluated and reported in this order. Names must be
	// unique.
	Features []Feature
	// Segments are matched in this order; the order decides priority ties
	// and the order of matched segments in a Result.
	Segments []Segment
	// IdentityOverrides maps an identifier to its overrides. They behave as
	// a segment named IdentityOverridesSegment whose only rule is
	// "$.identity.identifier IN [identifiers]" and whose overrides have
	// priority minus infinity; overrides of unknown features are ignored.
	// The IN semantics apply: an identifier that coerces to a number is
	// compared as a decimal integer ("007" never matches, "7" does), and one
	// that coerces to a float ("1.5") never matches.
	IdentityOverrides map[string][]Override
}

// Feature is a flag with its environment default.
type Feature struct {
	// Key is the stable key hashed to pick a multivariate variant. It must
	// never change for an existing feature, or identities change buckets.
	Key string
	// Name is the flag name reported in results and matched by overrides.
	Name    string
	Enabled bool
	// Value is the default (control) value: nil, string, bool, float64,
	// json.Number or an integer type. It is returned as is.
	Value any
	// Variants make the feature multivariate. They are tried in ascending
	// Priority order (stable for equal priorities).
	Variants []Variant
	// Metadata is reported with the flag; it is not interpreted.
	Metadata map[string]any
}

// Variant is one value of a multivariate feature.
type Variant struct {
	// Key is reported as the flag's variant; empty reports no variant (null).
	Key string
	// Value replaces the feature value for identities in this variant's band.
	Value any
	// Weight is the percentage (0-100) of identities in this variant.
	Weight float64
	// WeightText is the weight as the document wrote it (a JSON number). The
	// reason prints the weight as the reference engine prints the number
	// Python's json module reads from it: an integer as is ("SPLIT;
	// weight=60"), a number with a fraction or an exponent as a Python float
	// ("60.0" and "6e1" give "SPLIT; weight=60.0"). Without it, an integral
	// Weight prints as an integer and any other as a Python float.
	WeightText string
	// Priority orders the variants; lower first.
	Priority float64
}

// Segment is a set of rules and the overrides that apply to identities
// matching them.
type Segment struct {
	// Key is the stable key hashed by PERCENTAGE_SPLIT conditions.
	Key string
	// Name is reported in results and reasons.
	Name string
	// Rules must all match for the segment to match; a segment without rules
	// never matches.
	Rules     []Rule
	Overrides []Override
	// Metadata is reported with the segment when it matches.
	Metadata map[string]any
}

// Override replaces a feature's state for a segment or an identity.
type Override struct {
	// Key is the key hashed for the override's Variants; empty means the
	// overridden feature's Key.
	Key string
	// Name is the name of the overridden feature.
	Name    string
	Enabled bool
	Value   any
	// Priority decides between matching segments: the lowest wins, nil is
	// +Inf (weakest), ties go to the earlier segment. NaN counts as +Inf.
	// Ignored for identity overrides.
	Priority *float64
	// Variants, when present and an identity is evaluated, split identities
	// as for a multivariate feature, with Value as the control value.
	Variants []Variant
	// Metadata is reported with the flag; nil means the feature's metadata.
	Metadata map[string]any
}

// Rule types.
const (
	RuleAll  = "ALL"  // every condition and every sub-rule matches
	RuleAny  = "ANY"  // at least one condition and at least one sub-rule match
	RuleNone = "NONE" // no condition and no sub-rule matches
)

// Rule combines conditions and sub-rules. Conditions are combined by Type,
// and so are sub-rules; an empty list of either counts as matching, and the
// rule matches when both parts do.
type Rule struct {
	Type       string // RuleAll, RuleAny or RuleNone
	Conditions []Condition
	Rules      []Rule
}

// Condition compares a context value with a constant.
type Condition struct {
	// Property names the context value: a trait name, or a JSONPath such as
	// $.identity.identifier, $.identity.key, $.environment.name,
	// $.environment.key, $.identity.traits.name or
	// $.identity.traits['any name'] or $['identity']['traits']['any name']
	// (a property starting with "$[" is a JSONPath here, while the Python
	// engine only treats "$." as one). A trait literally named like the
	// property wins over the JSONPath; a property that is not a valid
	// JSONPath is a trait name. Empty means the identity key for
	// PERCENTAGE_SPLIT and no value otherwise.
	Property string
	// Operator is one of the Op constants.
	Operator string
	// Value is the constant, always a string. An IN condition whose list
	// comes as a JSON array should be given as that array's JSON encoding.
	Value string
}

// Identity is the subject of an evaluation.
type Identity struct {
	// Identifier is the value of $.identity.identifier and the key of
	// Environment.IdentityOverrides.
	Identifier string
	// Key is hashed for percentage splits and variants; empty means
	// "<environment key>_<Identifier>". Set it to pin bucketing to keys
	// computed elsewhere.
	Key string
	// Traits holds trait values: nil, string, bool, float64 (integral values
	// count as integers, as encoding/json cannot tell 3 from 3.0), float32,
	// json.Number (integer unless it has a fraction or exponent), any Go
	// integer type, or anything else (maps, slices, ...), which conditions
	// see as its Python-style string form unless reached through a
	// JSONPath, which only yields primitives. Strings matching -?[0-9]+
	// count as integers and -?[0-9]+\.[0-9]+ as floats.
	Traits map[string]any
}

// Flag is the evaluated state of one feature.
type Flag struct {
	Name    string
	Enabled bool
	Value   any
	// Reason is "DEFAULT", "TARGETING_MATCH; segment=<segment name>" or
	// "SPLIT; weight=<weight>".
	Reason string
	// Variant is the key of the variant the identity was bucketed into,
	// "control" when a split applied but no variant band was hit, and ""
	// (null) when no split applied or the variant has no key.
	Variant string
	// Metadata is shared with the Model and must not be modified.
	Metadata map[string]any
}

// SegmentResult is a segment the context matched.
type SegmentResult struct {
	Name string
	// Metadata is shared with the Model and must not be modified.
	Metadata map[string]any
}

// Result is a full evaluation: flags in feature order and matched segments
// in segment order (the identity overrides segment last).
type Result struct {
	Flags    []Flag
	Segments []SegmentResult
}

// IdentityOverridesSegment is the segment name reported in reasons and
// results when an identity override applies.
const IdentityOverridesSegment = "identity_overrides"

// ControlVariant is the Variant reported when a split applied but the
// identity fell outside every variant band.
const ControlVariant = "control"
