// Command gitflags is the gitflags binary: the flag server and the tools to
// create and check flag repositories.
//
// Usage:
//
//	gitflags <command> [flags] [args]
//
// Run `gitflags help` for the list of commands and `gitflags <command> --help`
// for each command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// usageError is an exit-2 error for bad command lines.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "serve flags from a flag repository (runs on an embedded default with no flags)", runServe},
		{"validate", "check a flag repository (a working directory or a committed revision)", runValidate},
		{"diff", "say what a change to a flag repository does, per environment (text, Markdown, JSON)", runDiff},
		{"init", "create a new flag repository from the template", runInit},
		{"import", "create a flag repository from Flagsmith environment documents or export files", runImport},
		{"export", "write a flag repository's environments as Flagsmith environment documents", runExport},
		{"keygen", "create a server-side environment key and print the hash to commit", runKeygen},
		{"token", "create an admin API token and print its tokens file entry", runToken},
		{"version", "print the version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if args := os.Args[1:]; len(args) > 0 && args[0] != "serve" && !strings.HasPrefix(args[0], "-") {
		oneShotGC() // not for the server, which runs gitflags without a command too
	}
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) > 0 && (args[0] == "--version" || args[0] == "-version"):
		args = append([]string{"version"}, args[1:]...)
	case len(args) == 0 || strings.HasPrefix(args[0], "-") && !isHelp(args[0]):
		args = append([]string{"serve"}, args...) // with no command, gitflags serves
	}
	name := args[0]
	if name == "help" || isHelp(name) {
		if len(args) > 1 {
			return run(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		printHelp(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(ctx, args[1:], stdout, stderr)
			if err == nil {
				return 0
			}
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			var ee *exitError
			if errors.As(err, &ee) {
				if ee.err != nil {
					fmt.Fprintf(stderr, "gitflags %s: %v\n", name, ee.err)
				}
				return ee.code
			}
			fmt.Fprintf(stderr, "gitflags %s: %v\n", name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "gitflags: unknown command %q\n\n", name)
	printHelp(stderr)
	return 2
}

// oneShotGCPercent is the garbage collector's target for the commands that
// run once and exit (validate, diff, import, export, ...): a full load of a
// large repository allocates hundreds of megabytes of short-lived garbage,
// and fewer collections make `gitflags diff` and `gitflags validate` of a
// 10,000-feature repository about a tenth faster for about a third more
// peak memory (README, "Reviewing changes").
const oneShotGCPercent = 400

// oneShotGC sets oneShotGCPercent unless GOGC says otherwise.
func oneShotGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(oneShotGCPercent)
	}
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help"
}

func printHelp(w io.Writer) {
	fmt.Fprintf(w, "gitflags: feature flags from a Git repository.\n\nUsage: gitflags <command> [flags] [args]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'gitflags <command> --help' for a command's flags. With no command, gitflags\nserves: 'gitflags --listen :9000' is 'gitflags serve --listen :9000'.\n'gitflags --version' is 'gitflags version'.\n")
}

// newFlagSet returns a FlagSet whose errors and help go to stderr, with a
// usage line and description. An empty usage is the command's name followed
// by every flag.
func newFlagSet(name, usage, description string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printUsage(stderr, fs, usage, description) }
	return fs
}

// printUsage prints the help of a command: usage line, description, flags.
func printUsage(w io.Writer, fs *flag.FlagSet, usage, description string) {
	if usage == "" {
		usage = fs.Name()
		fs.VisitAll(func(f *flag.Flag) {
			if arg, _ := flag.UnquoteUsage(f); arg != "" {
				usage += fmt.Sprintf(" [--%s %s]", f.Name, arg)
			} else {
				usage += fmt.Sprintf(" [--%s]", f.Name)
			}
		})
	}
	fmt.Fprintf(w, "Usage: gitflags %s\n\n%s\n", usage, description)
	var hasFlags bool
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.PrintDefaults()
	}
}

// parseFlags parses args, turning parse errors into usage errors (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: 2} // the flag package already printed the error and usage
	}
	return nil
}

// version, when set at build time with -ldflags "-X main.version=...", is
// the version printed; otherwise it comes from the binary's build information.
var version string

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "version", "Print the version of gitflags.", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("version takes no arguments")
	}
	v := version
	if v == "" {
		info, _ := debug.ReadBuildInfo()
		v = versionOf(info)
	}
	fmt.Fprintf(stdout, "gitflags %s\n", v)
	return nil
}

// versionOf describes the build in info: the module version (a release such
// as v0.1.0 or a pseudo-version, as go install and go build stamp it), else
// "(devel)" with the commit and whether the tree was modified.
func versionOf(info *debug.BuildInfo) string {
	if info == nil {
		return "(devel)"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return "(devel)"
	}
	v := "(devel) " + rev[:min(12, len(rev))]
	if modified == "true" {
		v += ", modified"
	}
	return v
}
