package flagrepo

import (
	"errors"
	"strings"
	"testing"
)

// FuzzLoadFile feeds arbitrary bytes as each kind of document into a
// repository and checks that loading never panics and that every problem names
// a file and a position inside it.
func FuzzLoadFile(f *testing.F) {
	for _, c := range validRepo() {
		f.Add(0, c)
	}
	f.Add(1, `{"id": 1, "rules": [{"type": "ALL", "conditions": [{"property": "$.x", "operator": "REGEX", "value": "(?i)a["}]}]}`)
	f.Add(2, `{"segment_overrides": [{"segment": "beta", "priority": 1, "enabled": true, "weights": {"express": 1e400}}]}`)
	f.Add(3, "{\"id\": 1, \"a\": {\"a\": {\"a\": [[[[[[\"\\u00e9\\ud800\"]]]]]]}}}")
	f.Add(4, `{"id": 30, "name": "x", "client_key": "abcdefgh", "server_keys": [{"name": "a", "sha256": "`+strings.Repeat("a", 64)+`"}]}`)
	paths := []string{
		"features/limit.json",
		"segments/staff.json",
		"environments/prod/features/checkout.json",
		"environments/dev/environment.json",
		"gitflags.json",
	}
	f.Fuzz(func(t *testing.T, which int, content string) {
		if which < 0 {
			which = -which
		}
		m := validRepo()
		path := paths[which%len(paths)]
		m[path] = content
		snap, err := Load(Revision{}, memFiles(m), nil)
		if err == nil {
			if snap == nil {
				t.Fatal("nil snapshot without error")
			}
			return
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("want a ValidationError, got %T %v", err, err)
		}
		if len(ve.Problems) == 0 {
			t.Fatal("ValidationError without problems")
		}
		lines := strings.Count(content, "\n") + 1
		for _, p := range ve.Problems {
			if p.File == "" || p.Message == "" {
				t.Fatalf("problem without file or message: %+v", p)
			}
			if p.File == path && (p.Line > lines || p.Line < 0 || p.Column < 0) {
				t.Fatalf("problem position %d:%d outside a %d-line file: %+v", p.Line, p.Column, lines, p)
			}
		}
	})
}

// FuzzLocate checks the pointer locator and duplicate-key finder on arbitrary
// input: no panics, offsets inside the data.
func FuzzLocate(f *testing.F) {
	f.Add(`{"a": [1, {"b": 2, "b": 3}]}`, "/a/1/b")
	f.Add(`{"a~b": {"c/d": 1}}`, "/a~0b/c~1d")
	f.Add(`[`, "/0")
	f.Fuzz(func(t *testing.T, data, ptr string) {
		off := locate([]byte(data), ptr)
		if off < 0 || off > len(data) {
			t.Fatalf("offset %d outside %d bytes", off, len(data))
		}
		_, offs := duplicateKeys([]byte(data))
		for _, o := range offs {
			if o < 0 || o > len(data) {
				t.Fatalf("duplicate offset %d outside %d bytes", o, len(data))
			}
		}
	})
}
