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

// buildGitflags builds cmd/gitflags for the tests that spawn real servers.
func buildGitflags(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go is not on PATH (needed to build cmd/gitflags): " + err.Error())
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("the git binary is needed (verification, git http-backend): " + err.Error())
	}
	bin := filepath.Join(t.TempDir(), "gitflags")
	if out, err := exec.Command(goBin, "build", "-o", bin, "github.com/gitflags/gitflags/cmd/gitflags").CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/gitflags: %v\n%s", err, out)
	}
	return bin
}

// runWritesJSON runs the writes mode for real and returns its report.
func runWritesJSON(t *testing.T, args ...string) writesReport {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runWrites(context.Background(), append(args, "--json", "-q"), &out, &errOut)
	var rep writesReport
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		t.Fatalf("run: %v; report is not JSON: %v\n%s\n%s", err, jerr, out.String(), errOut.String())
	}
	if err != nil {
		t.Fatalf("run: %v\nverification: %+v\nstatuses: %v %v", err, rep.Verify, rep.Stats.Statuses, rep.Stats.Samples)
	}
	return rep
}

// checkVerified asserts what every writes run must show: writes were
// acknowledged, each of them is in the history with its value, the
// repositories are clean.
func checkVerified(t *testing.T, rep writesReport, fscks int) {
	t.Helper()
	v := rep.Verify
	if !v.OK || len(v.Failures) > 0 {
		t.Errorf("verification failed: %v", v.Failures)
	}
	if rep.Stats.Acked == 0 || rep.Stats.Statuses["204"] != rep.Stats.Acked {
		t.Errorf("measured: %d acknowledged, statuses %v", rep.Stats.Acked, rep.Stats.Statuses)
	}
	if v.Acked == 0 || v.AckedInHistory != v.Acked || v.Lost != 0 || v.WrongRevision != 0 || v.DuplicateRevisions != 0 {
		t.Errorf("history: %d of %d acknowledged writes found (lost %d, wrong revision %d, duplicates %d)",
			v.AckedInHistory, v.Acked, v.Lost, v.WrongRevision, v.DuplicateRevisions)
	}
	if v.Commits < rep.Config.Commits0+v.Acked {
		t.Errorf("%d commits on the branch, want at least %d before + %d acknowledged", v.Commits, rep.Config.Commits0, v.Acked)
	}
	if len(v.Fsck) != fscks {
		t.Errorf("fsck ran on %d repositories, want %d: %+v", len(v.Fsck), fscks, v.Fsck)
	}
	for _, f := range v.Fsck {
		if f.Error != "" {
			t.Errorf("git fsck --strict %s: %s", f.Repo, f.Error)
		}
	}
	if rep.Stats.Reads == 0 || rep.Stats.ReadErrors != 0 || v.ReadsStale != 0 || rep.Stats.ReadsOwn+uint64(v.ReadsLater) != rep.Stats.Reads {
		t.Errorf("read-backs: %d (own %d, later %d, stale %d, failed %d)", rep.Stats.Reads, rep.Stats.ReadsOwn, v.ReadsLater, v.ReadsStale, rep.Stats.ReadErrors)
	}
}

// TestWritesLocal runs the writes mode against one spawned server on its
// local default repository: every acknowledged write must be in the
// branch's history. Then the verifier itself must catch a write that is
// not in that history and a read that showed an older state.
func TestWritesLocal(t *testing.T) {
	bin := buildGitflags(t)
	work := filepath.Join(t.TempDir(), "work")
	rep := runWritesJSON(t, "--spawn", "--server-bin", bin, "--writers", "10", "--duration", "3s", "--warmup", "0",
		"--sample", "2", "--work", work)
	checkVerified(t, rep, 1)
	if rep.Config.Feature != "api_rate_limit" || rep.Config.Env != "staging" || len(rep.Servers) != 1 {
		t.Errorf("wrote %s: %s through %v, want staging: api_rate_limit through one server", rep.Config.Env, rep.Config.Feature, rep.Servers)
	}
	repo := rep.Repo
	if repo != filepath.Join(work, "server-1", "data", "flags") {
		t.Errorf("verified %s, want the server's default repository", repo)
	}

	// A commit that is not on the branch (as a write lost by a reset or a
	// forced push would be), acknowledged with a value of its own.
	head, err := git(repo, "rev-parse", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	tree, err := git(repo, "rev-parse", "HEAD^{tree}")
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit-tree", "-p", strings.TrimSpace(head),
		"-m", "staging: api_rate_limit value 7 (was 8)", strings.TrimSpace(tree))
	if err != nil {
		t.Fatal(err)
	}
	lost := &writeWorker{acks: []ack{{value: 7, revision: strings.TrimSpace(orphan)}}}
	v := verifyWrites(repo, nil, "staging", "api_rate_limit", []*writeWorker{lost}, 0)
	if v.OK || v.Lost != 1 {
		t.Errorf("an acknowledged commit off the branch: ok %v, lost %d; want a failure", v.OK, v.Lost)
	}

	// A read after the last write that shows the value of the template
	// (600, set by no commit of the run): stale.
	ok := &writeWorker{acks: []ack{{value: 0, revision: strings.TrimSpace(head)}}}
	last, err := git(repo, "log", "-1", "--format=%s")
	if err != nil {
		t.Fatal(err)
	}
	var val string
	if _, after, found := strings.Cut(last, " value "); found {
		val, _, _ = strings.Cut(after, " ")
	}
	if val == "" {
		t.Fatalf("the head's message %q names no value", last)
	}
	ok.acks[0].value = mustAtoi(t, val)
	ok.reads = []readBack{{after: ok.acks[0], seen: "600"}}
	v = verifyWrites(repo, nil, "staging", "api_rate_limit", []*writeWorker{ok}, 0)
	if v.OK || v.ReadsStale != 1 || v.AckedInHistory != 1 {
		t.Errorf("a read showing the value before the run: ok %v, stale %d, in history %d; want one stale read", v.OK, v.ReadsStale, v.AckedInHistory)
	}
}

// TestWritesRemoteTwoServers runs the writes mode against two spawned
// servers that clone the same bare remote over smart HTTP (git http-backend
// on loopback), half the writers on each: their pushes race, rejected ones
// are fetched and applied again, and no acknowledged write may be lost.
func TestWritesRemoteTwoServers(t *testing.T) {
	bin := buildGitflags(t)
	work := filepath.Join(t.TempDir(), "work")
	rep := runWritesJSON(t, "--spawn", "--server-bin", bin, "--remote", "--servers", "2", "--writers", "10", "--duration", "3s",
		"--warmup", "0", "--sample", "2", "--work", work)
	checkVerified(t, rep, 3) // the bare remote and both servers' clones
	if !strings.HasPrefix(rep.Config.Remote, "http://127.0.0.1:") || rep.Repo != filepath.Join(work, "git", "flags.git") {
		t.Errorf("remote %q, verified %s; want smart HTTP on loopback and the bare repository", rep.Config.Remote, rep.Repo)
	}
	if len(rep.Stats.PerURL) != 2 {
		t.Fatalf("per-server figures: %+v", rep.Stats.PerURL)
	}
	for _, p := range rep.Stats.PerURL {
		if p.Acked == 0 {
			t.Errorf("server %s acknowledged no write", p.URL)
		}
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}
