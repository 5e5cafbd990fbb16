package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitflags/gitflags/repogen"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// BenchmarkAdminWrite measures one admin API write, request to answer (which
// is request to served: the commit is on disk and published before the 204),
// through the whole server in this process, serving a local work tree: the
// template, and the 10,000-feature repository of repogen.Large. Writes go
// one at a time (the write path's latency, not its throughput; see
// gitflags-bench writes for concurrent writers) and are paced to the
// token's write rate limit, untimed. p50 and p99 are in milliseconds.
//
//	go test -run '^$' -bench AdminWrite -benchtime 100x ./cmd/gitflags/
//
// With -cpuprofile the profile covers the server's side of every write.
// The large repository is generated once under GITFLAGS_BENCH_DIR when it is
// set (copied for each run, as writes change it), in a temporary directory
// otherwise.
func BenchmarkAdminWrite(b *testing.B) {
	b.Run("repo=template", func(b *testing.B) {
		dir := filepath.Join(b.TempDir(), "flags")
		if code, out, errOut := runCmd(b, "init", dir); code != 0 {
			b.Fatalf("init: %s%s", out, errOut)
		}
		benchWrites(b, dir, "api_rate_limit")
	})
	b.Run("repo=10000-features", func(b *testing.B) {
		benchWrites(b, largeRepo(b), "")
	})
}

// largeRepo returns a fresh copy of a committed repogen.Large() work tree.
func largeRepo(b *testing.B) string {
	gittest.Available(b)
	root := os.Getenv("GITFLAGS_BENCH_DIR")
	if root == "" {
		root = b.TempDir()
	}
	src := filepath.Join(root, "cmd-large")
	if _, err := os.Stat(src + ".ready"); err != nil {
		os.RemoveAll(src)
		if err := repogen.Write(src, repogen.Large()); err != nil {
			b.Fatal(err)
		}
		if _, err := gittest.CommitDir(src, "Generated flag repository"); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(src+".ready", nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	dir := filepath.Join(b.TempDir(), "flags")
	gittest.Run(b, root, "clone", "-q", src, dir)
	return dir
}

func benchWrites(b *testing.B, dir, feature string) {
	var env struct {
		ClientKey string `json:"client_key"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "environments", "staging", "environment.json"))
	if err != nil || json.Unmarshal(raw, &env) != nil || env.ClientKey == "" {
		b.Fatalf("staging's client key: %v %s", err, raw)
	}
	if feature == "" {
		feature = integerFeature(b, dir)
	}
	b.Setenv("GITFLAGS_ADMIN_TOKEN", "bench-admin-token")
	base := startServe(b, "--repo", dir, "--data", filepath.Join(b.TempDir(), "data"), "--log-level", "error")
	url := base + "/api/experiments/environments/" + env.ClientKey + "/update-flag-v1/"
	const pace = 110 * time.Millisecond // the token's write rate limit is 10/s
	var lat []time.Duration
	last := time.Now()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		time.Sleep(pace - time.Since(last))
		body := fmt.Sprintf(`{"feature": {"name": %q}, "enabled": true, "value": {"type": "integer", "value": "%d"}}`, feature, 100000+i)
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer bench-admin-token")
		req.Header.Set("Content-Type", "application/json")
		b.StartTimer()
		last = time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(last)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			b.Fatalf("write %d: %d", i, resp.StatusCode)
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// integerFeature returns the first feature of dir with an integer default
// and no variants.
func integerFeature(b *testing.B, dir string) string {
	entries, err := os.ReadDir(filepath.Join(dir, "features"))
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, "features", e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		var f struct {
			Default  struct{ Value json.RawMessage }
			Variants []json.RawMessage
		}
		if json.Unmarshal(raw, &f) != nil || len(f.Variants) > 0 {
			continue
		}
		if _, err := strconv.ParseInt(string(f.Default.Value), 10, 64); err == nil {
			return strings.TrimSuffix(e.Name(), ".json")
		}
	}
	b.Fatalf("no feature with an integer default in %s", dir)
	return ""
}
