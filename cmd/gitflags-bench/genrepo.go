package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/repogen"
)

// runGenRepo is the `genrepo` subcommand: a synthetic flag repository
// (package repogen), committed as a Git repository ready for
// `gitflags serve --repo DIR` and `gitflags-bench --spawn --repo DIR`.
func runGenRepo(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("genrepo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gitflags-bench genrepo [--features N] [--segments N] [--seed N] DIR")
		fs.PrintDefaults()
	}
	o := repogen.Large()
	fs.IntVar(&o.Features, "features", 1000, "number of features")
	fs.IntVar(&o.Segments, "segments", 100, "number of segments")
	fs.IntVar(&o.Environments, "environments", o.Environments, "number of environments")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed (the same options give the same repository)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("genrepo takes one directory")
	}
	dir := fs.Arg(0)
	tmp, err := os.MkdirTemp("", "gitflags-genrepo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := repogen.Write(tmp, o); err != nil {
		return err
	}
	author := gitstore.DefaultAuthor()
	hash, err := gitstore.Init(dir, os.DirFS(tmp), author)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d features, %d segments, %d environments, commit %s\n", dir, o.Features, o.Segments, o.Environments, hash)
	return nil
}
