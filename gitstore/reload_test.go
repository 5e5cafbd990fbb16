package gitstore

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// TestSnapshotWithPreviousMatchesFresh loads commits that add, remove,
// change, break and fix files of leaf directories (and change a file's mode),
// in random order, each given the snapshot of the commit loaded before it,
// and checks that the result is what a fresh Repo loads without one.
func TestSnapshotWithPreviousMatchesFresh(t *testing.T) {
	dir, first := newRepo(t, minimal)
	commits := []string{first}
	commit := func(msg string, write map[string]string, remove ...string) {
		t.Helper()
		writeFiles(t, dir, write)
		for _, p := range remove {
			if err := os.Remove(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
				t.Fatal(err)
			}
		}
		commits = append(commits, gittest.CommitAll(t, dir, msg))
	}
	commit("add features", map[string]string{
		"features/a.json":                         `{"id": 20, "default": {"enabled": true}}`,
		"features/z.json":                         `{"id": 21, "default": {"enabled": false}}`,
		"environments/production/features/a.json": `{"enabled": false}`,
	})
	commit("remove a feature its state names", nil, "features/a.json")
	commit("remove the state too", nil, "environments/production/features/a.json")
	commit("duplicate id", map[string]string{"features/z.json": `{"id": 10, "default": {"enabled": false}}`})
	commit("fix the id, break a segment reference", map[string]string{
		"features/z.json": `{"id": 21, "default": {"enabled": false}}`,
		"environments/production/features/dark_mode.json": `{"enabled": true, "segment_overrides": [{"segment": "gamma", "priority": 1, "enabled": false}]}`,
	})
	commit("add the segment", map[string]string{"segments/gamma.json": `{"id": 101, "rules": [{"type": "ALL", "conditions": [{"property": "p", "operator": "IS_SET"}]}]}`})
	if err := os.Chmod(filepath.Join(dir, "features", "z.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	commit("make a feature executable", nil)
	commit("a new environment", map[string]string{
		"environments/staging/environment.json":     `{"id": 2, "name": "Staging", "client_key": "staging_client_key"}`,
		"environments/staging/features/banner.json": `{"weights": {"a": 1}}`,
	})
	commit("remove the segment", nil, "segments/gamma.json")

	type result struct {
		snap     *flagrepo.Snapshot
		problems []flagrepo.Problem
	}
	load := func(r *Repo, sha string, prev *flagrepo.Snapshot) result {
		t.Helper()
		snap, err := r.Snapshot(sha, prev)
		var ve *flagrepo.ValidationError
		if errors.As(err, &ve) {
			return result{problems: ve.Problems}
		}
		if err != nil {
			t.Fatal(err)
		}
		return result{snap: snap}
	}
	fresh := map[string]result{}
	for _, sha := range commits {
		fresh[sha] = load(open(t, dir), sha, nil)
	}
	r := open(t, dir)
	rng := rand.New(rand.NewPCG(1, 2))
	var prev *flagrepo.Snapshot
	for i := range 60 {
		sha := commits[rng.IntN(len(commits))]
		got, want := load(r, sha, prev), fresh[sha]
		if !reflect.DeepEqual(got.problems, want.problems) {
			t.Fatalf("%d: %s: problems %v, want %v", i, sha, got.problems, want.problems)
		}
		if got.snap == nil {
			continue
		}
		if !reflect.DeepEqual(exported(got.snap), exported(want.snap)) {
			t.Fatalf("%d: %s: the snapshot differs from a fresh load", i, sha)
		}
		prev = got.snap
	}
}

// exported is what callers see of a snapshot.
func exported(s *flagrepo.Snapshot) []any {
	envs := map[string]any{}
	for k, e := range s.Environments {
		states := map[string]flagrepo.FeatureState{}
		for f, st := range e.Features {
			states[f] = *st
		}
		c := *e
		c.Features = nil
		envs[k] = []any{c, states}
	}
	features := map[string]flagrepo.Feature{}
	for k, f := range s.Features {
		features[k] = *f
	}
	segments := map[string]flagrepo.Segment{}
	for k, g := range s.Segments {
		segments[k] = *g
	}
	return []any{s.Revision, s.Settings, features, segments, envs, s.FeatureKeys(), s.SegmentKeys(), s.EnvironmentKeys()}
}
