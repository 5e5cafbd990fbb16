package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitflags/gitflags/connlimit"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/served"
)

// streamFixture serves the template repository and publishes edits of it as
// new revisions, one second apart.
type streamFixture struct {
	t    *testing.T
	s    *Server
	repo memRepo
	snap *flagrepo.Snapshot
	n    int
	url  string
}

var streamEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newStreamFixture publishes the template and serves it on loopback with
// srv's settings (nil: an httptest server), through wrap's listener when
// wrap is not nil.
func newStreamFixture(t *testing.T, opts Options, srv *http.Server, wrap ...func(net.Listener) net.Listener) *streamFixture {
	t.Helper()
	opts.Log = ofrepQuietLog
	f := &streamFixture{t: t, s: New(opts), repo: readMemRepo(t, filepath.Join("..", "flags-repo-template"))}
	f.commit(nil)
	if srv == nil {
		ts := httptest.NewServer(f.s.Handler())
		t.Cleanup(ts.Close)
		t.Cleanup(f.s.CloseStreams) // runs first: Close waits for handlers
		f.url = ts.URL
		return f
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wrap {
		ln = w(ln)
	}
	srv.Handler = f.s.Handler()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		f.s.CloseStreams()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	f.url = "http://" + ln.Addr().String()
	return f
}

// commit applies change (nil: none) and publishes the result as the next
// revision.
func (f *streamFixture) commit(change func(r memRepo)) {
	f.t.Helper()
	if change != nil {
		change(f.repo)
	}
	f.n++
	rev := flagrepo.Revision{SHA: fmt.Sprintf("%040x", f.n), Time: streamEpoch.Add(time.Duration(f.n) * time.Second)}
	snap, err := flagrepo.Load(rev, f.repo.Files(), f.snap)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.s.Publish(snap); err != nil {
		f.t.Fatal(err)
	}
	f.snap = snap
}

// updatedAt is the X-Flagsmith-Document-Updated-At text of the current revision.
func (f *streamFixture) updatedAt() string { return f.s.current.Load().updatedAt[0] }

// setValue sets a feature's value in an environment.
func setValue(t *testing.T, env, feature string, value any) func(memRepo) {
	return func(r memRepo) {
		path := "environments/" + env + "/features/" + feature + ".json"
		if _, ok := r[path]; !ok {
			r[path] = []byte(`{}`)
		}
		r.Edit(t, path, func(d map[string]any) { d["value"] = value })
	}
}

// sseEvent is one event (or comment, or retry field) read from a stream.
type sseEvent struct {
	id, event, data, comment, retry string
}

// sseClient reads a stream in a goroutine of its own.
type sseClient struct {
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
	done   chan struct{}
}

// openSSE opens a stream; hdr are header name/value pairs. The caller gets
// the response for any status; the stream is closed at the end of the test.
func openSSE(t *testing.T, url string, hdr ...string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &sseClient{resp: resp, events: make(chan sseEvent, 1<<16), cancel: cancel, done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) read() {
	defer close(c.done)
	defer close(c.events)
	sc := bufio.NewScanner(c.resp.Body)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev != (sseEvent{}) {
				c.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			c.events <- sseEvent{comment: line}
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				ev.id = v
			case "event":
				ev.event = v
			case "data":
				ev.data += v
			case "retry":
				ev.retry = v
			}
		}
	}
}

func (c *sseClient) close() {
	c.cancel()
	_ = c.resp.Body.Close()
	for range c.events { // drain
	}
	<-c.done
}

// next returns the next event, skipping comments; it fails when the stream
// ends or nothing comes for 20 s (a guard, not a measurement).
func (c *sseClient) next(t *testing.T) sseEvent {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatal("the stream ended")
			}
			if ev.comment != "" {
				continue
			}
			return ev
		case <-timeout:
			t.Fatal("no event within 20 s")
		}
	}
}

// ended reports whether the stream ends (guard: 20 s), skipping what comes before.
func (c *sseClient) ended(t *testing.T) bool {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// eventually polls cond until it holds (guard: 20 s).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// updatedAtOf decodes an environment_updated event's updated_at.
func updatedAtOf(t *testing.T, ev sseEvent) float64 {
	t.Helper()
	if ev.event != "environment_updated" {
		t.Fatalf("event %q, want environment_updated (%+v)", ev.event, ev)
	}
	var d struct {
		UpdatedAt *float64 `json:"updated_at"`
	}
	if err := json.Unmarshal([]byte(ev.data), &d); err != nil || d.UpdatedAt == nil {
		t.Fatalf("data %q: %v", ev.data, err)
	}
	return *d.UpdatedAt
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFlagsmithStream(t *testing.T) {
	f := newStreamFixture(t, Options{}, nil)
	url := func(key string) string { return f.url + "/sse/environments/" + key + "/stream" }
	prod := openSSE(t, url(prodKey), "Origin", "http://example.com")
	if prod.resp.StatusCode != 200 || prod.resp.Header.Get("Content-Type") != "text/event-stream" || prod.resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("status %d, headers %v", prod.resp.StatusCode, prod.resp.Header)
	}
	if prod.resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("no CORS headers: %v", prod.resp.Header)
	}
	hdr := prod.resp.Header.Get("X-Flagsmith-Document-Updated-At")
	if hdr != f.updatedAt() {
		t.Errorf("X-Flagsmith-Document-Updated-At %q, want %q", hdr, f.updatedAt())
	}
	if ev := prod.next(t); ev.retry != "3000" {
		t.Errorf("first field %+v, want retry: 3000", ev)
	}
	// The current value on connect: the header's text, exactly.
	ev := prod.next(t)
	if got := updatedAtOf(t, ev); got != mustFloat(t, hdr) || ev.data != `{"updated_at": `+hdr+`}` {
		t.Errorf("on connect: data %q, want updated_at %s", ev.data, hdr)
	}
	stg := openSSE(t, url(stagingKey))
	stg.next(t) // retry
	stg.next(t) // current

	// A staging change: staging hears of it, production does not (its next
	// event is the production change after it).
	f.commit(setValue(t, "staging", "search_provider", "solr"))
	stagingRev := f.updatedAt()
	if got := updatedAtOf(t, stg.next(t)); got != mustFloat(t, stagingRev) {
		t.Errorf("staging event updated_at %v, want %s", got, stagingRev)
	}
	f.commit(nil) // a revision that changes nothing anywhere
	f.commit(setValue(t, "production", "max_cart_items", 77))
	prodRev := f.updatedAt()
	if got := updatedAtOf(t, prod.next(t)); got != mustFloat(t, prodRev) {
		t.Errorf("production's next event has updated_at %v, want the production revision's %s (staging's is %s)", got, prodRev, stagingRev)
	}
	// The SDK refetches: the flags and the header match the event.
	resp, body := get(t, f.url+"/api/v1/flags/", prodKey)
	if resp.Header.Get("X-Flagsmith-Document-Updated-At") != prodRev || !strings.Contains(string(body), `"feature_state_value":77`) {
		t.Errorf("after the event: header %q, flags %s", resp.Header.Get("X-Flagsmith-Document-Updated-At"), body)
	}
	// Staging heard nothing of the production change: its next event is the next staging change.
	f.commit(setValue(t, "staging", "search_provider", "vespa"))
	if got := updatedAtOf(t, stg.next(t)); got != mustFloat(t, f.updatedAt()) {
		t.Errorf("staging's next event has updated_at %v, want %s", got, f.updatedAt())
	}

	// Keys: only client keys, in the path.
	for _, key := range []string{"nope", "ser.whatever"} {
		resp, body := send(t, "GET", url(key), "")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("key %q: status %d %s", key, resp.StatusCode, body)
		}
		checkErrorShape(t, "stream with key "+key, "/sse/", resp, body)
	}

	// Removing an environment ends its streams.
	f.commit(func(r memRepo) {
		for p := range r {
			if strings.HasPrefix(p, "environments/staging/") {
				delete(r, p)
			}
		}
	})
	if !stg.ended(t) {
		t.Error("the staging stream did not end when staging was removed")
	}

	// CloseStreams ends the streams and refuses new ones.
	f.s.CloseStreams()
	if !prod.ended(t) {
		t.Error("the stream did not end at CloseStreams")
	}
	resp, body = send(t, "GET", url(prodKey), "")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("after CloseStreams: status %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

func TestStreamBeforeFirstRevision(t *testing.T) {
	s := New(Options{Log: ofrepQuietLog})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for _, path := range []string{"/sse/environments/" + prodKey + "/stream", "/ofrep/v1/event-stream?key=" + prodKey} {
		resp, body := send(t, "GET", ts.URL+path, "")
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d %s", path, resp.StatusCode, body)
		}
		checkErrorShape(t, path, path, resp, body)
	}
}

// TestStreamKeepAlive: keep-alive comments come at the configured interval,
// and the stream outlives the server's read and write timeouts (which
// would otherwise cancel it).
func TestStreamKeepAlive(t *testing.T) {
	f := newStreamFixture(t, Options{StreamKeepAlive: 20 * time.Millisecond},
		&http.Server{ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond})
	c := openSSE(t, f.url+"/sse/environments/"+prodKey+"/stream")
	comments := 0
	timeout := time.After(20 * time.Second)
	for comments < 20 { // 20 keep-alives: past both timeouts
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatalf("the stream ended after %d keep-alives", comments)
			}
			if ev.comment != "" {
				if ev.comment != ": keep-alive" {
					t.Fatalf("comment %q", ev.comment)
				}
				comments++
			}
		case <-timeout:
			t.Fatalf("%d keep-alives in 20 s", comments)
		}
	}
	f.commit(setValue(t, "production", "max_cart_items", 5))
	for {
		ev := c.next(t)
		if ev.event == "environment_updated" && updatedAtOf(t, ev) == mustFloat(t, f.updatedAt()) {
			break
		}
	}
}

// TestStreamConnectionLimit: streams count in connlimit's streaming class;
// past its cap a stream gets a 503 with Retry-After, and a closed stream
// frees its place.
func TestStreamConnectionLimit(t *testing.T) {
	lim := connlimit.New(connlimit.Options{MaxConns: 16, MaxStreams: 1, FileLimit: 1024})
	f := newStreamFixture(t, Options{}, &http.Server{ConnState: lim.ConnState, ConnContext: lim.ConnContext}, lim.Listener)
	first := openSSE(t, f.url+"/sse/environments/"+prodKey+"/stream")
	if first.resp.StatusCode != 200 {
		t.Fatalf("first stream: %d", first.resp.StatusCode)
	}
	first.next(t)
	for _, path := range []string{"/sse/environments/" + prodKey + "/stream", "/ofrep/v1/event-stream?key=" + prodKey} {
		resp, body := send(t, "GET", f.url+path, "")
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s past the cap: status %d Retry-After %q %s", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		checkErrorShape(t, path, path, resp, body)
	}
	first.close()
	eventually(t, "the closed stream frees its place", func() bool {
		_, streams := lim.Open()
		return streams == 0
	})
	again := openSSE(t, f.url+"/sse/environments/"+prodKey+"/stream")
	if again.resp.StatusCode != 200 {
		t.Errorf("after the first closed: %d", again.resp.StatusCode)
	}
}

// smallBuffers makes accepted connections' send buffers small, so that a
// client that does not read blocks the server's writes soon.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestSlowReaderDropped: a client that never reads is dropped after the
// write deadline, while a client that reads keeps getting its events.
func TestSlowReaderDropped(t *testing.T) {
	f := newStreamFixture(t, Options{StreamKeepAlive: time.Millisecond, StreamWriteTimeout: 100 * time.Millisecond}, nil)
	// Re-serve through a listener with small send buffers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.s.Handler()}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(smallBuffers{ln}) }()
	defer func() { f.s.CloseStreams(); _ = srv.Close(); <-done }()
	base := "http://" + ln.Addr().String()

	stuck, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	_ = stuck.(*net.TCPConn).SetReadBuffer(1024)
	if _, err := io.WriteString(stuck, "GET /sse/environments/"+prodKey+"/stream HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stuck client subscribed", func() bool { return f.s.hub.Subscribers("production") == 1 })
	reader := openSSE(t, base+"/ofrep/v1/event-stream?key="+prodKey)
	reader.next(t) // retry
	eventually(t, "the stuck client is dropped", func() bool { return f.s.hub.Subscribers("production") == 1 })
	f.commit(setValue(t, "production", "max_cart_items", 9))
	want := served.OFREPConfigID(f.s.current.Load().Env("production").Digest())
	for {
		if ev := reader.next(t); ev.id == want {
			break
		}
	}
}

// TestManyStreams: many streams on two environments; a change reaches every
// stream of its environment and no stream of the other.
func TestManyStreams(t *testing.T) {
	f := newStreamFixture(t, Options{}, nil)
	const perEnv = 100
	var mu sync.Mutex
	var prod, stg []*sseClient
	var wg sync.WaitGroup
	for i := range 2 * perEnv {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := prodKey
			if i%2 == 1 {
				key = stagingKey
			}
			c := openSSE(t, f.url+"/sse/environments/"+key+"/stream")
			mu.Lock()
			defer mu.Unlock()
			if key == prodKey {
				prod = append(prod, c)
			} else {
				stg = append(stg, c)
			}
		}()
	}
	wg.Wait()
	for _, c := range append(append([]*sseClient(nil), prod...), stg...) {
		c.next(t) // retry
		c.next(t) // current
	}
	f.commit(setValue(t, "production", "max_cart_items", 1))
	p := mustFloat(t, f.updatedAt())
	f.commit(setValue(t, "staging", "search_provider", "x"))
	s := mustFloat(t, f.updatedAt())
	for _, c := range prod {
		if got := updatedAtOf(t, c.next(t)); got != p {
			t.Fatalf("production stream: updated_at %v, want %v", got, p)
		}
	}
	for _, c := range stg {
		if got := updatedAtOf(t, c.next(t)); got != s {
			t.Fatalf("staging stream: updated_at %v, want %v (production's is %v)", got, s, p)
		}
	}
}
