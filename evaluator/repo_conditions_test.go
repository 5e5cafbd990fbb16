package evaluator

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
)

// loadSegmentRepo writes a flag repository whose segment "s" (id 20) has the
// one condition cond (JSON), targeted by feature "f", and loads it.
func loadSegmentRepo(t *testing.T, cond string) (*flagrepo.Snapshot, error) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"gitflags.json":                      `{"format_version": 1, "project": {"id": 1, "name": "Test"}}`,
		"features/f.json":                    `{"id": 10, "default": {"enabled": false, "value": "default"}}`,
		"segments/s.json":                    `{"id": 20, "rules": [{"type": "ALL", "conditions": [` + cond + `]}]}`,
		"environments/prod/environment.json": `{"id": 30, "name": "Production", "client_key": "prod_client_key"}`,
		"environments/prod/features/f.json":  `{"enabled": false, "segment_overrides": [{"segment": "s", "priority": 1, "enabled": true, "value": "segment"}]}`,
	}
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fs, err := flagrepo.DirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	return flagrepo.Load(flagrepo.WorkingRevision(), fs, nil)
}

// TestRepoConditions checks that validate and the evaluator agree on what a
// condition means: each condition of testdata/engine-edges/repo-conditions.json
// is accepted by validate and, loaded from a repository, matches exactly
// when the reference engine says it does.
func TestRepoConditions(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(edgeCasesDir, "repo-conditions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cf caseFile
	if err := decodeNumber(raw, &cf); err != nil {
		t.Fatal(err)
	}
	var result struct {
		Segments []struct{ Name string } `json:"segments"`
	}
	if err := json.Unmarshal(cf.Result, &result); err != nil {
		t.Fatal(err)
	}
	matched := map[string]bool{}
	for _, s := range result.Segments {
		matched[s.Name] = true
	}
	id := &Identity{Identifier: cf.Context.Identity.Identifier, Traits: cf.Context.Identity.Traits}
	if len(cf.Context.Segments) == 0 {
		t.Fatal("no conditions")
	}
	for _, kv := range cf.Context.Segments {
		var seg caseSegment
		if err := decodeNumber(kv.Val, &seg); err != nil {
			t.Fatal(err)
		}
		c := seg.Rules[0].Conditions[0]
		b, _ := json.Marshal(map[string]any{"property": c.Property, "operator": c.Operator, "value": c.Value})
		snap, err := loadSegmentRepo(t, string(b))
		if err != nil {
			t.Errorf("%s: validate rejected %s: %v", seg.Name, b, err)
			continue
		}
		models, err := CompileSnapshot(snap, nil)
		if err != nil {
			t.Fatalf("%s: %v", seg.Name, err)
		}
		f, _ := models["prod"].Flag("f", id)
		if got, want := f.Value == "segment", matched[seg.Name]; got != want {
			t.Errorf("%s: the evaluator matches %v, the engine %v", seg.Name, got, want)
		}
	}
}

// TestRepoConditionsRejected checks values `gitflags validate` rejects: each
// gets a problem naming the file, the pointer and what is wrong, and the
// repository does not load (so the value never reaches the evaluator).
func TestRepoConditionsRejected(t *testing.T) {
	for _, tc := range []struct {
		op, value string // value: JSON
		pointer   string
		message   string
	}{
		{"MODULO", `"0x1p1|0"`, "/value", `MODULO takes "divisor|remainder" with two numbers`},
		{"MODULO", `"0x2|1"`, "/value", `MODULO takes "divisor|remainder"`},
		{"MODULO", `"2|1|0"`, "/value", `MODULO takes "divisor|remainder"`},
		{"MODULO", `"1,5|1"`, "/value", `MODULO takes "divisor|remainder"`},
		{"MODULO", `"0|0"`, "/value", "MODULO divisor must be a finite non-zero number"},
		{"MODULO", `"0_0|1"`, "/value", "MODULO divisor must be a finite non-zero number"},
		{"MODULO", `"inf|1"`, "/value", "MODULO divisor must be a finite non-zero number"},
		{"MODULO", `"nan|1"`, "/value", "MODULO divisor must be a finite non-zero number"},
		{"MODULO", `"2|nan"`, "/value", "MODULO remainder is NaN"},
		{"PERCENTAGE_SPLIT", `"0x32"`, "/value", "PERCENTAGE_SPLIT takes a percentage between 0 and 100"},
		{"PERCENTAGE_SPLIT", `"nan"`, "/value", "PERCENTAGE_SPLIT takes a percentage between 0 and 100"},
		{"PERCENTAGE_SPLIT", `"100.5"`, "/value", "PERCENTAGE_SPLIT takes a percentage between 0 and 100"},
		{"PERCENTAGE_SPLIT", `"-1"`, "/value", "PERCENTAGE_SPLIT takes a percentage between 0 and 100"},
		{"PERCENTAGE_SPLIT", `"5 0"`, "/value", "PERCENTAGE_SPLIT takes a percentage between 0 and 100"},
		{"GREATER_THAN", `"1.2:semver"`, "/value", `"1.2" is not a semantic version`},
		{"GREATER_THAN", `"v1.2.3:semver"`, "/value", `"v1.2.3" is not a semantic version`},
		{"EQUAL", `"01.2.3:semver"`, "/value", `"01.2.3" is not a semantic version`},
		{"CONTAINS", `"1.2.3:semver"`, "/value", `a ":semver" value only works with EQUAL`},
		{"IN", `"1.2.3:semver"`, "/value", `a ":semver" value only works with EQUAL`},
		{"IN", `[1.5]`, "/value/0", "expected string or integer"},
		{"IN", `["a", 7, 1.0]`, "/value/2", "IN compares text and integers: write 1.0 as a string"},
		{"IN", `[1e2]`, "/value/0", "IN compares text and integers"},
		{"REGEX", `"(?=x)"`, "/value", "does not compile"},
		{"REGEX", `"a\\z"`, "/value", `\z at offset 1 is not Python regular expression syntax`},
		{"REGEX", `"\\pL"`, "/value", `\p at offset 0 is not Python regular expression syntax`},
		{"REGEX", `"\\Qa\\E"`, "/value", `\Q at offset 0 is not Python`},
		{"REGEX", `"\\x{41}"`, "/value", `\x{...} at offset 0 is not Python syntax`},
		{"REGEX", `"(?<n>a)"`, "/value", "(?<name>...) at offset 0 is not Python syntax"},
		{"REGEX", `"(?U)a+"`, "/value", "unknown flag"},
		{"REGEX", `"a(?i)b"`, "/value", "global flags must be at the start of the pattern"},
		{"REGEX", `"(?-i)a"`, "/value", "turning a flag off needs a scoped group"},
		{"REGEX", `"(?m:a$)"`, "/value", "turn multi-line mode on for the whole pattern"},
		{"REGEX", `"[[:alpha:]]"`, "/value", "POSIX classes"},
		{"REGEX", `"[\\d-z]"`, "/value", `\d at offset 1 cannot bound a character range`},
		{"REGEX", `"[\\W]"`, "/value", `\W inside [...] at offset 1 is not supported`},
		{"REGEX", `"\\u00e"`, "/value", `\u at offset 0 needs 4 hexadecimal digits`},
		{"REGEX", `"a)|(b"`, "/value", "does not compile"},
		{"LIKE", `"x"`, "/operator", `value must be one of "EQUAL"`},
	} {
		cond := `{"property": "p", "operator": "` + tc.op + `", "value": ` + tc.value + `}`
		_, err := loadSegmentRepo(t, cond)
		var inv *flagrepo.ValidationError
		if !errors.As(err, &inv) {
			t.Errorf("%s %s: validate accepted it (err %v)", tc.op, tc.value, err)
			continue
		}
		found := false
		for _, p := range inv.Problems {
			if p.File == "segments/s.json" && p.Pointer == "/rules/0/conditions/0"+tc.pointer && strings.Contains(p.Message, tc.message) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s %s: want a problem at segments/s.json /rules/0/conditions/0%s containing %q; got %v", tc.op, tc.value, tc.pointer, tc.message, inv.Problems)
		}
	}
}
