//go:build unix

package gitstore

import (
	"bytes"
	"io/fs"
	"syscall"
)

// readFile appends the content of the regular file at path to buf, with
// plain system calls: os.Open registers every file with the runtime's poller and
// sets a finalizer, which for tens of thousands of small files costs more
// than the read. Unless full, a short read is taken for the end of the file
// (see below).
func readFile(path string, buf *bytes.Buffer, full bool) error {
	var fd int
	for {
		var err error
		fd, err = syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == nil {
			break
		}
		if err != syscall.EINTR {
			return &fs.PathError{Op: "open", Path: path, Err: err}
		}
	}
	defer syscall.Close(fd)
	for {
		buf.Grow(4096)
		b := buf.AvailableBuffer()
		b = b[:cap(b)]
		n, err := syscall.Read(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "read", Path: path, Err: err}
		}
		buf.Write(b[:n])
		// On local file systems a read of a regular file returns less
		// than asked only at its end, so the usual last read (of 0
		// bytes) is skipped. Were a read short elsewhere (some network
		// and FUSE file systems), the object would be truncated: its
		// decompression fails (zlib's checksum, the header's size), and
		// the caller reads the file again with full.
		if n == 0 || !full && n < len(b) {
			return nil
		}
	}
}
