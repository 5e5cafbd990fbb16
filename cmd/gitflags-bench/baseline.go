package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The baseline is a do-nothing net/http server in its own process: it
// answers every request with the bytes gitflags answered the probe with
// (status, headers, body), so that running the same load against it shows
// what this machine, the load generator and net/http cost by themselves.

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

// runBaseline is the hidden `baseline` subcommand. It prints its address on
// stdout and serves until stdin is closed (the parent went away) or it is
// killed.
func runBaseline(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on (loopback)")
	status := fs.Int("status", 200, "status of every response")
	bodyFile := fs.String("body-file", "", "file holding the body of every response")
	var headers headerList
	fs.Var(&headers, "header", "`Name:value` header of every response (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkLoopback(*addr); err != nil {
		return err
	}
	var body []byte
	if *bodyFile != "" {
		var err error
		if body, err = os.ReadFile(*bodyFile); err != nil {
			return err
		}
	}
	hdr := http.Header{}
	for _, kv := range headers {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			return fmt.Errorf("--header %q: want Name:value", kv)
		}
		hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range hdr {
			h[k] = v
		}
		w.WriteHeader(*status)
		if len(body) > 0 {
			_, _ = w.Write(body)
		}
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintln(stdout, ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		_ = ln.Close()
		errc <- nil
	}()
	if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// response is a probe's outcome: what the baseline must answer with.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// baselineProc is a running baseline subprocess.
type baselineProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
	dir   string
}

// hopHeaders are per-connection or per-response headers that net/http
// writes by itself; the baseline's server adds them the same way.
var hopHeaders = map[string]bool{"Date": true, "Connection": true, "Keep-Alive": true, "Transfer-Encoding": true}

// startBaseline re-executes this binary as `baseline` serving resp.
// procs > 0 sets its GOMAXPROCS.
func startBaseline(resp *response, tmp string, procs int) (*baselineProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmp, "baseline-")
	if err != nil {
		return nil, err
	}
	bodyFile := dir + "/body"
	if err := os.WriteFile(bodyFile, resp.Body, 0o644); err != nil {
		return nil, err
	}
	args := []string{"baseline", "--addr", "127.0.0.1:0", "--status", strconv.Itoa(resp.Status), "--body-file", bodyFile}
	for k, vs := range resp.Header {
		if hopHeaders[k] {
			continue
		}
		for _, v := range vs {
			args = append(args, "--header", k+":"+v)
		}
	}
	cmd := exec.Command(self, args...)
	cmd.Env = childEnv(procs)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &baselineProc{cmd: cmd, stdin: stdin, dir: dir}
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case addr, ok := <-line:
		if !ok || addr == "" {
			p.stop()
			return nil, errors.New("baseline server exited before printing its address")
		}
		p.addr = addr
	case <-time.After(10 * time.Second):
		p.stop()
		return nil, errors.New("baseline server did not start within 10 s")
	}
	return p, nil
}

func (p *baselineProc) url() string { return "http://" + p.addr }

// peakRSS returns the process's peak resident set (VmHWM) in bytes.
func (p *baselineProc) peakRSS() int64 { return peakRSS(p.cmd.Process.Pid) }

func (p *baselineProc) stop() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	_ = os.RemoveAll(p.dir)
}

// peakRSS reads VmHWM from /proc/<pid>/status; 0 when unavailable.
func peakRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest) // "13512 kB"
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// procCPU returns the CPU time (user + system) process pid has used, from
// /proc/<pid>/stat; 0 when unavailable.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: fields count from after ")".
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0
	}
	const clockTicks = 100 // USER_HZ, 100 on every Linux port Go supports
	return time.Duration(utime+stime) * time.Second / clockTicks
}
