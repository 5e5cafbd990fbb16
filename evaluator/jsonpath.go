package evaluator

import (
	"strconv"
	"unicode/utf8"
)

// pathStep is one singular selector of a JSONPath query: a member name or an
// array index.
type pathStep struct {
	name    string
	index   int64
	isIndex bool
}

// parseJSONPath parses an RFC 9535 JSONPath query. ok is false when s is
// not valid RFC 9535 syntax (filter selectors are not supported and count as
// invalid). singular is false when the query is valid but may select several
// nodes (wildcards, slices, descendants, selector lists); steps is only
// meaningful for singular queries.
func parseJSONPath(s string) (steps []pathStep, singular, ok bool) {
	if s == "" || s[0] != '$' {
		return nil, false, false
	}
	p := &jpParser{s: s, i: 1}
	singular = true
	for {
		start := p.i
		p.blank()
		if p.i == len(s) {
			if p.i != start { // trailing blank space
				return nil, false, false
			}
			return steps, singular, true
		}
		switch {
		case p.i+1 < len(s) && s[p.i] == '.' && s[p.i+1] == '.':
			p.i += 2
			singular = false
			switch {
			case p.i < len(s) && s[p.i] == '*':
				p.i++
			case p.i < len(s) && s[p.i] == '[':
				if _, _, ok := p.bracket(); !ok {
					return nil, false, false
				}
			default:
				if _, ok := p.shorthand(); !ok {
					return nil, false, false
				}
			}
		case s[p.i] == '.':
			p.i++
			if p.i < len(s) && s[p.i] == '*' {
				p.i++
				singular = false
				continue
			}
			name, ok := p.shorthand()
			if !ok {
				return nil, false, false
			}
			steps = append(steps, pathStep{name: name})
		case s[p.i] == '[':
			st, one, ok := p.bracket()
			if !ok {
				return nil, false, false
			}
			if one {
				steps = append(steps, st)
			} else {
				singular = false
			}
		default:
			return nil, false, false
		}
	}
}

type jpParser struct {
	s string
	i int
}

func (p *jpParser) blank() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func isNameFirst(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '_' ||
		r >= 0x80 && r <= 0xD7FF || r >= 0xE000 && r <= 0x10FFFF
}

// shorthand parses a member-name-shorthand.
func (p *jpParser) shorthand() (string, bool) {
	start := p.i
	for p.i < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.i:])
		if r == utf8.RuneError && n <= 1 {
			return "", false
		}
		if !(isNameFirst(r) || p.i > start && r >= '0' && r <= '9') {
			break
		}
		p.i += n
	}
	if p.i == start {
		return "", false
	}
	return p.s[start:p.i], true
}

// bracket parses a bracketed selection. one reports a single name or index
// selector, returned as st.
func (p *jpParser) bracket() (st pathStep, one, ok bool) {
	p.i++ // '['
	count := 0
	simple := false
	for {
		p.blank()
		if p.i >= len(p.s) {
			return st, false, false
		}
		c := p.s[p.i]
		count++
		switch {
		case c == '\'' || c == '"':
			name, ok := p.quoted()
			if !ok {
				return st, false, false
			}
			st, simple = pathStep{name: name}, true
		case c == '*':
			p.i++
			simple = false
		case c == '-' || c >= '0' && c <= '9' || c == ':':
			var idx int64
			hasStart := c != ':'
			if hasStart {
				if idx, ok = p.integer(); !ok {
					return st, false, false
				}
			}
			p.blank()
			if p.i < len(p.s) && p.s[p.i] == ':' { // slice
				p.i++
				p.blank()
				if p.i < len(p.s) && (p.s[p.i] == '-' || p.s[p.i] >= '0' && p.s[p.i] <= '9') {
					if _, ok = p.integer(); !ok {
						return st, false, false
					}
					p.blank()
				}
				if p.i < len(p.s) && p.s[p.i] == ':' {
					p.i++
					p.blank()
					if p.i < len(p.s) && (p.s[p.i] == '-' || p.s[p.i] >= '0' && p.s[p.i] <= '9') {
						if _, ok = p.integer(); !ok {
							return st, false, false
						}
					}
				}
				simple = false
			} else if hasStart {
				st, simple = pathStep{index: idx, isIndex: true}, true
			} else {
				return st, false, false
			}
		default: // filter selectors ('?') and anything else
			return st, false, false
		}
		p.blank()
		if p.i >= len(p.s) {
			return st, false, false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			continue
		case ']':
			p.i++
			return st, count == 1 && simple, true
		}
		return st, false, false
	}
}

// integer parses an RFC 9535 int: "0" or -?[1-9][0-9]* within ±(2^53-1).
func (p *jpParser) integer() (int64, bool) {
	start := p.i
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
	}
	ds := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	digits := p.s[ds:p.i]
	if digits == "" || digits[0] == '0' && (len(digits) > 1 || ds != start) {
		return 0, false
	}
	v, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
	if err != nil || v > 1<<53-1 || v < -(1<<53-1) {
		return 0, false
	}
	return v, true
}

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return rune(c-'A') + 10
	}
	return -1
}

func (p *jpParser) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for k := 0; k < 4; k++ {
		h := hexVal(p.s[p.i+k])
		if h < 0 {
			return 0, false
		}
		r = r<<4 | h
	}
	p.i += 4
	return r, true
}

// quoted parses a single- or double-quoted string literal.
func (p *jpParser) quoted() (string, bool) {
	q := p.s[p.i]
	p.i++
	var out []byte
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return string(out), true
		case c == '\\':
			p.i++
			if p.i >= len(p.s) {
				return "", false
			}
			e := p.s[p.i]
			p.i++
			switch e {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case '/', '\\':
				out = append(out, e)
			case 'u':
				r, ok := p.hex4()
				if !ok || r >= 0xDC00 && r <= 0xDFFF {
					return "", false
				}
				if r >= 0xD800 && r <= 0xDBFF {
					if p.i+2 > len(p.s) || p.s[p.i] != '\\' || p.s[p.i+1] != 'u' {
						return "", false
					}
					p.i += 2
					lo, ok := p.hex4()
					if !ok || lo < 0xDC00 || lo > 0xDFFF {
						return "", false
					}
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				}
				out = utf8.AppendRune(out, r)
			default:
				if e != q {
					return "", false
				}
				out = append(out, e)
			}
		case c < 0x20:
			return "", false
		default:
			r, n := utf8.DecodeRuneInString(p.s[p.i:])
			if r == utf8.RuneError && n <= 1 {
				return "", false
			}
			out = append(out, p.s[p.i:p.i+n]...)
			p.i += n
		}
	}
	return "", false
}
