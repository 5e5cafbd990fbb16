package identities

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestDecodeTraitsFastRoundTrip: what encodeTraits writes decodes to the
// same traits through the fast path, and the same as through encoding/json.
func TestDecodeTraitsFastRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	values := []any{"pro", "", "a<b>&c", "quote\"d", "back\\slash", "ünïcode", "tab\there", true, false,
		int64(0), int64(-42), int64(math.MaxInt64), 1.5, -2.25e-7, 1e21, 3.0}
	keys := []string{"plan", "country", "a:b", "sp ace", "ü", "<tag>", "user_id", "x"}
	for n := range 500 {
		m := map[string]any{}
		for range r.IntN(len(keys) + 1) {
			m[keys[r.IntN(len(keys))]] = values[r.IntN(len(values))]
		}
		data, err := encodeTraits(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeTraits(data)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("case %d: %s decodes to %v (%v), want %v", n, data, got, err, m)
		}
		checkDecodeTraitsFast(t, data)
	}
	for _, k := range keys {
		checkAppendString(t, k)
	}
	for _, v := range values {
		if s, ok := v.(string); ok {
			checkAppendString(t, s)
		}
	}
	// The usual record takes the fast path.
	if _, ok := decodeTraitsFast([]byte(`{"beta":true,"n":7,"plan":"pro","score":1.5,"x":null}`)); !ok {
		t.Fatal("a plain record was refused by the fast path")
	}
}

// checkAppendString: appendString writes what json.Marshal writes.
func checkAppendString(t *testing.T, s string) {
	want, _ := json.Marshal(s)
	if got := appendString([]byte("x"), s); string(got) != "x"+string(want) {
		t.Fatalf("appendString(%q) = %s, want %s", s, got[1:], want)
	}
}

func checkDecodeTraitsFast(t *testing.T, data []byte) {
	fast, ok := decodeTraitsFast(data)
	if !ok {
		return
	}
	slow, err := decodeTraitsJSON(data)
	if err != nil {
		t.Fatalf("%q: the fast path accepts what encoding/json refuses: %v", data, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast %#v, encoding/json %#v", data, fast, slow)
	}
}

func FuzzDecodeTraitsFast(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":"x","b":true,"c":null,"d":-1.5e3}`, `{"a":1,"a":2}`,
		`{"a":"x:y"}`, `{"a":01}`, `{"a":tru}`, `{"\u00e9":1}`, `{"a":"\u00e9"}`, `{"a":1,}`, `{"a" :1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecodeTraitsFast(t, data)
		checkAppendString(t, string(data))
	})
}
