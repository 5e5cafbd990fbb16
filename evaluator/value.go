package evaluator

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/gitflags/gitflags/flagrepo/condition"
)

// kind is the Python type of a coerced context value.
type kind uint8

const (
	kUnresolved kind = iota // cache slot not yet looked up
	kNone                   // absent
	kNull                   // present, JSON null
	kBool
	kInt    // fits in int64: i
	kBigInt // integer outside int64: s holds its decimal form, f approximates it
	kFloat
	kStr
)

// cval is a coerced context value ("cv" in the reference).
type cval struct {
	k   kind
	b   bool
	obj bool // came from a non-primitive value (map, slice, ...): str form
	i   int64
	f   float64
	s   string
}

// isSet reports whether the value is present and not null (Python: "is not None").
func (v *cval) isSet() bool { return v.k > kNull }

// isNumber reports whether v is an int or float (bool excluded).
func (v *cval) isNumber() bool { return v.k == kInt || v.k == kBigInt || v.k == kFloat }

// asFloat returns the numeric value of an int, big int or float as a float64.
func (v *cval) asFloat() float64 {
	if v.k == kInt {
		return float64(v.i)
	}
	return v.f
}

// coerceAny converts a raw Go value into a context value following
// map_any_value_to_context_value: strings that look like integers or decimals
// become numbers, primitives stay, anything else becomes its string form.
func coerceAny(x any) cval {
	switch t := x.(type) {
	case nil:
		return cval{k: kNull}
	case string:
		return coerceString(t)
	case bool:
		return cval{k: kBool, b: t}
	case float64:
		return fromFloat64(t)
	case float32:
		return fromFloat64(float64(t))
	case int:
		return cval{k: kInt, i: int64(t)}
	case int8:
		return cval{k: kInt, i: int64(t)}
	case int16:
		return cval{k: kInt, i: int64(t)}
	case int32:
		return cval{k: kInt, i: int64(t)}
	case int64:
		return cval{k: kInt, i: t}
	case uint8:
		return cval{k: kInt, i: int64(t)}
	case uint16:
		return cval{k: kInt, i: int64(t)}
	case uint32:
		return cval{k: kInt, i: int64(t)}
	case uint:
		return fromUint64(uint64(t))
	case uint64:
		return fromUint64(t)
	case json.Number:
		return fromNumber(string(t))
	}
	return cval{k: kStr, s: pyRepr(x), obj: true}
}

// isPrimitive reports whether x is a value a JSONPath query may return
// (Python's is_context_value: None, bool, int, float or str).
func isPrimitive(x any) bool {
	switch x.(type) {
	case nil, string, bool, float64, float32, int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64, json.Number:
		return true
	}
	return false
}

func fromUint64(u uint64) cval {
	if u <= math.MaxInt64 {
		return cval{k: kInt, i: int64(u)}
	}
	return cval{k: kBigInt, s: strconv.FormatUint(u, 10), f: float64(u)}
}

// fromFloat64 treats an integral float64 within the int64 range as an
// integer: encoding/json decodes every JSON number into a float64, and the
// Python engine sees JSON integers as int.
func fromFloat64(f float64) cval {
	if f == math.Trunc(f) && f >= -(1<<63) && f < (1<<63) {
		return cval{k: kInt, i: int64(f)}
	}
	return cval{k: kFloat, f: f}
}

// fromNumber decodes a JSON number the way Python's json module does: an
// integer when it has no fraction and no exponent, else a float.
func fromNumber(s string) cval {
	if strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !isRangeErr(err) {
			return coerceString(s)
		}
		return cval{k: kFloat, f: f}
	}
	if !isIntText(s) {
		return coerceString(s)
	}
	return intFromDigits(s)
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// isIntText reports whether s matches -?[0-9]+.
func isIntText(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isDecimalText reports whether s matches -?[0-9]+\.[0-9]+.
func isDecimalText(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	dot := strings.IndexByte(s, '.')
	if dot <= 0 || dot == len(s)-1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i != dot && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

// intFromDigits converts text matching -?[0-9]+ to an integer value.
func intFromDigits(s string) cval {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return cval{k: kInt, i: i}
	}
	neg := s[0] == '-'
	d := strings.TrimLeft(strings.TrimPrefix(s, "-"), "0")
	if d == "" {
		return cval{k: kInt}
	}
	if neg {
		d = "-" + d
	}
	f, _ := strconv.ParseFloat(d, 64)
	return cval{k: kBigInt, s: d, f: f}
}

// coerceString applies the engine's string coercion: -?[0-9]+ becomes an
// int, -?[0-9]+\.[0-9]+ becomes a float, anything else stays a string.
func coerceString(s string) cval {
	if len(s) == 0 || len(s) > 0 && s[0] != '-' && (s[0] < '0' || s[0] > '9') {
		return cval{k: kStr, s: s}
	}
	if isIntText(s) {
		return intFromDigits(s)
	}
	if isDecimalText(s) {
		f, _ := strconv.ParseFloat(s, 64) // only ErrRange is possible: ±Inf, as in Python
		return cval{k: kFloat, f: f}
	}
	return cval{k: kStr, s: s}
}

// appendPyStr appends Python's str() of v.
func appendPyStr(dst []byte, v *cval) []byte {
	switch v.k {
	case kNull, kNone, kUnresolved:
		return append(dst, "None"...)
	case kBool:
		if v.b {
			return append(dst, "True"...)
		}
		return append(dst, "False"...)
	case kInt:
		return strconv.AppendInt(dst, v.i, 10)
	case kFloat:
		return condition.AppendFloat(dst, v.f)
	}
	return append(dst, v.s...) // kStr, kBigInt
}

// pyFloatString returns Python's repr() of f.
func pyFloatString(f float64) string { return string(condition.AppendFloat(nil, f)) }

// formatWeight renders a variant's weight the way the engine's f-string
// prints the number Python's json module reads from the document: text with
// a fraction or an exponent is a float ("60.0" gives "60.0"), other text an
// integer as written. Without text, an integral weight prints as an integer.
func formatWeight(w float64, text string) string {
	if text != "" {
		if strings.ContainsAny(text, ".eE") {
			if f, err := strconv.ParseFloat(text, 64); err == nil || isRangeErr(err) {
				return pyFloatString(f)
			}
		} else if n, ok := condition.Int(text); ok {
			return n
		}
	}
	if w == math.Trunc(w) && math.Abs(w) < 1e16 {
		return strconv.FormatInt(int64(w), 10)
	}
	return pyFloatString(w)
}

// pyRepr renders a non-primitive value roughly as Python's str() would
// render the equivalent decoded JSON (dicts with keys sorted, since Go maps
// are unordered). Values that are not JSON-like use fmt's %v.
func pyRepr(x any) string {
	var b []byte
	b = appendRepr(b, x, 0)
	return string(b)
}

func appendRepr(b []byte, x any, depth int) []byte {
	if depth > 64 {
		return append(b, "..."...)
	}
	switch t := x.(type) {
	case nil:
		return append(b, "None"...)
	case string:
		return condition.AppendQuoted(b, t)
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = condition.AppendQuoted(b, k)
			b = append(b, ": "...)
			b = appendRepr(b, t[k], depth+1)
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range t {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendRepr(b, e, depth+1)
		}
		return append(b, ']')
	}
	if isPrimitive(x) {
		v := coerceAny(x)
		return appendPyStr(b, &v)
	}
	rv := reflect.ValueOf(x)
	if rv.Kind() == reflect.Pointer && rv.IsNil() {
		return append(b, "None"...)
	}
	return fmt.Appendf(b, "%v", x)
}

// FloatTraits returns traits with every float64 value as a json.Number
// that keeps a fraction (1818.0 as "1818.0"), so that conditions see a
// float as the Python engine does, where a bare float64 with an integral
// value counts as an integer (see Identity.Traits). For callers whose
// float64 values are floats, not integers decoded by encoding/json: the
// identity store and the SDK endpoints give integers as int64. traits is
// returned as it is when it holds no float64.
func FloatTraits(traits map[string]any) map[string]any {
	var out map[string]any
	for k, v := range traits {
		f, ok := v.(float64)
		if !ok || math.IsInf(f, 0) || math.IsNaN(f) {
			continue
		}
		if out == nil {
			out = maps.Clone(traits)
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		out[k] = json.Number(s)
	}
	if out == nil {
		return traits
	}
	return out
}
