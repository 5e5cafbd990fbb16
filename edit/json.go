package edit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// kind is the JSON type of a node.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
)

// node is a JSON value that keeps what a person wrote: objects keep their key
// order and numbers their text (60.0 stays 60.0, big integers stay exact).
type node struct {
	kind   kind
	text   string  // kBool: "true" or "false"; kNumber: the literal; kString: the string
	items  []*node // kArray
	fields []field // kObject, in document order
}

// field is one member of an object.
type field struct {
	key string
	val *node
}

// maxDepth bounds the nesting of arrays and objects parseJSON reads: far
// more than any document of a flag repository needs (segment rules nest at
// most 16 deep), and little enough stack for any input.
const maxDepth = 100

// parseJSON reads one JSON value. Duplicate keys, nesting deeper than
// maxDepth and anything after the value are errors.
func parseJSON(data []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := parseValue(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return n, nil
}

func parseValue(dec *json.Decoder, ptr string, depth int) (*node, error) {
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &node{kind: kNull}, nil
	case bool:
		return boolNode(t), nil
	case json.Number:
		return &node{kind: kNumber, text: string(t)}, nil
	case string:
		return stringNode(t), nil
	case json.Delim:
		if depth == maxDepth {
			return nil, fmt.Errorf("%s: nested more than %d deep", ptr, maxDepth)
		}
		if t == '[' {
			n := &node{kind: kArray, items: []*node{}}
			for dec.More() {
				item, err := parseValue(dec, fmt.Sprintf("%s/%d", ptr, len(n.items)), depth+1)
				if err != nil {
					return nil, err
				}
				n.items = append(n.items, item)
			}
			_, err := dec.Token() // ]
			return n, err
		}
		n := &node{kind: kObject, fields: []field{}}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key := tok.(string) // the decoder only hands over string keys
			p := ptr + "/" + escapePointer(key)
			if n.get(key) != nil {
				return nil, fmt.Errorf("%s: duplicate key %q", p, key)
			}
			val, err := parseValue(dec, p, depth+1)
			if err != nil {
				return nil, err
			}
			n.fields = append(n.fields, field{key, val})
		}
		_, err := dec.Token() // }
		return n, err
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// escapePointer escapes a key as an RFC 6901 JSON pointer token.
func escapePointer(key string) string {
	var b []byte
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '~':
			b = append(b, "~0"...)
		case '/':
			b = append(b, "~1"...)
		default:
			b = append(b, key[i])
		}
	}
	return string(b)
}

// encode writes n as json.MarshalIndent with a two-space indent would,
// without HTML escaping, followed by a newline: the style of the template.
func (n *node) encode() []byte {
	var e encoder
	n.write(&e, 0)
	e.out.WriteByte('\n')
	return e.out.Bytes()
}

type encoder struct {
	out     bytes.Buffer
	scratch bytes.Buffer
	str     *json.Encoder
}

func (e *encoder) string(s string) {
	if e.str == nil {
		e.str = json.NewEncoder(&e.scratch)
		e.str.SetEscapeHTML(false)
	}
	e.scratch.Reset()
	_ = e.str.Encode(s) // encoding a string cannot fail
	e.out.Write(bytes.TrimSuffix(e.scratch.Bytes(), []byte("\n")))
}

func (e *encoder) newline(depth int) {
	e.out.WriteByte('\n')
	for range depth {
		e.out.WriteString("  ")
	}
}

func (n *node) write(e *encoder, depth int) {
	switch n.kind {
	case kNull:
		e.out.WriteString("null")
	case kBool, kNumber:
		e.out.WriteString(n.text)
	case kString:
		e.string(n.text)
	case kArray:
		if len(n.items) == 0 {
			e.out.WriteString("[]")
			return
		}
		e.out.WriteByte('[')
		for i, item := range n.items {
			if i > 0 {
				e.out.WriteByte(',')
			}
			e.newline(depth + 1)
			item.write(e, depth+1)
		}
		e.newline(depth)
		e.out.WriteByte(']')
	case kObject:
		if len(n.fields) == 0 {
			e.out.WriteString("{}")
			return
		}
		e.out.WriteByte('{')
		for i, f := range n.fields {
			if i > 0 {
				e.out.WriteByte(',')
			}
			e.newline(depth + 1)
			e.string(f.key)
			e.out.WriteString(": ")
			f.val.write(e, depth+1)
		}
		e.newline(depth)
		e.out.WriteByte('}')
	}
}

func boolNode(b bool) *node {
	if b {
		return &node{kind: kBool, text: "true"}
	}
	return &node{kind: kBool, text: "false"}
}

func stringNode(s string) *node { return &node{kind: kString, text: s} }

func numberNode(text string) *node { return &node{kind: kNumber, text: text} }

func objectNode() *node { return &node{kind: kObject, fields: []field{}} }

func arrayNode(items ...*node) *node {
	if items == nil {
		items = []*node{}
	}
	return &node{kind: kArray, items: items}
}

// get returns the value of key in object n, or nil (also when n is not an object).
func (n *node) get(key string) *node {
	if n == nil || n.kind != kObject {
		return nil
	}
	for _, f := range n.fields {
		if f.key == key {
			return f.val
		}
	}
	return nil
}

// set replaces the value of key in object n, or inserts it where order puts
// it: before the first existing key that order lists after key (at the end when
// there is none). Keys order does not list sort last.
func (n *node) set(key string, val *node, order []string) {
	for i := range n.fields {
		if n.fields[i].key == key {
			n.fields[i].val = val
			return
		}
	}
	rank := func(k string) int {
		if i := slices.Index(order, k); i >= 0 {
			return i
		}
		return len(order)
	}
	r := rank(key)
	at := len(n.fields)
	for i, f := range n.fields {
		if rank(f.key) > r {
			at = i
			break
		}
	}
	n.fields = slices.Insert(n.fields, at, field{key, val})
}

// remove deletes key from object n, reporting whether it was there.
func (n *node) remove(key string) bool {
	for i, f := range n.fields {
		if f.key == key {
			n.fields = slices.Delete(n.fields, i, i+1)
			return true
		}
	}
	return false
}

// equal reports whether a and b are the same JSON text (numbers compared as written).
func equal(a, b *node) bool {
	if a == nil || b == nil {
		return a == b
	}
	return bytes.Equal(a.encode(), b.encode())
}

// Field orders of each kind of object, as the template writes them. New keys
// go where these lists put them; existing keys never move.
var (
	featureOrder     = []string{"$schema", "id", "description", "default", "variants", "owners", "tags", "server_key_only"}
	defaultOrder     = []string{"enabled", "value"}
	variantOrder     = []string{"id", "key", "value", "weight"}
	segmentOrder     = []string{"$schema", "id", "description", "rules"}
	ruleOrder        = []string{"type", "conditions", "rules"}
	conditionOrder   = []string{"property", "operator", "value"}
	environmentOrder = []string{"$schema", "id", "name", "client_key", "description", "server_keys",
		"hide_disabled_flags", "hide_sensitive_data", "allow_client_traits", "review_required"}
	stateOrder    = []string{"$schema", "enabled", "value", "weights", "segment_overrides", "identity_overrides"}
	overrideOrder = []string{"segment", "priority", "enabled", "value", "weights"}
)
