package condition

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// InList splits an IN value as the engine does: a value starting with "["
// that Python's json.loads reads as an array gives its elements, strings as
// they are and anything else in Python's str() form (1 gives "1", 1.0 gives
// "1.0", true "True", null "None", NaN "nan"); any other value gives its
// comma-separated parts, untrimmed.
func InList(v string) []string {
	if strings.HasPrefix(v, "[") {
		p := jsonParser{s: v}
		if out, ok := p.topArray(); ok {
			return out
		}
	}
	return strings.Split(v, ",")
}

// jsonParser reads JSON as Python's json.loads does (NaN, Infinity and
// -Infinity included) and renders values in Python's str()/repr() form.
type jsonParser struct {
	s string
	i int
}

func (p *jsonParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) eat(c byte) bool {
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// topArray reads the whole text as one array.
func (p *jsonParser) topArray() ([]string, bool) {
	if !p.eat('[') {
		return nil, false
	}
	out := []string{}
	if !p.eat(']') {
		for {
			p.ws()
			var b []byte
			var ok bool
			if p.i < len(p.s) && p.s[p.i] == '"' {
				var s string
				if s, ok = p.str(); ok {
					b = []byte(s)
				}
			} else {
				b, ok = p.value(nil)
			}
			if !ok {
				return nil, false
			}
			out = append(out, string(b))
			if p.eat(']') {
				break
			}
			if !p.eat(',') {
				return nil, false
			}
		}
	}
	p.ws()
	return out, p.i == len(p.s)
}

// value appends the str() of the next value (repr() for strings).
func (p *jsonParser) value(b []byte) ([]byte, bool) {
	p.ws()
	if p.i >= len(p.s) {
		return b, false
	}
	for _, lit := range [...]struct{ json, py string }{
		{"true", "True"}, {"false", "False"}, {"null", "None"},
		{"NaN", "nan"}, {"Infinity", "inf"}, {"-Infinity", "-inf"},
	} {
		if strings.HasPrefix(p.s[p.i:], lit.json) {
			p.i += len(lit.json)
			return append(b, lit.py...), true
		}
	}
	switch c := p.s[p.i]; {
	case c == '"':
		s, ok := p.str()
		return AppendQuoted(b, s), ok
	case c == '[':
		p.i++
		b = append(b, '[')
		if p.eat(']') {
			return append(b, ']'), true
		}
		for n := 0; ; n++ {
			if n > 0 {
				b = append(b, ", "...)
			}
			var ok bool
			if b, ok = p.value(b); !ok {
				return b, false
			}
			if p.eat(']') {
				return append(b, ']'), true
			}
			if !p.eat(',') {
				return b, false
			}
		}
	case c == '{':
		return p.object(b)
	case c == '-' || c >= '0' && c <= '9':
		return p.number(b)
	}
	return b, false
}

// object appends a dict's repr: keys in first-seen order, the last value of
// a repeated key.
func (p *jsonParser) object(b []byte) ([]byte, bool) {
	p.i++
	var keys []string
	vals := map[string][]byte{}
	if !p.eat('}') {
		for {
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != '"' {
				return b, false
			}
			k, ok := p.str()
			if !ok || !p.eat(':') {
				return b, false
			}
			v, ok := p.value(nil)
			if !ok {
				return b, false
			}
			if _, seen := vals[k]; !seen {
				keys = append(keys, k)
			}
			vals[k] = v
			if p.eat('}') {
				break
			}
			if !p.eat(',') {
				return b, false
			}
		}
	}
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = AppendQuoted(b, k)
		b = append(b, ": "...)
		b = append(b, vals[k]...)
	}
	return append(b, '}'), true
}

// number appends the str() of a JSON number: an int for -?(0|[1-9][0-9]*),
// a float when it has a fraction or an exponent.
func (p *jsonParser) number(b []byte) ([]byte, bool) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	intStart := p.i
	p.i += asciiDigits(p.s[p.i:])
	switch n := p.i - intStart; {
	case n == 0:
		return b, false
	case n > 1 && p.s[intStart] == '0':
		p.i = intStart + 1 // "02" is 0 followed by extra data
		return b, false
	}
	isFloat := false
	if p.i+1 < len(p.s) && p.s[p.i] == '.' && asciiDigits(p.s[p.i+1:]) > 0 {
		p.i++
		p.i += asciiDigits(p.s[p.i:])
		isFloat = true
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		j := p.i + 1
		if j < len(p.s) && (p.s[j] == '+' || p.s[j] == '-') {
			j++
		}
		if d := asciiDigits(p.s[j:]); d > 0 {
			p.i = j + d
			isFloat = true
		}
	}
	text := p.s[start:p.i]
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil && !isRangeErr(err) {
			return b, false
		}
		return AppendFloat(b, f), true
	}
	n, ok := Int(text)
	return append(b, n...), ok
}

func asciiDigits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// str reads a JSON string (the parser is at its opening quote).
func (p *jsonParser) str() (string, bool) {
	p.i++
	var b []byte
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(b), true
		case c < 0x20:
			return "", false
		case c != '\\':
			b = append(b, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.s) {
			return "", false
		}
		e := p.s[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) && strings.HasPrefix(p.s[p.i:], `\u`) {
				save := p.i
				p.i += 2
				if r2, ok := p.hex4(); ok && utf16.DecodeRune(r, r2) != utf8.RuneError {
					r = utf16.DecodeRune(r, r2)
				} else {
					p.i = save
				}
			}
			b = utf8.AppendRune(b, r) // a lone surrogate becomes U+FFFD
		default:
			return "", false
		}
	}
	return "", false
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	n, err := strconv.ParseUint(p.s[p.i:p.i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(n), true
}
