package evaluator

import "strings"

// version is a parsed semantic version (SemVer 2.0.0). Its fields are
// substrings of the parsed text, so parsing does not allocate. Build
// metadata is validated and ignored, as in comparisons.
type version struct {
	major, minor, patch string // decimal, no leading zeros
	pre                 string // prerelease, without the '-'
}

func isAlnumHyphen(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// numericID reports whether s is 0|[1-9][0-9]*.
func numericID(s string) bool {
	return s != "" && allDigits(s) && (s[0] != '0' || len(s) == 1)
}

// parseVersion parses strict SemVer 2.0.0 text, as python-semver's
// Version.parse does: MAJOR.MINOR.PATCH[-prerelease][+build].
func parseVersion(s string) (version, bool) {
	var v version
	core := s
	if i := strings.IndexByte(core, '+'); i >= 0 {
		build := core[i+1:]
		core = core[:i]
		if !dotIDs(build, false) {
			return v, false
		}
	}
	if i := strings.IndexByte(core, '-'); i >= 0 {
		v.pre = core[i+1:]
		core = core[:i]
		if !dotIDs(v.pre, true) {
			return v, false
		}
	}
	a, rest, ok1 := strings.Cut(core, ".")
	b, c, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !numericID(a) || !numericID(b) || !numericID(c) {
		return v, false
	}
	v.major, v.minor, v.patch = a, b, c
	return v, true
}

// dotIDs validates dot-separated identifiers; prerelease numeric
// identifiers must not have leading zeros.
func dotIDs(s string, pre bool) bool {
	if s == "" {
		return false
	}
	for {
		id, rest, more := strings.Cut(s, ".")
		if id == "" {
			return false
		}
		for i := 0; i < len(id); i++ {
			if !isAlnumHyphen(id[i]) {
				return false
			}
		}
		if pre && allDigits(id) && !numericID(id) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// cmpNum compares decimal strings without leading zeros.
func cmpNum(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// compare orders versions by SemVer precedence.
func (a version) compare(b version) int {
	if r := cmpNum(a.major, b.major); r != 0 {
		return r
	}
	if r := cmpNum(a.minor, b.minor); r != 0 {
		return r
	}
	if r := cmpNum(a.patch, b.patch); r != 0 {
		return r
	}
	switch {
	case a.pre == b.pre:
		return 0
	case a.pre == "":
		return 1
	case b.pre == "":
		return -1
	}
	x, y := a.pre, b.pre
	for {
		ix, rx, mx := strings.Cut(x, ".")
		iy, ry, my := strings.Cut(y, ".")
		nx, ny := allDigits(ix), allDigits(iy)
		var r int
		switch {
		case nx && ny:
			r = cmpNum(ix, iy)
		case nx:
			r = -1
		case ny:
			r = 1
		default:
			r = strings.Compare(ix, iy)
		}
		if r != 0 {
			return r
		}
		switch {
		case !mx && !my:
			return 0
		case !mx:
			return -1
		case !my:
			return 1
		}
		x, y = rx, ry
	}
}
