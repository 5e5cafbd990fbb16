package tokens

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}
func (b *lockedBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

// replace writes data to path as deployments do: a new file renamed into place.
func replace(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	replace(t, path, `{"tokens": [`+entry("old", "old-secret", "")+`]}`)
	var logs lockedBuffer
	f, err := OpenFile(path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	f.now = clock.Now
	accepts := func(secret string) bool { _, ok := f.Lookup(secret); return ok }
	if !accepts("old-secret") || accepts("new-secret") {
		t.Fatal("the first version is not in force")
	}

	// A new version: seen once CheckInterval has passed since the last look.
	replace(t, path, `{"tokens": [`+entry("new", "new-secret", "")+`]}`)
	if !accepts("old-secret") {
		t.Error("the file was looked at again within CheckInterval")
	}
	clock.Add(CheckInterval)
	if accepts("old-secret") || !accepts("new-secret") {
		t.Fatal("the new version is not in force after CheckInterval")
	}

	// An invalid version keeps the last valid one and is logged once.
	replace(t, path, `{"tokens": [{"name": "broken"}]}`)
	for range 3 {
		clock.Add(CheckInterval)
		if !accepts("new-secret") {
			t.Fatal("an invalid version replaced the valid one")
		}
	}
	if n := strings.Count(logs.String(), "is invalid"); n != 1 || !strings.Contains(logs.String(), `/tokens/0: \"email\" is missing`) {
		t.Errorf("invalid version logged %d times, want once with its problems:\n%s", n, logs.String())
	}

	// An edit in place (same file, other size) is seen too.
	if err := os.WriteFile(path, []byte(`{"tokens": [`+entry("edited", "edited-secret", "")+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	clock.Add(CheckInterval)
	if accepts("new-secret") || !accepts("edited-secret") {
		t.Fatal("an edit in place is not in force")
	}

	// A removed file has no tokens; back, it is read again.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	clock.Add(CheckInterval)
	if accepts("edited-secret") {
		t.Fatal("a removed file's token is accepted")
	}
	replace(t, path, `{"tokens": [`+entry("back", "back-secret", "")+`]}`)
	clock.Add(CheckInterval)
	if !accepts("back-secret") {
		t.Fatal("a file put back is not read")
	}
	if !strings.Contains(logs.String(), "was removed") {
		t.Errorf("removal not logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("a token in the logs:\n%s", logs.String())
	}
}

func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenFile(filepath.Join(dir, "missing.json"), nil); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(dir, "bad.json")
	replace(t, path, `{"tokens": [{"name": 1}]}`)
	if _, err := OpenFile(path, nil); err == nil || !strings.Contains(err.Error(), path+": /tokens/0/name: must be a string") {
		t.Errorf("invalid file: %v", err)
	}
}

// TestFileConcurrent: lookups from many goroutines while the file changes
// (run with -race).
func TestFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	replace(t, path, `{"tokens": [`+entry("a", "a", "")+`]}`)
	f, err := OpenFile(path, slog.New(slog.NewTextHandler(&lockedBuffer{}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	f.now = clock.Now
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				f.Lookup("a")
				clock.Add(CheckInterval)
			}
		})
	}
	for i := range 20 {
		replace(t, path, `{"tokens": [`+entry("a", "a", "")+strings.Repeat(" ", i)+`]}`)
	}
	wg.Wait()
	if _, ok := f.Lookup("a"); !ok {
		t.Error("token lost")
	}
}
