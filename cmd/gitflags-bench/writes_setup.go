package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gitflags/gitflags"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/tokens"
)

// writesSetup is what a writes run talks to and verifies.
type writesSetup struct {
	urls       []string
	tokens     []string // dealt to the writers in turn
	key        string   // client key of the environment written
	feature    string
	verifyRepo string   // the repository whose branch must hold every acknowledged write
	extraFsck  []string // other repositories to fsck (the servers' clones of the remote)
	remoteURL  string

	servers []*serverProc
	stopped bool
	httpSrv *http.Server
	logs    []*os.File
}

func (s *writesSetup) close() {
	s.stopServers()
	if s.httpSrv != nil {
		_ = s.httpSrv.Close()
	}
	for _, f := range s.logs {
		_ = f.Close()
	}
}

// stopServers stops the spawned servers (SIGTERM) and returns their peak
// RSS, read before they exit.
func (s *writesSetup) stopServers() []int64 {
	if s.stopped {
		return nil
	}
	s.stopped = true
	var rss []int64
	for _, p := range s.servers {
		rss = append(rss, peakRSS(p.cmd.Process.Pid))
		p.stop()
	}
	return rss
}

// gitEnv is the environment of the git commands the tool runs: no user or
// system configuration.
func gitEnv() []string {
	return append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C")
}

// git runs git in dir and returns its standard output.
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = gitEnv()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("git %s in %s: %v: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

func setupWrites(ctx context.Context, o *writesOptions, work string, logf func(string, ...any)) (*writesSetup, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, errors.New("the git binary is needed to verify the history (and to serve --remote over smart HTTP)")
	}
	s := &writesSetup{}
	if !o.spawn {
		for _, u := range o.urls {
			host, err := urlHost(u)
			if err != nil {
				return s, err
			}
			if err := checkLoopback(host); err != nil {
				return s, err
			}
		}
		s.urls, s.tokens = o.urls, o.tokens
		s.verifyRepo = o.verifyRepo
		if s.verifyRepo == "" {
			s.verifyRepo = o.repo
		}
		var err error
		if s.verifyRepo, err = filepath.Abs(s.verifyRepo); err != nil {
			return s, err
		}
		return s, s.discover(o)
	}

	if entries, err := os.ReadDir(work); err != nil {
		return s, err
	} else if len(entries) > 0 {
		return s, fmt.Errorf("--work %s is not empty", work)
	}
	tokensFile, err := writeTokens(filepath.Join(work, "tokens.json"), o.writers*o.tokensEach, &s.tokens)
	if err != nil {
		return s, err
	}
	repo := ""
	if o.repo != "" {
		if repo, err = filepath.Abs(o.repo); err != nil {
			return s, err
		}
	}
	var serveRepo string
	switch {
	case o.remote:
		source := repo
		if source == "" {
			source = filepath.Join(work, "source")
			if _, err := gitstore.Init(source, gitflags.Template(), gitstore.DefaultAuthor()); err != nil {
				return s, fmt.Errorf("the template repository: %w", err)
			}
		}
		root := filepath.Join(work, "git")
		bare := filepath.Join(root, "flags.git")
		if _, err := git(work, "clone", "--bare", "-q", "--no-local", source, bare); err != nil {
			return s, err
		}
		if _, err := git(bare, "config", "http.receivepack", "true"); err != nil {
			return s, err
		}
		addr, err := s.serveSmartHTTP(root, filepath.Join(work, "http-backend.log"))
		if err != nil {
			return s, err
		}
		s.remoteURL = "http://" + addr + "/flags.git"
		s.verifyRepo, serveRepo = bare, s.remoteURL
		logf("remote: %s (git http-backend on loopback), a bare copy of %s", s.remoteURL, source)
	case repo != "":
		s.verifyRepo, serveRepo = repo, repo
	default:
		s.verifyRepo = filepath.Join(work, "server-1", "data", "flags") // the embedded default
	}
	for i := 1; i <= o.servers; i++ {
		dir := filepath.Join(work, "server-"+strconv.Itoa(i))
		args := []string{"--tokens", tokensFile}
		if serveRepo != "" {
			args = append(args, "--repo", serveRepo)
		}
		p, err := spawnWriteServer(ctx, o, dir, append(args, o.serverArgs...))
		if err != nil {
			return s, fmt.Errorf("server %d: %w", i, err)
		}
		s.servers = append(s.servers, p)
		s.urls = append(s.urls, p.url)
		if o.remote {
			s.extraFsck = append(s.extraFsck, filepath.Join(dir, "data", "remote"))
		}
		logf("gitflags %d is ready on %s after %.1f s (log %s)", i, p.url, p.startup.Seconds(), p.logPath)
	}
	return s, s.discover(o)
}

// writeTokens writes a tokens file of n write tokens (--tokens-per-writer
// for each writer: the admin API rate-limits writes per token) and appends their secrets to
// secrets.
func writeTokens(file string, n int, secrets *[]string) (string, error) {
	var entries []tokens.Entry
	for i := range n {
		secret, sum, err := tokens.Generate()
		if err != nil {
			return "", err
		}
		*secrets = append(*secrets, secret)
		entries = append(entries, tokens.Entry{Name: fmt.Sprintf("bench-writer-%03d", i+1),
			Email: fmt.Sprintf("bench-writer-%03d@example.com", i+1), SHA256: sum, Scope: "write"})
	}
	data, err := json.MarshalIndent(map[string]any{"tokens": entries}, "", "  ")
	if err != nil {
		return "", err
	}
	return file, os.WriteFile(file, append(data, '\n'), 0o600)
}

// serveSmartHTTP serves the repositories under root over smart HTTP (git
// http-backend as CGI) on a loopback port, and returns its address.
func (s *writesSetup) serveSmartHTTP(root, logPath string) (string, error) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		return "", err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	s.logs = append(s.logs, logFile)
	backend := &cgi.Handler{
		Path:   gitBin,
		Args:   []string{"http-backend"},
		Env:    []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=/nonexistent"},
		Stderr: logFile,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s.httpSrv = &http.Server{Handler: backend, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.httpSrv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// spawnWriteServer starts `gitflags serve` with its data (and log) in dir.
func spawnWriteServer(ctx context.Context, o *writesOptions, dir string, extra []string) (*serverProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return startServe(ctx, o.serverBin, o.serverProcs, o.readyTimeout, filepath.Join(dir, "data"), filepath.Join(dir, "server.log"), extra)
}

// discover reads the client key of --env and picks the feature to write
// from the committed head of the repository verified (bare or not).
func (s *writesSetup) discover(o *writesOptions) error {
	s.key, s.feature = o.key, o.feature
	if s.key == "" {
		raw, err := git(s.verifyRepo, "show", "HEAD:"+path.Join("environments", o.env, "environment.json"))
		if err != nil {
			return fmt.Errorf("environment %q: %w (give --env or --key)", o.env, err)
		}
		var e struct {
			ClientKey      string `json:"client_key"`
			ReviewRequired bool   `json:"review_required"`
		}
		if err := json.Unmarshal([]byte(raw), &e); err != nil || e.ClientKey == "" {
			return fmt.Errorf("environments/%s/environment.json: no client_key (%v)", o.env, err)
		}
		if e.ReviewRequired {
			return fmt.Errorf("environment %q has review_required: its writes are proposals (202), not served writes; choose another --env", o.env)
		}
		s.key = e.ClientKey
	}
	if s.feature != "" {
		return nil
	}
	if _, err := git(s.verifyRepo, "cat-file", "-e", "HEAD:features/api_rate_limit.json"); err == nil {
		s.feature = "api_rate_limit"
		return nil
	}
	list, err := git(s.verifyRepo, "ls-tree", "--name-only", "HEAD", "features/")
	if err != nil {
		return err
	}
	names := strings.Fields(list)
	blobs, err := catFiles(s.verifyRepo, "HEAD", names)
	if err != nil {
		return err
	}
	for i, raw := range blobs {
		var f struct {
			Default struct {
				Value json.RawMessage `json:"value"`
			} `json:"default"`
			Variants []json.RawMessage `json:"variants"`
		}
		if json.Unmarshal(raw, &f) != nil || len(f.Variants) > 0 {
			continue
		}
		if _, err := strconv.ParseInt(string(f.Default.Value), 10, 64); err == nil {
			s.feature = strings.TrimSuffix(path.Base(names[i]), ".json")
			return nil
		}
	}
	return errors.New("no feature with an integer default and no variants: give --feature")
}

// catFiles reads the files at paths of revision rev with one git cat-file
// --batch.
func catFiles(dir, rev string, paths []string) ([][]byte, error) {
	var in bytes.Buffer
	for _, p := range paths {
		fmt.Fprintf(&in, "%s:%s\n", rev, p)
	}
	cmd := exec.Command("git", "-C", dir, "cat-file", "--batch")
	cmd.Env = gitEnv()
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git cat-file --batch in %s: %w", dir, err)
	}
	blobs := make([][]byte, 0, len(paths))
	for range paths {
		header, rest, ok := bytes.Cut(out, []byte("\n"))
		if !ok {
			return nil, fmt.Errorf("git cat-file --batch in %s: short output", dir)
		}
		f := strings.Fields(string(header))
		if len(f) != 3 { // "<name> missing"
			blobs = append(blobs, nil)
			out = rest
			continue
		}
		size, err := strconv.Atoi(f[2])
		if err != nil || size+1 > len(rest) {
			return nil, fmt.Errorf("git cat-file --batch in %s: bad header %q", dir, header)
		}
		blobs = append(blobs, rest[:size])
		out = rest[size+1:]
	}
	return blobs, nil
}
