package flagsmithdoc

import (
	"path/filepath"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen"
)

// benchDocument exports one environment of a generated repository with
// n features: a Flagsmith environment document with segments (every
// condition operator, nested rules), segment overrides, multivariate splits
// and identity overrides.
func benchDocument(b *testing.B, n int) []byte {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "repo")
	opts := repogen.Options{
		Seed: 1, Features: n, Segments: n / 10, Environments: 1, ConditionsPerSegment: 4,
		MultivariateEvery: 5, SegmentOverridesPerFeature: 2, IdentityOverridesPerFeature: 1, IdentifiersPerOverride: 2,
	}
	if err := repogen.Write(dir, opts); err != nil {
		b.Fatal(err)
	}
	files, err := flagrepo.DirFiles(dir)
	if err != nil {
		b.Fatal(err)
	}
	snap, err := flagrepo.Load(flagrepo.WorkingRevision(), files, nil)
	if err != nil {
		b.Fatal(err)
	}
	docs, err := Export(snap)
	if err != nil {
		b.Fatal(err)
	}
	return docs[repogen.EnvironmentKey(0)]
}

// BenchmarkImport1000 imports a 1,000-feature environment document: read,
// convert, encode every file and validate the repository (the figure in
// the README).
func BenchmarkImport1000(b *testing.B) {
	doc := benchDocument(b, 1000)
	b.SetBytes(int64(len(doc)))
	b.ResetTimer()
	for b.Loop() {
		res, err := Import([]Source{{Name: "development.json", Data: doc}})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Issues) != 0 || len(res.Snapshot.Features) != 1000 {
			b.Fatalf("%d issues (%v), %d features", len(res.Issues), res.Issues, len(res.Snapshot.Features))
		}
	}
}
