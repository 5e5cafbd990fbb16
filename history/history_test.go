package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// testRepo is a work tree made with the git binary.
type testRepo struct {
	t   *testing.T
	dir string
	n   int // commits made, for distinct dates
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	gittest.Available(t)
	dir := t.TempDir()
	gittest.Init(t, dir)
	return &testRepo{t: t, dir: dir}
}

// commit writes files (path -> content; "" removes the file) and commits
// them as author ("Name <email>"), returning the commit's hash.
func (r *testRepo) commit(author, message string, files map[string]string) string {
	r.t.Helper()
	for p, c := range files {
		full := filepath.Join(r.dir, filepath.FromSlash(p))
		if c == "" {
			if err := os.Remove(full); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.n++
	gittest.Run(r.t, r.dir, "add", "-A")
	gittest.Run(r.t, r.dir, "commit", "-q", "--allow-empty", "-m", message, "--author", author, "--date", r.date(r.n).Format(time.RFC3339))
	return r.git("rev-parse", "HEAD")
}

func (r *testRepo) date(n int) time.Time {
	return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Hour)
}

func (r *testRepo) git(args ...string) string {
	r.t.Helper()
	return gittest.Run(r.t, r.dir, args...)
}

func (r *testRepo) open() *gitstore.Repo {
	r.t.Helper()
	repo, err := gitstore.Open(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		if err := repo.Close(); err != nil {
			r.t.Error(err)
		}
	})
	return repo
}

const (
	alice = "Alice <alice@example.com>"
	bob   = "Bob <bob@example.com>"
)

// The documents of the example history.
const (
	featureA1  = `{"id": 1}` + "\n"
	featureA2  = `{"id": 1, "description": "A"}` + "\n"
	featureB   = `{"id": 2}` + "\n"
	segment1   = `{"id": 10, "rules": []}` + "\n"
	segment2   = `{"id": 10, "rules": [{"type": "ALL"}]}` + "\n"
	prodA1     = `{"enabled": true, "segment_overrides": [{"segment": "beta", "priority": 1, "enabled": true}]}` + "\n"
	prodA2     = `{"enabled": false, "segment_overrides": [{"priority": 1, "segment": "beta", "enabled": true}]}` + "\n"
	prodB      = `{"segment_overrides": [{"segment": "beta", "priority": 1, "enabled": false}]}` + "\n"
	devA       = `{"enabled": true}` + "\n"
	prodReadme = "Production: changes need review.\n"
)

// example makes the example history and returns its commits by name: c1 to
// c10 on main's first-parent chain, c5 on a merged side branch, c7 the merge.
func example(t *testing.T) (*testRepo, map[string]string) {
	r := newTestRepo(t)
	c := map[string]string{}
	c["c1"] = r.commit(alice, "Initial flags\n\nWith a body.", map[string]string{
		"gitflags.json":                      `{"format_version": 1}`,
		"features/a.json":                    featureA1,
		"features/b.json":                    featureB,
		"segments/beta.json":                 segment1,
		"environments/prod/environment.json": `{"id": 1}`,
		"environments/prod/features/a.json":  prodA1,
		"environments/dev/environment.json":  `{"id": 2}`,
		"schemas/feature.schema.json":        `{}`,
	})
	c["c2"] = r.commit(bob, "a: description", map[string]string{"features/a.json": featureA2})
	c["c3"] = r.commit(alice, "prod: b for beta", map[string]string{"environments/prod/features/b.json": prodB})
	// Keys reordered in the beta override: not a change of it.
	c["c4"] = r.commit(bob, "prod: a off", map[string]string{"environments/prod/features/a.json": prodA2})
	r.git("checkout", "-q", "-b", "side")
	c["c5"] = r.commit(alice, "beta: rules", map[string]string{"segments/beta.json": segment2})
	r.git("checkout", "-q", "main")
	c["c6"] = r.commit(bob, "dev: a on", map[string]string{"environments/dev/features/a.json": devA})
	r.git("merge", "-q", "--no-ff", "-m", "Merge side", "side")
	c["c7"] = r.git("rev-parse", "HEAD")
	r.git("mv", "features/b.json", "features/c.json")
	r.git("mv", "environments/prod/features/b.json", "environments/prod/features/c.json")
	c["c8"] = r.commit(alice, "rename b to c", nil)
	c["c9"] = r.commit(bob, "remove a", map[string]string{
		"features/a.json":                   "",
		"environments/prod/features/a.json": "",
		"environments/dev/features/a.json":  "",
		"environments/prod/README.md":       prodReadme,
	})
	c["c10"] = r.commit(alice, "schemas only", map[string]string{"schemas/feature.schema.json": `{"title": "x"}`})
	return r, c
}

func query(t *testing.T, ix *Index, head string, q Query) Page {
	t.Helper()
	p, err := ix.Query(context.Background(), plumbing.NewHash(head), q)
	if err != nil {
		t.Fatalf("Query(%+v): %v", q, err)
	}
	return p
}

// summary is an entry as revision name and changed paths.
func summary(p Page, names map[string]string) []string {
	byHash := map[string]string{}
	for n, h := range names {
		byHash[h] = n
	}
	var out []string
	for _, e := range p.Entries {
		var paths []string
		for _, c := range e.Changes {
			paths = append(paths, c.Path)
		}
		out = append(out, byHash[e.Revision]+" "+strings.Join(paths, ","))
	}
	return out
}

// TestQueryFilters: each filter, alone and combined, lists the commits of the
// first-parent chain that changed a matching document, newest first, with
// the matching documents only. The merge is one entry (its change relative
// to its first parent), the side commit none; a rename is a removal and an
// addition; a segment counts the environment files whose overrides for it
// changed (not c4, which reorders the keys of one).
func TestQueryFilters(t *testing.T) {
	r, c := example(t)
	ix := New(r.open())
	head := c["c10"]
	for _, tc := range []struct {
		q    Query
		want []string
	}{
		{Query{Feature: "a"}, []string{
			"c9 environments/dev/features/a.json,environments/prod/features/a.json,features/a.json",
			"c6 environments/dev/features/a.json",
			"c4 environments/prod/features/a.json",
			"c2 features/a.json",
			"c1 environments/prod/features/a.json,features/a.json",
		}},
		{Query{Feature: "b"}, []string{
			"c8 environments/prod/features/b.json,features/b.json",
			"c3 environments/prod/features/b.json",
			"c1 features/b.json",
		}},
		{Query{Feature: "c"}, []string{"c8 environments/prod/features/c.json,features/c.json"}},
		{Query{Segment: "beta"}, []string{
			"c9 environments/prod/features/a.json",
			"c8 environments/prod/features/b.json,environments/prod/features/c.json",
			"c7 segments/beta.json",
			"c3 environments/prod/features/b.json",
			"c1 environments/prod/features/a.json,segments/beta.json",
		}},
		{Query{Environment: "prod"}, []string{
			"c9 environments/prod/README.md,environments/prod/features/a.json",
			"c8 environments/prod/features/b.json,environments/prod/features/c.json",
			"c4 environments/prod/features/a.json",
			"c3 environments/prod/features/b.json",
			"c1 environments/prod/environment.json,environments/prod/features/a.json",
		}},
		{Query{Environment: "dev"}, []string{
			"c9 environments/dev/features/a.json",
			"c6 environments/dev/features/a.json",
			"c1 environments/dev/environment.json",
		}},
		{Query{Feature: "a", Environment: "prod"}, []string{
			"c9 environments/prod/features/a.json",
			"c4 environments/prod/features/a.json",
			"c1 environments/prod/features/a.json",
		}},
		{Query{Segment: "beta", Environment: "prod", Feature: "b"}, []string{
			"c8 environments/prod/features/b.json",
			"c3 environments/prod/features/b.json",
		}},
		{Query{}, []string{
			"c9 environments/dev/features/a.json,environments/prod/README.md,environments/prod/features/a.json,features/a.json",
			"c8 environments/prod/features/b.json,environments/prod/features/c.json,features/b.json,features/c.json",
			"c7 segments/beta.json",
			"c6 environments/dev/features/a.json",
			"c4 environments/prod/features/a.json",
			"c3 environments/prod/features/b.json",
			"c2 features/a.json",
			"c1 environments/dev/environment.json,environments/prod/environment.json,environments/prod/features/a.json,features/a.json,features/b.json,segments/beta.json",
		}},
		{Query{Feature: "nothing"}, nil},
		{Query{Feature: "a", Segment: "nothing"}, nil},
		{Query{Environment: "dev", Segment: "beta"}, nil},
	} {
		p := query(t, ix, head, tc.q)
		if got := summary(p, c); !slices.Equal(got, tc.want) {
			t.Errorf("%+v:\n got %q\nwant %q", tc.q, got, tc.want)
		}
		if p.Next != "" {
			t.Errorf("%+v: Next = %q on the only page", tc.q, p.Next)
		}
		if p.Entries == nil {
			t.Errorf("%+v: nil Entries (encodes as null, not [])", tc.q)
		}
	}
	// An older head sees the history up to it.
	p := query(t, ix, c["c4"], Query{Feature: "a"})
	if got, want := summary(p, c), []string{"c4 environments/prod/features/a.json", "c2 features/a.json", "c1 environments/prod/features/a.json,features/a.json"}; !slices.Equal(got, want) {
		t.Errorf("at c4: %q, want %q", got, want)
	}
	if ix.Len() != 9 {
		t.Errorf("Len = %d, want the 9 commits of the first-parent chain", ix.Len())
	}
}

// TestQueryEntries: entries carry the commit's revision, author, time and
// whole message, and each document before and after as raw JSON (null when
// added or removed; a file that is not JSON as a JSON string).
func TestQueryEntries(t *testing.T) {
	r, c := example(t)
	ix := New(r.open())
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	p := query(t, ix, c["c10"], Query{Feature: "a", Environment: "prod"})
	want := []Entry{
		{Revision: c["c9"], Author: "Bob", AuthorEmail: "bob@example.com", Time: r.date(8), Message: "remove a\n",
			Changes: []Change{{Path: "environments/prod/features/a.json", Before: raw(prodA2)}}},
		{Revision: c["c4"], Author: "Bob", AuthorEmail: "bob@example.com", Time: r.date(4), Message: "prod: a off\n",
			Changes: []Change{{Path: "environments/prod/features/a.json", Before: raw(prodA1), After: raw(prodA2)}}},
		{Revision: c["c1"], Author: "Alice", AuthorEmail: "alice@example.com", Time: r.date(1), Message: "Initial flags\n\nWith a body.\n",
			Changes: []Change{{Path: "environments/prod/features/a.json", After: raw(prodA1)}}},
	}
	checkEntries(t, p.Entries, want)

	p = query(t, ix, c["c10"], Query{Environment: "prod", Limit: 1})
	want = []Entry{{Revision: c["c9"], Author: "Bob", AuthorEmail: "bob@example.com", Time: r.date(8), Message: "remove a\n",
		Changes: []Change{
			{Path: "environments/prod/README.md", After: raw(`"Production: changes need review.\n"`)},
			{Path: "environments/prod/features/a.json", Before: raw(prodA2)},
		}}}
	checkEntries(t, p.Entries, want)

	// The page encodes with null for absent documents and the documents as
	// they are.
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Entries []struct {
			Changes []struct {
				Before, After any
			}
		}
		Next string
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if ch := back.Entries[0].Changes[1]; ch.After != nil || ch.Before.(map[string]any)["enabled"] != false || back.Next != c["c9"] {
		t.Errorf("encoded page: %s", b)
	}
}

func checkEntries(t *testing.T, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) {
			t.Errorf("entry %d: time %v, want %v", i, g.Time, w.Time)
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("entry %d:\n got %s\nwant %s", i, dump(g), dump(w))
		}
	}
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestPagination: following Next with every limit lists the same entries as
// one page, and a cursor keeps its meaning when commits are added on top.
func TestPagination(t *testing.T) {
	r, c := example(t)
	ix := New(r.open())
	queries := []Query{{Feature: "a"}, {Segment: "beta"}, {Environment: "prod"}, {}}
	for _, q := range queries {
		all := summary(query(t, ix, c["c10"], q), c)
		for limit := 1; limit <= len(all)+1; limit++ {
			var got []string
			q := q
			q.Limit = limit
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatalf("%+v: more pages than entries", q)
				}
				p := query(t, ix, c["c10"], q)
				if len(p.Entries) > limit {
					t.Fatalf("%+v: %d entries", q, len(p.Entries))
				}
				got = append(got, summary(p, c)...)
				if p.Next == "" {
					break
				}
				if len(p.Entries) != limit {
					t.Errorf("%+v: a page of %d entries before the end", q, len(p.Entries))
				}
				q.Cursor = p.Next
			}
			if !slices.Equal(got, all) {
				t.Errorf("%+v: pages give %q, want %q", q, got, all)
			}
		}
	}

	// Two pages of feature a, then new commits on top: the second page is
	// the same with the new head.
	first := query(t, ix, c["c10"], Query{Feature: "a", Limit: 2})
	second := query(t, ix, c["c10"], Query{Feature: "a", Limit: 2, Cursor: first.Next})
	r.commit(alice, "a again", map[string]string{"features/a.json": featureA1})
	head := r.commit(alice, "prod a again", map[string]string{"environments/prod/features/a.json": prodA1})
	again := query(t, ix, head, Query{Feature: "a", Limit: 2, Cursor: first.Next})
	if !reflect.DeepEqual(again, second) {
		t.Errorf("second page after new commits:\n got %s\nwant %s", dump(again), dump(second))
	}
	if got := summary(query(t, ix, head, Query{Feature: "a", Limit: 2}), c); len(got) != 2 || got[0] != " environments/prod/features/a.json" || got[1] != " features/a.json" {
		t.Errorf("newest page after new commits: %q", got)
	}
	// A cursor newer than the head asked for is not in its history.
	if _, err := ix.Query(context.Background(), plumbing.NewHash(c["c2"]), Query{Feature: "a", Cursor: c["c9"]}); !isQueryError(err, "cursor") {
		t.Errorf("cursor newer than head: %v", err)
	}
}

func isQueryError(err error, param string) bool {
	var qe *QueryError
	return errors.As(err, &qe) && qe.Param == param && strings.Contains(err.Error(), param)
}

// TestRewrite: a branch rewritten below the indexed head (a force-push) is
// re-indexed from the last shared commit: the dropped commits leave the
// history and their cursors are refused; an unrelated history replaces the
// index entirely.
func TestRewrite(t *testing.T) {
	r, c := example(t)
	ix := New(r.open())
	old := query(t, ix, c["c10"], Query{Feature: "a", Limit: 1})
	if old.Next != c["c9"] {
		t.Fatalf("Next = %s, want c9", old.Next)
	}
	r.git("reset", "-q", "--hard", c["c6"])
	c["n1"] = r.commit(bob, "a rewritten", map[string]string{"features/a.json": `{"id": 1, "rewritten": true}`})
	p := query(t, ix, c["n1"], Query{Feature: "a"})
	want := []string{
		"n1 features/a.json",
		"c6 environments/dev/features/a.json",
		"c4 environments/prod/features/a.json",
		"c2 features/a.json",
		"c1 environments/prod/features/a.json,features/a.json",
	}
	if got := summary(p, c); !slices.Equal(got, want) {
		t.Errorf("after the rewrite: %q, want %q", got, want)
	}
	if ix.Len() != 6 {
		t.Errorf("Len = %d after the rewrite, want 6", ix.Len())
	}
	if got := summary(query(t, ix, c["n1"], Query{Segment: "beta"}), c); !slices.Equal(got, []string{
		"c3 environments/prod/features/b.json", "c1 environments/prod/features/a.json,segments/beta.json",
	}) {
		t.Errorf("segment beta after the rewrite: %q", got)
	}
	_, err := ix.Query(context.Background(), plumbing.NewHash(c["n1"]), Query{Feature: "a", Cursor: old.Next})
	if !isQueryError(err, "cursor") || !strings.Contains(err.Error(), "rewritten") {
		t.Errorf("cursor of a dropped commit: %v", err)
	}

	// An unrelated history (an orphan branch) replaces everything.
	r.git("checkout", "-q", "--orphan", "other")
	r.git("rm", "-rqf", ".")
	o1 := r.commit(alice, "other root", map[string]string{"features/z.json": "{}"})
	o2 := r.commit(alice, "other z", map[string]string{"features/z.json": `{"id": 9}`})
	if got := summary(query(t, ix, o2, Query{Feature: "z"}), map[string]string{"o1": o1, "o2": o2}); !slices.Equal(got, []string{"o2 features/z.json", "o1 features/z.json"}) {
		t.Errorf("orphan history: %q", got)
	}
	if got := query(t, ix, o2, Query{Feature: "a"}); len(got.Entries) != 0 {
		t.Errorf("feature a in the orphan history: %s", dump(got))
	}
	if ix.Len() != 2 {
		t.Errorf("Len = %d for the orphan history, want 2", ix.Len())
	}
	// Back to the rewritten main: indexed again from its root.
	if got := summary(query(t, ix, c["n1"], Query{Feature: "a"}), c); !slices.Equal(got, want) {
		t.Errorf("main again: %q, want %q", got, want)
	}
}

// TestQueryErrors: bad parameters are *QueryError naming the parameter; a
// head that is not a commit is an error naming it.
func TestQueryErrors(t *testing.T) {
	r, c := example(t)
	ix := New(r.open())
	head := plumbing.NewHash(c["c10"])
	long := strings.Repeat("k", 129)
	for _, tc := range []struct {
		q     Query
		param string
	}{
		{Query{Feature: "../a"}, "feature"},
		{Query{Feature: "a b"}, "feature"},
		{Query{Feature: "."}, "feature"},
		{Query{Feature: long}, "feature"},
		{Query{Segment: "-beta"}, "segment"},
		{Query{Environment: "prod/features"}, "environment"},
		{Query{Environment: ".."}, "environment"},
		{Query{Limit: -1}, "limit"},
		{Query{Limit: MaxLimit + 1}, "limit"},
		{Query{Cursor: "abc"}, "cursor"},
		{Query{Cursor: strings.ToUpper(c["c9"])}, "cursor"},
		{Query{Cursor: c["c9"] + "00"}, "cursor"},
		{Query{Cursor: strings.Repeat("0", 40)}, "cursor"},
		{Query{Cursor: strings.Repeat("ab", 20)}, "cursor"},
		{Query{Cursor: c["c5"]}, "cursor"}, // a commit, but not on the first-parent chain
	} {
		_, err := ix.Query(context.Background(), head, tc.q)
		if !isQueryError(err, tc.param) {
			t.Errorf("%+v: %v, want a QueryError naming %s", tc.q, err, tc.param)
		}
	}
	if p := query(t, ix, c["c10"], Query{Limit: MaxLimit}); len(p.Entries) != 8 {
		t.Errorf("limit %d: %d entries", MaxLimit, len(p.Entries))
	}
	if _, err := ix.Query(context.Background(), plumbing.ZeroHash, Query{}); err == nil {
		t.Error("zero head: no error")
	}
	missing := strings.Repeat("cd", 20)
	if _, err := ix.Query(context.Background(), plumbing.NewHash(missing), Query{}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("unknown head: %v", err)
	}
	blob := r.git("rev-parse", "HEAD:features/c.json")
	if _, err := ix.Query(context.Background(), plumbing.NewHash(blob), Query{}); err == nil || !strings.Contains(err.Error(), blob) {
		t.Errorf("a blob as head: %v", err)
	}
}

// TestCancel: a done context stops the indexing with the context's error;
// a later query indexes and answers.
func TestCancel(t *testing.T) {
	r, c := example(t)
	ix := New(r.open())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.Query(ctx, plumbing.NewHash(c["c10"]), Query{Feature: "a"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled query: %v", err)
	}
	if err := ix.Update(ctx, plumbing.NewHash(c["c10"])); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled update: %v", err)
	}
	if p := query(t, ix, c["c10"], Query{Feature: "a"}); len(p.Entries) != 5 {
		t.Errorf("after the cancellation: %d entries", len(p.Entries))
	}
}

// TestMoreChanges: an entry lists at most MaxChanges documents and counts
// the others.
func TestMoreChanges(t *testing.T) {
	r := newTestRepo(t)
	files := map[string]string{}
	for i := range MaxChanges + 7 {
		files[fmt.Sprintf("environments/prod/features/f%03d.json", i)] = "{}\n"
	}
	head := r.commit(alice, "many", files)
	ix := New(r.open())
	p := query(t, ix, head, Query{Environment: "prod"})
	if len(p.Entries) != 1 || len(p.Entries[0].Changes) != MaxChanges || p.Entries[0].MoreChanges != 7 {
		t.Fatalf("entry with %d changes: %d listed, %d more", MaxChanges+7, len(p.Entries[0].Changes), p.Entries[0].MoreChanges)
	}
	if last := p.Entries[0].Changes[MaxChanges-1].Path; last != fmt.Sprintf("environments/prod/features/f%03d.json", MaxChanges-1) {
		t.Errorf("last listed %s", last)
	}
	if p := query(t, ix, head, Query{Feature: "f003"}); len(p.Entries) != 1 || len(p.Entries[0].Changes) != 1 || p.Entries[0].MoreChanges != 0 {
		t.Errorf("one feature of the big commit: %s", dump(p))
	}
}

// TestConcurrent: queries from many goroutines while the branch grows each
// see the history of the head they asked for.
func TestConcurrent(t *testing.T) {
	r := newTestRepo(t)
	var heads []string
	for i := range 30 {
		heads = append(heads, r.commit(alice, fmt.Sprint("commit ", i), map[string]string{
			fmt.Sprintf("features/f%d.json", i%3): fmt.Sprintf("{\"n\": %d}\n", i),
		}))
	}
	ix := New(r.open())
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(heads))
	for g := range 8 {
		wg.Go(func() {
			for i := g % 3; i < len(heads); i += 3 {
				p, err := ix.Query(context.Background(), plumbing.NewHash(heads[i]), Query{Feature: fmt.Sprint("f", i%3), Limit: 2})
				if err != nil {
					errs <- err
					return
				}
				// The newest entry of f(i%3) at head i is commit i itself.
				if len(p.Entries) == 0 || p.Entries[0].Revision != heads[i] || (i >= 3 && (len(p.Entries) != 2 || p.Entries[1].Revision != heads[i-3])) {
					errs <- fmt.Errorf("head %d: %s", i, dump(p))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestLongWalk: an index built in one walk (with its own object cache) and
// one built commit by commit list the same history.
func TestLongWalk(t *testing.T) {
	r := newTestRepo(t)
	var heads []string
	for i := range ownCacheAbove + 20 {
		heads = append(heads, r.commit(bob, fmt.Sprint("commit ", i), map[string]string{
			fmt.Sprintf("environments/e%d/features/f%d.json", i%2, i%5): fmt.Sprintf("{\"n\": %d, \"segment_overrides\": [{\"segment\": \"s%d\"}]}\n", i, i%3),
		}))
	}
	repo := r.open()
	whole, steps := New(repo), New(repo)
	for _, h := range heads {
		if err := steps.Update(context.Background(), plumbing.NewHash(h)); err != nil {
			t.Fatal(err)
		}
	}
	head := heads[len(heads)-1]
	for _, q := range []Query{{Limit: MaxLimit}, {Feature: "f3"}, {Segment: "s1", Environment: "e0"}} {
		a, b := query(t, whole, head, q), query(t, steps, head, q)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%+v: one walk gives %s, commit by commit %s", q, dump(a), dump(b))
		}
		if len(a.Entries) == 0 {
			t.Errorf("%+v: no entries", q)
		}
	}
	if p := query(t, whole, head, Query{Limit: MaxLimit}); len(p.Entries) != len(heads) {
		t.Errorf("%d entries, want %d", len(p.Entries), len(heads))
	}
}
