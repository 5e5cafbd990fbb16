package served

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestAppendJSON: AppendJSONString and AppendJSONValue write what
// encoding/json writes (without HTML escaping).
func TestAppendJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s", "\x00\x01\x1f\n\r\t", "é😀", "bad\xff\xfeend", "\u2028\u2029", "<&>", "\x7f"} {
		var want bytes.Buffer
		e := json.NewEncoder(&want)
		e.SetEscapeHTML(false)
		_ = e.Encode(s)
		if got := string(AppendJSONString(nil, s)); got != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("%q: %s, want %s", s, got, want.String())
		}
	}
	for _, v := range []any{nil, "s", true, int64(-5), 7, 2.5, 3.0, 1e300, json.Number("12"), []any{"x"}} {
		want, _ := json.Marshal(v)
		if got := string(AppendJSONValue(nil, v)); got != string(want) {
			t.Errorf("%#v: %s, want %s", v, got, want)
		}
	}
}
