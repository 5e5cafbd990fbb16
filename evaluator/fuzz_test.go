package evaluator

import (
	"bytes"
	"encoding/json"
	"github.com/gitflags/gitflags/flagrepo/condition"
	"strings"
	"testing"
)

func decodeTraits(s string) map[string]any {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return map[string]any{"t": s}
	}
	return m
}

// FuzzEvaluate evaluates a segment with an arbitrary condition against
// arbitrary traits and identity. It must never panic, and the single-flag
// path must agree with the full evaluation.
func FuzzEvaluate(f *testing.F) {
	seeds := []struct {
		traits, prop, op, value, identifier, key string
		hasID                                    bool
	}{
		{`{"t":"NaN"}`, "t", OpEqual, "nan", "u", "", true},
		{`{"t":"Inf"}`, "t", OpGreaterThan, "inf", "u", "", true},
		{`{"t":"1e309"}`, "t", OpLessThan, "1e309", "u", "", true},
		{`{"t":1e308}`, "t", OpModulo, "1e-308|0", "u", "", true},
		{`{"t":{"a":{"b":[1,2,{"c":null}]}}}`, "$.identity.traits.t.a.b[2].c", OpIsSet, "", "u", "k", true},
		{`{"t":[1,"x",true]}`, "t", OpIn, `[1,"x",true]`, "u", "", true},
		{`{"t":"` + strings.Repeat("é", 3000) + `"}`, "t", OpRegex, "(é)+$", "u", "", true},
		{`{"サイズ":"medium"}`, "$.identity.traits.サイズ", OpEqual, "medium", "u", "", true},
		{`{"t":"1.0.0-rc.1+b"}`, "t", OpLessThan, "1.0.0:semver", "u", "", true},
		{`{"t":-7.5}`, "t", OpModulo, "-2|-1.5", "u", "", true},
		{`{"t":99999999999999999999999}`, "t", OpIn, "99999999999999999999999", "u", "", true},
		{`{}`, "", OpPercentageSplit, "50", "", "", false},
		{`{"t":null}`, "t", OpIsNotSet, "", "123", "", true},
		{`not json`, "$['identity']['traits']['t']", OpContains, "json", "u", "", true},
		{`{"$.identity.identifier":"x"}`, "$.identity.identifier", OpIn, "x", "007", "", true},
		{`{"t":true}`, "t", "BOGUS", "", "u", "", true},
	}
	for _, s := range seeds {
		f.Add(s.traits, s.prop, s.op, s.value, s.identifier, s.key, s.hasID)
	}
	f.Fuzz(func(t *testing.T, traits, prop, op, value, identifier, key string, hasID bool) {
		cond := Condition{Property: prop, Operator: op, Value: value}
		env := &Environment{
			Key: "env", Name: "fuzz",
			Features: []Feature{
				{Key: "1", Name: "plain", Value: "p"},
				{Key: "2", Name: "target", Value: "t", Metadata: map[string]any{"x": 1}},
				{Key: "3", Name: "mv", Value: "c", Variants: []Variant{{Key: "a", Value: "A", Weight: 50, Priority: 1}}},
			},
			Segments: []Segment{
				{Key: value, Name: "fuzz", Rules: []Rule{{Type: RuleAll, Conditions: []Condition{cond}}},
					Overrides: []Override{{Name: "target", Value: "seg", Variants: []Variant{{Value: "V", Weight: 30}}}}},
				{Key: prop, Name: "nested", Rules: []Rule{{Type: RuleNone, Rules: []Rule{{Type: RuleAny, Conditions: []Condition{cond, cond}}}}},
					Overrides: []Override{{Name: "mv", Value: "n", Priority: prio(-1)}}},
				{Key: "empty", Name: "empty"},
			},
			IdentityOverrides: map[string][]Override{identifier: {{Name: "plain", Value: "mine"}}},
		}
		m, err := Compile(env)
		if err != nil {
			if op != OpRegex {
				t.Fatalf("Compile failed for %s: %v", op, err)
			}
			if condition.Check(op, value) == nil {
				t.Fatalf("Compile rejected what condition.Check accepts: %v", err)
			}
			return
		}
		_ = condition.Check(op, value)
		var id *Identity
		if hasID {
			id = &Identity{Identifier: identifier, Key: key, Traits: decodeTraits(traits)}
		}
		r := m.Evaluate(id)
		if len(r.Flags) != 3 {
			t.Fatalf("got %d flags", len(r.Flags))
		}
		for _, fl := range r.Flags {
			one, ok := m.Flag(fl.Name, id)
			if !ok || one.Value != fl.Value || one.Reason != fl.Reason || one.Variant != fl.Variant || one.Enabled != fl.Enabled {
				t.Fatalf("Flag(%q) = %+v; Evaluate: %+v", fl.Name, one, fl)
			}
		}
		buf := m.AppendFlags(nil, id)
		for i := range buf {
			if buf[i].Value != r.Flags[i].Value || buf[i].Reason != r.Flags[i].Reason {
				t.Fatalf("AppendFlags[%d] = %+v; Evaluate: %+v", i, buf[i], r.Flags[i])
			}
		}
		for _, s := range r.Segments {
			if s.Name == "empty" {
				t.Fatal("segment without rules matched")
			}
		}
		if p := HashedPercentage(prop, value, traits); p < 0 || p >= 100 {
			t.Fatalf("HashedPercentage = %v", p)
		}
	})
}

// FuzzCompile compiles arbitrary JSON-described environments and evaluates
// them; nothing may panic.
func FuzzCompile(f *testing.F) {
	f.Add([]byte(`{"Key":"k","Name":"n","Features":[{"Key":"1","Name":"a","Value":1,"Variants":[{"Value":"x","Weight":1e308,"Priority":-1},{"Value":"y","Weight":-50}]}],
		"Segments":[{"Key":"s","Name":"s","Rules":[{"Type":"ANY","Conditions":[{"Property":"$.identity.traits['x']","Operator":"IN","Value":"[1,2"}],
		"Rules":[{"Type":"NONE","Rules":[{"Type":"ALL"}]}]}],"Overrides":[{"Name":"a","Priority":1e999}]}],
		"IdentityOverrides":{"u":[{"Name":"a"},{"Name":"missing"}]}}`), `{"x":"1","y":[{}],"z":null}`)
	f.Add([]byte(`{"Segments":[{"Rules":[{"Type":"ALL","Conditions":[{"Operator":"REGEX","Value":"\\"}]}]}]}`), `{}`)
	f.Add([]byte(`{"Features":[{"Name":"a"}],"Segments":[{"Rules":[{"Type":"ALL","Conditions":[{"Operator":"MODULO","Value":"nan|nan","Property":"t"}]}],"Overrides":[{"Name":"a","Variants":[{"Weight":"x"}]}]}]}`), `{"t":"1.5"}`)
	f.Fuzz(func(t *testing.T, envJSON []byte, traits string) {
		var env Environment
		dec := json.NewDecoder(bytes.NewReader(envJSON))
		dec.UseNumber()
		if err := dec.Decode(&env); err != nil {
			return
		}
		m, err := Compile(&env)
		if err != nil {
			return
		}
		_ = m.Evaluate(nil)
		for _, id := range []*Identity{
			{Identifier: "u", Traits: decodeTraits(traits)},
			{Identifier: "", Key: "k"},
		} {
			r := m.Evaluate(id)
			if len(r.Flags) != len(env.Features) {
				t.Fatalf("%d flags for %d features", len(r.Flags), len(env.Features))
			}
			for _, fe := range env.Features {
				if _, ok := m.Flag(fe.Name, id); !ok {
					t.Fatalf("Flag(%q) missing", fe.Name)
				}
			}
		}
	})
}
