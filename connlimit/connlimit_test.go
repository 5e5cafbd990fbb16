package connlimit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs a real HTTP server on loopback behind l and returns its address.
func serve(t *testing.T, l *Limiter, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ConnState: l.ConnState, ConnContext: l.ConnContext}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l.Listener(ln))
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// client is one keep-alive connection speaking HTTP/1.1 by hand.
type client struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{Conn: c, r: bufio.NewReader(c)}
}

// send writes a GET request for path without waiting for the answer.
func (c *client) send(t *testing.T, path string) {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
}

// answer reads one response and returns its status code and body.
func (c *client) answer(t *testing.T) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (c *client) get(t *testing.T, path string) (int, string) {
	t.Helper()
	c.send(t, path)
	return c.answer(t)
}

// closedByServer reports whether the server closed c (reading gives EOF).
func (c *client) closedByServer() bool {
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := c.r.ReadByte()
	return errors.Is(err, io.EOF)
}

// waitFor polls cond until it holds, failing the test after 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

func TestIdleConnectionClosedForNewOne(t *testing.T) {
	l := New(Options{MaxConns: 3, MaxStreams: 1, MinIdle: time.Nanosecond})
	addr := serve(t, l, ok)
	var idle []*client
	for range 3 {
		c := dial(t, addr)
		if code, body := c.get(t, "/"); code != 200 || body != "ok" {
			t.Fatalf("GET = %d %q", code, body)
		}
		idle = append(idle, c)
		// The server marks the connection idle just after answering:
		// wait for it, so that the order of idleness is the order here.
		waitFor(t, "the connection to go idle", func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.idle.Len() == len(idle)
		})
	}
	// The cap is reached with three idle keep-alive connections: a fourth
	// client is answered, and the connection idle the longest is closed.
	fresh := dial(t, addr)
	if code, _ := fresh.get(t, "/"); code != 200 {
		t.Fatalf("GET on a new connection at the cap = %d", code)
	}
	if !idle[0].closedByServer() {
		t.Error("the longest-idle connection was not closed")
	}
	if code, _ := idle[2].get(t, "/"); code != 200 {
		t.Errorf("a more recently idle connection was closed too: %d", code)
	}
	if got := testutil.ToFloat64(l.idleClosed); got != 1 {
		t.Errorf("idle closed = %v, want 1", got)
	}
	if conns, _ := l.Open(); conns != 3 {
		t.Errorf("open request connections = %d, want 3", conns)
	}
}

// blocking answers "/block" only once release is closed.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/block" {
		b.entered <- struct{}{}
		<-b.release
	}
	_, _ = io.WriteString(w, "ok")
}

func TestWaitsWhenEveryConnectionIsBusy(t *testing.T) {
	l := New(Options{MaxConns: 2, MaxStreams: 1, MinIdle: time.Nanosecond})
	h := &blocking{entered: make(chan struct{}, 3), release: make(chan struct{})}
	addr := serve(t, l, h)
	busy := []*client{dial(t, addr), dial(t, addr)}
	for _, c := range busy {
		c.send(t, "/block")
		<-h.entered
	}
	third := dial(t, addr) // the kernel completes the handshake; the server does not accept yet
	third.send(t, "/")
	waitFor(t, "Accept to wait for a free connection", func() bool { return testutil.ToFloat64(l.waits) == 1 })
	if n := testutil.ToFloat64(l.idleClosed); n != 0 {
		t.Fatalf("a busy connection was closed as idle (%v)", n)
	}
	close(h.release)
	for _, c := range busy {
		if code, _ := c.answer(t); code != 200 {
			t.Fatalf("busy request = %d", code)
		}
	}
	if code, body := third.answer(t); code != 200 || body != "ok" {
		t.Fatalf("the waiting connection got %d %q", code, body)
	}
}

// streaming holds "/stream" open in the streaming class until release is
// closed; ErrTooManyStreams answers 503.
type streaming struct {
	entered chan struct{}
	release chan struct{}
}

func (s *streaming) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stream" {
		_, _ = io.WriteString(w, "ok")
		return
	}
	if err := Stream(r.Context()); err != nil {
		w.Header().Set("Retry-After", "5")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	s.entered <- struct{}{}
	select {
	case <-s.release:
	case <-r.Context().Done():
	}
}

func TestStreamsHaveTheirOwnCap(t *testing.T) {
	l := New(Options{MaxConns: 3, MaxStreams: 2, MinIdle: time.Nanosecond})
	h := &streaming{entered: make(chan struct{}, 4), release: make(chan struct{})}
	addr := serve(t, l, h)

	var streams []*client
	for range 2 {
		c := dial(t, addr)
		c.send(t, "/stream")
		<-h.entered
		streams = append(streams, c)
	}
	waitFor(t, "two streams counted", func() bool { c, s := l.Open(); return c == 0 && s == 2 })

	// Two open streams leave the request slots free: two keep-alive
	// clients are served (and a third connection for a stream below)
	// without closing anything.
	for range 2 {
		if code, _ := dial(t, addr).get(t, "/"); code != 200 {
			t.Fatalf("request beside the streams = %d", code)
		}
	}
	// A third stream is refused with 503: the streaming class is full.
	c := dial(t, addr)
	if code, body := c.get(t, "/stream"); code != http.StatusServiceUnavailable || !strings.Contains(body, "too many streaming connections") {
		t.Fatalf("stream over the cap = %d %q, want 503", code, body)
	}
	if got := testutil.ToFloat64(l.rejected); got != 1 {
		t.Errorf("rejected streams = %v, want 1", got)
	}
	if n := testutil.ToFloat64(l.idleClosed); n != 0 {
		t.Errorf("streams cost request connections: %v closed", n)
	}

	// When a stream's response ends, its keep-alive connection is a request
	// connection again.
	close(h.release)
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := http.ReadResponse(s.r, nil)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	waitFor(t, "the streams to return to the request class", func() bool { _, s := l.Open(); return s == 0 })
}

func TestMetrics(t *testing.T) {
	l := New(Options{MaxConns: 7, MaxStreams: 9})
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Collectors()...)
	addr := serve(t, l, ok)
	if code, _ := dial(t, addr).get(t, "/"); code != 200 {
		t.Fatal(code)
	}
	want := `
# HELP gitflags_connections_limit The cap on open client connections by class.
# TYPE gitflags_connections_limit gauge
gitflags_connections_limit{class="request"} 7
gitflags_connections_limit{class="stream"} 9
# HELP gitflags_connections_open Open client connections by class (request: request/response; stream: SSE and websockets).
# TYPE gitflags_connections_open gauge
gitflags_connections_open{class="request"} 1
gitflags_connections_open{class="stream"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gitflags_connections_limit", "gitflags_connections_open"); err != nil {
		t.Error(err)
	}
}

func TestDefaults(t *testing.T) {
	for _, c := range []struct {
		limit          uint64
		conns, streams int
	}{
		{1024, 384, 384},
		{20000, 8192, 11552},
		{1 << 20, 8192, 100_000},
		{64, 24, 24},
	} {
		conns, streams := Defaults(c.limit)
		if conns != c.conns || streams != c.streams {
			t.Errorf("Defaults(%d) = %d, %d; want %d, %d", c.limit, conns, streams, c.conns, c.streams)
		}
		if uint64(conns+streams) >= c.limit {
			t.Errorf("Defaults(%d) leaves no descriptor for the server's own files", c.limit)
		}
	}
	if conns, streams := New(Options{FileLimit: 1024}).Limits(); conns != 384 || streams != 384 {
		t.Errorf("New with a 1,024 file limit: %d, %d", conns, streams)
	}
}

// TestRecentlyIdleNotClosed: a connection idle for less than MinIdle may be
// carrying its next request: it is not closed, the new one waits instead.
func TestRecentlyIdleNotClosed(t *testing.T) {
	l := New(Options{MaxConns: 2, MaxStreams: 1, MinIdle: time.Hour})
	addr := serve(t, l, ok)
	first, second := dial(t, addr), dial(t, addr)
	for _, c := range []*client{first, second} {
		if code, _ := c.get(t, "/"); code != 200 {
			t.Fatal(code)
		}
	}
	third := dial(t, addr)
	third.send(t, "/")
	waitFor(t, "Accept to wait", func() bool { return testutil.ToFloat64(l.waits) == 1 })
	if code, _ := second.get(t, "/"); code != 200 {
		t.Fatalf("a recently idle connection was closed: %d", code)
	}
	first.Close() // the client leaves: its slot frees
	if code, _ := third.answer(t); code != 200 {
		t.Fatalf("the waiting connection got %d", code)
	}
	if n := testutil.ToFloat64(l.idleClosed); n != 0 {
		t.Errorf("%v recently idle connections closed", n)
	}
}

// hijacking takes over "/hijack" connections (as a websocket library does)
// and holds them until release is closed.
type hijacking struct {
	entered chan struct{}
	release chan struct{}
}

func (h *hijacking) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/hijack" {
		_, _ = io.WriteString(w, "ok")
		return
	}
	c, rw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	defer c.Close()
	_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	_ = rw.Flush()
	h.entered <- struct{}{}
	<-h.release
}

// TestHijackedConnectionIsAStream: a hijacked connection leaves the request
// class by itself, and one over the streams' cap is closed.
func TestHijackedConnectionIsAStream(t *testing.T) {
	l := New(Options{MaxConns: 1, MaxStreams: 1, MinIdle: time.Hour})
	h := &hijacking{entered: make(chan struct{}, 2), release: make(chan struct{})}
	addr := serve(t, l, h)
	ws := dial(t, addr)
	ws.send(t, "/hijack")
	if code, _ := ws.answer(t); code != http.StatusSwitchingProtocols {
		t.Fatalf("hijack = %d", code)
	}
	<-h.entered
	waitFor(t, "the hijacked connection to count as a stream", func() bool { c, s := l.Open(); return c == 0 && s == 1 })
	// The only request slot is free: a request/response client is served
	// (with MinIdle an hour, nothing idle could have been closed for it).
	plain := dial(t, addr)
	if code, _ := plain.get(t, "/"); code != 200 {
		t.Fatalf("request beside a hijacked connection = %d", code)
	}
	plain.Close()
	waitFor(t, "the request connection to close", func() bool { c, _ := l.Open(); return c == 0 })
	// A second hijack is over the streams' cap: closed.
	over := dial(t, addr)
	over.send(t, "/hijack")
	if !over.closedByServer() {
		t.Error("a hijacked connection over the streams' cap was kept")
	}
	if got := testutil.ToFloat64(l.rejected); got != 1 {
		t.Errorf("rejected = %v, want 1", got)
	}
	close(h.release)
	waitFor(t, "the stream to close", func() bool { c, s := l.Open(); return c == 0 && s == 0 })
}

// TestStreamEndingAtTheRequestCap: a stream whose response ends while every
// request slot is taken is closed rather than put over the cap.
func TestStreamEndingAtTheRequestCap(t *testing.T) {
	l := New(Options{MaxConns: 1, MaxStreams: 1, MinIdle: time.Hour})
	h := &streaming{entered: make(chan struct{}, 1), release: make(chan struct{})}
	addr := serve(t, l, h)
	st := dial(t, addr)
	st.send(t, "/stream")
	<-h.entered
	if code, _ := dial(t, addr).get(t, "/"); code != 200 { // takes the one request slot, stays idle
		t.Fatal(code)
	}
	close(h.release)
	if code, _ := st.answer(t); code != 200 {
		t.Fatalf("stream = %d", code)
	}
	if !st.closedByServer() {
		t.Error("the stream's connection went back to a full request class")
	}
	if c, s := l.Open(); c > 1 || s != 0 {
		t.Errorf("open = %d requests, %d streams; cap 1 request", c, s)
	}
}

// TestCountsUnderLoad runs many clients at once against small caps, with
// streams, hijacks and clients leaving, and checks that every slot is given
// back exactly once.
func TestCountsUnderLoad(t *testing.T) {
	l := New(Options{MaxConns: 4, MaxStreams: 3, MinIdle: time.Nanosecond})
	release := make(chan struct{})
	close(release) // streams and hijacks end at once
	mux := http.NewServeMux()
	mux.Handle("/stream", &streaming{entered: make(chan struct{}, 1000), release: release})
	mux.Handle("/hijack", &hijacking{entered: make(chan struct{}, 1000), release: release})
	mux.Handle("/", ok)
	addr := serve(t, l, mux)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				path := []string{"/", "/stream", "/hijack", "/"}[(i+j)%4]
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path)
				if j%3 != 0 { // some clients leave without reading
					_, _ = http.ReadResponse(bufio.NewReader(c), nil)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	waitFor(t, "every connection to be released", func() bool {
		c, s := l.Open()
		return c == 0 && s == 0
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.idle.Len() != 0 {
		t.Errorf("%d connections left on the idle list", l.idle.Len())
	}
}
