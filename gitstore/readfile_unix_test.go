//go:build unix

package gitstore

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestReadFileShortReads reads a named pipe written in two parts, a pause
// between them: the reads are short before the end, as on the network and
// FUSE file systems that return short reads. readFile without full stops at
// the first short read; with full it reads to the end.
func TestReadFileShortReads(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	write := func() chan error {
		done := make(chan error, 1)
		go func() {
			f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				done <- err
				return
			}
			defer f.Close()
			f.Write([]byte("first part, "))
			time.Sleep(50 * time.Millisecond)
			_, err = f.Write([]byte("second part"))
			done <- err
		}()
		return done
	}
	for _, c := range []struct {
		full bool
		want string
	}{{false, "first part, "}, {true, "first part, second part"}} {
		done := write()
		var buf bytes.Buffer
		if err := readFile(fifo, &buf, c.full); err != nil {
			t.Fatal(err)
		}
		if buf.String() != c.want {
			t.Errorf("full %v: read %q, want %q", c.full, buf.String(), c.want)
		}
		if c.full {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		} else {
			<-done // the writer may fail (EPIPE) once the reader has gone
		}
	}
}
