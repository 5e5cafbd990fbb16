package gitsync

import (
	"context"
	"errors"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// remoteSetup is a bare "remote" repository and a work tree that pushes to it.
type remoteSetup struct {
	bare string // the remote
	work string // a clone that commits and pushes
}

func newRemote(t testing.TB) remoteSetup {
	t.Helper()
	src := templateRepo(t)
	root := t.TempDir()
	r := remoteSetup{bare: filepath.Join(root, "remote.git"), work: filepath.Join(root, "work")}
	gittest.Run(t, root, "clone", "-q", "--bare", src, r.bare)
	gittest.Run(t, root, "clone", "-q", r.bare, r.work)
	return r
}

// push commits the work tree with dark_mode's description set to desc and
// pushes it, returning the commit.
func (r remoteSetup) push(t testing.TB, desc string, args ...string) string {
	t.Helper()
	setDescription(t, r.work, desc)
	sha := commit(t, r.work, desc)
	gittest.Run(t, r.work, append([]string{"push", "-q", "origin", "main"}, args...)...)
	return sha
}

func cloneRemote(t testing.TB, url string, opts gitstore.RemoteOptions) *gitstore.Repo {
	t.Helper()
	repo, err := gitstore.Clone(context.Background(), url, filepath.Join(t.TempDir(), "clone"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	return repo
}

// TestRemoteFile follows a bare remote over file://: pushes on Trigger, a
// force-push, a deleted branch, a remote that goes away and comes back, and
// pause/resume.
func TestRemoteFile(t *testing.T) {
	r := newRemote(t)
	repo := cloneRemote(t, "file://"+r.bare, gitstore.RemoteOptions{})
	s, rec, logs := start(t, Options{Repo: repo, Remote: true, Interval: time.Hour})
	first := gittest.Run(t, r.bare, "rev-parse", "main")
	waitFor(t, "the initial revision", func() bool { return rec.lastSHA() == first })
	if st := s.Status(); st.Mode != ModeRemote || st.Branch != "main" || st.Ref != "refs/remotes/origin/main" || !strings.HasPrefix(st.Remote, "file://") {
		t.Fatalf("status %+v", st)
	}

	// A push, then the webhook's Trigger.
	a := r.push(t, "pushed a")
	s.Trigger()
	waitFor(t, "the pushed commit", func() bool { return rec.lastSHA() == a })

	// A force-push replacing a with b.
	gittest.Run(t, r.work, "reset", "-q", "--hard", "HEAD~1")
	b := r.push(t, "forced b", "--force")
	s.Trigger()
	waitFor(t, "the force-pushed commit", func() bool { return rec.lastSHA() == b })
	if d := description(rec.last()); d != "forced b" {
		t.Fatalf("served %q", d)
	}

	// The branch is deleted on the remote: an error, b keeps serving.
	gittest.Run(t, r.bare, "branch", "other", "main")
	gittest.Run(t, r.bare, "update-ref", "-d", "refs/heads/main")
	s.Trigger()
	waitFor(t, "the deleted branch's error", func() bool { return s.Status().ConsecutiveFailures > 0 })
	st := s.Status()
	if !strings.Contains(st.LastError, `branch "main" does not exist on the remote`) || st.Served.SHA != b || rec.lastSHA() != b {
		t.Fatalf("after deleting the branch: %+v", st)
	}
	if err := s.Sync(context.Background()); !errors.Is(err, gitstore.ErrBranchNotFound) {
		t.Fatalf("Sync: %v", err)
	}
	if n := strings.Count(logs.String(), "sync failed"); n != 1 {
		t.Errorf("the same error was logged %d times", n)
	}
	gittest.Run(t, r.bare, "update-ref", "refs/heads/main", b)
	s.Trigger()
	waitFor(t, "recovery", func() bool { return s.Status().ConsecutiveFailures == 0 })
	// The status is updated before the line is logged: wait for it too.
	waitFor(t, "the recovery logged", func() bool { return strings.Contains(logs.String(), "sync recovered") })

	// The remote goes away and comes back.
	if err := os.Rename(r.bare, r.bare+".away"); err != nil {
		t.Fatal(err)
	}
	s.Trigger()
	waitFor(t, "the missing remote's error", func() bool { return s.Status().ConsecutiveFailures > 0 })
	if st := s.Status(); st.LastError == "" || st.Served.SHA != b {
		t.Fatalf("remote away: %+v", st)
	}
	if err := os.Rename(r.bare+".away", r.bare); err != nil {
		t.Fatal(err)
	}
	c := r.push(t, "back")
	s.Trigger()
	// The attempt records its success just after Publish returns: wait for both.
	waitFor(t, "the commit after the remote came back", func() bool {
		return rec.lastSHA() == c && s.Status().ConsecutiveFailures == 0
	})
	if st := s.Status(); st.ConsecutiveFailures != 0 || st.LastError != "" || st.Failures < 3 || st.Successes < 3 {
		t.Fatalf("after recovery: %+v", st)
	}

	// Paused: no fetch, no publish; Resume catches up at once.
	s.Pause()
	if !s.Paused() || !s.Status().Paused {
		t.Fatal("not paused")
	}
	fetches := s.Status().Successes + s.Status().Failures
	d := r.push(t, "while paused")
	s.Trigger()
	if err := s.Sync(context.Background()); !errors.Is(err, ErrPaused) {
		t.Fatalf("Sync while paused: %v", err)
	}
	waitFor(t, "the trigger to be consumed", func() bool { return len(s.trigger) == 0 })
	s.syncMu.Lock() // waits for a sync that might be running
	st = s.Status()
	s.syncMu.Unlock()
	if rec.lastSHA() != c || st.Successes+st.Failures != fetches {
		t.Fatalf("followed while paused: served %s, attempts %d -> %d", rec.lastSHA(), fetches, st.Successes+st.Failures)
	}
	s.Resume()
	waitFor(t, "the commit pushed while paused", func() bool { return rec.lastSHA() == d })
}

// TestRemoteInterval: without triggers, fetches happen every Interval.
func TestRemoteInterval(t *testing.T) {
	r := newRemote(t)
	repo := cloneRemote(t, "file://"+r.bare, gitstore.RemoteOptions{Branch: "main"})
	_, rec, _ := start(t, Options{Repo: repo, Remote: true, Branch: "main", Interval: 20 * time.Millisecond})
	waitFor(t, "the initial revision", func() bool { return rec.count() == 1 })
	a := r.push(t, "polled")
	waitFor(t, "the polled commit", func() bool { return rec.lastSHA() == a })
}

// TestRemoteInvalidThenFix: an invalid pushed commit is not published.
func TestRemoteInvalidThenFix(t *testing.T) {
	r := newRemote(t)
	repo := cloneRemote(t, "file://"+r.bare, gitstore.RemoteOptions{})
	s, rec, _ := start(t, Options{Repo: repo, Remote: true, Interval: time.Hour})
	waitFor(t, "the initial revision", func() bool { return rec.count() == 1 })
	good := rec.lastSHA()
	breakFeature(t, r.work)
	bad := commit(t, r.work, "break")
	gittest.Run(t, r.work, "push", "-q", "origin", "main")
	s.Trigger()
	waitFor(t, "the invalid revision", func() bool { n := s.Status().Newest; return n != nil && n.Revision.SHA == bad })
	if st := s.Status(); st.Newest.Valid || len(st.Newest.Problems) == 0 || st.Served.SHA != good || rec.count() != 1 {
		t.Fatalf("status %+v", st)
	}
	fix := r.push(t, "fixed")
	s.Trigger()
	waitFor(t, "the fix", func() bool { return rec.lastSHA() == fix })
}

// gitHTTP serves the repositories under root over smart HTTP with git
// http-backend, behind basic auth that accepts the current user and password.
type gitHTTP struct {
	mu         sync.Mutex
	user, pass string
	srv        *httptest.Server
}

func newGitHTTP(t testing.TB, root, user, pass string) *gitHTTP {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("the git binary is needed to serve smart HTTP (git http-backend)")
	}
	g := &gitHTTP{user: user, pass: pass}
	backend := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env:  append([]string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}, gittest.Env...),
	}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		g.mu.Lock()
		good := ok && u == g.user && p == g.pass
		g.mu.Unlock()
		if !good {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gitHTTP) accept(user, pass string) {
	g.mu.Lock()
	g.user, g.pass = user, pass
	g.mu.Unlock()
}

// TestRemoteHTTPBasicAuth fetches over smart HTTP with basic auth from a
// credentials file that is rotated between fetches; a wrong credential is a
// clear error that never shows the secret.
func TestRemoteHTTPBasicAuth(t *testing.T) {
	r := newRemote(t)
	g := newGitHTTP(t, filepath.Dir(r.bare), "alice", "first-secret-1")
	credFile := filepath.Join(t.TempDir(), "git-credentials")
	writeCred := func(s string) {
		t.Helper()
		if err := os.WriteFile(credFile, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCred("alice:first-secret-1")
	auth := gitstore.Credentials{PasswordFile: credFile}
	url := g.srv.URL + "/remote.git"

	// Without credentials: a clear error.
	_, err := gitstore.Clone(context.Background(), url, filepath.Join(t.TempDir(), "noauth"), gitstore.RemoteOptions{Branch: "main"})
	if !errors.Is(err, gitstore.ErrCredentials) || !strings.Contains(err.Error(), "credentials file") {
		t.Fatalf("clone without credentials: %v", err)
	}

	repo := cloneRemote(t, url, gitstore.RemoteOptions{Auth: auth})
	logs := &logBuffer{}
	s, rec, _ := start(t, Options{Repo: repo, Remote: true, Auth: auth, Interval: time.Hour, Log: logs.logger()})
	waitFor(t, "the initial revision", func() bool { return rec.count() == 1 })

	// Rotation: the server and the file change; no restart.
	g.accept("alice", "second-secret-2")
	writeCred("alice:second-secret-2")
	a := r.push(t, "over http")
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.lastSHA() != a {
		t.Fatalf("served %s, want %s", rec.lastSHA(), a)
	}

	// A bare token is sent as user x-access-token.
	g.accept(gitstore.TokenUsername, "ghp_tokenvalue3")
	writeCred("ghp_tokenvalue3")
	b := r.push(t, "with a token")
	s.Trigger()
	waitFor(t, "the commit fetched with a token", func() bool { return rec.lastSHA() == b })

	// A wrong credential.
	writeCred("alice:wrong-secret-4")
	r.push(t, "not fetched")
	err = s.Sync(context.Background())
	if !errors.Is(err, gitstore.ErrCredentials) || !strings.Contains(err.Error(), credFile) || !strings.Contains(err.Error(), "refused the credentials") {
		t.Fatalf("wrong credential: %v", err)
	}
	st := s.Status()
	if st.Served.SHA != b || st.ConsecutiveFailures != 1 {
		t.Fatalf("status %+v", st)
	}
	for _, secret := range []string{"first-secret-1", "second-secret-2", "ghp_tokenvalue3", "wrong-secret-4"} {
		mustNotContain(t, "the error", err.Error(), secret)
		mustNotContain(t, "the status", st.LastError, secret)
		mustNotContain(t, "the log", logs.String(), secret)
	}

	// Credentials in the URL are scrubbed from status and errors too.
	if strings.Contains(repo.RemoteURL(), "@") {
		t.Errorf("remote URL %q", repo.RemoteURL())
	}
}

// TestRemoteHTTPURLCredentials: credentials in the URL are refused, since the
// URL is stored in the clone's configuration; the error names the fix and
// never the secret, and nothing is left on disk.
func TestRemoteHTTPURLCredentials(t *testing.T) {
	r := newRemote(t)
	g := newGitHTTP(t, filepath.Dir(r.bare), "bob", "url-secret-5")
	for _, url := range []string{
		strings.Replace(g.srv.URL, "http://", "http://bob:url-secret-5@", 1) + "/remote.git",
		strings.Replace(g.srv.URL, "http://", "http://url-secret-5@", 1) + "/remote.git",
	} {
		dir := filepath.Join(t.TempDir(), "clone")
		repo, err := gitstore.Clone(context.Background(), url, dir, gitstore.RemoteOptions{Branch: "main"})
		if err == nil || repo != nil {
			t.Fatalf("clone of a URL with credentials succeeded")
		}
		if !strings.Contains(err.Error(), "credentials file") {
			t.Errorf("error does not name the fix: %v", err)
		}
		mustNotContain(t, "the error", err.Error(), "url-secret-5")
		if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
			t.Errorf("a refused clone left %s behind", dir)
		}
	}
}
