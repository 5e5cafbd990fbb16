package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play the baseline subprocess: the tool
// re-executes os.Executable() with the hidden "baseline" subcommand.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "baseline" {
		if err := runBaseline(os.Args[2:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeServer answers every scenario like gitflags would, with a chunked
// body for /api/v1/flags/ (more than net/http buffers before chunking).
func fakeServer(t *testing.T) *httptest.Server {
	const key = "prd_test"
	flags := []byte(`[` + strings.Repeat(`{"feature":{"name":"f"},"enabled":true},`, 120) + `{}]`)
	mux := http.NewServeMux()
	auth := func(r *http.Request) bool {
		return r.Header.Get("X-Environment-Key") == key || r.Header.Get("Authorization") == "Bearer "+key
	}
	mux.HandleFunc("GET /api/v1/flags/", func(w http.ResponseWriter, r *http.Request) {
		if !auth(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(flags)
	})
	mux.HandleFunc("POST /api/v1/identities/", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Identifier string            `json:"identifier"`
			Traits     []json.RawMessage `json:"traits"`
		}
		if !auth(r) || json.NewDecoder(r.Body).Decode(&body) != nil || body.Identifier == "" || len(body.Traits) != 5 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"identifier":%q,"flags":[],"traits":[]}`, body.Identifier)
	})
	mux.HandleFunc("POST /ofrep/v1/evaluate/flags", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if !auth(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"flags":[{"key":"a","value":true,"reason":"STATIC"}]}`))
	})
	mux.HandleFunc("POST /ofrep/v1/evaluate/flags/{key}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"key":%q,"value":"express","reason":"TARGETING_MATCH"}`, r.PathValue("key"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestEndToEnd(t *testing.T) {
	srv := fakeServer(t)
	for _, client := range []string{"raw", "http"} {
		t.Run(client, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := []string{"--url", srv.URL, "--key", "prd_test", "--flag", "new_checkout", "--client", client,
				"--duration", "250ms", "--warmup", "50ms", "--rounds", "1", "-c", "4", "--identities", "10", "--json"}
			if client == "http" {
				args = append(args, "--scenarios", "flags,ofrep-bulk-304")
			}
			if err := run(context.Background(), args, &out, &errOut); err != nil {
				t.Fatalf("run: %v\n%s", err, errOut.String())
			}
			var rep report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("report is not JSON: %v\n%s", err, out.String())
			}
			want := map[string]int{"flags": 200, "identities": 200, "ofrep-bulk": 200, "ofrep-bulk-304": 304, "ofrep-single": 200}
			if client == "http" {
				want = map[string]int{"flags": 200, "ofrep-bulk-304": 304}
			}
			if len(rep.Results) != len(want) {
				t.Fatalf("got %d scenarios, want %d", len(rep.Results), len(want))
			}
			for _, r := range rep.Results {
				if r.Skipped != "" {
					t.Errorf("%s skipped: %s", r.Name, r.Skipped)
					continue
				}
				if r.Status != want[r.Name] {
					t.Errorf("%s: status %d, want %d", r.Name, r.Status, want[r.Name])
				}
				for who, st := range map[string]*runStats{"baseline": r.Baseline, "gitflags": r.Gitflags} {
					if st == nil {
						t.Errorf("%s: no %s figures", r.Name, who)
						continue
					}
					if st.Requests == 0 || st.RPS <= 0 || st.P50US <= 0 || st.P99US < st.P50US || st.MaxUS < st.P99US {
						t.Errorf("%s %s: implausible figures %+v", r.Name, who, *st)
					}
					if st.failures() != 0 {
						t.Errorf("%s %s: %d failures: %+v", r.Name, who, st.failures(), *st)
					}
				}
				if r.RatioPercent <= 0 {
					t.Errorf("%s: ratio %v", r.Name, r.RatioPercent)
				}
				if r.Name == "flags" && r.Gitflags.ResponseBytes != float64(r.ResponseBytes) {
					t.Errorf("flags: read %v bytes per response, the probe %d", r.Gitflags.ResponseBytes, r.ResponseBytes)
				}
			}
			var table bytes.Buffer
			printTable(&table, &rep)
			if !strings.Contains(table.String(), "| ofrep-bulk-304 | 304 |") {
				t.Errorf("table:\n%s", table.String())
			}
		})
	}
}

func TestSkipsUnimplemented(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotImplemented)
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--url", srv.URL, "--key", "prd_test", "--duration", "100ms", "--rounds", "1", "--json", "-q"}, &out, &errOut)
	if err != nil {
		t.Fatal(err, errOut.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Skipped == "" || r.Gitflags != nil {
			t.Errorf("%s: measured a 501 endpoint: %+v", r.Name, r)
		}
	}
}

func TestRequestCount(t *testing.T) {
	srv := fakeServer(t)
	l, err := newLoad("ofrep-single", target{key: "prd_test", flag: "x"}, "")
	if err != nil {
		t.Fatal(err)
	}
	l.expect = 200
	st, err := runLoad(context.Background(), srv.URL, l, loadConfig{client: "raw", conns: 3, requests: 500, timeout: 5 * time.Second}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Requests != 500 || st.failures() != 0 {
		t.Errorf("got %+v, want 500 requests without failures", st)
	}
}

func TestRejectsNonLoopback(t *testing.T) {
	for _, a := range []string{"10.0.0.1:80", "example.com:80", "0.0.0.0:8080"} {
		if checkLoopback(a) == nil {
			t.Errorf("%s accepted", a)
		}
	}
	for _, a := range []string{"127.0.0.1:80", "[::1]:80", "localhost:1"} {
		if err := checkLoopback(a); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 100000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := h.quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*1.008 {
			t.Errorf("q%v = %v, want %v (+0.8%%)", c.q, got, c.want)
		}
	}
	for v := uint64(0); v < 1<<20; v += 37 {
		if i := histIndex(v); histUpper(i) < v || (i > 0 && histUpper(i-1) >= v) {
			t.Fatalf("value %d in bucket %d [.., %d]", v, i, histUpper(i))
		}
	}
}

func TestReadResponse(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" +
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n" +
		"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n" +
		"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(in))
	for _, want := range []struct {
		status int
		n      int64
		close  bool
	}{{200, 5, false}, {200, 5, false}, {304, 0, false}, {500, 0, true}} {
		status, n, closeConn, err := readResponse(br, false)
		if err != nil || status != want.status || n != want.n || closeConn != want.close {
			t.Fatalf("got %d %d %v %v, want %+v", status, n, closeConn, err, want)
		}
	}
	if _, _, _, err := readResponse(br, false); err != io.EOF {
		t.Errorf("at the end: %v", err)
	}
}

func TestServerProcs(t *testing.T) {
	for _, c := range []struct{ flag, ncpu, gen, want int }{
		{-1, 2, 1, 1}, // the machine this project measures on
		{-1, 8, 1, 7}, // the generator's core left alone
		{-1, 1, 1, 1}, // never zero
		{-1, 4, 4, 1}, // a generator on every core still leaves one
		{0, 2, 1, 0},  // Go's default, asked for
		{3, 2, 1, 3},  // asked for
	} {
		if got := serverProcsFor(c.flag, c.ncpu, c.gen); got != c.want {
			t.Errorf("serverProcsFor(%d, %d, %d) = %d, want %d", c.flag, c.ncpu, c.gen, got, c.want)
		}
	}
}

// TestBaselineGOMAXPROCS checks that a started baseline really runs with
// the GOMAXPROCS asked for, and replaces one the tool itself was given.
func TestBaselineGOMAXPROCS(t *testing.T) {
	t.Setenv("GOMAXPROCS", "7")
	for _, procs := range []int{0, 3} {
		bp, err := startBaseline(&response{Status: 200, Header: http.Header{}, Body: []byte("ok")}, t.TempDir(), procs)
		if err != nil {
			t.Fatal(err)
		}
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", bp.cmd.Process.Pid))
		bp.stop()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, kv := range strings.Split(string(environ), "\x00") {
			if strings.HasPrefix(kv, "GOMAXPROCS=") {
				got = append(got, kv)
			}
		}
		want := "GOMAXPROCS=7" // procs 0: what the tool had, untouched
		if procs > 0 {
			want = fmt.Sprintf("GOMAXPROCS=%d", procs)
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("procs %d: baseline environment has %q, want [%s]", procs, got, want)
		}
	}
}
