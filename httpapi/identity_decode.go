package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gitflags/gitflags/identities"
)

// decodeIdentityFast decodes the common shape of a POST /api/v1/identities/
// body without encoding/json's reflection, which costs more than answering
// from cached results: an object with "identifier", "traits" (objects with
// "trait_key", "trait_value", "transient") and "transient", ASCII strings
// without escapes, scalar trait values, each member at most once. It
// reports false, leaving req as it found it, for anything else (null,
// escapes, other members, nested values, malformed JSON); the caller then
// decodes with encoding/json, whose result and error messages stand. Where
// it reports true, req is exactly what json.Unmarshal would have produced
// (FuzzIdentityFastDecode checks this).
func decodeIdentityFast(data []byte, req *identityRequest) bool {
	d := fastDecoder{data: data}
	var out identityRequest
	seen := 0
	ok := d.object(func(key []byte) bool {
		switch string(key) {
		case "identifier":
			if seen&1 != 0 {
				return false
			}
			seen |= 1
			s, ok := d.str()
			out.Identifier = &s
			return ok
		case "transient":
			if seen&2 != 0 {
				return false
			}
			seen |= 2
			b, ok := d.boolean()
			out.Transient = &b
			return ok
		case "traits":
			if seen&4 != 0 {
				return false
			}
			seen |= 4
			out.Traits = []traitInput{}
			return d.array(func() bool {
				var t traitInput
				seen := 0
				ok := d.object(func(key []byte) bool {
					switch string(key) {
					case "trait_key":
						if seen&1 != 0 {
							return false
						}
						seen |= 1
						s, ok := d.str()
						t.Key = &s
						return ok
					case "trait_value":
						if seen&2 != 0 {
							return false
						}
						seen |= 2
						raw, ok := d.scalar()
						t.Value = jsonValue{set: true, raw: raw}
						return ok
					case "transient":
						if seen&4 != 0 {
							return false
						}
						seen |= 4
						b, ok := d.boolean()
						t.Transient = &b
						return ok
					}
					return false
				})
				out.Traits = append(out.Traits, t)
				return ok
			})
		}
		return false
	})
	d.ws()
	if !ok || d.i != len(data) {
		return false
	}
	*req = out
	return true
}

// fastDecoder reads the subset of JSON decodeIdentityFast accepts.
type fastDecoder struct {
	data []byte
	i    int
}

func (d *fastDecoder) ws() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, reporting whether c was there.
func (d *fastDecoder) consume(c byte) bool {
	d.ws()
	if d.i < len(d.data) && d.data[d.i] == c {
		d.i++
		return true
	}
	return false
}

// rawString reads a string of printable ASCII without escapes and returns
// its content.
func (d *fastDecoder) rawString() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			s := d.data[start:d.i]
			d.i++
			return s, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, false
		}
		d.i++
	}
	return nil, false
}

func (d *fastDecoder) str() (string, bool) {
	s, ok := d.rawString()
	return string(s), ok
}

func (d *fastDecoder) boolean() (bool, bool) {
	d.ws()
	switch {
	case hasPrefixAt(d.data, d.i, "true"):
		d.i += 4
		return true, true
	case hasPrefixAt(d.data, d.i, "false"):
		d.i += 5
		return false, true
	}
	return false, false
}

// scalar reads a string, number, true, false or null and returns its text.
func (d *fastDecoder) scalar() ([]byte, bool) {
	d.ws()
	if d.i >= len(d.data) {
		return nil, false
	}
	start := d.i
	switch c := d.data[d.i]; {
	case c == '"':
		if _, ok := d.rawString(); !ok {
			return nil, false
		}
	case hasPrefixAt(d.data, d.i, "true"), hasPrefixAt(d.data, d.i, "null"):
		d.i += 4
	case hasPrefixAt(d.data, d.i, "false"):
		d.i += 5
	case c == '-' || c >= '0' && c <= '9':
		if !d.number() {
			return nil, false
		}
	default:
		return nil, false
	}
	return append([]byte(nil), d.data[start:d.i]...), true
}

// number reads a JSON number, which ends at a delimiter ("01" and "1x" are
// not numbers).
func (d *fastDecoder) number() bool {
	start := d.i
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return identities.IsJSONNumber(d.data[start:d.i])
		}
		d.i++
	}
	return identities.IsJSONNumber(d.data[start:d.i])
}

// object reads an object, calling member with each key; member reads the
// value.
func (d *fastDecoder) object(member func(key []byte) bool) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		key, ok := d.rawString()
		if !ok || !d.consume(':') || !member(key) {
			return false
		}
		if d.consume('}') {
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

// array reads an array, calling elem for each element.
func (d *fastDecoder) array(elem func() bool) bool {
	if !d.consume('[') {
		return false
	}
	if d.consume(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if d.consume(']') {
			return true
		}
		if !d.consume(',') {
			return false
		}
	}
}

func hasPrefixAt(b []byte, i int, s string) bool {
	return len(b)-i >= len(s) && string(b[i:i+len(s)]) == s
}

// checkText refuses a request body (valid JSON) holding text that is not
// Unicode: bytes that are not UTF-8, or an escaped lone UTF-16 surrogate
// ("\ud800"). encoding/json turns either into U+FFFD, so that "col\xff" and
// "col\xfe" would be one identity. The error names the member, as the other
// checks do ("traits[2].trait_key is not valid UTF-8").
func checkText(data []byte) *requestError {
	off, escape := badText(data)
	if off < 0 {
		return nil
	}
	path, isKey := jsonPathAt(data, off)
	where := path
	if isKey {
		if path == "" {
			path = "the request body"
		}
		where = "a member name in " + path
	} else if path == "" {
		where = "the request body"
	}
	if escape != "" {
		return badRequest("%s holds %s, a lone surrogate: not a Unicode character", where, escape)
	}
	return badRequest("%s is not valid UTF-8", where)
}

// badText returns the offset in data (valid JSON) of the first byte that is
// not UTF-8 or the first escaped lone surrogate (with its escape), or -1.
func badText(data []byte) (off int, escape string) {
	end := len(data)
	if !utf8.Valid(data) {
		for i := 0; i < len(data); {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				end = i
				break
			}
			i += size
		}
	}
	// In valid JSON a backslash is an escape inside a string; the scan
	// goes from escape to escape, so "\\ud800" is no surrogate.
	for i := bytes.IndexByte(data[:end], '\\'); i >= 0; {
		step := 2
		if data[i+1] == 'u' {
			step = 6
			switch r := hex4(data[i+2:]); {
			case r >= 0xd800 && r < 0xdc00:
				if i+12 <= len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
					if lo := hex4(data[i+8:]); lo >= 0xdc00 && lo < 0xe000 {
						step = 12
						break
					}
				}
				return i, string(data[i : i+6])
			case r >= 0xdc00 && r < 0xe000:
				return i, string(data[i : i+6])
			}
		}
		i += step
		if i >= end {
			break
		}
		j := bytes.IndexByte(data[i:end], '\\')
		if j < 0 {
			break
		}
		i += j
	}
	if end < len(data) {
		return end, ""
	}
	return -1, ""
}

// hex4 reads the four hex digits of a \u escape (valid JSON has them).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		default:
			r = r<<4 | rune(c-'A'+10)
		}
	}
	return r
}

// jsonPathAt names the string of data (valid JSON) holding byte off, as
// request errors name fields: "traits[2].trait_key", "[1].identity.identifier"
// ("" for a string that is the whole body). isKey reports a member name;
// the path is then the object's.
func jsonPathAt(data []byte, off int) (path string, isKey bool) {
	type level struct {
		object  bool
		wantKey bool   // object: the next string is a member name
		key     string // object: the member being read
		index   int    // array: the element being read
	}
	var stack []level
	done := func() { // a value ended
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].wantKey = true
			} else {
				stack[n-1].index++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		n := len(stack)
		key := n > 0 && stack[n-1].object && stack[n-1].wantKey
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				stack = append(stack, level{object: t == '{', wantKey: true})
			} else {
				stack = stack[:n-1]
				done()
			}
			continue
		case string:
			if int(dec.InputOffset()) > off {
				var b strings.Builder
				for i, l := range stack {
					switch {
					case key && i == n-1:
					case !l.object:
						fmt.Fprintf(&b, "[%d]", l.index)
					case b.Len() > 0:
						b.WriteString("." + l.key)
					default:
						b.WriteString(l.key)
					}
				}
				return b.String(), key
			}
			if key {
				stack[n-1].key, stack[n-1].wantKey = t, false
				continue
			}
		}
		done()
	}
}
