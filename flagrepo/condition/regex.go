package condition

import (
	"fmt"
	"regexp"
	"strings"
)

// Python's character classes in str patterns, in Go syntax (class bodies).
const (
	pyDigit = `\p{Nd}`
	pyWord  = `\p{L}\p{N}_`
	pySpace = `\t-\r\x1c-\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}`
)

// Regex compiles a REGEX condition value with the meaning Python's re.match
// gives it (the engine's test): the pattern matches at the start of the
// string; \d, \w and \s (and \D, \W, \S) are Unicode classes as in Python;
// $ also matches before a final newline; \Z is the end of the string; {,n}
// is {0,n}; \uXXXX and \UXXXXXXXX are code points. The pattern runs on
// Go's RE2, so constructs that RE2 lacks (backreferences, lookaround,
// possessive quantifiers, conditionals, (?x), (?#...)) are errors, and so
// are constructs RE2 would read differently from Python: \z, \p, \P, \Q,
// \E, \x{...}, (?U), (?<name>...), [[:class:]], a class escape as a range
// bound, and flag groups other than at the start or scoped ((?i:...)).
// The one known difference left: \b and \B are ASCII word boundaries (in
// Python, Unicode ones).
func Regex(pattern string) (*regexp.Regexp, error) {
	tr, err := translate(pattern)
	if err != nil {
		return nil, err
	}
	if _, err := regexp.Compile(tr); err != nil {
		// Report RE2's complaint about the pattern as written.
		if _, err2 := regexp.Compile(pattern); err2 != nil {
			err = err2
		}
		return nil, err
	}
	return regexp.Compile(`\A(?:` + tr + `)`)
}

// translate rewrites a Python pattern in Go's syntax (see Regex).
func translate(p string) (string, error) {
	var b strings.Builder
	multiline := false
	inClass := false
	classStart := 0 // index in p just after the class's '[' (and '^')
	for i := 0; i < len(p); i++ {
		c := p[i]
		if inClass {
			switch {
			case c == ']' && i > classStart:
				inClass = false
				b.WriteByte(c)
			case c == '[' && i+1 < len(p) && (p[i+1] == ':' || p[i+1] == '=' || p[i+1] == '.'):
				return "", fmt.Errorf("%q at offset %d: POSIX classes such as [[:alpha:]] are not supported (Python's re reads them as plain characters)", p[i:i+2], i)
			case c == '\\':
				if i+1 >= len(p) {
					return "", fmt.Errorf("pattern ends with a lone backslash")
				}
				e := p[i+1]
				var body string
				switch e {
				case 'd':
					body = pyDigit
				case 'w':
					body = pyWord
				case 's':
					body = pySpace
				case 'D', 'W', 'S':
					return "", fmt.Errorf(`\%c inside [...] at offset %d is not supported; use [^...] or an alternation`, e, i)
				}
				if body != "" {
					if i+2 < len(p) && p[i+2] == '-' && i+3 < len(p) && p[i+3] != ']' || i > classStart && p[i-1] == '-' && i-2 >= classStart {
						return "", fmt.Errorf(`\%c at offset %d cannot bound a character range`, e, i)
					}
					b.WriteString(body)
					i++
					continue
				}
				n, err := escape(&b, p, i)
				if err != nil {
					return "", err
				}
				i += n - 1
			default:
				b.WriteByte(c)
			}
			continue
		}
		switch c {
		case '[':
			inClass = true
			b.WriteByte(c)
			classStart = i + 1
			if classStart < len(p) && p[classStart] == '^' {
				b.WriteByte('^')
				classStart++
				i++
			}
			if classStart < len(p) && p[classStart] == ']' { // a leading ']' is literal
				b.WriteString(`\]`)
				classStart++
				i++
			}
		case '$':
			if multiline {
				b.WriteString(`(?m:$)`)
			} else {
				b.WriteString(`(?:\n?\z)`)
			}
		case '{':
			// Python reads {,n} as {0,n}.
			if j := strings.IndexByte(p[i:], '}'); j > 1 && p[i+1] == ',' && i > 0 && allASCIIDigits(p[i+2:i+j]) && j > 2 {
				b.WriteString("{0")
				continue
			}
			b.WriteByte(c)
		case '(':
			n, m, err := group(&b, p, i)
			if err != nil {
				return "", err
			}
			multiline = multiline || m
			i += n - 1
		case '\\':
			if i+1 >= len(p) {
				return "", fmt.Errorf("pattern ends with a lone backslash")
			}
			switch e := p[i+1]; e {
			case 'd':
				b.WriteString(pyDigit)
			case 'D':
				b.WriteString(`\P{Nd}`)
			case 'w':
				b.WriteString(`[` + pyWord + `]`)
			case 'W':
				b.WriteString(`[^` + pyWord + `]`)
			case 's':
				b.WriteString(`[` + pySpace + `]`)
			case 'S':
				b.WriteString(`[^` + pySpace + `]`)
			case 'Z':
				b.WriteString(`\z`)
			case 'A', 'b', 'B':
				b.WriteString(p[i : i+2])
			default:
				n, err := escape(&b, p, i)
				if err != nil {
					return "", err
				}
				i += n - 1
				continue
			}
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func allASCIIDigits(s string) bool { return s != "" && asciiDigits(s) == len(s) }

// escape writes the escape at p[i] (a backslash) in Go's syntax and returns
// its length in p.
func escape(b *strings.Builder, p string, i int) (int, error) {
	e := p[i+1]
	switch e {
	case 'z', 'p', 'P', 'Q', 'E':
		return 0, fmt.Errorf(`\%c at offset %d is not Python regular expression syntax`, e, i)
	case 'x':
		if i+2 < len(p) && p[i+2] == '{' {
			return 0, fmt.Errorf(`\x{...} at offset %d is not Python syntax; write \xHH, \uHHHH or \UHHHHHHHH`, i)
		}
	case 'u', 'U':
		n := 4
		if e == 'U' {
			n = 8
		}
		h := p[i+2 : min(len(p), i+2+n)]
		if len(h) != n || !isHex(h) {
			return 0, fmt.Errorf(`\%c at offset %d needs %d hexadecimal digits`, e, i, n)
		}
		b.WriteString(`\x{` + h + `}`)
		return 2 + n, nil
	}
	b.WriteString(p[i : i+2])
	return 2, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// group writes the start of a group at p[i] ('(') and returns the length of
// p it used and whether it turns on multi-line mode.
func group(b *strings.Builder, p string, i int) (int, bool, error) {
	if !strings.HasPrefix(p[i:], "(?") {
		b.WriteByte('(')
		return 1, false, nil
	}
	rest := p[i+2:]
	switch {
	case strings.HasPrefix(rest, "<") && !strings.HasPrefix(rest, "<=") && !strings.HasPrefix(rest, "<!"):
		return 0, false, fmt.Errorf("(?<name>...) at offset %d is not Python syntax; write (?P<name>...)", i)
	case rest != "" && rest[0] != 'P' && (rest[0] >= 'A' && rest[0] <= 'Z' || rest[0] >= 'a' && rest[0] <= 'z') && !strings.ContainsRune("aiLmsux", rune(rest[0])):
		return 0, false, fmt.Errorf("flag group at offset %d: unknown flag %q (Python's flags are a, i, L, m, s, u and x)", i, rest[0])
	case rest == "" || !strings.ContainsRune("aiLmsux-", rune(rest[0])):
		b.WriteString("(?")
		return 2, false, nil
	}
	j := 0
	for j < len(rest) && strings.ContainsRune("aiLmsux-", rune(rest[j])) {
		j++
	}
	flags := rest[:j]
	if j == len(rest) || rest[j] != ')' && rest[j] != ':' {
		return 0, false, fmt.Errorf("flag group at offset %d: unknown flag or missing ':' or ')'", i)
	}
	if rest[j] == ':' && strings.Contains(flags, "m") {
		return 0, false, fmt.Errorf("flags (?%s:...) at offset %d: turn multi-line mode on for the whole pattern, with (?m) at its start", flags, i)
	}
	if rest[j] == ')' {
		if i != 0 {
			return 0, false, fmt.Errorf("flags (?%s) at offset %d: global flags must be at the start of the pattern; use a scoped group such as (?%s:...)", flags, i, flags)
		}
		if strings.Contains(flags, "-") {
			return 0, false, fmt.Errorf("flags (?%s): turning a flag off needs a scoped group such as (?-i:...)", flags)
		}
	}
	b.WriteString("(?" + flags + rest[j:j+1])
	return 2 + j + 1, rest[j] == ')' && strings.Contains(flags, "m"), nil
}
