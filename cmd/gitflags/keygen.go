package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"
)

const keygenHelp = `Create a new server-side environment key (ser.…). The key is printed once:
give it to your server-side SDKs through your secret store. Commit only the
printed server_keys entry (its SHA-256 hash) to the environment's
environment.json; the key itself never goes into the repository.`

// maxKeyName is the longest server key name the environment schema allows,
// in characters.
const maxKeyName = 200

func runKeygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", "keygen [--name NAME] [--previews]", keygenHelp, stderr)
	name := fs.String("name", "server", "name of the key in server_keys: 1 to 200 characters")
	previews := fs.Bool("previews", false, "let the key ask for the flags of a preview branch (X-Gitflags-Ref; see serve --preview-branches)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("keygen takes no arguments")
	}
	switch n := utf8.RuneCountInString(*name); {
	case !utf8.ValidString(*name):
		return usageError("--name %q is not valid UTF-8", *name)
	case n == 0:
		return usageError("--name is empty; give the key a name of 1 to %d characters", maxKeyName)
	case n > maxKeyName:
		return usageError("--name has %d characters; a server key's name has at most %d", n, maxKeyName)
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	key := "ser." + hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(key))
	var quoted bytes.Buffer // the name as a JSON string, as written by hand: no HTML escapes
	enc := json.NewEncoder(&quoted)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(*name); err != nil {
		return err
	}
	extra := ""
	if *previews {
		extra = `, "previews": true`
	}
	fmt.Fprintf(stdout, "server key (shown once; store it as a secret): %s\nadd to server_keys in environment.json:\n  {\"name\": %s, \"sha256\": %q%s}\n",
		key, bytes.TrimSpace(quoted.Bytes()), hex.EncodeToString(sum[:]), extra)
	return nil
}
