package condition

import (
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxIntDigits is the longest decimal integer Python's int() converts
// (sys.get_int_max_str_digits() by default); longer text is a ValueError.
const maxIntDigits = 4300

// digitValue returns the value of a Unicode decimal digit (category Nd), or
// -1. Decimal digits come in runs of ten, from zero to nine.
func digitValue(r rune) int {
	if r >= '0' && r <= '9' {
		return int(r - '0')
	}
	if r < utf8.RuneSelf || !unicode.Is(unicode.Nd, r) {
		return -1
	}
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	return -1
}

// isASCIISpace reports the whitespace Python's number parsers skip: ASCII
// space, \t, \n, \v, \f and \r (not \x1c-\x1f, which str.isspace() counts).
func isASCIISpace(c byte) bool {
	return c == ' ' || c >= '\t' && c <= '\r'
}

// numberText prepares s as Python's int() and float() do before parsing:
// Unicode decimal digits become ASCII digits, Unicode whitespace becomes a
// space, and surrounding ASCII whitespace is dropped. ok is false when s has
// any other non-ASCII character.
func numberText(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			var b strings.Builder
			for _, r := range s {
				switch d := digitValue(r); {
				case r < utf8.RuneSelf:
					b.WriteByte(byte(r))
				case d >= 0:
					b.WriteByte(byte('0' + d))
				case unicode.IsSpace(r):
					b.WriteByte(' ')
				default:
					return "", false
				}
			}
			s = b.String()
			break
		}
	}
	for s != "" && isASCIISpace(s[0]) {
		s = s[1:]
	}
	for s != "" && isASCIISpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s, true
}

// digits returns the length of the longest prefix of s that is digits with
// single underscores between them (Python's digit (["_"] digit)*).
func digits(s string) int {
	n := 0
	for n < len(s) {
		c := s[n]
		if c >= '0' && c <= '9' {
			n++
			continue
		}
		if c == '_' && n > 0 && n+1 < len(s) && s[n+1] >= '0' && s[n+1] <= '9' {
			n++
			continue
		}
		break
	}
	return n
}

// Int parses s as Python's int(s) does and returns the integer in canonical
// decimal form: an optional "-", then digits without leading zeros ("0" for
// zero). Python accepts surrounding whitespace, a sign, any Unicode decimal
// digits, and single underscores between digits; it rejects text of more
// than 4,300 digits.
func Int(s string) (string, bool) {
	s, ok := numberText(s)
	if !ok {
		return "", false
	}
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" || digits(s) != len(s) {
		return "", false
	}
	if strings.IndexByte(s, '_') >= 0 {
		s = strings.ReplaceAll(s, "_", "")
	}
	if len(s) > maxIntDigits {
		return "", false
	}
	s = strings.TrimLeft(s, "0")
	switch {
	case s == "":
		return "0", true
	case neg:
		return "-" + s, true
	}
	return s, true
}

// Float parses s as Python's float(s) does: surrounding whitespace, any
// Unicode decimal digits, single underscores between digits, "inf",
// "infinity" and "nan" in any case with an optional sign, and out-of-range
// values as ±inf or 0. Hexadecimal forms are rejected.
func Float(s string) (float64, bool) {
	s, ok := numberText(s)
	if !ok {
		return 0, false
	}
	body := s
	if body != "" && (body[0] == '+' || body[0] == '-') {
		body = body[1:]
	}
	switch strings.ToLower(body) {
	case "inf", "infinity":
		if s[0] == '-' {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	case "nan":
		return math.NaN(), true
	}
	// digitpart ["." [digitpart]] [exponent] | "." digitpart [exponent]
	i := digits(body)
	n := i
	if i < len(body) && body[i] == '.' {
		i++
		d := digits(body[i:])
		i += d
		n += d
	}
	if n == 0 {
		return 0, false
	}
	if i < len(body) && (body[i] == 'e' || body[i] == 'E') {
		i++
		if i < len(body) && (body[i] == '+' || body[i] == '-') {
			i++
		}
		d := digits(body[i:])
		if d == 0 {
			return 0, false
		}
		i += d
	}
	if i != len(body) {
		return 0, false
	}
	if strings.IndexByte(s, '_') >= 0 {
		s = strings.ReplaceAll(s, "_", "")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	return f, true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// CompareInts compares two integers in Int's canonical decimal form.
func CompareInts(a, b string) int {
	an, bn := strings.HasPrefix(a, "-"), strings.HasPrefix(b, "-")
	switch {
	case an && !bn:
		return -1
	case !an && bn:
		return 1
	case an:
		return compareDigits(b[1:], a[1:])
	}
	return compareDigits(a, b)
}

// compareDigits compares decimal digit strings without leading zeros.
func compareDigits(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// Modulo parses a MODULO value "divisor|remainder" as the engine does: two
// parts, each read by Python's float(). The engine's condition is true when
// the context value, a number (or a boolean, as 1 or 0), modulo divisor
// (Python's floored modulo) equals remainder.
func Modulo(v string) (div, rem float64, ok bool) {
	a, b, found := strings.Cut(v, "|")
	if !found || strings.IndexByte(b, '|') >= 0 {
		return 0, 0, false
	}
	if div, ok = Float(a); !ok {
		return 0, 0, false
	}
	if rem, ok = Float(b); !ok {
		return 0, 0, false
	}
	return div, rem, true
}

// Mod is Python's float modulo x % d: the result has the divisor's sign.
// d must not be zero (Python raises ZeroDivisionError).
func Mod(x, d float64) float64 {
	m := math.Mod(x, d)
	if m != 0 {
		if (d < 0) != (m < 0) {
			m += d
		}
	} else {
		m = math.Copysign(0, d)
	}
	return m
}
