//go:build unix

package gitstore

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestResolveOutOfDescriptors checks that a process out of file descriptors
// is told so, not that the branch it serves is an unknown revision. The
// descriptors are exhausted in a child process (this test binary run again)
// so that no other test runs short of them.
func TestResolveOutOfDescriptors(t *testing.T) {
	dir := os.Getenv("GITSTORE_TEST_EMFILE_REPO")
	if dir == "" {
		dir, _ = newRepo(t, minimal)
		cmd := exec.Command(os.Args[0], "-test.run=^TestResolveOutOfDescriptors$", "-test.v")
		cmd.Env = append(os.Environ(), "GITSTORE_TEST_EMFILE_REPO="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child process: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "--- PASS: TestResolveOutOfDescriptors") {
			t.Fatalf("child process did not run the test:\n%s", out)
		}
		return
	}

	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = 256
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	r := open(t, dir)
	if _, err := r.Resolve("main"); err != nil {
		t.Fatalf("Resolve before the shortage: %v", err)
	}
	var files []*os.File
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("exhausting descriptors: %v", err)
			}
			break
		}
		files = append(files, f)
	}
	_, err := r.Resolve("main")
	for _, f := range files {
		f.Close()
	}
	if err == nil {
		t.Fatal("Resolve succeeded with no file descriptor free")
	}
	if errors.Is(err, ErrUnknownRevision) || !strings.Contains(err.Error(), "too many open files") {
		t.Fatalf("Resolve with no descriptor free = %v; want an error saying the process is out of file descriptors, not an unknown revision", err)
	}
	if _, err := r.Resolve("main"); err != nil {
		t.Fatalf("Resolve after the shortage: %v", err)
	}
}
