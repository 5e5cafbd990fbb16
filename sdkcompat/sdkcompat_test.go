package sdkcompat

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nodeTestFiles are the node --test files in node/ (node runs them in
// parallel, one process each).
var nodeTestFiles = []string{"flagsmith.test.mjs", "local-eval.test.mjs", "ofrep.test.mjs", "realtime.test.mjs"}

func TestSDKCompat(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("sdkcompat needs Node.js >= 20 (node) on PATH to run the Flagsmith and OpenFeature SDKs: " + err.Error())
	}
	npmBin, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("sdkcompat needs npm on PATH to install the pinned SDKs (npm ci): " + err.Error())
	}
	checkNodeVersion(t, nodeBin)

	nodeDir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	// npm ci (when needed) runs while the server is built and started.
	var npmErr error
	npmDone := make(chan struct{})
	go func() {
		defer close(npmDone)
		npmErr = ensureNodeModules(t, npmBin, nodeDir)
	}()
	defer func() { <-npmDone }() // no logging after the test ends

	tmp := t.TempDir()
	bin := buildGitflags(t, tmp)

	repo := filepath.Join(tmp, "flags")
	clientKey, serverKey := prepareRepo(t, bin, repo)

	srv := startServer(t, bin, repo, filepath.Join(tmp, "data"))
	defer srv.stop(t) // also on t.Fatal; stop is idempotent

	<-npmDone
	if npmErr != nil {
		t.Fatal(npmErr)
	}

	runNodeTests(t, nodeBin, nodeDir, map[string]string{
		"GITFLAGS_URL":        srv.url,
		"GITFLAGS_CLIENT_KEY": clientKey,
		"GITFLAGS_SERVER_KEY": serverKey,
		"GITFLAGS_RUN_ID":     "sdkcompat-" + randomHex(t, 6),
		// realtime.test.mjs commits to these environments with git.
		"GITFLAGS_REPO":               repo,
		"GITFLAGS_STAGING_CLIENT_KEY": environmentClientKey(t, repo, "staging"),
		"GITFLAGS_DEV_CLIENT_KEY":     environmentClientKey(t, repo, "development"),
	})

	srv.stop(t)
}

// checkNodeVersion fails unless node is at least version 20.
func checkNodeVersion(t *testing.T, nodeBin string) {
	out, err := exec.Command(nodeBin, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	v := strings.TrimSpace(string(out))
	major, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	if n, err := strconv.Atoi(major); err != nil || n < 20 {
		t.Fatalf("sdkcompat needs Node.js >= 20 (flagsmith-nodejs 8 and node --test), found %s", v)
	}
	t.Logf("using node %s", v)
}

// buildGitflags builds cmd/gitflags into dir. When this test binary has
// the race detector on, so does the server.
func buildGitflags(t *testing.T, dir string) string {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go is not on PATH (needed to build cmd/gitflags): " + err.Error())
	}
	bin := filepath.Join(dir, "gitflags")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/gitflags/gitflags/cmd/gitflags")
	start := time.Now()
	cmd := exec.Command(goBin, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built gitflags (race=%v) in %v", raceEnabled, time.Since(start).Round(time.Millisecond))
	return bin
}

// prepareRepo creates a flag repository from the template with gitflags
// init, adds a fresh server key to the production environment, commits it
// and validates the result. It returns the production environment's client
// key (init makes a fresh one for every repository) and the server key.
func prepareRepo(t *testing.T, bin, repo string) (clientKey, serverKey string) {
	run(t, "", bin, "init", repo)

	key := "ser." + randomHex(t, 24)
	sum := sha256.Sum256([]byte(key))
	envPath := filepath.Join(repo, "environments", "production", "environment.json")
	data, err := os.ReadFile(envPath)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("%s: %v", envPath, err)
	}
	clientKey, _ = env["client_key"].(string)
	if clientKey == "" {
		t.Fatalf("%s: no client_key", envPath)
	}
	keys, _ := env["server_keys"].([]any)
	env["server_keys"] = append(keys, map[string]any{"name": "sdk-test", "sha256": hex.EncodeToString(sum[:])})
	data, err = json.MarshalIndent(env, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(envPath, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) {
		run(t, repo, "git", append([]string{"-c", "user.name=sdkcompat", "-c", "user.email=sdkcompat@gitflags.invalid", "-c", "commit.gpgsign=false"}, args...)...)
	}
	git("add", "environments/production/environment.json")
	git("commit", "-q", "-m", "production: add the sdk-test server key")
	run(t, "", bin, "validate", repo)
	return clientKey, key
}

// environmentClientKey returns the client key of environment env in repo
// (gitflags init makes fresh ones).
func environmentClientKey(t *testing.T, repo, env string) string {
	t.Helper()
	path := filepath.Join(repo, "environments", env, "environment.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		ClientKey string `json:"client_key"`
	}
	if err := json.Unmarshal(data, &e); err != nil || e.ClientKey == "" {
		t.Fatalf("%s: no client_key (%v)", path, err)
	}
	return e.ClientKey
}

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ensureNodeModules runs npm ci in nodeDir unless node_modules was installed
// from the current package.json and package-lock.json (a stamp file in
// node_modules records their hash).
func ensureNodeModules(t *testing.T, npmBin, nodeDir string) error {
	h := sha256.New()
	for _, name := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(nodeDir, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	want := hex.EncodeToString(h.Sum(nil))
	stamp := filepath.Join(nodeDir, "node_modules", ".gitflags-sdkcompat-stamp")
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		t.Logf("node_modules is up to date with package-lock.json")
		return nil
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npmBin, "ci", "--no-audit", "--no-fund")
	cmd.Dir = nodeDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", nodeDir, err, out)
	}
	t.Logf("npm ci (%v): %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(string(out)))
	return os.WriteFile(stamp, []byte(want+"\n"), 0o644)
}

// server is a running gitflags serve process.
type server struct {
	cmd    *exec.Cmd
	url    string
	stderr *lockedBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's result, set before done closes
	once   sync.Once
}

var bannerRE = regexp.MustCompile(`gitflags is serving .* on (http://127\.0\.0\.1:[0-9]+)`)

func startServer(t *testing.T, bin, repo, data string) *server {
	cmd := exec.Command(bin, "serve", "--repo", repo, "--listen", "127.0.0.1:0", "--data", data)
	// Leave the environment alone except for settings serve reads itself.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GITFLAGS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	urls := make(chan string, 1)
	s := &server{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	outW := &lineWriter{fn: func(line string) {
		if m := bannerRE.FindStringSubmatch(line); m != nil {
			select {
			case urls <- m[1]:
			default:
			}
		}
		t.Logf("server stdout: %s", line)
	}}
	errW := &lineWriter{fn: func(line string) { t.Logf("server: %s", line) }}
	cmd.Stdout = outW
	cmd.Stderr = io.MultiWriter(s.stderr, errW)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gitflags serve: %v", err)
	}
	go func() {
		s.err = cmd.Wait()
		outW.Flush()
		errW.Flush()
		close(s.done)
	}()
	select {
	case s.url = <-urls:
	case <-s.done:
		t.Fatalf("gitflags serve exited before serving: %v\n%s", s.err, s.stderr.String())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-s.done
		t.Fatalf("gitflags serve printed no \"gitflags is serving ... on http://...\" line within 30s\n%s", s.stderr.String())
	}
	t.Logf("gitflags serves %s", s.url)
	return s
}

// stop sends SIGTERM and checks that the server shuts down cleanly (exit
// status 0, no data race reported).
func (s *server) stop(t *testing.T) {
	s.once.Do(func() {
		select {
		case <-s.done:
			t.Errorf("gitflags serve exited on its own before the end of the test: %v", s.err)
			return
		default:
		}
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("SIGTERM to gitflags serve: %v", err)
		}
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
			t.Errorf("gitflags serve did not exit within 20s of SIGTERM")
			return
		}
		if s.err != nil {
			t.Errorf("gitflags serve did not exit cleanly after SIGTERM: %v", s.err)
		}
		if strings.Contains(s.stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector reported a data race in gitflags serve (see the server log above)")
		}
		if s.err == nil {
			t.Logf("gitflags serve stopped cleanly (exit status 0)")
		}
	})
}

var tapCountRE = regexp.MustCompile(`^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ([0-9.]+)$`)

// runNodeTests runs node --test on nodeTestFiles with env added to the
// environment, streams the output into the test log and fails unless every
// Node test passed.
func runNodeTests(t *testing.T, nodeBin, nodeDir string, env map[string]string) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	args := []string{"--test", "--test-reporter=tap"}
	args = append(args, nodeTestFiles...)
	cmd := exec.CommandContext(ctx, nodeBin, args...)
	cmd.Dir = nodeDir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.WaitDelay = 5 * time.Second
	counts := map[string]string{}
	var failed []string // TAP "not ok" lines
	var mu sync.Mutex
	outW := &lineWriter{fn: func(line string) {
		if m := tapCountRE.FindStringSubmatch(line); m != nil {
			mu.Lock()
			counts[m[1]] = m[2]
			mu.Unlock()
		}
		if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "not ok ") {
			mu.Lock()
			failed = append(failed, trimmed)
			mu.Unlock()
		}
		t.Logf("node: %s", line)
	}}
	errW := &lineWriter{fn: func(line string) { t.Logf("node stderr: %s", line) }}
	cmd.Stdout, cmd.Stderr = outW, errW
	start := time.Now()
	err := cmd.Run()
	outW.Flush()
	errW.Flush()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("node --test: %s tests, %s passed, %s failed, %s cancelled, %s skipped in %v",
		orQ(counts["tests"]), orQ(counts["pass"]), orQ(counts["fail"]), orQ(counts["cancelled"]), orQ(counts["skipped"]),
		time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		t.Fatalf("node --test did not finish within 100s")
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node --test failed (exit status %d); failing tests (details in the node output above):\n  %s", ee.ExitCode(), strings.Join(failed, "\n  "))
		}
		t.Fatalf("node --test: %v", err)
	}
	if counts["tests"] == "" || counts["tests"] == "0" || counts["fail"] != "0" {
		t.Fatalf("node --test exited 0 but reported tests=%q fail=%q", counts["tests"], counts["fail"])
	}
}

func orQ(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// lineWriter calls fn with every line written to it. A last line without a
// newline is passed on by Flush.
type lineWriter struct {
	mu  sync.Mutex
	buf []byte
	fn  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.fn(strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// Flush passes on a last line that has no newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.fn(string(w.buf))
		w.buf = nil
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
