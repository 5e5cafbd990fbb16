package httpapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitflags/gitflags/flagrepo"
)

// wsBench serves the template repository on loopback for the websocket
// benchmarks, and publishes edits of it.
type wsBench struct {
	tb   testing.TB
	s    *Server
	addr string
	repo memRepo
	snap *flagrepo.Snapshot
	n    int
}

func newWSBench(tb testing.TB, opts Options) *wsBench {
	tb.Helper()
	files, err := flagrepo.DirFiles(filepath.Join("..", "flags-repo-template"))
	if err != nil {
		tb.Fatal(err)
	}
	repo := memRepo{}
	for _, f := range files {
		data, err := f.Read()
		if err != nil {
			tb.Fatal(err)
		}
		repo[f.Path] = data
	}
	opts.Log = ofrepQuietLog
	if opts.StreamKeepAlive == 0 {
		opts.StreamKeepAlive = time.Hour
	}
	b := &wsBench{tb: tb, s: New(opts), repo: repo}
	b.publish("", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: b.s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	tb.Cleanup(func() {
		b.s.CloseStreams()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = b.s.WaitStreams(ctx)
		<-done
	})
	b.addr = ln.Addr().String()
	return b
}

// publish sets feature's value in staging (none when feature is "") and
// publishes the next revision.
func (b *wsBench) publish(feature string, value any) string {
	b.tb.Helper()
	if feature != "" {
		path := "environments/staging/features/" + feature + ".json"
		var doc map[string]any
		if err := json.Unmarshal(b.repo[path], &doc); err != nil {
			b.tb.Fatal(err)
		}
		doc["value"] = value
		data, err := json.Marshal(doc)
		if err != nil {
			b.tb.Fatal(err)
		}
		b.repo[path] = data
	}
	b.n++
	rev := flagrepo.Revision{SHA: fmt.Sprintf("%040x", b.n), Time: streamEpoch.Add(time.Duration(b.n) * time.Second)}
	snap, err := flagrepo.Load(rev, b.repo.Files(), b.snap)
	if err != nil {
		b.tb.Fatal(err)
	}
	if err := b.s.Publish(snap); err != nil {
		b.tb.Fatal(err)
	}
	b.snap = snap
	return rev.SHA
}

// rawWS is a websocket client written by hand over a bare TCP connection,
// so that an idle one holds almost nothing but its socket: the memory the
// benchmarks measure is the server's.
type rawWS struct {
	c  net.Conn
	br *bufio.Reader // only while reading
}

// dialRawWS upgrades, subscribes with identifier and traits, and reads the
// full state.
func dialRawWS(addr, key, identifier string, traits map[string]any) (*rawWS, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	sub := map[string]any{"type": "subscribe", "version": 1}
	if identifier != "" {
		sub["identifier"] = identifier
		sub["traits"] = traits
	}
	payload, err := json.Marshal(sub)
	if err != nil {
		return nil, err
	}
	req := "GET " + wsStreamPath + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Environment-Key: " + key + "\r\n\r\n"
	out := append([]byte(req), clientFrame(payload)...)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(out); err != nil {
		c.Close()
		return nil, err
	}
	r := &rawWS{c: c, br: bufio.NewReaderSize(c, 4096)}
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("upgrade: %s", resp.Status)
	}
	_, msg, err := r.read()
	if err != nil {
		c.Close()
		return nil, err
	}
	if !strings.HasPrefix(string(msg), `{"type":"flags"`) {
		c.Close()
		return nil, fmt.Errorf("first message %.80s", msg)
	}
	if r.br.Buffered() == 0 {
		r.br = nil // idle: the socket only
	}
	_ = c.SetDeadline(time.Time{})
	return r, nil
}

// clientFrame is a final text frame masked with a zero key.
func clientFrame(payload []byte) []byte {
	var f []byte
	switch n := len(payload); {
	case n < 126:
		f = []byte{0x81, 0x80 | byte(n)}
	case n < 1<<16:
		f = []byte{0x81, 0x80 | 126, byte(n >> 8), byte(n)}
	default:
		f = binary.BigEndian.AppendUint64([]byte{0x81, 0x80 | 127}, uint64(n))
	}
	f = append(f, 0, 0, 0, 0)
	return append(f, payload...)
}

// read reads one unfragmented server frame.
func (r *rawWS) read() (op byte, payload []byte, err error) {
	if r.br == nil {
		r.br = bufio.NewReaderSize(r.c, 4096)
	}
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(r.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(r.br, e[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	if h[0]&0x80 == 0 || n > 16<<20 {
		return 0, nil, errors.New("fragmented or huge frame")
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r.br, payload)
	return h[0] & 0x0f, payload, err
}

// openRaw opens n subscribers to staging with distinct identifiers and
// traits (or, with shared > 0, shared contexts), 32 at a time.
func openRaw(tb testing.TB, addr string, n, shared int) []*rawWS {
	tb.Helper()
	conns := make([]*rawWS, n)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	jobs := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				c := i
				if shared > 0 {
					c = i % shared
				}
				r, err := dialRawWS(addr, stagingKey, fmt.Sprintf("bench-%06d", c), map[string]any{"seq": c, "plan": []string{"free", "pro", "enterprise"}[c%3]})
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				conns[i] = r
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	tb.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.c.Close()
			}
		}
	})
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
	return conns
}

func memInUse() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

// BenchmarkWSIdleMemory opens b.N idle websocket subscribers with distinct
// contexts (in process; clients are bare sockets) and reports the heap and
// stack in use per connection, and goroutines per connection. Give the
// count with -benchtime:
//
//	go test -run '^$' -bench WSIdleMemory -benchtime 10000x ./httpapi/
//
// A heap profile of what they hold while open: GITFLAGS_BENCH_HEAPPROFILE=FILE
// with -memprofilerate 512, read with go tool pprof -sample_index
// inuse_space.
func BenchmarkWSIdleMemory(b *testing.B) {
	wb := newWSBench(b, Options{})
	time.Sleep(100 * time.Millisecond)
	g0 := runtime.NumGoroutine()
	h0, s0 := memInUse()
	b.ResetTimer()
	conns := openRaw(b, wb.addr, b.N, 0)
	b.StopTimer()
	time.Sleep(200 * time.Millisecond)
	h1, s1 := memInUse()
	g1 := runtime.NumGoroutine()
	n := float64(len(conns))
	b.ReportMetric(float64(h1-h0)/n, "heap-B/conn")
	b.ReportMetric(float64(s1-s0)/n, "stack-B/conn")
	b.ReportMetric((float64(h1-h0)+float64(s1-s0))/n, "B/conn")
	b.ReportMetric(float64(g1-g0)/n, "goroutines/conn")
	b.ReportMetric(0, "ns/op")
	if path := os.Getenv("GITFLAGS_BENCH_HEAPPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWSFanout publishes revisions that change one flag for every one
// of -subscribers (1,000) subscribers with distinct contexts, connected
// over loopback (the clients' reading is in the same process), and reports
// the time until the last one received its changes message.
//
//	go test -run '^$' -bench WSFanout -benchtime 20x ./httpapi/
func BenchmarkWSFanout(b *testing.B) {
	for _, n := range []int{1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			wb := newWSBench(b, Options{})
			conns := openRaw(b, wb.addr, n, 0)
			var got sync.WaitGroup
			var mu sync.Mutex
			var want string
			var failed error
			for _, c := range conns {
				go func() {
					for {
						_, msg, err := c.read()
						if err != nil {
							return
						}
						mu.Lock()
						if !strings.Contains(string(msg), want) && failed == nil {
							failed = fmt.Errorf("unexpected message %.200s", msg)
						}
						mu.Unlock()
						got.Done()
					}
				}()
			}
			var last time.Duration
			for i := 0; b.Loop(); i++ {
				mu.Lock()
				want = fmt.Sprintf(`"api_rate_limit":{"enabled":true,"value":%d}`, 800000+i)
				mu.Unlock()
				got.Add(n)
				start := time.Now()
				wb.publish("api_rate_limit", 800000+i)
				got.Wait()
				last += time.Since(start)
			}
			if failed != nil {
				b.Fatal(failed)
			}
			b.ReportMetric(float64(last.Microseconds())/float64(b.N)/float64(n), "µs/subscriber")
		})
	}
}
