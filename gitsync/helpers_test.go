package gitsync

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"go.uber.org/goleak"

	"github.com/gitflags/gitflags"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/repogen/gittest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a Publish function that records what it was given. Git is real;
// only the server's side of Publish is replaced.
type recorder struct {
	mu    sync.Mutex
	snaps []*flagrepo.Snapshot
	at    []time.Time
	fail  error // returned instead of accepting, when set
}

func (r *recorder) publish(s *flagrepo.Snapshot) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.snaps = append(r.snaps, s)
	r.at = append(r.at, time.Now())
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.snaps)
}

func (r *recorder) last() *flagrepo.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.snaps) == 0 {
		return nil
	}
	return r.snaps[len(r.snaps)-1]
}

func (r *recorder) lastSHA() string {
	if s := r.last(); s != nil {
		return s.Revision.SHA
	}
	return ""
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start runs a Syncer until the test ends.
func start(t testing.TB, opts Options) (*Syncer, *recorder, *logBuffer) {
	t.Helper()
	rec := &recorder{}
	logs := &logBuffer{}
	if opts.Publish == nil {
		opts.Publish = rec.publish
	}
	if opts.Log == nil {
		opts.Log = logs.logger()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s, rec, logs
}

var author = object.Signature{Name: gittest.Name, Email: gittest.Email, When: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}

// templateRepo creates a work tree holding the template, committed on main.
func templateRepo(t testing.TB) string {
	t.Helper()
	gittest.Available(t)
	dir := filepath.Join(t.TempDir(), "flags")
	if _, err := gitstore.Init(dir, gitflags.Template(), author); err != nil {
		t.Fatal(err)
	}
	return dir
}

func openRepo(t testing.TB, dir string) *gitstore.Repo {
	t.Helper()
	r, err := gitstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// setDescription rewrites the description of the template's dark_mode
// feature in the work tree dir.
func setDescription(t testing.TB, dir, desc string) {
	t.Helper()
	writeFile(t, dir, "features/dark_mode.json", fmt.Sprintf(`{
  "$schema": "../schemas/feature.schema.json",
  "id": 1005,
  "description": %q,
  "default": {
    "enabled": false
  },
  "owners": ["mobile"],
  "tags": ["ui"]
}
`, desc))
}

// breakFeature makes dark_mode invalid: a string id and an unknown field.
func breakFeature(t testing.TB, dir string) {
	t.Helper()
	writeFile(t, dir, "features/dark_mode.json", `{
  "$schema": "../schemas/feature.schema.json",
  "id": "not-a-number",
  "default": {
    "enabled": false
  },
  "colour": "purple"
}
`)
}

func writeFile(t testing.TB, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// commit commits everything in dir with the git binary and returns the hash.
func commit(t testing.TB, dir, msg string) string {
	t.Helper()
	gittest.Run(t, dir, "add", "-A")
	gittest.Run(t, dir, "commit", "-q", "-m", msg)
	return gittest.Run(t, dir, "rev-parse", "HEAD")
}

func description(s *flagrepo.Snapshot) string {
	if s == nil || s.Features["dark_mode"] == nil {
		return ""
	}
	return s.Features["dark_mode"].Description
}

// writeRefAtomically points ref (a path under gitDir) at sha the way git
// does: write a lock file, then rename it over the ref.
func writeRefAtomically(t testing.TB, gitDir, ref, sha string) {
	t.Helper()
	p := filepath.Join(gitDir, filepath.FromSlash(ref))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".lock", []byte(sha+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".lock", p); err != nil {
		t.Fatal(err)
	}
}

// commitTree makes a commit of dir's work tree with the git binary without
// moving any ref, returning its hash.
func commitTree(t testing.TB, dir, parent, msg string) string {
	t.Helper()
	gittest.Run(t, dir, "add", "-A")
	tree := gittest.Run(t, dir, "write-tree")
	return gittest.Run(t, dir, "commit-tree", tree, "-p", parent, "-m", msg)
}

func mustNotContain(t testing.TB, what, s, secret string) {
	t.Helper()
	if strings.Contains(s, secret) {
		t.Fatalf("%s contains the secret %q: %s", what, secret, s)
	}
}
