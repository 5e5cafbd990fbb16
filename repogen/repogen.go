// Package repogen generates synthetic, valid gitflags flag repositories for
// benchmarks and load tests.
//
// The output follows the repository format of package flagrepo: gitflags.json,
// features/<key>.json, segments/<key>.json, environments/<env>/environment.json
// and a feature file in every environment for every feature, plus copies of
// the JSON Schemas under schemas/. The content is realistic enough to exercise
// the validator and the evaluator: segments use every condition operator
// (EQUAL, IN, REGEX, semantic versions, MODULO, PERCENTAGE_SPLIT, ...) in
// nested rules, every few features are multivariate with weighted variants,
// and environment feature files carry segment overrides (with unique
// priorities) and identity overrides.
//
// Output is deterministic: the same Options always produce the same bytes.
package repogen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gitflags/gitflags/schemas"
)

// Options says how large and how rich a generated repository is.
type Options struct {
	// Seed makes the output reproducible; the same seed and options give the
	// same files.
	Seed uint64
	// Features is the number of features (features/<key>.json).
	Features int
	// Segments is the number of segments (segments/<key>.json).
	Segments int
	// Environments is the number of environments. The first three are named
	// development, staging and production; further ones env-4, env-5, ...
	Environments int
	// ConditionsPerSegment is the number of conditions in each segment, spread
	// over a top-level rule and a nested rule (at least 1).
	ConditionsPerSegment int
	// MultivariateEvery makes every n-th feature multivariate (with 2 to 4
	// weighted variants); 0 makes none multivariate.
	MultivariateEvery int
	// SegmentOverridesPerFeature is the number of segment overrides in each
	// environment feature file (bounded by Segments). Priorities are unique.
	SegmentOverridesPerFeature int
	// IdentityOverridesPerFeature is the number of identity overrides in each
	// environment feature file.
	IdentityOverridesPerFeature int
	// IdentifiersPerOverride is the number of identifiers in each identity
	// override (at least 1).
	IdentifiersPerOverride int
}

// Large returns the options of the load benchmark: 10,000 features in 3
// environments and 1,000 segments (41,000 documents).
func Large() Options {
	return Options{
		Seed:                        1,
		Features:                    10_000,
		Segments:                    1_000,
		Environments:                3,
		ConditionsPerSegment:        4,
		MultivariateEvery:           5,
		SegmentOverridesPerFeature:  2,
		IdentityOverridesPerFeature: 1,
		IdentifiersPerOverride:      2,
	}
}

// Small returns options for a quick, still varied repository: 50 features in
// 3 environments and 20 segments.
func Small() Options {
	o := Large()
	o.Features, o.Segments = 50, 20
	return o
}

// FeatureKey returns the key of the i-th feature (0-based) as Write names it.
func FeatureKey(i int) string {
	return fmt.Sprintf("%s_%s_%05d", areas[i%len(areas)], things[(i/len(areas))%len(things)], i)
}

// SegmentKey returns the key of the i-th segment (0-based) as Write names it.
func SegmentKey(i int) string {
	return fmt.Sprintf("%s_%04d", audiences[i%len(audiences)], i)
}

// EnvironmentKey returns the key of the i-th environment (0-based).
func EnvironmentKey(i int) string {
	if i < len(envNames) {
		return envNames[i]
	}
	return "env-" + strconv.Itoa(i+1)
}

var (
	areas     = []string{"checkout", "search", "billing", "profile", "onboarding", "catalog", "cart", "mobile", "api", "support"}
	things    = []string{"redesign", "fast_path", "banner", "limits", "beta", "experiment", "rollout", "cache", "widget", "copy"}
	audiences = []string{"beta_users", "premium", "eu_customers", "internal", "new_users", "power_users", "mobile_app", "legacy_clients"}
	envNames  = []string{"development", "staging", "production"}
	teams     = []string{"payments", "growth", "platform", "mobile", "search", "core"}
	countries = []string{"DE", "FR", "NL", "ES", "IT", "PL", "SE", "GB", "US", "CA", "BR", "JP"}
	plans     = []string{"free", "starter", "premium", "enterprise"}
	colours   = []string{"red", "green", "blue", "amber", "violet", "teal"}
)

// Write generates a flag repository into dir, which must not exist or be
// empty; it is created when missing.
func Write(dir string, opts Options) error {
	if err := checkOptions(opts); err != nil {
		return fmt.Errorf("generate flag repository: %w", err)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("generate flag repository: %s is not empty", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("generate flag repository: %w", err)
	}
	g := &generator{dir: dir, opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0x6769_7466_6c61_6773))}
	if err := g.run(); err != nil {
		return fmt.Errorf("generate flag repository in %s: %w", dir, err)
	}
	return nil
}

func checkOptions(o Options) error {
	switch {
	case o.Features < 0, o.Segments < 0, o.Environments < 0, o.ConditionsPerSegment < 0,
		o.MultivariateEvery < 0, o.SegmentOverridesPerFeature < 0, o.IdentityOverridesPerFeature < 0,
		o.IdentifiersPerOverride < 0:
		return errors.New("options must not be negative")
	case o.ConditionsPerSegment > 100:
		return errors.New("at most 100 conditions per segment")
	}
	return nil
}

type generator struct {
	dir  string
	opts Options
	rng  *rand.Rand
	made map[string]bool // directories created
	// per feature, for environment files
	variants [][]string
	values   []func(r *rand.Rand) any
}

func (g *generator) write(rel string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return g.writeBytes(rel, buf.Bytes())
}

func (g *generator) writeBytes(rel string, data []byte) error {
	p := filepath.Join(g.dir, filepath.FromSlash(rel))
	d := filepath.Dir(p)
	if !g.made[d] {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		g.made[d] = true
	}
	return os.WriteFile(p, data, 0o644)
}

func (g *generator) run() error {
	g.made = map[string]bool{}
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return err
	}
	for _, name := range schemas.Names() {
		data, err := fs.ReadFile(schemas.FS(), name)
		if err != nil {
			return err
		}
		if err := g.writeBytes("schemas/"+name, data); err != nil {
			return err
		}
	}
	readme := fmt.Sprintf("# Generated flag repository\n\nGenerated by gitflags repogen: %d features, %d segments, %d environments (seed %d).\n",
		g.opts.Features, g.opts.Segments, g.opts.Environments, g.opts.Seed)
	if err := g.writeBytes("README.md", []byte(readme)); err != nil {
		return err
	}
	if err := g.write("gitflags.json", settingsDoc{
		Schema:        "schemas/gitflags.schema.json",
		FormatVersion: 1,
		Project:       project{ID: 1, Name: "Generated project"},
		Organisation:  &organisation{ID: 1, Name: "Generated organisation"},
	}); err != nil {
		return err
	}
	for i := 0; i < g.opts.Segments; i++ {
		if err := g.write("segments/"+SegmentKey(i)+".json", g.segment(i)); err != nil {
			return err
		}
	}
	g.variants = make([][]string, g.opts.Features)
	g.values = make([]func(*rand.Rand) any, g.opts.Features)
	for i := 0; i < g.opts.Features; i++ {
		if err := g.write("features/"+FeatureKey(i)+".json", g.feature(i)); err != nil {
			return err
		}
	}
	for e := 0; e < g.opts.Environments; e++ {
		key := EnvironmentKey(e)
		if err := g.write("environments/"+key+"/environment.json", g.environment(e)); err != nil {
			return err
		}
		for i := 0; i < g.opts.Features; i++ {
			if err := g.write("environments/"+key+"/features/"+FeatureKey(i)+".json", g.featureState(e, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Documents, with fields in the order a person would write them.

type settingsDoc struct {
	Schema        string        `json:"$schema"`
	FormatVersion int           `json:"format_version"`
	Project       project       `json:"project"`
	Organisation  *organisation `json:"organisation,omitempty"`
}

type project struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type organisation struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

type segmentDoc struct {
	Schema      string `json:"$schema"`
	ID          int64  `json:"id"`
	Description string `json:"description,omitempty"`
	Rules       []rule `json:"rules"`
}

type rule struct {
	Type       string      `json:"type"`
	Conditions []condition `json:"conditions,omitempty"`
	Rules      []rule      `json:"rules,omitempty"`
}

type condition struct {
	Property string `json:"property,omitempty"`
	Operator string `json:"operator"`
	Value    any    `json:"value,omitempty"`
}

type featureDoc struct {
	Schema      string    `json:"$schema"`
	ID          int64     `json:"id"`
	Description string    `json:"description,omitempty"`
	Default     state     `json:"default"`
	Variants    []variant `json:"variants,omitempty"`
	Tags        []string  `json:"tags,omitempty"`
	Owners      []string  `json:"owners,omitempty"`
}

type state struct {
	Enabled bool `json:"enabled"`
	Value   any  `json:"value,omitempty"`
}

type variant struct {
	ID     int64   `json:"id"`
	Key    string  `json:"key"`
	Value  any     `json:"value"`
	Weight float64 `json:"weight,omitempty"`
}

type environmentDoc struct {
	Schema            string      `json:"$schema"`
	ID                int64       `json:"id"`
	Name              string      `json:"name"`
	Description       string      `json:"description,omitempty"`
	ClientKey         string      `json:"client_key"`
	ServerKeys        []serverKey `json:"server_keys,omitempty"`
	HideSensitiveData bool        `json:"hide_sensitive_data,omitempty"`
	ReviewRequired    bool        `json:"review_required,omitempty"`
}

type serverKey struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

type featureStateDoc struct {
	Schema            string             `json:"$schema"`
	Enabled           bool               `json:"enabled"`
	Value             any                `json:"value,omitempty"`
	Weights           map[string]float64 `json:"weights,omitempty"`
	SegmentOverrides  []segmentOverride  `json:"segment_overrides,omitempty"`
	IdentityOverrides []identityOverride `json:"identity_overrides,omitempty"`
}

type segmentOverride struct {
	Segment  string             `json:"segment"`
	Priority int                `json:"priority"`
	Enabled  bool               `json:"enabled"`
	Value    any                `json:"value,omitempty"`
	Weights  map[string]float64 `json:"weights,omitempty"`
}

type identityOverride struct {
	Identifiers []string `json:"identifiers"`
	Enabled     bool     `json:"enabled"`
	Value       any      `json:"value,omitempty"`
}

// conditionKinds builds the conditions segments draw from, covering every
// operator.
var conditionKinds = []func(r *rand.Rand) condition{
	func(r *rand.Rand) condition {
		return condition{Property: "plan", Operator: "EQUAL", Value: plans[r.IntN(len(plans))]}
	},
	func(r *rand.Rand) condition {
		return condition{Property: "plan", Operator: "NOT_EQUAL", Value: "free"}
	},
	func(r *rand.Rand) condition {
		n := 2 + r.IntN(4)
		start := r.IntN(len(countries))
		vals := make([]any, n)
		for i := range vals {
			vals[i] = countries[(start+i)%len(countries)]
		}
		return condition{Property: "country", Operator: "IN", Value: vals}
	},
	func(r *rand.Rand) condition {
		ids := make([]any, 1+r.IntN(3))
		for i := range ids {
			ids[i] = r.IntN(100000)
		}
		return condition{Property: "user_id", Operator: "IN", Value: ids}
	},
	func(r *rand.Rand) condition {
		return condition{Property: "$.identity.identifier", Operator: "REGEX", Value: fmt.Sprintf(`^.+@(example|corp%d)\.com$`, r.IntN(50))}
	},
	func(r *rand.Rand) condition {
		return condition{Property: "app_version", Operator: "GREATER_THAN_INCLUSIVE", Value: fmt.Sprintf("%d.%d.0:semver", 1+r.IntN(5), r.IntN(20))}
	},
	func(r *rand.Rand) condition {
		return condition{Property: "app_version", Operator: "LESS_THAN", Value: fmt.Sprintf("%d.0.0-beta.%d:semver", 6+r.IntN(3), r.IntN(5))}
	},
	func(r *rand.Rand) condition {
		d := 2 + r.IntN(9)
		return condition{Property: "user_id", Operator: "MODULO", Value: fmt.Sprintf("%d|%d", d, r.IntN(d))}
	},
	func(r *rand.Rand) condition {
		if r.IntN(2) == 0 {
			return condition{Operator: "PERCENTAGE_SPLIT", Value: 1 + r.IntN(99)}
		}
		return condition{Operator: "PERCENTAGE_SPLIT", Value: strconv.FormatFloat(float64(1+r.IntN(990))/10, 'f', -1, 64)}
	},
	func(r *rand.Rand) condition {
		return condition{Property: "age", Operator: "GREATER_THAN", Value: 16 + r.IntN(10)}
	},
	func(r *rand.Rand) condition {
		return condition{Property: "orders", Operator: "LESS_THAN_INCLUSIVE", Value: strconv.Itoa(r.IntN(100))}
	},
	func(r *rand.Rand) condition {
		return condition{Property: "email", Operator: "CONTAINS", Value: "@example"}
	},
	func(r *rand.Rand) condition {
		return condition{Property: "email", Operator: "NOT_CONTAINS", Value: "+test"}
	},
	func(r *rand.Rand) condition {
		return condition{Property: "beta_tester", Operator: "EQUAL", Value: r.IntN(2) == 0}
	},
	func(r *rand.Rand) condition { return condition{Property: "company", Operator: "IS_SET"} },
	func(r *rand.Rand) condition { return condition{Property: "banned", Operator: "IS_NOT_SET"} },
}

func (g *generator) segment(i int) segmentDoc {
	r := g.rng
	n := max(g.opts.ConditionsPerSegment, 1)
	conds := make([]condition, n)
	for j := range conds {
		// Cycle through the kinds so that every operator appears.
		conds[j] = conditionKinds[(i*n+j+r.IntN(2))%len(conditionKinds)](r)
	}
	top := rule{Type: "ALL"}
	// Split the conditions: the first half at the top, the rest in a nested
	// ANY (or NONE) rule.
	half := (n + 1) / 2
	top.Conditions = conds[:half]
	if rest := conds[half:]; len(rest) > 0 {
		typ := "ANY"
		if i%7 == 3 {
			typ = "NONE"
		}
		top.Rules = []rule{{Type: typ, Conditions: rest}}
	}
	return segmentDoc{
		Schema:      "../schemas/segment.schema.json",
		ID:          int64(100 + i),
		Description: fmt.Sprintf("Generated segment %d (%s).", i, audiences[i%len(audiences)]),
		Rules:       []rule{top},
	}
}

func (g *generator) feature(i int) featureDoc {
	r := g.rng
	doc := featureDoc{
		Schema:      "../schemas/feature.schema.json",
		ID:          int64(1000 + i),
		Description: fmt.Sprintf("Generated feature %d: %s %s.", i, areas[i%len(areas)], things[(i/len(areas))%len(things)]),
		Default:     state{Enabled: r.IntN(3) == 0},
		Tags:        []string{areas[i%len(areas)]},
		Owners:      []string{teams[r.IntN(len(teams))]},
	}
	if g.opts.MultivariateEvery > 0 && i%g.opts.MultivariateEvery == 0 {
		n := 2 + r.IntN(3)
		keys := make([]string, n)
		left := 100.0
		for j := 0; j < n; j++ {
			keys[j] = colours[(i+j)%len(colours)]
			w := float64(r.IntN(int(left/float64(n-j)) + 1))
			left -= w
			doc.Variants = append(doc.Variants, variant{ID: int64(j + 1), Key: keys[j], Value: keys[j], Weight: w})
		}
		doc.Default.Value = "control"
		g.variants[i] = keys
		g.values[i] = func(r *rand.Rand) any { return colours[r.IntN(len(colours))] }
		return doc
	}
	switch i % 4 {
	case 0: // boolean switch, no value
		g.values[i] = func(*rand.Rand) any { return nil }
	case 1:
		doc.Default.Value = 10 + r.IntN(1000)
		g.values[i] = func(r *rand.Rand) any { return r.IntN(5000) }
	case 2:
		doc.Default.Value = "Welcome!"
		g.values[i] = func(r *rand.Rand) any { return fmt.Sprintf("message %d", r.IntN(1000)) }
	case 3:
		doc.Default.Value = false
		g.values[i] = func(r *rand.Rand) any {
			if r.IntN(2) == 0 {
				return "true"
			}
			return true
		}
	}
	return doc
}

func (g *generator) environment(e int) environmentDoc {
	key := EnvironmentKey(e)
	sum := sha256.Sum256(fmt.Appendf(nil, "ser.generated.%d.%d", g.opts.Seed, e))
	name := key
	if e < len(envNames) {
		name = []string{"Development", "Staging", "Production"}[e]
	}
	return environmentDoc{
		Schema:         "../../schemas/environment.schema.json",
		ID:             int64(e + 1),
		Name:           name,
		Description:    "Generated environment.",
		ClientKey:      fmt.Sprintf("gen_%s_%08x", key, g.rng.Uint32()),
		ServerKeys:     []serverKey{{Name: "backend", SHA256: hex.EncodeToString(sum[:])}},
		ReviewRequired: key == "production",
	}
}

func (g *generator) weights(keys []string) map[string]float64 {
	m := make(map[string]float64, len(keys))
	left := 100
	for j, k := range keys {
		w := g.rng.IntN(left/(len(keys)-j) + 1)
		left -= w
		m[k] = float64(w)
	}
	return m
}

func (g *generator) featureState(e, i int) featureStateDoc {
	r := g.rng
	doc := featureStateDoc{
		Schema:  "../../../schemas/environment-feature.schema.json",
		Enabled: r.IntN(2) == 0,
	}
	value := g.values[i]
	if v := value(r); v != nil && r.IntN(2) == 0 {
		doc.Value = v
	}
	keys := g.variants[i]
	if keys != nil {
		doc.Weights = g.weights(keys)
	}
	if g.opts.Segments > 0 {
		n := min(g.opts.SegmentOverridesPerFeature, g.opts.Segments)
		start := r.IntN(g.opts.Segments)
		for j := 0; j < n; j++ {
			o := segmentOverride{
				Segment:  SegmentKey((start + j*7919) % g.opts.Segments),
				Priority: (j + 1) * 10,
				Enabled:  r.IntN(4) != 0,
				Value:    value(r),
			}
			if keys != nil && j%2 == 0 {
				o.Weights = g.weights(keys)
			}
			doc.SegmentOverrides = append(doc.SegmentOverrides, o)
		}
		// Distinct segments: 7919 is prime, so j*7919 mod Segments repeats
		// only when Segments divides it; drop duplicates just in case.
		doc.SegmentOverrides = dedupeSegments(doc.SegmentOverrides)
	}
	ids := max(g.opts.IdentifiersPerOverride, 1)
	for j := 0; j < g.opts.IdentityOverridesPerFeature; j++ {
		o := identityOverride{Enabled: r.IntN(2) == 0, Value: value(r)}
		for k := 0; k < ids; k++ {
			o.Identifiers = append(o.Identifiers, fmt.Sprintf("user%d-%d@example.com", j, k))
		}
		doc.IdentityOverrides = append(doc.IdentityOverrides, o)
	}
	return doc
}

func dedupeSegments(os []segmentOverride) []segmentOverride {
	seen := make(map[string]bool, len(os))
	out := os[:0]
	for _, o := range os {
		if !seen[o.Segment] {
			seen[o.Segment] = true
			out = append(out, o)
		}
	}
	return out
}
