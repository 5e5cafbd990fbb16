// Package gittest runs the git binary for tests and benchmarks: creating
// repositories, committing generated flag repositories, and inspecting
// results. Production code never runs git; only tests use this package.
package gittest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Identity is the author and committer of every commit made through this
// package.
const (
	Name  = "Test Author"
	Email = "author@example.com"
)

// Env is the environment git runs with: a fixed identity and dates, no user
// or system configuration, and no automatic garbage collection.
var Env = []string{
	"GIT_AUTHOR_NAME=" + Name,
	"GIT_AUTHOR_EMAIL=" + Email,
	"GIT_COMMITTER_NAME=" + Name,
	"GIT_COMMITTER_EMAIL=" + Email,
	"GIT_AUTHOR_DATE=2024-05-01T12:00:00Z",
	"GIT_COMMITTER_DATE=2024-05-01T12:00:00Z",
	"GIT_CONFIG_NOSYSTEM=1",
	"GIT_CONFIG_GLOBAL=/dev/null",
	"HOME=/nonexistent",
	"LC_ALL=C",
	// No automatic gc: it would pack (in the background) the loose objects
	// a test or benchmark means to keep loose.
	"GIT_CONFIG_COUNT=1",
	"GIT_CONFIG_KEY_0=gc.auto",
	"GIT_CONFIG_VALUE_0=0",
}

// Available fails tb when the git binary is not installed: the tests that
// call it need real Git and must not pass without it.
func Available(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		tb.Fatal("git binary not found (install git):", err)
	}
}

// Run runs git with args in dir and returns its trimmed standard output,
// failing tb on error.
func Run(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	out, err := Output(dir, args...)
	if err != nil {
		tb.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// Output runs git with args in dir and returns its trimmed standard output.
// The error includes git's standard error.
func Output(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", &Error{Args: args, Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Error is a failed git command.
type Error struct {
	Args   []string
	Err    error
	Stderr string
}

func (e *Error) Error() string {
	return "git " + strings.Join(e.Args, " ") + ": " + e.Err.Error() + ": " + e.Stderr
}

// Unwrap returns the underlying exec error.
func (e *Error) Unwrap() error { return e.Err }

// Init creates a repository with branch main in dir (which may exist).
func Init(tb testing.TB, dir string) {
	tb.Helper()
	Run(tb, dir, "init", "-q", "-b", "main", ".")
}

// CommitAll stages every file of dir's work tree and commits it, returning
// the commit's hash.
func CommitAll(tb testing.TB, dir, message string) string {
	tb.Helper()
	sha, err := CommitDir(dir, message)
	if err != nil {
		tb.Fatal(err)
	}
	return sha
}

// CommitDir is CommitAll for code without a testing.TB: it initialises dir as
// a repository when it is not one yet, stages everything and commits.
func CommitDir(dir, message string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		if _, err := Output(dir, "init", "-q", "-b", "main", "."); err != nil {
			return "", err
		}
	}
	if _, err := Output(dir, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := Output(dir, "commit", "-q", "--allow-empty", "-m", message); err != nil {
		return "", err
	}
	return Output(dir, "rev-parse", "HEAD")
}
