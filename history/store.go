package history

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/gitstore"
)

// The file of a saved index is an append-only log: a header, then one record
// per commit of the first-parent chain, oldest first. The header is
//
//	magic (8 bytes) | SHA-256 of the key (32) | CRC-32C of the 40 bytes before (4)
//
// and a record is
//
//	payload length (uint32 LE) | CRC-32C of the payload (uint32 LE) | payload
//
// where the payload is the commit, its first parent (zero for the root) and
// its tree (a hash each), the number of changes (uvarint) and for each its
// path (uvarint length, bytes), before and after (a hash each) and segments
// (uvarint count; uvarint length and bytes each). Feature and environment
// are derived from the path again when the file is read.
//
// Indexing a commit appends its record; a rewritten branch truncates the file
// to the last shared commit. Reading stops at the first record that is cut
// short, fails its checksum, does not decode or does not continue the chain
// (its parent is not the commit before it): the file is truncated there and
// the commits after it are indexed again. A header that does not match
// (another format, another key, not such a file) starts the file over. The
// file is not synced: it is a cache, and whatever a crash leaves is caught by
// the checks.
//
// Bump the version in fileMagic whenever what an index records for a commit
// changes (classify, overridesChanged, the record layout).
var fileMagic = [8]byte{'G', 'F', 'H', 'I', 'S', 'T', 0, 1}

const (
	headerSize = 8 + sha256.Size + 4
	hashSize   = len(plumbing.ZeroHash)
	// maxRecord bounds a record's length as read, against a damaged length
	// field: 64 MiB is far above what a commit of flag files needs.
	maxRecord = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// store is the file an Index is saved to. Its fields are used with the
// index's update mutex held.
type store struct {
	f      *os.File
	path   string
	digest [sha256.Size]byte
	log    *slog.Logger
	loaded bool
	ends   []int64 // ends[i] is the offset right after the record of chain[i]
}

// FileName is the name of the file Open keeps the index of key in, in its
// directory.
func FileName(key string) string {
	d := sha256.Sum256([]byte(key))
	return "history-" + hex.EncodeToString(d[:8]) + ".idx"
}

// Open returns an index of a branch of repo that is saved to a file in dir
// (FileName(key)), key naming the repository and branch (for instance the
// repository's path or URL and the branch name): indexes of different keys
// keep different files in one directory. The first Update loads what the
// file holds and indexes only the commits since (or, when the branch was
// rewritten, since the last commit the saved and the new history share);
// every Update appends what it indexes. A file that is damaged or cannot be
// read is rebuilt (from its last good record) and the problem logged as a
// warning to log (nil: not logged). Open fails only when the file cannot be
// opened or created; the caller can then fall back to New.
//
// Close the index to close its file. Only one Index, in one process, may use
// a file at a time.
func Open(repo *gitstore.Repo, dir, key string, log *slog.Logger) (*Index, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := filepath.Join(dir, FileName(key))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		// A file that cannot be opened (its permissions, say) is replaced.
		log.Warn("the saved history index cannot be opened; building it again", "file", path, "error", err)
		if os.Remove(path) == nil {
			f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	ix := New(repo)
	ix.store = &store{f: f, path: path, digest: sha256.Sum256([]byte(key)), log: log}
	return ix, nil
}

// Close closes the file of an index made with Open; the index goes on in
// memory only. It does nothing for an index made with New.
func (ix *Index) Close() error {
	ix.update.Lock()
	defer ix.update.Unlock()
	s := ix.store
	if s == nil {
		return nil
	}
	ix.store = nil
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// load publishes the commits saved in the file, once, and leaves the file
// ready for appending. It is called with update held.
func (ix *Index) load() {
	s := ix.store
	if s == nil || s.loaded {
		return
	}
	s.loaded = true
	data, err := io.ReadAll(io.NewSectionReader(s.f, 0, 1<<62))
	if err != nil {
		s.log.Warn("the saved history index cannot be read; building it again", "file", s.path, "error", err)
		data = nil
	}
	if len(data) < headerSize || !bytes.Equal(data[:headerSize], s.header()) {
		if len(data) > 0 && err == nil {
			s.log.Warn("the saved history index is not one of this version, repository and branch; building it again", "file", s.path)
		}
		s.reset(ix, 0, nil)
		return
	}
	var commits []indexed
	off, prev := int64(headerSize), plumbing.ZeroHash
	var bad error
	for off < int64(len(data)) {
		c, parent, n, err := decodeRecord(data[off:])
		if err == nil && parent != prev {
			err = errors.New("the record does not continue the chain")
		}
		if err != nil {
			bad = err
			break
		}
		commits = append(commits, c)
		off += int64(n)
		s.ends = append(s.ends, off)
		prev = c.commit
	}
	if bad != nil {
		s.log.Warn("the saved history index is damaged; indexing again from the last good commit", "file", s.path,
			"commits_kept", len(commits), "error", bad)
		s.reset(ix, off, s.ends)
	}
	ix.publish(commits)
}

// header returns the file's header.
func (s *store) header() []byte {
	h := make([]byte, 0, headerSize)
	h = append(h, fileMagic[:]...)
	h = append(h, s.digest[:]...)
	return binary.LittleEndian.AppendUint32(h, crc32.Checksum(h, crcTable))
}

// reset truncates the file to size, the end of the records of ends, writing
// the header when size is 0.
func (s *store) reset(ix *Index, size int64, ends []int64) {
	s.ends = ends
	err := s.f.Truncate(size)
	if err == nil && size == 0 {
		_, err = s.f.WriteAt(s.header(), 0)
	}
	if err != nil {
		ix.storeFailed(err)
	}
}

// storeFailed stops saving the index: the file is left as it is (the next
// start repairs it) and the index goes on in memory.
func (ix *Index) storeFailed(err error) {
	s := ix.store
	s.log.Warn("the history index cannot be saved; it is kept in memory only until the server restarts", "file", s.path, "error", err)
	s.f.Close()
	ix.store = nil
}

// saveTruncate drops the saved commits from position n on.
func (ix *Index) saveTruncate(n int) {
	s := ix.store
	if s == nil || n >= len(s.ends) {
		return
	}
	size := int64(headerSize)
	if n > 0 {
		size = s.ends[n-1]
	}
	s.reset(ix, size, s.ends[:n])
}

// save appends commits, the next of the chain, to the file.
func (ix *Index) save(commits []indexed) {
	s := ix.store
	if s == nil || len(commits) == 0 {
		return
	}
	end := int64(headerSize)
	if len(s.ends) > 0 {
		end = s.ends[len(s.ends)-1]
	}
	var buf []byte
	ends := s.ends
	for _, c := range commits {
		buf = appendRecord(buf, c)
		ends = append(ends, end+int64(len(buf)))
	}
	if _, err := s.f.WriteAt(buf, end); err != nil {
		ix.storeFailed(err)
		return
	}
	s.ends = ends
}

// appendRecord appends the record of c to b.
func appendRecord(b []byte, c indexed) []byte {
	start := len(b)
	b = append(b, make([]byte, 8)...)
	b = append(b, c.commit[:]...)
	b = append(b, c.parent[:]...)
	b = append(b, c.tree[:]...)
	b = binary.AppendUvarint(b, uint64(len(c.changes)))
	for _, ch := range c.changes {
		b = appendString(b, ch.path)
		b = append(b, ch.before[:]...)
		b = append(b, ch.after[:]...)
		b = binary.AppendUvarint(b, uint64(len(ch.segments)))
		for _, s := range ch.segments {
			b = appendString(b, s)
		}
	}
	payload := b[start+8:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, crcTable))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errShort = errors.New("the record is cut short")

// decodeRecord reads the record at the start of b, returning its commit, the
// commit's first parent and the record's length.
func decodeRecord(b []byte) (c indexed, parent plumbing.Hash, n int, err error) {
	if len(b) < 8 {
		return c, parent, 0, errShort
	}
	size := binary.LittleEndian.Uint32(b)
	if size > maxRecord || uint64(size) > uint64(len(b)-8) {
		return c, parent, 0, errShort
	}
	payload := b[8 : 8+size]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return c, parent, 0, errors.New("the record fails its checksum")
	}
	d := decoder{b: payload}
	c.commit, parent, c.tree = d.hash(), d.hash(), d.hash()
	nc := d.count()
	for i := uint64(0); i < nc && d.err == nil; i++ {
		p := d.string()
		before, after := d.hash(), d.hash()
		var segments []string
		for j, ns := uint64(0), d.count(); j < ns && d.err == nil; j++ {
			segments = append(segments, d.string())
		}
		ch := classify(p)
		if ch == nil {
			d.fail()
			break
		}
		ch.before, ch.after, ch.segments = before, after, segments
		c.changes = append(c.changes, ch)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil || c.commit.IsZero() {
		return indexed{}, parent, 0, errors.New("the record does not decode")
	}
	return c, parent, 8 + int(size), nil
}

// decoder reads a payload; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err = errShort }

func (d *decoder) hash() (h plumbing.Hash) {
	if d.err != nil || len(d.b) < hashSize {
		d.fail()
		return h
	}
	copy(h[:], d.b)
	d.b = d.b[hashSize:]
	return h
}

// count reads a uvarint that counts items of at least one byte each.
func (d *decoder) count() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > uint64(len(d.b)-n) {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
