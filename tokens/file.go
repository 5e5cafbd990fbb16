package tokens

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CheckInterval is how often, at most, a File looks at its file for a
// change: on a Lookup at least this long after the previous look.
const CheckInterval = time.Second

// File is a Source read from a tokens file and re-read when the file
// changes (another size, modification time or file, e.g. after an editor
// or a deployment renamed a new version into place). A new version that is
// invalid is logged once and the last valid version keeps serving; a
// removed file has no tokens until it is back. File starts no goroutine.
type File struct {
	path string
	log  *slog.Logger
	now  func() time.Time

	mu      sync.Mutex
	checked time.Time   // when the file was last looked at
	info    fs.FileInfo // the version last read (valid or not); nil: none
	set     *Set        // the last valid version
}

// OpenFile reads the tokens file at path (see Parse). At start the file
// must exist and be valid: the error names every problem. Problems found
// on a later reload are logged on log (nil: slog.Default()).
func OpenFile(path string, log *slog.Logger) (*File, error) {
	if log == nil {
		log = slog.Default()
	}
	f := &File{path: path, log: log, now: time.Now}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	set, err := read(path)
	if err != nil {
		return nil, err
	}
	f.checked, f.info, f.set = f.now(), info, set
	return f, nil
}

// Lookup implements Source with the file's current version.
func (f *File) Lookup(secret string) (*Token, bool) {
	return f.current().Lookup(secret)
}

// current returns the tokens in force, looking at the file first when it
// was not looked at for CheckInterval.
func (f *File) current() *Set {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if d := now.Sub(f.checked); d >= 0 && d < CheckInterval {
		return f.set
	}
	f.checked = now
	info, err := os.Stat(f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if f.info != nil {
			f.log.Warn("the tokens file was removed: no token of it is accepted until it is back", "file", f.path)
		}
		f.info, f.set = nil, nil
		return nil
	case err != nil:
		// Unreadable for now (permissions, I/O): keep what was read.
		if f.info != nil {
			f.log.Error("cannot read the tokens file: its last valid version stays in force", "file", f.path, "error", err)
			f.info = nil // logged once; read again when it is back
		}
		return f.set
	case f.info != nil && os.SameFile(f.info, info) && info.Size() == f.info.Size() && info.ModTime().Equal(f.info.ModTime()):
		return f.set // unchanged
	}
	f.info = info // this version is read once, whatever its fate
	set, err := read(f.path)
	if err != nil {
		f.log.Error("the tokens file changed but is invalid: its last valid version stays in force", "file", f.path, "error", err)
		return f.set
	}
	f.set = set
	f.log.Info("tokens file reloaded", "file", f.path, "tokens", set.Len())
	return set
}

func read(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	return Parse(path, data)
}
