package condition

import "testing"

// FuzzCondition checks that no value panics and that every value Check
// accepts is one the evaluator can run: a REGEX compiles, a MODULO value
// parses with a non-zero divisor, a :semver value parses.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{"abc$", `[\d-z]`, `(?i)a{,2}`, `\u00e9`, "[NaN, {\"a\": [1e400]}]", "2|1", "1.2.3\n:semver", "(?m:a)", `[]a]`, `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		InList(v)
		Int(v)
		Float(v)
		ParseVersion(v)
		re, err := Regex(v)
		if !IsSemver(v) && (err == nil) != (Check("REGEX", v) == nil) || err == nil && re == nil {
			t.Fatalf("Regex(%q) = %v but Check disagrees", v, err)
		}
		if Check("MODULO", v) == nil {
			if div, _, ok := Modulo(v); !ok || div == 0 {
				t.Fatalf("Check accepted MODULO %q that Modulo rejects", v)
			}
		}
		if Check("EQUAL", v) == nil && IsSemver(v) {
			if _, ok := ParseVersion(v[:len(v)-len(SemverSuffix)]); !ok {
				t.Fatalf("Check accepted %q", v)
			}
		}
	})
}
