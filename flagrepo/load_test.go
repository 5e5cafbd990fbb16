package flagrepo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// memFiles turns a map of path -> content into Files.
func memFiles(m map[string]string) []File {
	var files []File
	for p, c := range m {
		data := []byte(c)
		files = append(files, File{Path: p, Mode: ModeRegular, Size: int64(len(data)), Read: func() ([]byte, error) { return data, nil }})
	}
	return files
}

// validRepo is a small valid repository that test cases break one way each.
func validRepo() map[string]string {
	return map[string]string{
		"gitflags.json": `{"format_version": 1, "project": {"id": 1, "name": "Test"}}`,
		"README.md":     "docs are ignored",
		"features/checkout.json": `{
  "id": 10,
  "default": {"enabled": false, "value": "classic"},
  "variants": [
    {"id": 1, "key": "one_page", "value": "one-page", "weight": 20},
    {"id": 2, "key": "express", "value": "express"}
  ]
}`,
		"features/limit.json": `{"id": 11, "default": {"enabled": true, "value": 5}}`,
		"segments/beta.json": `{
  "id": 20,
  "rules": [{"type": "ALL", "conditions": [{"property": "beta", "operator": "EQUAL", "value": "true"}]}]
}`,
		"segments/staff.json":                `{"id": 21, "rules": [{"type": "ANY", "conditions": [{"property": "email", "operator": "REGEX", "value": ".*@acme$"}]}]}`,
		"environments/prod/environment.json": `{"id": 30, "name": "Production", "client_key": "prod_client_key"}`,
		"environments/dev/environment.json":  `{"id": 31, "name": "Development", "client_key": "dev_client_key"}`,
		"environments/prod/features/checkout.json": `{
  "enabled": true,
  "weights": {"one_page": 25, "express": 25},
  "segment_overrides": [
    {"segment": "beta", "priority": 1, "enabled": true, "value": "express"},
    {"segment": "staff", "priority": 2, "enabled": true, "weights": {"express": 100}}
  ],
  "identity_overrides": [{"identifiers": ["qa@example.com"], "enabled": true, "value": "one-page"}]
}`,
	}
}

func TestLoadValid(t *testing.T) {
	snap, err := Load(Revision{SHA: "abc"}, memFiles(validRepo()), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(snap.FeatureKeys(), ","); got != "checkout,limit" {
		t.Errorf("features %q", got)
	}
	if got := strings.Join(snap.EnvironmentKeys(), ","); got != "dev,prod" {
		t.Errorf("environments %q", got)
	}
	if v := snap.Features["limit"].Default.Value.Value; v != int64(5) {
		t.Errorf("integer value decoded as %#v, want int64(5)", v)
	}
	prod := snap.Environments["prod"]
	r := prod.Resolve(snap.Features["checkout"])
	if !r.Enabled || r.Value != "classic" || len(r.Weights) != 2 || r.Weights[0].Weight != 25 || r.Weights[0].Variant.Key != "one_page" {
		t.Errorf("prod checkout resolved to %+v", r)
	}
	if w := r.SegmentOverrides[1].OverrideWeights(snap.Features["checkout"]); len(w) != 2 || w[0].Weight != 0 || w[1].Weight != 100 {
		t.Errorf("override weights %+v", w)
	}
	dev := snap.Environments["dev"].Resolve(snap.Features["checkout"])
	if dev.Enabled || dev.Weights[0].Weight != 20 || dev.Weights[1].Weight != 0 {
		t.Errorf("dev checkout (feature defaults) resolved to %+v", dev)
	}
	if snap.EnvironmentByClientKey("dev_client_key") != snap.Environments["dev"] {
		t.Error("EnvironmentByClientKey")
	}
}

func TestTemplateIsValid(t *testing.T) {
	files, err := DirFiles(filepath.Join("..", "flags-repo-template"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Load(WorkingRevision(), files, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Features) < 12 || len(snap.Environments) != 3 {
		t.Errorf("template has %d features and %d environments", len(snap.Features), len(snap.Environments))
	}
	// Every operator appears in the template's segments.
	used := map[string]bool{}
	var walk func([]Rule)
	walk = func(rules []Rule) {
		for _, r := range rules {
			for _, c := range r.Conditions {
				used[c.Operator] = true
			}
			walk(r.Rules)
		}
	}
	for _, s := range snap.Segments {
		walk(s.Rules)
	}
	for _, op := range Operators {
		if !used[op] {
			t.Errorf("the template uses no %s condition", op)
		}
	}
}

func TestTemplateSchemasMatchEmbedded(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("..", "schemas"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".schema.json") {
			continue
		}
		n++
		want, _ := os.ReadFile(filepath.Join("..", "schemas", e.Name()))
		got, err := os.ReadFile(filepath.Join("..", "flags-repo-template", "schemas", e.Name()))
		if err != nil || string(got) != string(want) {
			t.Errorf("flags-repo-template/schemas/%s differs from schemas/%s: copy it (cp schemas/*.schema.json flags-repo-template/schemas/)", e.Name(), e.Name())
		}
	}
	if n == 0 {
		t.Fatal("no schemas found")
	}
}

// problemsOf loads the repository and returns its problems, failing the test
// if it loads.
func problemsOf(t *testing.T, files []File) []Problem {
	t.Helper()
	_, err := Load(Revision{}, files, nil)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a *ValidationError, got %v", err)
	}
	return ve.Problems
}

func TestBrokenRepositories(t *testing.T) {
	type want struct {
		file, pointer, message string
		line, col              int // 0 = not checked
	}
	cases := []struct {
		name  string
		edit  func(m map[string]string)
		files func([]File) []File
		want  []want
	}{
		{name: "malformed JSON", edit: func(m map[string]string) {
			m["features/limit.json"] = "{\"id\": 11,\n  \"default\": {\"enabled\": true,}\n}"
		}, want: []want{{file: "features/limit.json", message: "invalid JSON: invalid character '}'", line: 2, col: 31}}},
		{name: "empty file", edit: func(m map[string]string) { m["features/limit.json"] = "" },
			want: []want{{file: "features/limit.json", message: "empty file"}}},
		{name: "truncated", edit: func(m map[string]string) { m["features/limit.json"] = `{"id": 11, "default": {` },
			want: []want{{file: "features/limit.json", message: "ends too early"}}},
		{name: "trailing data", edit: func(m map[string]string) { m["features/limit.json"] = `{"id": 11, "default": {"enabled": true}} {}` },
			want: []want{{file: "features/limit.json", message: "unexpected data after", line: 1, col: 43}}},
		{name: "not an object", edit: func(m map[string]string) { m["features/limit.json"] = `[1, 2]` },
			want: []want{{file: "features/limit.json", message: "expected a JSON object, found an array"}}},
		{name: "wrong type", edit: func(m map[string]string) {
			m["features/limit.json"] = "{\n  \"id\": 11,\n  \"default\": {\"enabled\": \"yes\"}\n}"
		}, want: []want{{file: "features/limit.json", pointer: "/default/enabled", message: "wrong type: expected boolean, but got string", line: 3, col: 15}}},
		{name: "unknown field with suggestion", edit: func(m map[string]string) {
			m["features/limit.json"] = "{\"id\": 11,\n \"default\": {\"enabeld\": true, \"enabled\": true}}"
		}, want: []want{{file: "features/limit.json", pointer: "/default/enabeld", message: `unknown field "enabeld" (did you mean "enabled"?)`, line: 2, col: 14}}},
		{name: "missing required field", edit: func(m map[string]string) { m["features/limit.json"] = `{"default": {"enabled": true}}` },
			want: []want{{file: "features/limit.json", message: `missing required field "id"`, line: 1, col: 1}}},
		{name: "float value", edit: func(m map[string]string) {
			m["features/limit.json"] = `{"id": 11, "default": {"enabled": true, "value": 1.5}}`
		},
			want: []want{{file: "features/limit.json", pointer: "/default/value", message: "wrong type"}}},
		{name: "zero id", edit: func(m map[string]string) { m["features/limit.json"] = `{"id": 0, "default": {"enabled": true}}` },
			want: []want{{file: "features/limit.json", pointer: "/id", message: "must be >= 1"}}},
		{name: "duplicate JSON key", edit: func(m map[string]string) {
			m["features/limit.json"] = `{"id": 11, "id": 12, "default": {"enabled": true}}`
		}, want: []want{{file: "features/limit.json", pointer: "/id", message: `duplicate key "id"`, line: 1, col: 12}}},
		{name: "duplicate feature id", edit: func(m map[string]string) { m["features/limit.json"] = `{"id": 10, "default": {"enabled": true}}` },
			want: []want{{file: "features/limit.json", pointer: "/id", message: "feature id 10 is already used by features/checkout.json"}}},
		{name: "duplicate segment id", edit: func(m map[string]string) {
			m["segments/staff.json"] = strings.Replace(m["segments/staff.json"], `"id": 21`, `"id": 20`, 1)
		}, want: []want{{file: "segments/staff.json", pointer: "/id", message: "segment id 20 is already used by segments/beta.json"}}},
		{name: "duplicate environment id and client key", edit: func(m map[string]string) {
			m["environments/prod/environment.json"] = `{"id": 31, "name": "P", "client_key": "dev_client_key"}`
		}, want: []want{
			{file: "environments/prod/environment.json", pointer: "/id", message: "environment id 31 is already used by environments/dev"},
			{file: "environments/prod/environment.json", pointer: "/client_key", message: `client key "dev_client_key" is already the client key of environment "dev"`},
		}},
		{name: "server key in client key", edit: func(m map[string]string) {
			m["environments/dev/environment.json"] = `{"id": 31, "name": "D", "client_key": "ser.abcdefgh"}`
		}, want: []want{{file: "environments/dev/environment.json", pointer: "/client_key", message: "pattern"}}},
		{name: "dangling segment reference", edit: func(m map[string]string) {
			m["environments/prod/features/checkout.json"] = strings.Replace(m["environments/prod/features/checkout.json"], `"segment": "beta"`, `"segment": "betta"`, 1)
		}, want: []want{{file: "environments/prod/features/checkout.json", pointer: "/segment_overrides/0/segment", message: `there is no segment "betta"`, line: 5}}},
		{name: "dangling variant in weights", edit: func(m map[string]string) {
			m["environments/prod/features/checkout.json"] = strings.Replace(m["environments/prod/features/checkout.json"], `"express": 25`, `"expres": 25`, 1)
		}, want: []want{{file: "environments/prod/features/checkout.json", pointer: "/weights/expres", message: `feature "checkout" has no variant "expres" (its variants: one_page, express)`, line: 3}}},
		{name: "weights on a standard feature", edit: func(m map[string]string) {
			m["environments/prod/features/limit.json"] = `{"weights": {"a": 1}}`
		}, want: []want{{file: "environments/prod/features/limit.json", pointer: "/weights", message: `feature "limit" has no variants`}}},
		{name: "feature state for a missing feature", edit: func(m map[string]string) {
			m["environments/prod/features/nothing.json"] = `{"enabled": true}`
		}, want: []want{{file: "environments/prod/features/nothing.json", message: `there is no feature "nothing"`}}},
		{name: "environment without environment.json", edit: func(m map[string]string) {
			m["environments/qa/features/limit.json"] = `{"enabled": true}`
		}, want: []want{{file: "environments/qa/environment.json", message: "missing: environments/qa/ holds feature files but no environment.json"}}},
		{name: "duplicate override priority", edit: func(m map[string]string) {
			m["environments/prod/features/checkout.json"] = strings.Replace(m["environments/prod/features/checkout.json"], `"priority": 2`, `"priority": 1`, 1)
		}, want: []want{{file: "environments/prod/features/checkout.json", pointer: "/segment_overrides/1/priority", message: "priority 1 is already used by segment_overrides/0"}}},
		{name: "weights over 100", edit: func(m map[string]string) {
			m["environments/prod/features/checkout.json"] = strings.Replace(m["environments/prod/features/checkout.json"], `"express": 25`, `"express": 80`, 1)
		}, want: []want{{file: "environments/prod/features/checkout.json", pointer: "/weights", message: "weights add up to 105%; at most 100% is allowed"}}},
		{name: "weight out of range", edit: func(m map[string]string) {
			m["environments/prod/features/checkout.json"] = strings.Replace(m["environments/prod/features/checkout.json"], `"express": 25`, `"express": -5`, 1)
		}, want: []want{{file: "environments/prod/features/checkout.json", pointer: "/weights/express", message: "must be >= 0"}}},
		{name: "default variant weights over 100", edit: func(m map[string]string) {
			m["features/checkout.json"] = strings.Replace(m["features/checkout.json"], `"value": "express"}`, `"value": "express", "weight": 90}`, 1)
		}, want: []want{{file: "features/checkout.json", pointer: "/variants", message: "add up to 110%"}}},
		{name: "duplicate variant id and key", edit: func(m map[string]string) {
			m["features/checkout.json"] = strings.Replace(m["features/checkout.json"], `{"id": 2, "key": "express"`, `{"id": 1, "key": "one_page"`, 1)
		}, want: []want{
			{file: "features/checkout.json", pointer: "/variants/1/id", message: "variant id 1 is already used by variants/0"},
			{file: "features/checkout.json", pointer: "/variants/1/key", message: `variant key "one_page" is already used`},
		}},
		{name: "duplicate identity override", edit: func(m map[string]string) {
			m["environments/prod/features/limit.json"] = `{"identity_overrides": [{"identifiers": ["a"], "enabled": true}, {"identifiers": ["b", "a"], "enabled": false}]}`
		}, want: []want{{file: "environments/prod/features/limit.json", pointer: "/identity_overrides/1/identifiers/1", message: `identity "a" already has an override at /identity_overrides/0/identifiers/0`}}},
		{name: "identity override identifiers that can never match", edit: func(m map[string]string) {
			m["environments/prod/features/limit.json"] = `{"identity_overrides": [{"identifiers": ["007", "1.5", "42", "user-7", "a,b"], "enabled": true}]}`
		}, want: []want{
			{file: "environments/prod/features/limit.json", pointer: "/identity_overrides/0/identifiers/4", message: "an identifier containing a comma never matches"},
			{file: "environments/prod/features/limit.json", pointer: "/identity_overrides/0/identifiers/0", message: `"007" matches only "7"`},
			{file: "environments/prod/features/limit.json", pointer: "/identity_overrides/0/identifiers/1", message: "decimal numbers"},
		}},
		{name: "regex RE2 cannot run", edit: func(m map[string]string) {
			m["segments/staff.json"] = `{"id": 21, "rules": [{"type": "ALL", "conditions": [{"property": "email", "operator": "REGEX", "value": "^(?!test).*$"}]}]}`
		}, want: []want{{file: "segments/staff.json", pointer: "/rules/0/conditions/0/value", message: "RE2 syntax: lookahead, lookbehind, backreferences"}}},
		{name: "regex does not compile", edit: func(m map[string]string) {
			m["segments/staff.json"] = `{"id": 21, "rules": [{"type": "ALL", "conditions": [{"property": "email", "operator": "REGEX", "value": "a(b"}]}]}`
		}, want: []want{{file: "segments/staff.json", pointer: "/rules/0/conditions/0/value", message: `regular expression "a(b" does not compile`}}},
		{name: "bad semver", edit: func(m map[string]string) {
			m["segments/staff.json"] = `{"id": 21, "rules": [{"type": "ALL", "conditions": [{"property": "v", "operator": "GREATER_THAN", "value": "1.2:semver"}]}]}`
		}, want: []want{{file: "segments/staff.json", pointer: "/rules/0/conditions/0/value", message: `"1.2" is not a semantic version`}}},
		{name: "semver with a non-comparison operator", edit: func(m map[string]string) {
			m["segments/staff.json"] = `{"id": 21, "rules": [{"type": "ALL", "conditions": [{"property": "v", "operator": "CONTAINS", "value": "1.2.0:semver"}]}]}`
		}, want: []want{{file: "segments/staff.json", message: "not CONTAINS"}}},
		{name: "bad modulo", edit: func(m map[string]string) {
			m["segments/staff.json"] = `{"id": 21, "rules": [{"type": "ALL", "conditions": [{"property": "n", "operator": "MODULO", "value": "2-0"}]}]}`
		}, want: []want{{file: "segments/staff.json", message: `MODULO takes "divisor|remainder"`}}},
		{name: "modulo by zero", edit: func(m map[string]string) {
			m["segments/staff.json"] = `{"id": 21, "rules": [{"type": "ALL", "conditions": [{"property": "n", "operator": "MODULO", "value": "0|0"}]}]}`
		}, want: []want{{file: "segments/staff.json", message: "divisor must be a finite non-zero number"}}},
		{name: "bad percentage", edit: func(m map[string]string) {
			m["segments/staff.json"] = `{"id": 21, "rules": [{"type": "ALL", "conditions": [{"operator": "PERCENTAGE_SPLIT", "value": "150"}]}]}`
		}, want: []want{{file: "segments/staff.json", message: "PERCENTAGE_SPLIT takes a percentage between 0 and 100"}}},
		{name: "unknown operator", edit: func(m map[string]string) {
			m["segments/staff.json"] = `{"id": 21, "rules": [{"type": "ALL", "conditions": [{"property": "n", "operator": "LIKE", "value": "x"}]}]}`
		}, want: []want{{file: "segments/staff.json", pointer: "/rules/0/conditions/0/operator", message: "value must be one of"}}},
		{name: "missing property and value", edit: func(m map[string]string) {
			m["segments/staff.json"] = `{"id": 21, "rules": [{"type": "ALL", "conditions": [{"operator": "EQUAL"}]}]}`
		}, want: []want{
			{file: "segments/staff.json", pointer: "/rules/0/conditions/0", message: `missing "property"`},
			{file: "segments/staff.json", pointer: "/rules/0/conditions/0", message: `missing "value"`},
		}},
		{name: "array value with a non-IN operator", edit: func(m map[string]string) {
			m["segments/staff.json"] = `{"id": 21, "rules": [{"type": "ALL", "conditions": [{"property": "n", "operator": "EQUAL", "value": ["a"]}]}]}`
		}, want: []want{{file: "segments/staff.json", message: "an array value is only allowed with the IN operator"}}},
		{name: "segment without rules", edit: func(m map[string]string) { m["segments/staff.json"] = `{"id": 21, "rules": []}` },
			want: []want{{file: "segments/staff.json", pointer: "/rules", message: "minimum 1 items"}}},
		{name: "invalid key in file name", edit: func(m map[string]string) { m["features/-bad name.json"] = `{"id": 99, "default": {"enabled": true}}` },
			want: []want{{file: "features/-bad name.json", message: `key "-bad name" is not valid`}}},
		{name: "empty key", edit: func(m map[string]string) { m["features/.json"] = `{"id": 99, "default": {"enabled": true}}` },
			want: []want{{file: "features/.json", message: "empty key"}}},
		{name: "path traversal in a reference", edit: func(m map[string]string) {
			m["environments/prod/features/checkout.json"] = strings.Replace(m["environments/prod/features/checkout.json"], `"segment": "beta"`, `"segment": "../beta"`, 1)
		}, want: []want{{file: "environments/prod/features/checkout.json", pointer: "/segment_overrides/0/segment", message: "not a valid key"}}},
		{name: "file outside the layout", edit: func(m map[string]string) {
			m["flags/extra.json"] = `{}`
			m["features/nested/x.json"] = `{}`
			m["notes.json"] = `{}`
		}, want: []want{
			{file: "features/nested/x.json", message: "unexpected file"},
			{file: "flags/extra.json", message: "unexpected file"},
			{file: "notes.json", message: "unexpected file"},
		}},
		{name: "missing gitflags.json", edit: func(m map[string]string) { delete(m, "gitflags.json") },
			want: []want{{file: "gitflags.json", message: "missing: every flag repository has a gitflags.json"}}},
		{name: "unsupported format version", edit: func(m map[string]string) {
			m["gitflags.json"] = `{"format_version": 2, "project": {"id": 1, "name": "T"}}`
		},
			want: []want{{file: "gitflags.json", pointer: "/format_version", message: "value must be"}}},
		{name: "huge file", edit: func(m map[string]string) {
			m["features/limit.json"] = `{"id": 11, "default": {"enabled": true}, "description": "` + strings.Repeat("x", MaxFileSize) + `"}`
		}, want: []want{{file: "features/limit.json", message: "at most 1048576 are allowed"}}},
		{name: "binary file", edit: func(m map[string]string) { m["features/limit.json"] = "{\x00\x01}" },
			want: []want{{file: "features/limit.json", message: "binary file"}}},
		{name: "non-UTF-8", edit: func(m map[string]string) { m["features/limit.json"] = "{\"id\": 11, \"description\": \"caf\xe9\"}" },
			want: []want{{file: "features/limit.json", message: "invalid UTF-8 at byte offset 30", line: 1, col: 31}}},
		{name: "byte order mark", edit: func(m map[string]string) { m["features/limit.json"] = "\xef\xbb\xbf" + m["features/limit.json"] },
			want: []want{{file: "features/limit.json", message: "byte order mark"}}},
		{name: "names differing only in case", edit: func(m map[string]string) { m["features/Limit.json"] = `{"id": 12, "default": {"enabled": true}}` },
			want: []want{{file: "features/limit.json", message: "differs from features/Limit.json only in letter case"}}},
		{name: "decimal value is not an integer", edit: func(m map[string]string) {
			m["features/limit.json"] = `{"id": 11, "default": {"enabled": true, "value": 99999999999999999999}}`
		}, want: []want{{file: "features/limit.json", pointer: "/default/value", message: "not a 64-bit integer"}}},
		{name: "symlink", files: func(fs []File) []File {
			return append(fs, File{Path: "features/link.json", Mode: ModeSymlink, Read: func() ([]byte, error) { return []byte("limit.json"), nil }})
		}, want: []want{{file: "features/link.json", message: "symbolic links are not allowed"}}},
		{name: "submodule", files: func(fs []File) []File {
			return append(fs, File{Path: "segments/sub.json", Mode: ModeSubmodule})
		}, want: []want{{file: "segments/sub.json", message: "submodules are not allowed"}}},
		{name: "an invalid feature is not also reported as missing", edit: func(m map[string]string) {
			m["features/checkout.json"] = `{"id": 10, "default": {"enabled": "no"}}`
			m["segments/beta.json"] = `{"id": 20, "rules": "none"}`
		}, want: []want{
			{file: "features/checkout.json", pointer: "/default/enabled", message: "wrong type"},
			{file: "segments/beta.json", pointer: "/rules", message: "wrong type"},
		}},
		{name: "every error in one pass", edit: func(m map[string]string) {
			m["features/limit.json"] = `{"id": "11", "default": {"enabled": true}}`
			m["segments/staff.json"] = `{"id": 21, "rules": [{"type": "SOME"}]}`
			m["environments/prod/environment.json"] = `{"id": 30, "name": "P"}`
		}, want: []want{
			{file: "environments/prod/environment.json", message: `missing required field "client_key"`},
			{file: "features/limit.json", pointer: "/id", message: "wrong type"},
			{file: "segments/staff.json", pointer: "/rules/0/type", message: "value must be one of"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := validRepo()
			if tc.edit != nil {
				tc.edit(m)
			}
			files := memFiles(m)
			if tc.files != nil {
				files = tc.files(files)
			}
			problems := problemsOf(t, files)
			for _, w := range tc.want {
				found := false
				for _, p := range problems {
					if p.File == w.file && (w.pointer == "" || p.Pointer == w.pointer) && strings.Contains(p.Message, w.message) &&
						(w.line == 0 || p.Line == w.line) && (w.col == 0 || p.Column == w.col) {
						found = true
					}
				}
				if !found {
					t.Errorf("no problem %+v among:\n%s", w, (&ValidationError{Problems: problems}).Error())
				}
			}
			if len(problems) > len(tc.want)+1 {
				t.Errorf("%d problems for %d expected; extra noise:\n%s", len(problems), len(tc.want), (&ValidationError{Problems: problems}).Error())
			}
		})
	}
}

func TestProblemString(t *testing.T) {
	p := Problem{File: "features/a.json", Line: 3, Column: 5, Pointer: "/default", Message: "bad"}
	if got := p.String(); got != "features/a.json:3:5: /default: bad" {
		t.Errorf("String() = %q", got)
	}
}

func TestReuseSkipsUnchangedFiles(t *testing.T) {
	m := validRepo()
	reads := map[string]int{}
	mk := func(m map[string]string, hashes map[string]string) []File {
		var files []File
		for p, c := range m {
			p, data := p, []byte(c)
			files = append(files, File{Path: p, Mode: ModeRegular, Hash: hashes[p], Size: int64(len(data)), Read: func() ([]byte, error) {
				reads[p]++
				return data, nil
			}})
		}
		return files
	}
	hashes := map[string]string{}
	for p := range m {
		hashes[p] = "h1:" + p
	}
	first, err := Load(Revision{SHA: "1"}, mk(m, hashes), nil)
	if err != nil {
		t.Fatal(err)
	}
	clear(reads)
	m["features/limit.json"] = `{"id": 11, "default": {"enabled": false, "value": 7}}`
	hashes["features/limit.json"] = "h2"
	second, err := Load(Revision{SHA: "2"}, mk(m, hashes), first)
	if err != nil {
		t.Fatal(err)
	}
	if len(reads) != 1 || reads["features/limit.json"] != 1 {
		t.Errorf("reload read %v, want only features/limit.json", reads)
	}
	if second.Features["limit"].Default.Value.Value != int64(7) || first.Features["limit"].Default.Value.Value != int64(5) {
		t.Error("reload did not take the change, or changed the previous snapshot")
	}
	if second.Environments["prod"] == first.Environments["prod"] {
		t.Error("environments must be fresh per snapshot")
	}
	// A reused file still takes part in cross-file checks.
	m["segments/beta.json"] = `{"id": 21, "rules": [{"type": "ALL"}]}`
	hashes["segments/beta.json"] = "h3"
	if _, err := Load(Revision{SHA: "3"}, mk(m, hashes), second); err == nil || !strings.Contains(err.Error(), "segment id 21 is already used") {
		t.Errorf("want a duplicate id across a changed and a reused file, got %v", err)
	}
}

func TestDirFilesSeesSymlinks(t *testing.T) {
	dir := t.TempDir()
	for p, c := range validRepo() {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("limit.json", filepath.Join(dir, "features", "alias.json")); err != nil {
		t.Fatal(err)
	}
	files, err := DirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	problems := problemsOf(t, files)
	if len(problems) != 1 || problems[0].File != "features/alias.json" || !strings.Contains(problems[0].Message, "symbolic links") {
		t.Errorf("got %v", problems)
	}
}
