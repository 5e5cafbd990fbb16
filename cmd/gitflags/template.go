package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags"
	"github.com/gitflags/gitflags/gitstore"
)

// initFromTemplate creates a flag repository at dir from the built-in
// template (gitstore.Init), every environment with a new random client key.
// `gitflags init` and the embedded default of `gitflags serve` both start
// from it, so no two repositories share the template's keys.
func initFromTemplate(dir string) (plumbing.Hash, error) {
	tmp, err := os.MkdirTemp("", "gitflags-template-")
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("init %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.CopyFS(tmp, gitflags.Template()); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("init %s: copy the template: %w", dir, err)
	}
	envs, err := filepath.Glob(filepath.Join(tmp, "environments", "*", "environment.json"))
	if err != nil {
		return plumbing.ZeroHash, err
	}
	for _, p := range envs {
		if err := newClientKey(p); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("init %s: %w", dir, err)
		}
	}
	return gitstore.Init(dir, os.DirFS(tmp), gitstore.DefaultAuthor())
}

// newClientKey replaces the client key of the environment.json at path
// with a random one with the same prefix (the text up to the first '_', as
// in prd_), leaving the rest of the file as it is.
func newClientKey(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var env struct {
		ClientKey string `json:"client_key"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	prefix, _, found := strings.Cut(env.ClientKey, "_")
	if found {
		prefix += "_"
	} else {
		prefix = ""
	}
	field := regexp.MustCompile(`("client_key"\s*:\s*)"` + regexp.QuoteMeta(env.ClientKey) + `"`)
	if !field.Match(data) {
		return fmt.Errorf("%s: no client_key", path)
	}
	key := prefix + randomBase62(20) // letters, digits and the prefix's: nothing to escape
	return os.WriteFile(path, field.ReplaceAll(data, []byte(`${1}"`+key+`"`)), 0o644)
}

// randomBase62 returns n random letters and digits from crypto/rand.
func randomBase62(n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	out := make([]byte, 0, n)
	var buf [32]byte
	for len(out) < n {
		rand.Read(buf[:])
		for _, b := range buf {
			if b < 248 && len(out) < n { // 248 = 4*62: every letter equally likely
				out = append(out, alphabet[b%62])
			}
		}
	}
	return string(out)
}
