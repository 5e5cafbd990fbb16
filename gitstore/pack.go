package gitstore

// A read-only reader of Git packfiles, for blobs and trees.
//
// go-git decodes a packed object through several layers (a scanner, an
// object cache, a new zlib decompressor and buffers for every object of a
// delta chain); reading the tens of thousands of small blobs of a large flag
// repository from one packfile cost almost twice as much as reading them
// loose. packSet looks objects up in the packs' indexes (version 2), reads
// the packs in windows kept in memory, inflates with pooled decompressors
// and keeps a cache of delta bases shared by concurrent readers, without a
// lock common to all reads. Whatever it does not handle (a version 1 index,
// an object that is neither a blob nor a tree, a tree or delta base over
// maxBaseSize, a delta base that is neither packed nor a loose blob) is left
// to go-git; corrupt data is an error.

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/flagrepo"
)

const (
	hashLen        = 20               // bytes of a SHA-1 object name
	packHeaderLen  = 12               // "PACK", version, object count
	idxHeaderLen   = 8 + 256*4        // magic, version, fanout table
	maxBaseSize    = 16 << 20         // larger delta bases are left to go-git
	maxDeltaDepth  = 10000            // longer chains are corrupt (git's limit is 4095)
	baseCacheBytes = 32 << 20         // the bound of a Repo's delta base cache
	windowShift    = 16               // packs are read in windows of 64 KiB
	windowSize     = 1 << windowShift //
	windowBytes    = 32 << 20         // the bound of a Repo's windows in memory
	idxMagic       = "\xfftOc"        // the signature of index files of version 2 and later
	deltaHeaderMax = 2 * 10           // two varints of at most 10 bytes
	scratchPoolMax = 1 << 20          // larger delta buffers are not pooled
)

// Object types in a pack entry's header.
const (
	objCommit   = 1
	objTree     = 2
	objBlob     = 3
	objTag      = 4
	objOFSDelta = 6
	objREFDelta = 7
)

// errNotPacked means the object is in none of the packs.
var errNotPacked = errors.New("object is not packed")

// errUnhandled means the object is packed but is left to go-git: it is not
// a blob, or a delta whose base the pack reader does not read.
var errUnhandled = errors.New("packed object left to go-git")

// packError is an error reading a packfile: corrupt data, or a failed read.
type packError struct {
	pack string // path of the .pack file
	off  int64  // offset of the object; -1 for the pack as a whole
	err  error
}

func (e *packError) Error() string {
	if e.off < 0 {
		return fmt.Sprintf("packfile %s: %v", filepath.Base(e.pack), e.err)
	}
	return fmt.Sprintf("packfile %s: object at offset %d: %v", filepath.Base(e.pack), e.off, e.err)
}

func (e *packError) Unwrap() error { return e.err }

// packFile is an open pack and its index.
//
// The pack is read in windows, aligned blocks of windowSize bytes read with
// ReadAt when first needed and kept (up to windowBytes for all the packs of
// a Repo): a positioned read for every object cost more than inflating it.
type packFile struct {
	id     uint32 // unique in its packSet, for the base cache's keys
	path   string // of the .pack file
	fanout [256]uint32
	names  []byte // the index's sorted object names, hashLen bytes each
	off32  []byte // 4 bytes an object: its offset, or an index into off64
	off64  []byte // 8 bytes an entry
	f      *os.File
	end    int64 // where the objects end: the offset of the pack's trailer
	// windows are the windows read, by number (offset >> windowShift).
	windows []atomic.Pointer[[]byte]
	wins    *windowSet
	// err is why the pack cannot be read although its index can (the pack
	// does not match its index): reading any of its objects fails with it.
	err error
}

// openPack opens the pack whose index is base+".idx". It returns nil when
// the pack cannot be used: its index cannot be read or is of a version this
// reader does not know, or a file is gone (a pack being removed). A pack that
// does not match its index is returned with err set.
func openPack(base string, id uint32, wins *windowSet) *packFile {
	idx, err := os.ReadFile(base + ".idx")
	if err != nil {
		return nil
	}
	p := &packFile{id: id, path: base + ".pack", wins: wins}
	if !p.parseIndex(idx) {
		return nil
	}
	f, err := os.Open(p.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		p.err = &packError{pack: p.path, off: -1, err: err}
		return p
	}
	if err := p.checkPack(f, idx[len(idx)-2*hashLen:len(idx)-hashLen]); err != nil {
		f.Close()
		p.err = &packError{pack: p.path, off: -1, err: err}
		return p
	}
	p.f = f
	p.windows = make([]atomic.Pointer[[]byte], (p.end+windowSize-1)>>windowShift)
	return p
}

// parseIndex reads an index of version 2, reporting whether it is one.
func (p *packFile) parseIndex(idx []byte) bool {
	if len(idx) < idxHeaderLen+2*hashLen || string(idx[:4]) != idxMagic || binary.BigEndian.Uint32(idx[4:]) != 2 {
		return false
	}
	prev := uint32(0)
	for i := range p.fanout {
		v := binary.BigEndian.Uint32(idx[8+4*i:])
		if v < prev {
			return false
		}
		p.fanout[i], prev = v, v
	}
	n := int64(prev)
	fixed := int64(idxHeaderLen) + n*(hashLen+4+4) + 2*hashLen
	rest := int64(len(idx)) - fixed
	if rest < 0 || rest%8 != 0 || rest/8 > n {
		return false
	}
	pos := int64(idxHeaderLen)
	p.names = idx[pos : pos+n*hashLen]
	pos += n*hashLen + n*4 // the CRCs are not used
	p.off32 = idx[pos : pos+n*4]
	pos += n * 4
	p.off64 = idx[pos : pos+rest]
	return true
}

// checkPack checks the pack's header and that its trailer is the checksum
// its index names.
func (p *packFile) checkPack(f *os.File, sum []byte) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size < packHeaderLen+hashLen {
		return fmt.Errorf("truncated: %d bytes", size)
	}
	var head [packHeaderLen]byte
	if _, err := f.ReadAt(head[:], 0); err != nil {
		return err
	}
	if string(head[:4]) != "PACK" {
		return errors.New("not a packfile (no PACK signature)")
	}
	if v := binary.BigEndian.Uint32(head[4:]); v != 2 && v != 3 {
		return fmt.Errorf("unsupported pack version %d", v)
	}
	if n := binary.BigEndian.Uint32(head[8:]); n != p.fanout[255] {
		return fmt.Errorf("holds %d objects, its index %d", n, p.fanout[255])
	}
	var trailer [hashLen]byte
	if _, err := f.ReadAt(trailer[:], size-hashLen); err != nil {
		return err
	}
	if !bytes.Equal(trailer[:], sum) {
		return errors.New("does not match its index (truncated or corrupt)")
	}
	p.end = size - hashLen
	return nil
}

// find returns the offset of object h in the pack, or -1 when the pack does
// not hold it.
//
// Object names are uniformly distributed: the search starts where h would
// be if they were evenly spaced, and gallops from there, touching a few
// neighbouring cache lines where a bisection of the whole range touches one
// per step.
func (p *packFile) find(h *plumbing.Hash) (int64, error) {
	lo, hi := uint32(0), p.fanout[h[0]]
	if h[0] > 0 {
		lo = p.fanout[h[0]-1]
	}
	if lo >= hi {
		return -1, nil
	}
	cmp := func(i uint32) int {
		return bytes.Compare(p.names[int(i)*hashLen:int(i+1)*hashLen], h[:])
	}
	guess, _ := bits.Mul64(binary.BigEndian.Uint64(h[1:9]), uint64(hi-lo))
	i := lo + uint32(guess)
	switch c := cmp(i); {
	case c == 0:
		return p.offset(int(i))
	case c < 0:
		lo = i + 1
		for step := uint32(2); hi-lo > step; step *= 2 {
			j := lo + step
			if c := cmp(j); c >= 0 {
				hi = j + 1
				break
			}
			lo = j + 1
		}
	default:
		hi = i
		for step := uint32(2); hi-lo > step; step *= 2 {
			j := hi - step - 1
			if c := cmp(j); c <= 0 {
				lo = j
				break
			}
			hi = j
		}
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		switch c := cmp(mid); {
		case c == 0:
			return p.offset(int(mid))
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return -1, nil
}

// offset returns the offset of the i-th object of the index.
func (p *packFile) offset(i int) (int64, error) {
	o := binary.BigEndian.Uint32(p.off32[4*i:])
	if o&(1<<31) == 0 {
		return int64(o), nil
	}
	j := int(o &^ (1 << 31))
	if j >= len(p.off64)/8 {
		return 0, &packError{pack: p.path, off: -1, err: fmt.Errorf("corrupt index: large offset %d of %d", j, len(p.off64)/8)}
	}
	v := binary.BigEndian.Uint64(p.off64[8*j:])
	if v > 1<<62 {
		return 0, &packError{pack: p.path, off: -1, err: fmt.Errorf("corrupt index: offset %d", v)}
	}
	return int64(v), nil
}

func (p *packFile) errorf(off int64, format string, args ...any) error {
	return &packError{pack: p.path, off: off, err: fmt.Errorf("corrupt: "+format, args...)}
}

// packSet reads blobs from the packs of an objects directory. It is safe for
// concurrent use.
type packSet struct {
	dir   string                                    // the objects/pack directory
	loose func(plumbing.Hash) ([]byte, bool, error) // reads a loose blob (a REF_DELTA's base); may be nil
	packs atomic.Pointer[[]*packFile]               // the packs of the last scan; nil before the first
	cache *baseCache
	wins  windowSet
	// closed is set by close: reads then fail with errClosed.
	closed atomic.Bool

	// scanned is the modification time (Unix ns) of the directory when
	// it was last scanned: a miss rescans only when it changed.
	scanned atomic.Int64
	scans   atomic.Int64 // scans made, for tests

	mu     sync.Mutex // serialises scans and close
	nextID uint32     // the id of the next pack opened; guarded by mu
	// retired are the packs the last scan found removed. They are closed by
	// the next scan, not at once: a read may still be using one.
	retired []*packFile
}

func newPackSet(objects string, loose func(plumbing.Hash) ([]byte, bool, error)) *packSet {
	return &packSet{
		dir:   filepath.Join(objects, "pack"),
		loose: loose,
		cache: newBaseCache(baseCacheBytes),
		wins:  windowSet{max: windowBytes},
	}
}

// list returns the packs, scanning the directory the first time.
func (s *packSet) list() []*packFile {
	if l := s.packs.Load(); l != nil {
		return *l
	}
	return s.rescan()
}

// rescanIfChanged rescans the pack directory when it changed since the
// last scan (a pack was added or removed: git writes a pack under a
// temporary name and renames it), so that objects that are in no pack (an
// alternate's, or a bad name) do not cost a scan each.
func (s *packSet) rescanIfChanged() []*packFile {
	if l := s.packs.Load(); l != nil {
		if fi, err := os.Stat(s.dir); err == nil && fi.ModTime().UnixNano() == s.scanned.Load() {
			return *l
		}
	}
	return s.rescan()
}

// rescan lists the pack directory again: packs that appeared are opened,
// packs found corrupt are opened again, packs that are gone are retired
// (closed by the next scan). It returns the new list.
func (s *packSet) rescan() []*packFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil
	}
	var old []*packFile
	if l := s.packs.Load(); l != nil {
		old = *l
	}
	s.scans.Add(1)
	// The time is taken before the listing: a change during it makes the
	// next miss scan again.
	if fi, err := os.Stat(s.dir); err == nil {
		s.scanned.Store(fi.ModTime().UnixNano())
	} else {
		s.scanned.Store(0)
	}
	entries, _ := os.ReadDir(s.dir) // a missing or unreadable directory has no packs
	list := make([]*packFile, 0, len(entries)/2)
	kept := make(map[*packFile]bool, len(old))
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "pack-") || !strings.HasSuffix(name, ".idx") {
			continue
		}
		path := filepath.Join(s.dir, strings.TrimSuffix(name, ".idx")) + ".pack"
		var p *packFile
		for _, o := range old {
			if o.path == path && o.err == nil {
				p = o
				break
			}
		}
		if p == nil {
			s.nextID++
			p = openPack(strings.TrimSuffix(path, ".pack"), s.nextID, &s.wins)
		}
		if p != nil {
			list = append(list, p)
			kept[p] = true
		}
	}
	for _, p := range s.retired {
		p.close()
	}
	s.retired = s.retired[:0]
	for _, p := range old {
		if !kept[p] {
			s.retired = append(s.retired, p)
		}
	}
	s.packs.Store(&list)
	return list
}

// close closes the pack and drops its windows.
func (p *packFile) close() error {
	if p.f == nil {
		return nil
	}
	p.wins.forget(p)
	return p.f.Close()
}

// window returns window i of the pack, reading it if needed.
func (p *packFile) window(i int64) ([]byte, error) {
	if w := p.windows[i].Load(); w != nil {
		return *w, nil
	}
	start := i << windowShift
	b := make([]byte, min(windowSize, p.end-start))
	if _, err := p.f.ReadAt(b, start); err != nil {
		return nil, err
	}
	if !p.windows[i].CompareAndSwap(nil, &b) {
		return b, nil // read by another reader meanwhile
	}
	p.wins.add(p, i, len(b))
	return b, nil
}

// windowSet bounds the memory of the windows of a packSet's packs: beyond
// its bound, the windows read first are dropped (and read again when
// needed).
type windowSet struct {
	mu    sync.Mutex
	max   int
	size  int
	queue []windowRef // the windows held, the oldest first
}

type windowRef struct {
	p    *packFile
	i    int64
	size int
}

func (ws *windowSet) add(p *packFile, i int64, size int) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.queue = append(ws.queue, windowRef{p, i, size})
	ws.size += size
	for ws.size > ws.max && len(ws.queue) > 1 {
		old := ws.queue[0]
		ws.queue[0] = windowRef{}
		ws.queue = ws.queue[1:]
		old.p.windows[old.i].Store(nil)
		ws.size -= old.size
	}
}

// forget drops the windows of p.
func (ws *windowSet) forget(p *packFile) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.queue = slices.DeleteFunc(ws.queue, func(w windowRef) bool {
		if w.p != p {
			return false
		}
		p.windows[w.i].Store(nil)
		ws.size -= w.size
		return true
	})
}

// close closes the packs. Reads after close fail with errClosed.
func (s *packSet) close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	var errs []error
	if l := s.packs.Load(); l != nil {
		for _, p := range *l {
			errs = append(errs, p.close())
		}
	}
	for _, p := range s.retired {
		errs = append(errs, p.close())
	}
	s.retired = nil
	s.packs.Store(&[]*packFile{})
	s.cache.clear()
	return errors.Join(errs...)
}

// readBlob reads blob h from the packs; with rescan, it first looks for new
// packs. ok is false when the blob is not packed, or is left to go-git.
// A blob larger than flagrepo.MaxFileSize gives a *TooLargeError.
func (s *packSet) readBlob(h plumbing.Hash, rescan bool) (data []byte, ok bool, err error) {
	return s.readObject(h, objBlob, rescan)
}

// readTree reads tree h from the packs, as readBlob does blobs. A tree
// larger than maxBaseSize is left to go-git (ok false).
func (s *packSet) readTree(h plumbing.Hash) (data []byte, ok bool, err error) {
	return s.readObject(h, objTree, false)
}

// readObject reads object h of type want (objBlob or objTree).
func (s *packSet) readObject(h plumbing.Hash, want int, rescan bool) (data []byte, ok bool, err error) {
	if s.closed.Load() {
		return nil, false, errClosed
	}
	var list []*packFile
	if rescan {
		list = s.rescanIfChanged()
	} else {
		list = s.list()
	}
	data, err = s.read(list, &h, want)
	if err != nil && !errors.Is(err, errNotPacked) && !errors.Is(err, errUnhandled) && !isTooLarge(err) {
		// The pack may have been replaced (git gc, or the next scan closed
		// a retired pack): read again from the packs there are now.
		if s.closed.Load() {
			return nil, false, errClosed
		}
		data, err = s.read(s.rescan(), &h, want)
	}
	switch {
	case err == nil:
		return data, true, nil
	case errors.Is(err, errNotPacked), errors.Is(err, errUnhandled):
		return nil, false, nil
	}
	return nil, true, err
}

func isTooLarge(err error) bool {
	var tl *TooLargeError
	return errors.As(err, &tl)
}

// read reads object h of type want from the first of the packs that holds
// it.
func (s *packSet) read(list []*packFile, h *plumbing.Hash, want int) ([]byte, error) {
	for _, p := range list {
		off, err := p.find(h)
		if err != nil {
			return nil, err
		}
		if off < 0 {
			continue
		}
		if p.err != nil {
			return nil, p.err
		}
		typ, data, err := s.resolve(list, p, off, want)
		if err != nil {
			return nil, err
		}
		if typ != want {
			return nil, errUnhandled
		}
		return data, nil
	}
	return nil, errNotPacked
}

// link is a delta of a chain being resolved.
type link struct {
	p     *packFile
	off   int64
	st    *packStream // positioned at its compressed data, until inflated
	size  int64       // the size of its data
	buf   *[]byte     // its data, once inflated (pooled)
	delta []byte      // its instructions: buf without the header
	src   int64       // the size of its base, once inflated
	tgt   int64       // the size of its result, once inflated
}

// release returns the link's stream and buffer to their pools.
func (l *link) release() {
	if l.st != nil {
		putStream(l.st)
		l.st = nil
	}
	if l.buf != nil {
		putScratch(l.buf)
		l.buf, l.delta = nil, nil
	}
}

// resolve reads the requested object, at off in p, of type want, applying
// its deltas. Another type is errUnhandled. A blob over flagrepo.MaxFileSize
// gives a *TooLargeError; a tree over maxBaseSize is errUnhandled. The
// result is the caller's.
//
// A chain is read as git does: its deltas are followed down to a cached
// base or a whole object, then applied from the bottom up, caching each
// result (the bases of the next chains through them). Of the deltas, only
// the top one's data is held during the walk down.
func (s *packSet) resolve(list []*packFile, p *packFile, off int64, want int) (typ int, data []byte, err error) {
	// It may have been the base of an object read before.
	if typ, data, ok := s.cache.get(p.id, off); ok {
		if typ != want {
			return 0, nil, errUnhandled
		}
		if want == objBlob && int64(len(data)) > flagrepo.MaxFileSize {
			return 0, nil, &TooLargeError{Size: int64(len(data))}
		}
		return typ, bytes.Clone(data), nil
	}
	var stack [8]link
	chain := stack[:0]
	defer func() {
		for i := range chain {
			chain[i].release()
		}
	}()
	// Walk down the chain to a whole object or a cached base.
	var base []byte
walk:
	for {
		if len(chain) > 0 {
			var ok bool
			if typ, base, ok = s.cache.get(p.id, off); ok {
				break
			}
		}
		if len(chain) > maxDeltaDepth {
			return 0, nil, p.errorf(off, "delta chain longer than %d", maxDeltaDepth)
		}
		st := getStream()
		if err := st.reset(p, off); err != nil {
			putStream(st)
			return 0, nil, err
		}
		t, size, err := st.header(off)
		if err != nil {
			putStream(st)
			return 0, nil, err
		}
		var ofs int64
		var bh plumbing.Hash
		switch t {
		case objCommit, objTree, objBlob, objTag:
			if len(chain) == 0 {
				if t != want {
					putStream(st)
					return 0, nil, errUnhandled
				}
				if want == objBlob && size > flagrepo.MaxFileSize {
					putStream(st)
					return 0, nil, &TooLargeError{Size: size}
				}
			}
			if size > maxBaseSize {
				putStream(st)
				return 0, nil, errUnhandled
			}
			data := make([]byte, size)
			err := st.inflate(off, data)
			putStream(st)
			if err != nil {
				return 0, nil, err
			}
			if len(chain) > 0 {
				s.cache.add(p.id, off, t, data)
			}
			typ, base = t, data
			break walk
		case objOFSDelta:
			if ofs, err = st.ofsOffset(off); err == nil && (ofs <= 0 || ofs > off-packHeaderLen) {
				err = p.errorf(off, "delta base offset %d out of range", ofs)
			}
		case objREFDelta:
			if err = st.readFull(bh[:]); err != nil {
				err = st.errorf(off, "delta base name: %v", err)
			}
		default:
			err = p.errorf(off, "unknown object type %d", t)
		}
		if err != nil {
			putStream(st)
			return 0, nil, err
		}
		chain = append(chain, link{p: p, off: off, st: st, size: size})
		if len(chain) == 1 {
			// The requested object is a delta: check the size of its
			// result before reading its bases.
			if err := chain[0].inflate(want == objBlob); err != nil {
				return 0, nil, err
			}
		}
		if t == objOFSDelta {
			off -= ofs
			continue
		}
		bp, boff, err := s.locate(list, p, &bh)
		if err != nil {
			return 0, nil, err
		}
		if bp != nil {
			p, off = bp, boff
			continue
		}
		// Not packed: a loose base, or one left to go-git.
		if s.loose == nil {
			return 0, nil, errUnhandled
		}
		data, ok, err := s.loose(bh)
		if !ok || err != nil {
			return 0, nil, errUnhandled
		}
		typ, base = objBlob, data
		break
	}
	// Apply the deltas from the bottom up.
	for i := len(chain) - 1; i >= 0; i-- {
		l := &chain[i]
		if l.buf == nil {
			if err := l.inflate(false); err != nil {
				return 0, nil, err
			}
		}
		if int64(len(base)) != l.src {
			return 0, nil, l.p.errorf(l.off, "delta base is %d bytes, the delta says %d", len(base), l.src)
		}
		out, err := applyDelta(base, l.delta, l.tgt)
		if err != nil {
			return 0, nil, l.p.errorf(l.off, "%v", err)
		}
		l.release()
		if i > 0 {
			s.cache.add(l.p.id, l.off, typ, out)
		}
		base = out
	}
	return typ, base, nil
}

// locate finds the object h for a REF_DELTA of pack p: in p, then in the
// other packs. It returns a nil pack when none holds it.
func (s *packSet) locate(list []*packFile, p *packFile, h *plumbing.Hash) (*packFile, int64, error) {
	off, err := p.find(h)
	if err != nil || off >= 0 {
		return p, off, err
	}
	for _, q := range list {
		if q == p {
			continue
		}
		off, err := q.find(h)
		if err != nil {
			return nil, 0, err
		}
		if off >= 0 {
			if q.err != nil {
				return nil, 0, q.err
			}
			return q, off, nil
		}
	}
	return nil, 0, nil
}

// inflate inflates the delta's data into a pooled buffer, checking the sizes
// in its header first: for the requested object when it is to be a blob
// (top), a result over flagrepo.MaxFileSize is a *TooLargeError, found
// without inflating more than the header.
func (l *link) inflate(top bool) error {
	zr, err := getInflater(l.st)
	if err != nil {
		return l.st.errorf(l.off, "inflate: %v", err)
	}
	defer inflaters.Put(zr)
	head := &l.st.head
	k := min(l.size, deltaHeaderMax)
	if _, err := io.ReadFull(zr, head[:k]); err != nil {
		return l.st.errorf(l.off, "inflate: %v", unexpectedEOF(err))
	}
	src, n1 := uvarint(head[:k])
	tgt, n2 := uvarint(head[n1:k])
	if n1 == 0 || n2 == 0 {
		return l.st.errorf(l.off, "malformed delta header")
	}
	n := int64(n1 + n2)
	switch {
	case top && tgt > flagrepo.MaxFileSize:
		return &TooLargeError{Size: int64(tgt)}
	case tgt > maxBaseSize || src > maxBaseSize:
		return errUnhandled
	case l.size-n > 8*int64(tgt):
		// Each instruction gives at least one byte of the result and takes
		// at most eight.
		return l.st.errorf(l.off, "delta of %d bytes for a result of %d", l.size, tgt)
	}
	buf := getScratch(int(l.size))
	copy(*buf, head[:k])
	if err := finishInflate(zr, (*buf)[k:], head[:]); err != nil {
		putScratch(buf)
		return l.st.errorf(l.off, "%v", err)
	}
	putStream(l.st)
	l.st = nil
	l.buf, l.delta, l.src, l.tgt = buf, (*buf)[n:], int64(src), int64(tgt)
	return nil
}

// applyDelta applies the delta instructions to base, giving a result of tgt
// bytes. The caller checked the sizes of the delta's header.
func applyDelta(base, delta []byte, tgt int64) ([]byte, error) {
	out := make([]byte, tgt)
	n, err := patch(out, base, delta)
	if err != nil {
		return nil, err
	}
	if n != len(out) {
		return nil, fmt.Errorf("delta gives %d bytes, its header says %d", n, len(out))
	}
	return out, nil
}

// patch writes into dst the result of the delta instructions applied to
// base, returning its length. Instructions that read or write out of range
// are errors.
func patch(dst, base, delta []byte) (int, error) {
	out := 0
	for i := 0; i < len(delta); {
		op := delta[i]
		i++
		switch {
		case op&0x80 != 0:
			var off, n uint64
			for b := range 4 {
				if op&(1<<b) != 0 {
					if i >= len(delta) {
						return 0, errors.New("truncated delta copy instruction")
					}
					off |= uint64(delta[i]) << (8 * b)
					i++
				}
			}
			for b := range 3 {
				if op&(0x10<<b) != 0 {
					if i >= len(delta) {
						return 0, errors.New("truncated delta copy instruction")
					}
					n |= uint64(delta[i]) << (8 * b)
					i++
				}
			}
			if n == 0 {
				n = 0x10000
			}
			if off+n > uint64(len(base)) {
				return 0, fmt.Errorf("delta copies bytes %d to %d of a %d-byte base", off, off+n, len(base))
			}
			if n > uint64(len(dst)-out) {
				return 0, fmt.Errorf("delta gives more than the %d bytes its header says", len(dst))
			}
			out += copy(dst[out:], base[off:off+n])
		case op != 0:
			n := int(op)
			if n > len(delta)-i {
				return 0, errors.New("truncated delta insert instruction")
			}
			if n > len(dst)-out {
				return 0, fmt.Errorf("delta gives more than the %d bytes its header says", len(dst))
			}
			out += copy(dst[out:], delta[i:i+n])
			i += n
		default:
			return 0, errors.New("reserved delta instruction 0")
		}
	}
	return out, nil
}

// uvarint decodes a delta header size: little-endian groups of 7 bits. n is
// 0 when b holds no complete size of at most 64 bits.
func uvarint(b []byte) (v uint64, n int) {
	for shift := 0; n < len(b) && shift < 64; shift += 7 {
		c := b[n]
		n++
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, n
		}
	}
	return 0, 0
}

// packStream reads a pack from an offset, through the pack's windows. It
// is the source of a zlib reader (an io.ByteReader, so not buffered again).
type packStream struct {
	p    *packFile
	buf  []byte // the current window
	r    int    // read position in buf
	next int64  // the pack offset of the end of buf
	err  error  // the error reading a window, if any
	// head holds a delta's header, inflated (here rather than on the stack
	// of link.inflate, where the zlib reader's interface makes it escape).
	head [deltaHeaderMax]byte
}

var streams = sync.Pool{New: func() any { return new(packStream) }}

func getStream() *packStream { return streams.Get().(*packStream) }

func putStream(st *packStream) {
	*st = packStream{}
	streams.Put(st)
}

// reset positions st at offset off of p.
func (st *packStream) reset(p *packFile, off int64) error {
	if off < packHeaderLen || off >= p.end {
		return p.errorf(off, "offset out of range (the objects end at %d)", p.end)
	}
	w, err := p.window(off >> windowShift)
	if err != nil {
		return &packError{pack: p.path, off: off, err: err}
	}
	start := off &^ (windowSize - 1)
	*st = packStream{p: p, buf: w, r: int(off - start), next: start + int64(len(w))}
	return nil
}

// fill moves to the next window.
func (st *packStream) fill() error {
	if st.next >= st.p.end {
		return io.ErrUnexpectedEOF // past the objects: the caller reports it
	}
	w, err := st.p.window(st.next >> windowShift)
	if err != nil {
		st.err = err
		return err
	}
	st.buf, st.r, st.next = w, 0, st.next+int64(len(w))
	return nil
}

func (st *packStream) ReadByte() (byte, error) {
	if st.r == len(st.buf) {
		if err := st.fill(); err != nil {
			return 0, err
		}
	}
	c := st.buf[st.r]
	st.r++
	return c, nil
}

func (st *packStream) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if st.r == len(st.buf) {
		if err := st.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(b, st.buf[st.r:])
	st.r += n
	return n, nil
}

// readFull reads len(b) bytes.
func (st *packStream) readFull(b []byte) error {
	for len(b) > 0 {
		if st.r == len(st.buf) {
			if err := st.fill(); err != nil {
				return err
			}
		}
		n := copy(b, st.buf[st.r:])
		st.r += n
		b = b[n:]
	}
	return nil
}

// errorf returns a corruption error for the object at off, or the error
// reading the pack if there was one.
func (st *packStream) errorf(off int64, format string, args ...any) error {
	if st.err != nil {
		return &packError{pack: st.p.path, off: off, err: st.err}
	}
	return st.p.errorf(off, format, args...)
}

// header reads the header of the entry at off, where st is: its type and
// the size of its data.
func (st *packStream) header(off int64) (typ int, size int64, err error) {
	c, err := st.ReadByte()
	if err != nil {
		return 0, 0, st.errorf(off, "header: %v", err)
	}
	typ = int(c>>4) & 7
	u := uint64(c & 0x0f)
	for shift := 4; c&0x80 != 0; shift += 7 {
		if shift > 56 {
			return 0, 0, st.errorf(off, "object size overflows")
		}
		if c, err = st.ReadByte(); err != nil {
			return 0, 0, st.errorf(off, "header: %v", err)
		}
		u |= uint64(c&0x7f) << shift
	}
	return typ, int64(u), nil
}

// ofsOffset reads the distance back to the base of the OFS_DELTA at off.
func (st *packStream) ofsOffset(off int64) (int64, error) {
	c, err := st.ReadByte()
	if err != nil {
		return 0, st.errorf(off, "delta base offset: %v", err)
	}
	v := int64(c & 0x7f)
	for c&0x80 != 0 {
		if v > 1<<55 {
			return 0, st.errorf(off, "delta base offset overflows")
		}
		if c, err = st.ReadByte(); err != nil {
			return 0, st.errorf(off, "delta base offset: %v", err)
		}
		v = (v+1)<<7 | int64(c&0x7f)
	}
	return v, nil
}

// inflate inflates the zlib data at st, of the entry at off, into data,
// which must be all of it.
func (st *packStream) inflate(off int64, data []byte) error {
	zr, err := getInflater(st)
	if err != nil {
		return st.errorf(off, "inflate: %v", err)
	}
	defer inflaters.Put(zr)
	if err := finishInflate(zr, data, st.head[:]); err != nil {
		return st.errorf(off, "%v", err)
	}
	return nil
}

// finishInflate reads data from zr, and then its end and checksum; extra
// is a byte of scratch space.
func finishInflate(zr io.Reader, data, extra []byte) error {
	if _, err := io.ReadFull(zr, data); err != nil {
		return fmt.Errorf("inflate: %v", unexpectedEOF(err))
	}
	n, err := zr.Read(extra[:1])
	if n > 0 {
		return errors.New("data longer than its header says")
	}
	if err != io.EOF {
		if err == nil {
			err = errors.New("no end of data")
		}
		return fmt.Errorf("inflate: %v", err)
	}
	return nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// getInflater returns a pooled zlib reader (put it back in inflaters) reset
// to read src.
func getInflater(src io.Reader) (io.ReadCloser, error) {
	if v := inflaters.Get(); v != nil {
		zr := v.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(src, nil); err != nil {
			inflaters.Put(zr)
			return nil, err
		}
		return zr, nil
	}
	return zlib.NewReader(src)
}

// scratches holds buffers for delta data.
var scratches sync.Pool

func getScratch(n int) *[]byte {
	if v := scratches.Get(); v != nil {
		b := v.(*[]byte)
		if cap(*b) >= n {
			*b = (*b)[:n]
			return b
		}
	}
	b := make([]byte, n, max(n, 4096))
	return &b
}

func putScratch(b *[]byte) {
	if cap(*b) <= scratchPoolMax {
		scratches.Put(b)
	}
}

// baseCache holds decompressed delta bases by pack and offset, bounded in
// bytes. It is sharded, each shard an LRU list under its own lock, so that
// concurrent readers seldom wait for each other.
type baseCache struct {
	shards [cacheShards]cacheShard
}

const (
	cacheShards   = 16
	cacheOverhead = 96 // bytes counted for an entry besides its data
)

// cacheKey is a pack's id and an offset in it. Objects beyond what it holds
// (the 2^24th pack of a packSet, offsets from 1 TiB on) are not cached.
type cacheKey uint64

func keyOf(pack uint32, off int64) (cacheKey, bool) {
	return cacheKey(uint64(pack)<<40 | uint64(off)), pack < 1<<24 && uint64(off) < 1<<40
}

type cacheEntry struct {
	key        cacheKey
	typ        int
	data       []byte
	prev, next *cacheEntry
}

type cacheShard struct {
	mu   sync.Mutex
	m    map[cacheKey]*cacheEntry
	lru  cacheEntry // sentinel: lru.next is the most recently used entry
	size int        // bytes held
	max  int
	_    [64]byte // keep the shards' locks on separate cache lines
}

func newBaseCache(size int) *baseCache {
	c := new(baseCache)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.max = size / cacheShards
		sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
	}
	return c
}

func (c *baseCache) shard(k cacheKey) *cacheShard {
	h := uint64(k) * 0x9e3779b97f4a7c15
	return &c.shards[h>>(64-4)]
}

// get returns the object at off of pack id, if cached. Its data must not be
// modified.
func (c *baseCache) get(pack uint32, off int64) (typ int, data []byte, ok bool) {
	k, ok := keyOf(pack, off)
	if !ok {
		return 0, nil, false
	}
	sh := c.shard(k)
	sh.mu.Lock()
	e := sh.m[k]
	if e != nil {
		sh.unlink(e)
		sh.pushFront(e)
		typ, data = e.typ, e.data
	}
	sh.mu.Unlock()
	return typ, data, e != nil
}

// add caches the object at off of pack id, evicting the least recently used
// objects of its shard beyond the cache's bound. data must not be modified
// afterwards.
func (c *baseCache) add(pack uint32, off int64, typ int, data []byte) {
	k, ok := keyOf(pack, off)
	if !ok {
		return
	}
	sh := c.shard(k)
	cost := len(data) + cacheOverhead
	if cost > sh.max/2 {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		sh.m = make(map[cacheKey]*cacheEntry)
	}
	if _, ok := sh.m[k]; ok {
		return
	}
	for sh.size+cost > sh.max && sh.lru.prev != &sh.lru {
		old := sh.lru.prev
		sh.unlink(old)
		delete(sh.m, old.key)
		sh.size -= len(old.data) + cacheOverhead
	}
	e := &cacheEntry{key: k, typ: typ, data: data}
	sh.m[k] = e
	sh.pushFront(e)
	sh.size += cost
}

func (sh *cacheShard) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (sh *cacheShard) pushFront(e *cacheEntry) {
	e.prev, e.next = &sh.lru, sh.lru.next
	e.prev.next, e.next.prev = e, e
}

// clear empties the cache.
func (c *baseCache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.m, sh.size = nil, 0
		sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
		sh.mu.Unlock()
	}
}
