package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpawnDefaultRepository starts a real gitflags server with --spawn and
// no --repo: the server creates its default repository with fresh client
// keys, and the tool must send those, not the template's.
func TestSpawnDefaultRepository(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go is not on PATH (needed to build cmd/gitflags): " + err.Error())
	}
	bin := filepath.Join(t.TempDir(), "gitflags")
	if out, err := exec.Command(goBin, "build", "-o", bin, "github.com/gitflags/gitflags/cmd/gitflags").CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/gitflags: %v\n%s", err, out)
	}
	var out, errOut bytes.Buffer
	args := []string{"--spawn", "--server-bin", bin, "--scenarios", "flags,ofrep-single", "--baseline=false",
		"--rounds", "1", "--requests", "20", "--warmup", "0", "-c", "2", "--json"}
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if len(rep.Results) != 2 {
		t.Fatalf("got %d scenarios, want 2\n%s", len(rep.Results), errOut.String())
	}
	for _, r := range rep.Results {
		if r.Skipped != "" || r.Status != 200 || r.Gitflags == nil {
			t.Errorf("%s: status %d, skipped %q; want 200 measured", r.Name, r.Status, r.Skipped)
			continue
		}
		if n := r.Gitflags.failures(); n != 0 {
			t.Errorf("%s: %d failures: %+v", r.Name, n, *r.Gitflags)
		}
	}
	if !strings.Contains(rep.Repo, filepath.Join("server-data", "flags")) {
		t.Errorf("report names the repository %q, want the spawned server's default repository", rep.Repo)
	}
}

// TestNoRepositoryNoKey: without --spawn, --repo or --key, the tool cannot
// know the running server's client keys (every repository has its own) and
// says so instead of sending the template's.
func TestNoRepositoryNoKey(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--url", "http://127.0.0.1:1", "--rounds", "1", "-q"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--key") || !strings.Contains(err.Error(), "--repo") {
		t.Fatalf("run without --repo or --key: error %v, want one asking for --repo or --key", err)
	}
}
