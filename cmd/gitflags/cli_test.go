package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
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
