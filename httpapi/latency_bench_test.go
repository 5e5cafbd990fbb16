package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitflags/gitflags"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/gitsync"
	"github.com/gitflags/gitflags/repogen"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// Commit to served: from the moment a commit lands to the moment the HTTP
// server serves it (Server.Publish returned: models compiled, every answer
// precomputed), through gitsync and the real Publish. Each iteration makes a
// commit with the git binary (not timed), then starts the clock
//   - local: when the branch's ref file is renamed into place, as git
//     update-ref does (the last step of git commit, merge or pull); gitsync
//     sees it through fsnotify;
//   - remote: after git push to a bare repository returned, when a webhook
//     would call Trigger; gitsync fetches over file://.
//
// Run with -benchtime=100x; p50 and p99 are in milliseconds.
//
//	go test -run '^$' -bench CommitToServed -benchtime=100x ./httpapi/
//
// The 10,000-feature repository is generated once under GITFLAGS_BENCH_DIR
// when it is set (kept between runs), in a temporary directory otherwise.

var benchAuthor = object.Signature{Name: gittest.Name, Email: gittest.Email, When: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}

// publishTimes records when each revision was published.
type publishTimes struct {
	srv *Server
	mu  sync.Mutex
	at  map[string]time.Time
}

func (s *publishTimes) publish(snap *flagrepo.Snapshot) error {
	if err := s.srv.Publish(snap); err != nil {
		return err
	}
	s.mu.Lock()
	s.at[snap.Revision.SHA] = time.Now()
	s.mu.Unlock()
	return nil
}

// wait returns when sha was served.
func (s *publishTimes) wait(b *testing.B, sha string, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		at, ok := s.at[sha]
		s.mu.Unlock()
		if ok {
			return at
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not served within %s", sha, timeout)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// follow starts a Syncer that publishes to a new Server.
func follow(b *testing.B, opts gitsync.Options) (*gitsync.Syncer, *publishTimes) {
	s := &publishTimes{srv: New(Options{Log: ofrepQuietLog}), at: map[string]time.Time{}}
	opts.Publish = s.publish
	if opts.Interval == 0 {
		opts.Interval = time.Hour
	}
	sy, err := gitsync.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sy.Run(ctx)
	}()
	b.Cleanup(func() { cancel(); <-done })
	return sy, s
}

// commitFile rewrites rel's description in the work tree dir and commits it
// on top of parent without moving any ref.
func commitFile(b *testing.B, dir, rel, parent string, i int) string {
	var doc map[string]any
	data, err := os.ReadFile(filepath.Join(dir, rel))
	if err == nil {
		err = json.Unmarshal(data, &doc)
	}
	if err != nil {
		b.Fatal(err)
	}
	doc["description"] = fmt.Sprintf("bench %d at %d", i, time.Now().UnixNano())
	data, _ = json.MarshalIndent(doc, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, rel), append(data, '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
	gittest.Run(b, dir, "add", rel)
	tree := gittest.Run(b, dir, "write-tree")
	return gittest.Run(b, dir, "commit-tree", tree, "-p", parent, "-m", fmt.Sprint("bench ", i))
}

// moveRef moves ref as git update-ref does: a lock file renamed into place.
func moveRef(b *testing.B, gitDir, ref, sha string) {
	p := filepath.Join(gitDir, filepath.FromSlash(ref))
	if err := os.WriteFile(p+".lock", []byte(sha+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(p+".lock", p); err != nil {
		b.Fatal(err)
	}
}

func benchLocal(b *testing.B, dir, rel string) {
	repo, err := gitstore.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { repo.Close() })
	_, s := follow(b, gitsync.Options{Repo: repo, Branch: "main"})
	parent := gittest.Run(b, dir, "rev-parse", "HEAD")
	s.wait(b, parent, 2*time.Minute)
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		c := commitFile(b, dir, rel, parent, i)
		b.StartTimer()
		t0 := time.Now()
		moveRef(b, filepath.Join(dir, ".git"), "refs/heads/main", c)
		lat = append(lat, s.wait(b, c, 30*time.Second).Sub(t0))
		parent = c
	}
	reportLatencies(b, "", lat)
}

func templateWorkTree(b *testing.B) string {
	gittest.Available(b)
	dir := filepath.Join(b.TempDir(), "flags")
	if _, err := gitstore.Init(dir, gitflags.Template(), benchAuthor); err != nil {
		b.Fatal(err)
	}
	return dir
}

func BenchmarkCommitToServed(b *testing.B) {
	b.Run("repo=template/local", func(b *testing.B) {
		benchLocal(b, templateWorkTree(b), "features/dark_mode.json")
	})
	b.Run("repo=template/remote", func(b *testing.B) {
		work := templateWorkTree(b)
		bare := filepath.Join(b.TempDir(), "remote.git")
		gittest.Run(b, work, "clone", "-q", "--bare", work, bare)
		gittest.Run(b, work, "remote", "add", "origin", bare)
		repo, err := gitstore.Clone(context.Background(), "file://"+bare, filepath.Join(b.TempDir(), "clone"), gitstore.RemoteOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { repo.Close() })
		sy, s := follow(b, gitsync.Options{Repo: repo, Remote: true})
		parent := gittest.Run(b, work, "rev-parse", "HEAD")
		s.wait(b, parent, time.Minute)
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			c := commitFile(b, work, "features/dark_mode.json", parent, i)
			gittest.Run(b, work, "push", "-q", "origin", c+":refs/heads/main")
			b.StartTimer()
			t0 := time.Now()
			sy.Trigger()
			lat = append(lat, s.wait(b, c, 30*time.Second).Sub(t0))
			parent = c
		}
		reportLatencies(b, "", lat)
	})
	b.Run("repo=10000-features/local", func(b *testing.B) {
		benchLocal(b, largeWorkTree(b), "features/"+repogen.FeatureKey(7)+".json")
	})
}
