package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

const keygenHelp = `Create a new server-side environment key (ser.…). The key is printed once:
give it to your server-side SDKs through your secret store. Commit only the
printed server_keys entry (its SHA-256 hash) to the environment's
environment.json; the key itself never goes into the repository.`

func runKeygen(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", "keygen [--name NAME]", keygenHelp, stderr)
	name := fs.String("name", "server", "name of the key in server_keys")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("keygen takes no arguments")
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	key := "ser." + hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(key))
	fmt.Fprintf(stdout, "server key (shown once; store it as a secret): %s\nadd to server_keys in environment.json:\n  {\"name\": %q, \"sha256\": %q}\n", key, *name, hex.EncodeToString(sum[:]))
	return nil
}
