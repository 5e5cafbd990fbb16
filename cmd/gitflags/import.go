package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gitflags/gitflags/flagsmithdoc"
)

const importHelp = `Import a Flagsmith project into a new flag repository in DIR (--out, new
or empty). Each SOURCE is a Flagsmith environment document (GET
/api/v1/environment-document/ with the environment's server-side key; one per
environment of one project, merged into one repository) or a feature export
file of Flagsmith's project settings (one per environment, named after it:
production.json). "-" reads a source from standard input.

Feature, segment, variant and environment ids are kept, so every identity
keeps its segments and variants (a multivariate feature takes the id
Flagsmith hashes for its split). What the repository cannot hold as it is
(an unsupported operator or value, a split hashed with a second key, ...)
is listed by name with the reason; then nothing is written unless
--allow-partial, which writes everything else (the list says what each item
becomes). The repository is validated as 'gitflags validate' does before
it is written. Flagsmith documents carry no server keys: create them with
'gitflags keygen'.

Exit status: 0 imported, 1 something cannot be imported (nothing written
without --allow-partial), 2 usage error or unreadable input.`

func runImport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("import", "import flagsmith --out DIR [--allow-partial] SOURCE...", importHelp, stderr)
	out := fs.String("out", "", "directory of the new flag repository (must not exist or be empty)")
	partial := fs.Bool("allow-partial", false, "write the repository even when something cannot be imported as it is")
	kind, rest, err := importKind(fs, args, "import")
	if err != nil {
		return err
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if kind != "flagsmith" {
		return usageError("import %q: only 'gitflags import flagsmith' exists", kind)
	}
	if *out == "" {
		return usageError("import flagsmith needs --out DIR, the directory of the new flag repository")
	}
	if fs.NArg() == 0 {
		return usageError("import flagsmith needs at least one SOURCE: an environment document or a feature export file")
	}
	if err := checkNewDir(*out); err != nil {
		return &exitError{code: 2, err: err}
	}
	var sources []flagsmithdoc.Source
	stdinRead := false
	for _, name := range fs.Args() {
		var data []byte
		var err error
		if name == "-" {
			if stdinRead {
				return usageError("\"-\" (standard input) given twice")
			}
			stdinRead = true
			data, err = io.ReadAll(os.Stdin)
			name = "stdin"
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("read %s: %w", name, err)}
		}
		sources = append(sources, flagsmithdoc.Source{Name: name, Data: data})
	}

	res, err := flagsmithdoc.Import(sources)
	var ie *flagsmithdoc.InputError
	if errors.As(err, &ie) {
		return &exitError{code: 2, err: fmt.Errorf("nothing imported: %w", err)}
	}
	if err != nil {
		return err
	}
	if err := res.WriteReport(stdout); err != nil {
		return err
	}
	if len(res.Issues) > 0 && !*partial {
		return &exitError{code: 1, err: fmt.Errorf("%d item(s) cannot be imported as they are (listed above); nothing written. Pass --allow-partial to write the repository with what each becomes", len(res.Issues))}
	}
	if err := res.WriteDir(*out); err != nil {
		return err
	}
	snap := res.Snapshot
	partialNote := ""
	if len(res.Issues) > 0 {
		partialNote = fmt.Sprintf(", without the %d item(s) listed above", len(res.Issues))
	}
	fmt.Fprintf(stdout, "Imported %d features, %d segments and %d environments (%s) into %s%s; it is valid.\n",
		len(snap.Features), len(snap.Segments), len(snap.Environments), strings.Join(snap.EnvironmentKeys(), ", "), *out, partialNote)
	fmt.Fprintf(stdout, "Flagsmith documents carry no server keys: add one per environment with 'gitflags keygen'.\n")
	fmt.Fprintf(stdout, "Next: git -C %[1]s init -b main && git -C %[1]s add -A && git -C %[1]s commit -m 'Import from Flagsmith'\n      gitflags serve --repo %[1]s\n", *out)
	return nil
}

// importKind takes the kind of import or export ("flagsmith"), which comes
// before the flags, off args. A help flag instead prints the help.
func importKind(fs *flag.FlagSet, args []string, cmd string) (kind string, rest []string, err error) {
	if len(args) > 0 && isHelp(args[0]) {
		return "", nil, parseFlags(fs, args[:1])
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", nil, usageError("%s what? Usage: gitflags %s flagsmith ... (see 'gitflags %s --help')", cmd, cmd, cmd)
	}
	return args[0], args[1:], nil
}

// checkNewDir reports whether dir can receive new files: it must not exist
// or be an empty directory.
func checkNewDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
			return fmt.Errorf("--out %s is a file; give a new or empty directory", dir)
		}
		return err
	case len(entries) > 0:
		return fmt.Errorf("--out %s is not empty (it holds %s); give a new or empty directory", dir, entries[0].Name())
	}
	return nil
}
