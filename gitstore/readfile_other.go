//go:build !unix

package gitstore

import (
	"bytes"
	"os"
)

// readFile appends the content of the file at path to buf.
func readFile(path string, buf *bytes.Buffer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = buf.ReadFrom(f)
	return err
}
