// Package gitflags holds what the gitflags binary embeds from the top of the
// source tree: the flag repository template that `gitflags init` and the
// server's embedded default start from.
package gitflags

import (
	"embed"
	"io/fs"
)

//go:embed all:flags-repo-template
var template embed.FS

// Template returns the flag repository template (the flags-repo-template
// directory) as a file system rooted at the repository's top.
func Template() fs.FS {
	sub, err := fs.Sub(template, "flags-repo-template")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}
