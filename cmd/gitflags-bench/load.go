package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// load is one kind of request to send again and again.
type load struct {
	method string
	path   string      // with query, starting with "/"
	header http.Header // sent with every request (no Host, no Content-Length)
	bodies [][]byte    // nil: no body; else request i (per connection) sends bodies[(offset+i)%len]
	expect int         // the status a correct response has
}

// loadConfig says how hard and how long to drive a load.
type loadConfig struct {
	client   string        // "raw" (own HTTP/1.1 connections) or "http" (net/http Transport)
	conns    int           // concurrent keep-alive connections, one request in flight on each
	duration time.Duration // measured time, when requests is 0
	requests int64         // measured requests in total (all connections), when > 0
	warmup   time.Duration // load before measuring, results discarded
	timeout  time.Duration // per request
}

// runStats is the outcome of one measured run.
type runStats struct {
	Requests      uint64            `json:"requests"` // responses received, any status
	Seconds       float64           `json:"seconds"`
	RPS           float64           `json:"rps"`
	P50US         float64           `json:"p50_us"`
	P90US         float64           `json:"p90_us"`
	P99US         float64           `json:"p99_us"`
	MaxUS         float64           `json:"max_us"`
	Errors        uint64            `json:"errors"`                      // transport errors (connect, reset, timeout, bad response)
	Unexpected    map[string]uint64 `json:"unexpected_status,omitempty"` // status code -> responses with a status other than expected
	ErrorSample   string            `json:"error_sample,omitempty"`      // the first transport error
	ResponseBytes float64           `json:"response_bytes"`              // mean body bytes per response
	// ServerCPUUS is the CPU time (user + system) the server process used
	// per response while measured, when its pid is known: a figure less
	// sensitive than req/s to other load on the machine.
	ServerCPUUS float64 `json:"server_cpu_us_per_request,omitempty"`
}

func (s runStats) failures() uint64 {
	n := s.Errors
	for _, c := range s.Unexpected {
		n += c
	}
	return n
}

// worker is one connection's request loop and its private counters.
type worker struct {
	id        int
	hist      histogram
	responses uint64
	errors    uint64
	bytes     uint64
	statuses  map[int]uint64 // unexpected ones
	errSample string
	next      int // index into load.bodies
}

func (w *worker) reset() {
	w.hist = histogram{}
	w.responses, w.errors, w.bytes = 0, 0, 0
	w.statuses = map[int]uint64{}
	w.errSample = ""
}

func (w *worker) fail(err error) {
	w.errors++
	if w.errSample == "" {
		w.errSample = err.Error()
	}
}

// sender sends one request on behalf of a worker and returns the status and
// the number of body bytes read.
type sender interface {
	send(w *worker) (status int, n int64, err error)
	close()
}

// runLoad drives l against base (http://host:port) with cfg: a warm-up, then
// the measured part. It stops by itself after cfg.duration (or cfg.requests),
// or early when ctx ends.
// When pid is not 0 it also measures that process's CPU time.
func runLoad(ctx context.Context, base string, l *load, cfg loadConfig, pid int) (runStats, error) {
	u, err := url.Parse(base)
	if err != nil {
		return runStats{}, err
	}
	if err := checkLoopback(u.Host); err != nil {
		return runStats{}, err
	}
	var tr *http.Transport
	senders := make([]sender, cfg.conns)
	workers := make([]*worker, cfg.conns)
	for i := range workers {
		workers[i] = &worker{id: i, next: i * 7919}
		switch cfg.client {
		case "http":
			if tr == nil {
				tr = newTransport(cfg.conns, cfg.timeout)
			}
			if senders[i], err = newHTTPSender(tr, base, l); err != nil {
				return runStats{}, err
			}
		default:
			senders[i] = newRawSender(u.Host, l, cfg.timeout)
		}
	}
	defer func() {
		for _, s := range senders {
			s.close()
		}
		if tr != nil {
			tr.CloseIdleConnections()
		}
	}()

	phase := func(d time.Duration, total int64) time.Duration {
		var stop atomic.Bool
		var budget atomic.Int64
		budget.Store(total)
		if total <= 0 {
			t := time.AfterFunc(d, func() { stop.Store(true) })
			defer t.Stop()
		}
		done := context.AfterFunc(ctx, func() { stop.Store(true) })
		defer done()
		start := time.Now()
		var wg sync.WaitGroup
		for i, w := range workers {
			w.reset()
			s := senders[i]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					if total > 0 && budget.Add(-1) < 0 {
						return
					}
					t0 := time.Now()
					status, n, err := s.send(w)
					if err != nil {
						w.fail(err)
						if errors.Is(err, errRefused) {
							time.Sleep(time.Millisecond) // nothing listens: do not spin
						}
						continue
					}
					w.hist.record(time.Since(t0))
					w.responses++
					w.bytes += uint64(n)
					if status != l.expect {
						w.statuses[status]++
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}

	if cfg.warmup > 0 {
		phase(cfg.warmup, 0)
		if ctx.Err() != nil {
			return runStats{}, ctx.Err()
		}
	}
	cpu0 := procCPU(pid)
	elapsed := phase(cfg.duration, cfg.requests)
	cpu := procCPU(pid) - cpu0
	if ctx.Err() != nil {
		return runStats{}, ctx.Err()
	}

	var h histogram
	st := runStats{Seconds: elapsed.Seconds(), Unexpected: map[string]uint64{}}
	var bytesIn uint64
	for _, w := range workers {
		h.merge(&w.hist)
		st.Requests += w.responses
		st.Errors += w.errors
		bytesIn += w.bytes
		for code, c := range w.statuses {
			st.Unexpected[strconv.Itoa(code)] += c
		}
		if st.ErrorSample == "" {
			st.ErrorSample = w.errSample
		}
	}
	if len(st.Unexpected) == 0 {
		st.Unexpected = nil
	}
	if elapsed > 0 {
		st.RPS = float64(st.Requests) / elapsed.Seconds()
	}
	if st.Requests > 0 {
		st.ResponseBytes = float64(bytesIn) / float64(st.Requests)
		if pid != 0 {
			st.ServerCPUUS = float64(cpu) / 1e3 / float64(st.Requests)
		}
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	st.P50US, st.P90US, st.P99US = us(h.quantile(0.50)), us(h.quantile(0.90)), us(h.quantile(0.99))
	st.MaxUS = us(time.Duration(h.max))
	return st, nil
}

// errRefused marks a dial nothing answered, so that a worker backs off
// instead of spinning while no server listens.
var errRefused = errors.New("connection refused")

// --- raw HTTP/1.1 client: one connection per worker, the request bytes
// rendered once, the response read in place (readResponse). No goroutines,
// channels or allocations per request, which leaves more of the shared CPU
// to the server.

type rawSender struct {
	addr    string
	timeout time.Duration
	reqs    [][]byte // full requests (head + body), one per body
	head    bool     // HEAD requests: responses have no body
	conn    net.Conn
	br      *bufio.Reader
}

func newRawSender(addr string, l *load, timeout time.Duration) *rawSender {
	s := &rawSender{addr: addr, timeout: timeout, head: l.method == http.MethodHead}
	bodies := l.bodies
	if bodies == nil {
		bodies = [][]byte{nil}
	}
	for _, b := range bodies {
		s.reqs = append(s.reqs, renderRequest(addr, l, b))
	}
	return s
}

func renderRequest(host string, l *load, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gitflags-bench\r\n", l.method, l.path, host)
	keys := make([]string, 0, len(l.header))
	for k := range l.header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range l.header[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

func (s *rawSender) send(w *worker) (int, int64, error) {
	if s.conn == nil {
		c, err := net.DialTimeout("tcp", s.addr, s.timeout)
		if err != nil {
			if isRefused(err) {
				return 0, 0, fmt.Errorf("%w: %v", errRefused, err)
			}
			return 0, 0, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		s.conn = c
		if s.br == nil {
			s.br = bufio.NewReaderSize(c, 64<<10)
		} else {
			s.br.Reset(c)
		}
	}
	req := s.reqs[w.next%len(s.reqs)]
	w.next++
	if s.timeout > 0 {
		_ = s.conn.SetDeadline(time.Now().Add(s.timeout))
	}
	if _, err := s.conn.Write(req); err != nil {
		s.drop()
		return 0, 0, err
	}
	status, n, closeConn, err := readResponse(s.br, s.head)
	if err != nil {
		s.drop()
		return 0, 0, err
	}
	if closeConn {
		s.drop()
	}
	return status, n, nil
}

func (s *rawSender) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

func (s *rawSender) close() { s.drop() }

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// --- net/http client: http.Transport with one idle connection per worker.

func newTransport(conns int, timeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // loopback only, never a proxy
		DialContext:           (&net.Dialer{Timeout: timeout}).DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       time.Minute,
		ResponseHeaderTimeout: timeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}

type httpSender struct {
	tr     *http.Transport
	req    *http.Request
	bodies [][]byte
}

func newHTTPSender(tr *http.Transport, base string, l *load) (*httpSender, error) {
	req, err := http.NewRequest(l.method, base+l.path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range l.header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "gitflags-bench")
	return &httpSender{tr: tr, req: req, bodies: l.bodies}, nil
}

// send reuses the request (allowed once the previous response body is
// closed); each request gets a fresh body reader, since the Transport may
// still hold the previous one.
func (s *httpSender) send(w *worker) (int, int64, error) {
	if s.bodies != nil {
		b := s.bodies[w.next%len(s.bodies)]
		w.next++
		s.req.Body = io.NopCloser(bytes.NewReader(b))
		s.req.ContentLength = int64(len(b))
		s.req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	resp, err := s.tr.RoundTrip(s.req)
	if err != nil {
		if isRefused(err) {
			return 0, 0, fmt.Errorf("%w: %v", errRefused, err)
		}
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, 0, err
	}
	return resp.StatusCode, n, nil
}

func (s *httpSender) close() {}

// checkLoopback refuses any address that is not on this machine's loopback:
// the tool is a load generator and must not be pointed at other hosts.
func checkLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address: gitflags-bench only talks to 127.0.0.0/8 or ::1", hostport)
	}
	return nil
}
