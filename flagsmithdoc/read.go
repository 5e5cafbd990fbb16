package flagsmithdoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// maxDepth bounds the nesting of the JSON read (segment rules nest; a
// document nested deeper than this is not Flagsmith's).
const maxDepth = 64

// parseJSON reads one JSON value with numbers as json.Number.
func parseJSON(data []byte) (any, error) {
	if err := checkDepth(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(data, int(se.Offset))
			return nil, fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, err)
		}
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty file: no JSON value")
		}
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: more data after the first JSON value")
	}
	return v, nil
}

// checkDepth refuses JSON nested deeper than maxDepth (outside strings).
func checkDepth(data []byte) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > maxDepth {
				return fmt.Errorf("JSON nested more than %d deep: not a Flagsmith document", maxDepth)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}

func lineCol(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	line = 1 + bytes.Count(data[:off], []byte("\n"))
	col = off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}

// reader reads one source's JSON tree, collecting structural problems
// (input errors) and Issues.
type reader struct {
	src      string
	problems []string
	iss      *issues
}

func (r *reader) fail(ptr, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if ptr != "" {
		msg = ptr + ": " + msg
	}
	r.problems = append(r.problems, r.src+": "+msg)
}

// ptrTo appends JSON pointer tokens to ptr.
func ptrTo(ptr string, tokens ...any) string {
	b := make([]byte, 0, len(ptr)+16*len(tokens))
	b = append(b, ptr...)
	for _, t := range tokens {
		b = append(b, '/')
		switch t := t.(type) {
		case string:
			if strings.ContainsAny(t, "~/") {
				t = pointerEscaper.Replace(t)
			}
			b = append(b, t...)
		case int:
			b = strconv.AppendInt(b, int64(t), 10)
		default:
			b = fmt.Append(b, t)
		}
	}
	return string(b)
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// object is a JSON object being read, with its pointer.
type object struct {
	r   *reader
	m   map[string]any
	ptr string
}

// asObject returns v as an object, or reports that it is not one.
func (r *reader) asObject(v any, ptr, what string) (object, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		r.fail(ptr, "%s must be a JSON object, not %s", what, jsonType(v))
		return object{}, false
	}
	return object{r: r, m: m, ptr: ptr}, true
}

// has reports whether the field is present and not null.
func (o object) has(key string) bool { return o.m[key] != nil }

func (o object) at(key string) string { return ptrTo(o.ptr, key) }

// str reads a required string field.
func (o object) str(key string) (string, bool) {
	v, present := o.m[key]
	if !present || v == nil {
		o.r.fail(o.ptr, "missing required field %q", key)
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		o.r.fail(o.at(key), "must be a string, not %s", jsonType(v))
	}
	return s, ok
}

// optStr reads an optional string field: absent or null gives ok with
// present false.
func (o object) optStr(key string) (s string, present, ok bool) {
	v := o.m[key]
	if v == nil {
		return "", false, true
	}
	s, ok = v.(string)
	if !ok {
		o.r.fail(o.at(key), "must be a string or null, not %s", jsonType(v))
	}
	return s, ok, ok
}

// id reads a required integer id (1 to 2^53-1, the range of gitflags ids).
func (o object) id(key string) (int64, bool) {
	v, present := o.m[key]
	if !present || v == nil {
		o.r.fail(o.ptr, "missing required field %q", key)
		return 0, false
	}
	return o.r.idValue(v, o, key)
}

// optID reads an optional id; absent or null gives present false.
func (o object) optID(key string) (id int64, present, ok bool) {
	v := o.m[key]
	if v == nil {
		return 0, false, true
	}
	id, ok = o.r.idValue(v, o, key)
	return id, ok, ok
}

// idValue reads an id, the value of field key of o (or, with key "", the
// item of a list at o.ptr).
func (r *reader) idValue(v any, o object, key string) (int64, bool) {
	at := func() string {
		if key == "" {
			return o.ptr
		}
		return o.at(key)
	}
	n, ok := v.(json.Number)
	if !ok {
		r.fail(at(), "must be an integer id, not %s", jsonType(v))
		return 0, false
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || i < 1 || i > maxID {
		r.fail(at(), "id %s is not an integer from 1 to %d", n, int64(maxID))
		return 0, false
	}
	return i, true
}

// maxID is the largest id a flag repository holds (2^53-1).
const maxID = 1<<53 - 1

// boolean reads a required boolean field.
func (o object) boolean(key string) (bool, bool) {
	v, present := o.m[key]
	if !present || v == nil {
		o.r.fail(o.ptr, "missing required field %q", key)
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		o.r.fail(o.at(key), "must be true or false, not %s", jsonType(v))
	}
	return b, ok
}

// optBool reads an optional boolean; absent or null gives def.
func (o object) optBool(key string, def bool) (bool, bool) {
	v := o.m[key]
	if v == nil {
		return def, true
	}
	b, ok := v.(bool)
	if !ok {
		o.r.fail(o.at(key), "must be true, false or null, not %s", jsonType(v))
	}
	return b, ok
}

// nullableBool reads an optional boolean that may be null (nil).
func (o object) nullableBool(key string) (*bool, bool) {
	v := o.m[key]
	if v == nil {
		return nil, true
	}
	b, ok := v.(bool)
	if !ok {
		o.r.fail(o.at(key), "must be true, false or null, not %s", jsonType(v))
		return nil, false
	}
	return &b, true
}

// list reads a list field; absent or null is an empty list unless required.
func (o object) list(key string, required bool) ([]any, bool) {
	v, present := o.m[key]
	if !present || v == nil {
		if required && !present {
			o.r.fail(o.ptr, "missing required field %q", key)
			return nil, false
		}
		return nil, true
	}
	l, ok := v.([]any)
	if !ok {
		o.r.fail(o.at(key), "must be a list, not %s", jsonType(v))
	}
	return l, ok
}

// child reads a required object field.
func (o object) child(key, what string) (object, bool) {
	v, present := o.m[key]
	if !present || v == nil {
		o.r.fail(o.ptr, "missing required field %q", key)
		return object{}, false
	}
	return o.r.asObject(v, o.at(key), what)
}

// unknown reports every field not in known (nor in ignored) as an Issue:
// a field gitflags does not know may carry meaning it would lose.
func (o object) unknown(what string, known ...string) {
	var extra []string
	for k := range o.m {
		found := false
		for _, kk := range known {
			if k == kk {
				found = true
				break
			}
		}
		if !found {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		o.r.iss.add(o.r.src, o.at(k), what, "unknown field %q (a newer Flagsmith version?): gitflags does not know what it means, so it is not imported", k)
	}
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + v.String()
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// flagValue reads a flag value as gitflags holds it: nil, string, bool or
// int64. why says why v cannot be one.
func flagValue(v any) (val any, why string) {
	switch v := v.(type) {
	case nil, string, bool:
		return v, ""
	case json.Number:
		s := v.String()
		if strings.ContainsAny(s, ".eE") {
			return nil, fmt.Sprintf("the decimal number %s is not a gitflags value (strings, integers, booleans or null; Flagsmith's engine would serve it as a float)", s)
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Sprintf("the integer %s does not fit in 64 bits, the range of gitflags values", s)
		}
		return i, ""
	case []any:
		return nil, "a list is not a gitflags value (strings, integers, booleans or null)"
	case map[string]any:
		return nil, "an object is not a gitflags value (strings, integers, booleans or null)"
	}
	return nil, fmt.Sprintf("%T is not a gitflags value", v)
}

// number reads a JSON number as float64, with its text.
func number(v any) (f float64, text string, ok bool) {
	n, isNum := v.(json.Number)
	if !isNum {
		return 0, "", false
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, n.String(), false
	}
	return f, n.String(), true
}

// uuidInt reads a UUID's 128 bits as an integer (Python's uuid.UUID(s).int).
func uuidInt(s string) (*big.Int, bool) {
	h := strings.ReplaceAll(strings.TrimPrefix(strings.TrimSuffix(strings.TrimPrefix(s, "urn:uuid:"), "}"), "{"), "-", "")
	if len(h) != 32 {
		return nil, false
	}
	n, ok := new(big.Int).SetString(h, 16)
	return n, ok
}

// valueJSON is v encoded as JSON without HTML escaping.
func valueJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
