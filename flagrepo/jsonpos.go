package flagrepo

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// This file maps JSON pointers to positions in a file's bytes, and finds
// duplicate object keys (which encoding/json silently accepts, keeping the
// last). It assumes syntactically valid JSON: callers check syntax first.

// lineCol converts a byte offset into a 1-based line and column.
func lineCol(data []byte, offset int) (line, col int) {
	if offset > len(data) {
		offset = len(data)
	}
	if offset < 0 {
		offset = 0
	}
	line = 1 + bytes.Count(data[:offset], []byte{'\n'})
	col = offset - bytes.LastIndexByte(data[:offset], '\n')
	return line, col
}

// jsonWalker visits every value of a JSON document with its pointer tokens.
type jsonWalker struct {
	data []byte
	pos  int
	// visit is called for every value with its path (valid only during the
	// call); keyOff is the offset of the member's key (-1 for array elements
	// and the root). Returning false stops the walk.
	visit func(path []string, keyOff, valOff int) bool
	// dup is called for every repeated key of an object, with its path (valid
	// only during the call).
	dup     func(path []string, keyOff int)
	stopped bool
	keys    []string
}

func (w *jsonWalker) ws() {
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// str reads a string starting at the opening quote and returns its value.
func (w *jsonWalker) str() string {
	start := w.pos
	w.pos++ // opening quote
	escaped := false
	for w.pos < len(w.data) {
		c := w.data[w.pos]
		if c == '\\' {
			escaped = true
			w.pos += 2
			continue
		}
		w.pos++
		if c == '"' {
			break
		}
	}
	end := w.pos
	if end > len(w.data) {
		end = len(w.data)
	}
	raw := w.data[start:end]
	if !escaped && len(raw) >= 2 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return string(raw)
	}
	return s
}

func (w *jsonWalker) value(path []string, keyOff int) {
	if w.stopped {
		return
	}
	w.ws()
	if w.pos >= len(w.data) {
		return
	}
	if w.visit != nil && !w.visit(path, keyOff, w.pos) {
		w.stopped = true
		return
	}
	switch w.data[w.pos] {
	case '{':
		w.pos++
		// The keys of this object sit on top of w.keys: objects are small, a
		// linear scan beats a map, and the stack is reused.
		start := len(w.keys)
		w.object(path, start)
		w.keys = w.keys[:start]
	case '[':
		w.pos++
		for i := 0; !w.stopped; {
			w.ws()
			if w.pos >= len(w.data) {
				return
			}
			switch w.data[w.pos] {
			case ']':
				w.pos++
				return
			case ',':
				w.pos++
				continue
			}
			w.value(append(path, strconv.Itoa(i)), -1) // the callee must not keep the path
			i++
		}
	case '"':
		w.str()
	default:
		start := w.pos
		for w.pos < len(w.data) {
			switch w.data[w.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if w.pos == start {
					w.pos++ // a stray delimiter in invalid JSON: always make progress
				}
				return
			}
			w.pos++
		}
	}
}

// object walks the members of an object whose '{' has been consumed; its keys
// are pushed on w.keys above start.
func (w *jsonWalker) object(path []string, start int) {
	for !w.stopped {
		w.ws()
		if w.pos >= len(w.data) {
			return
		}
		if w.data[w.pos] == '}' {
			w.pos++
			return
		}
		if w.data[w.pos] == ',' {
			w.pos++
			continue
		}
		if w.data[w.pos] != '"' {
			return // not valid JSON; give up quietly
		}
		kOff := w.pos
		key := w.str()
		child := append(path, key) // the callee must not keep child
		if w.dup != nil {
			if slices.Contains(w.keys[start:], key) {
				w.dup(child, kOff)
			}
			w.keys = append(w.keys, key)
		}
		w.ws()
		if w.pos < len(w.data) && w.data[w.pos] == ':' {
			w.pos++
		}
		w.value(child, kOff)
	}
}

// splitPointer splits an RFC 6901 pointer into unescaped tokens.
func splitPointer(ptr string) []string {
	if ptr == "" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(ptr, "/"), "/")
	for i, p := range parts {
		p = strings.ReplaceAll(p, "~1", "/")
		parts[i] = strings.ReplaceAll(p, "~0", "~")
	}
	return parts
}

// locate returns the offset of the value at ptr, or of its member key when the
// value is an object member; when ptr does not exist, the offset of its deepest
// existing ancestor.
func locate(data []byte, ptr string) int {
	want := splitPointer(ptr)
	best := 0
	w := &jsonWalker{data: data}
	w.visit = func(path []string, keyOff, valOff int) bool {
		if len(path) > len(want) {
			return true
		}
		for i := range path {
			if path[i] != want[i] {
				return true
			}
		}
		best = valOff
		if keyOff >= 0 {
			best = keyOff
		}
		return len(path) < len(want)
	}
	w.value(make([]string, 0, 16), -1)
	return best
}

// duplicateKeys returns the pointer and offset of every repeated object key.
func duplicateKeys(data []byte) (ptrs []string, offs []int) {
	w := &jsonWalker{data: data}
	w.dup = func(path []string, keyOff int) {
		tokens := make([]any, len(path))
		for i, p := range path {
			tokens[i] = p
		}
		ptrs = append(ptrs, pointer(tokens...))
		offs = append(offs, keyOff)
	}
	w.value(make([]string, 0, 16), -1)
	return ptrs, offs
}
