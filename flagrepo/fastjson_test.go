package flagrepo

import (
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/repogen"
)

// slowTree is what decodeDocument's slow path reads: the value, whether the
// document is well formed with nothing after it, and its repeated keys.
func slowTree(data []byte) (v any, wellFormed bool, dups int) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, false, 0
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, false, 0
	}
	ptrs, _ := duplicateKeys(data)
	return v, true, len(ptrs)
}

// checkTree checks parseTree's promise on one input: when it parses, the
// slow path reads the same value, well formed and without repeated keys.
func checkTree(t *testing.T, data []byte) (parsed bool) {
	t.Helper()
	v, ok := parseTree(data, nil)
	if !ok {
		return false
	}
	// With an arena used before, the same tree.
	a := new(treeArena)
	parseTree([]byte(`{"x": [1, {"y": [2]}], "z": {}}`), a)
	a.release()
	if av, aok := parseTree(data, a); !aok || !reflect.DeepEqual(av, v) {
		t.Fatalf("%q: parseTree with an arena gives %#v, %v; without %#v", data, av, aok, v)
	}
	a.release()
	want, wellFormed, dups := slowTree(data)
	if !wellFormed || dups > 0 {
		t.Fatalf("%q: parseTree accepts what encoding/json rejects (well formed %v, %d repeated keys)", data, wellFormed, dups)
	}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("%q: parseTree gives %#v, encoding/json %#v", data, v, want)
	}
	return true
}

func TestParseTree(t *testing.T) {
	cases := []struct {
		doc    string
		parsed bool
	}{
		{`{}`, true},
		{` {"a": [1, -0, 0.5, 1e5, -2E-3, 12.50, true, false, null, "x", {}, []]} `, true},
		{`{"esc": "\" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00 \u0000"}`, true},
		{`{"utf8": "é😀"}`, true},
		{`{"enabled": true, "id": 1, "segment_overrides": [{"segment": "s", "priority": 1, "enabled": false}]}`, true},
		{`[1, 2]`, true},
		{`"s"`, true},
		{`{"a": 1, "a": 2}`, false},         // repeated key: the slow path reports it
		{`{"a": {"b": 1, "b": 1}}`, false},  // nested repeated key
		{`{"lone": "\ud800"}`, false},       // encoding/json replaces it
		{`{"lone": "\udc00\ud800"}`, false}, // reversed pair
		{"{\"bad\": \"\xff\"}", false},      // invalid UTF-8
		{"{\"ctl\": \"\x01\"}", false},      // control character
		{`{"a": 01}`, false},                // leading zero
		{`{"a": 1.}`, false},                // no fraction digits
		{`{"a": .5}`, false},                // no integer digits
		{`{"a": 1e}`, false},                // no exponent digits
		{`{"a": -}`, false},                 // sign only
		{`{"a": tru}`, false},               // truncated literal
		{`{"a": 1,}`, false},                // trailing comma
		{`[1,]`, false},                     // trailing comma
		{`{"a" 1}`, false},                  // no colon
		{`{"a": 1} x`, false},               // data after the document
		{`{"a": 1}{}`, false},               // a second document
		{`{"a": "\x"}`, false},              // unknown escape
		{`{"a": "\u12"}`, false},            // short \u
		{`{"a": 1`, false},                  // unterminated
		{``, false},                         // empty
		{strings.Repeat("[", 300) + strings.Repeat("]", 300), false}, // deeper than the fast path goes
	}
	for _, c := range cases {
		if got := checkTree(t, []byte(c.doc)); got != c.parsed {
			t.Errorf("%.60q: parsed %v, want %v", c.doc, got, c.parsed)
		}
	}
}

func FuzzParseTree(f *testing.F) {
	for _, c := range validRepo() {
		f.Add([]byte(c))
	}
	f.Add([]byte(`{"a": "\ud83d\ude00", "b": [1, 2.5e-3, null]}`))
	f.Add([]byte(`{"a": 1, "a": 2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkTree(t, data)
	})
}

// TestArenaLeavesSnapshotsIntact loads generated repositories with the
// trees recycled and without, and checks the documents are the same: typed
// documents keep nothing of the recycled trees (a slice kept would be
// emptied, or refilled by the next document).
func TestArenaLeavesSnapshotsIntact(t *testing.T) {
	load := func(dir string) *Snapshot {
		files, err := DirFiles(dir)
		if err != nil {
			t.Fatal(err)
		}
		snap, err := Load(Revision{}, files, nil)
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	small := repogen.Small()
	if err := repogen.Write(a, small); err != nil {
		t.Fatal(err)
	}
	other := small
	other.Seed++
	if err := repogen.Write(b, other); err != nil {
		t.Fatal(err)
	}
	recycleTrees = false
	want := load(a)
	recycleTrees = true
	got := load(a)
	load(b)
	if !reflect.DeepEqual(want.Features, got.Features) {
		t.Error("features differ when their trees are recycled")
	}
	for k, e := range want.Environments {
		if !reflect.DeepEqual(got.Environments[k].Features, e.Features) {
			t.Errorf("environment %s: feature states differ when their trees are recycled", k)
		}
	}
}
