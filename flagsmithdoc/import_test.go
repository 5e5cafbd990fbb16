package flagsmithdoc

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// doc returns a small valid environment document as a JSON tree, for
// tests to change.
func doc() map[string]any {
	return map[string]any{
		"id": 1, "api_key": "EnvKey0123456789abcdef", "name": "Production",
		"use_identity_composite_key_for_hashing": true, "use_identity_overrides_in_local_eval": true,
		"hide_disabled_flags": nil,
		"project": map[string]any{
			"id": 2, "name": "Shop", "hide_disabled_flags": false, "server_key_only_feature_ids": []any{},
			"organisation": map[string]any{"id": 3, "name": "Org", "stop_serving_flags": false},
			"segments": []any{
				map[string]any{"id": 10, "name": "beta", "rules": []any{
					map[string]any{"type": "ALL", "rules": []any{}, "conditions": []any{
						map[string]any{"operator": "EQUAL", "property_": "plan", "value": "beta"},
					}},
				}, "feature_states": []any{
					map[string]any{"feature": map[string]any{"id": 100, "name": "flag", "type": "STANDARD"}, "enabled": true, "django_id": 1001,
						"feature_segment": map[string]any{"priority": 0}, "feature_state_value": "beta value", "multivariate_feature_state_values": []any{}},
				}},
			},
		},
		"feature_states": []any{
			map[string]any{"feature": map[string]any{"id": 100, "name": "flag", "type": "STANDARD"}, "enabled": true, "django_id": 500,
				"feature_state_value": "on", "multivariate_feature_state_values": []any{}},
			map[string]any{"feature": map[string]any{"id": 101, "name": "mv", "type": "MULTIVARIATE"}, "enabled": true, "django_id": 501,
				"feature_state_value": "control", "multivariate_feature_state_values": []any{
					map[string]any{"id": 7001, "percentage_allocation": 30.0, "multivariate_feature_option": map[string]any{"id": 61, "value": "a"}},
					map[string]any{"id": 7002, "percentage_allocation": 20.0, "multivariate_feature_option": map[string]any{"id": 62, "value": "b"}},
				}},
		},
		"identity_overrides": []any{
			map[string]any{"identifier": "alice", "identity_features": []any{
				map[string]any{"feature": map[string]any{"id": 100, "name": "flag", "type": "STANDARD"}, "enabled": false, "django_id": 900,
					"feature_state_value": "off", "multivariate_feature_state_values": []any{}},
			}, "identity_traits": []any{}},
		},
	}
}

// at walks a JSON tree along a path of keys and indexes.
func at(v any, path ...any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			v = v.(map[string]any)[p]
		case int:
			v = v.([]any)[p]
		}
	}
	return v
}

func obj(v any, path ...any) map[string]any { return at(v, path...).(map[string]any) }

func source(t *testing.T, name string, d any) Source {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return Source{Name: name, Data: b}
}

func TestImportSmallDocument(t *testing.T) {
	res, err := Import([]Source{source(t, "prod.json", doc())})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Issues) != 0 {
		t.Fatalf("issues: %v", res.Issues)
	}
	snap := res.Snapshot
	f := snap.Features["mv"]
	if f == nil || f.ID != 501 || len(f.Variants) != 2 || f.Variants[0].ID != 61 || f.Variants[0].Key != "a" || f.Variants[0].Weight != 30 {
		t.Fatalf("mv: %+v", f)
	}
	if snap.Features["flag"].ID != 100 || snap.Segments["beta"].ID != 10 {
		t.Errorf("ids not kept: %+v %+v", snap.Features["flag"], snap.Segments["beta"])
	}
	e := snap.Environments["production"]
	if e == nil || e.ID != 1 || e.ClientKey != "EnvKey0123456789abcdef" || e.Name != "Production" {
		t.Fatalf("environment: %+v", e)
	}
	st := e.Features["flag"]
	if st == nil || len(st.SegmentOverrides) != 1 || st.SegmentOverrides[0].Segment != "beta" || len(st.IdentityOverrides) != 1 || st.IdentityOverrides[0].Identifiers[0] != "alice" {
		t.Fatalf("flag's state: %+v", st)
	}
	want := `{
  "$schema": "../schemas/feature.schema.json",
  "id": 501,
  "default": {
    "enabled": true,
    "value": "control"
  },
  "variants": [
    {
      "id": 61,
      "key": "a",
      "value": "a",
      "weight": 30
    },
    {
      "id": 62,
      "key": "b",
      "value": "b",
      "weight": 20
    }
  ]
}
`
	if got := string(res.Files["features/mv.json"]); got != want {
		t.Errorf("features/mv.json:\n%s\nwant\n%s", got, want)
	}
	for _, p := range []string{"schemas/feature.schema.json", "schemas/segment.schema.json", "schemas/environment.schema.json", "schemas/environment-feature.schema.json", "schemas/gitflags.schema.json"} {
		if len(res.Files[p]) == 0 {
			t.Errorf("%s not written", p)
		}
	}
	if len(res.Changes) != 2 || !strings.Contains(res.Changes[0].Message, "its id is 501") || !strings.Contains(res.Changes[1].Message, "gitflags names the variants a, b") {
		t.Errorf("changes: %v", res.Changes)
	}
}

// TestImportBadInput: input that is not a readable document is an
// InputError naming the source and where, never a panic or a partial
// import.
func TestImportBadInput(t *testing.T) {
	cases := []struct {
		name   string
		data   func() any // nil: raw
		raw    string
		wanted []string
	}{
		{name: "not JSON", raw: "{\"id\": 1,\n \"api_key\": }", wanted: []string{"s.json: invalid JSON at line 2"}},
		{name: "empty", raw: "", wanted: []string{"empty file"}},
		{name: "trailing data", raw: `{"api_key": "x"} {}`, wanted: []string{"more data after"}},
		{name: "a number", raw: `42`, wanted: []string{"the file holds the number 42"}},
		{name: "other object", raw: `{"flags": []}`, wanted: []string{"not a Flagsmith environment document"}},
		{name: "deep", raw: strings.Repeat("[", 100) + strings.Repeat("]", 100), wanted: []string{"nested more than"}},
		{name: "no feature_states", data: func() any { d := doc(); delete(d, "feature_states"); return d }, wanted: []string{`s.json: missing required field "feature_states"`}},
		{name: "no project", data: func() any { d := doc(); delete(d, "project"); return d }, wanted: []string{`missing required field "project"`}},
		{name: "state without feature", data: func() any {
			d := doc()
			delete(obj(d, "feature_states", 0), "feature")
			return d
		}, wanted: []string{`s.json: /feature_states/0: missing required field "feature"`}},
		{name: "enabled not a boolean", data: func() any {
			d := doc()
			obj(d, "feature_states", 0)["enabled"] = "yes"
			return d
		}, wanted: []string{`/feature_states/0/enabled: must be true or false, not a string`}},
		{name: "id not an integer", data: func() any {
			d := doc()
			obj(d, "feature_states", 0, "feature")["id"] = 1.5
			return d
		}, wanted: []string{`/feature_states/0/feature/id: id 1.5 is not an integer from 1 to`}},
		{name: "allocation not a number", data: func() any {
			d := doc()
			obj(d, "feature_states", 1, "multivariate_feature_state_values", 0)["percentage_allocation"] = "30"
			return d
		}, wanted: []string{`/feature_states/1/multivariate_feature_state_values/0/percentage_allocation: must be a number`}},
		{name: "option without id", data: func() any {
			d := doc()
			delete(obj(d, "feature_states", 1, "multivariate_feature_state_values", 0, "multivariate_feature_option"), "id")
			return d
		}, wanted: []string{`multivariate option without an "id"`}},
		{name: "mv value without id or uuid", data: func() any {
			d := doc()
			delete(obj(d, "feature_states", 1, "multivariate_feature_state_values", 0), "id")
			return d
		}, wanted: []string{`needs an "id" or an "mv_fs_value_uuid"`}},
		{name: "condition value not text", data: func() any {
			d := doc()
			obj(d, "project", "segments", 0, "rules", 0, "conditions", 0)["value"] = 5
			return d
		}, wanted: []string{`/project/segments/0/rules/0/conditions/0/value: a condition value must be a string or null`}},
		{name: "segments not a list", data: func() any {
			d := doc()
			obj(d, "project")["segments"] = map[string]any{}
			return d
		}, wanted: []string{`/project/segments: must be a list, not an object`}},
		{name: "feature state twice", data: func() any {
			d := doc()
			d["feature_states"] = append(d["feature_states"].([]any), at(d, "feature_states", 0))
			return d
		}, wanted: []string{`feature "flag" has two states in one environment`}},
		{name: "feature renamed inside", data: func() any {
			d := doc()
			obj(d, "project", "segments", 0, "feature_states", 0, "feature")["name"] = "other"
			return d
		}, wanted: []string{`feature id 100 is named "other" here and "flag"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(c.raw)
			if c.data != nil {
				data, _ = json.Marshal(c.data())
			}
			res, err := Import([]Source{{Name: "s.json", Data: data}})
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, %v; want an InputError", res, err)
			}
			for _, w := range c.wanted {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestImportUnsupported: what gitflags cannot hold is an Issue naming the
// object and the reason, and the rest is imported.
func TestImportUnsupported(t *testing.T) {
	cases := []struct {
		name   string
		change func(d map[string]any)
		issue  string // a substring of the one issue expected
		check  func(t *testing.T, res *Result)
	}{
		{"unknown operator", func(d map[string]any) {
			obj(d, "project", "segments", 0, "rules", 0, "conditions", 0)["operator"] = "STARTS_WITH"
		}, `segment "beta" (id 10): operator "STARTS_WITH" is not supported by gitflags`, func(t *testing.T, res *Result) {
			if res.Snapshot.Segments["beta"] != nil || len(res.Snapshot.Environments["production"].Features["flag"].SegmentOverrides) != 0 {
				t.Error("the segment or its override was imported")
			}
		}},
		{"unknown rule type", func(d map[string]any) {
			obj(d, "project", "segments", 0, "rules", 0)["type"] = "XOR"
		}, `/project/segments/0/rules/0/type: segment "beta" (id 10): rule type "XOR" is not supported`, nil},
		{"regex RE2 cannot run", func(d map[string]any) {
			c := obj(d, "project", "segments", 0, "rules", 0, "conditions", 0)
			c["operator"], c["value"] = "REGEX", `(\w)\1`
		}, "does not compile", nil},
		{"bad semver", func(d map[string]any) {
			c := obj(d, "project", "segments", 0, "rules", 0, "conditions", 0)
			c["operator"], c["value"] = "GREATER_THAN", "1.2:semver"
		}, `"1.2" is not a semantic version`, nil},
		{"modulo by zero", func(d map[string]any) {
			c := obj(d, "project", "segments", 0, "rules", 0, "conditions", 0)
			c["operator"], c["value"] = "MODULO", "0|0"
		}, "MODULO divisor must be a finite non-zero number", nil},
		{"condition without property", func(d map[string]any) {
			delete(obj(d, "project", "segments", 0, "rules", 0, "conditions", 0), "property_")
		}, `EQUAL condition without a property`, nil},
		{"condition without value", func(d map[string]any) {
			obj(d, "project", "segments", 0, "rules", 0, "conditions", 0)["value"] = nil
		}, `EQUAL condition without a value`, nil},
		{"bracket JSONPath", func(d map[string]any) {
			obj(d, "project", "segments", 0, "rules", 0, "conditions", 0)["property_"] = "$['plan']"
		}, `reads it as a trait name, gitflags as a JSONPath`, nil},
		{"JSONPath into features", func(d map[string]any) {
			obj(d, "project", "segments", 0, "rules", 0, "conditions", 0)["property_"] = "$.features.flag.value"
		}, `JSONPath property "$.features.flag.value": gitflags and Flagsmith's engine may read it differently`, nil},
		{"segment without rules", func(d map[string]any) {
			obj(d, "project", "segments", 0)["rules"] = []any{}
		}, `it has no rules`, nil},
		{"rules nested too deep", func(d map[string]any) {
			r := map[string]any{"type": "ALL", "conditions": []any{map[string]any{"operator": "IS_SET", "property_": "x"}}}
			for range 17 {
				r = map[string]any{"type": "ALL", "rules": []any{r}}
			}
			obj(d, "project", "segments", 0)["rules"] = []any{r}
		}, `rules are nested more than 16 deep`, nil},
		{"decimal value", func(d map[string]any) {
			obj(d, "feature_states", 0)["feature_state_value"] = 1.5
		}, `feature "flag": its value: the decimal number 1.5 is not a gitflags value`, func(t *testing.T, res *Result) {
			if res.Snapshot.Features["flag"] != nil {
				t.Error("the feature was imported")
			}
		}},
		{"integer beyond 64 bits", func(d map[string]any) {
			obj(d, "feature_states", 0)["feature_state_value"] = json.Number("123456789012345678901234567890")
		}, `does not fit in 64 bits`, nil},
		{"object value", func(d map[string]any) {
			obj(d, "feature_states", 0)["feature_state_value"] = map[string]any{"a": 1}
		}, `an object is not a gitflags value`, nil},
		{"variant value a list", func(d map[string]any) {
			obj(d, "feature_states", 1, "multivariate_feature_state_values", 0, "multivariate_feature_option")["value"] = []any{1}
		}, `feature "mv": variant value: a list is not a gitflags value`, func(t *testing.T, res *Result) {
			if res.Snapshot.Features["mv"] != nil {
				t.Error("the feature was imported")
			}
		}},
		{"segment override with a decimal", func(d map[string]any) {
			obj(d, "project", "segments", 0, "feature_states", 0)["feature_state_value"] = 0.5
		}, `override of feature "flag" by segment "beta": its value: the decimal number 0.5`, func(t *testing.T, res *Result) {
			if res.Snapshot.Segments["beta"] == nil || res.Snapshot.Features["flag"] == nil {
				t.Error("the segment or the feature was left out with the override")
			}
		}},
		{"feature name not a key", func(d map[string]any) {
			obj(d, "feature_states", 0, "feature")["name"] = "my flag"
			obj(d, "project", "segments", 0, "feature_states", 0, "feature")["name"] = "my flag"
			obj(d, "identity_overrides", 0, "identity_features", 0, "feature")["name"] = "my flag"
		}, `feature "my flag": its name is not a valid gitflags key`, nil},
		{"unknown field", func(d map[string]any) {
			obj(d, "feature_states", 0)["rollout_schedule"] = "tomorrow"
		}, `/feature_states/0/rollout_schedule: feature "flag": unknown field "rollout_schedule"`, nil},
		{"integration", func(d map[string]any) {
			d["mixpanel_config"] = map[string]any{"api_key": "k"}
		}, `the mixpanel integration is not imported`, nil},
		{"stop serving flags", func(d map[string]any) {
			obj(d, "project", "organisation")["stop_serving_flags"] = true
		}, `Flagsmith stops serving flags for this organisation`, nil},
		{"no environment name, read by a condition", func(d map[string]any) {
			delete(d, "name")
			c := obj(d, "project", "segments", 0, "rules", 0, "conditions", 0)
			c["property_"], c["value"] = "$.environment.name", "Production"
		}, `s.json: /name: environment "Environment 1": the document has no environment name (an older Flagsmith): conditions on $.environment.name see no value in Flagsmith's engine, and "Environment 1" in gitflags`, nil},
		{"identity traits", func(d map[string]any) {
			obj(d, "identity_overrides", 0)["identity_traits"] = []any{map[string]any{"trait_key": "plan", "trait_value": "gold"}}
		}, `identity override "alice": 1 stored trait(s) are not imported`, nil},
		{"composite key off", func(d map[string]any) {
			d["use_identity_composite_key_for_hashing"] = false
		}, `use_identity_composite_key_for_hashing is false`, nil},
		{"split hashed by uuid", func(d map[string]any) {
			st := obj(d, "feature_states", 1)
			delete(st, "django_id")
			st["featurestate_uuid"] = "f0e5a4e2-4b4b-4c1e-9a0a-6b0f1c2d3e4f"
		}, `is hashed with the feature state's uuid`, nil},
		{"split order differs", func(d map[string]any) {
			obj(d, "feature_states", 1, "multivariate_feature_state_values", 0)["id"] = 7003
		}, `takes its variants in the order of their multivariate value ids (options 62, 61), gitflags in option id order (61, 62)`, nil},
		{"second split key", func(d map[string]any) {
			st := obj(d, "project", "segments", 0, "feature_states", 0)
			st["feature"] = map[string]any{"id": 101, "name": "mv", "type": "MULTIVARIATE"}
			st["multivariate_feature_state_values"] = []any{
				map[string]any{"id": 8001, "percentage_allocation": 100.0, "multivariate_feature_option": map[string]any{"id": 61, "value": "a"}},
			}
		}, `the split in the override of segment "beta" in environment "Production" is hashed with feature state id 1001, the feature's first split (in environment "Production", s.json) with 501`, nil},
		{"weights over 100", func(d map[string]any) {
			obj(d, "feature_states", 1, "multivariate_feature_state_values", 0)["percentage_allocation"] = 90.0
		}, `the split's percentage allocations add up to 110%`, nil},
		{"identifier never matches", func(d map[string]any) {
			obj(d, "identity_overrides", 0)["identifier"] = "007"
		}, `identity override "007" of feature "flag": gitflags refuses it: identifier "007" can never match`, func(t *testing.T, res *Result) {
			if st := res.Snapshot.Environments["production"].Features["flag"]; st == nil || len(st.IdentityOverrides) != 0 || len(st.SegmentOverrides) != 1 {
				t.Errorf("state: %+v", st)
			}
		}},
		{"override of a feature the environment lacks", func(d map[string]any) {
			obj(d, "identity_overrides", 0, "identity_features", 0)["feature"] = map[string]any{"id": 102, "name": "gone", "type": "STANDARD"}
		}, `feature "gone": it is only in overrides`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := doc()
			c.change(d)
			res, err := Import([]Source{source(t, "s.json", d)})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Issues) != 1 || !strings.Contains(res.Issues[0].String(), c.issue) {
				t.Fatalf("issues:\n%v\nwant one saying %q", res.Issues, c.issue)
			}
			if res.Snapshot == nil || len(res.Snapshot.Environments) != 1 {
				t.Fatal("the rest was not imported")
			}
			if c.check != nil {
				c.check(t, res)
			}
		})
	}
}

// TestImportWithoutEnvironmentName: a document of an older Flagsmith
// without the environment's name is imported under a made-up name.
func TestImportWithoutEnvironmentName(t *testing.T) {
	d := doc()
	d["name"] = nil
	res, err := Import([]Source{source(t, "s.json", d)})
	if err != nil {
		t.Fatal(err)
	}
	e := res.Snapshot.Environments["environment-1"]
	if len(res.Issues) != 0 || e == nil || e.Name != "Environment 1" {
		t.Fatalf("issues %v, environments %v", res.Issues, res.Snapshot.EnvironmentKeys())
	}
	found := false
	for _, c := range res.Changes {
		found = found || strings.Contains(c.String(), `the document has no environment name (an older Flagsmith); it is named "Environment 1"`)
	}
	if !found {
		t.Errorf("changes: %v", res.Changes)
	}
}

// TestImportSeveralDocuments merges environments of one project and
// refuses documents that disagree, naming both.
func TestImportSeveralDocuments(t *testing.T) {
	staging := func() map[string]any {
		d := doc()
		d["id"], d["api_key"], d["name"] = 2, "StgKey0123456789abcdef", "Staging"
		obj(d, "feature_states", 0)["enabled"] = false
		obj(d, "feature_states", 0)["django_id"] = 600
		obj(d, "feature_states", 1)["multivariate_feature_state_values"] = []any{}
		return d
	}
	res, err := Import([]Source{source(t, "prod.json", doc()), source(t, "staging.json", staging())})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Issues) != 0 || len(res.Snapshot.Environments) != 2 || len(res.Snapshot.Features) != 2 {
		t.Fatalf("issues %v; %d environments, %d features", res.Issues, len(res.Snapshot.Environments), len(res.Snapshot.Features))
	}
	if st := res.Snapshot.Environments["staging"].Features["flag"]; st == nil || st.Enabled == nil || *st.Enabled {
		t.Errorf("staging's flag: %+v", st)
	}

	for _, c := range []struct {
		name   string
		change func(d map[string]any)
		want   string
	}{
		{"other project", func(d map[string]any) { obj(d, "project")["id"] = 99 }, "prod.json and staging.json are documents of different projects (ids 2 and 99)"},
		{"segment rules differ", func(d map[string]any) {
			obj(d, "project", "segments", 0, "rules", 0, "conditions", 0)["value"] = "gold"
		}, `staging.json: /project/segments/0/rules: the rules of segment "beta" (id 10) differ from its rules in prod.json (/project/segments/0/rules)`},
		{"option value differs", func(d map[string]any) {
			obj(d, "feature_states", 1)["multivariate_feature_state_values"] = []any{
				map[string]any{"id": 7101, "percentage_allocation": 0.0, "multivariate_feature_option": map[string]any{"id": 61, "value": "z"}},
			}
		}, `multivariate option 61 of feature "mv" has the value "z" here and "a" in prod.json`},
		{"same environment", func(d map[string]any) { d["id"] = 1 }, "prod.json and staging.json are documents of the same environment (id 1)"},
		{"server-key-only differs", func(d map[string]any) {
			obj(d, "project")["server_key_only_feature_ids"] = []any{100}
		}, `feature "flag" is not server-key-only in this document but is in staging.json`},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := staging()
			c.change(d)
			_, err := Import([]Source{source(t, "prod.json", doc()), source(t, "staging.json", d)})
			var ie *InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want an InputError saying %q", err, c.want)
			}
		})
	}

	// A feature a document lacks is served there with its default: an issue.
	st := staging()
	st["feature_states"] = []any{at(st, "feature_states", 0)}
	res, err = Import([]Source{source(t, "prod.json", doc()), source(t, "staging.json", st)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Issues) != 1 || !strings.Contains(res.Issues[0].String(), `staging.json: /feature_states: feature "mv": the environment's document has no state of it`) {
		t.Errorf("issues: %v", res.Issues)
	}
}

// TestImportExportFile reads Flagsmith's feature export file (project
// settings, Export tab).
func TestImportExportFile(t *testing.T) {
	file := `[
 {"name": "dark_mode", "default_enabled": false, "is_server_key_only": false, "initial_value": null, "value": true, "type": "bool", "enabled": true, "multivariate": []},
 {"name": "page_size", "default_enabled": true, "is_server_key_only": true, "initial_value": "10", "value": 25, "type": "int", "enabled": true, "multivariate": []},
 {"name": "layout", "default_enabled": true, "is_server_key_only": false, "initial_value": "list", "value": "list", "type": "unicode", "enabled": false,
  "multivariate": [{"percentage_allocation": 40.0, "default_percentage_allocation": 30.0, "value": "grid", "type": "unicode"},
                   {"percentage_allocation": 0.0, "default_percentage_allocation": 0.0, "value": "table", "type": "unicode"}]}
]`
	staging := strings.Replace(strings.Replace(file, `"value": 25`, `"value": 50`, 1), `"percentage_allocation": 40.0`, `"percentage_allocation": 0.0`, 1)
	res, err := Import([]Source{{Name: "exports/production.json", Data: []byte(file)}, {Name: "staging.json", Data: []byte(staging)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Issues) != 1 || !strings.Contains(res.Issues[0].String(), `exports/production.json: /2/multivariate: feature "layout": the split in environment "production" cannot keep its buckets: a feature export file carries no feature state or option ids`) {
		t.Errorf("issues: %v", res.Issues)
	}
	snap := res.Snapshot
	if len(snap.Environments) != 2 || snap.Environments["production"] == nil || snap.Environments["staging"] == nil {
		t.Fatalf("environments: %v", snap.EnvironmentKeys())
	}
	ps := snap.Features["page_size"]
	if ps == nil || !ps.ServerKeyOnly || ps.Default.Value.Value != int64(25) {
		t.Errorf("page_size: %+v", ps)
	}
	if st := snap.Environments["staging"].Features["page_size"]; st == nil || st.Value.Value != int64(50) {
		t.Errorf("staging page_size: %+v", st)
	}
	l := snap.Features["layout"]
	if l == nil || len(l.Variants) != 2 || l.Variants[0].Key != "grid" || l.Variants[0].Weight != 40 || l.Default.Enabled {
		t.Errorf("layout: %+v", l)
	}
	keys := 0
	for _, c := range res.Changes {
		if strings.Contains(c.Message, "gets the new client key") {
			keys++
		}
	}
	if keys != 2 {
		t.Errorf("changes: %v", res.Changes)
	}

	_, err = Import([]Source{{Name: "production.json", Data: []byte(file)}, source(t, "doc.json", doc())})
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "cannot be imported together") {
		t.Errorf("documents and export files together: %v", err)
	}
}

// FuzzImport: no input makes Import panic; what it returns validates.
func FuzzImport(f *testing.F) {
	base, _ := json.Marshal(doc())
	f.Add(base)
	f.Add([]byte(`[{"name": "x", "enabled": true, "value": 1, "multivariate": [{"percentage_allocation": 10, "value": "a"}]}]`))
	f.Add([]byte(`{"api_key": "k", "project": {"segments": [{"rules": [{"type": "ALL", "rules": [{}]}]}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Import([]Source{{Name: "f.json", Data: data}})
		if err == nil && res.Snapshot == nil {
			t.Fatal("no snapshot and no error")
		}
	})
}
