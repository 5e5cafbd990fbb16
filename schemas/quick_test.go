package schemas_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/repogen"
	"github.com/gitflags/gitflags/schemas"
)

// kindOf returns the schema kind of a flag repository path, or "".
func kindOf(p string) schemas.Kind {
	parts := strings.Split(filepath.ToSlash(p), "/")
	switch {
	case p == "gitflags.json":
		return schemas.Settings
	case len(parts) == 2 && parts[0] == "features" && strings.HasSuffix(p, ".json"):
		return schemas.Feature
	case len(parts) == 2 && parts[0] == "segments" && strings.HasSuffix(p, ".json"):
		return schemas.Segment
	case len(parts) == 3 && parts[0] == "environments" && parts[2] == "environment.json":
		return schemas.Environment
	case len(parts) == 4 && parts[0] == "environments" && parts[2] == "features" && strings.HasSuffix(p, ".json"):
		return schemas.EnvironmentFeature
	}
	return ""
}

type doc struct {
	kind schemas.Kind
	name string
	v    any
}

func decode(t testing.TB, data []byte) any {
	t.Helper()
	var v any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// corpus returns valid documents of every kind: the template's and a
// generated repository's (with variants, splits, overrides and every
// operator repogen writes).
func corpus(t *testing.T) []doc {
	gen := filepath.Join(t.TempDir(), "gen")
	opts := repogen.Small()
	if err := repogen.Write(gen, opts); err != nil {
		t.Fatal(err)
	}
	var docs []doc
	for _, root := range []string{"../flags-repo-template", gen} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			k := kindOf(rel)
			if k == "" {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			docs = append(docs, doc{k, rel, decode(t, data)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return docs
}

func fullValid(t testing.TB, k schemas.Kind, v any) bool {
	s, err := schemas.Compiled(k)
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(v) == nil
}

// TestQuickValidCompilesEverySchema: a schema QuickValid cannot compile
// would make every load of its files take the slow path.
func TestQuickValidCompilesEverySchema(t *testing.T) {
	for _, k := range schemas.Kinds {
		if err := schemas.QuickCompiled(k); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}

// TestQuickValidAcceptsValidDocuments: the valid documents of the template
// and of a generated repository take the fast path.
func TestQuickValidAcceptsValidDocuments(t *testing.T) {
	kinds := map[schemas.Kind]int{}
	for _, d := range corpus(t) {
		if !fullValid(t, d.kind, d.v) {
			t.Fatalf("%s: corpus document is invalid", d.name)
		}
		if !schemas.QuickValid(d.kind, d.v) {
			t.Errorf("%s: valid, but QuickValid answers false", d.name)
		}
		kinds[d.kind]++
	}
	for _, k := range schemas.Kinds {
		if kinds[k] == 0 {
			t.Errorf("no %s document in the corpus", k)
		}
	}
}

// TestQuickValidNeverAcceptsInvalid mutates valid documents at random
// (removed and added keys, values of other types, numbers and strings at
// and beyond their bounds) and checks the one-sided promise: whenever
// QuickValid answers true, the full validator accepts the document.
func TestQuickValidNeverAcceptsInvalid(t *testing.T) {
	docs := corpus(t)
	rng := rand.New(rand.NewPCG(1, 2))
	rounds := 20000
	if testing.Short() {
		rounds = 2000
	}
	var quick, full, rejected int
	for i := range rounds {
		d := docs[rng.IntN(len(docs))]
		v := clone(d.v)
		for range 1 + rng.IntN(3) {
			v = mutate(rng, v, 0)
		}
		q, f := schemas.QuickValid(d.kind, v), fullValid(t, d.kind, v)
		if q && !f {
			out, _ := json.Marshal(v)
			t.Fatalf("round %d, %s (%s): QuickValid accepts a document the schema rejects: %s", i, d.name, d.kind, out)
		}
		switch {
		case q:
			quick++
		case f:
			full++
		default:
			rejected++
		}
	}
	t.Logf("%d mutated documents: %d quick-valid, %d valid only by the full validator, %d invalid", rounds, quick, full, rejected)
	// The mutations must exercise both answers, or the test proves nothing.
	if quick == 0 || rejected == 0 {
		t.Fatalf("mutations too weak: %d quick-valid, %d invalid", quick, rejected)
	}
}

// TestQuickValidEdgeCases pins the cases QuickValid leaves to the full
// validator, and bounds it checks exactly.
func TestQuickValidEdgeCases(t *testing.T) {
	cases := []struct {
		kind  schemas.Kind
		doc   string
		quick bool // what QuickValid answers
	}{
		{schemas.Feature, `{"id": 1, "default": {"enabled": true}}`, true},
		{schemas.Feature, `{"id": 9007199254740991, "default": {"enabled": true}}`, true},
		{schemas.Feature, `{"id": 9007199254740992, "default": {"enabled": true}}`, false},
		{schemas.Feature, `{"id": 0, "default": {"enabled": true}}`, false},
		{schemas.Feature, `{"id": 1.0, "default": {"enabled": true}}`, false}, // integral, but left to the full validator
		{schemas.Feature, `{"id": 1e0, "default": {"enabled": true}}`, false},
		{schemas.Feature, `{"id": 1, "default": {"enabled": true, "value": 1.5}}`, false},
		{schemas.Feature, `{"id": 1, "default": {"enabled": "yes"}}`, false},
		{schemas.Feature, `{"id": 1, "default": {}}`, false},
		{schemas.Feature, `{"id": 1, "default": {"enabled": true}, "x": 1}`, false},
		{schemas.Feature, `{"id": 1, "default": {"enabled": true}, "tags": [""]}`, false},
		{schemas.Feature, `{"id": 1, "default": {"enabled": true}, "variants": [{"id": 1, "key": "a", "value": "x", "weight": 100}]}`, true},    // at the bound: integers compare exactly
		{schemas.Feature, `{"id": 1, "default": {"enabled": true}, "variants": [{"id": 1, "key": "a", "value": "x", "weight": 100.0}]}`, false}, // at the bound: left to the exact check
		{schemas.Feature, `{"id": 1, "default": {"enabled": true}, "variants": [{"id": 1, "key": "a", "value": "x", "weight": 99.5}]}`, true},
		{schemas.Feature, `{"id": 1, "default": {"enabled": true}, "variants": [{"id": 1, "key": "-a", "value": "x"}]}`, false},
		{schemas.Feature, `{"id": 1, "description": "` + strings.Repeat("é", 2000) + `", "default": {"enabled": true}}`, true},
		{schemas.Feature, `{"id": 1, "description": "` + strings.Repeat("é", 2001) + `", "default": {"enabled": true}}`, false},
		{schemas.EnvironmentFeature, `{"weights": {"a": 100.0000000001}}`, false},
		{schemas.EnvironmentFeature, `{"weights": {"a": 50, "b": 50}}`, true},
		{schemas.EnvironmentFeature, `{"weights": {"-a": 50}}`, false},
		{schemas.Settings, `{"format_version": 1, "project": {"id": 1, "name": "p"}}`, true},
		{schemas.Settings, `{"format_version": 2, "project": {"id": 1, "name": "p"}}`, false},
		{schemas.Settings, `{"format_version": 1.0, "project": {"id": 1, "name": "p"}}`, false},
		{schemas.Segment, `{"id": 1, "rules": [{"type": "ALL", "rules": [{"type": "ANY", "conditions": [{"operator": "IN", "value": ["a", 1]}]}]}]}`, true},
		{schemas.Segment, `{"id": 1, "rules": [{"type": "ALL", "rules": [{"type": "ANY", "conditions": [{"operator": "IN", "value": ["a", 1.5]}]}]}]}`, false},
		{schemas.Segment, `{"id": 1, "rules": [{"type": "ALL", "rules": [{"type": "SOME"}]}]}`, false},
	}
	for _, c := range cases {
		v := decode(t, []byte(c.doc))
		got := schemas.QuickValid(c.kind, v)
		if got != c.quick {
			t.Errorf("%s %.80s: QuickValid %v, want %v", c.kind, c.doc, got, c.quick)
		}
		if got && !fullValid(t, c.kind, v) {
			t.Errorf("%s %.80s: QuickValid accepts what the schema rejects", c.kind, c.doc)
		}
	}
}

// TestKeyPattern checks the byte-table form of the key patterns against
// the regexp engine.
func TestKeyPattern(t *testing.T) {
	patterns := []string{`^[A-Za-z0-9][A-Za-z0-9_.-]*$`, `^[a-c][x-z_]*$`}
	inputs := []string{"", "a", "A", "0", "_a", "-a", ".a", "a_b.c-d", "a b", "a/b", "é", "aé", "a\x00", "Z9", "ab\n", "abc", "ax_", "ad", "a-"}
	for _, p := range patterns {
		k := schemas.ParseKeyPattern(p)
		if k == nil {
			t.Fatalf("%s: not recognised", p)
		}
		re := regexp.MustCompile(p)
		for _, in := range inputs {
			if got, want := k.Match(in), re.MatchString(in); got != want {
				t.Errorf("%s on %q: %v, regexp %v", p, in, got, want)
			}
		}
	}
	for _, p := range []string{`^[0-9a-f]{64}$`, `^[A-Za-z0-9][A-Za-z0-9_-]{7,127}$`, `^[a-z][a\\d]*$`, `^[z-a][a]*$`, `[a][b]*$`, `^[a][b]*`, `^[][a]*$`} {
		if schemas.ParseKeyPattern(p) != nil {
			t.Errorf("%s: recognised as a key pattern", p)
		}
	}
}

func FuzzQuickValid(f *testing.F) {
	f.Add(0, `{"id": 1, "default": {"enabled": true}}`)
	f.Add(1, `{"enabled": true, "weights": {"a": 33.3, "b": 66.7}}`)
	f.Add(2, `{"id": 1, "name": "n", "rules": [{"type": "ALL", "conditions": [{"property": "plan", "operator": "EQUAL", "value": "x"}]}]}`)
	f.Fuzz(func(t *testing.T, which int, content string) {
		var v any
		d := json.NewDecoder(strings.NewReader(content))
		d.UseNumber()
		if d.Decode(&v) != nil {
			return
		}
		if which < 0 {
			which = -which
		}
		k := schemas.Kinds[which%len(schemas.Kinds)]
		if schemas.QuickValid(k, v) && !fullValid(t, k, v) {
			t.Fatalf("%s: QuickValid accepts what the schema rejects: %s", k, content)
		}
	})
}

func clone(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = clone(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = clone(e)
		}
		return a
	}
	return v
}

// replacements are values a mutation puts in place of another.
var replacements = []any{
	nil, true, false, "", "x", "-bad key", "ok_key.1", strings.Repeat("a", 129), strings.Repeat("é", 2001),
	json.Number("0"), json.Number("-1"), json.Number("1"), json.Number("1.0"), json.Number("1e2"),
	json.Number("100"), json.Number("100.0000000001"), json.Number("99.99999999999999999"),
	json.Number("1000000"), json.Number("1000001"), json.Number("9007199254740991"),
	json.Number("9007199254740992"), json.Number("-0"), json.Number("12.5"), json.Number("1e400"),
	[]any{}, []any{"a"}, []any{json.Number("1")}, map[string]any{}, map[string]any{"enabled": true},
	"ALL", "EQUAL", "IN", "NOPE",
}

// mutate changes one place in v, chosen at random, and returns v.
func mutate(rng *rand.Rand, v any, depth int) any {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		if len(keys) == 0 || rng.IntN(8) == 0 {
			x[fmt.Sprint([]string{"extra", "enabled", "value", "weights", "id", "key"}[rng.IntN(6)])] = replacements[rng.IntN(len(replacements))]
			return x
		}
		k := keys[rng.IntN(len(keys))]
		switch rng.IntN(6) {
		case 0:
			delete(x, k)
		case 1:
			x[k] = replacements[rng.IntN(len(replacements))]
		default:
			x[k] = mutate(rng, x[k], depth+1)
		}
		return x
	case []any:
		switch {
		case len(x) == 0 || rng.IntN(8) == 0:
			return append(x, replacements[rng.IntN(len(replacements))])
		case rng.IntN(8) == 0:
			return x[1:]
		}
		i := rng.IntN(len(x))
		x[i] = mutate(rng, x[i], depth+1)
		return x
	}
	return replacements[rng.IntN(len(replacements))]
}
