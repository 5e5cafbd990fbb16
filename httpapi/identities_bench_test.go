package httpapi

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/identities"
	"github.com/gitflags/gitflags/repogen"
)

// BenchmarkPostIdentity measures POST /api/v1/identities/ with 5 traits that
// are already stored (the common SDK call), through the full handler, on the
// template and on a generated repository of 1,000 features and 100 segments
// (what `gitflags-bench genrepo` makes). cache=hit asks again for one of
// 1,000 identities (their results are cached); cache=miss asks for a new,
// transient identity every time (nothing stored), so every call evaluates
// every flag.
//
//	go test -run '^$' -bench PostIdentity -benchmem ./httpapi/
func BenchmarkPostIdentity(b *testing.B) {
	b.Run("repo=template/cache=hit", func(b *testing.B) { benchIdentity(b, fsFixtureFiles(b), prodKey, true) })
	b.Run("repo=template/cache=miss", func(b *testing.B) { benchIdentity(b, fsFixtureFiles(b), prodKey, false) })
	large := func(b *testing.B) ([]flagrepo.File, string) {
		dir := filepath.Join(b.TempDir(), "repo")
		o := repogen.Large()
		o.Features, o.Segments = 1000, 100
		if err := repogen.Write(dir, o); err != nil {
			b.Fatal(err)
		}
		files, err := flagrepo.DirFiles(dir)
		if err != nil {
			b.Fatal(err)
		}
		return files, ""
	}
	b.Run("repo=1000-features/cache=hit", func(b *testing.B) { files, _ := large(b); benchIdentity(b, files, "", true) })
	b.Run("repo=1000-features/cache=miss", func(b *testing.B) { files, _ := large(b); benchIdentity(b, files, "", false) })
}

// benchIdentity serves files and posts identities to the production
// environment (key, or the production environment's client key when empty).
func benchIdentity(b *testing.B, files []flagrepo.File, key string, repeat bool) {
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: "fedcba9876543210", Time: fsFixtureTime}, files, nil)
	if err != nil {
		b.Fatal(err)
	}
	if key == "" {
		key = snap.Environments["production"].ClientKey
	}
	store, err := identities.Open(filepath.Join(b.TempDir(), "identities.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	srv := New(Options{Identities: store, Log: slog.New(slog.DiscardHandler)})
	if err := srv.Publish(snap); err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	body := func(i int, transient bool) []byte {
		return fmt.Appendf(nil, `{"identifier": "user-%d", "transient": %v, "traits": [
			{"trait_key": "email", "trait_value": "user-%d@example.com"}, {"trait_key": "plan", "trait_value": "pro"},
			{"trait_key": "lifetime_value", "trait_value": %d}, {"trait_key": "country", "trait_value": "DE"},
			{"trait_key": "beta_tester", "trait_value": %v}]}`, i, transient, i, i*7, i%3 == 0)
	}
	w := &discardWriter{header: http.Header{}}
	do := func(body []byte) {
		req, _ := http.NewRequest(http.MethodPost, "/api/v1/identities/", bytes.NewReader(body))
		req.Header.Set("X-Environment-Key", key)
		req.Header.Set("Content-Type", "application/json")
		w.status = 0
		clear(w.header)
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = body(i, false)
		do(bodies[i]) // store the traits once
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if repeat {
			do(bodies[i%len(bodies)])
		} else {
			do(body(len(bodies)+i, true))
		}
	}
}

// discardWriter is a ResponseWriter that keeps only the status, so that the
// benchmark measures the handler, not a recorder's buffer.
type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header { return d.header }

func (d *discardWriter) WriteHeader(status int) {
	if d.status == 0 {
		d.status = status
	}
}

func (d *discardWriter) Write(p []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	return len(p), nil
}
