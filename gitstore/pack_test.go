package gitstore

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen/gittest"
)

// flagDoc is a JSON flag document: documents of different i are alike, and
// so are the versions of one document, so that git stores most as deltas.
func flagDoc(i, version int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n  \"key\": \"feature_%04d\",\n  \"description\": \"Feature number %d of the generated repository\",\n", i, i)
	fmt.Fprintf(&b, "  \"enabled\": %t,\n  \"rollout\": %d,\n  \"variants\": [\n", (i+version)%3 == 0, (i*7+version*13)%101)
	for v := range 3 + i%4 {
		fmt.Fprintf(&b, "    {\"name\": \"variant_%d\", \"weight\": %d},\n", v, (v*11+version)%50)
	}
	fmt.Fprintf(&b, "    {\"name\": \"control\", \"weight\": 0}\n  ],\n  \"owner\": \"team-%d\"\n}\n", i%5)
	return []byte(b.String())
}

// buildRepo makes a repository of similar flag documents over several
// commits, each changing some of them, with a file of 200 KiB that
// compresses badly (read across windows) changed a little in each commit.
// With huge, it also has two versions of a file over flagrepo.MaxFileSize.
func buildRepo(t *testing.T, commits int, huge bool) string {
	t.Helper()
	gittest.Available(t)
	dir := t.TempDir()
	gittest.Init(t, dir)
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 200<<10)
	for i := range noise {
		noise[i] = byte('!' + rng.IntN(90))
	}
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for c := range commits {
		for i := range 150 {
			if c == 0 || (i*(c+3))%4 == 0 {
				write(fmt.Sprintf("features/f%03d.json", i), flagDoc(i, c))
			}
		}
		for i := range 30 {
			if c == 0 || i%(c+1) == 0 {
				write(fmt.Sprintf("segments/s%02d.json", i), flagDoc(1000+i, c*2))
			}
		}
		copy(noise[c*1000:], fmt.Sprintf("commit %d was here", c))
		write("big.txt", noise)
		if huge && c < 2 {
			var b bytes.Buffer
			for n := 0; b.Len() <= flagrepo.MaxFileSize+4096; n++ {
				fmt.Fprintf(&b, "line %d value %d\n", n, n*(1+c*(n%1000/999)))
			}
			write("huge.txt", b.Bytes())
		}
		gittest.CommitAll(t, dir, fmt.Sprintf("commit %d", c))
	}
	return dir
}

// gitBlobs returns every blob of the repository at dir, as git reads them.
func gitBlobs(t *testing.T, dir string) map[plumbing.Hash][]byte {
	t.Helper()
	var names []string
	for line := range strings.Lines(gittest.Run(t, dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)")) {
		if name, ok := strings.CutSuffix(strings.TrimSpace(line), " blob"); ok {
			names = append(names, name)
		}
	}
	out := gitStdin(t, dir, strings.Join(names, "\n")+"\n", "cat-file", "--batch")
	blobs := make(map[plumbing.Hash][]byte, len(names))
	for len(out) > 0 {
		nl := bytes.IndexByte(out, '\n')
		f := strings.Fields(string(out[:nl]))
		size, err := strconv.Atoi(f[2])
		if err != nil || f[1] != "blob" {
			t.Fatalf("git cat-file --batch: %q", out[:nl])
		}
		blobs[plumbing.NewHash(f[0])] = out[nl+1 : nl+1+size]
		out = out[nl+1+size+1:]
	}
	if len(blobs) != len(names) {
		t.Fatalf("git cat-file gave %d blobs of %d", len(blobs), len(names))
	}
	return blobs
}

// gitStdin runs git with stdin and returns its output.
func gitStdin(t *testing.T, dir, stdin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, gittest.Env, strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// packTypes counts the entries of each type in a pack.
func packTypes(t *testing.T, p *packFile) map[int]int {
	t.Helper()
	types := map[int]int{}
	for i := range int(p.fanout[255]) {
		off, err := p.offset(i)
		if err != nil {
			t.Fatal(err)
		}
		var st packStream
		if err := st.reset(p, off); err != nil {
			t.Fatal(err)
		}
		typ, _, err := st.header(off)
		if err != nil {
			t.Fatal(err)
		}
		types[typ]++
	}
	return types
}

// maxChain returns the longest delta chain git reports for the packs of dir.
func maxChain(t *testing.T, gitDir string) int {
	t.Helper()
	idxs, _ := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "*.idx"))
	longest := 0
	re := regexp.MustCompile(`(?m)^chain length = (\d+):`)
	for _, idx := range idxs {
		out := gittest.Run(t, gitDir, "verify-pack", "-v", idx)
		for _, m := range re.FindAllStringSubmatch(out, -1) {
			n, _ := strconv.Atoi(m[1])
			longest = max(longest, n)
		}
	}
	return longest
}

func openRepo(t *testing.T, dir string) *Repo {
	t.Helper()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// checkPacked reads every blob from the packs alone and compares it with
// git's: every one must be packed and handled.
func checkPacked(t *testing.T, s *packSet, blobs map[plumbing.Hash][]byte) {
	t.Helper()
	for h, want := range blobs {
		data, ok, err := s.readBlob(h, false)
		if len(want) > flagrepo.MaxFileSize {
			var tl *TooLargeError
			if !errors.As(err, &tl) || tl.Size != int64(len(want)) || !ok {
				t.Errorf("blob %s of %d bytes: ok %v, error %v; want a TooLargeError", h, len(want), ok, err)
			}
			continue
		}
		if err != nil || !ok {
			t.Errorf("blob %s: ok %v, error %v", h, ok, err)
			continue
		}
		if !bytes.Equal(data, want) {
			t.Errorf("blob %s: read %d bytes %.40q, git says %d bytes %.40q", h, len(data), data, len(want), want)
		}
	}
}

// checkRead reads every blob through the Repo and compares it with git's.
func checkRead(t *testing.T, r *Repo, blobs map[plumbing.Hash][]byte) {
	t.Helper()
	for h, want := range blobs {
		data, err := r.ReadBlob(h)
		if len(want) > flagrepo.MaxFileSize {
			var tl *TooLargeError
			if !errors.As(err, &tl) || tl.Size != int64(len(want)) {
				t.Errorf("blob %s of %d bytes: error %v; want a TooLargeError", h, len(want), err)
			}
			continue
		}
		if err != nil {
			t.Errorf("blob %s: %v", h, err)
		} else if !bytes.Equal(data, want) {
			t.Errorf("blob %s: read %d bytes, git says %d", h, len(data), len(want))
		}
	}
}

func TestPackOFSDeltas(t *testing.T) {
	dir := buildRepo(t, 6, true)
	gittest.Run(t, dir, "repack", "-adf", "--depth=50", "--window=250")
	if n := maxChain(t, filepath.Join(dir, ".git")); n < 5 {
		t.Fatalf("longest delta chain %d; want deep chains", n)
	}
	blobs := gitBlobs(t, dir)
	r := openRepo(t, dir)
	list := r.packs.list()
	if len(list) != 1 {
		t.Fatalf("%d packs", len(list))
	}
	types := packTypes(t, list[0])
	if types[objOFSDelta] == 0 || types[objREFDelta] != 0 {
		t.Fatalf("entry types %v; want OFS_DELTA entries only", types)
	}
	t.Logf("%d blobs; entry types %v", len(blobs), types)
	huge := 0
	for h, data := range blobs {
		if len(data) > flagrepo.MaxFileSize {
			huge++
			off, _ := list[0].find(&h)
			var st packStream
			if err := st.reset(list[0], off); err != nil {
				t.Fatal(err)
			}
			typ, _, _ := st.header(off)
			t.Logf("blob of %d bytes is of type %d", len(data), typ)
		}
	}
	if huge != 2 {
		t.Fatalf("%d blobs over MaxFileSize", huge)
	}
	// A tree is left to go-git, which does not read it as a blob either.
	tree := plumbing.NewHash(gittest.Run(t, dir, "rev-parse", "HEAD^{tree}"))
	if _, ok, err := r.packs.readBlob(tree, false); ok || err != nil {
		t.Errorf("tree read as a blob: ok %v, error %v", ok, err)
	}
	if _, err := r.ReadBlob(tree); err == nil {
		t.Error("tree read as a blob")
	}
	checkPacked(t, r.packs, blobs) // cold cache
	checkPacked(t, r.packs, blobs) // warm
	checkRead(t, r, blobs)

	// With a tiny base cache and one window at a time.
	r.packs.cache = newBaseCache(64 << 10)
	r.packs.wins.forget(list[0])
	r.packs.wins.max = 1
	checkPacked(t, r.packs, blobs)
	if n := len(r.packs.wins.queue); n != 1 {
		t.Errorf("%d windows held; want 1", n)
	}
}

func TestPackREFDeltas(t *testing.T) {
	dir := buildRepo(t, 4, true)
	gittest.Run(t, dir, "-c", "repack.useDeltaBaseOffset=false", "repack", "-adf", "--depth=50", "--window=250")
	blobs := gitBlobs(t, dir)
	r := openRepo(t, dir)
	list := r.packs.list()
	if len(list) != 1 {
		t.Fatalf("%d packs", len(list))
	}
	if types := packTypes(t, list[0]); types[objREFDelta] == 0 || types[objOFSDelta] != 0 {
		t.Fatalf("entry types %v; want REF_DELTA entries only", types)
	}
	checkPacked(t, r.packs, blobs)
	checkRead(t, r, blobs)
}

// TestPackThinAndLoose reads a repository with two packs, the second a thin
// pack completed by index-pack (REF_DELTA entries against bases appended to
// it), and loose objects.
func TestPackThinAndLoose(t *testing.T) {
	dir := buildRepo(t, 2, false)
	gittest.Run(t, dir, "repack", "-adf")
	first := gittest.Run(t, dir, "rev-parse", "HEAD")
	for c := range 2 {
		for i := range 150 {
			if i%(c+2) == 0 {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("features/f%03d.json", i)), flagDoc(i, 10+c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		gittest.CommitAll(t, dir, fmt.Sprintf("thin %d", c))
	}
	thin := gitStdin(t, dir, "HEAD\n^"+first+"\n", "pack-objects", "--thin", "--stdout", "--revs")
	cmd := exec.Command("git", "index-pack", "--fix-thin", "--stdin")
	cmd.Dir, cmd.Env, cmd.Stdin = dir, gittest.Env, bytes.NewReader(thin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git index-pack: %v: %s", err, out)
	}
	gittest.Run(t, dir, "prune-packed")
	// One more commit, left loose.
	if err := os.WriteFile(filepath.Join(dir, "features/loose.json"), flagDoc(9999, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.CommitAll(t, dir, "loose")

	blobs := gitBlobs(t, dir)
	r := openRepo(t, dir)
	list := r.packs.list()
	if len(list) != 2 {
		t.Fatalf("%d packs; want 2", len(list))
	}
	refs := 0
	for _, p := range list {
		types := packTypes(t, p)
		t.Logf("%s: %v", filepath.Base(p.path), types)
		refs += types[objREFDelta]
	}
	if refs == 0 {
		t.Fatal("no REF_DELTA entries")
	}
	packed, loose := 0, 0
	for h, want := range blobs {
		data, ok, err := r.packs.readBlob(h, false)
		if err != nil {
			t.Fatalf("blob %s: %v", h, err)
		}
		if ok {
			packed++
			if !bytes.Equal(data, want) {
				t.Errorf("blob %s differs", h)
			}
		} else {
			loose++
		}
	}
	if packed == 0 || loose == 0 {
		t.Fatalf("%d packed and %d loose blobs; want both", packed, loose)
	}
	checkRead(t, r, blobs)
}

// packEntry is an entry of a pack written by writeRawPack.
type packEntry struct {
	name plumbing.Hash // its name in the index
	typ  int
	data []byte        // its data: content, or delta
	size int64         // the size in its header; -1 for len(data)
	base int           // OFS_DELTA: the index of its base among the entries
	ref  plumbing.Hash // REF_DELTA: the name of its base
}

// writeRawPack writes a pack of the entries, and its index, into dir.
func writeRawPack(t *testing.T, dir string, entries []packEntry) {
	t.Helper()
	var pack bytes.Buffer
	pack.WriteString("PACK")
	pack.Write(binary.BigEndian.AppendUint32(nil, 2))
	pack.Write(binary.BigEndian.AppendUint32(nil, uint32(len(entries))))
	offs := make([]int64, len(entries))
	crcs := make([]uint32, len(entries))
	for i, e := range entries {
		offs[i] = int64(pack.Len())
		size := e.size
		if size < 0 {
			size = int64(len(e.data))
		}
		c := byte(e.typ<<4) | byte(size&15)
		var raw []byte
		for size >>= 4; size > 0; size >>= 7 {
			raw = append(raw, c|0x80)
			c = byte(size & 0x7f)
		}
		raw = append(raw, c)
		switch e.typ {
		case objOFSDelta:
			rel := offs[i] - offs[e.base]
			var b [10]byte
			n := len(b) - 1
			b[n] = byte(rel & 0x7f)
			for rel >>= 7; rel > 0; rel >>= 7 {
				rel--
				n--
				b[n] = byte(0x80 | rel&0x7f)
			}
			raw = append(raw, b[n:]...)
		case objREFDelta:
			raw = append(raw, e.ref[:]...)
		}
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		zw.Write(e.data)
		zw.Close()
		raw = append(raw, z.Bytes()...)
		crcs[i] = crc32.ChecksumIEEE(raw)
		pack.Write(raw)
	}
	sum := sha1.Sum(pack.Bytes())
	pack.Write(sum[:])

	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(entries[a].name[:], entries[b].name[:]) })
	var idx bytes.Buffer
	idx.WriteString(idxMagic)
	idx.Write(binary.BigEndian.AppendUint32(nil, 2))
	for b := range 256 {
		n := 0
		for _, e := range entries {
			if int(e.name[0]) <= b {
				n++
			}
		}
		idx.Write(binary.BigEndian.AppendUint32(nil, uint32(n)))
	}
	for _, i := range order {
		idx.Write(entries[i].name[:])
	}
	for _, i := range order {
		idx.Write(binary.BigEndian.AppendUint32(nil, crcs[i]))
	}
	for _, i := range order {
		idx.Write(binary.BigEndian.AppendUint32(nil, uint32(offs[i])))
	}
	idx.Write(sum[:])
	isum := sha1.Sum(idx.Bytes())
	idx.Write(isum[:])
	base := filepath.Join(dir, "pack-"+hex.EncodeToString(sum[:]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".pack", pack.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".idx", idx.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// delta encodes a delta: its header and instructions.
func delta(src, tgt int, ops ...[]byte) []byte {
	d := binaryUvarint(nil, uint64(src))
	d = binaryUvarint(d, uint64(tgt))
	for _, op := range ops {
		d = append(d, op...)
	}
	return d
}

func binaryUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// copyOp is a copy instruction (size 0x10000 is encoded as no size bytes).
func copyOp(off, n int) []byte {
	op := []byte{0x80}
	for b := range 4 {
		if v := byte(off >> (8 * b)); v != 0 {
			op[0] |= 1 << b
			op = append(op, v)
		}
	}
	for b := range 3 {
		if v := byte(n >> (8 * b)); v != 0 {
			op[0] |= 0x10 << b
			op = append(op, v)
		}
	}
	return op
}

func insertOp(s string) []byte { return append([]byte{byte(len(s))}, s...) }

func blobName(data []byte) plumbing.Hash { return plumbing.ComputeHash(plumbing.BlobObject, data) }

func nameOf(label string) plumbing.Hash { return plumbing.Hash(sha1.Sum([]byte(label))) }

// TestPackHandmade reads a pack written by the test: good deltas (OFS and
// REF, a chain), and corrupt entries whose zlib data is sound, so that the
// checks of headers and delta instructions are what finds them.
func TestPackHandmade(t *testing.T) {
	base := []byte("hello, base object with some text\n")
	L := len(base)
	cycA, cycB := nameOf("cycle a"), nameOf("cycle b")
	entries := []packEntry{
		{name: blobName(base), typ: objBlob, data: base, size: -1},
		{name: blobName([]byte("hello, world\n")), typ: objOFSDelta, base: 0, size: -1,
			data: delta(L, 13, copyOp(0, 7), insertOp("world\n"))},
		{name: nameOf("copy beyond"), typ: objOFSDelta, base: 0, size: -1, data: delta(L, 10, copyOp(L-5, 10))},
		{name: nameOf("insert beyond"), typ: objOFSDelta, base: 0, size: -1, data: delta(L, 3, insertOp("toolong"))},
		{name: nameOf("reserved"), typ: objOFSDelta, base: 0, size: -1, data: delta(L, 1, []byte{0})},
		{name: nameOf("short"), typ: objOFSDelta, base: 0, size: -1, data: delta(L, 10, insertOp("abc"))},
		{name: nameOf("source size"), typ: objOFSDelta, base: 0, size: -1, data: delta(L+1, 3, insertOp("abc"))},
		{name: nameOf("truncated copy"), typ: objOFSDelta, base: 0, size: -1, data: delta(L, 4, []byte{0x91})},
		{name: nameOf("type 5"), typ: 5, data: []byte("x"), size: -1},
		{name: nameOf("longer"), typ: objBlob, data: []byte("abcdef"), size: 5},
		{name: nameOf("shorter"), typ: objBlob, data: []byte("abcdef"), size: 10},
		{name: nameOf("missing base"), typ: objREFDelta, ref: nameOf("nowhere"), size: -1, data: delta(3, 3, insertOp("abc"))},
		{name: blobName([]byte("hello, there\n")), typ: objREFDelta, ref: blobName(base), size: -1,
			data: delta(L, 13, copyOp(0, 7), insertOp("there\n"))},
		{name: blobName([]byte("hello, world\nhello, world\n!")), typ: objOFSDelta, base: 1, size: -1,
			data: delta(13, 27, copyOp(0, 13), copyOp(0, 13), insertOp("!"))},
		{name: nameOf("truncated insert"), typ: objOFSDelta, base: 0, size: -1, data: delta(L, 5, []byte{5, 'a', 'b'})},
		{name: nameOf("huge delta"), typ: objOFSDelta, base: 0, size: -1, data: delta(L, 2<<20, copyOp(0, L))},
		{name: nameOf("huge blob"), typ: objBlob, data: []byte("small"), size: 3 << 20},
		{name: nameOf("long delta"), typ: objOFSDelta, base: 0, size: -1, data: delta(L, 1, bytes.Repeat(insertOp("a"), 20))},
		{name: cycA, typ: objREFDelta, ref: cycB, size: -1, data: delta(3, 3, insertOp("abc"))},
		{name: cycB, typ: objREFDelta, ref: cycA, size: -1, data: delta(3, 3, insertOp("abc"))},
		{name: nameOf("self"), typ: objOFSDelta, base: 19, size: -1, data: delta(3, 3, insertOp("abc"))},
		{name: nameOf("offset 0"), typ: 0, data: []byte("x"), size: -1},
		{name: nameOf("a tree"), typ: objTree, data: []byte{}, size: -1},
	}
	entries[20].base = 20 // an OFS_DELTA whose base is itself
	objects := t.TempDir()
	writeRawPack(t, filepath.Join(objects, "pack"), entries)
	s := newPackSet(objects, nil)
	defer s.close()

	want := map[string]string{ // by entry: content, or a part of the error
		"0": string(base), "1": "hello, world\n", "12": "hello, there\n", "13": "hello, world\nhello, world\n!",
		"2":  "corrupt: delta copies bytes 29 to 39 of a 34-byte base",
		"3":  "corrupt: delta gives more than the 3 bytes its header says",
		"4":  "corrupt: reserved delta instruction 0",
		"5":  "corrupt: delta gives 3 bytes, its header says 10",
		"6":  "corrupt: delta base is 34 bytes, the delta says 35",
		"7":  "corrupt: truncated delta copy instruction",
		"8":  "corrupt: unknown object type 5",
		"9":  "corrupt: data longer than its header says",
		"10": "corrupt: inflate: unexpected EOF",
		"14": "corrupt: truncated delta insert instruction",
		"17": "corrupt: delta of 42 bytes for a result of 1",
		"18": "corrupt: delta chain longer than",
		"19": "corrupt: delta chain longer than",
		"20": "corrupt: delta base offset 0 out of range",
		"21": "corrupt: unknown object type 0",
	}
	for i, e := range entries {
		data, ok, err := s.readBlob(e.name, false)
		w, found := want[strconv.Itoa(i)]
		switch {
		case i == 11 || i == 22: // left to go-git
			if ok || err != nil {
				t.Errorf("entry %d: ok %v, error %v; want it left to go-git", i, ok, err)
			}
		case i == 15 || i == 16:
			var tl *TooLargeError
			if !errors.As(err, &tl) || tl.Size != []int64{2 << 20, 3 << 20}[i-15] {
				t.Errorf("entry %d: error %v; want a TooLargeError", i, err)
			}
		case !found:
			t.Fatalf("entry %d: no expectation", i)
		case strings.HasPrefix(w, "corrupt: "):
			if err == nil || !ok || !strings.Contains(err.Error(), w) || !strings.HasPrefix(err.Error(), "packfile pack-") {
				t.Errorf("entry %d: ok %v, error %v; want %q", i, ok, err, w)
			}
		default:
			if err != nil || !ok || string(data) != w {
				t.Errorf("entry %d: %q, ok %v, error %v; want %q", i, data, ok, err, w)
			}
		}
	}
}

// TestPackREFBaseElsewhere reads REF_DELTA entries whose base is in another
// pack, or loose: git index-pack does not write such packs, but the reader
// finds those bases.
func TestPackREFBaseElsewhere(t *testing.T) {
	dir := buildRepo(t, 1, false)
	gittest.Run(t, dir, "repack", "-adf")
	extra := flagDoc(5000, 1)
	if err := os.WriteFile(filepath.Join(dir, "features/extra.json"), extra, 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.CommitAll(t, dir, "a loose blob")
	packedBase := flagDoc(3, 0) // features/f003.json, in the pack
	from := func(b []byte, suffix string) []byte { return append(bytes.Clone(b), suffix...) }
	entries := []packEntry{
		{name: blobName(from(packedBase, "packed\n")), typ: objREFDelta, ref: blobName(packedBase), size: -1,
			data: delta(len(packedBase), len(packedBase)+7, copyOp(0, len(packedBase)), insertOp("packed\n"))},
		{name: blobName(from(extra, "loose\n")), typ: objREFDelta, ref: blobName(extra), size: -1,
			data: delta(len(extra), len(extra)+6, copyOp(0, len(extra)), insertOp("loose\n"))},
	}
	writeRawPack(t, filepath.Join(dir, ".git", "objects", "pack"), entries)
	r := openRepo(t, dir)
	for i, want := range [][]byte{from(packedBase, "packed\n"), from(extra, "loose\n")} {
		data, ok, err := r.packs.readBlob(entries[i].name, false)
		if err != nil || !ok || !bytes.Equal(data, want) {
			t.Errorf("entry %d: %q, ok %v, error %v", i, data, ok, err)
		}
	}
}

// copyPacks copies the packs of the repository at dir into a new objects
// directory, returning it and the path of the (one) pack.
func copyPacks(t *testing.T, dir string) (objects, pack string) {
	t.Helper()
	objects = t.TempDir()
	if err := os.Mkdir(filepath.Join(objects, "pack"), 0o755); err != nil {
		t.Fatal(err)
	}
	src, _ := filepath.Glob(filepath.Join(dir, ".git", "objects", "pack", "pack-*"))
	for _, p := range src {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(objects, "pack", filepath.Base(p))
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, ".pack") {
			pack = dst
		}
	}
	return objects, pack
}

// deltaEntry returns the name and offset of an OFS_DELTA entry of the pack
// of the packSet, and the offset of its zlib data.
func deltaEntry(t *testing.T, s *packSet) (name plumbing.Hash, off, data int64) {
	t.Helper()
	p := s.list()[0]
	for i := range int(p.fanout[255]) {
		off, _ := p.offset(i)
		var st packStream
		if err := st.reset(p, off); err != nil {
			t.Fatal(err)
		}
		typ, size, _ := st.header(off)
		if typ != objOFSDelta || size < 40 {
			continue
		}
		st.ofsOffset(off)
		copy(name[:], p.names[i*hashLen:])
		return name, off, st.next - int64(len(st.buf)) + int64(st.r)
	}
	t.Fatal("no OFS_DELTA entry")
	return
}

// patchFile applies f to the content of the file at path.
func patchFile(t *testing.T, path string, f func([]byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // git writes packs read-only
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPackCorrupt(t *testing.T) {
	dir := buildRepo(t, 3, false)
	gittest.Run(t, dir, "repack", "-adf", "--depth=50", "--window=250")
	blobs := gitBlobs(t, dir)
	objects, pack := copyPacks(t, dir)
	s := newPackSet(objects, nil)
	name, off, data := deltaEntry(t, s)
	s.close()

	check := func(t *testing.T, h plumbing.Hash, want string) {
		t.Helper()
		s := newPackSet(objects, nil)
		defer s.close()
		_, ok, err := s.readBlob(h, false)
		if err == nil || !ok || !strings.Contains(err.Error(), want) {
			t.Errorf("ok %v, error %v; want %q", ok, err, want)
		}
	}
	t.Run("delta data", func(t *testing.T) {
		patchFile(t, pack, func(b []byte) []byte { b[data+4] ^= 0x55; return b })
		defer patchFile(t, pack, func(b []byte) []byte { b[data+4] ^= 0x55; return b })
		check(t, name, "corrupt: ")
	})
	t.Run("type", func(t *testing.T) {
		patchFile(t, pack, func(b []byte) []byte { b[off] = b[off]&0x8f | 5<<4; return b })
		defer patchFile(t, pack, func(b []byte) []byte { b[off] = b[off]&0x8f | objOFSDelta<<4; return b })
		check(t, name, "corrupt: unknown object type 5")
	})
	t.Run("truncated", func(t *testing.T) {
		var saved []byte
		patchFile(t, pack, func(b []byte) []byte { saved = bytes.Clone(b); return b[:len(b)-100] })
		defer patchFile(t, pack, func([]byte) []byte { return saved })
		check(t, name, "does not match its index")
	})
	t.Run("signature", func(t *testing.T) {
		patchFile(t, pack, func(b []byte) []byte { b[0] = 'X'; return b })
		defer patchFile(t, pack, func(b []byte) []byte { b[0] = 'P'; return b })
		check(t, name, "no PACK signature")
	})
	t.Run("index", func(t *testing.T) {
		idx := strings.TrimSuffix(pack, ".pack") + ".idx"
		patchFile(t, idx, func(b []byte) []byte { b[1] = 'x'; return b })
		defer patchFile(t, idx, func(b []byte) []byte { b[1] = 't'; return b })
		s := newPackSet(objects, nil)
		defer s.close()
		if _, ok, err := s.readBlob(name, false); ok || err != nil {
			t.Errorf("ok %v, error %v; want an unknown index left to go-git", ok, err)
		}
	})
	// Flip bytes all over the pack: never a panic. Reads fail, or are left
	// to go-git (an entry whose type became another than blob), or give
	// git's data, or other data when a changed OFS_DELTA offset names
	// another base of the same size, which only a hash check would find:
	// all are counted, and some reads must fail.
	t.Run("sweep", func(t *testing.T) {
		size := int64(len(mustRead(t, pack)))
		const n = 48
		var failed, unhandled, wrong int
		for k := range n {
			at := packHeaderLen + int64(k)*(size-packHeaderLen-hashLen)/n
			patchFile(t, pack, func(b []byte) []byte { b[at] ^= 0x5a; return b })
			s := newPackSet(objects, nil)
			for h, want := range blobs {
				data, ok, err := s.readBlob(h, false)
				switch {
				case err != nil:
					failed++
				case !ok:
					unhandled++
				case !bytes.Equal(data, want):
					wrong++
				}
			}
			s.close()
			patchFile(t, pack, func(b []byte) []byte { b[at] ^= 0x5a; return b })
		}
		t.Logf("%d flips, %d reads each: %d failed, %d left to go-git, %d gave other data", n, len(blobs), failed, unhandled, wrong)
		if failed == 0 {
			t.Error("no read failed")
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPackCorruptRepo reads a corrupt blob through the Repo: the error is
// the pack reader's, not a fallback to go-git.
func TestPackCorruptRepo(t *testing.T) {
	dir := buildRepo(t, 2, false)
	gittest.Run(t, dir, "repack", "-adf", "--depth=50", "--window=250")
	r := openRepo(t, dir)
	name, _, data := deltaEntry(t, r.packs)
	patchFile(t, r.packs.list()[0].path, func(b []byte) []byte { b[data+4] ^= 0x55; return b })
	r.packs.close()
	r.packs = newPackSet(filepath.Join(dir, ".git", "objects"), r.readLoose)
	_, err := r.ReadBlob(name)
	if err == nil || !strings.Contains(err.Error(), "packfile pack-") || !strings.Contains(err.Error(), "corrupt: ") {
		t.Fatalf("error %v; want the pack reader's", err)
	}
}

// TestPackRescan follows packs written and removed while the Repo is open.
func TestPackRescan(t *testing.T) {
	dir := buildRepo(t, 2, false)
	gittest.Run(t, dir, "repack", "-adf")
	r := openRepo(t, dir)
	blobs := gitBlobs(t, dir)
	checkPacked(t, r.packs, blobs)
	first := r.packs.list()

	// A new pack (an incremental repack of a new commit's loose objects).
	doc := flagDoc(7000, 1)
	if err := os.WriteFile(filepath.Join(dir, "features/new.json"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.CommitAll(t, dir, "new")
	gittest.Run(t, dir, "repack", "-d")
	h := blobName(doc)
	if _, err := os.Stat(filepath.Join(dir, ".git", "objects", h.String()[:2], h.String()[2:])); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the new blob is still loose: %v", err)
	}
	if _, ok, err := r.packs.readBlob(h, false); ok || err != nil {
		t.Fatalf("new blob found before a rescan: ok %v, error %v", ok, err)
	}
	if data, err := r.ReadBlob(h); err != nil || !bytes.Equal(data, doc) {
		t.Fatalf("new blob: %q, %v", data, err)
	}
	if _, ok, err := r.packs.readBlob(h, false); !ok || err != nil {
		t.Fatalf("new blob after the rescan: ok %v, error %v", ok, err)
	}
	if n := len(r.packs.list()); n != 2 {
		t.Fatalf("%d packs; want 2", n)
	}
	// Objects in no pack (nor loose) do not rescan an unchanged directory.
	scans := r.packs.scans.Load()
	for i := range 20 {
		if _, err := r.ReadBlob(plumbing.NewHash(fmt.Sprintf("%040x", i+1))); err == nil {
			t.Fatal("a missing blob was read")
		}
	}
	if n := r.packs.scans.Load() - scans; n > 1 {
		t.Fatalf("%d scans for 20 missing blobs, the directory unchanged", n)
	}

	// git gc: the packs are replaced; the open ones are still read.
	before := r.packs.list()
	gittest.Run(t, dir, "repack", "-adf")
	if _, err := os.Stat(first[0].path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the first pack is still there: %v", err)
	}
	blobs = gitBlobs(t, dir)
	r.packs.cache.clear()
	for _, p := range before {
		r.packs.wins.forget(p) // read from the removed files again
	}
	checkPacked(t, r.packs, blobs)
	if !slices.Equal(r.packs.list(), before) {
		t.Fatal("packs scanned again")
	}

	// A pack closed while still listed (as if the next scan had closed it
	// under a reader): reads fail, scan again and find the new pack.
	for _, p := range before {
		p.close()
	}
	r.packs.cache.clear()
	checkPacked(t, r.packs, blobs)
	after := r.packs.list()
	if len(after) != 1 || slices.Contains(before, after[0]) {
		t.Fatalf("packs %v after the rescan", after)
	}
	if len(r.packs.retired) != 2 {
		t.Fatalf("%d packs retired; want 2", len(r.packs.retired))
	}
	r.packs.rescan()
	if len(r.packs.retired) != 0 {
		t.Fatalf("%d packs retired after the next scan; want none", len(r.packs.retired))
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := after[0].f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("the pack is not closed: %v", err)
	}
	if _, _, err := r.packs.readBlob(h, false); err != errClosed {
		t.Errorf("read after Close: %v", err)
	}
	if _, err := r.ReadBlob(h); err == nil {
		t.Error("ReadBlob after Close succeeded")
	}
}

// TestPackConcurrent reads every blob from 8 goroutines at once, with a base
// cache and windows small enough to be evicted all the time, while the
// packs are scanned again.
func TestPackConcurrent(t *testing.T) {
	dir := buildRepo(t, 4, true)
	gittest.Run(t, dir, "repack", "-adf", "--depth=50", "--window=250")
	blobs := gitBlobs(t, dir)
	r := openRepo(t, dir)
	r.packs.cache = newBaseCache(256 << 10)
	r.packs.wins.max = 4 * windowSize
	hashes := make([]plumbing.Hash, 0, len(blobs))
	for h := range blobs {
		hashes = append(hashes, h)
	}
	slices.SortFunc(hashes, func(a, b plumbing.Hash) int { return bytes.Compare(a[:], b[:]) })
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			order := slices.Clone(hashes)
			rand.New(rand.NewPCG(uint64(g), 0)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			for n, h := range order {
				if g == 0 && n%100 == 0 {
					r.packs.rescan()
				}
				want := blobs[h]
				data, err := r.readBlob(h)
				if len(want) > flagrepo.MaxFileSize {
					var tl *TooLargeError
					if !errors.As(err, &tl) {
						errs <- fmt.Errorf("blob %s: %v; want a TooLargeError", h, err)
						return
					}
					continue
				}
				if err != nil || !bytes.Equal(data, want) {
					errs <- fmt.Errorf("blob %s: %d bytes, %v", h, len(data), err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzPatch applies arbitrary deltas to arbitrary bases: an error or a
// result, never a panic.
func FuzzPatch(f *testing.F) {
	base := []byte("0123456789abcdef")
	f.Add(base, delta(16, 4, copyOp(2, 4)))
	f.Add(base, delta(16, 8, copyOp(12, 8)))
	f.Add(base, delta(16, 3, insertOp("xyz")))
	f.Add(base, delta(16, 3, insertOp("xyzw")))
	f.Add(base, delta(16, 1, []byte{0}))
	f.Add(base, delta(16, 0x10000, copyOp(0, 0x10000)))
	f.Add(base, delta(16, 2, []byte{0xff, 1, 2, 3, 4, 5, 6, 7}))
	f.Add(base, delta(16, 2, []byte{0xff, 1}))
	f.Add([]byte{}, delta(0, 1, copyOp(0, 1)))
	f.Fuzz(func(t *testing.T, base, d []byte) {
		src, n1 := uvarint(d)
		if n1 == 0 {
			return
		}
		tgt, n2 := uvarint(d[n1:])
		if n2 == 0 || tgt > 1<<20 {
			return
		}
		_ = src
		out, err := applyDelta(base, d[n1+n2:], int64(tgt))
		if err == nil && len(out) != int(tgt) {
			t.Fatalf("%d bytes; want %d", len(out), tgt)
		}
	})
}

func TestPatch(t *testing.T) {
	base := []byte("0123456789abcdef")
	big := bytes.Repeat([]byte("x"), 0x10000+10)
	for _, c := range []struct {
		base  []byte
		delta []byte
		tgt   int
		want  string
	}{
		{base, append(copyOp(2, 4), insertOp("--")...), 6, "2345--"},
		{base, copyOp(0, 16), 16, string(base)},
		{big, copyOp(5, 0x10000), 0x10000, string(big[5 : 5+0x10000])},
		{base, copyOp(0x01000000, 1), 1, "error"},
		{base, copyOp(15, 2), 2, "error"},
		{base, copyOp(0, 4), 3, "error"},
		{base, insertOp("ab"), 1, "error"},
		{base, []byte{3, 'a'}, 3, "error"},
		{base, []byte{0x80 | 0x0f, 1}, 1, "error"},
	} {
		out, err := applyDelta(c.base, c.delta, int64(c.tgt))
		if c.want == "error" {
			if err == nil {
				t.Errorf("delta %x: %q; want an error", c.delta, out)
			}
		} else if err != nil || string(out) != c.want {
			t.Errorf("delta %x: %q, %v; want %q", c.delta, out, err, c.want)
		}
	}
}
