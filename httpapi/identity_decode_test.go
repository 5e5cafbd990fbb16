package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

var identityFastSeeds = []string{
	`{"identifier": "user-1", "traits": [{"trait_key": "plan", "trait_value": "pro"}, {"trait_key": "n", "trait_value": -12.5e3, "transient": true}], "transient": false}`,
	`{"identifier":"u","traits":[]}`,
	`{"identifier":"u","traits":[{"trait_key":"a","trait_value":null},{"trait_key":"b","trait_value":true},{"trait_key":"c","trait_value":0}]}`,
	` { "identifier" : "u" } `,
	`{}`,
	`{"traits":[{}]}`,
	`{"identifier":"u","identifier":"v"}`,
	`{"identifier":"caf\u00e9"}`,
	`{"Identifier":"u"}`,
	`{"identifier":null}`,
	`{"identifier":"u","traits":[{"trait_key":"a","trait_value":{"x":1}}]}`,
	`{"identifier":"u","traits":[{"trait_key":"a","trait_value":01}]}`,
	`{"identifier":"u","traits":[{"trait_key":"a","trait_value":1.}]}`,
	`{"identifier":"u","traits":[{"trait_key":"a","trait_value":-}]}`,
	`{"identifier":"u"} x`,
	`{"identifier":"u",}`,
	`[{"identifier":"u"}]`,
	`{"identifier":"u","traits":[{"trait_key":"a","trait_value":"x","extra":1}]}`,
	"{\"identifier\":\"a\tb\"}",
	`{"identifier":"u","transient":true,"transient":false}`,
	`{"identifier":"u","traits":[{"trait_key":"a","trait_value":truex}]}`,
}

// TestIdentityFastDecode: the fast decoder takes the common shape, and
// hands everything else to encoding/json.
func TestIdentityFastDecode(t *testing.T) {
	accepted := map[string]bool{
		identityFastSeeds[0]: true, identityFastSeeds[1]: true, identityFastSeeds[2]: true,
		identityFastSeeds[3]: true, identityFastSeeds[4]: true, identityFastSeeds[5]: true,
	}
	for _, in := range identityFastSeeds {
		var req identityRequest
		if got := decodeIdentityFast([]byte(in), &req); got != accepted[in] {
			t.Errorf("decodeIdentityFast(%s) = %v, want %v", in, got, accepted[in])
		}
		checkFastDecode(t, []byte(in))
	}
}

// checkFastDecode fails when the fast decoder accepts data and its result
// differs from encoding/json's.
func checkFastDecode(t *testing.T, data []byte) {
	var fast identityRequest
	if !decodeIdentityFast(data, &fast) {
		if !reflect.DeepEqual(fast, identityRequest{}) {
			t.Fatalf("%q: refused, but changed the request: %+v", data, fast)
		}
		return
	}
	var slow identityRequest
	if err := json.Unmarshal(data, &slow); err != nil {
		t.Fatalf("%q: accepted by the fast decoder, refused by encoding/json: %v", data, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast decoder gives %#v, encoding/json %#v", data, fast, slow)
	}
}

func FuzzIdentityFastDecode(f *testing.F) {
	for _, s := range identityFastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkFastDecode(t, data) })
}

// FuzzPlainJSONString: a string plainJSONString takes as its own value is
// what encoding/json decodes it to.
func FuzzPlainJSONString(f *testing.F) {
	for _, s := range []string{`"pro"`, `""`, `"a\"b"`, `"caf` + "\xc3\xa9" + `"`, "\"\xff\"", "\"\x7f\"", "\"tab\t\"", `"x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !plainJSONString(raw) {
			return
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("%q: taken as plain, refused by encoding/json: %v", raw, err)
		}
		if s != string(raw[1:len(raw)-1]) {
			t.Fatalf("%q: encoding/json decodes %q", raw, s)
		}
	})
}

// FuzzCheckText: checkText refuses a JSON text exactly when encoding/json
// would replace some of its text with U+FFFD (a byte that is not UTF-8, or
// an escaped lone surrogate), and then names a place.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{
		`{"identifier":"caf\u00e9"}`, "{\"identifier\":\"col\xff\"}", `{"a":["\ud800"]}`, `"\ud83d\ude00"`,
		`{"k":"\\ud800"}`, `["\udc00\ud800"]`, "{\"\xfe\":1}", `{"x":"\ufffd"}`, "[\"\xef\xbf\xbd\"]", `{"a":{"b":[1,"\uD800\uDC00\uDBFF"]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		replaced := false
		dec := json.NewDecoder(bytes.NewReader(data))
		prev := int64(0)
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			raw := []byte(string(data[prev:dec.InputOffset()]))
			for i, c := range raw { // ASCII only: strings.ToLower would replace bytes that are not UTF-8
				if c >= 'A' && c <= 'Z' {
					raw[i] = c + 'a' - 'A'
				}
			}
			prev = dec.InputOffset()
			if s, ok := tok.(string); ok && strings.Count(s, "\ufffd") > bytes.Count(raw, []byte("\ufffd"))+bytes.Count(raw, []byte(`\ufffd`)) {
				replaced = true
			}
		}
		rerr := checkText(data)
		if (rerr != nil) != replaced {
			t.Fatalf("%q: checkText %v, but encoding/json replaces text: %v", data, rerr, replaced)
		}
		if rerr != nil && (rerr.status != 400 || !strings.HasSuffix(rerr.msg, " is not valid UTF-8") && !strings.Contains(rerr.msg, ", a lone surrogate: ")) {
			t.Fatalf("%q: %d %q", data, rerr.status, rerr.msg)
		}
	})
}
