package flagdiff

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

	gitflags "github.com/gitflags/gitflags"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// flagRepo is a Git repository made from the template with the git
// binary, on branch main.
type flagRepo struct {
	t   *testing.T
	dir string
}

// newFlagRepo copies the template into a new repository and commits it on
// main.
func newFlagRepo(t *testing.T) *flagRepo {
	t.Helper()
	gittest.Available(t)
	dir := filepath.Join(t.TempDir(), "flags")
	if err := os.CopyFS(dir, gitflags.Template()); err != nil {
		t.Fatal(err)
	}
	gittest.Init(t, dir)
	gittest.CommitAll(t, dir, "Flags from the template")
	return &flagRepo{t: t, dir: dir}
}

func (r *flagRepo) git(args ...string) string {
	r.t.Helper()
	return gittest.Run(r.t, r.dir, args...)
}

// edit rewrites the JSON document at path (relative to the repository) with
// fn; a missing file starts as an empty object.
func (r *flagRepo) edit(path string, fn func(doc map[string]any)) {
	r.t.Helper()
	p := filepath.Join(r.dir, path)
	doc := map[string]any{}
	if data, err := os.ReadFile(p); err == nil {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			r.t.Fatal(err)
		}
	}
	fn(doc)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		r.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, append(out, '\n'), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// write writes a file as is.
func (r *flagRepo) write(path, content string) {
	r.t.Helper()
	p := filepath.Join(r.dir, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// remove deletes a file.
func (r *flagRepo) remove(path string) {
	r.t.Helper()
	if err := os.Remove(filepath.Join(r.dir, path)); err != nil {
		r.t.Fatal(err)
	}
}

// commit commits every change and returns the commit's hash.
func (r *flagRepo) commit(msg string) string {
	r.t.Helper()
	return gittest.CommitAll(r.t, r.dir, msg)
}

// branch starts branch name at the current commit.
func (r *flagRepo) branch(name string) { r.git("checkout", "-q", "-b", name) }

// compare runs Compare on two arguments as `gitflags diff` takes them.
func (r *flagRepo) compare(baseArg, headArg string, opts Options) *Report {
	r.t.Helper()
	base, head, repo, err := Sources(r.dir, baseArg, headArg, false)
	if err != nil {
		r.t.Fatal(err)
	}
	if repo != nil {
		defer repo.Close()
	}
	rep, err := Compare(base, head, opts)
	if err != nil {
		r.t.Fatal(err)
	}
	return rep
}

// find returns the changes in environment env (or "" for the repository)
// whose message contains text.
func find(rep *Report, env, text string) []Change {
	var out []Change
	for _, c := range rep.Changes {
		if c.Environment == env && strings.Contains(c.Message, text) {
			out = append(out, c)
		}
	}
	return out
}

// one returns the only change in env whose message contains text, failing
// the test otherwise.
func one(t *testing.T, rep *Report, env, text string) Change {
	t.Helper()
	cs := find(rep, env, text)
	if len(cs) != 1 {
		t.Fatalf("%d changes in %q containing %q, want 1; all changes:\n%s", len(cs), env, text, dump(rep))
	}
	return cs[0]
}

// dump lists a report's changes, for failure messages.
func dump(rep *Report) string {
	var b strings.Builder
	for _, c := range rep.Changes {
		b.WriteString(c.Environment + " | " + c.Kind + " | " + c.Message + " " + strings.Join(c.Risks, ",") + "\n")
	}
	return b.String()
}

// hasRisks checks a change's risks.
func hasRisks(t *testing.T, c Change, want ...string) {
	t.Helper()
	got := slices.Clone(c.Risks)
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%q: risks %v, want %v", c.Message, c.Risks, want)
	}
}

// flagrepoRule and flagrepoCondition write rules briefly in tests.
type flagrepoRule struct {
	typ   string
	conds []flagrepoCondition
	rules []flagrepoRule
}

type flagrepoCondition struct{ property, operator, value string }

func toRules(rs []flagrepoRule) []flagrepo.Rule {
	var out []flagrepo.Rule
	for _, r := range rs {
		fr := flagrepo.Rule{Type: r.typ, Rules: toRules(r.rules)}
		for _, c := range r.conds {
			fr.Conditions = append(fr.Conditions, flagrepo.Condition{Property: c.property, Operator: c.operator, Value: c.value})
		}
		out = append(out, fr)
	}
	return out
}

// validateSchema validates a JSON document against
// schemas/output/diff.schema.json.
func validateSchema(t *testing.T, doc string) {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	path := filepath.Join("..", "schemas", "output", "diff.schema.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("diff.schema.json", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("diff.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("the JSON output does not match %s: %#v", path, err)
	}
}
