package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gitflags/gitflags/flagdiff"
)

const diffHelp = `Say what a change to a flag repository does, per environment, in words a
reviewer reads: features turned on or off (for everyone, a segment or
identities), values, splits and how many identities move between variants,
segments whose rules changed and where they are used, removed features
still referenced, ids whose change re-buckets everyone. Risky changes are
marked: production environments (key production or prod, or
review_required), splits that move identities, id changes, removed
features or segments still referenced.

BASE and HEAD are revisions of the Git repository at --repo (a branch,
tag, commit, origin/main, HEAD~1) or directories (".", "./x", "../x", an
absolute path; a bare name that is both is refused as ambiguous). Without
HEAD, BASE is compared with the work tree of --repo. BASE...HEAD compares
HEAD with its common ancestor with BASE (what a pull request changes);
BASE..HEAD is BASE HEAD. Histories need not be related for BASE HEAD.

A side that fails validation is reported with its problems; its invalid
files are set aside (listed) and the rest is still compared.

--identities FILE evaluates the identities of FILE (one JSON object a line:
{"identifier": "alice", "traits": {"plan": "premium"}}) on both sides and
counts, per environment and feature, those whose flag changes, with
examples. --sample-store N does the same with up to N identities per
environment from the server's identity store (DATA/identities.db, opened
read-only; a running server holds it, and the command then says so).

Exit status: 0 compared, both sides valid; 1 compared (the report is
printed) but a side fails validation; 2 usage error, unknown revision, no
common ancestor for BASE...HEAD, a side that is not a flag repository or
cannot be read, a bad identities file, the identity store locked.`

func runDiff(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("diff", "diff [--repo DIR] [--format text|markdown|json] [--identities FILE | --sample-store N [--data DIR]] BASE [HEAD]", diffHelp, stderr)
	repo := fs.String("repo", ".", "the Git repository revisions are read from")
	format := fs.String("format", "text", "output format: text, markdown or json")
	idFile := fs.String("identities", "", "evaluate the identities of this file (JSON lines) on both sides")
	sample := fs.Int("sample-store", 0, "evaluate up to `N` identities per environment from the server's identity store")
	data := fs.String("data", ".gitflags-data", "the server's data `directory`, for --sample-store")
	examples := fs.Int("examples", 3, "identities shown per feature and environment whose flag changes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch *format {
	case "text", "markdown", "json":
	default:
		return usageError("--format must be text, markdown or json, not %q", *format)
	}
	if *idFile != "" && *sample > 0 {
		return usageError("--identities and --sample-store exclude each other")
	}
	if *sample < 0 || *examples < 0 {
		return usageError("--sample-store and --examples take a number of identities (0 or more)")
	}
	var baseArg, headArg string
	mergeBase := false
	switch fs.NArg() {
	case 1:
		baseArg = fs.Arg(0)
		if b, h, ok := strings.Cut(baseArg, "..."); ok {
			baseArg, headArg, mergeBase = b, h, true
		} else if b, h, ok := strings.Cut(baseArg, ".."); ok && b != "" && h != "" && !strings.HasPrefix(h, "/") {
			baseArg, headArg = b, h
		}
		if mergeBase && (baseArg == "" || headArg == "") {
			return usageError("BASE...HEAD needs both revisions")
		}
	case 2:
		baseArg, headArg = fs.Arg(0), fs.Arg(1)
	default:
		return usageError("diff takes BASE and optionally HEAD, got %d arguments", fs.NArg())
	}

	base, head, open, err := flagdiff.Sources(*repo, baseArg, headArg, mergeBase)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if open != nil {
		defer open.Close()
	}
	var opts flagdiff.Options
	opts.Examples = *examples
	switch {
	case *idFile != "":
		f, err := os.Open(*idFile)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--identities: %w", err)}
		}
		ids, err := flagdiff.ReadIdentities(f, *idFile)
		f.Close()
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--identities: %w", err)}
		}
		opts.Identities = &flagdiff.IdentitySet{Source: fmt.Sprintf("%s: %d identities", *idFile, len(ids)), All: ids}
	case *sample > 0:
		set, closeStore, err := flagdiff.SampleStore(filepath.Join(*data, "identities.db"), *sample)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--sample-store: %w", err)}
		}
		defer closeStore()
		opts.Identities = set
	}

	report, err := flagdiff.Compare(base, head, opts)
	if err != nil {
		if errors.Is(err, flagdiff.ErrNotFlagRepository) {
			err = fmt.Errorf("%w (create one with 'gitflags init DIR')", err)
		}
		return &exitError{code: 2, err: err}
	}
	switch *format {
	case "json":
		err = report.WriteJSON(stdout)
	case "markdown":
		err = report.WriteMarkdown(stdout)
	default:
		err = report.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if !report.Valid() {
		return &exitError{code: 1}
	}
	return nil
}
