package commits

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"go.uber.org/goleak"

	"github.com/gitflags/gitflags"
	"github.com/gitflags/gitflags/edit"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/gitsync"
	"github.com/gitflags/gitflags/repogen/gittest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	author    = object.Signature{Name: "Jane Doe", Email: "jane@acme.example"}
	committer = object.Signature{Name: "gitflags server", Email: "server@gitflags.test"}
)

// fixture is a flag repository from the template, followed by a running
// Syncer that publishes into served, and a Writer.
type fixture struct {
	dir    string
	repo   *gitstore.Repo
	sync   *gitsync.Syncer
	w      *Writer
	mu     sync.Mutex
	served []*flagrepo.Snapshot
}

func (f *fixture) publish(s *flagrepo.Snapshot) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.served = append(f.served, s)
	return nil
}

func (f *fixture) last() *flagrepo.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served[len(f.served)-1]
}

// newFixture opens dir (a repository, or with remote a clone made by
// gitstore.Clone) and starts a Syncer and a Writer on it.
func newFixture(t *testing.T, dir string, remote bool, opts Options) *fixture {
	t.Helper()
	f := &fixture{dir: dir}
	repo, err := gitstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f.repo = repo
	sy, err := gitsync.New(gitsync.Options{Repo: repo, Remote: remote, Publish: f.publish, Interval: time.Hour,
		Reconcile: func(ctx context.Context) (string, error) { return f.w.Reconcile(ctx) }})
	if err != nil {
		t.Fatal(err)
	}
	f.sync = sy
	opts.Repo, opts.Sync, opts.Remote, opts.Committer = repo, sy, remote, committer
	if f.w, err = New(opts); err != nil {
		t.Fatal(err)
	}
	if err := sy.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = sy.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; repo.Close() })
	return f
}

// templateRepo makes a work tree holding the template, committed on main.
func templateRepo(t *testing.T) string {
	t.Helper()
	gittest.Available(t)
	dir := filepath.Join(t.TempDir(), "flags")
	if _, err := gitstore.Init(dir, gitflags.Template(), gitstore.DefaultAuthor()); err != nil {
		t.Fatal(err)
	}
	return dir
}

// setRateLimit is an edit of api_rate_limit in staging (production requires
// review in the template).
func setRateLimit(v int64) func(*flagrepo.Snapshot, edit.Files) (edit.Result, error) {
	return setRateLimitIn("staging", v)
}

func setRateLimitIn(env string, v int64) func(*flagrepo.Snapshot, edit.Files) (edit.Result, error) {
	return func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
		return edit.SetFeatureState(snap, files, env, "api_rate_limit", edit.State{Value: flagrepo.OptionalValue{Set: true, Value: v}})
	}
}

func rateLimit(t *testing.T, snap *flagrepo.Snapshot) any {
	t.Helper()
	st := snap.Environments["staging"].Features["api_rate_limit"]
	if st == nil || !st.Value.Set {
		t.Fatalf("staging has no api_rate_limit value")
	}
	return st.Value.Value
}

func git(t *testing.T, dir string, args ...string) string { return gittest.Run(t, dir, args...) }

func TestWriteCommitsAndServes(t *testing.T) {
	f := newFixture(t, templateRepo(t), false, Options{})
	before := git(t, f.dir, "rev-parse", "HEAD")
	res, err := f.w.Write(context.Background(), Request{Edit: setRateLimit(1234), Author: author})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.Revision == before || !strings.Contains(res.Summary, "api_rate_limit") {
		t.Fatalf("result %+v", res)
	}
	// Served before Write returned.
	if got := f.last(); got.Revision.SHA != res.Revision || rateLimit(t, got) != int64(1234) {
		t.Fatalf("served %s (rate limit %v), want %s", got.Revision.SHA, rateLimit(t, got), res.Revision)
	}
	// One commit on main, by the caller, committed by the server, and the
	// work tree followed.
	if head := git(t, f.dir, "rev-parse", "HEAD"); head != res.Revision {
		t.Fatalf("HEAD %s, want %s", head, res.Revision)
	}
	if got := git(t, f.dir, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s|%P"); got != "Jane Doe <jane@acme.example>|gitflags server <server@gitflags.test>|"+res.Summary+"|"+before {
		t.Errorf("commit: %s", got)
	}
	if got := git(t, f.dir, "show", "--format=", "--name-only", "HEAD"); got != "environments/staging/features/api_rate_limit.json" {
		t.Errorf("files changed: %q", got)
	}
	if st := git(t, f.dir, "status", "--porcelain"); st != "" {
		t.Errorf("work tree not clean: %s", st)
	}
	git(t, f.dir, "fsck", "--strict")
}

func TestWriteNothingChanged(t *testing.T) {
	f := newFixture(t, templateRepo(t), false, Options{})
	head := git(t, f.dir, "rev-parse", "HEAD")
	res, err := f.w.Write(context.Background(), Request{Edit: setRateLimit(5000), Author: author}) // the template's value
	if err != nil {
		t.Fatal(err)
	}
	if res.Changed || res.Revision != head || git(t, f.dir, "rev-parse", "HEAD") != head {
		t.Fatalf("a write that changes nothing made a commit: %+v", res)
	}
}

func TestWriteInvalidCommitsNothing(t *testing.T) {
	f := newFixture(t, templateRepo(t), false, Options{})
	head := git(t, f.dir, "rev-parse", "HEAD")
	served := len(f.served)
	// An override of a segment that does not exist: edit does not check
	// references, the validation of the whole snapshot does.
	breakRef := func(_ *flagrepo.Snapshot, _ edit.Files) (edit.Result, error) {
		return edit.Result{Summary: "broken", Changes: map[string][]byte{
			"environments/staging/features/dark_mode.json": []byte(`{"segment_overrides": [{"segment": "nobody", "priority": 1, "enabled": true}]}` + "\n"),
		}}, nil
	}
	_, err := f.w.Write(context.Background(), Request{Edit: breakRef, Author: author})
	var ve *flagrepo.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("Write = %v, want a validation error naming the segment", err)
	}
	if git(t, f.dir, "rev-parse", "HEAD") != head || len(f.served) != served {
		t.Fatal("an invalid write moved the branch or was served")
	}
}

func TestWriteIfMatch(t *testing.T) {
	f := newFixture(t, templateRepo(t), false, Options{})
	head := git(t, f.dir, "rev-parse", "HEAD")
	if _, err := f.w.Write(context.Background(), Request{Edit: setRateLimit(1), Author: author, IfMatch: "0123456789012345678901234567890123456789"}); !errors.Is(err, ErrStale) {
		t.Fatalf("stale If-Match: %v", err)
	}
	res, err := f.w.Write(context.Background(), Request{Edit: setRateLimit(1), Author: author, IfMatch: head})
	if err != nil || !res.Changed {
		t.Fatalf("current If-Match: %+v %v", res, err)
	}
}

// TestWriteKeepsCommitByHand: a commit made by hand after the write read the
// head is kept; the edit is applied again on top of it.
func TestWriteKeepsCommitByHand(t *testing.T) {
	f := newFixture(t, templateRepo(t), false, Options{})
	var calls int
	res, err := f.w.Write(context.Background(), Request{Author: author, Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
		calls++
		if calls == 1 { // someone commits meanwhile
			p := filepath.Join(f.dir, "features", "dark_mode.json")
			data, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(data), `"description": "`, `"description": "By hand. `, 1)), 0o644)
			git(t, f.dir, "commit", "-qam", "by hand")
		}
		return setRateLimit(77)(snap, files)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("edit applied %d times, want 2", calls)
	}
	if got := git(t, f.dir, "log", "-2", "--format=%an|%s"); got != "Jane Doe|"+res.Summary+"\n"+gittest.Name+"|by hand" {
		t.Errorf("history:\n%s", got)
	}
	if !strings.Contains(git(t, f.dir, "show", "HEAD~1:features/dark_mode.json"), "By hand.") || f.last().Revision.SHA != res.Revision {
		t.Error("the commit by hand was lost or the write not served")
	}
}

func TestConcurrentWrites(t *testing.T) {
	f := newFixture(t, templateRepo(t), false, Options{})
	before := git(t, f.dir, "rev-parse", "HEAD")
	const n = 20
	var wg sync.WaitGroup
	revs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := f.w.Write(context.Background(), Request{Edit: setRateLimit(int64(1000 + i)), Author: author})
			if err != nil {
				t.Error(err)
				return
			}
			revs <- res.Revision
		}()
	}
	wg.Wait()
	close(revs)
	log := strings.Split(git(t, f.dir, "rev-list", before+"..HEAD"), "\n")
	if len(log) != n {
		t.Fatalf("%d commits, want %d", len(log), n)
	}
	inLog := map[string]bool{}
	for _, c := range log {
		inLog[c] = true
	}
	for r := range revs {
		if !inLog[r] {
			t.Errorf("acknowledged write %s is not in history", r)
		}
	}
	git(t, f.dir, "fsck", "--strict")
}

func TestWriteQueueBound(t *testing.T) {
	f := newFixture(t, templateRepo(t), false, Options{Queue: 1})
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := f.w.Write(context.Background(), Request{Author: author, Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			close(entered)
			<-release
			return setRateLimit(5)(snap, files)
		}})
		done <- err
	}()
	<-entered
	if _, err := f.w.Write(context.Background(), Request{Edit: setRateLimit(6), Author: author}); !errors.Is(err, ErrBusy) {
		t.Errorf("a write over the queue: %v, want ErrBusy", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestPropose(t *testing.T) {
	f := newFixture(t, templateRepo(t), false, Options{})
	head := git(t, f.dir, "rev-parse", "HEAD")
	served := len(f.served)
	for _, c := range []struct {
		name    string
		req     Request
		review  string
		content string
	}{
		{"asked", Request{Edit: setRateLimit(9), Propose: true, Proposal: "staging/api_rate_limit"}, "", "environments/staging/features/api_rate_limit.json"},
		// production has review_required: a write to it is proposed unasked,
		{"review", Request{Edit: setRateLimitIn("production", 9), Proposal: "production/api_rate_limit"}, "production", "environments/production/features/api_rate_limit.json"},
		// and so is a change to what every environment shares.
		{"shared", Request{Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			d := "Changed."
			return edit.UpdateFeature(snap, files, "api_rate_limit", edit.FeatureSpec{Description: &d})
		}, Proposal: "api_rate_limit"}, "production", "features/api_rate_limit.json"},
	} {
		c.req.Author = author
		res, err := f.w.Write(context.Background(), c.req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := "gitflags/" + c.req.Proposal + "-" + res.Revision[:8]
		if res.Branch != want || res.URL != "" || res.Review != c.review {
			t.Fatalf("%s: proposal %+v, want branch %s, review %q and no URL (no remote)", c.name, res, want, c.review)
		}
		if got := git(t, f.dir, "rev-parse", "refs/heads/"+want); got != res.Revision {
			t.Fatalf("%s: branch at %s, want %s", c.name, got, res.Revision)
		}
		if got := git(t, f.dir, "diff", "--name-only", head, want); got != c.content {
			t.Errorf("%s: proposal changes %q, want %q", c.name, got, c.content)
		}
	}
	if git(t, f.dir, "rev-parse", "HEAD") != head || len(f.served) != served {
		t.Fatal("a proposal moved or served the served branch")
	}
}

// remoteFixture is a bare remote holding the template, a clone the server
// follows, and a second clone for "someone else".
func remoteFixture(t *testing.T, opts Options) (f *fixture, remote, other string) {
	t.Helper()
	src := templateRepo(t)
	tmp := t.TempDir()
	remote = filepath.Join(tmp, "remote.git")
	git(t, tmp, "clone", "-q", "--bare", src, remote)
	clone := filepath.Join(tmp, "clone")
	repo, err := gitstore.Clone(context.Background(), "file://"+remote, clone, gitstore.RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	repo.Close()
	other = filepath.Join(tmp, "other")
	git(t, tmp, "clone", "-q", remote, other)
	return newFixture(t, clone, true, opts), remote, other
}

func TestWriteRemote(t *testing.T) {
	f, remote, other := remoteFixture(t, Options{})
	res, err := f.w.Write(context.Background(), Request{Edit: setRateLimit(4242), Author: author})
	if err != nil {
		t.Fatal(err)
	}
	if got := git(t, remote, "rev-parse", "main"); got != res.Revision {
		t.Fatalf("remote main at %s, want the write %s", got, res.Revision)
	}
	if f.last().Revision.SHA != res.Revision {
		t.Fatal("the pushed write is not served")
	}

	// Someone else pushes; the next write is rejected, fetches, applies
	// again on their commit and pushes.
	p := filepath.Join(other, "features", "dark_mode.json")
	git(t, other, "pull", "-q")
	data, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(data), `"description": "`, `"description": "Elsewhere. `, 1)), 0o644)
	git(t, other, "-c", "user.name=Other", "-c", "user.email=o@example.com", "commit", "-qam", "elsewhere")
	git(t, other, "push", "-q")
	theirs := git(t, other, "rev-parse", "HEAD")
	res, err = f.w.Write(context.Background(), Request{Edit: setRateLimit(4343), Author: author})
	if err != nil {
		t.Fatal(err)
	}
	if got := git(t, remote, "rev-parse", "main~1"); got != theirs {
		t.Fatalf("the write's parent is %s, want the other commit %s", got, theirs)
	}
	if git(t, remote, "rev-parse", "main") != res.Revision || f.last().Revision.SHA != res.Revision {
		t.Fatal("the retried write is not pushed and served")
	}
	git(t, remote, "fsck", "--strict")
}

func TestWriteRemoteUnavailable(t *testing.T) {
	f, remote, _ := remoteFixture(t, Options{})
	if err := os.Rename(remote, remote+".gone"); err != nil {
		t.Fatal(err)
	}
	served := f.last().Revision.SHA
	_, err := f.w.Write(context.Background(), Request{Edit: setRateLimit(1), Author: author})
	if !errors.Is(err, gitstore.ErrRemoteUnavailable) {
		t.Fatalf("Write with the remote gone = %v, want ErrRemoteUnavailable", err)
	}
	if f.last().Revision.SHA != served {
		t.Fatal("a write that was not pushed is served")
	}
}

func TestPullRequestURL(t *testing.T) {
	for _, c := range []struct{ remote, want string }{
		{"https://github.com/acme/flags.git", "https://github.com/acme/flags/compare/main...gitflags%2Fproduction%2Fx-1?expand=1"},
		{"git@github.com:acme/flags.git", "https://github.com/acme/flags/compare/main...gitflags%2Fproduction%2Fx-1?expand=1"},
		{"ssh://git@gitlab.com/acme/sub/flags.git", "https://gitlab.com/acme/sub/flags/-/merge_requests/new?merge_request%5Bsource_branch%5D=gitflags%2Fproduction%2Fx-1&merge_request%5Btarget_branch%5D=main"},
		{"https://git.example.com/acme/flags.git", ""},
		{"", ""},
	} {
		if got := pullRequestURL(c.remote, "main", "gitflags/production/x-1"); got != c.want {
			t.Errorf("pullRequestURL(%q) = %q, want %q", c.remote, got, c.want)
		}
	}
}

// commitElsewhere commits a change of path (a JSON "description" prefix) in
// the other clone and pushes it.
func commitElsewhere(t *testing.T, other, path, text string) string {
	t.Helper()
	git(t, other, "pull", "-q")
	p := filepath.Join(other, path)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out := regexp.MustCompile(`"value": \d+`).ReplaceAllString(string(data), `"value": 5001`)
	if !strings.Contains(path, "api_rate_limit") {
		out = strings.Replace(string(data), `"description": "`, `"description": "`+text+` `, 1)
	}
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, other, "commit", "-qam", text)
	git(t, other, "push", "-q")
	return git(t, other, "rev-parse", "HEAD")
}

func TestOfflineWrites(t *testing.T) {
	f, remote, other := remoteFixture(t, Options{OfflineWrites: true})
	gone := remote + ".gone"
	ctx := context.Background()

	// The remote goes away: writes are committed locally and served.
	os.Rename(remote, gone)
	a, err := f.w.Write(ctx, Request{Edit: setRateLimit(1), Author: author})
	if err != nil || a.Unpushed != 1 {
		t.Fatalf("first offline write: %+v %v", a, err)
	}
	b, err := f.w.Write(ctx, Request{Edit: setRateLimit(2), Author: author})
	if err != nil || b.Unpushed != 2 || f.last().Revision.SHA != b.Revision {
		t.Fatalf("second offline write: %+v %v (served %s)", b, err, f.last().Revision.SHA)
	}
	if st := f.w.Status(); st.Unpushed != 2 || st.UnpushedSince.IsZero() || st.LastPushError == "" {
		t.Errorf("status %+v", st)
	}
	// A sync with the remote still down serves what was written.
	if err := f.sync.Sync(ctx); err == nil || f.last().Revision.SHA != b.Revision {
		t.Fatalf("sync with the remote down: %v, serving %s", err, f.last().Revision.SHA)
	}

	// It comes back, having moved (another file): the commits are applied
	// again on its head, pushed and served.
	os.Rename(gone, remote)
	theirs := commitElsewhere(t, other, "features/dark_mode.json", "Elsewhere.")
	if err := f.sync.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	log := git(t, remote, "log", "--format=%an|%s", "-3", "main")
	if !strings.HasPrefix(log, "Jane Doe|staging: api_rate_limit value 2 (was 1)\nJane Doe|staging: api_rate_limit value 1 (was 5000)\n") {
		t.Fatalf("remote history:\n%s", log)
	}
	if git(t, remote, "rev-parse", "main~2") != theirs || f.last().Revision.SHA != git(t, remote, "rev-parse", "main") {
		t.Fatal("the replayed commits are not on top of the remote's or not served")
	}
	if st := f.w.Status(); st.Unpushed != 0 || st.LastPushError != "" {
		t.Errorf("status after the push %+v", st)
	}
	git(t, remote, "fsck", "--strict")

	// Down again; two writes wait, and meanwhile someone changes the file
	// of the first: it no longer applies, the second still does.
	os.Rename(remote, gone)
	c, err := f.w.Write(ctx, Request{Edit: setRateLimit(3), Author: author})
	if err != nil || c.Unpushed != 1 {
		t.Fatalf("offline write: %+v %v", c, err)
	}
	d, err := f.w.Write(ctx, Request{Author: author, Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
		on := true
		return edit.SetFeatureState(snap, files, "staging", "dark_mode", edit.State{Enabled: &on})
	}})
	if err != nil || d.Unpushed != 2 {
		t.Fatalf("second offline write: %+v %v", d, err)
	}
	// A restart with the remote still down finds both waiting.
	restarted, err := New(Options{Repo: f.repo, Sync: f.sync, Remote: true, Committer: committer, OfflineWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := restarted.Status(); st.Unpushed != 2 || st.LastPushError == "" {
		t.Errorf("status after a restart: %+v", st)
	}
	os.Rename(gone, remote)
	commitElsewhere(t, other, "environments/staging/features/api_rate_limit.json", "clash")
	err = f.sync.Sync(ctx)
	st := f.w.Status()
	if !errors.Is(err, ErrConflict) || len(st.Kept) != 1 || !strings.Contains(err.Error(), st.Kept[0]) || !strings.Contains(err.Error(), "api_rate_limit.json") {
		t.Fatalf("sync after a clash: %v, status %+v", err, st)
	}
	// All the waiting commits are kept on a branch, here and on the remote.
	for _, dir := range []string{f.dir, remote} {
		if got := git(t, dir, "rev-parse", "refs/heads/"+st.Kept[0]); got != d.Revision {
			t.Errorf("kept branch in %s at %s, want the unpushed head %s", dir, got, d.Revision)
		}
	}
	// The one that still applies is pushed and served; the other is not.
	if got := git(t, remote, "log", "-1", "--format=%an|%s", "main"); !strings.HasPrefix(got, "Jane Doe|staging: dark_mode on") {
		t.Errorf("remote head: %s", got)
	}
	if f.last().Revision.SHA != git(t, remote, "rev-parse", "main") || st.Unpushed != 0 {
		t.Errorf("served %s, remote main %s, status %+v", f.last().Revision.SHA, git(t, remote, "rev-parse", "main"), st)
	}
	if v := rateLimit(t, f.last()); v != int64(5001) {
		t.Errorf("served api_rate_limit %v, want the remote's 5001", v)
	}
}

func TestOfflineWritesOff(t *testing.T) {
	f, remote, _ := remoteFixture(t, Options{})
	os.Rename(remote, remote+".gone")
	if _, err := f.w.Write(context.Background(), Request{Edit: setRateLimit(1), Author: author}); !errors.Is(err, gitstore.ErrRemoteUnavailable) {
		t.Fatalf("write with the remote down: %v", err)
	}
	if st := f.w.Status(); st.Unpushed != 0 {
		t.Errorf("status %+v", st)
	}
}

// TestOfflineWritesHangingRemote: a remote that accepts connections and
// never answers holds up at most the first write (for PushTimeout); the
// next ones are kept locally at once, and a client that leaves does not
// lose its write.
func TestOfflineWritesHangingRemote(t *testing.T) {
	f, _, _ := remoteFixture(t, Options{OfflineWrites: true, PushTimeout: 500 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	// The Syncer's first fetch (when Run starts) goes to the real remote.
	for deadline := time.Now().Add(20 * time.Second); f.sync.Status().Successes < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the Syncer did not fetch at start")
		}
	}
	git(t, f.dir, "remote", "set-url", "origin", "http://"+ln.Addr().String()+"/flags.git")

	first, err := f.w.Write(context.Background(), Request{Edit: setRateLimit(1), Author: author})
	if err != nil || first.Unpushed != 1 {
		t.Fatalf("first write to a hanging remote: %+v %v", first, err)
	}
	// The second write does not try the remote again: it is kept at once,
	// even for a client whose context is already cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	second, err := f.w.Write(ctx, Request{Author: author, Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
		cancel() // the client goes away while its write is under way
		return setRateLimit(2)(snap, files)
	}})
	if err != nil || second.Unpushed != 2 || f.last().Revision.SHA != second.Revision {
		t.Fatalf("second write: %+v %v", second, err)
	}
	mu.Lock()
	n := len(conns)
	mu.Unlock()
	if n != 1 {
		t.Errorf("the remote was tried %d times, want once (the first write)", n)
	}
}
