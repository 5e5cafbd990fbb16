package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a log sink safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAccessLog: one JSON line per request, with method, path, status,
// bytes, duration and remote address, and nothing of the query string or
// the headers.
func TestAccessLog(t *testing.T) {
	var logs lockedBuffer
	h := AccessLog(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/teapot":
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, "short")
			io.WriteString(w, " and stout")
		case "/flush":
			io.WriteString(w, "a")
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("Flush through the access log: %v", err)
			}
		}
	}), slog.New(slog.NewJSONHandler(&logs, nil)))
	ts := httptest.NewServer(h)
	defer ts.Close()

	for _, path := range []string{"/teapot?identifier=secret-identity", "/empty", "/flush"} {
		req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader("body"))
		req.Header.Set("X-Environment-Key", "secret-key")
		req.Header.Set("Authorization", "Bearer secret-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	out := logs.String()
	if strings.Contains(out, "secret") {
		t.Errorf("the access log shows a query string or header:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), out)
	}
	type entry struct {
		Level, Msg, Method, Path, Remote string
		Status                           int
		Bytes                            int64
		Duration                         *float64
	}
	want := []entry{
		{Path: "/teapot", Status: 418, Bytes: 15},
		{Path: "/empty", Status: 200, Bytes: 0},
		{Path: "/flush", Status: 200, Bytes: 1},
	}
	for i, line := range lines {
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		w := want[i]
		if e.Level != "INFO" || e.Msg != "request" || e.Method != "POST" || e.Path != w.Path || e.Status != w.Status || e.Bytes != w.Bytes ||
			e.Duration == nil || *e.Duration < 0 || !strings.HasPrefix(e.Remote, "127.0.0.1:") {
			t.Errorf("line %d: %s\nwant path %s, status %d, bytes %d", i, line, w.Path, w.Status, w.Bytes)
		}
	}
}

// TestAccessLogLeavesOutKeys: the Flagsmith realtime path carries a client
// key; the access log writes the route instead.
func TestAccessLogLeavesOutKeys(t *testing.T) {
	var logs lockedBuffer
	h := AccessLog(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), slog.New(slog.NewJSONHandler(&logs, nil)))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/sse/environments/prd_secretish_key/stream")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if out := logs.String(); strings.Contains(out, "prd_secretish_key") || !strings.Contains(out, `"/sse/environments/{key}/stream"`) {
		t.Errorf("access log: %s", out)
	}
}
