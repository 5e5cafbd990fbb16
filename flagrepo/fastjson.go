package flagrepo

import (
	"encoding/json"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// parseTree parses a JSON document into the values encoding/json produces
// with UseNumber (map[string]any, []any, string, json.Number, bool, nil),
// in one pass over the bytes. It is the fast path of decodeDocument: ok is
// false for anything it does not parse exactly as encoding/json would, and
// also for a repeated object key or data after the document, so that the
// slow path (encoding/json, then duplicateKeys) runs and reports the problem
// with its position.
//
// A full load of a large repository parses tens of thousands of documents;
// encoding/json scans each twice (once to find the value's end, once to
// decode it) and allocates more, which made parsing a fifth of a load.
//
// The objects and arrays come from arena (nil: allocated), and are valid
// until the arena is released.
func parseTree(data []byte, arena *treeArena) (v any, ok bool) {
	p := jsonParser{data: data, arena: arena}
	v, ok = p.value(0)
	if !ok {
		return nil, false
	}
	p.space()
	return v, p.i == len(p.data)
}

// treeArena recycles the maps and slices of parsed trees. The tree of a
// feature or feature state is garbage as soon as its typed document is
// built (which keeps only strings and scalars), and allocating its many
// small maps was the largest part of a full load's allocations, which cost
// the garbage collector and page faults as much as the parsing.
type treeArena struct {
	maps   []map[string]any
	nmaps  int
	slices [][]any
	nslice int
}

// Bounds on what an arena keeps between documents: a document with more
// objects or arrays gets new ones for the rest.
const (
	arenaMaps   = 256
	arenaSlices = 256
)

var arenas = sync.Pool{New: func() any { return new(treeArena) }}

// recycleTrees turns the arenas on; a test turns them off to compare.
var recycleTrees = true

func (a *treeArena) newMap() map[string]any {
	if a == nil {
		return make(map[string]any)
	}
	if a.nmaps < len(a.maps) {
		m := a.maps[a.nmaps]
		a.nmaps++
		return m
	}
	m := make(map[string]any)
	if len(a.maps) < arenaMaps {
		a.maps = append(a.maps, m)
		a.nmaps++
	}
	return m
}

// newSlice returns an empty slice and its index in the arena (-1: not kept;
// pass the filled slice to keepSlice).
func (a *treeArena) newSlice() ([]any, int) {
	if a == nil {
		return []any{}, -1
	}
	if a.nslice < len(a.slices) {
		i := a.nslice
		a.nslice++
		return a.slices[i][:0], i
	}
	if len(a.slices) < arenaSlices {
		a.slices = append(a.slices, make([]any, 0, 4))
		a.nslice++
		return a.slices[len(a.slices)-1], len(a.slices) - 1
	}
	return []any{}, -1
}

func (a *treeArena) keepSlice(i int, s []any) {
	if a != nil && i >= 0 {
		a.slices[i] = s
	}
}

// arenaKeepLen bounds the maps and slices an arena keeps: clear does not
// shrink a map, so one with many entries (a document with thousands of
// weights) is replaced by a new one rather than kept.
const arenaKeepLen = 64

// release empties the maps and slices handed out, for the next document.
func (a *treeArena) release() {
	for i, m := range a.maps[:a.nmaps] {
		if len(m) > arenaKeepLen {
			a.maps[i] = make(map[string]any)
			continue
		}
		clear(m)
	}
	for i, s := range a.slices[:a.nslice] {
		if cap(s) > arenaKeepLen {
			a.slices[i] = make([]any, 0, 4)
			continue
		}
		clear(s)
	}
	a.nmaps, a.nslice = 0, 0
}

// maxTreeDepth is the nesting the fast path parses; deeper documents take
// the slow path (encoding/json allows 10,000).
const maxTreeDepth = 200

type jsonParser struct {
	data  []byte
	i     int
	arena *treeArena
}

func (p *jsonParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, bool) {
	p.space()
	if p.i >= len(p.data) || depth > maxTreeDepth {
		return nil, false
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, ok := p.str(false)
		return s, ok
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return nil, false
}

func (p *jsonParser) literal(word string) bool {
	if len(p.data)-p.i < len(word) || string(p.data[p.i:p.i+len(word)]) != word {
		return false
	}
	p.i += len(word)
	return true
}

func (p *jsonParser) object(depth int) (any, bool) {
	p.i++ // {
	m := p.arena.newMap()
	p.space()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return m, true
	}
	for {
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return nil, false
		}
		k, ok := p.str(true)
		if !ok {
			return nil, false
		}
		if _, dup := m[k]; dup {
			return nil, false
		}
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, false
		}
		p.i++
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		m[k] = v
		p.space()
		if p.i >= len(p.data) {
			return nil, false
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return m, true
		default:
			return nil, false
		}
	}
}

func (p *jsonParser) array(depth int) (any, bool) {
	p.i++ // [
	a, slot := p.arena.newSlice()
	p.space()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return a, true
	}
	for {
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		a = append(a, v)
		p.arena.keepSlice(slot, a)
		p.space()
		if p.i >= len(p.data) {
			return nil, false
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return a, true
		default:
			return nil, false
		}
	}
}

// number scans a number with JSON's grammar and keeps its text.
func (p *jsonParser) number() (any, bool) {
	d, start := p.data, p.i
	i := p.i
	if d[i] == '-' {
		i++
	}
	digits := func() bool {
		s := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		return i > s
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case !digits():
		return nil, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if !digits() {
			return nil, false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if !digits() {
			return nil, false
		}
	}
	p.i = i
	return json.Number(d[start:i]), true
}

// str scans a string. Keys are interned: a repository's documents repeat
// the same few names.
func (p *jsonParser) str(key bool) (string, bool) {
	d := p.data
	start := p.i + 1
	ascii := true
	for i := start; i < len(d); i++ {
		switch c := d[i]; {
		case c == '"':
			p.i = i + 1
			raw := d[start:i]
			if !ascii && !utf8.Valid(raw) {
				return "", false
			}
			if key {
				if k, ok := internKey(raw); ok {
					return k, true
				}
			}
			return string(raw), true
		case c == '\\':
			return p.escaped(start)
		case c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", false
}

// escaped scans a string with escapes, from its first byte at start.
func (p *jsonParser) escaped(start int) (string, bool) {
	d := p.data
	out := make([]byte, 0, 32)
	i := start
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			p.i = i + 1
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(d) {
			return "", false
		}
		switch d[i+1] {
		case '"', '\\', '/':
			out = append(out, d[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(d, i+2)
			if !ok {
				return "", false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// Only a well-formed pair; encoding/json replaces a
				// lone surrogate, which the slow path does.
				if i+1 >= len(d) || d[i] != '\\' || d[i+1] != 'u' {
					return "", false
				}
				r2, ok := hex4(d, i+2)
				if !ok {
					return "", false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", false
				}
				i += 6
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return "", false
		}
		i += 2
	}
	return "", false
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// internKey returns the interned string of the key names the schemas
// define, without allocating.
func internKey(b []byte) (string, bool) {
	switch string(b) {
	case "$schema":
		return "$schema", true
	case "id":
		return "id", true
	case "description":
		return "description", true
	case "default":
		return "default", true
	case "enabled":
		return "enabled", true
	case "value":
		return "value", true
	case "variants":
		return "variants", true
	case "key":
		return "key", true
	case "weight":
		return "weight", true
	case "weights":
		return "weights", true
	case "tags":
		return "tags", true
	case "owners":
		return "owners", true
	case "segment_overrides":
		return "segment_overrides", true
	case "identity_overrides":
		return "identity_overrides", true
	case "segment":
		return "segment", true
	case "priority":
		return "priority", true
	case "identifiers":
		return "identifiers", true
	case "rules":
		return "rules", true
	case "type":
		return "type", true
	case "conditions":
		return "conditions", true
	case "property":
		return "property", true
	case "operator":
		return "operator", true
	}
	return "", false
}
