package served

import (
	"encoding/json"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
)

// TestConditionValue: an IN list from a JSON array is comma-separated text
// when that splits back into the same list, else the array's JSON text.
func TestConditionValue(t *testing.T) {
	for _, c := range []struct{ raw, value, want string }{
		{`["pro","enterprise"]`, `["pro","enterprise"]`, "pro,enterprise"},
		{`["a,b","c"]`, `["a,b","c"]`, `["a,b","c"]`},
		{`["[x","y"]`, `["[x","y"]`, `["[x","y"]`},
		{`[]`, `[]`, `[]`},
		{`[""]`, `[""]`, ``},
		{`"a,b"`, `a,b`, `a,b`},
		{`[1, 2]`, `["1","2"]`, `1,2`},
	} {
		got := ConditionValue(&flagrepo.Condition{Operator: "IN", RawValue: json.RawMessage(c.raw), Value: c.value})
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.raw, got, c.want)
		}
	}
}
