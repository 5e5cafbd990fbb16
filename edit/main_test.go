package edit

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/gitflags/gitflags/flagrepo"
)

// flagrepo.Load runs worker goroutines: none may outlive a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memFiles is a repository in memory, by path.
type memFiles map[string][]byte

func (m memFiles) ReadFile(path string) ([]byte, error) {
	if data, ok := m[path]; ok {
		return data, nil
	}
	return nil, fmt.Errorf("read %s: %w", path, fs.ErrNotExist)
}

// apply returns m with changes made.
func (m memFiles) apply(changes map[string][]byte) memFiles {
	out := maps.Clone(m)
	for p, data := range changes {
		if data == nil {
			delete(out, p)
		} else {
			out[p] = data
		}
	}
	return out
}

// load validates m as flagrepo does before a commit.
func (m memFiles) load() (*flagrepo.Snapshot, error) {
	var files []flagrepo.File
	for _, p := range slices.Sorted(maps.Keys(m)) {
		data := m[p]
		files = append(files, flagrepo.File{Path: p, Size: int64(len(data)), Read: func() ([]byte, error) { return data, nil }})
	}
	return flagrepo.Load(flagrepo.WorkingRevision(), files, nil)
}

// template reads flags-repo-template and loads it.
func template(t testing.TB) (*flagrepo.Snapshot, memFiles) {
	t.Helper()
	list, err := flagrepo.DirFiles(filepath.Join("..", "flags-repo-template"))
	if err != nil {
		t.Fatal(err)
	}
	m := memFiles{}
	for _, f := range list {
		data, err := f.Read()
		if err != nil {
			t.Fatal(err)
		}
		m[f.Path] = data
	}
	snap, err := m.load()
	if err != nil {
		t.Fatal(err)
	}
	return snap, m
}

// checkEdit checks a valid edit: its summary, that it changes exactly the
// files of want (content "" = deleted) to exactly those bytes, and that the
// result is a valid repository.
func checkEdit(t *testing.T, files memFiles, res Result, err error, summary string, want map[string]string) {
	t.Helper()
	if err != nil {
		t.Fatalf("edit failed: %v", err)
	}
	if res.Summary != summary {
		t.Errorf("summary %q, want %q", res.Summary, summary)
	}
	if strings.Contains(res.Summary, "\n") {
		t.Errorf("summary %q is not one line", res.Summary)
	}
	if got, w := slices.Sorted(maps.Keys(res.Changes)), slices.Sorted(maps.Keys(want)); !slices.Equal(got, w) {
		t.Errorf("changed files %q, want %q", got, w)
	}
	for p, content := range want {
		got, ok := res.Changes[p]
		switch {
		case !ok:
		case content == "" && got != nil:
			t.Errorf("%s: want it deleted, got\n%s", p, got)
		case content != "" && string(got) != content:
			t.Errorf("%s: got\n%s\nwant\n%s", p, got, content)
		}
	}
	if _, err := files.apply(res.Changes).load(); err != nil {
		t.Errorf("the edited repository is invalid: %v", err)
	}
}

// checkError checks that err is an *InputError for field, or a
// *NotFoundError of kind when field starts with "404 ".
func checkError(t *testing.T, res Result, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error (summary %q), want one for %s", res.Summary, field)
	}
	if len(res.Changes) > 0 {
		t.Errorf("changes with an error: %v", slices.Collect(maps.Keys(res.Changes)))
	}
	if kind, ok := strings.CutPrefix(field, "404 "); ok {
		var nf *NotFoundError
		if !errors.As(err, &nf) || nf.Kind != kind {
			t.Errorf("error %v (%T), want a NotFoundError for a %s", err, err, kind)
		}
		return
	}
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T), want an InputError", err, err)
	}
	if ie.Field != field {
		t.Errorf("error %q names field %q, want %q", err, ie.Field, field)
	}
	if ie.Message == "" || !strings.HasPrefix(err.Error(), field) {
		t.Errorf("error %q does not start with its field %q and a message", err, field)
	}
}

func ptr[T any](v T) *T { return &v }

func value(v flagrepo.Value) flagrepo.OptionalValue {
	return flagrepo.OptionalValue{Set: true, Value: v}
}
