package tokens

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gitflags/gitflags/flagrepo"
)

// ParseError lists every problem of a tokens file.
type ParseError struct {
	Problems []flagrepo.Problem // File is the tokens file's path; Pointer a JSON pointer into it
}

// Error lists the problems, one per line.
func (e *ParseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid tokens file: %d problem(s)", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// entryMembers are the members of a tokens file entry, in the order checked.
var entryMembers = []string{"name", "email", "sha256", "scope", "environments"}

// Parse reads a tokens file, whose path is file (for messages):
//
//	{"tokens": [{"name": "ci-bot", "email": "ci@acme.example", "sha256": "<hex>",
//	             "scope": "write", "environments": ["staging"]}]}
//
// name, email, sha256 and scope are required (see CheckName, CheckEmail,
// CheckScope); environments, when given, is a non-empty list of environment
// keys that limits the token to them. Names and hashes are unique. The
// error, a *ParseError, names every problem with its JSON pointer.
func Parse(file string, data []byte) (*Set, error) {
	p := &parser{file: file}
	set := p.parse(data)
	if len(p.problems) > 0 {
		return nil, &ParseError{Problems: p.problems}
	}
	return set, nil
}

type parser struct {
	file     string
	problems []flagrepo.Problem
}

func (p *parser) add(ptr, format string, args ...any) {
	p.problems = append(p.problems, flagrepo.Problem{File: p.file, Pointer: ptr, Message: fmt.Sprintf(format, args...)})
}

func (p *parser) parse(data []byte) *Set {
	if !utf8.Valid(data) {
		p.add("", "the file is not UTF-8 text")
		return nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			line, col := position(data, syn.Offset)
			p.problems = append(p.problems, flagrepo.Problem{File: p.file, Line: line, Column: col, Message: "not JSON: " + syn.Error()})
		} else {
			p.add("", `the file must be a JSON object {"tokens": [...]}`)
		}
		return nil
	}
	for _, k := range sortedKeys(top) {
		if k != "tokens" {
			p.add(pointer(k), `unknown member %q: a tokens file has only "tokens"`, k)
		}
	}
	raw, ok := top["tokens"]
	if !ok {
		p.add("", `no "tokens" member: the file is {"tokens": [...]}`)
		return nil
	}
	var list []json.RawMessage
	if !isArray(raw) || json.Unmarshal(raw, &list) != nil {
		p.add("/tokens", "must be an array of tokens, not %s", abbreviate(raw))
		return nil
	}
	set := &Set{}
	names, sums := map[string]string{}, map[[32]byte]string{} // -> pointer of the first
	for i, raw := range list {
		at := pointer("tokens", i)
		t, ok := p.entry(at, raw)
		if !ok {
			continue
		}
		if first, dup := names[t.Name]; dup {
			p.add(at+"/name", "duplicate name %q: %s has it too", t.Name, first)
			continue
		}
		if first, dup := sums[t.sum]; dup {
			p.add(at+"/sha256", "duplicate sha256: %s has the same hash (two entries for one token)", first)
			continue
		}
		names[t.Name], sums[t.sum] = at, at
		set.tokens = append(set.tokens, t)
	}
	return set
}

// entry reads the entry at pointer at.
func (p *parser) entry(at string, raw json.RawMessage) (*Token, bool) {
	var m map[string]json.RawMessage
	if !isObject(raw) || json.Unmarshal(raw, &m) != nil {
		p.add(at, `must be an object {"name", "email", "sha256", "scope"[, "environments"]}, not %s`, abbreviate(raw))
		return nil, false
	}
	before := len(p.problems)
	for _, k := range sortedKeys(m) {
		if !slices.Contains(entryMembers, k) {
			p.add(at+pointer(k), "unknown member %q (a token has %s)", k, strings.Join(entryMembers, ", "))
		}
	}
	str := func(key string, check func(string) error) string {
		raw, ok := m[key]
		if !ok {
			p.add(at, "%q is missing", key)
			return ""
		}
		var s string
		if !isString(raw) || json.Unmarshal(raw, &s) != nil {
			p.add(at+pointer(key), "must be a string, not %s", abbreviate(raw))
			return ""
		}
		if err := check(s); err != nil {
			p.add(at+pointer(key), "%s %v", key, err)
		}
		return s
	}
	t := &Token{Name: str("name", CheckName), Email: str("email", CheckEmail)}
	hash := str("sha256", func(h string) (err error) { _, err = checkSHA256(h); return err })
	t.sum, _ = checkSHA256(hash)
	t.Write = str("scope", CheckScope) == "write"
	if raw, ok := m["environments"]; ok {
		var envs []json.RawMessage
		switch {
		case !isArray(raw) || json.Unmarshal(raw, &envs) != nil:
			p.add(at+"/environments", "must be an array of environment keys, not %s", abbreviate(raw))
		case len(envs) == 0:
			p.add(at+"/environments", "is empty: leave it out for a token of every environment")
		}
		for j, raw := range envs {
			var env string
			if !isString(raw) || json.Unmarshal(raw, &env) != nil {
				p.add(at+pointer("environments", j), "must be a string, not %s", abbreviate(raw))
				continue
			}
			if err := CheckEnvironment(env); err != nil {
				p.add(at+pointer("environments", j), "environment %v", err)
				continue
			}
			if slices.Contains(t.Environments, env) {
				p.add(at+pointer("environments", j), "environment %q is listed twice", env)
				continue
			}
			t.Environments = append(t.Environments, env)
		}
	}
	return t, len(p.problems) == before
}

func isObject(raw json.RawMessage) bool { return firstByte(raw) == '{' }
func isArray(raw json.RawMessage) bool  { return firstByte(raw) == '[' }
func isString(raw json.RawMessage) bool { return firstByte(raw) == '"' }

func firstByte(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// abbreviate shows a JSON value in a message, cut to 40 bytes.
func abbreviate(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 40 {
		s = strings.ToValidUTF8(s[:40], "") + "…"
	}
	return s
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// pointer builds an RFC 6901 JSON pointer from member names and indexes.
func pointer(tokens ...any) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		switch t := t.(type) {
		case int:
			b.WriteString(strconv.Itoa(t))
		case string:
			b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
		}
	}
	return b.String()
}

// position returns the 1-based line and byte column of offset in data.
func position(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}
