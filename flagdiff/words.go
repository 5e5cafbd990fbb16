package flagdiff

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gitflags/gitflags/flagrepo"
)

// code returns s as a Markdown code span, with a fence longer than any run
// of backticks in s.
func code(s string) string {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if longest == 0 {
		return "`" + s + "`"
	}
	fence := strings.Repeat("`", longest+1)
	return fence + " " + s + " " + fence
}

// jsonText returns the JSON text of v (values are strings, integers,
// booleans or null).
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// raw returns v as raw JSON for Change.Before and After.
func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}

// val formats a flag value for a message: its JSON text as code.
func val(v any) string { return code(jsonText(v)) }

// onOff says whether a flag is on.
func onOff(enabled bool) string {
	if enabled {
		return "on"
	}
	return "off"
}

// num formats a weight or a percentage as written (50, 12.5).
func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// pct formats a share of identities with at most one decimal: 19.994 is
// "20%", 0.04 is "0.04%" rather than "0%" so that a small move still shows.
func pct(f float64) string {
	switch {
	case f == 0:
		return "0%"
	case f < 0.1:
		return strconv.FormatFloat(f, 'f', 2, 64) + "%"
	}
	return strconv.FormatFloat(math.Round(f*10)/10, 'f', -1, 64) + "%"
}

// plural returns "1 feature" or "3 features".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// list joins names as code spans, at most limit of them ("`a`, `b` and 3
// more").
func list(names []string, limit int) string {
	var parts []string
	for i, n := range names {
		if i == limit {
			parts = append(parts, fmt.Sprintf("%d more", len(names)-limit))
			break
		}
		parts = append(parts, code(n))
	}
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return parts[0]
	}
	return joinAnd(parts)
}

// splitText describes a split: "one_page 10%, express 10%".
func splitText(bs []band) string {
	if len(bs) == 0 {
		return "no variants"
	}
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = b.key + " " + num(b.weight) + "%"
	}
	return strings.Join(parts, ", ")
}

// weightChanges describes the weights that differ between two splits:
// "standard 50% -> 30%, premium 20% -> 40%".
func weightChanges(before, after []band) string {
	w := func(bs []band, key string) (float64, bool) {
		for _, b := range bs {
			if b.key == key {
				return b.weight, true
			}
		}
		return 0, false
	}
	var parts []string
	seen := map[string]bool{}
	for _, bs := range [][]band{before, after} {
		for _, b := range bs {
			if seen[b.key] {
				continue
			}
			seen[b.key] = true
			x, inBefore := w(before, b.key)
			y, inAfter := w(after, b.key)
			switch {
			case !inBefore:
				parts = append(parts, fmt.Sprintf("%s (new) %s%%", b.key, num(y)))
			case !inAfter:
				parts = append(parts, fmt.Sprintf("%s %s%% (removed)", b.key, num(x)))
			case x != y:
				parts = append(parts, fmt.Sprintf("%s %s%% -> %s%%", b.key, num(x), num(y)))
			}
		}
	}
	return strings.Join(parts, ", ")
}

// movesText describes the largest moves: "20% of identities move from
// standard to premium".
func movesText(total float64, ms []Move, of string) string {
	if total == 0 {
		return "no identity changes variant"
	}
	if len(ms) == 1 {
		return fmt.Sprintf("%s of %s move from %s to %s", pct(ms[0].Percent), of, ms[0].From, ms[0].To)
	}
	var parts []string
	for i, m := range ms {
		if i == 3 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s to %s", pct(m.Percent), m.From, m.To))
	}
	return fmt.Sprintf("%s of %s change variant (%s)", pct(total), of, strings.Join(parts, ", "))
}

// conditionText describes a condition: "plan IN enterprise".
func conditionText(c flagrepo.Condition) string {
	v := c.Value
	if c.Operator == "IN" {
		v = strings.Join(inItems(c.Value), ",")
	}
	switch {
	case c.Operator == "PERCENTAGE_SPLIT" && c.Property == "":
		return "PERCENTAGE_SPLIT " + v + " (on the identity)"
	case c.Operator == "IS_SET" || c.Operator == "IS_NOT_SET":
		return c.Property + " " + c.Operator
	}
	return c.Property + " " + c.Operator + " " + v
}

// inItems reads an IN condition's value as its items: a JSON array (a value
// starting with "[") or a comma-separated list, as the engine reads it.
func inItems(v string) []string {
	if strings.HasPrefix(v, "[") {
		var items []any
		dec := json.NewDecoder(strings.NewReader(v))
		dec.UseNumber()
		if err := dec.Decode(&items); err == nil {
			out := make([]string, len(items))
			for i, it := range items {
				out[i] = fmt.Sprint(it)
			}
			return out
		}
	}
	return strings.Split(v, ",")
}
