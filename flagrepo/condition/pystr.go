package condition

import (
	"fmt"
	"math"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// AppendFloat appends Python's repr() (and str()) of a float: the shortest
// digits that round-trip, positional for exponents in [-4, 16), always with
// a fraction or an exponent.
func AppendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // [-]d[.ddd]e±XX
	neg := e[0] == '-'
	if neg {
		e = e[1:]
	}
	ei := 0
	for ei < len(e) && e[ei] != 'e' {
		ei++
	}
	mant, expPart := e[:ei], e[ei+1:]
	exp, _ := strconv.Atoi(string(expPart))
	var digits [24]byte
	nd := 0
	for _, c := range mant {
		if c != '.' {
			digits[nd] = c
			nd++
		}
	}
	if neg {
		dst = append(dst, '-')
	}
	if exp < -4 || exp >= 16 {
		dst = append(dst, digits[0])
		if nd > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:nd]...)
		}
		dst = append(dst, 'e')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	}
	if exp < 0 {
		dst = append(dst, "0."...)
		for i := 0; i < -exp-1; i++ {
			dst = append(dst, '0')
		}
		return append(dst, digits[:nd]...)
	}
	// exp in [0, 16): the integer part has exp+1 digits.
	ip := exp + 1
	for i := 0; i < ip; i++ {
		if i < nd {
			dst = append(dst, digits[i])
		} else {
			dst = append(dst, '0')
		}
	}
	dst = append(dst, '.')
	if nd > ip {
		return append(dst, digits[ip:nd]...)
	}
	return append(dst, '0')
}

// AppendQuoted appends Python's repr() of a string.
func AppendQuoted(b []byte, s string) []byte {
	q := byte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			q = '"'
		}
	}
	if q == '"' {
		for i := 0; i < len(s); i++ {
			if s[i] == '"' {
				q = '\''
			}
		}
	}
	b = append(b, q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r < 0x20 || r == 0x7f:
			b = fmt.Appendf(b, `\x%02x`, r)
		case r == utf8.RuneError || unicode.IsPrint(r):
			b = utf8.AppendRune(b, r)
		case r <= 0xff:
			b = fmt.Appendf(b, `\x%02x`, r)
		case r <= 0xffff:
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = fmt.Appendf(b, `\U%08x`, r)
		}
	}
	return append(b, q)
}
