package evaluator

import (
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen"
)

// BenchmarkAppendFlagsGenerated evaluates every flag of a generated
// repository of 100 features and 100 segments (what the load tool's
// `genrepo --features 100` writes, for its "OFREP bulk over 100 flags") for one identity whose traits walk the
// segment rules: REGEX, semver, IN, comparisons and percentage splits.
//
//	go test -run '^$' -bench AppendFlagsGenerated -benchmem ./evaluator/
func BenchmarkAppendFlagsGenerated(b *testing.B) {
	dir := b.TempDir()
	opts := repogen.Large()
	opts.Features, opts.Segments = 100, 100
	if err := repogen.Write(dir, opts); err != nil {
		b.Fatal(err)
	}
	files, err := flagrepo.DirFiles(dir)
	if err != nil {
		b.Fatal(err)
	}
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: "bench"}, files, nil)
	if err != nil {
		b.Fatal(err)
	}
	models, err := CompileSnapshot(snap, nil)
	if err != nil {
		b.Fatal(err)
	}
	m := models["production"]
	id := &Identity{Identifier: "user-42@example.com", Traits: map[string]any{
		"plan": "enterprise", "lifetime_value": 2500.0, "beta_tester": true, "country": "DE", "user_id": 42.0,
		"app_version": "3.4.0", "age": 30.0, "orders": "12", "email": "user-42@example.com", "company": "acme", "platform": "ios",
	}}
	buf := m.AppendFlags(nil, id)
	if len(buf) != 100 {
		b.Fatalf("%d flags", len(buf))
	}
	b.ReportAllocs()
	for b.Loop() {
		buf = m.AppendFlags(buf[:0], id)
	}
}
