package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitstore"
)

const validateHelp = `Check a flag repository: layout, JSON Schemas, references, ids, override
priorities, weights, regexes, semantic versions and more. Every problem is
reported at once, as file:line:column: JSON pointer: message.

Without --rev the files of DIR (default ".") are checked as they are on disk,
uncommitted edits included. With --rev, the committed tree of that revision
(a branch, tag, commit or HEAD~1) of the Git repository at DIR is checked.

Exit status: 0 valid, 1 invalid, 2 usage error, repository not readable, or
not a flag repository (no gitflags.json at its root).`

// manifest is the file at the root of every flag repository.
const manifest = "gitflags.json"

// notFlagRepository is the error for a directory or revision without a
// manifest: one line rather than every file of it as unexpected.
func notFlagRepository(source string) error {
	return &exitError{code: 2, err: fmt.Errorf("%s is not a flag repository: it has no %s at its root (create one with 'gitflags init DIR')", source, manifest)}
}

// validateReport is the --format json output.
type validateReport struct {
	Valid        bool               `json:"valid"`
	Source       string             `json:"source"`
	Revision     string             `json:"revision,omitempty"`
	Features     int                `json:"features"`
	Segments     int                `json:"segments"`
	Environments int                `json:"environments"`
	Problems     []flagrepo.Problem `json:"problems"`
}

func runValidate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", "validate [--rev REV] [--format text|json] [DIR]", validateHelp, stderr)
	rev := fs.String("rev", "", "validate this committed revision instead of the working directory")
	format := fs.String("format", "text", "output format: text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return usageError("--format must be text or json, not %q", *format)
	}
	if fs.NArg() > 1 {
		return usageError("validate takes at most one directory, got %d arguments", fs.NArg())
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}

	report := validateReport{Source: dir, Problems: []flagrepo.Problem{}}
	var (
		snap *flagrepo.Snapshot
		err  error
	)
	if *rev != "" {
		report.Source = fmt.Sprintf("%s@%s", dir, *rev)
		var repo *gitstore.Repo
		repo, err = gitstore.Open(dir)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		defer repo.Close()
		h, rerr := repo.Resolve(*rev)
		if rerr != nil {
			return &exitError{code: 2, err: rerr}
		}
		files, _, lerr := repo.Files(h)
		if lerr != nil {
			return &exitError{code: 2, err: lerr}
		}
		if !slices.ContainsFunc(files, func(f flagrepo.File) bool { return f.Path == manifest }) {
			return notFlagRepository(report.Source)
		}
		snap, err = repo.Snapshot(h.String(), nil)
	} else {
		if _, err := os.Stat(dir); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("open flag repository: %w", err)}
		}
		// Checked first: listing a large directory that is not a flag
		// repository (a home directory) is slow and says nothing useful.
		if _, err := os.Lstat(filepath.Join(dir, manifest)); errors.Is(err, os.ErrNotExist) {
			return notFlagRepository(dir)
		}
		var files []flagrepo.File
		files, err = flagrepo.DirFiles(dir)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		snap, err = flagrepo.Load(flagrepo.WorkingRevision(), files, nil)
	}
	var ve *flagrepo.ValidationError
	switch {
	case err == nil:
		report.Valid = true
		report.Revision = snap.Revision.SHA
		report.Features, report.Segments, report.Environments = len(snap.Features), len(snap.Segments), len(snap.Environments)
	case errors.As(err, &ve):
		report.Problems = ve.Problems
	default:
		return &exitError{code: 2, err: err}
	}

	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else if report.Valid {
		rev := ""
		if report.Revision != "" {
			rev = " at " + report.Revision[:min(12, len(report.Revision))]
		}
		fmt.Fprintf(stdout, "%s%s is valid: %d features, %d segments, %d environments\n", report.Source, rev, report.Features, report.Segments, report.Environments)
	} else {
		files := map[string]bool{}
		for _, p := range report.Problems {
			fmt.Fprintln(stdout, p.String())
			files[p.File] = true
		}
		fmt.Fprintf(stdout, "%s is invalid: %d problem(s) in %d file(s)\n", report.Source, len(report.Problems), len(files))
	}
	if !report.Valid {
		return &exitError{code: 1}
	}
	return nil
}
