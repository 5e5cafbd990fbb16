package identities

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MarshalJSON writes {"trait_key": ..., "trait_value": ...}, keeping a float
// value a float in the JSON text (1.0, not 1) so that clients that tell
// integers from floats get back what they sent.
func (t Trait) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 32+len(t.Key))
	b = append(b, `{"trait_key":`...)
	b = appendString(b, t.Key)
	b = append(b, `,"trait_value":`...)
	b, err := appendValue(b, t.Value)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// MarshalValue returns the JSON text of a trait value as MarshalJSON writes
// it (a float stays a float: 1.0).
func MarshalValue(v any) ([]byte, error) { return appendValue(nil, v) }

// AppendValue appends the JSON text of a trait value to b, as MarshalValue
// writes it.
func AppendValue(b []byte, v any) ([]byte, error) { return appendValue(b, v) }

// appendString appends s as JSON text, byte for byte as json.Marshal
// writes it (which escapes <, > and & too).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendValue appends the JSON text of a trait value.
func appendValue(b []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, t), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case int64:
		return strconv.AppendInt(b, t, 10), nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, fmt.Errorf("trait value %v is not finite", t)
		}
		start := len(b)
		b = strconv.AppendFloat(b, t, 'g', -1, 64)
		if !bytes.ContainsAny(b[start:], ".eE") {
			b = append(b, ".0"...)
		}
		return b, nil
	}
	n, err := NormalizeValue(v)
	if err != nil {
		return nil, err
	}
	return appendValue(b, n)
}

// encodeTraits is the stored form of an identity's traits: a JSON object.
func encodeTraits(m map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := make([]byte, 0, 16*len(m)+2)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// decodeTraits reads what encodeTraits wrote.
func decodeTraits(data []byte) (map[string]any, error) {
	if m, ok := decodeTraitsFast(data); ok {
		return m, nil
	}
	return decodeTraitsJSON(data)
}

// decodeTraitsFast reads the usual form of what encodeTraits writes (no
// white space, keys of printable ASCII, strings without escapes) without
// encoding/json. It reports false for anything else, and then
// decodeTraitsJSON decides; where it reports true, its result is
// decodeTraitsJSON's (FuzzDecodeTraitsFast checks this).
func decodeTraitsFast(data []byte) (map[string]any, bool) {
	if len(data) < 2 || data[0] != '{' || data[len(data)-1] != '}' {
		return nil, false
	}
	out := make(map[string]any, bytes.Count(data, []byte{':'}))
	i, end := 1, len(data)-1
	str := func(ascii bool) (string, bool) {
		if i >= end || data[i] != '"' {
			return "", false
		}
		for j := i + 1; j < end; j++ {
			switch c := data[j]; {
			case c == '"':
				s := string(data[i+1 : j])
				i = j + 1
				return s, true
			case c == '\\' || c < 0x20 || ascii && c >= 0x7f:
				return "", false
			}
		}
		return "", false
	}
	for i < end {
		if len(out) > 0 {
			if data[i] != ',' {
				return nil, false
			}
			i++
		}
		k, ok := str(true)
		if !ok || i >= end || data[i] != ':' {
			return nil, false
		}
		i++
		if i >= end {
			return nil, false
		}
		switch c := data[i]; {
		case c == '"':
			v, ok := str(false)
			if !ok || !utf8.ValidString(v) {
				return nil, false
			}
			out[k] = v
		case c == 't' || c == 'f' || c == 'n':
			j := i
			for j < end && data[j] >= 'a' && data[j] <= 'z' {
				j++
			}
			switch string(data[i:j]) {
			case "true":
				out[k] = true
			case "false":
				out[k] = false
			case "null":
				out[k] = nil
			default:
				return nil, false
			}
			i = j
		default:
			j := i
			for j < end && data[j] != ',' {
				j++
			}
			if !IsJSONNumber(data[i:j]) {
				return nil, false
			}
			x, err := ParseNumber(string(data[i:j]))
			if err != nil {
				return nil, false
			}
			out[k] = x
			i = j
		}
	}
	if len(out) != bytes.Count(data, []byte{':'}) {
		return nil, false // a duplicate key, or a ':' inside a string
	}
	return out, true
}

// IsJSONNumber reports whether b is exactly a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func IsJSONNumber(b []byte) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// decodeTraitsJSON reads any JSON object of trait values.
func decodeTraitsJSON(data []byte) (map[string]any, error) {
	// Decoding into raw messages and reading each literal directly is about
	// twice as fast as a json.Decoder with UseNumber, on every identity call.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("corrupt identity record: %w", err)
	}
	out := make(map[string]any, len(raw))
	for k, r := range raw {
		switch {
		case len(r) == 0:
			return nil, fmt.Errorf("corrupt identity record: trait %q has no value", k)
		case r[0] == '"':
			if bytes.IndexByte(r, '\\') < 0 {
				out[k] = string(r[1 : len(r)-1])
				continue
			}
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return nil, fmt.Errorf("corrupt identity record: trait %q: %w", k, err)
			}
			out[k] = s
		case string(r) == "true":
			out[k] = true
		case string(r) == "false":
			out[k] = false
		case string(r) == "null":
			out[k] = nil
		default:
			x, err := ParseNumber(string(r))
			if err != nil {
				return nil, fmt.Errorf("corrupt identity record: trait %q: %w", k, err)
			}
			out[k] = x
		}
	}
	return out, nil
}

// sortedTraits lists m by key.
func sortedTraits(m map[string]any) []Trait {
	out := make([]Trait, 0, len(m))
	for k, v := range m {
		out = append(out, Trait{Key: k, Value: v})
	}
	slices.SortFunc(out, func(a, b Trait) int { return strings.Compare(a.Key, b.Key) })
	return out
}
