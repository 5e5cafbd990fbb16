package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/identities"
)

// bulkBody is a bulk-identities body of n identities named prefix-i with
// traits traits each, most of a megabyte for n=100, traits=60.
func bulkBody(t *testing.T, prefix string, n, traits int) []byte {
	t.Helper()
	data := make([]any, n)
	for i := range data {
		ts := make([]map[string]any, traits)
		for j := range ts {
			ts[j] = map[string]any{"trait_key": fmt.Sprintf("trait_%03d", j), "trait_value": strings.Repeat("v", 80)}
		}
		data[i] = map[string]any{"identifier": fmt.Sprintf("%s-%d", prefix, i), "traits": ts}
	}
	b, err := json.Marshal(map[string]any{"data": data})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawRequest writes a POST /api/v1/bulk-identities request announcing the
// whole body but sending only its first sent bytes, then ends the
// connection with end.
func rawRequest(t *testing.T, addr string, body []byte, sent int, end func(*net.TCPConn)) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*net.TCPConn)
	t.Cleanup(func() { _ = conn.Close() })
	head := "POST /api/v1/bulk-identities HTTP/1.1\r\nHost: gitflags\r\nContent-Type: application/json\r\n" +
		"X-Environment-Key: " + fsProdServerKey + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := conn.Write(append([]byte(head), body[:sent]...)); err != nil {
		t.Fatal(err)
	}
	end(conn)
	return conn
}

// routeCount waits until the server has counted n requests to route and
// returns its metrics text.
func routeCount(t *testing.T, url, route string, n int) string {
	t.Helper()
	want := fmt.Sprintf("gitflags_http_request_duration_seconds_count{route=%q} %d\n", route, n)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), want) {
			return string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never counted %d requests to %s", n, route)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBulkIdentitiesClientGoesAway: a client that half-closes or closes
// after sending a whole request gets it carried out (and, half-closed, its
// answer); one that closes before the body ends stores nothing. Neither is
// a server error: no 5xx, no warning or error logged.
func TestBulkIdentitiesClientGoesAway(t *testing.T) {
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: "gone", Time: fsFixtureTime}, fsFixtureFiles(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := identities.Open(filepath.Join(t.TempDir(), "identities.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	logs := &lockedBuffer{}
	srv := New(Options{Identities: store, Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err := srv.Publish(snap); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	addr := ts.Listener.Addr().String()
	const route, n, traits = "/api/v1/bulk-identities", 100, 60
	stored := func(prefix string) (identitiesStored int) {
		t.Helper()
		for i := range n {
			got, err := store.Traits(t.Context(), "3", fmt.Sprintf("%s-%d", prefix, i))
			if err != nil {
				t.Fatal(err)
			}
			switch len(got) {
			case traits:
				identitiesStored++
			case 0:
			default:
				t.Errorf("%s-%d: %d of %d traits stored", prefix, i, len(got), traits)
			}
		}
		return identitiesStored
	}

	// Half-closed after the whole body: carried out and answered.
	body := bulkBody(t, "half", n, traits)
	conn := rawRequest(t, addr, body, len(body), func(c *net.TCPConn) { _ = c.CloseWrite() })
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer on the half-closed connection: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("half-closed after a whole body: %d %s, want 202", resp.StatusCode, answer)
	}
	routeCount(t, ts.URL, route, 1)
	if got := stored("half"); got != n {
		t.Errorf("half-closed after a whole body: %d of %d identities stored", got, n)
	}

	// Closed after the whole body: carried out, all or nothing.
	body = bulkBody(t, "closed", n, traits)
	rawRequest(t, addr, body, len(body), func(c *net.TCPConn) { _ = c.Close() })
	routeCount(t, ts.URL, route, 2)
	if got := stored("closed"); got != n {
		t.Errorf("closed after a whole body: %d of %d identities stored", got, n)
	}

	// Closed halfway through the body: nothing stored.
	body = bulkBody(t, "cut", n, traits)
	rawRequest(t, addr, body, len(body)/2, func(c *net.TCPConn) { _ = c.Close() })
	metrics := routeCount(t, ts.URL, route, 3)
	if got := stored("cut"); got != 0 {
		t.Errorf("body cut short: %d identities stored", got)
	}

	// A complete request on a connection kept open still works.
	body = bulkBody(t, "whole", 2, 3)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+route, bytes.NewReader(body))
	req.Header.Set("X-Environment-Key", fsProdServerKey)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("a whole request: %d", resp.StatusCode)
	}

	// The registry gathers its collectors concurrently, so one scrape may
	// show a request's duration and not yet its status: read until the
	// statuses add up to the 4 requests (or 5 s pass).
	total := regexp.MustCompile(`gitflags_http_requests_total\{code="\d+",route="` + regexp.QuoteMeta(route) + `"\} (\d+)`)
	for deadline := time.Now().Add(5 * time.Second); ; {
		sum := 0
		for _, m := range total.FindAllStringSubmatch(metrics, -1) {
			n, _ := strconv.Atoi(m[1])
			sum += n
		}
		if sum >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
		metrics = routeCount(t, ts.URL, route, 4)
	}
	if m := regexp.MustCompile(`gitflags_http_requests_total\{code="5\d\d",route="` + regexp.QuoteMeta(route) + `"\} [1-9]`).FindString(metrics); m != "" {
		t.Errorf("a client going away counted as a server error: %s", m)
	}
	if !strings.Contains(metrics, `gitflags_http_requests_total{code="400",route="`+route+`"} 1`) {
		t.Errorf("the body cut short was not counted as one 400:\n%s", strings.Join(regexp.MustCompile(`gitflags_http_requests_total\{[^}]*route="`+regexp.QuoteMeta(route)+`"\} \d+`).FindAllString(metrics, -1), "\n"))
	}
	if l := logs.String(); l != "" {
		t.Errorf("a client going away was logged:\n%s", l)
	}
}
