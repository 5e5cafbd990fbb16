//go:build !unix

package gitstore

import (
	"bytes"
	"os"
)

// readFile appends the content of the file at path to buf (all of it:
// full is for the unix version).
func readFile(path string, buf *bytes.Buffer, full bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = buf.ReadFrom(f)
	return err
}
