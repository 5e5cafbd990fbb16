package httpapi

import "github.com/gitflags/gitflags/identities"

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
