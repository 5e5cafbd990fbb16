package gitstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/repogen"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// pushClone clones url (a bare remote made by bareRemote) with Clone and
// creates local branch main at the fetched commit, as the write path does.
func pushClone(t *testing.T, url string, opts RemoteOptions) (*Repo, plumbing.Hash) {
	t.Helper()
	r, err := Clone(context.Background(), url, filepath.Join(t.TempDir(), "clone"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	h, err := r.Resolve(RemoteRef("main"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateRef(mainRef, h, plumbing.ZeroHash); err != nil {
		t.Fatal(err)
	}
	return r, h
}

// commitAndMove commits one file change on parent and moves main there.
func commitAndMove(t *testing.T, r *Repo, parent plumbing.Hash, path, content string) plumbing.Hash {
	t.Helper()
	c := commitFile(t, r, parent, path, content)
	if err := r.UpdateRef(mainRef, c, parent); err != nil {
		t.Fatal(err)
	}
	return c
}

// testPush pushes, is rejected after another clone pushed, fetches and
// pushes again, pushes a new branch, and pushes what the remote has.
func testPush(t *testing.T, url, bare, work string, opts RemoteOptions) {
	ctx := context.Background()
	r, base := pushClone(t, url, opts)
	c1 := commitAndMove(t, r, base, "features/one.json", "{}\n")
	if err := r.Push(ctx, mainRef, mainRef, opts); err != nil {
		t.Fatal(err)
	}
	if got := revParse(t, bare, "main"); got != c1.String() {
		t.Fatalf("remote main at %s, pushed %s", got, c1)
	}
	if h, _ := r.Resolve(RemoteRef("main")); h != c1 {
		t.Errorf("%s at %s after the push, want %s", RemoteRef("main"), h, c1)
	}
	gittest.Run(t, bare, "fsck", "--strict", "--no-dangling")

	// Pushing what the remote has already is a success.
	if err := r.Push(ctx, mainRef, mainRef, opts); err != nil {
		t.Errorf("push of what the remote has: %v", err)
	}

	// Another clone pushes: ours is rejected and the remote keeps theirs.
	gittest.Run(t, work, "pull", "-q", "origin", "main")
	writeFiles(t, work, map[string]string{"README.md": "# theirs\n"})
	theirs := gittest.CommitAll(t, work, "theirs")
	gittest.Run(t, work, "push", "-q", "origin", "main")
	c2 := commitAndMove(t, r, c1, "features/two.json", "{}\n")
	err := r.Push(ctx, mainRef, mainRef, opts)
	if !errors.Is(err, ErrPushRejected) || errors.Is(err, ErrRemoteUnavailable) {
		t.Fatalf("push after another push: %v", err)
	}
	t.Log(err)
	if got := revParse(t, bare, "main"); got != theirs {
		t.Fatalf("remote main at %s, want theirs %s", got, theirs)
	}
	// Fetch, apply again on the new head, push.
	if _, err := r.Fetch(ctx, opts); err != nil {
		t.Fatal(err)
	}
	head, err := r.Resolve(RemoteRef("main"))
	if err != nil || head.String() != theirs {
		t.Fatalf("fetched %s, %v", head, err)
	}
	c3 := commitFile(t, r, head, "features/two.json", "{}\n")
	if err := r.UpdateRef(mainRef, c3, c2); err != nil {
		t.Fatal(err)
	}
	if err := r.Push(ctx, mainRef, mainRef, opts); err != nil {
		t.Fatal(err)
	}
	if got := gittest.Run(t, bare, "log", "--format=%s", "main"); got != "production: dark_mode off\ntheirs\nproduction: dark_mode off\nFirst commit" {
		t.Errorf("remote history:\n%s", got)
	}

	// A new branch, as a proposal.
	branch := plumbing.ReferenceName("refs/heads/gitflags/production/dark_mode-0a1b2c")
	p := commitFile(t, r, c3, "environments/production/features/dark_mode.json", "{\"enabled\": false}\n")
	if err := r.UpdateRef(branch, p, plumbing.ZeroHash); err != nil {
		t.Fatal(err)
	}
	if err := r.Push(ctx, branch, branch, opts); err != nil {
		t.Fatal(err)
	}
	if got := revParse(t, bare, branch.String()); got != p.String() {
		t.Errorf("remote %s at %s, pushed %s", branch, got, p)
	}
	if got := revParse(t, bare, "main"); got != c3.String() {
		t.Errorf("the proposal moved main to %s", got)
	}
	if h, _ := r.Resolve(RemoteRef("gitflags/production/dark_mode-0a1b2c")); h != p {
		t.Errorf("remote-tracking reference of the proposal at %s", h)
	}
	gittest.Run(t, bare, "fsck", "--strict", "--no-dangling")
}

func TestPushFile(t *testing.T) {
	bare, work := bareRemote(t)
	testPush(t, "file://"+bare, bare, work, RemoteOptions{})
}

func TestPushHTTP(t *testing.T) {
	bare, work := bareRemote(t)
	gittest.Run(t, bare, "config", "http.receivepack", "true")
	srv := gitHTTPServer(t, filepath.Dir(bare), "alice", "push-secret-1")
	cred := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(cred, []byte("alice:push-secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := RemoteOptions{Auth: Credentials{PasswordFile: cred}}
	testPush(t, srv.URL+"/"+filepath.Base(bare), bare, work, opts)

	// Wrong credentials: ErrCredentials, no secret in the message.
	r, base := pushClone(t, srv.URL+"/"+filepath.Base(bare), opts)
	commitAndMove(t, r, base, "features/x.json", "{}\n")
	if err := os.WriteFile(cred, []byte("alice:wrong-secret-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := r.Push(context.Background(), mainRef, mainRef, opts)
	if !errors.Is(err, ErrCredentials) || strings.Contains(err.Error(), "wrong-secret-2") || !strings.HasPrefix(err.Error(), "push") {
		t.Errorf("push with wrong credentials: %v", err)
	}
	t.Log(err)
}

// TestPushUnavailable: a remote that was moved away, or a server that does
// not listen, is ErrRemoteUnavailable; nothing is lost locally.
func TestPushUnavailable(t *testing.T) {
	bare, _ := bareRemote(t)
	r, base := pushClone(t, "file://"+bare, RemoteOptions{})
	c := commitAndMove(t, r, base, "features/one.json", "{}\n")
	if err := os.Rename(bare, bare+".moved"); err != nil {
		t.Fatal(err)
	}
	err := r.Push(context.Background(), mainRef, mainRef, RemoteOptions{})
	if !errors.Is(err, ErrRemoteUnavailable) || errors.Is(err, ErrPushRejected) {
		t.Errorf("push to a moved remote: %v", err)
	}
	t.Log(err)
	if h, _ := r.Resolve("main"); h != c {
		t.Errorf("main at %s", h)
	}
	if err := os.Rename(bare+".moved", bare); err != nil {
		t.Fatal(err)
	}
	if err := r.Push(context.Background(), mainRef, mainRef, RemoteOptions{}); err != nil {
		t.Fatalf("push once the remote is back: %v", err)
	}

	// A server that does not listen.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	gittest.Run(t, r.Path(), "remote", "set-url", RemoteName, "http://"+addr+"/remote.git")
	r2, err := Open(r.Path()) // the remote's URL is read from the configuration when opened
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	err = r2.Push(context.Background(), mainRef, mainRef, RemoteOptions{})
	if !errors.Is(err, ErrRemoteUnavailable) {
		t.Errorf("push to a closed port: %v", err)
	}
	t.Log(err)
	if err := r2.Push(context.Background(), "refs/heads/none", mainRef, RemoteOptions{}); err == nil || !strings.Contains(err.Error(), "refs/heads/none does not exist") {
		t.Errorf("push of a missing branch: %v", err)
	}
	if err := r2.Push(context.Background(), mainRef, "main", RemoteOptions{}); err == nil || !strings.Contains(err.Error(), "not a valid reference") {
		t.Errorf("push to a bad reference name: %v", err)
	}
}

// gitHTTPServer serves the repositories under root over smart HTTP with git
// http-backend, behind basic auth for user and pass.
func gitHTTPServer(t *testing.T, root, user, pass string) *httptest.Server {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("the git binary is needed to serve smart HTTP (git http-backend)")
	}
	backend := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env:  append([]string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}, gittest.Env...),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestPushRaceOnRemote: the remote's branch moves after it was advertised and
// before the update (a pre-receive hook moves it, as a concurrent push
// would): the remote refuses the update, and the push is ErrPushRejected.
func TestPushRaceOnRemote(t *testing.T) {
	bare, work := bareRemote(t)
	r, base := pushClone(t, "file://"+bare, RemoteOptions{})
	writeFiles(t, work, map[string]string{"README.md": "# side\n"})
	side := gittest.CommitAll(t, work, "side")
	gittest.Run(t, work, "push", "-q", "origin", "HEAD:refs/heads/side")
	hook := filepath.Join(bare, "hooks", "pre-receive")
	script := "#!/bin/sh\ncat >/dev/null\nrm \"$0\"\nenv -u GIT_QUARANTINE_PATH git update-ref refs/heads/main refs/heads/side\n"
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	commitAndMove(t, r, base, "features/one.json", "{}\n")
	err := r.Push(context.Background(), mainRef, mainRef, RemoteOptions{})
	if !errors.Is(err, ErrPushRejected) {
		t.Fatalf("push while the remote moved: %v", err)
	}
	t.Log(err)
	if got := revParse(t, bare, "main"); got != side {
		t.Errorf("remote main at %s, want %s", got, side)
	}
}

// TestPushDeclined: a remote that refuses the update for another reason (a
// hook, a protected branch) is neither rejected-for-retry nor unavailable.
func TestPushDeclined(t *testing.T) {
	bare, _ := bareRemote(t)
	r, base := pushClone(t, "file://"+bare, RemoteOptions{})
	if err := os.WriteFile(filepath.Join(bare, "hooks", "pre-receive"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	commitAndMove(t, r, base, "features/one.json", "{}\n")
	err := r.Push(context.Background(), mainRef, mainRef, RemoteOptions{})
	if err == nil || errors.Is(err, ErrPushRejected) || errors.Is(err, ErrRemoteUnavailable) || !strings.Contains(err.Error(), "hook declined") {
		t.Fatalf("push declined by a hook: %v", err)
	}
	t.Log(err)
}

// BenchmarkPushLarge commits one file change on the 10,000-feature repository
// and pushes it to a bare remote over file:// (Commit, UpdateRef, Push).
func BenchmarkPushLarge(b *testing.B) {
	_, packed, _ := largeRepos(b)
	root := b.TempDir()
	remote := filepath.Join(root, "remote.git")
	if _, err := gittest.Output(root, "clone", "-q", "--bare", "--local", packed, remote); err != nil {
		b.Fatal(err)
	}
	r, err := Clone(context.Background(), "file://"+remote, filepath.Join(root, "clone"), RemoteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	cur, err := r.Resolve(RemoteRef("main"))
	if err != nil {
		b.Fatal(err)
	}
	if err := r.UpdateRef(mainRef, cur, plumbing.ZeroHash); err != nil {
		b.Fatal(err)
	}
	path := "environments/production/features/" + repogen.FeatureKey(42) + ".json"
	var times []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		next, err := r.Commit(commitOpts(cur, FileChange{Path: path, Data: fmt.Appendf(nil, "{\n  \"enabled\": %t\n}\n", i%2 == 0)}))
		if err == nil {
			err = r.UpdateRef(mainRef, next, cur)
		}
		if err == nil {
			err = r.Push(context.Background(), mainRef, mainRef, RemoteOptions{})
		}
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
		cur = next
	}
	b.StopTimer()
	reportPercentiles(b, times)
	if got, err := gittest.Output(remote, "rev-parse", "main"); err != nil || got != cur.String() {
		b.Fatalf("remote main at %s, %v; pushed %s", got, err, cur)
	}
}
