package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/flagsmithdoc"
	"github.com/gitflags/gitflags/gitstore"
)

const exportHelp = `Export a flag repository (REPO, default ".") as Flagsmith environment
documents: one file per environment in DIR (--out, new or empty), named
after the environment's key (production.json), each exactly what 'gitflags
serve' answers at GET /api/v1/environment-document/ for that environment
(indented). Flagsmith's SDKs evaluate them locally, and 'gitflags import
flagsmith' reads them back.

Without --rev the files of REPO are exported as they are on disk; with
--rev, the committed tree of that revision. The repository must be valid
('gitflags validate').

Exit status: 0 exported, 1 the repository is invalid, 2 usage error or
unreadable repository.`

func runExport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", "export flagsmith --out DIR [--rev REV] [REPO]", exportHelp, stderr)
	out := fs.String("out", "", "directory to write the documents to (must not exist or be empty)")
	rev := fs.String("rev", "", "export this committed revision instead of the working directory")
	kind, rest, err := importKind(fs, args, "export")
	if err != nil {
		return err
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if kind != "flagsmith" {
		return usageError("export %q: only 'gitflags export flagsmith' exists", kind)
	}
	if *out == "" {
		return usageError("export flagsmith needs --out DIR, the directory to write the documents to")
	}
	if fs.NArg() > 1 {
		return usageError("export takes at most one repository, got %d arguments", fs.NArg())
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if err := checkNewDir(*out); err != nil {
		return &exitError{code: 2, err: err}
	}
	snap, err := loadForExport(dir, *rev)
	var ve *flagrepo.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Fprintln(stderr, p.String())
		}
		return &exitError{code: 1, err: fmt.Errorf("%s is invalid (%d problem(s) above): nothing exported", dir, len(ve.Problems))}
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	docs, err := flagsmithdoc.Export(snap)
	if err != nil {
		return err
	}
	if err := flagsmithdoc.WriteExport(*out, docs); err != nil {
		return err
	}
	var names []string
	for _, k := range snap.EnvironmentKeys() {
		names = append(names, fmt.Sprintf("%s (%s)", flagsmithdoc.ExportFileName(k), snap.Environments[k].Name))
	}
	fmt.Fprintf(stdout, "Exported %d environment document(s) to %s: %s\n", len(docs), *out, strings.Join(names, ", "))
	return nil
}

// loadForExport loads the working directory dir, or its revision rev.
func loadForExport(dir, rev string) (*flagrepo.Snapshot, error) {
	if rev == "" {
		if _, err := os.Lstat(filepath.Join(dir, manifest)); err != nil {
			return nil, notFlagRepository(dir)
		}
		files, err := flagrepo.DirFiles(dir)
		if err != nil {
			return nil, err
		}
		return flagrepo.Load(flagrepo.WorkingRevision(), files, nil)
	}
	repo, err := gitstore.Open(dir)
	if err != nil {
		return nil, err
	}
	defer repo.Close()
	h, err := repo.Resolve(rev)
	if err != nil {
		return nil, err
	}
	files, _, err := repo.Files(h)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(files, func(f flagrepo.File) bool { return f.Path == manifest }) {
		return nil, notFlagRepository(dir + "@" + rev)
	}
	return repo.Snapshot(h.String(), nil)
}
