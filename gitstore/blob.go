package gitstore

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/gitflags/gitflags/flagrepo"
)

// errClosed is returned by reads from a closed Repo.
var errClosed = errors.New("repository is closed")

// largeObject is the size above which go-git leaves a blob on disk instead of
// reading it into memory. Flag documents are at most flagrepo.MaxFileSize.
const largeObject = flagrepo.MaxFileSize

// TooLargeError is returned by a File's Read when the blob is larger than
// flagrepo.MaxFileSize; it is never read into memory.
type TooLargeError struct {
	Path string // path of the file in the tree
	Size int64  // size of the blob in bytes
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("file is %d bytes; at most %d are allowed", e.Size, flagrepo.MaxFileSize)
}

// blobReader returns a File.Read function for the blob h at path p.
func (r *Repo) blobReader(h plumbing.Hash, p string) func() ([]byte, error) {
	return func() ([]byte, error) {
		data, err := r.readBlob(h)
		if err != nil {
			var tl *TooLargeError
			if errors.As(err, &tl) {
				tl.Path = p
				return nil, tl
			}
			return nil, fmt.Errorf("read %s (blob %s): %w", p, h, err)
		}
		return data, nil
	}
}

// acquire takes a blob reader from the pool, creating one while the pool has
// fewer than maxRead. Each reader is an independent go-git object storage
// (its own pack indexes and open packfiles), because one storage must not be
// used by several goroutines at once; the object cache is shared.
func (r *Repo) acquire() (*filesystem.Storage, error) {
	if r.closed.Load() {
		return nil, errClosed
	}
	select {
	case s := <-r.readers:
		return s, nil
	default:
	}
	if r.created.Add(1) <= int32(r.maxRead) {
		return filesystem.NewStorageWithOptions(r.dotgit, r.cache, filesystem.Options{
			KeepDescriptors:      true, // keep packfiles open between reads; Close releases them
			LargeObjectThreshold: largeObject,
		}), nil
	}
	r.created.Add(-1)
	return <-r.readers, nil
}

// release returns a reader to the pool.
func (r *Repo) release(s *filesystem.Storage) {
	if r.closed.Load() {
		_ = s.Close()
		return
	}
	r.readers <- s
}

// readBlob reads a blob's content.
func (r *Repo) readBlob(h plumbing.Hash) ([]byte, error) {
	r.blobReads.Add(1)
	if r.objects != "" {
		// Packs first (pack.go): most objects of a cloned or collected
		// repository are packed, and a lookup in the indexes costs no
		// system call.
		if data, ok, err := r.packs.readBlob(h, false); ok || err != nil {
			return data, err
		}
		data, ok, err := r.readLoose(h)
		if ok || err != nil {
			return data, err
		}
		// Or in a pack written since the packs were listed (git fetch, gc).
		if data, ok, err := r.packs.readBlob(h, true); ok || err != nil {
			return data, err
		}
	}
	s, err := r.acquire()
	if err != nil {
		return nil, err
	}
	defer r.release(s)
	obj, err := s.EncodedObject(plumbing.BlobObject, h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		// A pack written by another process since the indexes were loaded.
		s.Reindex()
		obj, err = s.EncodedObject(plumbing.BlobObject, h)
	}
	if err != nil {
		return nil, err
	}
	size := obj.Size()
	if size > flagrepo.MaxFileSize {
		return nil, &TooLargeError{Size: size}
	}
	rd, err := obj.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	data := make([]byte, size)
	if _, err := io.ReadFull(rd, data); err != nil {
		return nil, err
	}
	return data, nil
}

// compressedPool holds buffers for the compressed bytes of loose objects.
var compressedPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// inflaters holds zlib readers for loose objects, reset for each object: a
// new reader allocates its decompressor's tables (tens of kilobytes).
var inflaters sync.Pool

// readLoose reads a loose blob directly from the objects directory. It
// reports ok=false when the object is not loose (it is then in a packfile).
//
// go-git's storage opens every loose object through a billy file system that
// resolves each path component to guard against symbolic links leaving the
// repository; for tens of thousands of small blobs those extra system calls
// cost more than the decompression (about 40% of a large snapshot's time was
// spent there). The objects directory is the repository's own, so the guard
// buys nothing here. The file is read with plain system calls (readFile),
// and decompressed with a pooled zlib reader.
func (r *Repo) readLoose(h plumbing.Hash) (data []byte, ok bool, err error) {
	return r.readLooseObject(h, "blob", flagrepo.MaxFileSize)
}

// readLooseTree reads a loose tree object, as readLoose does blobs. ok is
// false when the tree is not loose or is larger than maxBaseSize (left to
// go-git).
func (r *Repo) readLooseTree(h plumbing.Hash) (data []byte, ok bool, err error) {
	data, ok, err = r.readLooseObject(h, "tree", maxBaseSize)
	if isTooLarge(err) {
		return nil, false, nil
	}
	return data, ok, err
}

// readLooseObject reads loose object h of type typ, of at most limit bytes
// (else a *TooLargeError).
func (r *Repo) readLooseObject(h plumbing.Hash, typ string, limit int64) (data []byte, ok bool, err error) {
	hex := h.String()
	path := filepath.Join(r.objects, hex[:2], hex[2:])
	buf := compressedPool.Get().(*bytes.Buffer)
	defer compressedPool.Put(buf)
	buf.Reset()
	if err := readFile(path, buf, false); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, err
	}
	data, err = inflateLoose(buf.Bytes(), typ, limit)
	if err != nil && !isTooLarge(err) {
		// readFile took a short read for the end of the file, as it is
		// on local file systems; some network and FUSE file systems
		// return short reads before it. Read the file to its end, then.
		buf.Reset()
		if rerr := readFile(path, buf, true); rerr == nil {
			data, err = inflateLoose(buf.Bytes(), typ, limit)
		}
	}
	if err != nil {
		if isTooLarge(err) {
			return nil, true, err
		}
		return nil, true, fmt.Errorf("loose object: %w", err)
	}
	return data, true, nil
}

// inflateLoose decompresses a loose object of type typ ("blob", "tree"):
// zlib data holding "<typ> <size>\x00" and the content. Content larger than
// limit is a *TooLargeError, found from the header.
func inflateLoose(compressed []byte, typ string, limit int64) ([]byte, error) {
	src := bytes.NewReader(compressed)
	var zr io.ReadCloser
	if v := inflaters.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(src, nil); err != nil {
			return nil, err
		}
	} else {
		var err error
		if zr, err = zlib.NewReader(src); err != nil {
			return nil, err
		}
	}
	defer inflaters.Put(zr)
	// The header is at most "commit " plus 20 digits and the NUL. A read
	// may end early (at a flush point of the stream): read until the NUL.
	var head [32]byte
	n, nul := 0, -1
	for nul < 0 && n < len(head) {
		m, err := zr.Read(head[n:])
		nul = bytes.IndexByte(head[n:n+m], 0)
		if nul >= 0 {
			nul += n
		}
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if nul < 0 {
		return nil, errors.New("malformed object header")
	}
	got, sizeText, found := strings.Cut(string(head[:nul]), " ")
	if !found {
		return nil, errors.New("malformed object header")
	}
	if got != typ {
		return nil, fmt.Errorf("object is a %s, not a %s", got, typ)
	}
	// Decimal digits, no sign, no leading zero: as git writes it.
	size, err := strconv.ParseInt(sizeText, 10, 64)
	if err != nil || size < 0 || sizeText[0] < '0' || sizeText[0] > '9' || len(sizeText) > 1 && sizeText[0] == '0' {
		return nil, fmt.Errorf("malformed object size %q", sizeText)
	}
	if size > limit {
		return nil, &TooLargeError{Size: size}
	}
	data := make([]byte, size)
	have := copy(data, head[nul+1:n])
	if have < int(size) {
		if _, err := io.ReadFull(zr, data[have:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("content: %w", err)
		}
	}
	// Nothing may follow the content, and reading to the end checks the
	// zlib checksum.
	if n-nul-1 > int(size) {
		return nil, fmt.Errorf("object is longer than its header's %d bytes", size)
	}
	var extra [1]byte
	for {
		m, err := zr.Read(extra[:])
		if m != 0 {
			return nil, fmt.Errorf("object is longer than its header's %d bytes", size)
		}
		if err == io.EOF {
			if src.Len() > 0 {
				return nil, errors.New("data after the end of the object's zlib stream")
			}
			return data, nil
		}
		if err != nil {
			return nil, fmt.Errorf("content: %w", err)
		}
	}
}
