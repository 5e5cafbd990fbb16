package edit

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// Every document of the template is written in the style encode writes, so
// each one re-encodes byte for byte.
func TestTemplateRoundTrip(t *testing.T) {
	_, files := template(t)
	n := 0
	for p, data := range files {
		if !strings.HasSuffix(p, ".json") || strings.HasPrefix(p, "schemas/") {
			continue
		}
		n++
		doc, err := parseJSON(data)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got := doc.encode(); !bytes.Equal(got, data) {
			t.Errorf("%s re-encodes as\n%s", p, got)
		}
	}
	if n < 40 {
		t.Errorf("only %d template documents", n)
	}
}

func TestEncodeKeepsWhatWasWritten(t *testing.T) {
	in := `{"b": 60.0, "a": [1e2, 12345678901234567890123, -0], "c": "<a&b> é \u2028 \"q\"", "d": {}, "e": [], "f": null, "g": false}`
	doc, err := parseJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "b": 60.0,
  "a": [
    1e2,
    12345678901234567890123,
    -0
  ],
  "c": "<a&b> é \u2028 \"q\"",
  "d": {},
  "e": [],
  "f": null,
  "g": false
}
`
	if got := string(doc.encode()); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestParseJSONErrors(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a": 1, "a": 2}`, `{"a": {"b": 1, "b": 1}}`, `{} {}`, `[1,]`, `nul`, `{"a" 1}`} {
		if _, err := parseJSON([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := parseJSON([]byte(deep)); err != nil {
		t.Errorf("%d levels: %v", maxDepth, err)
	}
	deep = strings.Repeat("[", 1<<20)
	if _, err := parseJSON([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("%d levels: %v", 1<<20, err)
	}
	_, err := parseJSON([]byte(`{"a": [{"x~/": 1, "x~/": 2}]}`))
	if err == nil || !strings.Contains(err.Error(), "/a/0/x~0~1") {
		t.Errorf("duplicate key error %v does not point at /a/0/x~0~1", err)
	}
}

func TestSetKeepsOrder(t *testing.T) {
	doc, _ := parseJSON([]byte(`{"$schema": "s", "value": 1, "zzz": 2}`))
	doc.set("enabled", boolNode(true), stateOrder)
	doc.set("weights", objectNode(), stateOrder)
	doc.set("$schema", stringNode("t"), stateOrder)
	doc.set("other", stringNode("x"), stateOrder)
	var keys []string
	for _, f := range doc.fields {
		keys = append(keys, f.key)
	}
	if got := strings.Join(keys, " "); got != "$schema enabled value weights zzz other" {
		t.Errorf("keys in order %s", got)
	}
	if doc.get("$schema").text != "t" {
		t.Error("set did not replace $schema")
	}
}

// FuzzRoundTrip: whatever parses encodes into JSON that parses to the same
// document and encodes to the same bytes.
func FuzzRoundTrip(f *testing.F) {
	_, files := template(f)
	for p, data := range files {
		if strings.HasSuffix(p, ".json") {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"a": [1.50, "\u0000\ud800", {"": null}], "b": true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := parseJSON(data)
		if err != nil {
			return
		}
		enc := doc.encode()
		again, err := parseJSON(enc)
		if err != nil {
			t.Fatalf("encoded document does not parse: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(doc, again) {
			t.Fatalf("round trip changed the document:\n%s", enc)
		}
		if !bytes.Equal(again.encode(), enc) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, again.encode())
		}
	})
}
