package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeUnderDescriptorPressure runs the real binary with 1,024 file
// descriptors (soft and hard, as `ulimit -n 1024` sets them) and opens
// 1,100 idle keep-alive connections: the server must go on answering new
// clients (it used to stop accepting with "too many open files") and its
// sync must see no error (it used to report an unknown revision).
func TestServeUnderDescriptorPressure(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	cmd := exec.Command("sh", "-c", `ulimit -n 1024 && exec "$0" "$@"`, bin,
		"serve", "--listen", "127.0.0.1:0", "--data", data, "--interval", "100ms")
	cmd.Env = append(os.Environ(), "GITFLAGS_ADMIN_TOKEN=admin-test-token")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", stderr.String())
		}
	})
	base := ""
	banner := bufio.NewScanner(stdout)
	for base == "" && banner.Scan() {
		if m := regexp.MustCompile(`on (http://\S+)`).FindStringSubmatch(banner.Text()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("no banner: %v", banner.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	_, key := environmentFile(t, filepath.Join(data, "flags"), "production")
	addr := strings.TrimPrefix(base, "http://")

	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range 1100 {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: gitflags\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d got no answer: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("connection %d: %s", i, resp.Status)
		}
	}

	client := &http.Client{Timeout: 10 * time.Second}
	call := func(path string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s after 1,100 idle connections: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call("/api/v1/flags/", "X-Environment-Key", key); code != http.StatusOK {
		t.Fatalf("flags after 1,100 idle connections: %d %s", code, body)
	}
	code, body := call("/metrics")
	if code != http.StatusOK || !regexp.MustCompile(`(?m)^gitflags_connections_idle_closed_total [1-9]`).MatchString(body) {
		t.Errorf("metrics do not count idle connections closed:\n%s", grepLines(body, "gitflags_connections"))
	}
	if !strings.Contains(body, `gitflags_connections_limit{class="request"} 384`) {
		t.Errorf("the request cap is not derived from the 1,024-descriptor limit:\n%s", grepLines(body, "gitflags_connections"))
	}
	// Two more sync rounds, both after the flood.
	var before struct {
		Sync struct{ Successes uint64 } `json:"sync"`
	}
	_, st := call("/api/v1/status", "Authorization", "Bearer admin-test-token")
	_ = json.Unmarshal([]byte(st), &before)
	waitFor(t, "two more sync rounds", func() bool {
		var now struct {
			Sync struct {
				Successes uint64
				Failures  uint64
				LastError string `json:"last_error"`
			} `json:"sync"`
		}
		_, st = call("/api/v1/status", "Authorization", "Bearer admin-test-token")
		if err := json.Unmarshal([]byte(st), &now); err != nil {
			t.Fatalf("status: %v: %s", err, st)
		}
		if now.Sync.Failures != 0 || now.Sync.LastError != "" {
			t.Fatalf("the sync failed during the flood: %s", st)
		}
		return now.Sync.Successes >= before.Sync.Successes+2
	})
	if logs := stderr.String(); strings.Contains(logs, "too many open files") || strings.Contains(logs, "unknown revision") {
		t.Errorf("the server ran out of descriptors:\n%s", logs)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}
