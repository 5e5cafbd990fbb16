package condition

import (
	"strings"
	"unicode/utf8"
)

// SemverSuffix marks a comparison value as a semantic version.
const SemverSuffix = ":semver"

// IsSemver reports whether a comparison value is a semantic version (ends
// with ":semver"); the version is the value without the suffix.
func IsSemver(v string) bool { return strings.HasSuffix(v, SemverSuffix) }

// Version is a parsed semantic version. Its fields are substrings of the
// parsed text (so parsing ASCII text does not allocate), but for numbers
// written with non-ASCII digits, which hold their ASCII form.
type Version struct {
	major, minor, patch string // ASCII decimal, no leading zeros
	pre                 string // prerelease, without the '-'
}

// ParseVersion parses a semantic version as python-semver 3.0.4's
// Version.parse does: MAJOR.MINOR.PATCH[-prerelease][+build] (SemVer 2.0.0),
// where, as in its regular expression, a digit after the first of a number
// may be any Unicode decimal digit, and one final "\n" is allowed.
func ParseVersion(s string) (Version, bool) {
	var v Version
	core := strings.TrimSuffix(s, "\n")
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
	if !ok1 || !ok2 {
		return v, false
	}
	var ok bool
	if v.major, ok = numericID(a); !ok {
		return v, false
	}
	if v.minor, ok = numericID(b); !ok {
		return v, false
	}
	if v.patch, ok = numericID(c); !ok {
		return v, false
	}
	return v, true
}

func isAlnumHyphen(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-'
}

// numericID matches 0|[1-9]\d* (\d: any Unicode decimal digit) and returns
// the number in ASCII digits.
func numericID(s string) (string, bool) {
	if s == "0" {
		return s, true
	}
	if s == "" || s[0] < '1' || s[0] > '9' {
		return "", false
	}
	ascii := true
	for _, r := range s {
		if r >= utf8.RuneSelf {
			ascii = false
		}
		if digitValue(r) < 0 {
			return "", false
		}
	}
	if ascii {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte('0'+digitValue(r)))
	}
	return string(b), true
}

// allDigits reports whether s is non-empty and all Unicode decimal digits.
func allDigits(s string) bool {
	for _, r := range s {
		if digitValue(r) < 0 {
			return false
		}
	}
	return s != ""
}

// dotIDs validates dot-separated identifiers. Build identifiers are
// [0-9a-zA-Z-]+; prerelease ones are 0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*.
func dotIDs(s string, pre bool) bool {
	for {
		id, rest, more := strings.Cut(s, ".")
		if !validID(id, pre) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

func validID(id string, pre bool) bool {
	if id == "" {
		return false
	}
	if pre {
		if _, ok := numericID(id); ok {
			return true
		}
		// \d*[a-zA-Z-][0-9a-zA-Z-]*
		i := 0
		for i < len(id) {
			r, n := utf8.DecodeRuneInString(id[i:])
			if digitValue(r) < 0 {
				break
			}
			i += n
		}
		if i == len(id) || !isAlnumHyphen(id[i]) {
			return false
		}
		id = id[i+1:]
	}
	for i := 0; i < len(id); i++ {
		if !isAlnumHyphen(id[i]) {
			return false
		}
	}
	return true
}

// Compare orders versions by SemVer precedence, as python-semver does (build
// metadata is ignored).
func (a Version) Compare(b Version) int {
	if r := compareDigits(a.major, b.major); r != 0 {
		return r
	}
	if r := compareDigits(a.minor, b.minor); r != 0 {
		return r
	}
	if r := compareDigits(a.patch, b.patch); r != 0 {
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
			dx, _ := numericID(ix)
			dy, _ := numericID(iy)
			r = compareDigits(dx, dy)
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
