package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gitflags/gitflags/tokens"
)

const tokenHelp = `Create a new admin API token (gfa_…). The token is printed once: give it
to its owner through your secret store. Add only the printed entry (its
SHA-256 hash) to the "tokens" array of the tokens file given to
'gitflags serve --tokens FILE'; the server re-reads the file when it changes.
The token's name and email are the author of the commits it makes; scope
read can only read, write can also change flags; --environments limits the
token to those environments.`

func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		if len(args) > 0 && isHelp(args[0]) {
			fmt.Fprintf(stderr, "Usage: gitflags token create --name NAME --email EMAIL [--scope read|write] [--environments ENV,...]\n\n%s\n", tokenHelp)
			return nil
		}
		return usageError("usage: gitflags token create --name NAME --email EMAIL [--scope read|write] [--environments ENV,...]")
	}
	fs := newFlagSet("token create", "token create --name NAME --email EMAIL [--scope read|write] [--environments ENV,...]", tokenHelp, stderr)
	name := fs.String("name", "", "the token's `name`: unique in the tokens file, the author name of its commits (1 to 100 characters)")
	email := fs.String("email", "", "the author `email` of its commits, e.g. ci@acme.example")
	scope := fs.String("scope", "read", "`scope`: read or write")
	envs := fs.String("environments", "", "comma-separated environment `keys` the token is limited to; empty: every environment")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("token create takes no arguments, only flags")
	}
	entry := tokens.Entry{Name: *name, Email: *email, Scope: *scope}
	for _, c := range []struct {
		flag string
		err  error
	}{{"name", tokens.CheckName(*name)}, {"email", tokens.CheckEmail(*email)}, {"scope", tokens.CheckScope(*scope)}} {
		if c.err != nil {
			return usageError("--%s %v", c.flag, c.err)
		}
	}
	if *envs != "" {
		for env := range strings.SplitSeq(*envs, ",") {
			env = strings.TrimSpace(env)
			if err := tokens.CheckEnvironment(env); err != nil {
				return usageError("--environments: %v", err)
			}
			if slices.Contains(entry.Environments, env) {
				return usageError("--environments: %q is listed twice", env)
			}
			entry.Environments = append(entry.Environments, env)
		}
	}
	secret, sum, err := tokens.Generate()
	if err != nil {
		return err
	}
	entry.SHA256 = sum
	var line bytes.Buffer // as written by hand: no HTML escapes
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(entry); err != nil {
		return err
	}
	// The entry printed is one the server reads.
	if _, err := tokens.Parse("entry", []byte(`{"tokens": [`+line.String()+`]}`)); err != nil {
		return fmt.Errorf("the new entry does not read back: %w", err)
	}
	fmt.Fprintf(stdout, "admin token (shown once; store it as a secret): %s\nadd to \"tokens\" in the tokens file (gitflags serve --tokens FILE):\n  %s", secret, line.String())
	return nil
}
