package main

// The writes mode: `gitflags-bench writes` drives the admin API's write path
// (POST /api/experiments/environments/{key}/update-flag-v1/, one commit per
// request) with many concurrent writers against one or several gitflags
// servers, then checks the outcome in Git: every acknowledged revision is in
// the branch's history with the value its writer sent, nothing is lost, the
// repository passes `git fsck --strict`, and a read on the same server right
// after an acknowledgement never shows an older state (writes.go: load and
// report; writes_setup.go: spawned servers, tokens and the smart HTTP
// remote; writes_verify.go: the checks).

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type writesOptions struct {
	urls         []string // servers, without --spawn
	spawn        bool
	servers      int // with --spawn
	serverBin    string
	repo         string // local repository to serve (or, with --remote, to copy into the remote)
	remote       bool   // with --spawn: serve a bare copy over smart HTTP, servers clone it
	work         string // where repositories and server data go (default: a temporary directory, removed)
	serverArgs   headerList
	readyTimeout time.Duration
	verifyRepo   string // without --spawn: the repository whose branch holds the truth
	tokens       []string
	tokensEach   int // with --spawn: tokens per writer

	env     string
	key     string
	feature string

	writers  int
	duration time.Duration
	warmup   time.Duration
	timeout  time.Duration
	sample   int

	procs       int
	serverProcs int
	json        bool
	jsonFile    string
	quiet       bool
}

func parseWritesOptions(args []string, stderr io.Writer) (*writesOptions, error) {
	o := &writesOptions{}
	fs := flag.NewFlagSet("gitflags-bench writes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: gitflags-bench writes [flags]

Drives the admin API's write path: --writers concurrent writers, each
POSTing update-flag-v1 (one commit per request, a value never sent before)
to one or several servers for --duration. Reports acknowledged (204)
writes per second, their latency (request to 204, which is request to
served) and the count of every status; then verifies in Git that every
acknowledged revision is in the branch's history with its value, none lost,
that git fsck --strict is clean, and that every sampled read on the same
server right after a 204 showed that write or a later one. Exits non-zero
when a check fails.

  gitflags-bench writes --spawn --server-bin /tmp/gitflags                 # template, local
  gitflags-bench writes --spawn --server-bin /tmp/gitflags --repo DIR      # DIR served in place
  gitflags-bench writes --spawn --server-bin /tmp/gitflags --remote --servers 2
  gitflags-bench writes --url http://127.0.0.1:8080 --repo DIR --token T   # running server on DIR

Flags:
`)
		fs.PrintDefaults()
	}
	var urls, tokens string
	fs.StringVar(&urls, "url", "http://127.0.0.1:8080", "comma-separated base URLs of running gitflags servers (loopback only); the writers are split evenly between them; ignored with --spawn")
	fs.BoolVar(&o.spawn, "spawn", false, "start the gitflags servers (--servers of them) with a tokens file of one write token per writer")
	fs.IntVar(&o.servers, "servers", 1, "servers to start with --spawn; more than one needs --remote (they share it)")
	fs.StringVar(&o.serverBin, "server-bin", "", "gitflags binary to start with --spawn (default: gitflags in PATH)")
	fs.StringVar(&o.repo, "repo", "", "flag repository: with --spawn, served in place (written to!), or with --remote copied into the bare remote; without --spawn, the repository the server at --url serves (client key, feature, verification); default with --spawn: the server's embedded template")
	fs.BoolVar(&o.remote, "remote", false, "with --spawn: put a bare copy of the repository (--repo or the template) behind git http-backend on loopback and start the servers with --repo http://127.0.0.1:PORT/flags.git")
	fs.StringVar(&o.work, "work", "", "directory for the remote, server data and logs (kept); default: a temporary directory, removed at the end")
	fs.Var(&o.serverArgs, "server-arg", "extra `ARG` for gitflags serve with --spawn (repeatable)")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 2*time.Minute, "how long a spawned server may take to become ready")
	fs.StringVar(&o.verifyRepo, "verify-repo", "", "without --spawn: the repository whose branch must hold every acknowledged write (the bare remote, or the local repository served); default --repo")
	fs.StringVar(&tokens, "token", "", "without --spawn: comma-separated admin tokens, dealt to the writers in turn (default: $GITFLAGS_ADMIN_TOKEN); each token may write 10 times a second")
	fs.IntVar(&o.tokensEach, "tokens-per-writer", 1, "with --spawn: write tokens per writer, used in turn (the admin API allows each token 10 writes a second, so a writer faster than that gets 429s with one)")
	fs.StringVar(&o.env, "env", "staging", "environment written (not one with review_required: those writes are proposals, 202)")
	fs.StringVar(&o.key, "key", "", "its client key (default: read from the repository)")
	fs.StringVar(&o.feature, "feature", "", "feature whose value is written, an integer one (default: api_rate_limit if the repository has it, else the first feature with an integer default)")
	fs.IntVar(&o.writers, "writers", 50, "concurrent writers, one request in flight each")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured duration")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "writes before measuring (verified too, not counted in the figures)")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "per-request timeout")
	fs.IntVar(&o.sample, "sample", 10, "after every Nth acknowledged write of a writer, read the flag back from the same server (0: never)")
	fs.IntVar(&o.procs, "procs", 1, "GOMAXPROCS of the load generator (0: Go's default)")
	fs.IntVar(&o.serverProcs, "server-procs", -1, "GOMAXPROCS of each spawned server; -1: the CPUs the generator leaves (NumCPU - --procs, at least 1); 0: Go's default")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of text")
	fs.StringVar(&o.jsonFile, "json-file", "", "also write the JSON report to this file")
	fs.BoolVar(&o.quiet, "q", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	for _, u := range strings.Split(urls, ",") {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			o.urls = append(o.urls, u)
		}
	}
	for _, t := range strings.Split(cmp.Or(tokens, os.Getenv("GITFLAGS_ADMIN_TOKEN")), ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.tokens = append(o.tokens, t)
		}
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	case o.writers < 1:
		return nil, errors.New("--writers must be at least 1")
	case o.duration <= 0:
		return nil, errors.New("--duration must be positive")
	case o.tokensEach < 1:
		return nil, errors.New("--tokens-per-writer must be at least 1")
	case o.sample < 0:
		return nil, errors.New("--sample must be 0 or more")
	case o.spawn && o.servers < 1:
		return nil, errors.New("--servers must be at least 1")
	case o.spawn && o.servers > 1 && !o.remote:
		return nil, errors.New("--servers > 1 needs --remote: servers share a remote, not a local repository")
	case o.remote && !o.spawn:
		return nil, errors.New("--remote needs --spawn (without it, give --verify-repo the bare remote of the running servers)")
	case !o.spawn && len(o.urls) == 0:
		return nil, errors.New("give --url or --spawn")
	case !o.spawn && len(o.tokens) == 0:
		return nil, errors.New("without --spawn, give --token or GITFLAGS_ADMIN_TOKEN: an admin token with write scope")
	case !o.spawn && cmp.Or(o.verifyRepo, o.repo) == "":
		return nil, errors.New("without --spawn, give --repo or --verify-repo: the repository that must hold every acknowledged write")
	case o.serverProcs < -1:
		return nil, errors.New("--server-procs must be -1 (auto), 0 (Go's default) or a count of CPUs")
	}
	return o, nil
}

// writesReport is the outcome of a writes run (the --json output).
type writesReport struct {
	Started time.Time     `json:"started"`
	Machine machine       `json:"machine"`
	Config  writesConfig  `json:"config"`
	Servers []string      `json:"servers"`
	Repo    string        `json:"repository"` // the one verified
	Warmup  *writesStats  `json:"warmup,omitempty"`
	Stats   writesStats   `json:"measured"`
	Verify  verifyOutcome `json:"verify"`
	// ServerRSSBytes is each spawned server's peak RSS.
	ServerRSSBytes []int64 `json:"server_peak_rss_bytes,omitempty"`
}

type writesConfig struct {
	Writers     int     `json:"writers"`
	Duration    float64 `json:"duration_seconds"`
	Warmup      float64 `json:"warmup_seconds"`
	Env         string  `json:"environment"`
	Key         string  `json:"client_key"`
	Feature     string  `json:"feature"`
	Remote      string  `json:"remote,omitempty"`
	Sample      int     `json:"sample_every"`
	Procs       int     `json:"generator_gomaxprocs"`
	ServerProcs int     `json:"server_gomaxprocs,omitempty"`
	Commits0    int     `json:"commits_before"` // commits on the branch before the run
}

// writesStats are the figures of one phase (warm-up or measured).
type writesStats struct {
	Seconds  float64           `json:"seconds"` // until the last response of the phase
	Requests uint64            `json:"requests"`
	Acked    uint64            `json:"acknowledged"` // 204
	AckRate  float64           `json:"acknowledged_per_second"`
	P50US    float64           `json:"p50_us"` // of acknowledged writes
	P90US    float64           `json:"p90_us"`
	P99US    float64           `json:"p99_us"`
	MaxUS    float64           `json:"max_us"`
	Statuses map[string]uint64 `json:"statuses"`          // status code (or "error") -> count
	Samples  map[string]string `json:"status_samples"`    // one body (or error) per status other than 204
	PerURL   []urlStats        `json:"servers,omitempty"` // with more than one server
	// Reads are the read-backs after a 204 (--sample): answered with that
	// write's value right away, or with another one checked after the run.
	Reads      uint64 `json:"reads"`
	ReadsOwn   uint64 `json:"reads_own_value"`
	ReadErrors uint64 `json:"read_errors"`
}

type urlStats struct {
	URL     string  `json:"url"`
	Acked   uint64  `json:"acknowledged"`
	AckRate float64 `json:"acknowledged_per_second"`
	P50US   float64 `json:"p50_us"`
	P99US   float64 `json:"p99_us"`
}

// ack is one acknowledged write.
type ack struct {
	value    int64
	revision string
	server   int
}

// readBack is a read after an acknowledged write that showed another value:
// fine if that value was written after (in a descendant of) the write's
// revision, stale otherwise; decided after the run from the history.
type readBack struct {
	after ack
	seen  string // the flag's value as served (JSON)
}

// writeWorker is one writer: its token, its server, its private records.
type writeWorker struct {
	id       int
	server   int
	tokens   []string // used in turn
	n        int      // requests sent
	hist     histogram
	statuses map[string]uint64
	samples  map[string]string
	acks     []ack
	unacked  []int64 // values sent without a 204 (may or may not be committed)
	reads    []readBack
	nReads   uint64
	nOwn     uint64
	readErrs uint64
}

func runWrites(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseWritesOptions(args, stderr)
	if err != nil {
		return err
	}
	if o.procs > 0 {
		runtime.GOMAXPROCS(o.procs)
	}
	o.serverProcs = serverProcsFor(o.serverProcs, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	logf := func(format string, a ...any) {
		if !o.quiet {
			fmt.Fprintf(stderr, format+"\n", a...)
		}
	}
	work := o.work
	if work == "" {
		if work, err = os.MkdirTemp("", "gitflags-bench-writes-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	work, err = filepath.Abs(work)
	if err != nil {
		return err
	}

	setup, err := setupWrites(ctx, o, work, logf)
	if setup != nil {
		defer setup.close()
	}
	if err != nil {
		return err
	}
	rep := &writesReport{
		Started: time.Now().UTC(),
		Machine: machine{NProc: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadAvgBefore: loadAvg()},
		Config: writesConfig{Writers: o.writers, Duration: o.duration.Seconds(), Warmup: o.warmup.Seconds(), Env: o.env,
			Key: setup.key, Feature: setup.feature, Remote: setup.remoteURL, Sample: o.sample, Procs: runtime.GOMAXPROCS(0)},
		Servers: setup.urls,
		Repo:    setup.verifyRepo,
	}
	if o.spawn {
		rep.Config.ServerProcs = o.serverProcs
	}
	if n, err := countCommits(setup.verifyRepo); err != nil {
		return err
	} else {
		rep.Config.Commits0 = n
	}
	logf("writes: %d writers on %s, %s of %s (key %s), %d commits so far in %s",
		o.writers, strings.Join(setup.urls, ", "), o.env, setup.feature, setup.key, rep.Config.Commits0, setup.verifyRepo)

	d := newWriteDriver(o, setup)
	defer d.close()
	var all []*writeWorker
	if o.warmup > 0 {
		ws, elapsed := d.phase(ctx, o.warmup)
		st := d.stats(ws, elapsed)
		rep.Warmup = &st
		all = append(all, ws...)
		logf("warm-up: %s", st.line())
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	ws, elapsed := d.phase(ctx, o.duration)
	rep.Stats = d.stats(ws, elapsed)
	all = append(all, ws...)
	logf("measured: %s", rep.Stats.line())
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// The servers stop before the repositories are checked, so that fsck
	// sees them at rest.
	rep.ServerRSSBytes = setup.stopServers()
	logf("verifying %s", setup.verifyRepo)
	rep.Verify = verifyWrites(setup.verifyRepo, setup.extraFsck, o.env, setup.feature, all, rep.Config.Commits0)
	rep.Machine.LoadAvg = loadAvg()

	if err := writeReport(stdout, rep, o.jsonFile, o.json, func() { printWrites(stdout, rep) }); err != nil {
		return err
	}
	if !rep.Verify.OK {
		return fmt.Errorf("verification failed: %s", strings.Join(rep.Verify.Failures, "; "))
	}
	return nil
}

// writeDriver sends the writes of every phase.
type writeDriver struct {
	o       *writesOptions
	s       *writesSetup
	clients []*http.Client // one per server
	next    atomic.Int64   // the next value to write
}

func newWriteDriver(o *writesOptions, s *writesSetup) *writeDriver {
	d := &writeDriver{o: o, s: s}
	for range s.urls {
		tr := &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConns:        o.writers,
			MaxIdleConnsPerHost: o.writers,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		}
		d.clients = append(d.clients, &http.Client{Transport: tr, Timeout: o.timeout})
	}
	// Values never written before in this repository (a write of the value
	// in force changes nothing and makes no commit): microseconds since
	// 2025, far from any default, then one more per request.
	d.next.Store(time.Since(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds())
	return d
}

func (d *writeDriver) close() {
	for _, c := range d.clients {
		c.CloseIdleConnections()
	}
}

// phase runs every writer for dur; writes in flight at the end complete
// (they are verified like the others).
func (d *writeDriver) phase(ctx context.Context, dur time.Duration) ([]*writeWorker, time.Duration) {
	var stop atomic.Bool
	t := time.AfterFunc(dur, func() { stop.Store(true) })
	defer t.Stop()
	done := context.AfterFunc(ctx, func() { stop.Store(true) })
	defer done()
	ws := make([]*writeWorker, d.o.writers)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range ws {
		w := &writeWorker{id: i, server: i % len(d.s.urls), statuses: map[string]uint64{}, samples: map[string]string{}}
		for j := range d.o.tokensEach {
			w.tokens = append(w.tokens, d.s.tokens[(i*d.o.tokensEach+j)%len(d.s.tokens)])
		}
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				d.write(w)
			}
		}()
	}
	wg.Wait()
	return ws, time.Since(start)
}

// write sends one write and, every --sample acknowledgements, reads the
// flag back from the same server.
func (d *writeDriver) write(w *writeWorker) {
	value := d.next.Add(1)
	base, c := d.s.urls[w.server], d.clients[w.server]
	body := fmt.Sprintf(`{"feature": {"name": %q}, "enabled": true, "value": {"type": "integer", "value": "%d"}}`, d.s.feature, value)
	req, err := http.NewRequest(http.MethodPost, base+"/api/experiments/environments/"+d.s.key+"/update-flag-v1/", strings.NewReader(body))
	if err != nil {
		panic(err) // the URL was checked
	}
	req.Header.Set("Authorization", "Api-Key "+w.tokens[w.n%len(w.tokens)])
	w.n++
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := c.Do(req)
	var respBody []byte
	if err == nil {
		respBody, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
	lat := time.Since(t0)
	if err != nil {
		w.statuses["error"]++
		if _, ok := w.samples["error"]; !ok {
			w.samples["error"] = err.Error()
		}
		w.unacked = append(w.unacked, value)
		time.Sleep(10 * time.Millisecond) // a server down: do not spin
		return
	}
	code := strconv.Itoa(resp.StatusCode)
	w.statuses[code]++
	if resp.StatusCode != http.StatusNoContent {
		if _, ok := w.samples[code]; !ok {
			w.samples[code] = excerpt(respBody)
		}
		w.unacked = append(w.unacked, value)
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra > 0 {
			time.Sleep(min(time.Duration(ra)*time.Second, time.Second))
		}
		return
	}
	w.hist.record(lat)
	rev := strings.Trim(strings.TrimPrefix(resp.Header.Get("ETag"), "W/"), `"`)
	a := ack{value: value, revision: rev, server: w.server}
	w.acks = append(w.acks, a)
	if d.o.sample > 0 && len(w.acks)%d.o.sample == 0 {
		d.readBack(w, a)
	}
}

// readBack reads the flag from the server that acknowledged a.
func (d *writeDriver) readBack(w *writeWorker, a ack) {
	w.nReads++
	req, err := http.NewRequest(http.MethodGet, d.s.urls[w.server]+"/api/v1/flags/?feature="+d.s.feature, nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("X-Environment-Key", d.s.key)
	resp, err := d.clients[w.server].Do(req)
	if err != nil {
		w.readErrs++
		return
	}
	defer resp.Body.Close()
	var flag struct {
		Value json.RawMessage `json:"feature_state_value"`
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &flag) != nil {
		w.readErrs++
		if _, ok := w.samples["read"]; !ok {
			w.samples["read"] = fmt.Sprintf("GET %d %s", resp.StatusCode, excerpt(raw))
		}
		return
	}
	seen := string(bytes.TrimSpace(flag.Value))
	if seen == strconv.FormatInt(a.value, 10) {
		w.nOwn++
		return
	}
	w.reads = append(w.reads, readBack{after: a, seen: seen})
}

// stats sums the workers of a phase that took elapsed: its duration plus
// the drain of the writes in flight at its end (rates are over that time).
func (d *writeDriver) stats(ws []*writeWorker, elapsed time.Duration) writesStats {
	st := writesStats{Statuses: map[string]uint64{}, Samples: map[string]string{}}
	var h histogram
	per := make([]histogram, len(d.s.urls))
	for _, w := range ws {
		h.merge(&w.hist)
		per[w.server].merge(&w.hist)
		for k, c := range w.statuses {
			st.Statuses[k] += c
			st.Requests += c
		}
		for k, s := range w.samples {
			if _, ok := st.Samples[k]; !ok {
				st.Samples[k] = s
			}
		}
		st.Reads += w.nReads
		st.ReadsOwn += w.nOwn
		st.ReadErrors += w.readErrs
	}
	secs := elapsed.Seconds()
	st.Seconds = secs
	st.Acked = h.total
	st.AckRate = float64(h.total) / secs
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	st.P50US, st.P90US, st.P99US = us(h.quantile(0.50)), us(h.quantile(0.90)), us(h.quantile(0.99))
	st.MaxUS = us(time.Duration(h.max))
	if len(per) > 1 {
		for i := range per {
			st.PerURL = append(st.PerURL, urlStats{URL: d.s.urls[i], Acked: per[i].total, AckRate: float64(per[i].total) / secs,
				P50US: us(per[i].quantile(0.5)), P99US: us(per[i].quantile(0.99))})
		}
	}
	return st
}

func (s writesStats) line() string {
	codes := make([]string, 0, len(s.Statuses))
	for k := range s.Statuses {
		codes = append(codes, k)
	}
	slices.Sort(codes)
	var parts []string
	for _, k := range codes {
		parts = append(parts, fmt.Sprintf("%s: %d", k, s.Statuses[k]))
	}
	return fmt.Sprintf("%d acknowledged in %.1f s (%.1f/s), p50 %s, p99 %s, max %s; statuses {%s}",
		s.Acked, s.Seconds, s.AckRate, fmtUS(s.P50US), fmtUS(s.P99US), fmtUS(s.MaxUS), strings.Join(parts, ", "))
}

func printWrites(w io.Writer, r *writesReport) {
	fmt.Fprintf(w, "gitflags-bench writes, %s\n", r.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s, %s; load average %s before, %s after\n",
		r.Machine.NProc, r.Machine.CPUModel, r.Machine.GoVersion, r.Machine.OS, r.Machine.LoadAvgBefore, r.Machine.LoadAvg)
	c := r.Config
	fmt.Fprintf(w, "servers: %s", strings.Join(r.Servers, ", "))
	if c.Remote != "" {
		fmt.Fprintf(w, " (remote %s)", c.Remote)
	}
	if c.ServerProcs > 0 {
		fmt.Fprintf(w, ", GOMAXPROCS %d each", c.ServerProcs)
	}
	fmt.Fprintf(w, "\nwrites: %d writers, %.0f s (+ %.0f s warm-up), %s: %s, an integer value per request; %d commits before\n\n",
		c.Writers, c.Duration, c.Warmup, c.Env, c.Feature, c.Commits0)
	s := r.Stats
	fmt.Fprintf(w, "acknowledged (204): %d in %.1f s = %.1f writes/s\n", s.Acked, s.Seconds, s.AckRate)
	fmt.Fprintf(w, "latency of acknowledged writes (request to 204 = served): p50 %s, p90 %s, p99 %s, max %s\n",
		fmtUS(s.P50US), fmtUS(s.P90US), fmtUS(s.P99US), fmtUS(s.MaxUS))
	for _, p := range s.PerURL {
		fmt.Fprintf(w, "  %s: %d acknowledged (%.1f/s), p50 %s, p99 %s\n", p.URL, p.Acked, p.AckRate, fmtUS(p.P50US), fmtUS(p.P99US))
	}
	codes := make([]string, 0, len(s.Statuses))
	for k := range s.Statuses {
		codes = append(codes, k)
	}
	slices.Sort(codes)
	fmt.Fprintf(w, "statuses:")
	for _, k := range codes {
		fmt.Fprintf(w, " %s: %d", k, s.Statuses[k])
	}
	fmt.Fprintln(w)
	for _, k := range codes {
		if smp, ok := s.Samples[k]; ok {
			fmt.Fprintf(w, "  %s e.g. %s\n", k, smp)
		}
	}
	fmt.Fprintf(w, "read-backs on the same server after a 204: %d (%d showed that very write; the others a later write, checked below), %d failed\n",
		s.Reads, s.ReadsOwn, s.ReadErrors)
	if len(r.ServerRSSBytes) > 0 {
		fmt.Fprintf(w, "server peak RSS:")
		for _, b := range r.ServerRSSBytes {
			fmt.Fprintf(w, " %.1f MiB", float64(b)/(1<<20))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	v := r.Verify
	fmt.Fprintf(w, "verification of %s (warm-up included):\n", r.Repo)
	fmt.Fprintf(w, "  branch %s at %s: %d commits (%d before the run)\n", v.Branch, shortRev(v.Head), v.Commits, c.Commits0)
	fmt.Fprintf(w, "  acknowledged writes in history with their value: %d of %d (lost %d, wrong revision %d, duplicate revisions %d)\n",
		v.AckedInHistory, v.Acked, v.Lost, v.WrongRevision, v.DuplicateRevisions)
	fmt.Fprintf(w, "  writes without a 204: %d, of which committed anyway: %d\n", v.Unacked, v.UnackedCommitted)
	fmt.Fprintf(w, "  read-backs showing a later write: %d fine, %d stale\n", v.ReadsLater, v.ReadsStale)
	for _, f := range v.Fsck {
		fmt.Fprintf(w, "  git fsck --strict %s: %s\n", f.Repo, cmp.Or(f.Error, "clean"))
	}
	if v.OK {
		fmt.Fprintln(w, "verification: PASSED")
	} else {
		fmt.Fprintf(w, "verification: FAILED\n  %s\n", strings.Join(v.Failures, "\n  "))
	}
}

func shortRev(s string) string { return s[:min(len(s), 12)] }

// writeReport writes a mode's report: as JSON to jsonFile when it is set, and
// to stdout as JSON when asJSON, else as text by print.
func writeReport(stdout io.Writer, rep any, jsonFile string, asJSON bool, print func()) error {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if jsonFile != "" {
		if err := os.WriteFile(jsonFile, js, 0o644); err != nil {
			return err
		}
	}
	if !asJSON {
		print()
		return nil
	}
	_, err = stdout.Write(js)
	return err
}
