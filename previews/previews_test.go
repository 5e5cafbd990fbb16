package previews

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/repogen"
	"github.com/gitflags/gitflags/repogen/gittest"
	"github.com/gitflags/gitflags/served"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a generated repository with branches b0..b(n-1), each changing
// one feature's staging value, and a Set previewing b*.
type fixture struct {
	dir  string
	repo *gitstore.Repo
	base *served.State
	set  *Set
}

func newFixture(t *testing.T, branches, max int) *fixture {
	gittest.Available(t)
	dir := t.TempDir()
	if err := repogen.Write(dir, repogen.Small()); err != nil {
		t.Fatal(err)
	}
	if _, err := gittest.CommitDir(dir, "generated"); err != nil {
		t.Fatal(err)
	}
	key := repogen.FeatureKey(3)
	for i := range branches {
		gittest.Run(t, dir, "checkout", "-q", "-b", fmt.Sprintf("b%d", i), "main")
		p := filepath.Join(dir, "environments", "staging", "features", key+".json")
		if err := os.WriteFile(p, fmt.Appendf(nil, "{\n  \"enabled\": %t,\n  \"value\": %d\n}\n", i%2 == 0, 1000+i), 0o644); err != nil {
			t.Fatal(err)
		}
		gittest.CommitAll(t, dir, fmt.Sprintf("b%d", i))
	}
	gittest.Run(t, dir, "checkout", "-q", "main")
	repo, err := gitstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	snap, err := repo.Snapshot("refs/heads/main", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, repo: repo}
	if f.base, err = served.Build(snap, nil); err != nil {
		t.Fatal(err)
	}
	f.set, err = New(Options{
		Repo: repo, Patterns: []string{"b*"}, MaxBranches: max,
		Served: func() *flagrepo.Snapshot { return f.base.Snapshot() },
		Build: func(s *flagrepo.Snapshot, prev *served.State) (*served.State, error) {
			if prev == nil {
				prev = f.base
			}
			return served.Build(s, prev)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestStatesBounded: however many branches are previewed, at most
// MaxBranches states are kept; a kept branch at the same head is not built
// again; a branch's state shares the documents of unchanged files with the
// served snapshot.
func TestStatesBounded(t *testing.T) {
	f := newFixture(t, 5, 2)
	ctx := context.Background()
	key := repogen.FeatureKey(3)
	for i := range 5 {
		st, err := f.set.State(ctx, fmt.Sprintf("b%d", i))
		if err != nil {
			t.Fatal(err)
		}
		v := st.Snapshot().Environments["staging"].Features[key].Value
		if !v.Set || fmt.Sprint(v.Value) != fmt.Sprint(1000+i) {
			t.Errorf("b%d: %s in staging = %+v, want %d", i, key, v, 1000+i)
		}
		base := f.base.Snapshot()
		for k, feat := range st.Snapshot().Features {
			if base.Features[k] != feat {
				t.Fatalf("b%d: feature %s is not shared with the served snapshot", i, k)
			}
		}
	}
	if kept, built := f.set.Kept(); kept != 2 || built != 5 {
		t.Errorf("kept %d, built %d; want 2 and 5", kept, built)
	}
	if _, err := f.set.State(ctx, "b4"); err != nil { // kept: not built again
		t.Fatal(err)
	}
	if _, built := f.set.Kept(); built != 5 {
		t.Errorf("a kept branch was built again (%d builds)", built)
	}
	if _, err := f.set.State(ctx, "b0"); err != nil { // dropped: built again
		t.Fatal(err)
	}
	if kept, built := f.set.Kept(); kept != 2 || built != 6 {
		t.Errorf("kept %d, built %d; want 2 and 6", kept, built)
	}
}

func TestPatterns(t *testing.T) {
	for _, c := range []struct {
		pattern, branch string
		want            bool
	}{
		{"gitflags/*", "gitflags/production/x-1", true},
		{"gitflags/*", "gitflags", false},
		{"release-*-rc", "release-2.1-rc", true},
		{"release-*-rc", "release-2.1", false},
		{"main", "main", true},
		{"main", "mainline", false},
	} {
		if got := Match(c.pattern, c.branch); got != c.want {
			t.Errorf("Match(%q, %q) = %t", c.pattern, c.branch, got)
		}
	}
	for _, bad := range []string{"", "a*b*", "x y", "../x", "/x", "x/"} {
		if CheckPattern(bad) == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
	f := newFixture(t, 1, 0)
	if _, err := f.set.State(context.Background(), "main"); !errors.Is(err, ErrNotPreviewable) {
		t.Errorf("main: %v", err)
	}
	if _, err := f.set.State(context.Background(), "b9"); !errors.Is(err, ErrUnknownBranch) {
		t.Errorf("b9: %v", err)
	}
}
