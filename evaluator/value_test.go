package evaluator

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
)

// Expected values are Python's repr(float), int() and float().
func TestPyFloatRepr(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0.1, "0.1"}, {1.5, "1.5"}, {100, "100.0"}, {1e16, "1e+16"}, {1e15, "1000000000000000.0"},
		{123456789012345678, "1.2345678901234568e+17"}, {0.0001, "0.0001"}, {0.00001, "1e-05"},
		{-2.5e-7, "-2.5e-07"}, {1.0 / 3, "0.3333333333333333"}, {1 << 60, "1.152921504606847e+18"},
		{math.Copysign(0, -1), "-0.0"}, {54.54, "54.54"}, {1e22, "1e+22"}, {33.333333333333336, "33.333333333333336"},
		{math.Inf(1), "inf"}, {math.Inf(-1), "-inf"}, {math.NaN(), "nan"},
	} {
		if got := pyFloatString(tc.f); got != tc.want {
			t.Errorf("repr(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
	for _, tc := range []struct {
		w    float64
		want string
	}{{30, "30"}, {54.54, "54.54"}, {0, "0"}, {33.333333333333336, "33.333333333333336"}} {
		if got := formatWeight(tc.w, ""); got != tc.want {
			t.Errorf("formatWeight(%v) = %q, want %q", tc.w, got, tc.want)
		}
	}
}

func TestCoerce(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string // Python str() of the coerced value
		k    kind
	}{
		{"-12", "-12", kInt}, {"1.50", "1.5", kFloat}, {"1.", "1.", kStr}, {".5", ".5", kStr},
		{"1e5", "1e5", kStr}, {"NaN", "NaN", kStr}, {"Inf", "Inf", kStr}, {"1e309", "1e309", kStr},
		{"--1", "--1", kStr}, {"007", "7", kInt}, {"-0", "0", kInt},
		{"99999999999999999999", "99999999999999999999", kBigInt}, {"-000123456789012345678901", "-123456789012345678901", kBigInt},
		{float64(3), "3", kInt}, {3.5, "3.5", kFloat}, {true, "True", kBool}, {nil, "None", kNull},
		{map[string]any{"b": []any{1.5, "x", nil, true}, "a": "it's"}, `{'a': "it's", 'b': [1.5, 'x', None, True]}`, kStr},
	} {
		v := coerceAny(tc.in)
		if got := string(appendPyStr(nil, &v)); got != tc.want || v.k != tc.k {
			t.Errorf("coerce(%#v) = %q (kind %d), want %q (kind %d)", tc.in, got, v.k, tc.want, tc.k)
		}
	}
}

func TestParseJSONPath(t *testing.T) {
	for _, tc := range []struct {
		path     string
		ok       bool
		singular bool
		n        int
	}{
		{"$.identity.traits.x", true, true, 3},
		{"$.identity.traits['a b']", true, true, 3},
		{`$["identity"]["traits"]["x"]`, true, true, 3},
		{"$.identity.traits.サイズ", true, true, 3},
		{"$ .a", true, true, 1},
		{"$.a ", false, false, 0},
		{"$.a b", false, false, 0},
		{"$.1a", false, false, 0},
		{"$.a[0]", true, true, 2},
		{"$.a[-0]", false, false, 0},
		{"$.a[01]", false, false, 0},
		{"$.a[*]", true, false, 0},
		{"$..a", true, false, 0},
		{"$.a[1:2]", true, false, 0},
		{"$.a['x','y']", true, false, 0},
		{"$.a[?@.b]", false, false, 0},
		{"$.a['unterminated", false, false, 0},
		{`$.a['\q']`, false, false, 0},
		{`$.a['\'']`, true, true, 2},
		{`$.a["\ud83d\ude00"]`, true, true, 2},
		{`$.a["\ud83d"]`, false, false, 0},
		{"$.", false, false, 0},
		{"$", true, true, 0},
	} {
		steps, singular, ok := parseJSONPath(tc.path)
		if ok != tc.ok || ok && (singular != tc.singular || singular && len(steps) != tc.n) {
			t.Errorf("parseJSONPath(%q) = %v, singular %v, ok %v", tc.path, steps, singular, ok)
		}
	}
}

// TestFloatTraits: a float trait with an integral value (1818.0) compares as
// a float through FloatTraits, as in the Python engine (float("1000.5")
// casts, so GREATER_THAN_INCLUSIVE matches), and as an integer without it
// (int("1000.5") fails, so nothing matches); other values are kept.
func TestFloatTraits(t *testing.T) {
	in := map[string]any{"score": 1818.0, "n": int64(3), "s": "x", "big": 1e21}
	out := FloatTraits(in)
	if out["score"] != json.Number("1818.0") || out["n"] != int64(3) || out["s"] != "x" || out["big"] != json.Number("1e+21") || in["score"] != 1818.0 {
		t.Fatalf("FloatTraits: %v (input now %v)", out, in)
	}
	plain := map[string]any{"n": int64(3)}
	if got := FloatTraits(plain); fmt.Sprint(got) != fmt.Sprint(plain) {
		t.Errorf("no floats: %v", got)
	}
	for _, c := range []struct {
		traits map[string]any
		want   bool
	}{{map[string]any{"score": 1818.0}, false}, {FloatTraits(map[string]any{"score": 1818.0}), true}} {
		cond := Condition{Property: "score", Operator: OpGreaterThanInclusive, Value: "1000.5"}
		if got := segmentMatches(t, Environment{Key: "env"}, cond, &Identity{Identifier: "u", Traits: c.traits}); got != c.want {
			t.Errorf("score %v >= \"1000.5\": %t, want %t", c.traits["score"], got, c.want)
		}
	}
}
