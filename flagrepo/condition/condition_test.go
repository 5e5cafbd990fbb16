package condition

import (
	"math"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// Expected values are what Python 3.11's int() gives (canonical decimal) or
// a ValueError ("" with ok false).
func TestInt(t *testing.T) {
	for _, tc := range []struct {
		s, want string
		ok      bool
	}{
		{" 12 ", "12", true}, {"1_000", "1000", true}, {"+5", "5", true}, {"-0", "0", true}, {"007", "7", true},
		{"1__0", "", false}, {"_1", "", false}, {"1_", "", false}, {"1.5", "", false}, {"0x10", "", false},
		{"", "", false}, {"-", "", false}, {"- 1", "", false}, {"+-1", "", false},
		{"１２", "12", true}, {"-١٢", "-12", true}, {"\u200312\u3000", "12", true}, {"12\u0085", "12", true},
		{"12\x1c", "", false}, {"\u200b12", "", false}, {"1²", "", false}, {"\U0001d7cf\U0001d7d0", "12", true},
		{"123456789012345678901234567890", "123456789012345678901234567890", true},
		{"-00123456789012345678901234567890", "-123456789012345678901234567890", true},
		{strings.Repeat("1", 4300), strings.Repeat("1", 4300), true},
		{strings.Repeat("1", 4301), "", false}, {"0" + strings.Repeat("1", 4300), "", false},
		{strings.Repeat("1_", 2200) + "1", strings.Repeat("1", 2201), true},
	} {
		got, ok := Int(tc.s)
		if ok != tc.ok || got != tc.want {
			t.Errorf("Int(%.40q) = %.40q, %v; want %.40q, %v", tc.s, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCompareInts(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1", "2", -1}, {"10", "9", 1}, {"-10", "-9", -1}, {"-1", "0", -1}, {"0", "-1", 1},
		{"123456789012345678901234567890", "123456789012345678901234567891", -1}, {"-5", "-5", 0},
	} {
		if got := CompareInts(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareInts(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// Expected values are Python 3.11's float().
func TestFloat(t *testing.T) {
	for _, tc := range []struct {
		s  string
		f  float64
		ok bool
	}{
		{"1e309", math.Inf(1), true}, {"inf", math.Inf(1), true}, {"-Infinity", math.Inf(-1), true},
		{" 1.5 ", 1.5, true}, {"1_0.5", 10.5, true}, {"1.", 1, true}, {".5", 0.5, true},
		{"1e", 0, false}, {"0x1p3", 0, false}, {"1_", 0, false}, {"1e1_0", 1e10, true}, {"1._5", 0, false},
		{"1_.5", 0, false}, {"15e_1", 0, false}, {"+.5e-3", 0.0005, true}, {"", 0, false}, {".", 0, false},
		{"abc", 0, false}, {"１.５e３", 1500, true}, {"1.5\x1c", 0, false}, {"\u30001.5\n", 1.5, true},
		{"1e-400", 0, true}, {"infinit", 0, false}, {"in f", 0, false}, {"ｉｎｆ", 0, false},
	} {
		f, ok := Float(tc.s)
		if ok != tc.ok || ok && f != tc.f {
			t.Errorf("Float(%q) = %v, %v; want %v, %v", tc.s, f, ok, tc.f, tc.ok)
		}
	}
	if f, ok := Float("+nAn"); !ok || !math.IsNaN(f) {
		t.Errorf("Float(+nAn) = %v, %v", f, ok)
	}
}

// TestDigitValue checks the assumption digitValue rests on: every Unicode
// decimal digit range is made of runs of ten, zero to nine.
func TestDigitValue(t *testing.T) {
	for _, r16 := range unicode.Nd.R16 {
		if r16.Stride != 1 || (r16.Hi-r16.Lo+1)%10 != 0 {
			t.Errorf("Nd range %x-%x", r16.Lo, r16.Hi)
		}
	}
	for _, r32 := range unicode.Nd.R32 {
		if r32.Stride != 1 || (r32.Hi-r32.Lo+1)%10 != 0 {
			t.Errorf("Nd range %x-%x", r32.Lo, r32.Hi)
		}
	}
	for r, want := range map[rune]int{'7': 7, '٣': 3, '９': 9, 0x1d7d8: 0, 0x1d7ff: 9, 'a': -1, '²': -1} {
		if got := digitValue(r); got != want {
			t.Errorf("digitValue(%q) = %d, want %d", r, got, want)
		}
	}
}

func TestModulo(t *testing.T) {
	for _, tc := range []struct {
		v        string
		div, rem float64
		ok       bool
	}{
		{"2|0", 2, 0, true}, {" 2.5 | 1 ", 2.5, 1, true}, {"２|１", 2, 1, true}, {"2_0|7", 20, 7, true},
		{"2", 0, 0, false}, {"2|1|0", 0, 0, false}, {"0x2|1", 0, 0, false}, {"", 0, 0, false}, {"|", 0, 0, false},
	} {
		div, rem, ok := Modulo(tc.v)
		if ok != tc.ok || ok && (div != tc.div || rem != tc.rem) {
			t.Errorf("Modulo(%q) = %v, %v, %v", tc.v, div, rem, ok)
		}
	}
	// Python: -7 % 3.0 == 2.0, 7 % -3.0 == -2.0, 5 % inf == 5.0, -5 % inf == inf, 0 % -3.0 == -0.0.
	for _, tc := range [][3]float64{{-7, 3, 2}, {7, -3, -2}, {5, math.Inf(1), 5}, {-5, math.Inf(1), math.Inf(1)}, {7.5, 2, 1.5}} {
		if got := Mod(tc[0], tc[1]); got != tc[2] {
			t.Errorf("Mod(%v, %v) = %v, want %v", tc[0], tc[1], got, tc[2])
		}
	}
	if got := Mod(0, -3); got != 0 || !math.Signbit(got) {
		t.Errorf("Mod(0, -3) = %v, want -0", got)
	}
}

// Expected lists are Python's _parse_in_values_str (json.loads, str()).
func TestInList(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want []string
	}{
		{"a,b", []string{"a", "b"}}, {"a,,b", []string{"a", "", "b"}}, {"", []string{""}},
		{"[1, 2]\n", []string{"1", "2"}}, {" [1,2]", []string{" [1", "2]"}}, {"[1,2] x", []string{"[1", "2] x"}},
		{"[NaN, Infinity, -Infinity, 1e400]", []string{"nan", "inf", "-inf", "inf"}},
		{`[{"b": 1, "a": 2, "b": 3}]`, []string{"{'b': 3, 'a': 2}"}}, {`[true, false, null]`, []string{"True", "False", "None"}},
		{`[[1, "x", 1.50]]`, []string{"[1, 'x', 1.5]"}}, {`[1.0, 1E2, -0, -0.0]`, []string{"1.0", "100.0", "0", "-0.0"}},
		{`["x\"y", "\u00e9", "\ud83d\ude00"]`, []string{`x"y`, "é", "😀"}}, {"[02]", []string{"[02]"}},
		{"[2,]", []string{"[2", "]"}}, {"['2']", []string{"['2']"}}, {"[]", []string{}},
		{"[" + strings.Repeat("1", 4301) + "]", []string{"[" + strings.Repeat("1", 4301) + "]"}},
		{`["it's"]`, []string{"it's"}}, {`[["it's", "a\"b'"]]`, []string{`["it's", 'a"b\'']`}},
	} {
		if got := InList(tc.v); !slices.Equal(got, tc.want) {
			t.Errorf("InList(%q) = %q, want %q", tc.v, got, tc.want)
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
		{"1.2.3\n", "1.2.3", 0}, {"1٢.0.0", "12.0.0", 0}, {"1.0.0-1٠", "1.0.0-9", 1}, {"1.0.0-٣a", "1.0.0-3", 1},
	} {
		a, ok1 := ParseVersion(tc.a)
		b, ok2 := ParseVersion(tc.b)
		if !ok1 || !ok2 || a.Compare(b) != tc.want {
			t.Errorf("Compare(%q, %q) = %d (parsed %v %v), want %d", tc.a, tc.b, a.Compare(b), ok1, ok2, tc.want)
		}
	}
	for _, bad := range []string{"1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+", "1.0.0-a..b", "1.0.0 ",
		"1.0.0-é", "1.2.3\n\n", "٣.0.0", "1.0.0-٣", "1.0.0+٣", "\n1.2.3"} {
		if _, ok := ParseVersion(bad); ok {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
}

func TestRegex(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"abc$", "abc\n", true}, {"abc$", "abc\n\n", false}, {`abc\Z`, "abc\n", false}, {`\d+$`, "١٢", true},
		{`\w+$`, "été", true}, {`\sx`, "\u3000x", true}, {`\s`, "\x1c", true}, {`[\s]x`, "\u3000x", true},
		{"a{,2}b", "aab", true}, {`a\{,2\}b`, "a{,2}b", true}, {`\u00e9`, "é", true}, {`[]a]+$`, "]a", true},
		{"b", "ab", false}, {"(?i)AB", "ab", true}, {"(?m)a$", "a\nb", true}, {`\D`, "١", false}, {`[^\w]`, "é", false},
	} {
		re, err := Regex(tc.pattern)
		if err != nil {
			t.Errorf("Regex(%q): %v", tc.pattern, err)
			continue
		}
		if got := re.MatchString(tc.s); got != tc.want {
			t.Errorf("Regex(%q) on %q = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		op, value string
		ok        bool
	}{
		{"EQUAL", "x", true}, {"LIKE", "x", false}, {"REGEX", "[a-z]+", true}, {"REGEX", "[a-z", false},
		{"REGEX", `(?=x)`, false}, {"GREATER_THAN", "1.2.3-rc.1:semver", true}, {"GREATER_THAN", "1.2:semver", false},
		{"CONTAINS", "1.2.3:semver", false}, {"MODULO", "2|0", true}, {"MODULO", " 2.5 | 1 ", true},
		{"MODULO", "2", false}, {"MODULO", "0|0", false}, {"MODULO", "a|b", false}, {"MODULO", "0x1p1|0", false},
		{"PERCENTAGE_SPLIT", "25", true}, {"PERCENTAGE_SPLIT", "２５.5", true}, {"PERCENTAGE_SPLIT", "x", false},
		{"PERCENTAGE_SPLIT", "nan", false}, {"PERCENTAGE_SPLIT", "0x10", false}, {"IN", "", true}, {"IS_SET", "", true},
	} {
		if err := Check(tc.op, tc.value); (err == nil) != tc.ok {
			t.Errorf("Check(%q, %q) = %v, want ok=%v", tc.op, tc.value, err, tc.ok)
		}
	}
}
