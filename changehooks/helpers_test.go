package changehooks

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// repo is a flag repository in memory, loaded with content hashes (as from
// Git) so that a snapshot loaded with the previous one shares its unchanged
// documents.
type repo map[string][]byte

func template(t testing.TB) repo {
	t.Helper()
	files, err := flagrepo.DirFiles(filepath.Join("..", "flags-repo-template"))
	if err != nil {
		t.Fatal(err)
	}
	r := repo{}
	for _, f := range files {
		if r[f.Path], err = f.Read(); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r repo) load(t testing.TB, sha string, prev *flagrepo.Snapshot) *flagrepo.Snapshot {
	t.Helper()
	var files []flagrepo.File
	for _, p := range slices.Sorted(maps.Keys(r)) {
		data := r[p]
		sum := sha1.Sum(data)
		files = append(files, flagrepo.File{Path: p, Mode: flagrepo.ModeRegular, Hash: hex.EncodeToString(sum[:]), Size: int64(len(data)),
			Read: func() ([]byte, error) { return data, nil }})
	}
	rev := flagrepo.Revision{SHA: sha, Author: "Ann Example", AuthorEmail: "ann@example.com", Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Message: "commit " + sha}
	snap, err := flagrepo.Load(rev, files, prev)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func (r repo) edit(t testing.TB, path string, fn func(doc map[string]any)) repo {
	t.Helper()
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(string(r[path])))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	fn(doc)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	c := maps.Clone(r)
	c[path] = append(out, '\n')
	return c
}

// history is a sequence of snapshots, each loaded with the previous one.
type history struct {
	t     *testing.T
	repo  repo
	snaps []*flagrepo.Snapshot
}

func newHistory(t *testing.T) *history {
	h := &history{t: t, repo: template(t)}
	h.snaps = append(h.snaps, h.repo.load(t, "r0", nil))
	return h
}

func (h *history) head() *flagrepo.Snapshot { return h.snaps[len(h.snaps)-1] }

// commit edits a file and returns the old and new snapshots.
func (h *history) commit(path string, fn func(doc map[string]any)) (old, new *flagrepo.Snapshot) {
	h.t.Helper()
	h.repo = h.repo.edit(h.t, path, fn)
	old = h.head()
	new = h.repo.load(h.t, "r"+strconv.Itoa(len(h.snaps)), old)
	h.snaps = append(h.snaps, new)
	return old, new
}

// toggle flips the enabled state of feature in env.
func (h *history) toggle(env, feature string) (old, new *flagrepo.Snapshot) {
	return h.commit("environments/"+env+"/features/"+feature+".json", func(d map[string]any) { d["enabled"] = d["enabled"] != true })
}

// request is a delivery a receiver got.
type request struct {
	header  http.Header
	body    []byte
	payload Payload
}

// receiver is a real HTTP server on loopback that records deliveries and
// answers with the statuses of answer (200 once they run out).
type receiver struct {
	*httptest.Server
	got chan request

	mu      sync.Mutex
	answers []int
	block   chan struct{} // when not nil, the handler waits for it to close (or the request to end)
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	rc := &receiver{got: make(chan request, 100), answers: answers}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		req := request{header: r.Header.Clone(), body: body}
		if err := json.Unmarshal(body, &req.payload); err != nil {
			t.Errorf("body is not a payload: %v: %s", err, body)
		}
		rc.got <- req
		rc.mu.Lock()
		status, block := http.StatusOK, rc.block
		if len(rc.answers) > 0 {
			status, rc.answers = rc.answers[0], rc.answers[1:]
		}
		rc.mu.Unlock()
		if block != nil {
			select {
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// next returns the next delivery received.
func (rc *receiver) next(t *testing.T) request {
	t.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no delivery received")
		return request{}
	}
}

// start returns a started Sender with quick retries, closed at the end of
// the test.
func start(t *testing.T, opts Options) *Sender {
	t.Helper()
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = time.Millisecond, 4*time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s := New(opts)
	s.Start(t.Context())
	t.Cleanup(s.Close)
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// eventually waits until cond holds (the deliveries run in the background).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// count returns the value of a counter or gauge of s for webhook name.
func deliveries(s *Sender, name, result string) float64 {
	return testutil.ToFloat64(s.metrics.deliveries.WithLabelValues(name, result))
}

func testutilRevisions(s *Sender, outcome string) float64 {
	return testutil.ToFloat64(s.metrics.revisions.WithLabelValues(outcome))
}

func testutilRetries(s *Sender, name string) float64 {
	return testutil.ToFloat64(s.metrics.retries.WithLabelValues(name))
}

func revisions(s *Sender) float64 {
	return testutil.ToFloat64(s.metrics.revisions.WithLabelValues("queued")) + testutil.ToFloat64(s.metrics.revisions.WithLabelValues("unchanged"))
}

func hook(name, url string, envs ...string) Hook {
	return Hook{Name: name, URL: url, Environments: envs, Secret: []byte("s3cret-" + name)}
}
