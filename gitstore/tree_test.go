package gitstore

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/gitflags/gitflags/repogen/gittest"
)

// storeTree writes a tree object with the given raw content into r.
func storeTree(t *testing.T, r *Repo, content string) plumbing.Hash {
	t.Helper()
	o := r.st.NewEncodedObject()
	o.SetType(plumbing.TreeObject)
	w, err := o.Writer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	h, err := r.st.SetEncodedObject(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestReadTreeMatchesGoGit: readTree decodes trees as go-git does, modes
// canonicalised and malformed trees refused, and takes the names of
// unchanged entries from the previous entries.
func TestReadTreeMatchesGoGit(t *testing.T) {
	dir, _ := newRepo(t, minimal)
	r := open(t, dir)
	hash := func(b byte) string { return strings.Repeat(string(rune(b)), 20) }
	entry := func(mode, name string, b byte) string { return mode + " " + name + "\x00" + hash(b) }
	valid := []string{
		"",
		entry("100644", "a.json", 1) + entry("100755", "b.sh", 2) + entry("100664", "c", 3) + entry("120000", "d", 4) +
			entry("160000", "e", 5) + entry("40000", "f", 6) + entry("040000", "g", 7) + entry("100600", "h", 8) + entry("777", "i", 9),
		entry("100644", "only.json", 1),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, content := range valid {
		h := storeTree(t, r, content)
		want, err := object.GetTree(r.st, h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.readTree(h, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want.Entries) || (len(got) > 0 && !reflect.DeepEqual(got, want.Entries)) {
			t.Errorf("%q: read %v, go-git reads %v", content, got, want.Entries)
		}
	}
	malformed := []string{
		"100644",                                 // no mode terminator
		"100644 a",                               // no name terminator
		"100644 \x00" + hash(1),                  // empty name
		"100644 a\x00" + hash(1)[:10],            // truncated id
		"1x0644 a\x00" + hash(1),                 // not octal
		" a\x00" + hash(1),                       // no mode
		"77777777777777 a\x00" + hash(1),         // mode overflows
		entry("100644", "a", 1) + "100644 b\x00", // second entry truncated
	}
	for _, content := range malformed {
		h := storeTree(t, r, content)
		_, gerr := object.GetTree(r.st, h)
		_, err := r.readTree(h, nil)
		if err == nil || gerr == nil || !errors.Is(err, object.ErrMalformedTree) {
			t.Errorf("%q: error %v, go-git's %v", content, err, gerr)
		}
	}

	// Names found in the previous entries are shared.
	old := []object.TreeEntry{{Name: "a.json", Mode: filemode.Regular}, {Name: "c.json", Mode: filemode.Regular}}
	h := storeTree(t, r, entry("100644", "a.json", 1)+entry("100644", "b.json", 2)+entry("100644", "c.json", 3))
	got, err := r.readTree(h, old)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Name != "a.json" || got[1].Name != "b.json" || got[2].Name != "c.json" {
		t.Fatalf("read %v", got)
	}
	if unsafe.StringData(got[0].Name) != unsafe.StringData(old[0].Name) || unsafe.StringData(got[2].Name) != unsafe.StringData(old[1].Name) {
		t.Error("the names of unchanged entries are new strings")
	}
}

// TestTreeDataMatchesGit reads every tree of a repository whose trees are
// loose, then packed with deltas (several commits changing a few entries of
// large directories), and compares each with git cat-file.
func TestTreeDataMatchesGit(t *testing.T) {
	files := map[string]string{"gitflags.json": `{"format_version": 1, "project": {"id": 1, "name": "T"}}`}
	for i := range 300 {
		files[fmt.Sprintf("features/f%03d.json", i)] = fmt.Sprintf(`{"id": %d, "default": {"enabled": true}}`, i+1)
		files[fmt.Sprintf("environments/e/features/f%03d.json", i)] = `{"enabled": false}`
	}
	dir, _ := newRepo(t, files)
	for c := range 5 {
		writeFiles(t, dir, map[string]string{
			fmt.Sprintf("features/f%03d.json", c*7):              fmt.Sprintf(`{"id": %d, "default": {"enabled": false}}`, c*7+1),
			fmt.Sprintf("environments/e/features/new%d.json", c): `{"enabled": true}`,
		})
		gittest.CommitAll(t, dir, fmt.Sprintf("change %d", c))
	}
	check := func(layout string) {
		r := open(t, dir)
		trees := strings.Fields(gittest.Run(t, dir, "cat-file", "--batch-all-objects", "--batch-check=%(objecttype) %(objectname)"))
		n := 0
		for i := 0; i+1 < len(trees); i += 2 {
			if trees[i] != "tree" {
				continue
			}
			h := plumbing.NewHash(trees[i+1])
			want := gittest.Run(t, dir, "cat-file", "tree", h.String())
			r.mu.Lock()
			got, err := r.treeData(h)
			r.mu.Unlock()
			// gittest.Run trims the output's white space.
			if err != nil || strings.TrimSpace(string(got)) != want {
				t.Fatalf("%s: tree %s: %v, %d bytes, git has %d", layout, h, err, len(got), len(want))
			}
			n++
		}
		if n < 10 {
			t.Fatalf("%s: only %d trees", layout, n)
		}
	}
	check("loose")
	gittest.Run(t, dir, "repack", "-adf", "--depth=50", "--window=250")
	if loose := gittest.Run(t, dir, "count-objects"); !strings.HasPrefix(loose, "0 objects") {
		t.Fatalf("objects left loose: %s", loose)
	}
	check("packed")
}
