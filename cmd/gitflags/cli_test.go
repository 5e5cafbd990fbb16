package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

// buildBinary builds the gitflags binary with extra go build arguments.
func buildBinary(t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gitflags")
	cmd := exec.Command("go", append(append([]string{"build", "-o", bin}, args...), ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestVersionOfBuild: a built binary prints its module's build information,
// and -ldflags -X main.version wins when given.
func TestVersionOfBuild(t *testing.T) {
	// Stamp the version control information even where GOFLAGS turns it off
	// (a checkout without git falls back to the module version alone).
	head, gitErr := exec.Command("git", "rev-parse", "HEAD").Output()
	vcs := "-buildvcs=auto"
	if gitErr == nil {
		vcs = "-buildvcs=true"
	}
	bin := buildBinary(t, vcs)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	if got == "gitflags dev" || !strings.HasPrefix(got, "gitflags ") {
		t.Errorf("version = %q, want the build's version", got)
	}
	if gitErr == nil {
		if rev := strings.TrimSpace(string(head))[:12]; !strings.Contains(got, rev) {
			t.Errorf("version = %q, want it to name the commit %s", got, rev)
		}
	}
	flagOut, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || string(flagOut) != string(out) {
		t.Errorf("--version = %q (%v), want %q", flagOut, err, out)
	}

	bin = buildBinary(t, "-ldflags", "-X main.version=v9.8.7")
	if out, err := exec.Command(bin, "--version").CombinedOutput(); err != nil || string(out) != "gitflags v9.8.7\n" {
		t.Errorf("with -X main.version: %q (%v)", out, err)
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	for _, c := range []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"go install of a release", &debug.BuildInfo{Main: debug.Module{Version: "v0.1.0"}}, "v0.1.0"},
		{"go install of a commit", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260101120000-0123456789ab"}}, "v0.0.0-20260101120000-0123456789ab"},
		{"local build", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.modified", Value: "true"},
		}}, "(devel) 0123456789ab, modified"},
		{"local build, clean", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.modified", Value: "false"},
		}}, "(devel) 0123456789ab"},
		{"no version control", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
		{"no build info", nil, "(devel)"},
	} {
		if got := versionOf(c.info); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestFlagsWithoutCommandServe: flags without a command are serve's flags,
// as the help says ("with no command, gitflags serves").
func TestFlagsWithoutCommandServe(t *testing.T) {
	data := t.TempDir()
	base := startRun(t, []string{"--listen", "127.0.0.1:0", "--data", data}).base
	if _, err := os.Stat(filepath.Join(data, "flags", "gitflags.json")); err != nil {
		t.Errorf("the embedded default was not created in --data: %v", err)
	}
	if body := get(t, base+"/healthz"); body == "" {
		t.Error("no answer from /healthz")
	}
	if code, _, errOut := runCmd(t, "--no-such-flag"); code != 2 || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("an unknown flag: exit %d %s", code, errOut)
	}
	if code, out, _ := runCmd(t, "--version"); code != 0 || !strings.HasPrefix(out, "gitflags ") {
		t.Errorf("--version: exit %d %q", code, out)
	}
}

// TestServeConfigBoolean: --watch-worktree and --access-log are booleans
// on the command line, in the environment and in the config file.
func TestServeConfigBoolean(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "gitflags.json")
	load := func(file string, args ...string) (serveConfig, error) {
		t.Helper()
		if file != "" {
			if err := os.WriteFile(cfgFile, []byte(file), 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--config", cfgFile)
		}
		return loadServeConfig(args, io.Discard)
	}
	for _, c := range []struct {
		file, env string
		args      []string
		want      bool
	}{
		{args: nil, want: false},
		{args: []string{"--watch-worktree"}, want: true},
		{args: []string{"--watch-worktree=true"}, want: true},
		{args: []string{"--watch-worktree=false"}, env: "true", want: false},
		{env: "true", want: true},
		{file: `{"watch_worktree": true}`, want: true},
		{file: `{"watch_worktree": true}`, env: "false", want: false},
		{file: `{"watch_worktree": false}`, args: []string{"--watch-worktree"}, want: true},
	} {
		t.Setenv("GITFLAGS_WATCH_WORKTREE", c.env)
		cfg, err := load(c.file, c.args...)
		if err != nil || cfg.WatchWorktree != c.want {
			t.Errorf("file %s, env %q, args %v: watch worktree %v (%v), want %v", c.file, c.env, c.args, cfg.WatchWorktree, err, c.want)
		}
	}
	t.Setenv("GITFLAGS_WATCH_WORKTREE", "")
	cfg, err := load(`{"access_log": true, "interval": "1m", "log_level": "debug"}`, "--log-level", "warn")
	if err != nil || !cfg.AccessLog || cfg.Interval != time.Minute || cfg.LogLevel != "warn" {
		t.Errorf("config %+v (%v)", cfg, err)
	}
	for file, want := range map[string]string{
		`{"watch_worktree": "yes"}`: `"watch_worktree" must be true or false, not "yes"`,
		`{"listen": 8080}`:          `"listen" must be a string, not 8080`,
		`{"interval": "soon"}`:      `invalid value "soon" for "interval"`,
		`{"log_level": "loud"}`:     `log level must be debug, info, warn or error, not "loud"`,
		`{"config": "x.json"}`:      `unknown key "config"`,
		`[1]`:                       `not a JSON object`,
	} {
		if _, err := load(file); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %s: %v, want an error saying %q", file, err, want)
		}
	}
	if _, err := load("", "--watch-worktree", "true"); err == nil || !strings.Contains(err.Error(), "--watch-worktree=true") {
		t.Errorf("--watch-worktree true: %v, want a hint at --watch-worktree=true", err)
	}
	t.Setenv("GITFLAGS_ACCESS_LOG", "maybe")
	if _, err := load(""); err == nil || !strings.Contains(err.Error(), "GITFLAGS_ACCESS_LOG") {
		t.Errorf("GITFLAGS_ACCESS_LOG=maybe: %v", err)
	}
}

// serveHelpText returns the output of `gitflags serve --help`.
func serveHelpText(t *testing.T) string {
	t.Helper()
	code, _, help := runCmd(t, "serve", "--help")
	if code != 0 {
		t.Fatalf("serve --help: exit %d", code)
	}
	return help
}

// TestServeHelp: the usage line names every flag, and the flags list shows
// the real defaults.
func TestServeHelp(t *testing.T) {
	help := serveHelpText(t)
	usage, _, _ := strings.Cut(help, "\n")
	fs := newFlagSet("serve", "", "", io.Discard)
	var cfg serveConfig
	serveFlags(fs, &cfg)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(usage, "[--"+f.Name+" ") && !strings.Contains(usage, "[--"+f.Name+"]") {
			t.Errorf("the usage line lacks --%s: %s", f.Name, usage)
		}
	})
	for _, want := range []string{
		"[--config file]", "[--watch-worktree]", "[--repo PATH|URL]",
		`(default "127.0.0.1:8080")`, `(default ".gitflags-data")`, "(default 10s)", `(default "info")`, `(default "text")`,
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %s:\n%s", want, help)
		}
	}
	// Go's flag package leaves out a false default: the booleans say it.
	for _, name := range []string{"access-log", "watch-worktree", "offline-writes"} {
		if f := fs.Lookup(name); f == nil || !strings.Contains(f.Usage, "(default false)") {
			t.Errorf("--%s does not show its default", name)
		}
	}
	if strings.Contains(help, "(default:") {
		t.Errorf("a default given in a description instead of the flag's default:\n%s", help)
	}
}

// TestREADMEEnvironmentVariables: README's serving section and `gitflags
// serve --help` name the same environment variables.
func TestREADMEEnvironmentVariables(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Serving flags\n")
	section, _, _ = strings.Cut(section, "\n## Performance")
	if !ok {
		t.Fatal("README has no section ## Serving flags")
	}
	names := func(s string) []string {
		set := map[string]bool{}
		for _, n := range regexp.MustCompile(`GITFLAGS_[A-Z_]+[A-Z]`).FindAllString(s, -1) {
			set[n] = true
		}
		return slices.Sorted(maps.Keys(set))
	}
	if inREADME, inHelp := names(section), names(serveHelpText(t)); !slices.Equal(inREADME, inHelp) {
		t.Errorf("environment variables\nin README:      %v\nin serve --help: %v", inREADME, inHelp)
	}
}

// TestServeLogLevel: --log-level debug prints the debug lines, warn hides
// the info lines; --access-log logs each request.
func TestServeLogLevel(t *testing.T) {
	s := startRun(t, []string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "debug", "--access-log"})
	get(t, s.base+"/healthz?identifier=alice")
	waitFor(t, "the access log line", func() bool { return strings.Contains(s.stderr.String(), "msg=request") })
	logs := s.stderr.String()
	if !strings.Contains(logs, "level=DEBUG msg=configuration") {
		t.Errorf("no debug line at --log-level debug:\n%s", logs)
	}
	if !regexp.MustCompile(`level=INFO msg=request method=GET path=/healthz status=200 bytes=\d+ duration=\S+ remote=127\.0\.0\.1:\d+\n`).MatchString(logs) || strings.Contains(logs, "alice") {
		t.Errorf("access log:\n%s", logs)
	}

	s = startRun(t, []string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn"})
	get(t, s.base+"/healthz")
	if logs := s.stderr.String(); strings.Contains(logs, "level=INFO") || strings.Contains(logs, "level=DEBUG") {
		t.Errorf("info or debug lines at --log-level warn:\n%s", logs)
	}
}

// waitFor polls cond until it holds, for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// environmentFile returns the id and client key of an environment of the
// flag repository in dir.
func environmentFile(t *testing.T, dir, env string) (id int, clientKey string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "environments", env, "environment.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		ID        int    `json:"id"`
		ClientKey string `json:"client_key"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.ID, doc.ClientKey
}

// TestInitFreshKeys: every `gitflags init`, and the embedded default serve
// creates, has client keys of its own, in the template's style; ids stay.
func TestInitFreshKeys(t *testing.T) {
	tmp := t.TempDir()
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	for _, dir := range []string{a, b} {
		if code, out, errOut := runCmd(t, "init", dir); code != 0 {
			t.Fatalf("init: %s%s", out, errOut)
		}
	}
	s := startRun(t, []string{"serve", "--listen", "127.0.0.1:0", "--data", filepath.Join(tmp, "data")})
	embedded := filepath.Join(tmp, "data", "flags")
	template := filepath.Join("..", "..", "flags-repo-template")
	pattern := regexp.MustCompile(`^[a-z]+_[0-9A-Za-z]{20}$`)
	seen := map[string]bool{}
	for _, env := range []string{"development", "staging", "production"} {
		wantID, templateKey := environmentFile(t, template, env)
		prefix, _, _ := strings.Cut(templateKey, "_")
		for _, dir := range []string{a, b, embedded} {
			id, key := environmentFile(t, dir, env)
			if id != wantID || !pattern.MatchString(key) || !strings.HasPrefix(key, prefix+"_") || key == templateKey || seen[key] {
				t.Errorf("%s of %s: id %d, client key %q; want id %d and a new key %s_ + 20 letters and digits", env, dir, id, key, wantID, prefix)
			}
			seen[key] = true
		}
		_, key := environmentFile(t, embedded, env)
		if !strings.Contains(s.out.String(), key) {
			t.Errorf("the banner does not show %s's key %s:\n%s", env, key, s.out)
		}
		get(t, s.base+"/api/v1/flags/", "X-Environment-Key", key)
	}
	if code, out, _ := runCmd(t, "validate", "--rev", "HEAD", a); code != 0 {
		t.Errorf("validate: %s", out)
	}
}

// TestKeygenName: --name is checked as the schema checks a server key's
// name, and the printed entry is JSON that holds it exactly.
func TestKeygenName(t *testing.T) {
	for _, name := range []string{"", strings.Repeat("n", 201), "bad\xff"} {
		if code, out, errOut := runCmd(t, "keygen", "--name", name); code != 2 || out != "" || !strings.Contains(errOut, "--name") {
			t.Errorf("keygen --name %q: exit %d\n%s%s", name, code, out, errOut)
		}
	}
	for _, name := range []string{"backend", `ci "deploy" \ bot`, "tab\there", strings.Repeat("é", 200)} {
		code, out, errOut := runCmd(t, "keygen", "--name", name)
		_, entry, _ := strings.Cut(out, "environment.json:\n")
		var got struct{ Name, SHA256 string }
		if code != 0 || json.Unmarshal([]byte(entry), &got) != nil || got.Name != name || len(got.SHA256) != 64 {
			t.Errorf("keygen --name %q: exit %d, entry %s%s", name, code, entry, errOut)
		}
	}
	// --previews adds "previews": true to the entry.
	_, out, _ := runCmd(t, "keygen", "--name", "ci", "--previews")
	_, entry, _ := strings.Cut(out, "environment.json:\n")
	var got struct{ Previews bool }
	if json.Unmarshal([]byte(entry), &got) != nil || !got.Previews {
		t.Errorf("keygen --previews: %s", out)
	}
}

// TestValidateNotAFlagRepository: a directory (or revision) without
// gitflags.json is named once as not a flag repository, exit 2, not listed
// file by file.
func TestValidateNotAFlagRepository(t *testing.T) {
	dir := t.TempDir()
	for i := range 30 {
		p := filepath.Join(dir, "src", fmt.Sprint("pkg", i), "main.go")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("package main\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "init", "-q")
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-qm", "code")
	for _, args := range [][]string{{"validate", dir}, {"validate", "--rev", "HEAD", dir}, {"validate", "--format", "json", dir}} {
		code, out, errOut := runCmd(t, args...)
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "is not a flag repository") || !strings.Contains(errOut, "gitflags.json") {
			t.Errorf("%v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
		}
	}
}

// TestServeWorktreeBanner: the banner of --watch-worktree says what is
// served instead of an empty revision.
func TestServeWorktreeBanner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flags")
	if code, out, errOut := runCmd(t, "init", dir); code != 0 {
		t.Fatalf("init: %s%s", out, errOut)
	}
	s := startRun(t, []string{"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--repo", dir, "--watch-worktree"})
	banner, _, _ := strings.Cut(s.out.String(), "\n")
	if want := "gitflags is serving the working tree of " + dir + " (uncommitted edits included) on " + s.base; banner != want {
		t.Errorf("banner %q\nwant   %q", banner, want)
	}
}

// TestServeInvalidAtStart: a repository invalid at start fails with its
// problems, and nothing claims that a last good revision keeps serving.
func TestServeInvalidAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flags")
	if code, out, errOut := runCmd(t, "init", dir); code != 0 {
		t.Fatalf("init: %s%s", out, errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, "features", "broken.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-qm", "broken")
	for _, args := range [][]string{{"--repo", dir}, {"--repo", dir, "--watch-worktree"}} {
		code, out, errOut := runCmd(t, append([]string{"serve", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, args...)...)
		if code != 1 || !strings.Contains(errOut, "features/broken.json:1:2: invalid JSON") || strings.Contains(out, "serving") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		if n := strings.Count(errOut, "features/broken.json:1:2"); n != 1 {
			t.Errorf("%v: the problem is reported %d times, want once:\n%s", args, n, errOut)
		}
		if strings.Contains(errOut, "keeps serving") {
			t.Errorf("%v: a last good revision is said to keep serving, but there is none:\n%s", args, errOut)
		}
	}
}

// TestServeRemoteDownAtStart: with the remote gone at a restart, the last
// fetched revision is served and the error is logged once.
func TestServeRemoteDownAtStart(t *testing.T) {
	tmp := t.TempDir()
	src, remote, data := filepath.Join(tmp, "src"), filepath.Join(tmp, "remote.git"), filepath.Join(tmp, "data")
	if code, out, errOut := runCmd(t, "init", src); code != 0 {
		t.Fatalf("init: %s%s", out, errOut)
	}
	git(t, tmp, "clone", "-q", "--bare", src, remote)
	args := []string{"serve", "--listen", "127.0.0.1:0", "--repo", "file://" + remote, "--data", data, "--interval", "1h"}
	startRun(t, args).stop()
	if err := os.Rename(remote, remote+".gone"); err != nil {
		t.Fatal(err)
	}
	s := startRun(t, args)
	if got := rateLimit(t, s.base, src); got != "600" {
		t.Errorf("api_rate_limit %s, want 600", got)
	}
	// The Syncer fetches at once when it starts.
	waitFor(t, "the sync error", func() bool { return strings.Contains(s.stderr.String(), "sync failed") })
	logs := s.stderr.String()
	if n := strings.Count(logs, "no repository at that URL"); n != 1 {
		t.Errorf("the fetch error is logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, "serving the last fetched revision") {
		t.Errorf("the log does not say that the last fetched revision is served:\n%s", logs)
	}
}

// TestServeRemoteUnreachableAtFirstStart: a remote that cannot be reached
// before any clone exists fails the start with one line that names the URL
// for the clone and for the fetch, not once more for every layer.
func TestServeRemoteUnreachableAtFirstStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/flags.git"
	ln.Close() // nothing listens there now
	code, _, errOut := runCmd(t, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--repo", url)
	if code != 1 || !strings.Contains(errOut, "connection refused") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(errOut, url); n > 2 {
		t.Errorf("the URL is repeated %d times:\n%s", n, errOut)
	}
}
