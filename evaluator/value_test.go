package evaluator

import (
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
		if got := formatWeight(tc.w); got != tc.want {
			t.Errorf("formatWeight(%v) = %q, want %q", tc.w, got, tc.want)
		}
	}
}

func TestPyInt(t *testing.T) {
	for _, tc := range []struct {
		s   string
		v   int64
		ovf int8
		ok  bool
	}{
		{" 12 ", 12, 0, true}, {"1_000", 1000, 0, true}, {"+5", 5, 0, true}, {"-0", 0, 0, true},
		{"1__0", 0, 0, false}, {"_1", 0, 0, false}, {"1_", 0, 0, false}, {"1.5", 0, 0, false},
		{"0x10", 0, 0, false}, {"", 0, 0, false}, {"-", 0, 0, false},
		{"9223372036854775807", math.MaxInt64, 0, true}, {"-9223372036854775808", math.MinInt64, 0, true},
		{"9223372036854775808", 0, 1, true}, {"-9223372036854775809", 0, -1, true},
		{"123456789012345678901234567890", 0, 1, true},
	} {
		v, ovf, ok := pyInt(tc.s)
		if ok != tc.ok || ok && (ovf != tc.ovf || ovf == 0 && v != tc.v) {
			t.Errorf("pyInt(%q) = %v, %v, %v; want %v, %v, %v", tc.s, v, ovf, ok, tc.v, tc.ovf, tc.ok)
		}
	}
}

func TestPyFloat(t *testing.T) {
	for _, tc := range []struct {
		s  string
		f  float64
		ok bool
	}{
		{"1e309", math.Inf(1), true}, {"inf", math.Inf(1), true}, {"-Infinity", math.Inf(-1), true},
		{" 1.5 ", 1.5, true}, {"1_0.5", 10.5, true}, {"1.", 1, true}, {".5", 0.5, true},
		{"1e", 0, false}, {"0x1p3", 0, false}, {"1_", 0, false}, {"1e1_0", 1e10, true},
		{"+.5e-3", 0.0005, true}, {"", 0, false}, {".", 0, false}, {"abc", 0, false},
	} {
		f, ok := pyFloat(tc.s)
		if ok != tc.ok || ok && f != tc.f {
			t.Errorf("pyFloat(%q) = %v, %v; want %v, %v", tc.s, f, ok, tc.f, tc.ok)
		}
	}
	if f, ok := pyFloat("nan"); !ok || !math.IsNaN(f) {
		t.Errorf("pyFloat(nan) = %v, %v", f, ok)
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

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.0.0", "1.0.0", 0}, {"1.0.0", "1.0.1", -1}, {"2.0.0", "10.0.0", -1},
		{"1.0.0-alpha", "1.0.0", -1}, {"1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"1.0.0-alpha.1", "1.0.0-alpha.beta", -1}, {"1.0.0-beta.2", "1.0.0-beta.11", -1},
		{"1.0.0-rc.1", "1.0.0-beta.11", 1}, {"1.0.0+a", "1.0.0+b", 0},
	} {
		a, ok1 := parseVersion(tc.a)
		b, ok2 := parseVersion(tc.b)
		if !ok1 || !ok2 || a.compare(b) != tc.want {
			t.Errorf("compare(%s, %s) = %d, want %d", tc.a, tc.b, a.compare(b), tc.want)
		}
	}
	for _, bad := range []string{"1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+", "1.0.0-a..b", "1.0.0 ", "1.0.0-é"} {
		if _, ok := parseVersion(bad); ok {
			t.Errorf("parseVersion(%q) accepted", bad)
		}
	}
}
