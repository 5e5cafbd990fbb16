package gitstore

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// gitIndex is a Git index file (versions 2 and 3) read just enough to look up
// entries and to replace some of them, copying the others byte for byte.
// go-git's index decoder and encoder take about 80 ms for the 41,000 entries
// of a large flag repository; this takes a few.
type gitIndex struct {
	data    []byte
	version uint32
	entries []indexEntry // in file order: by name, then stage
	end     int          // where the entries end (extensions or the checksum follow)
}

// indexEntry is one entry of a gitIndex: data[start:end].
type indexEntry struct {
	name       string
	start, end int
	stage      int
	mode       filemode.FileMode
	hash       plumbing.Hash
}

// newIndexEntry is an entry to write.
type newIndexEntry struct {
	name  string
	hash  plumbing.Hash
	mode  filemode.FileMode
	size  int64
	mtime time.Time
}

const indexEntryFixed = 62 // the bytes of an entry before the extended flags and the name

// parseIndex reads an index file; empty data is an empty index.
func parseIndex(data []byte) (*gitIndex, error) {
	if len(data) == 0 {
		return &gitIndex{version: 2, data: append([]byte("DIRC"), 0, 0, 0, 2, 0, 0, 0, 0), end: 12}, nil
	}
	if len(data) < 12+20 || string(data[:4]) != "DIRC" {
		return nil, errors.New("not a Git index file")
	}
	x := &gitIndex{data: data, version: binary.BigEndian.Uint32(data[4:])}
	if x.version != 2 && x.version != 3 {
		return nil, fmt.Errorf("index version %d is not supported (versions 2 and 3 are); run git update-index --index-version 3", x.version)
	}
	n := binary.BigEndian.Uint32(data[8:])
	limit := len(data) - 20
	off := 12
	x.entries = make([]indexEntry, 0, n)
	for range n {
		if off+indexEntryFixed > limit {
			return nil, errors.New("index file is truncated")
		}
		flags := binary.BigEndian.Uint16(data[off+60:])
		nameStart := off + indexEntryFixed
		if flags&0x4000 != 0 { // extended flags
			if x.version < 3 {
				return nil, errors.New("index file of version 2 has an entry with extended flags")
			}
			nameStart += 2
		}
		nul := bytes.IndexByte(data[nameStart:limit], 0)
		if nul < 0 {
			return nil, errors.New("index file is truncated")
		}
		end := off + (nameStart-off+nul+8)&^7
		if end > limit {
			return nil, errors.New("index file is truncated")
		}
		e := indexEntry{
			name:  string(data[nameStart : nameStart+nul]),
			start: off, end: end,
			stage: int(flags>>12) & 3,
			mode:  filemode.FileMode(binary.BigEndian.Uint32(data[off+24:])),
		}
		copy(e.hash[:], data[off+40:off+60])
		x.entries = append(x.entries, e)
		off = end
	}
	x.end = off
	for off < limit { // extensions
		if off+8 > limit {
			return nil, errors.New("index file has a truncated extension")
		}
		switch sig := string(data[off : off+4]); sig {
		case "link", "sdir":
			return nil, fmt.Errorf("index file uses extension %q (split or sparse index), which is not supported", sig)
		}
		off += 8 + int(binary.BigEndian.Uint32(data[off+4:]))
	}
	return x, nil
}

// lookup returns the entries of path (one per stage).
func (x *gitIndex) lookup(path string) []indexEntry {
	i, _ := slices.BinarySearchFunc(x.entries, path, func(e indexEntry, p string) int { return strings.Compare(e.name, p) })
	j := i
	for j < len(x.entries) && x.entries[j].name == path {
		j++
	}
	return x.entries[i:j]
}

// replace returns the index with the entries of the paths in remove
// dropped and added put in, the other entries copied unchanged, as a new
// gitIndex whose data is the file to write. Extensions are dropped: the
// cached trees (TREE) of changed directories would be stale, and git
// rebuilds what it needs. x is not changed. The new index is written into
// spare's memory when it is large enough (spare, if not nil, is an index
// nobody uses any more).
func (x *gitIndex) replace(remove map[string]bool, added []newIndexEntry, spare *gitIndex) *gitIndex {
	slices.SortFunc(added, func(a, b newIndexEntry) int { return strings.Compare(a.name, b.name) })
	size, count := x.end+len(added)*(indexEntryFixed+64)+20, len(x.entries)+len(added)
	var out []byte
	var entries []indexEntry
	if spare != nil && cap(spare.data) >= size && cap(spare.entries) >= count {
		out, entries = spare.data[:12], spare.entries[:0]
	} else {
		out, entries = make([]byte, 12, size+size/8), make([]indexEntry, 0, count+count/8)
	}
	copy(out, x.data[:8])
	binary.BigEndian.PutUint32(out[8:], 0)
	y := &gitIndex{version: x.version, entries: entries}
	put := func(e *newIndexEntry) {
		start := len(out)
		sec, nsec := uint32(e.mtime.Unix()), uint32(e.mtime.Nanosecond())
		for _, v := range []uint32{sec, nsec, sec, nsec, 0, 0, uint32(e.mode), 0, 0, uint32(e.size)} {
			out = binary.BigEndian.AppendUint32(out, v)
		}
		out = append(out, e.hash[:]...)
		out = binary.BigEndian.AppendUint16(out, uint16(min(len(e.name), 0xfff)))
		out = append(out, e.name...)
		out = append(out, make([]byte, (len(out)-start+8)&^7-(len(out)-start))...)
		y.entries = append(y.entries, indexEntry{name: e.name, start: start, end: len(out), mode: e.mode, hash: e.hash})
	}
	// copyRun copies the entries [from, to) of x unchanged, in one piece.
	copyRun := func(from, to int) {
		if from >= to {
			return
		}
		first := x.entries[from].start
		shift := len(out) - first
		out = append(out, x.data[first:x.entries[to-1].end]...)
		for _, e := range x.entries[from:to] {
			e.start += shift
			e.end += shift
			y.entries = append(y.entries, e)
		}
	}
	// The edits, in entry order: an added entry goes before the first
	// entry whose name is not smaller; a removed one is skipped. Finding
	// them by binary search leaves the copy free of string comparisons.
	type edit struct {
		at  int // entry index
		add int // index in added, or -1 to remove entry at
	}
	var edits []edit
	for name := range remove {
		i, _ := slices.BinarySearchFunc(x.entries, name, func(e indexEntry, p string) int { return strings.Compare(e.name, p) })
		for ; i < len(x.entries) && x.entries[i].name == name; i++ {
			edits = append(edits, edit{at: i, add: -1})
		}
	}
	for k := range added {
		i, _ := slices.BinarySearchFunc(x.entries, added[k].name, func(e indexEntry, p string) int { return strings.Compare(e.name, p) })
		edits = append(edits, edit{at: i, add: k})
	}
	slices.SortFunc(edits, func(a, b edit) int {
		if a.at != b.at {
			return a.at - b.at
		}
		if (a.add < 0) != (b.add < 0) { // adds go before the entry they precede
			if a.add < 0 {
				return 1
			}
			return -1
		}
		return a.add - b.add
	})
	next := 0 // the first entry of x not copied or skipped yet
	for _, ed := range edits {
		copyRun(next, ed.at)
		next = max(next, ed.at)
		if ed.add >= 0 {
			put(&added[ed.add])
		} else {
			next = ed.at + 1
		}
	}
	copyRun(next, len(x.entries))
	y.end = len(out)
	binary.BigEndian.PutUint32(out[8:], uint32(len(y.entries)))
	sum := sha1.Sum(out)
	y.data = append(out, sum[:]...)
	return y
}
