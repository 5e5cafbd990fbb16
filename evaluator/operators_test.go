package evaluator

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// segmentMatches reports whether a one-condition segment matches id.
func segmentMatches(t *testing.T, env Environment, c Condition, id *Identity) bool {
	t.Helper()
	env.Segments = []Segment{{Key: "seg", Name: "s", Rules: []Rule{{Type: RuleAll, Conditions: []Condition{c}}}}}
	m, err := Compile(&env)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return len(m.Evaluate(id).Segments) == 1
}

func TestOperators(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name  string
		prop  string
		op    string
		value string
		trait any // trait "t" (or prop) value; noTrait: absent
		want  bool
	}{
		// EQUAL and friends: v is cast to cv's type.
		{"string equal", "", OpEqual, "premium", "premium", true},
		{"string case", "", OpEqual, "Premium", "premium", false},
		{"int equal", "", OpEqual, "21", float64(21), true},
		{"int vs decimal value fails cast", "", OpEqual, "21.0", float64(21), false},
		{"int value with spaces (python int)", "", OpEqual, " 21 ", 21, true},
		{"int value with underscores", "", OpEqual, "1_000", 1000, true},
		{"int value plus sign", "", OpEqual, "+5", int64(5), true},
		{"float trait vs 1.50", "", OpEqual, "1.50", 1.5, true},
		{"json.Number int", "", OpEqual, "3", json.Number("3"), true},
		{"json.Number int vs 3.0 fails", "", OpEqual, "3.0", json.Number("3"), false},
		{"json.Number float vs 3", "", OpEqual, "3", json.Number("3.0"), true},
		{"string -12 coerces to int", "", OpEqual, "-12", "-12", true},
		{"string -12 greater than -13", "", OpGreaterThan, "-13", "-12", true},
		{"string -12 less than -11", "", OpLessThan, "-11", "-12", true},
		{"string 1.50 coerces to float", "", OpEqual, "1.5", "1.50", true},
		{"string 1.50 vs 1.500", "", OpEqual, "1.500", "1.50", true},
		{"string 1e3 stays string", "", OpEqual, "1000", "1e3", false},
		{"string 1e3 string equal", "", OpEqual, "1e3", "1e3", true},
		{"string 007 is int 7", "", OpEqual, "7", "007", true},
		{"bool true vs true", "", OpEqual, "true", true, true},
		{"bool true vs anything", "", OpEqual, "yes", true, true},
		{"bool true vs 1", "", OpEqual, "1", true, true},
		{"bool false vs False", "", OpEqual, "False", false, true},
		{"bool false vs false", "", OpEqual, "false", false, true},
		{"bool false vs 0 (true)", "", OpEqual, "0", false, false},
		{"bool false vs FALSE (true)", "", OpEqual, "FALSE", false, false},
		{"bool true greater than false", "", OpGreaterThan, "False", true, true},
		{"int vs True fails cast", "", OpEqual, "True", 1, false},
		{"failed cast makes NOT_EQUAL false", "", OpNotEqual, "abc", 5, false},
		{"int not equal", "", OpNotEqual, "6", 5, true},
		{"string ordering", "", OpGreaterThan, "a", "b", true},
		{"string ordering inclusive", "", OpLessThanInclusive, "b", "b", true},
		{"float greater inclusive", "", OpGreaterThanInclusive, "2.1", 2.1, true},
		{"float vs inf value", "", OpLessThan, "inf", 1e300, true},
		{"float vs nan value", "", OpEqual, "nan", 1.5, false},
		{"nan float not equal", "", OpNotEqual, "1", nan, true},
		{"nan float not less", "", OpLessThan, "1", nan, false},
		{"int vs huge value", "", OpLessThan, "100000000000000000000", 5, true},
		{"int vs huge negative value", "", OpGreaterThan, "-100000000000000000000", 5, true},
		{"big int trait", "", OpGreaterThan, "1", json.Number("99999999999999999999"), true},
		{"uint64 beyond int64", "", OpGreaterThan, "9223372036854775807", uint64(math.MaxUint64), true},
		{"missing trait", "", OpEqual, "x", noTrait, false},
		{"null trait", "", OpNotEqual, "x", nil, false},
		// CONTAINS / NOT_CONTAINS
		{"contains", "", OpContains, "lo w", "hello world", true},
		{"contains miss", "", OpContains, "xyz", "hello", false},
		{"contains on int", "", OpContains, "2", 123, false},
		{"not contains", "", OpNotContains, "x", "abc", true},
		{"not contains hit", "", OpNotContains, "b", "abc", false},
		{"not contains on int", "", OpNotContains, "x", 5, false},
		{"not contains on bool", "", OpNotContains, "x", true, false},
		{"not contains missing", "", OpNotContains, "x", noTrait, false},
		{"not contains null", "", OpNotContains, "x", nil, false},
		// REGEX: anchored at the start only.
		{"regex prefix", "", OpRegex, "[a-z]+", "abc123", true},
		{"regex not at start", "", OpRegex, "[a-z]+", "123abc", false},
		{"regex substring not at start", "", OpRegex, "abc", "xabc", false},
		{"regex not anchored at end", "", OpRegex, "abc", "abcx", true},
		{"regex case", "", OpRegex, "[a-z]", "ABC", false},
		{"regex bool True", "", OpRegex, "True", true, true},
		{"regex bool lowercase", "", OpRegex, "true", true, false},
		{"regex int", "", OpRegex, `\d*[13579]$`, 42, false},
		{"regex odd int", "", OpRegex, `\d*[13579]$`, 43, true},
		{"regex float str", "", OpRegex, `1\.5$`, 1.5, true},
		{"regex float repr", "", OpRegex, `100\.0$`, json.Number("100.0"), true},
		{"regex null", "", OpRegex, ".*", nil, false},
		// MODULO: floored, numbers only.
		{"modulo", "", OpModulo, "3|1", 10, true},
		{"modulo negative floored", "", OpModulo, "3|2", -7, true},
		{"modulo negative divisor", "", OpModulo, "-3|-2", 7, true},
		{"modulo float", "", OpModulo, "2|0.5", -7.5, true},
		{"modulo float positive", "", OpModulo, "2|1.5", 5.5, true},
		{"modulo numeric string", "", OpModulo, "3|1", "10", true},
		{"modulo spaces (python float)", "", OpModulo, " 3 | 1 ", 10, true},
		{"modulo bool (Python: True % 2.0 == 1.0)", "", OpModulo, "2|1", true, true},
		{"modulo false", "", OpModulo, "2|1", false, false},
		{"modulo string", "", OpModulo, "3|1", "abc", false},
		{"modulo no pipe", "", OpModulo, "3", 3, false},
		{"modulo empty", "", OpModulo, "", 3, false},
		{"modulo three parts", "", OpModulo, "3|1|2", 10, false},
		{"modulo zero divisor", "", OpModulo, "0|0", 10, false},
		{"modulo semver", "", OpModulo, "1.0.0:semver", 10, false},
		// IN
		{"in comma", "", OpIn, "a,b,c", "b", true},
		{"in no trimming", "", OpIn, "a, b", "b", false},
		{"in no trimming leading space", "", OpIn, "a, b", " b", true},
		{"in int cv", "", OpIn, "1,2,3", 2, true},
		{"in int cv json", "", OpIn, `["1","2"]`, 2, true},
		{"in int cv json numbers", "", OpIn, `[1, 2]`, 2, true},
		{"in json after a space is split on commas", "", OpIn, ` ["a", "b"]`, "b", false},
		{"in split part of a spaced json", "", OpIn, ` ["a", "b"]`, ` ["a"`, true},
		{"in json float element", "", OpIn, `[1.0]`, "x", false},
		{"in json bool element", "", OpIn, `[true]`, "True", true},
		{"in json null element", "", OpIn, `[null]`, "None", true},
		{"in invalid json falls back", "", OpIn, "[foo,bar]", "[foo", true},
		{"in json string not list", "", OpIn, `"a,b"`, `"a`, true},
		{"in float cv never", "", OpIn, "1.5", 1.5, false},
		{"in float string cv never", "", OpIn, "1.5", "1.5", false},
		{"in bool cv never", "", OpIn, "False,false,True", false, false},
		{"in bool true cv never", "", OpIn, "True,true,1", true, false},
		{"in numeric string is int", "", OpIn, "2", "2", true},
		{"in leading zeros", "", OpIn, "02", "02", false},
		{"in null", "", OpIn, "None,null", nil, false},
		{"in missing", "", OpIn, "", noTrait, false},
		{"in empty string", "", OpIn, "", "", true},
		{"in large list", "", OpIn, "a,b,c,d,e,f,g,h,i,j,k", "k", true},
		{"in large list int", "", OpIn, "1,2,3,4,5,6,7,8,9,10,11", 11, true},
		{"in large list miss", "", OpIn, "a,b,c,d,e,f,g,h,i,j,k", "z", false},
		// IS_SET / IS_NOT_SET
		{"is set", "", OpIsSet, "", "x", true},
		{"is set empty string", "", OpIsSet, "", "", true},
		{"is set false", "", OpIsSet, "", false, true},
		{"is set null", "", OpIsSet, "", nil, false},
		{"is set missing", "", OpIsSet, "", noTrait, false},
		{"is not set null", "", OpIsNotSet, "", nil, true},
		{"is not set missing", "", OpIsNotSet, "", noTrait, true},
		{"is not set present", "", OpIsNotSet, "", 0, false},
		// semver
		{"semver greater", "", OpGreaterThan, "1.2.0:semver", "1.2.3", true},
		{"semver numeric not lexical", "", OpGreaterThan, "9.0.0:semver", "10.0.0", true},
		{"semver prerelease less", "", OpLessThan, "1.0.0:semver", "1.0.0-rc.1", true},
		{"semver prerelease ordering", "", OpLessThan, "1.0.0-rc.3:semver", "1.0.0-rc.2", true},
		{"semver prerelease numeric", "", OpLessThan, "1.0.0-11:semver", "1.0.0-2", true},
		{"semver prerelease alnum above numeric", "", OpGreaterThan, "1.0.0-alpha.1:semver", "1.0.0-alpha.beta", true},
		{"semver prerelease longer", "", OpLessThan, "1.0.0-alpha.1:semver", "1.0.0-alpha", true},
		{"semver build ignored", "", OpEqual, "1.0.0:semver", "1.0.0+build.5", true},
		{"semver not equal", "", OpNotEqual, "1.0.1:semver", "1.0.0", true},
		{"semver invalid cv", "", OpEqual, "1.0.0:semver", "v1.0.0", false},
		{"semver invalid cv not equal", "", OpNotEqual, "1.0.0:semver", "1.0", false},
		{"semver invalid value", "", OpEqual, "1.0:semver", "1.0.0", false},
		{"semver leading zero", "", OpEqual, "1.0.0:semver", "01.0.0", false},
		{"semver contains never", "", OpContains, "1.0.0:semver", "1.0.0", false},
		{"semver int cv cast fails", "", OpEqual, "1.0.0:semver", "1", false},
		{"semver bool cv casts as bool", "", OpEqual, "1.0.0:semver", true, true},
		{"semver big components", "", OpLessThan, "100000000000000000000.0.0:semver", "99999999999999999999.0.0", true},
		// unknown operator
		{"unknown operator", "", "LIKE", "x", "x", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prop := tc.prop
			if prop == "" {
				prop = "t"
			}
			id := &Identity{Identifier: "user", Traits: map[string]any{"other": 1}}
			if tc.trait != noTrait {
				id.Traits[prop] = tc.trait
			}
			c := Condition{Property: prop, Operator: tc.op, Value: tc.value}
			if got := segmentMatches(t, Environment{Key: "env"}, c, id); got != tc.want {
				t.Errorf("%s %s %q with %#v = %v, want %v", prop, tc.op, tc.value, tc.trait, got, tc.want)
			}
		})
	}
}

type noTraitType struct{}

var noTrait any = noTraitType{}

func TestContextValues(t *testing.T) {
	env := Environment{Key: "envkey", Name: "Production"}
	traits := map[string]any{
		"x": "1", "a b": "spaced", "obj": map[string]any{"inner": "v", "n": float64(5)},
		"arr": []any{"zero", "one"}, "tamaño": "grande", "[$the.size$]": "small",
		"$.identity.identifier": "literal", "$.environment.name": nil, "$.a b": "invalid-path-trait",
		"$.identity.traits": "literal traits",
	}
	id := &Identity{Identifier: "123", Traits: traits}
	tests := []struct {
		prop, op, value string
		id              *Identity
		want            bool
	}{
		{"$.identity.traits.x", OpEqual, "1", id, true},
		{"$.identity.traits['a b']", OpEqual, "spaced", id, true},
		{`$["identity"]["traits"]["a b"]`, OpEqual, "spaced", id, true},
		{"$['identity']['traits']['x']", OpEqual, "1", id, true},
		{"$.identity.traits.tamaño", OpEqual, "grande", id, true},
		{"$.identity.traits['[$the.size$]']", OpEqual, "small", id, true},
		{`$.identity.traits['\u0078']`, OpEqual, "1", id, true},
		{"$.identity.traits.obj.inner", OpEqual, "v", id, true},
		{"$.identity.traits.obj['n']", OpGreaterThan, "4", id, true},
		{"$.identity.traits.arr[1]", OpEqual, "one", id, true},
		{"$.identity.traits.arr[-1]", OpEqual, "one", id, true},
		{"$.identity.traits.arr[5]", OpIsSet, "", id, false},
		{"$.identity.traits.obj", OpIsSet, "", id, false}, // objects are no value
		{"obj", OpIsSet, "", id, true},                    // but a plain trait is its string form
		{"obj", OpEqual, "{'inner': 'v', 'n': 5}", id, true},
		{"$.identity.traits.arr[*]", OpIsSet, "", id, false},
		{"$..x", OpIsSet, "", id, false},
		{"$.identity.traits.missing", OpIsSet, "", id, false},
		// A trait literally named like the property wins...
		{"$.identity.identifier", OpEqual, "literal", id, true},
		{"$.identity.traits", OpEqual, "literal traits", id, true},
		// ...unless it is null.
		{"$.environment.name", OpEqual, "Production", id, true},
		// Identifier is coerced: "123" is an int.
		{"$.identity.identifier", OpIsSet, "", &Identity{Identifier: "123"}, true},
		{"$.identity.identifier", OpIn, "123,456", &Identity{Identifier: "123"}, true},
		{"$.identity.identifier", OpGreaterThan, "99", &Identity{Identifier: "123"}, true},
		{"$.identity.key", OpEqual, "envkey_u", &Identity{Identifier: "u"}, true},
		{"$.identity.key", OpEqual, "pinned", &Identity{Identifier: "u", Key: "pinned"}, true},
		{"$.identity.key", OpIsSet, "", nil, false},
		{"$.environment.key", OpEqual, "envkey", nil, true},
		{"$.environment.name", OpEqual, "Production", nil, true},
		{"$.environment", OpIsSet, "", nil, false},
		{"$.identity", OpIsSet, "", id, false},
		{"$.leads.to.nowhere", OpIsNotSet, "", id, true},
		// An invalid JSONPath is a trait name.
		{"$.a b", OpEqual, "invalid-path-trait", id, true},
		{"$.identity.traits['unterminated", OpIsSet, "", id, false},
		// No identity: traits are absent.
		{"x", OpIsNotSet, "", nil, true},
		{"", OpIsNotSet, "", id, true},
		{"", OpEqual, "", id, false},
	}
	for _, tc := range tests {
		c := Condition{Property: tc.prop, Operator: tc.op, Value: tc.value}
		if got := segmentMatches(t, env, c, tc.id); got != tc.want {
			t.Errorf("%s %s %q: got %v, want %v", tc.prop, tc.op, tc.value, got, tc.want)
		}
	}
}

func TestPercentageSplit(t *testing.T) {
	env := Environment{Key: "test_env"}
	seg := func(v, prop string, id *Identity) bool {
		t.Helper()
		env.Segments = []Segment{{Key: "12345", Name: "s", Rules: []Rule{{Type: RuleAll,
			Conditions: []Condition{{Property: prop, Operator: OpPercentageSplit, Value: v}}}}}}
		m, err := Compile(&env)
		if err != nil {
			t.Fatal(err)
		}
		return len(m.Evaluate(id).Segments) == 1
	}
	foobar := &Identity{Identifier: "foobar"} // HashedPercentage("12345", "test_env_foobar") = 51.99...
	for _, tc := range []struct {
		v, prop string
		id      *Identity
		want    bool
	}{
		{"52", "", foobar, true},
		{"51.991", "", foobar, true},
		{"51.99", "", foobar, false},
		{"51.990398079615915", "", foobar, true},
		{"52", "", &Identity{Identifier: "x", Key: "test_env_foobar"}, true},
		{"100", "", nil, false},
		{"100", "missing", foobar, false},
		{"abc", "", foobar, false},
		{"52", "$.identity.key", foobar, true},
		// A trait value is hashed in its Python str() form: 42 -> "42", true -> "True".
		{"26.6", "n", &Identity{Identifier: "u", Traits: map[string]any{"n": 2}}, false},
	} {
		if got := seg(tc.v, tc.prop, tc.id); got != tc.want {
			t.Errorf("PERCENTAGE_SPLIT %q prop %q: got %v, want %v", tc.v, tc.prop, got, tc.want)
		}
	}
	// The trait's str() form is what is hashed.
	for _, tc := range []struct {
		trait any
		str   string
	}{{float64(42), "42"}, {true, "True"}, {"1.50", "1.5"}, {json.Number("2.0"), "2.0"}, {"abc", "abc"}} {
		p := HashedPercentage("12345", tc.str)
		id := &Identity{Identifier: "u", Traits: map[string]any{"t": tc.trait}}
		if !seg(pyFloatString(p), "t", id) || p > 0 && seg(pyFloatString(math.Nextafter(p, -1)), "t", id) {
			t.Errorf("trait %#v not hashed as %q", tc.trait, tc.str)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	bad := &Environment{Segments: []Segment{{Name: "beta", Rules: []Rule{{Type: RuleAll,
		Conditions: []Condition{{Property: "a", Operator: OpEqual, Value: "x"}, {Property: "b", Operator: OpRegex, Value: "(a"}}}}}}}
	if _, err := Compile(bad); err == nil || !strings.Contains(err.Error(), `segment "beta"`) || !strings.Contains(err.Error(), "condition 1") {
		t.Errorf("bad regex: err = %v", err)
	}
	if _, err := Compile(&Environment{Segments: []Segment{{Name: "s", Rules: []Rule{{Type: "SOME"}}}}}); err == nil {
		t.Error("unknown rule type: no error")
	}
	if _, err := Compile(&Environment{Features: []Feature{{Name: "a"}, {Name: "a"}}}); err == nil {
		t.Error("duplicate feature: no error")
	}
	if _, err := Compile(nil); err == nil {
		t.Error("nil environment: no error")
	}
}

func TestRules(t *testing.T) {
	is := func(v string) Condition { return Condition{Property: "t", Operator: OpEqual, Value: v} }
	id := &Identity{Identifier: "u", Traits: map[string]any{"t": "a"}}
	for _, tc := range []struct {
		name  string
		rules []Rule
		want  bool
	}{
		{"no rules never matches", nil, false},
		{"empty rule matches", []Rule{{Type: RuleAll}}, true},
		{"empty NONE rule matches", []Rule{{Type: RuleNone}}, true},
		{"ALL", []Rule{{Type: RuleAll, Conditions: []Condition{is("a"), is("b")}}}, false},
		{"ANY", []Rule{{Type: RuleAny, Conditions: []Condition{is("a"), is("b")}}}, true},
		{"NONE hit", []Rule{{Type: RuleNone, Conditions: []Condition{is("a"), is("b")}}}, false},
		{"NONE miss", []Rule{{Type: RuleNone, Conditions: []Condition{is("c"), is("b")}}}, true},
		{"all top-level rules", []Rule{{Type: RuleAll, Conditions: []Condition{is("a")}}, {Type: RuleAll, Conditions: []Condition{is("b")}}}, false},
		{"ANY sub-rules", []Rule{{Type: RuleAny, Rules: []Rule{{Type: RuleAll, Conditions: []Condition{is("b")}}, {Type: RuleAll, Conditions: []Condition{is("a")}}}}}, true},
		{"ALL sub-rules", []Rule{{Type: RuleAll, Rules: []Rule{{Type: RuleAll, Conditions: []Condition{is("b")}}, {Type: RuleAll, Conditions: []Condition{is("a")}}}}}, false},
		{"NONE sub-rules", []Rule{{Type: RuleNone, Rules: []Rule{{Type: RuleAll, Conditions: []Condition{is("b")}}}}}, true},
		{"conditions and sub-rules both", []Rule{{Type: RuleAny, Conditions: []Condition{is("a")}, Rules: []Rule{{Type: RuleAll, Conditions: []Condition{is("b")}}}}}, false},
	} {
		m, err := Compile(&Environment{Segments: []Segment{{Key: "1", Name: "s", Rules: tc.rules}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(m.Evaluate(id).Segments) == 1; got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func prio(p float64) *float64 { return &p }

func TestPrecedence(t *testing.T) {
	always := []Rule{{Type: RuleAll, Conditions: []Condition{{Property: "$.environment.name", Operator: OpEqual, Value: "prod"}}}}
	env := &Environment{
		Key: "k", Name: "prod",
		Features: []Feature{{Key: "1", Name: "f", Value: "default"}, {Key: "2", Name: "g", Value: "g-default", Metadata: map[string]any{"id": 2}}},
		Segments: []Segment{
			{Key: "a", Name: "weak", Rules: always, Overrides: []Override{{Name: "f", Value: "weak"}, {Name: "g", Value: "g-nil-prio"}}},
			{Key: "b", Name: "tie1", Rules: always, Overrides: []Override{{Name: "f", Value: "tie1", Priority: prio(1)}}},
			{Key: "c", Name: "tie2", Rules: always, Overrides: []Override{{Name: "f", Value: "tie2", Priority: prio(1)}}},
			{Key: "d", Name: "nomatch", Rules: []Rule{{Type: RuleAll, Conditions: []Condition{{Property: "x", Operator: OpIsSet}}}},
				Overrides: []Override{{Name: "f", Value: "nomatch", Priority: prio(-5)}, {Name: "unknown", Value: 1}}},
		},
		IdentityOverrides: map[string][]Override{
			"vip": {{Name: "f", Value: "mine", Enabled: true}, {Name: "ghost", Value: 1}},
			"42":  {{Name: "g", Value: "answer"}},
			"007": {{Name: "g", Value: "bond"}},
		},
	}
	m, err := Compile(env)
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string, id *Identity) Flag {
		f, ok := m.Flag(name, id)
		if !ok {
			t.Fatalf("no flag %q", name)
		}
		return f
	}
	if f := get("f", nil); f.Value != "tie1" || f.Reason != "TARGETING_MATCH; segment=tie1" {
		t.Errorf("tie: %+v", f)
	}
	if f := get("g", nil); f.Value != "g-nil-prio" || f.Metadata["id"] != 2 {
		t.Errorf("nil priority override / metadata fallback: %+v", f)
	}
	if f := get("f", &Identity{Identifier: "vip"}); f.Value != "mine" || f.Reason != "TARGETING_MATCH; segment=identity_overrides" {
		t.Errorf("identity override: %+v", f)
	}
	r := m.Evaluate(&Identity{Identifier: "vip"})
	if n := len(r.Segments); n != 4 || r.Segments[3].Name != IdentityOverridesSegment {
		t.Errorf("segments with identity override: %+v", r.Segments)
	}
	if f := get("g", &Identity{Identifier: "42"}); f.Value != "answer" {
		t.Errorf("numeric identifier override: %+v", f)
	}
	// "007" coerces to the integer 7, compared as "7": never matches (IN semantics).
	if f := get("g", &Identity{Identifier: "007"}); f.Value != "g-nil-prio" {
		t.Errorf("007 identifier override: %+v", f)
	}
	if f := get("f", &Identity{Identifier: "other"}); f.Value != "tie1" {
		t.Errorf("other identity: %+v", f)
	}
	if _, ok := m.Flag("ghost", nil); ok {
		t.Error("unknown feature reported")
	}
}

func TestMultivariate(t *testing.T) {
	env := &Environment{Key: "test_env", Features: []Feature{{
		Key: "78986", Name: "mv", Enabled: true, Value: "control-value", Metadata: map[string]any{"id": 1},
		Variants: []Variant{
			{Key: "second", Value: "B", Weight: 33.333333333333336, Priority: 2},
			{Value: "A", Weight: 54.54, Priority: 1},
		},
	}}}
	m, err := Compile(env)
	if err != nil {
		t.Fatal(err)
	}
	// HashedPercentage("78986", "test_env_foobar") = 54.53...: first band (priority 1).
	f, _ := m.Flag("mv", &Identity{Identifier: "foobar"})
	if f.Value != "A" || f.Reason != "SPLIT; weight=54.54" || f.Variant != "" || f.Metadata["id"] != 1 {
		t.Errorf("foobar: %+v", f)
	}
	// HashedPercentage("78986", "32103813") = 49.27...
	f, _ = m.Flag("mv", &Identity{Identifier: "x", Key: "32103813"})
	if f.Value != "A" {
		t.Errorf("pinned key: %+v", f)
	}
	f, _ = m.Flag("mv", nil)
	if f.Value != "control-value" || f.Reason != "DEFAULT" || f.Variant != "" {
		t.Errorf("no identity: %+v", f)
	}
	// Find identities in the second band and in the control band.
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := &Identity{Identifier: "u" + string(rune('a'+i%26)) + pyFloatString(float64(i))}
		f, _ := m.Flag("mv", id)
		p := HashedPercentage("78986", "test_env_"+id.Identifier)
		switch {
		case p < 54.54:
			if f.Value != "A" || f.Variant != "" {
				t.Fatalf("p=%v: %+v", p, f)
			}
		case p < 54.54+33.333333333333336:
			if f.Value != "B" || f.Variant != "second" || f.Reason != "SPLIT; weight=33.333333333333336" {
				t.Fatalf("p=%v: %+v", p, f)
			}
		default:
			if f.Value != "control-value" || f.Variant != ControlVariant || f.Reason != "DEFAULT" {
				t.Fatalf("p=%v: %+v", p, f)
			}
		}
		seen[f.Variant+"|"+f.Reason] = true
	}
	if len(seen) != 3 {
		t.Errorf("bands seen: %v", seen)
	}
}

func TestSegmentOverrideVariants(t *testing.T) {
	env := &Environment{Key: "e", Name: "prod",
		Features: []Feature{{Key: "1", Name: "f", Value: "env", Variants: []Variant{{Key: "v", Value: "env-variant", Weight: 100}}}},
		Segments: []Segment{{Key: "s", Name: "seg",
			Rules:     []Rule{{Type: RuleAll, Conditions: []Condition{{Property: "t", Operator: OpIsSet}}}},
			Overrides: []Override{{Key: "2", Name: "f", Value: "seg", Enabled: true, Variants: []Variant{{Key: "w", Value: "seg-variant", Weight: 0}}}}}},
	}
	m, err := Compile(env)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := m.Flag("f", &Identity{Identifier: "u"})
	if f.Value != "env-variant" || f.Variant != "v" || f.Reason != "SPLIT; weight=100" {
		t.Errorf("env split: %+v", f)
	}
	f, _ = m.Flag("f", &Identity{Identifier: "u", Traits: map[string]any{"t": 1}})
	if f.Value != "seg" || f.Variant != ControlVariant || f.Reason != "TARGETING_MATCH; segment=seg" {
		t.Errorf("segment override control: %+v", f)
	}
}

// TestIdentityOverrideShadowing: of several overrides of one feature for an
// identifier, the first applies, whatever the order of the features; an
// identifier may override many features (quickly: this used to be
// quadratic).
func TestIdentityOverrideShadowing(t *testing.T) {
	const n = 20000
	env := &Environment{Key: "k", Name: "prod"}
	var ovs []Override
	for i := range n {
		name := fmt.Sprintf("f%05d", i)
		env.Features = append(env.Features, Feature{Key: fmt.Sprint(i), Name: name, Value: "default"})
		ovs = append(ovs, Override{Name: fmt.Sprintf("f%05d", n-1-i), Value: "first"})
	}
	ovs = append(ovs, Override{Name: "f00007", Value: "second"}, Override{Name: "ghost", Value: "x"}, Override{Name: "f00003", Value: "second"})
	env.IdentityOverrides = map[string][]Override{"vip": ovs, "other": {{Name: "f00005", Value: "a"}, {Name: "f00005", Value: "b"}}}
	m, err := Compile(env)
	if err != nil {
		t.Fatal(err)
	}
	flags := m.AppendFlags(nil, &Identity{Identifier: "vip"})
	for _, f := range flags {
		if f.Value != "first" || f.Reason != "TARGETING_MATCH; segment=identity_overrides" {
			t.Fatalf("%s: %+v", f.Name, f)
		}
	}
	if f, _ := m.Flag("f00005", &Identity{Identifier: "other"}); f.Value != "a" {
		t.Errorf("other: %+v", f)
	}
	if f, _ := m.Flag("f00006", &Identity{Identifier: "other"}); f.Value != "default" {
		t.Errorf("other, feature without override: %+v", f)
	}
}

// TestSemverSeveralTraits checks semver conditions on different traits in
// one evaluation: each reads its own trait's version (evalState.version
// remembers the last one parsed), and an invalid version never matches.
func TestSemverSeveralTraits(t *testing.T) {
	sv := func(prop, op, v string) Condition {
		return Condition{Property: prop, Operator: op, Value: v + ":semver"}
	}
	m, err := Compile(&Environment{Segments: []Segment{
		{Key: "1", Name: "new app, old os", Rules: []Rule{{Type: RuleAll, Conditions: []Condition{
			sv("app", OpGreaterThanInclusive, "2.0.0"), sv("os", OpLessThan, "10.0.0"), sv("app", OpLessThan, "3.0.0"),
		}}}},
		{Key: "2", Name: "os at least 10", Rules: []Rule{{Type: RuleAll, Conditions: []Condition{sv("os", OpGreaterThanInclusive, "10.0.0")}}}},
		{Key: "3", Name: "app below 2", Rules: []Rule{{Type: RuleAll, Conditions: []Condition{sv("app", OpLessThan, "2.0.0")}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		app, os string
		want    []string
	}{
		{"2.5.0", "9.1.0", []string{"new app, old os"}},
		{"2.5.0", "10.0.0", []string{"os at least 10"}},
		{"1.9.9", "9.1.0", []string{"app below 2"}},
		{"3.0.0", "9.1.0", nil},
		{"2.5.0", "not-a-version", nil},
		{"bad", "10.2.0", []string{"os at least 10"}},
		{"2.5.0", "2.5.0", []string{"new app, old os"}}, // the same string on both traits
	} {
		for range 2 { // a second evaluation reuses pooled state
			var got []string
			for _, s := range m.Evaluate(&Identity{Identifier: "u", Traits: map[string]any{"app": tc.app, "os": tc.os}}).Segments {
				got = append(got, s.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("app %s, os %s: segments %q, want %q", tc.app, tc.os, got, tc.want)
			}
		}
	}
}
