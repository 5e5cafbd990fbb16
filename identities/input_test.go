package identities

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestParseNumberExact: a number is read as the value it was sent as, or
// refused; never rounded to another one.
func TestParseNumberExact(t *testing.T) {
	for s, want := range map[string]any{
		"0": int64(0), "-0": int64(0), "9223372036854775807": int64(math.MaxInt64), "-9223372036854775808": int64(math.MinInt64),
		"1.0": 1.0, "0.1": 0.1, "0.10000000000000000000": 0.1, "1e2": 100.0, "1.5e300": 1.5e300, "-0.0": math.Copysign(0, -1),
		"0.12345678901234567": 0.12345678901234567, "5e-324": 5e-324, "0e-999": 0.0, "100000000000000000000000e-3": 1e20,
	} {
		got, err := ParseNumber(s)
		if err != nil || got != want {
			t.Errorf("ParseNumber(%s) = %#v, %v; want %#v", s, got, err, want)
		}
	}
	for s, msg := range map[string]string{
		"9223372036854775808":                   "does not fit in 64 bits",
		"-9223372036854775809":                  "does not fit in 64 bits",
		"123456789012345678901234567890":        "does not fit in 64 bits",
		"3.141592653589793238":                  "more than 17 significant digits",
		"0.30000000000000000001":                "more than 17 significant digits",
		"123456789012345678901234567890.0":      "more than 17 significant digits",
		"1.00000000000000000000000000000000001": "more than 17 significant digits",
		"1e-400":                                "too small",
		"-1e400":                                "out of range",
	} {
		_, err := ParseNumber(s)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "send it as a string") {
			t.Errorf("ParseNumber(%s): %v; want an ErrInvalid error saying %q", s, err, msg)
		}
	}
}

// TestNamesAndValuesChecked: identifiers and trait keys must be valid
// UTF-8 without control characters; string values must be valid UTF-8 and
// may hold control characters; no value is converted to another.
func TestNamesAndValuesChecked(t *testing.T) {
	for _, bad := range []string{"col\xff", "a\x00b", "a\nb", "\x7f", "x\x1f", "\xed\xa0\x80"} {
		if err := CheckIdentifier(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckIdentifier(%q): %v", bad, err)
		}
		if err := CheckKey(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckKey(%q): %v", bad, err)
		}
	}
	for _, good := range []string{"café 😀", "a b", "\u0080\u009f", "\ufffd"} {
		if err := CheckIdentifier(good); err != nil {
			t.Errorf("CheckIdentifier(%q): %v", good, err)
		}
		if err := CheckKey(good); err != nil {
			t.Errorf("CheckKey(%q): %v", good, err)
		}
	}
	if _, err := NormalizeValue("v\xff"); !errors.Is(err, ErrInvalid) {
		t.Errorf("NormalizeValue of invalid UTF-8: %v", err)
	}
	if v, err := NormalizeValue("line\n\x00\x7f"); err != nil || v != "line\n\x00\x7f" {
		t.Errorf("NormalizeValue of control characters: %q, %v", v, err)
	}
	for _, v := range []any{uint64(math.MaxInt64 + 1), uint(math.MaxUint)} {
		if _, err := NormalizeValue(v); !errors.Is(err, ErrInvalid) {
			t.Errorf("NormalizeValue(%d): %v; want refused, not a float", v, err)
		}
	}
	if v, err := NormalizeValue(uint64(math.MaxInt64)); err != nil || v != int64(math.MaxInt64) {
		t.Errorf("NormalizeValue(MaxInt64): %v, %v", v, err)
	}

	// The store refuses them too, whoever calls it.
	s, _ := openTemp(t)
	if _, err := s.Update(t.Context(), "e", "col\xff", []Trait{{Key: "k", Value: 1}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Update with an invalid identifier: %v", err)
	}
	if _, err := s.Update(t.Context(), "e", "u", []Trait{{Key: "k\x00", Value: 1}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Update with a NUL in a key: %v", err)
	}
	if _, err := s.Update(t.Context(), "e", "u", []Trait{{Key: "k", Value: "\xfe"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Update with an invalid string value: %v", err)
	}
	if got, _ := s.Traits(t.Context(), "e", "u"); len(got) != 0 {
		t.Errorf("refused updates stored %v", got)
	}
}
