package evaluator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// defaultCasesDir is the conformance case directory relative to this
// package: ../shared/conformance/flagsmith-engine/cases from the repo root.
const defaultCasesDir = "../../shared/conformance/flagsmith-engine/cases"

func casesDir() string {
	if d := os.Getenv("GITFLAGS_ENGINE_CASES"); d != "" {
		return d
	}
	return defaultCasesDir
}

// stripComments drops lines whose first non-blank characters are "//".
func stripComments(b []byte) []byte {
	lines := bytes.Split(b, []byte("\n"))
	out := lines[:0]
	for _, l := range lines {
		if bytes.HasPrefix(bytes.TrimSpace(l), []byte("//")) {
			continue
		}
		out = append(out, l)
	}
	return bytes.Join(out, []byte("\n"))
}

func decodeNumber(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// orderedObject is a JSON object decoded with its member order kept.
type orderedObject []struct {
	Key string
	Val json.RawMessage
}

func (o *orderedObject) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("want object, got %v", tok)
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		*o = append(*o, struct {
			Key string
			Val json.RawMessage
		}{kt.(string), raw})
	}
	return nil
}

type caseVariant struct {
	Key      string      `json:"key"`
	Value    any         `json:"value"`
	Weight   json.Number `json:"weight"`
	Priority json.Number `json:"priority"`
}

type caseFeature struct {
	Key      string         `json:"key"`
	Name     string         `json:"name"`
	Enabled  bool           `json:"enabled"`
	Value    any            `json:"value"`
	Priority *json.Number   `json:"priority"`
	Variants []caseVariant  `json:"variants"`
	Metadata map[string]any `json:"metadata"`
}

type caseCondition struct {
	Property string          `json:"property"`
	Operator string          `json:"operator"`
	Value    json.RawMessage `json:"value"`
}

type caseRule struct {
	Type       string          `json:"type"`
	Conditions []caseCondition `json:"conditions"`
	Rules      []caseRule      `json:"rules"`
}

type caseSegment struct {
	Key       string         `json:"key"`
	Name      string         `json:"name"`
	Rules     []caseRule     `json:"rules"`
	Overrides []caseFeature  `json:"overrides"`
	Metadata  map[string]any `json:"metadata"`
}

type caseFile struct {
	Context struct {
		Environment struct {
			Key  string `json:"key"`
			Name string `json:"name"`
		} `json:"environment"`
		Identity *struct {
			Identifier string         `json:"identifier"`
			Key        string         `json:"key"`
			Traits     map[string]any `json:"traits"`
		} `json:"identity"`
		Features orderedObject `json:"features"`
		Segments orderedObject `json:"segments"`
	} `json:"context"`
	Result json.RawMessage `json:"result"`
}

func num(n json.Number) float64 {
	f, _ := strconv.ParseFloat(string(n), 64)
	return f
}

func mapVariants(vs []caseVariant) []Variant {
	var out []Variant
	for _, v := range vs {
		out = append(out, Variant{Key: v.Key, Value: v.Value, Weight: num(v.Weight), WeightText: string(v.Weight), Priority: num(v.Priority)})
	}
	return out
}

func mapRules(rs []caseRule) []Rule {
	var out []Rule
	for _, r := range rs {
		mr := Rule{Type: r.Type, Rules: mapRules(r.Rules)}
		for _, c := range r.Conditions {
			v := string(bytes.TrimSpace(c.Value))
			if strings.HasPrefix(v, `"`) {
				_ = json.Unmarshal(c.Value, &v)
			}
			// A JSON array (IN) is passed as its JSON encoding.
			mr.Conditions = append(mr.Conditions, Condition{Property: c.Property, Operator: c.Operator, Value: v})
		}
		out = append(out, mr)
	}
	return out
}

// caseEnvironment maps a case's context to an Environment and Identity.
func caseEnvironment(cf *caseFile) (*Environment, *Identity, error) {
	ctx := &cf.Context
	env := &Environment{Key: ctx.Environment.Key, Name: ctx.Environment.Name}
	for _, kv := range ctx.Features {
		var f caseFeature
		if err := decodeNumber(kv.Val, &f); err != nil {
			return nil, nil, fmt.Errorf("feature %q: %w", kv.Key, err)
		}
		env.Features = append(env.Features, Feature{
			Key: f.Key, Name: f.Name, Enabled: f.Enabled, Value: f.Value,
			Variants: mapVariants(f.Variants), Metadata: f.Metadata,
		})
	}
	for _, kv := range ctx.Segments {
		var s caseSegment
		if err := decodeNumber(kv.Val, &s); err != nil {
			return nil, nil, fmt.Errorf("segment %q: %w", kv.Key, err)
		}
		seg := Segment{Key: s.Key, Name: s.Name, Rules: mapRules(s.Rules), Metadata: s.Metadata}
		for _, o := range s.Overrides {
			ov := Override{Key: o.Key, Name: o.Name, Enabled: o.Enabled, Value: o.Value,
				Variants: mapVariants(o.Variants), Metadata: o.Metadata}
			if o.Priority != nil {
				p := num(*o.Priority)
				ov.Priority = &p
			}
			seg.Overrides = append(seg.Overrides, ov)
		}
		env.Segments = append(env.Segments, seg)
	}
	var id *Identity
	if ctx.Identity != nil {
		id = &Identity{Identifier: ctx.Identity.Identifier, Key: ctx.Identity.Key, Traits: ctx.Identity.Traits}
	}
	return env, id, nil
}

// normalize rewrites JSON numbers canonically (integers as is, other
// numbers as Python prints floats) so that 1.0 and 1.00 compare equal.
func normalize(x any) any {
	switch t := x.(type) {
	case map[string]any:
		for k, v := range t {
			t[k] = normalize(v)
		}
	case []any:
		for i, v := range t {
			t[i] = normalize(v)
		}
	case json.Number:
		if strings.ContainsAny(string(t), ".eE") {
			f, err := strconv.ParseFloat(string(t), 64)
			if err == nil {
				return json.Number(pyFloatString(f))
			}
		}
	}
	return x
}

// resultJSON converts a Result to the shape of the cases' expected results.
func resultJSON(r Result) map[string]any {
	flags := map[string]any{}
	for _, f := range r.Flags {
		m := map[string]any{"name": f.Name, "enabled": f.Enabled, "value": f.Value, "reason": f.Reason, "variant": nil}
		if f.Variant != "" {
			m["variant"] = f.Variant
		}
		if len(f.Metadata) > 0 {
			m["metadata"] = f.Metadata
		}
		flags[f.Name] = m
	}
	segs := []any{}
	for _, s := range r.Segments {
		m := map[string]any{"name": s.Name}
		if len(s.Metadata) > 0 {
			m["metadata"] = s.Metadata
		}
		segs = append(segs, m)
	}
	// Round-trip through JSON so both sides have the same Go types.
	b, _ := json.Marshal(map[string]any{"flags": flags, "segments": segs})
	var out map[string]any
	_ = decodeNumber(b, &out)
	return normalize(out).(map[string]any)
}

func canon(x any) string {
	b, _ := json.Marshal(x)
	return string(b)
}

// diffResults describes the differences between got and want.
func diffResults(got, want map[string]any) string {
	var sb strings.Builder
	gf, _ := got["flags"].(map[string]any)
	wf, _ := want["flags"].(map[string]any)
	var names []string
	for k := range gf {
		names = append(names, k)
	}
	for k := range wf {
		if _, ok := gf[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		g, gok := gf[n]
		w, wok := wf[n]
		switch {
		case !gok:
			fmt.Fprintf(&sb, "  flag %q missing; want %s\n", n, canon(w))
		case !wok:
			fmt.Fprintf(&sb, "  flag %q unexpected: %s\n", n, canon(g))
		case canon(g) != canon(w):
			fmt.Fprintf(&sb, "  flag %q:\n    got  %s\n    want %s\n", n, canon(g), canon(w))
		}
	}
	if g, w := canon(got["segments"]), canon(want["segments"]); g != w {
		fmt.Fprintf(&sb, "  segments:\n    got  %s\n    want %s\n", g, w)
	}
	return sb.String()
}

func TestConformance(t *testing.T) {
	t.Run("engine-edges", func(t *testing.T) { runCases(t, edgeCasesDir) })
	dir := casesDir()
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("conformance cases directory %s not found (set GITFLAGS_ENGINE_CASES): %v", dir, err)
	}
	runCases(t, dir)
}

// edgeCasesDir holds this package's own cases, answered by the reference
// engine (see its gen.py): the edges of Python's number parsing, big
// integers, booleans, IN lists, semantic versions and weights.
const edgeCasesDir = "testdata/engine-edges"

// runCases runs every *.json and *.jsonc case in dir and prints the counts.
func runCases(t *testing.T, dir string) {
	var files []string
	for _, pat := range []string{"*.json", "*.jsonc"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	if len(files) == 0 {
		t.Fatalf("no *.json or *.jsonc cases in %s", dir)
	}
	passed, failed := 0, 0
	for _, file := range files {
		ok := t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var cf caseFile
			if err := decodeNumber(stripComments(raw), &cf); err != nil {
				t.Fatalf("parse: %v", err)
			}
			env, id, err := caseEnvironment(&cf)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Compile(env)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			var want map[string]any
			if err := decodeNumber(cf.Result, &want); err != nil {
				t.Fatalf("parse result: %v", err)
			}
			want = normalize(want).(map[string]any)
			got := resultJSON(m.Evaluate(id))
			if d := diffResults(got, want); d != "" {
				t.Errorf("result mismatch:\n%s", d)
			}
			// The single-flag path must agree with the full evaluation.
			for _, f := range m.Evaluate(id).Flags {
				one, ok := m.Flag(f.Name, id)
				if !ok || canon(one) != canon(f) {
					t.Errorf("Flag(%q) = %+v, %v; Evaluate gave %+v", f.Name, one, ok, f)
				}
			}
		})
		if ok {
			passed++
		} else {
			failed++
		}
	}
	fmt.Printf("%s: %d passed, %d failed\n", dir, passed, failed)
}
