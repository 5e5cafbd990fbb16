package main

import (
	"context"
	"fmt"
	"io"
)

const initHelp = `Create a new flag repository in DIR from the built-in template: three
environments (development, staging, production), example features and
segments, JSON Schemas for editors, a CODEOWNERS example, and CI for GitHub
Actions and GitLab that runs 'gitflags validate' and posts 'gitflags diff' on
pull and merge requests. Every environment gets a new random client
key. DIR must not exist or be empty. The files are committed as the first
commit on branch main.`

func runInit(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("init", "init DIR", initHelp, stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("init takes exactly one directory")
	}
	dir := fs.Arg(0)
	sha, err := initFromTemplate(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created flag repository %s (commit %s).\nNext: gitflags validate %s\n", dir, sha.String()[:12], dir)
	return nil
}
