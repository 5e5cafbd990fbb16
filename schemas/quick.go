package schemas

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// QuickValid is a fast, one-sided check of a decoded document (the values
// encoding/json produces with UseNumber: map[string]any, []any, string,
// json.Number, bool, nil) against the schema of kind k. True means the
// document is valid: the full validator (Compiled) would accept it. False
// means "not known": the caller runs the full validator, which decides and
// says what is wrong.
//
// It exists because the full validator allocates for every keyword it
// evaluates, and a flag repository of 10,000 features has 40,000 documents
// to check on every full load. QuickValid is compiled from the same embedded
// schema files, for the keywords they use. A schema with a keyword it does
// not know is not compiled at all, and QuickValid then always answers false,
// so a new keyword can make loading slower, never more permissive. Where an
// exact answer would be costly (a number near a bound, a non-integral
// literal where an integer is required) it answers false as well.
func QuickValid(k Kind, v any) bool {
	quickOnce.Do(compileQuick)
	n := quick[k]
	return n != nil && n.valid(v)
}

// QuickCompiled reports whether kind k's schema compiled for QuickValid, and
// if not, why.
func QuickCompiled(k Kind) error {
	quickOnce.Do(compileQuick)
	return quickErr[k]
}

var (
	quickOnce sync.Once
	quick     map[Kind]*qnode
	quickErr  map[Kind]error
)

func compileQuick() {
	quick = map[Kind]*qnode{}
	quickErr = map[Kind]error{}
	for _, k := range Kinds {
		n, err := compileQuickKind(k)
		if err != nil {
			quickErr[k] = err
			continue
		}
		quick[k] = n
	}
}

func compileQuickKind(k Kind) (*qnode, error) {
	data, err := files.ReadFile(k.FileName())
	if err != nil {
		return nil, err
	}
	var root map[string]any
	d := json.NewDecoder(strings.NewReader(string(data)))
	d.UseNumber()
	if err := d.Decode(&root); err != nil {
		return nil, fmt.Errorf("%s: %w", k.FileName(), err)
	}
	c := &qcompiler{root: root, defs: map[string]*qnode{}}
	n, err := c.compile(root, "", true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.FileName(), err)
	}
	return n, nil
}

// JSON types, as bits of qnode.types.
const (
	tNull uint8 = 1 << iota
	tBoolean
	tInteger
	tNumber // includes integers
	tString
	tArray
	tObject
)

var typeBits = map[string]uint8{
	"null": tNull, "boolean": tBoolean, "integer": tInteger, "number": tNumber,
	"string": tString, "array": tArray, "object": tObject,
}

// qnode is one compiled (sub)schema.
type qnode struct {
	types         uint8 // allowed types; 0: any
	ref           *qnode
	props         map[string]*qnode
	required      []string
	noAdditional  bool
	additional    *qnode
	propertyNames *qnode
	items         *qnode
	minItems      int // -1: none
	maxItems      int
	minLength     int
	maxLength     int
	pattern       *regexp.Regexp
	key           *keyPattern // pattern, when it has the form ^[first][rest]*$
	minimum       *big.Rat
	maximum       *big.Rat
	enum          []any // strings, json.Number literals, bools, nil
	anyOf         []*qnode
}

// annotations are keywords that do not constrain a value.
var annotations = map[string]bool{
	"$schema": true, "$id": true, "$comment": true, "title": true, "description": true,
	"examples": true, "default": true, "deprecated": true, "readOnly": true, "writeOnly": true,
}

type qcompiler struct {
	root map[string]any
	defs map[string]*qnode
}

func newQnode() *qnode { return &qnode{minItems: -1, maxItems: -1, minLength: -1, maxLength: -1} }

func (c *qcompiler) compile(s map[string]any, at string, root bool) (*qnode, error) {
	n := newQnode()
	return n, c.compileInto(n, s, at, root)
}

func (c *qcompiler) compileInto(n *qnode, s map[string]any, at string, root bool) error {
	for kw, v := range s {
		var err error
		switch kw {
		case "$defs":
			if !root {
				return fmt.Errorf("%s: $defs below the root", at)
			}
		case "type":
			err = n.setTypes(v)
		case "$ref":
			ref, ok := v.(string)
			if !ok || !strings.HasPrefix(ref, "#/$defs/") {
				return fmt.Errorf("%s: $ref %v: only #/$defs/ references are compiled", at, v)
			}
			n.ref, err = c.def(strings.TrimPrefix(ref, "#/$defs/"))
		case "properties":
			m, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("%s/properties: not an object", at)
			}
			n.props = make(map[string]*qnode, len(m))
			for name, sub := range m {
				if n.props[name], err = c.sub(sub, at+"/properties/"+name); err != nil {
					return err
				}
			}
		case "required":
			list, ok := v.([]any)
			if !ok {
				return fmt.Errorf("%s/required: not an array", at)
			}
			for _, r := range list {
				name, ok := r.(string)
				if !ok {
					return fmt.Errorf("%s/required: %v is not a string", at, r)
				}
				n.required = append(n.required, name)
			}
		case "additionalProperties":
			if b, ok := v.(bool); ok {
				n.noAdditional = !b
			} else {
				n.additional, err = c.sub(v, at+"/additionalProperties")
			}
		case "propertyNames":
			n.propertyNames, err = c.sub(v, at+"/propertyNames")
		case "items":
			n.items, err = c.sub(v, at+"/items")
		case "minItems":
			n.minItems, err = count(v)
		case "maxItems":
			n.maxItems, err = count(v)
		case "minLength":
			n.minLength, err = count(v)
		case "maxLength":
			n.maxLength, err = count(v)
		case "pattern":
			p, ok := v.(string)
			if !ok {
				return fmt.Errorf("%s/pattern: not a string", at)
			}
			n.pattern, err = regexp.Compile(p)
			n.key = parseKeyPattern(p)
		case "minimum":
			n.minimum, err = rat(v)
		case "maximum":
			n.maximum, err = rat(v)
		case "enum", "const":
			list := []any{v}
			if kw == "enum" {
				var ok bool
				if list, ok = v.([]any); !ok {
					return fmt.Errorf("%s/enum: not an array", at)
				}
			}
			for _, e := range list {
				switch e.(type) {
				case string, json.Number, bool, nil:
				default:
					return fmt.Errorf("%s/%s: only scalar values are compiled", at, kw)
				}
			}
			if n.enum != nil {
				return fmt.Errorf("%s: both enum and const", at)
			}
			n.enum = list
		case "anyOf":
			list, ok := v.([]any)
			if !ok || len(list) == 0 {
				return fmt.Errorf("%s/anyOf: not a non-empty array", at)
			}
			for i, sub := range list {
				sn, err := c.sub(sub, fmt.Sprintf("%s/anyOf/%d", at, i))
				if err != nil {
					return err
				}
				n.anyOf = append(n.anyOf, sn)
			}
		default:
			if !annotations[kw] {
				return fmt.Errorf("%s: keyword %q is not compiled", at, kw)
			}
		}
		if err != nil {
			return fmt.Errorf("%s/%s: %w", at, kw, err)
		}
	}
	return nil
}

func (c *qcompiler) sub(v any, at string) (*qnode, error) {
	s, ok := v.(map[string]any)
	if !ok {
		// true and false schemas are not used; not compiled.
		return nil, fmt.Errorf("%s: not a schema object", at)
	}
	return c.compile(s, at, false)
}

// def returns the compiled $defs entry name, compiling it on first use.
// Its node is registered before it is compiled, so a recursive definition
// (a segment rule holds rules) refers to itself.
func (c *qcompiler) def(name string) (*qnode, error) {
	if n, ok := c.defs[name]; ok {
		return n, nil
	}
	defs, _ := c.root["$defs"].(map[string]any)
	s, ok := defs[name].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("no definition %q", name)
	}
	n := newQnode()
	c.defs[name] = n
	return n, c.compileInto(n, s, "/$defs/"+name, false)
}

func (n *qnode) setTypes(v any) error {
	names := []any{v}
	if list, ok := v.([]any); ok {
		names = list
	}
	for _, t := range names {
		name, _ := t.(string)
		bit, ok := typeBits[name]
		if !ok {
			return fmt.Errorf("unknown type %v", t)
		}
		n.types |= bit
	}
	return nil
}

func count(v any) (int, error) {
	num, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%v is not a number", v)
	}
	i, err := strconv.Atoi(num.String())
	if err != nil || i < 0 {
		return 0, fmt.Errorf("%v is not a count", v)
	}
	return i, nil
}

func rat(v any) (*big.Rat, error) {
	num, ok := v.(json.Number)
	if !ok {
		return nil, fmt.Errorf("%v is not a number", v)
	}
	r, ok := new(big.Rat).SetString(num.String())
	if !ok {
		return nil, fmt.Errorf("%v is not a number", v)
	}
	return r, nil
}

// valid reports whether v is certainly valid against n.
func (n *qnode) valid(v any) bool {
	if n.ref != nil && !n.ref.valid(v) {
		return false
	}
	switch x := v.(type) {
	case nil:
		if !n.allows(tNull) {
			return false
		}
	case bool:
		if !n.allows(tBoolean) {
			return false
		}
	case string:
		if !n.allows(tString) || !n.validString(x) {
			return false
		}
	case json.Number:
		if !n.validNumber(x) {
			return false
		}
	case []any:
		if !n.allows(tArray) || !n.validArray(x) {
			return false
		}
	case map[string]any:
		if !n.allows(tObject) || !n.validObject(x) {
			return false
		}
	default:
		return false
	}
	if n.enum != nil && !n.inEnum(v) {
		return false
	}
	if n.anyOf != nil {
		for _, a := range n.anyOf {
			if a.valid(v) {
				return true
			}
		}
		return false
	}
	return true
}

func (n *qnode) allows(t uint8) bool { return n.types == 0 || n.types&t != 0 }

func (n *qnode) validString(s string) bool {
	if n.minLength >= 0 || n.maxLength >= 0 {
		l := utf8.RuneCountInString(s)
		if n.minLength >= 0 && l < n.minLength || n.maxLength >= 0 && l > n.maxLength {
			return false
		}
	}
	switch {
	case n.key != nil:
		return n.key.match(s)
	case n.pattern != nil:
		return n.pattern.MatchString(s)
	}
	return true
}

// keyPattern matches a pattern of the form ^[first][rest]*$ (the schemas'
// keys), with two byte tables instead of the regexp engine. Only classes of
// ASCII letters, digits, ranges and the punctuation _ . - are recognised;
// anything else stays a regexp.
type keyPattern struct{ first, rest [256]bool }

func parseKeyPattern(p string) *keyPattern {
	body, ok := strings.CutPrefix(p, "^[")
	if !ok {
		return nil
	}
	body, ok = strings.CutSuffix(body, "]*$")
	if !ok {
		return nil
	}
	first, rest, ok := strings.Cut(body, "][")
	if !ok {
		return nil
	}
	k := &keyPattern{}
	if !byteClass(first, &k.first) || !byteClass(rest, &k.rest) {
		return nil
	}
	return k
}

// byteClass sets the bytes of a bracket expression's body such as
// "A-Za-z0-9_.-" (a "-" is a range between two letters or digits, or a
// literal at the end).
func byteClass(body string, set *[256]bool) bool {
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case alnum(c) && i+2 < len(body) && body[i+1] == '-':
			hi := body[i+2]
			if !alnum(hi) || hi < c {
				return false
			}
			for b := int(c); b <= int(hi); b++ {
				set[b] = true
			}
			i += 2
		case alnum(c) || c == '_' || c == '.' || c == '-' && i == len(body)-1:
			set[c] = true
		default:
			return false
		}
	}
	return len(body) > 0
}

func (k *keyPattern) match(s string) bool {
	if s == "" || !k.first[s[0]] {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !k.rest[s[i]] {
			return false
		}
	}
	return true
}

// validNumber checks a number literal. Only plain integer literals (an
// optional minus and digits) count as integers; anything else where an
// integer is required is left to the full validator.
func (n *qnode) validNumber(num json.Number) bool {
	s := string(num)
	integral := isIntegerLiteral(s)
	switch {
	case n.types == 0 || n.types&tNumber != 0:
	case n.types&tInteger != 0:
		if !integral {
			return false
		}
	default:
		return false
	}
	if n.minimum == nil && n.maximum == nil {
		return true
	}
	if integral {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return withinInt(i, n.minimum, false) && withinInt(i, n.maximum, true)
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return false
	}
	return withinFloat(f, n.minimum, false) && withinFloat(f, n.maximum, true)
}

func isIntegerLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
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

// withinInt compares i with an integral bound exactly; a bound with a
// fraction or beyond int64 answers false (not known).
func withinInt(i int64, bound *big.Rat, upper bool) bool {
	if bound == nil {
		return true
	}
	if !bound.IsInt() || !bound.Num().IsInt64() {
		return false
	}
	b := bound.Num().Int64()
	if upper {
		return i <= b
	}
	return i >= b
}

// withinFloat compares f with a bound, answering true only when f is
// clearly on the right side: a decimal literal is rounded to a float64, so
// values within a relative 1e-9 of the bound are left to the exact check.
func withinFloat(f float64, bound *big.Rat, upper bool) bool {
	if bound == nil {
		return true
	}
	b, _ := bound.Float64()
	margin := 1e-9 * math.Max(1, math.Abs(b))
	if upper {
		return f < b-margin
	}
	return f > b+margin
}

func (n *qnode) validArray(a []any) bool {
	if n.minItems >= 0 && len(a) < n.minItems || n.maxItems >= 0 && len(a) > n.maxItems {
		return false
	}
	if n.items != nil {
		for _, e := range a {
			if !n.items.valid(e) {
				return false
			}
		}
	}
	return true
}

func (n *qnode) validObject(m map[string]any) bool {
	for _, r := range n.required {
		if _, ok := m[r]; !ok {
			return false
		}
	}
	for k, v := range m {
		if n.propertyNames != nil && !n.propertyNames.valid(k) {
			return false
		}
		if p, ok := n.props[k]; ok {
			if !p.valid(v) {
				return false
			}
			continue
		}
		if n.noAdditional {
			return false
		}
		if n.additional != nil && !n.additional.valid(v) {
			return false
		}
	}
	return true
}

// inEnum compares scalars; numbers only by their literal, so 1.0 against an
// enum's 1 is left to the full validator.
func (n *qnode) inEnum(v any) bool {
	for _, e := range n.enum {
		switch x := v.(type) {
		case json.Number:
			if en, ok := e.(json.Number); ok && en == x {
				return true
			}
		case string, bool, nil:
			if e == v {
				return true
			}
		}
	}
	return false
}
