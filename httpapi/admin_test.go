package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitflags/gitflags"
	"github.com/gitflags/gitflags/commits"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/gitsync"
	"github.com/gitflags/gitflags/history"
)

// syncFollower is a gitsync.Syncer as the admin API sees it (as
// cmd/gitflags adapts it).
type syncFollower struct{ *gitsync.Syncer }

func (f syncFollower) SyncStatus() any { return f.Status() }

// committer is the server's identity in the commits of writes.
var committer = object.Signature{Name: "gitflags test server", Email: "server@gitflags.test"}

const (
	adminToken    = "admin-token-for-tests"
	webhookSecret = "webhook-secret-for-tests"
)

// adminFixture serves a real local flag repository followed by a real
// Syncer, with the admin API and webhooks enabled.
type adminFixture struct {
	dir  string
	repo *gitstore.Repo
	ts   *httptest.Server
	sy   *gitsync.Syncer
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("the git binary is needed to commit into the test repository")
	}
	dir := filepath.Join(t.TempDir(), "flags")
	if _, err := gitstore.Init(dir, gitflags.Template(), gitstore.DefaultAuthor()); err != nil {
		t.Fatal(err)
	}
	repo, err := gitstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	snap, err := repo.Snapshot("HEAD", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Tokens: testTokenSource(t), WebhookSecret: webhookSecret})
	if err := srv.Publish(snap); err != nil {
		t.Fatal(err)
	}
	sy, err := gitsync.New(gitsync.Options{Repo: repo, Publish: srv.Publish, Served: snap, Metrics: srv.SyncMetrics(), Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv.AttachSync(syncFollower{sy})
	wr, err := commits.New(commits.Options{Repo: repo, Sync: sy, Committer: committer})
	if err != nil {
		t.Fatal(err)
	}
	srv.AttachWriter(wr)
	srv.AttachHistory(history.New(repo))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = sy.Run(ctx) }()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); cancel(); <-done })
	return &adminFixture{dir: dir, repo: repo, ts: ts, sy: sy}
}

func (f *adminFixture) do(t *testing.T, method, path, token string, body []byte, headers map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, f.ts.URL+path, strings.NewReader(string(body)))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// commitRateLimit commits a new production value of api_rate_limit with the
// git binary and returns the commit's hash.
func (f *adminFixture) commitRateLimit(t *testing.T, value int) string {
	t.Helper()
	p := filepath.Join(f.dir, "environments", "production", "features", "api_rate_limit.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(data, &m)
	m["value"] = value
	out, _ := json.MarshalIndent(m, "", "  ")
	os.WriteFile(p, out, 0o644)
	for _, args := range [][]string{{"add", "-A"}, {"commit", "-qm", "rate limit"}} {
		cmd := exec.Command("git", append([]string{"-c", "user.name=T", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = f.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir = f.dir
	sha, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(sha))
}

func (f *adminFixture) servedSHA(t *testing.T) string {
	code, body := f.do(t, http.MethodGet, "/api/v1/status", adminToken, nil, nil)
	if code != 200 {
		t.Fatalf("status: %d %s", code, body)
	}
	var st struct {
		Served struct{ SHA string }
		Sync   struct {
			Mode   string
			Paused bool
		}
	}
	json.Unmarshal(body, &st)
	return st.Served.SHA
}

func (f *adminFixture) waitServed(t *testing.T, sha string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f.servedSHA(t) != sha {
		if time.Now().After(deadline) {
			t.Fatalf("revision %s not served within 20s", sha)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAdminAuth(t *testing.T) {
	f := newAdminFixture(t)
	for _, c := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong", 401}, {adminToken, 200}} {
		if code, body := f.do(t, http.MethodGet, "/api/v1/status", c.token, nil, nil); code != c.want || !json.Valid(body) {
			t.Errorf("token %q: %d %s, want %d", c.token, code, body, c.want)
		}
	}
	code, body := f.do(t, http.MethodGet, "/api/v1/status", adminToken, nil, nil)
	if code != 200 || !strings.Contains(string(body), `"mode":"local"`) || !strings.Contains(string(body), `"served":{"sha":"`) {
		t.Errorf("status: %s", body)
	}
	// Without a configured token the admin API is off.
	off := httptest.NewServer(New(Options{}).Handler())
	defer off.Close()
	req, _ := http.NewRequest(http.MethodPost, off.URL+"/api/v1/sync", nil)
	req.Header.Set("Authorization", "Bearer anything")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("admin API without a token configured: %d, want 403", resp.StatusCode)
	}
}

func TestSyncPauseResume(t *testing.T) {
	f := newAdminFixture(t)
	sha := f.commitRateLimit(t, 700)
	if code, body := f.do(t, http.MethodPost, "/api/v1/sync", adminToken, nil, nil); code != 202 {
		t.Fatalf("sync: %d %s", code, body)
	}
	f.waitServed(t, sha)

	if code, body := f.do(t, http.MethodPost, "/api/v1/sync/pause", adminToken, nil, nil); code != 200 || !strings.Contains(string(body), `"paused":true`) {
		t.Fatalf("pause: %d %s", code, body)
	}
	paused := f.commitRateLimit(t, 800)
	if code, _ := f.do(t, http.MethodPost, "/api/v1/sync", adminToken, nil, nil); code != 409 {
		t.Errorf("sync while paused: %d, want 409", code)
	}
	if err := f.sy.Sync(context.Background()); err != gitsync.ErrPaused {
		t.Errorf("Sync while paused: %v, want ErrPaused", err)
	}
	if got := f.servedSHA(t); got != sha {
		t.Fatalf("paused server moved to %s", got)
	}
	if code, body := f.do(t, http.MethodPost, "/api/v1/sync/resume", adminToken, nil, nil); code != 200 || !strings.Contains(string(body), `"paused":false`) {
		t.Fatalf("resume: %d %s", code, body)
	}
	f.do(t, http.MethodPost, "/api/v1/sync", adminToken, nil, nil)
	f.waitServed(t, paused)

	_, metrics := f.do(t, http.MethodGet, "/metrics", "", nil, nil)
	if !strings.Contains(string(metrics), `gitflags_sync_published_total`) || !strings.Contains(string(metrics), `gitflags_sync_attempts_total{mode="local",result="success"}`) {
		t.Errorf("sync metrics missing:\n%s", metrics)
	}
}

func TestWebhooks(t *testing.T) {
	f := newAdminFixture(t)
	body := []byte(`{"ref": "refs/heads/main"}`)
	mac := hmac.New(sha256.New, []byte(webhookSecret))
	mac.Write(body)
	good := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	cases := []struct {
		path    string
		headers map[string]string
		want    int
	}{
		{"/api/v1/webhooks/github", nil, 401},
		{"/api/v1/webhooks/github", map[string]string{"X-Hub-Signature-256": "sha256=00ff"}, 401},
		{"/api/v1/webhooks/github", map[string]string{"X-Hub-Signature-256": good, "X-GitHub-Event": "ping"}, 200},
		{"/api/v1/webhooks/gitlab", map[string]string{"X-Gitlab-Token": "nope"}, 401},
		{"/api/v1/webhooks/gitlab", nil, 401},
		{"/api/v1/webhooks/bitbucket", nil, 404},
		{"/api/v1/webhooks/gitlab", map[string]string{"X-Gitlab-Token": webhookSecret}, 202},
	}
	for _, c := range cases {
		if code, b := f.do(t, http.MethodPost, c.path, "", body, c.headers); code != c.want {
			t.Errorf("%s %v: %d %s, want %d", c.path, c.headers, code, b, c.want)
		}
	}
	sha := f.commitRateLimit(t, 900)
	if code, b := f.do(t, http.MethodPost, "/api/v1/webhooks/github", "", body, map[string]string{"X-Hub-Signature-256": good, "X-GitHub-Event": "push"}); code != 202 {
		t.Fatalf("signed push: %d %s", code, b)
	}
	f.waitServed(t, sha)
}
