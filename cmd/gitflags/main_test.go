package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runCmd(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=T", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestValidateTemplate(t *testing.T) {
	code, out, errOut := runCmd(t, "validate", filepath.Join("..", "..", "flags-repo-template"))
	if code != 0 || !strings.Contains(out, "is valid: 14 features, 10 segments, 3 environments") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestValidateInvalidAndJSON(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("..", "..", "flags-repo-template"), dir)
	p := filepath.Join(dir, "environments", "production", "features", "new_checkout.json")
	data, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(data, []byte(`"segment": "beta_users"`), []byte(`"segment": "beta_user"`), 1), 0o644)
	fp := filepath.Join(dir, "features", "dark_mode.json")
	data, _ = os.ReadFile(fp)
	os.WriteFile(fp, bytes.Replace(data, []byte(`"enabled"`), []byte(`"enabeld"`), 1), 0o644)

	code, out, _ := runCmd(t, "validate", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	for _, want := range []string{
		`environments/production/features/new_checkout.json:11:7: /segment_overrides/0/segment: there is no segment "beta_user": segments/beta_user.json does not exist`,
		`features/dark_mode.json:6:5: /default/enabeld: unknown field "enabeld" (did you mean "enabled"?)`,
		`features/dark_mode.json:5:3: /default: missing required field "enabled"`,
		"is invalid: 3 problem(s) in 2 file(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runCmd(t, "validate", "--format", "json", dir)
	var report struct {
		Valid    bool
		Problems []struct {
			File, Pointer, Message string
			Line, Column           int
		}
	}
	if code != 1 || json.Unmarshal([]byte(out), &report) != nil || report.Valid || len(report.Problems) != 3 {
		t.Fatalf("json: exit %d\n%s", code, out)
	}
	if p := report.Problems[0]; p.File != "environments/production/features/new_checkout.json" || p.Line != 11 || p.Column != 7 || p.Pointer != "/segment_overrides/0/segment" {
		t.Errorf("first problem %+v", p)
	}
}

func TestValidateUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"validate", "--format", "yaml", "."},
		{"validate", "a", "b"},
		{"validate", "--no-such-flag"},
		{"validate", filepath.Join(t.TempDir(), "missing")},
		{"validate", "--rev", "HEAD", t.TempDir()}, // not a git repository
		{"no-such-command"},
	} {
		if code, out, errOut := runCmd(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s%s", args, code, out, errOut)
		}
	}
}

func TestValidateRevision(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, filepath.Join("..", "..", "flags-repo-template"), dir)
	git(t, dir, "init", "-q")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-qm", "good")
	// Break the working tree without committing: --rev HEAD still passes,
	// the working directory fails.
	os.WriteFile(filepath.Join(dir, "features", "broken.json"), []byte("{"), 0o644)
	if code, out, errOut := runCmd(t, "validate", "--rev", "HEAD", dir); code != 0 || !strings.Contains(out, "@HEAD at ") {
		t.Fatalf("--rev HEAD: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := runCmd(t, "validate", dir); code != 1 {
		t.Fatalf("working directory: exit %d, want 1", code)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-qm", "bad")
	if code, out, _ := runCmd(t, "validate", "--rev", "HEAD", dir); code != 1 || !strings.Contains(out, "features/broken.json") {
		t.Fatalf("--rev HEAD after a bad commit: exit %d\n%s", code, out)
	}
	if code, _, _ := runCmd(t, "validate", "--rev", "HEAD~1", dir); code != 0 {
		t.Fatalf("--rev HEAD~1: exit %d", code)
	}
	if code, _, errOut := runCmd(t, "validate", "--rev", "no-such-branch", dir); code != 2 || !strings.Contains(errOut, "no-such-branch") {
		t.Fatalf("unknown revision: exit %d %s", code, errOut)
	}
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flags")
	code, out, errOut := runCmd(t, "init", dir)
	if code != 0 || !strings.Contains(out, "Created flag repository") {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runCmd(t, "validate", "--rev", "main", dir); code != 0 {
		t.Fatalf("validate the new repository: exit %d\n%s", code, out)
	}
	for _, f := range []string{"CODEOWNERS", ".github/workflows/gitflags.yml", ".gitlab-ci.yml", ".gitflags/ci.sh", "schemas/feature.schema.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("init did not create %s", f)
		}
	}
	if code, _, errOut := runCmd(t, "init", dir); code == 0 || !strings.Contains(errOut, dir) {
		t.Errorf("init into a non-empty directory: exit %d %s", code, errOut)
	}
}

func TestHelp(t *testing.T) {
	for _, c := range commands() {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{c.name, "--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "Usage: gitflags "+c.name) {
			t.Errorf("%s --help: exit %d\n%s", c.name, code, errb.String())
		}
	}
	if code, out, _ := runCmd(t, "help"); code != 0 || !strings.Contains(out, "validate") {
		t.Errorf("help: %d %s", code, out)
	}
}

func TestKeygen(t *testing.T) {
	code, out, _ := runCmd(t, "keygen", "--name", "backend")
	m := regexp.MustCompile(`(ser\.[0-9a-f]{48})[\s\S]*"sha256": "([0-9a-f]{64})"`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("keygen: %d\n%s", code, out)
	}
}

// TestServeEmbeddedDefault runs `gitflags serve` with no repository: it must
// create one from the template, print how to call it, serve, and shut down
// gracefully when its context ends.
func TestServeEmbeddedDefault(t *testing.T) {
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		var errb bytes.Buffer
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data", data}, pw, &errb)
		pw.Close()
	}()
	var banner strings.Builder
	bannerDone := make(chan struct{})
	addr := make(chan string, 1)
	go func() {
		defer close(bannerDone)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			banner.WriteString(sc.Text() + "\n")
			if m := regexp.MustCompile(`on (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var base string
	select {
	case base = <-addr:
	case <-bannerDone:
		t.Fatalf("serve exited before serving:\n%s", banner.String())
	case <-time.After(30 * time.Second):
		t.Fatal("no banner within 30s")
	}
	_, prodKey := environmentFile(t, filepath.Join(data, "flags"), "production")
	req, _ := http.NewRequest("GET", base+"/api/v1/flags/", nil)
	req.Header.Set("X-Environment-Key", prodKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"api_rate_limit"`) {
		t.Fatalf("GET flags: %d %s", resp.StatusCode, body)
	}
	// Identities persist in the data directory's store.
	preq, _ := http.NewRequest("POST", base+"/api/v1/identities/", strings.NewReader(`{"identifier": "dev1", "traits": [{"trait_key": "email", "trait_value": "dev1@acme.example"}]}`))
	preq.Header.Set("X-Environment-Key", prodKey)
	preq.Header.Set("Content-Type", "application/json")
	presp, err := http.DefaultClient.Do(preq)
	if err != nil {
		t.Fatal(err)
	}
	pbody, _ := io.ReadAll(presp.Body)
	presp.Body.Close()
	if presp.StatusCode != 200 || !strings.Contains(string(pbody), `"feature_state_value":100000`) {
		t.Fatalf("POST identities: %d %s", presp.StatusCode, pbody)
	}
	greq, _ := http.NewRequest("GET", base+"/api/v1/identities/?identifier=dev1", nil)
	greq.Header.Set("X-Environment-Key", prodKey)
	gresp, err := http.DefaultClient.Do(greq)
	if err != nil {
		t.Fatal(err)
	}
	gbody, _ := io.ReadAll(gresp.Body)
	gresp.Body.Close()
	if !strings.Contains(string(gbody), `"trait_value":"dev1@acme.example"`) {
		t.Fatalf("stored trait not returned: %s", gbody)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down")
	}
	<-bannerDone
	if !strings.Contains(banner.String(), "Created a flag repository from the template") || !strings.Contains(banner.String(), prodKey) {
		t.Errorf("banner:\n%s", banner.String())
	}
	if _, err := os.Stat(filepath.Join(data, "flags", ".git")); err != nil {
		t.Errorf("no repository created under the data directory: %v", err)
	}
}

func TestServeConfigPrecedence(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "gitflags.json")
	os.WriteFile(cfgFile, []byte(`{"listen": "127.0.0.1:1111", "data": "/from-file", "branch": "from-file"}`), 0o644)
	t.Setenv("GITFLAGS_DATA", "/from-env")
	cfg, err := loadServeConfig([]string{"--config", cfgFile, "--branch", "from-flag"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:1111" || cfg.Data != "/from-env" || cfg.Branch != "from-flag" || cfg.LogFormat != "text" {
		t.Errorf("config %+v", cfg)
	}
	os.WriteFile(cfgFile, []byte(`{"listne": "x"}`), 0o644)
	if _, err := loadServeConfig([]string{"--config", cfgFile}, io.Discard); err == nil || !strings.Contains(err.Error(), "listne") {
		t.Errorf("unknown config key: %v", err)
	}
}

// syncBuffer is a buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is a running `gitflags` started by startRun.
type server struct {
	base        string      // http://127.0.0.1:PORT
	out, stderr *syncBuffer // what it printed so far
	stop        func()      // stops it (once), failing the test unless it exits 0
}

// startServe runs `gitflags serve --listen 127.0.0.1:0 args...` and returns
// its base URL; the server is stopped, and must exit 0, when the test ends.
func startServe(t testing.TB, args ...string) string {
	t.Helper()
	return startRun(t, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)).base
}

// startRun runs `gitflags args...`, which must serve, and waits for its
// banner; the server is stopped, and must exit 0, when the test ends.
func startRun(t testing.TB, args []string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	s := &server{out: &syncBuffer{}, stderr: &syncBuffer{}}
	go func() {
		done <- run(ctx, args, pw, s.stderr)
		pw.Close()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		var base string
		for sc.Scan() {
			s.out.Write([]byte(sc.Text() + "\n"))
			if m := regexp.MustCompile(`on (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(sc.Text()); m != nil && base == "" {
				base = m[1]
			}
			if strings.Contains(sc.Text(), "Press Ctrl+C to stop.") { // the banner's last line
				addr <- base
			}
		}
	}()
	select {
	case s.base = <-addr:
	case code := <-done:
		cancel()
		t.Fatalf("gitflags %v exited with %d before serving: %s", args, code, s.stderr)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("serve did not start within 60s")
	}
	s.stop = sync.OnceFunc(func() {
		http.DefaultClient.CloseIdleConnections()
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited with %d", code)
		}
	})
	t.Cleanup(s.stop)
	return s
}

// get returns the body of a GET of url, failing the test unless it is 200.
func get(t *testing.T, url string, header ...string) string {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}

// rateLimit returns production's api_rate_limit as served at base to the
// client key of the flag repository dir.
func rateLimit(t *testing.T, base, dir string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/flags/?feature=api_rate_limit", nil)
	_, key := environmentFile(t, dir, "production")
	req.Header.Set("X-Environment-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`"feature_state_value":(\d+)`).FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("no value in %s", body)
	}
	return m[1]
}

func waitRateLimit(t *testing.T, base, dir, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for rateLimit(t, base, dir) != want {
		if time.Now().After(deadline) {
			t.Fatalf("api_rate_limit is %s after 20s, want %s", rateLimit(t, base, dir), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func commitRateLimit(t *testing.T, dir, value string) {
	t.Helper()
	p := filepath.Join(dir, "environments", "production", "features", "api_rate_limit.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data = regexp.MustCompile(`"value": \d+`).ReplaceAll(data, []byte(`"value": `+value))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "commit", "-qam", "rate limit "+value)
}

// TestServeFollowsLocalCommits: a commit made by hand in the served
// repository is served without any call (fsnotify on the refs).
func TestServeFollowsLocalCommits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flags")
	if code, out, errOut := runCmd(t, "init", dir); code != 0 {
		t.Fatalf("init: %s%s", out, errOut)
	}
	base := startServe(t, "--repo", dir, "--data", t.TempDir(), "--interval", "1h")
	if got := rateLimit(t, base, dir); got != "600" {
		t.Fatalf("api_rate_limit %s, want 600", got)
	}
	commitRateLimit(t, dir, "601")
	waitRateLimit(t, base, dir, "601")
	// An invalid commit is not served; the fix after it is.
	os.WriteFile(filepath.Join(dir, "features", "broken.json"), []byte(`{"id": 1}`), 0o644)
	git(t, dir, "add", "-A")
	commitRateLimit(t, dir, "602")
	os.Remove(filepath.Join(dir, "features", "broken.json"))
	commitRateLimit(t, dir, "603")
	waitRateLimit(t, base, dir, "603")
}

// TestServeFollowsRemote: --repo is a URL; a push followed by POST
// /api/v1/sync (admin) is served.
func TestServeFollowsRemote(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	if code, out, errOut := runCmd(t, "init", src); code != 0 {
		t.Fatalf("init: %s%s", out, errOut)
	}
	git(t, tmp, "clone", "-q", "--bare", src, filepath.Join(tmp, "remote.git"))
	t.Setenv("GITFLAGS_ADMIN_TOKEN", "test-admin-token")
	base := startServe(t, "--repo", "file://"+filepath.Join(tmp, "remote.git"), "--data", filepath.Join(tmp, "data"), "--interval", "1h")
	if got := rateLimit(t, base, src); got != "600" {
		t.Fatalf("api_rate_limit %s, want 600", got)
	}
	commitRateLimit(t, src, "700")
	git(t, src, "push", "-q", filepath.Join(tmp, "remote.git"), "main")
	req, _ := http.NewRequest("POST", base+"/api/v1/sync", nil)
	req.Header.Set("Authorization", "Bearer test-admin-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("POST /api/v1/sync: %d", resp.StatusCode)
	}
	waitRateLimit(t, base, src, "700")
}
