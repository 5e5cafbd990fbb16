package repogen_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen"
)

func load(t *testing.T, dir string) *flagrepo.Snapshot {
	t.Helper()
	files, err := flagrepo.DirFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := flagrepo.Load(flagrepo.WorkingRevision(), files, nil)
	if err != nil {
		t.Fatalf("generated repository does not load: %v", err)
	}
	return snap
}

func TestWriteLoads(t *testing.T) {
	opts := repogen.Small()
	dir := t.TempDir()
	if err := repogen.Write(dir, opts); err != nil {
		t.Fatal(err)
	}
	snap := load(t, dir)
	if got := len(snap.Features); got != opts.Features {
		t.Errorf("features = %d, want %d", got, opts.Features)
	}
	if got := len(snap.Segments); got != opts.Segments {
		t.Errorf("segments = %d, want %d", got, opts.Segments)
	}
	if got := len(snap.Environments); got != opts.Environments {
		t.Errorf("environments = %d, want %d", got, opts.Environments)
	}
	operators := map[string]bool{}
	var walk func([]flagrepo.Rule)
	walk = func(rules []flagrepo.Rule) {
		for _, r := range rules {
			for _, c := range r.Conditions {
				operators[c.Operator] = true
			}
			walk(r.Rules)
		}
	}
	for _, s := range snap.Segments {
		walk(s.Rules)
	}
	for _, op := range flagrepo.Operators {
		if !operators[op] {
			t.Errorf("no segment uses operator %s", op)
		}
	}
	multivariate, segOverrides, idOverrides := 0, 0, 0
	for _, f := range snap.Features {
		if f.Multivariate() {
			multivariate++
		}
	}
	for _, e := range snap.Environments {
		if len(e.Features) != opts.Features {
			t.Errorf("environment %s has %d feature files, want %d", e.Key, len(e.Features), opts.Features)
		}
		for _, st := range e.Features {
			segOverrides += len(st.SegmentOverrides)
			idOverrides += len(st.IdentityOverrides)
		}
	}
	if want := opts.Features / opts.MultivariateEvery; multivariate != want {
		t.Errorf("multivariate features = %d, want %d", multivariate, want)
	}
	if want := opts.Features * opts.Environments * opts.SegmentOverridesPerFeature; segOverrides != want {
		t.Errorf("segment overrides = %d, want %d", segOverrides, want)
	}
	if want := opts.Features * opts.Environments * opts.IdentityOverridesPerFeature; idOverrides != want {
		t.Errorf("identity overrides = %d, want %d", idOverrides, want)
	}
}

func TestWriteVariants(t *testing.T) {
	for name, opts := range map[string]repogen.Options{
		"empty":            {},
		"no segments":      {Features: 5, Environments: 2, SegmentOverridesPerFeature: 3, MultivariateEvery: 2},
		"more overrides":   {Seed: 7, Features: 10, Segments: 3, Environments: 4, ConditionsPerSegment: 16, SegmentOverridesPerFeature: 5, IdentityOverridesPerFeature: 3, IdentifiersPerOverride: 4, MultivariateEvery: 1},
		"one segment each": {Seed: 9, Features: 3, Segments: 1, Environments: 1, ConditionsPerSegment: 1, SegmentOverridesPerFeature: 1},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := repogen.Write(dir, opts); err != nil {
				t.Fatal(err)
			}
			load(t, dir)
		})
	}
}

func TestWriteDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	opts := repogen.Small()
	if err := repogen.Write(a, opts); err != nil {
		t.Fatal(err)
	}
	if err := repogen.Write(b, opts); err != nil {
		t.Fatal(err)
	}
	n := 0
	err := filepath.WalkDir(a, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil {
			return err
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same options", rel)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + 1 + 5 + opts.Segments + opts.Features + opts.Environments*(1+opts.Features); n != want {
		t.Errorf("wrote %d files, want %d", n, want)
	}
}

func TestWriteRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := repogen.Write(dir, repogen.Small())
	if err == nil {
		t.Fatal("Write into a non-empty directory succeeded")
	}
	if want := "is not empty"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestWriteRejectsNegative(t *testing.T) {
	if err := repogen.Write(t.TempDir(), repogen.Options{Features: -1}); err == nil {
		t.Fatal("negative options accepted")
	}
}
