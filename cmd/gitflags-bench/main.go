// Command gitflags-bench is the load tool of gitflags: it drives the server's
// HTTP endpoints over loopback with concurrent keep-alive connections and
// compares each scenario with a do-nothing baseline server that answers the
// very same bytes, measured in the same run.
//
// Usage:
//
//	gitflags-bench [flags]
//
// Against a running server:
//
//	gitflags-bench --url http://127.0.0.1:8080
//
// Starting the server itself (one command, also reports its peak memory):
//
//	go build -o /tmp/gitflags ./cmd/gitflags
//	gitflags-bench --spawn --server-bin /tmp/gitflags [--repo DIR]
//
// The write path (concurrent admin API writes, then every acknowledged write
// checked in Git; see writes.go):
//
//	gitflags-bench writes --spawn --server-bin /tmp/gitflags [--remote --servers 2]
//
// The websocket stream's fan-out (N subscribers, a commit by hand and an
// admin API write, the time until each subscriber had its change; see
// fanout.go):
//
//	gitflags-bench fanout --server-bin /tmp/gitflags --subscribers 1000
//
// A large flag repository to serve (package repogen, committed with go-git):
//
//	gitflags-bench genrepo --features 1000 /tmp/flags-1000
//
// For each scenario it fetches gitflags' response once, starts a baseline
// server in a separate process (this binary re-executed as the hidden
// `baseline` subcommand) that returns exactly that status, headers and body
// for any request, then alternates identical runs against the baseline and
// against gitflags (--rounds times) and reports the medians.
//
// The generator runs with GOMAXPROCS --procs (1), and the servers it starts
// (the baselines, and gitflags with --spawn) with the CPUs it leaves
// (--server-procs, by default NumCPU - --procs). On a small machine, a server
// with Go's default GOMAXPROCS runs as many threads as there are cores on top
// of the generator's, and the kernel's time slices then dominate every p99,
// the do-nothing baseline's included. With --url, start the server with the
// same GOMAXPROCS as the baselines get (the report's header says which).
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gitflags/gitflags"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "baseline" {
		if err := runBaseline(os.Args[2:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "gitflags-bench baseline:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "writes" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := runWrites(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(os.Stderr, "gitflags-bench writes:", err)
			}
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "fanout" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := runFanout(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(os.Stderr, "gitflags-bench fanout:", err)
			}
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "genrepo" {
		if err := runGenRepo(os.Args[2:], os.Stdout, os.Stderr); err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(os.Stderr, "gitflags-bench genrepo:", err)
			}
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "gitflags-bench:", err)
		}
		os.Exit(1)
	}
}

type options struct {
	url          string
	spawn        bool
	serverBin    string
	repo         string
	serverArgs   headerList
	readyTimeout time.Duration
	serverPID    int

	env        string
	key        string
	flag       string
	scenarios  string
	identities int

	load   loadConfig
	rounds int
	procs  int
	// serverProcs is the GOMAXPROCS given to the processes the tool starts
	// (the spawned gitflags server and the baselines); see serverProcsFor.
	serverProcs int
	baseline    bool
	json        bool
	jsonFile    string
	quiet       bool
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("gitflags-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: gitflags-bench [flags]

Load-tests a gitflags server over loopback, scenario by scenario, against a
do-nothing baseline server (separate process) that answers the same bytes.
Scenarios: `+strings.Join(scenarioNames, ", ")+`.
Also: gitflags-bench genrepo [--features N] DIR (a generated flag repository),
and gitflags-bench writes [flags] (the admin API's write path; writes --help).

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of a running gitflags server (loopback only); ignored with --spawn")
	fs.BoolVar(&o.spawn, "spawn", false, "start the gitflags server itself (--server-bin, --repo) and report its peak RSS")
	fs.StringVar(&o.serverBin, "server-bin", "", "gitflags binary to start with --spawn (default: gitflags in PATH)")
	fs.StringVar(&o.repo, "repo", "", "flag repository (a git repository with commits) to serve with --spawn; also where the client key and the targeted flag are read (default with --spawn: the default repository the server creates, with its fresh client keys)")
	fs.Var(&o.serverArgs, "server-arg", "extra `ARG` for gitflags serve with --spawn (repeatable)")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 2*time.Minute, "how long the spawned server may take to become ready")
	fs.IntVar(&o.serverPID, "server-pid", 0, "pid of a running gitflags server whose peak RSS to report (without --spawn)")
	fs.StringVar(&o.env, "env", "production", "environment whose client key to use (read from --repo, or with --spawn from the server's default repository)")
	fs.StringVar(&o.key, "key", "", "client key to send (default: the --env environment's client_key; needed without --spawn or --repo)")
	fs.StringVar(&o.flag, "flag", "", "flag for ofrep-single (default: the first one with segment overrides in --env)")
	fs.StringVar(&o.scenarios, "scenarios", "all", "comma-separated scenarios to run, or all")
	fs.IntVar(&o.identities, "identities", 1000, "distinct identifiers the identities scenario rotates over")
	fs.IntVar(&o.load.conns, "c", 32, "concurrent keep-alive connections")
	fs.DurationVar(&o.load.duration, "duration", 10*time.Second, "measured duration of each run")
	fs.Int64Var(&o.load.requests, "requests", 0, "measured requests per run instead of a duration (all connections together)")
	fs.DurationVar(&o.load.warmup, "warmup", time.Second, "warm-up before each measured run (not counted)")
	fs.DurationVar(&o.load.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&o.load.client, "client", "raw", "load client: raw (own HTTP/1.1 connections, least CPU) or http (net/http Transport)")
	fs.IntVar(&o.rounds, "rounds", 3, "runs per target, alternating baseline and gitflags; medians are reported")
	fs.IntVar(&o.procs, "procs", 1, "GOMAXPROCS of the load generator (0: Go's default); 1 matches wrk -t1")
	fs.IntVar(&o.serverProcs, "server-procs", -1, "GOMAXPROCS of the servers the tool starts (the baselines, and gitflags with --spawn); -1: the CPUs the generator leaves (NumCPU - --procs, at least 1), so that servers and generator never wait for each other's cores; 0: Go's default")
	fs.BoolVar(&o.baseline, "baseline", true, "measure the do-nothing baseline too")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&o.jsonFile, "json-file", "", "also write the JSON report to this file")
	fs.BoolVar(&o.quiet, "q", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	case o.load.conns < 1:
		return nil, errors.New("-c must be at least 1")
	case o.rounds < 1:
		return nil, errors.New("--rounds must be at least 1")
	case o.load.requests <= 0 && o.load.duration <= 0:
		return nil, errors.New("give a positive --duration or --requests")
	case o.serverProcs < -1:
		return nil, errors.New("--server-procs must be -1 (auto), 0 (Go's default) or a count of CPUs")
	case o.load.client != "raw" && o.load.client != "http":
		return nil, fmt.Errorf("--client must be raw or http, not %q", o.load.client)
	}
	return o, nil
}

// report is the outcome of a whole run (the --json output).
type report struct {
	Started          time.Time        `json:"started"`
	Machine          machine          `json:"machine"`
	Config           reportConfig     `json:"config"`
	Target           string           `json:"target"`
	Repo             string           `json:"repo"`
	Results          []scenarioResult `json:"scenarios"`
	ServerRSSBytes   int64            `json:"server_peak_rss_bytes,omitempty"`
	BaselineRSSBytes int64            `json:"baseline_peak_rss_bytes,omitempty"` // the largest of the baseline processes
}

type machine struct {
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	// LoadAvgBefore and LoadAvg are /proc/loadavg before and after the run:
	// other work on the machine skews the figures.
	LoadAvgBefore string `json:"loadavg_before"`
	LoadAvg       string `json:"loadavg_after"`
}

type reportConfig struct {
	Connections int     `json:"connections"`
	Duration    float64 `json:"duration_seconds,omitempty"`
	Requests    int64   `json:"requests,omitempty"`
	Warmup      float64 `json:"warmup_seconds"`
	Rounds      int     `json:"rounds"`
	Client      string  `json:"client"`
	Procs       int     `json:"generator_gomaxprocs"`
	ServerProcs int     `json:"server_gomaxprocs"` // 0: Go's default
	Key         string  `json:"client_key"`
	Flag        string  `json:"flag"`
}

type scenarioResult struct {
	Name          string     `json:"name"`
	Request       string     `json:"request"`
	Status        int        `json:"status"`
	ResponseBytes int        `json:"response_bytes"`
	Skipped       string     `json:"skipped,omitempty"`
	Baseline      *runStats  `json:"baseline,omitempty"` // medians over rounds
	Gitflags      *runStats  `json:"gitflags,omitempty"` // medians over rounds
	RatioPercent  float64    `json:"ratio_percent,omitempty"`
	Rounds        []roundRun `json:"rounds,omitempty"`
}

type roundRun struct {
	Round  int      `json:"round"`
	Target string   `json:"target"` // baseline or gitflags
	Stats  runStats `json:"stats"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
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
	names, err := selectScenarios(o.scenarios)
	if err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("", "gitflags-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// The repository the server serves: --repo, or with --spawn and no
	// --repo the default repository the spawned server creates (its client
	// keys are fresh, so only that repository knows them).
	var repoFS fs.FS
	var repoName string
	if o.repo != "" {
		abs, err := filepath.Abs(o.repo)
		if err != nil {
			return err
		}
		o.repo, repoName, repoFS = abs, abs, os.DirFS(abs)
	}

	base := strings.TrimRight(o.url, "/")
	var srv *serverProc
	if o.spawn {
		logf("starting %s serve (%s)", o.serverBin, cmp.Or(repoName, "its default repository"))
		if srv, err = spawnServer(ctx, o, tmp); err != nil {
			return err
		}
		defer srv.stop()
		base = srv.url
		logf("gitflags is ready on %s after %.1f s", base, srv.startup.Seconds())
		if repoFS == nil {
			repoName = srv.defaultRepo
			repoFS = os.DirFS(repoName)
		}
	} else if u, err := urlHost(base); err != nil {
		return err
	} else if err := checkLoopback(u); err != nil {
		return err
	}

	// What to ask for: the environment's client key and a targeted flag.
	t := target{key: o.key, flag: o.flag, identities: o.identities}
	if repoFS == nil {
		if t.key == "" {
			return errors.New("without --spawn, give --repo (the repository the server at --url serves; for its default one, DATA/flags) or --key: every repository has its own client keys")
		}
		// The flag names are the template's in a default repository.
		repoName, repoFS = "embedded template", gitflags.Template()
	}
	if t.key == "" || t.flag == "" {
		key, flag, err := discover(repoFS, o.env)
		if err != nil {
			return fmt.Errorf("%s: %w (give --key and --flag)", repoName, err)
		}
		if t.key == "" {
			t.key = key
		}
		if t.flag == "" {
			t.flag = flag
		}
	}

	rep := &report{
		Started: time.Now().UTC(),
		Machine: machine{NProc: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadAvgBefore: loadAvg()},
		Config: reportConfig{Connections: o.load.conns, Warmup: o.load.warmup.Seconds(), Rounds: o.rounds,
			Client: o.load.client, Procs: runtime.GOMAXPROCS(0), ServerProcs: o.serverProcs, Key: t.key, Flag: t.flag},
		Target: base,
		Repo:   repoName,
	}
	if o.load.requests > 0 {
		rep.Config.Requests = o.load.requests
	} else {
		rep.Config.Duration = o.load.duration.Seconds()
	}

	serverPID := o.serverPID
	if srv != nil {
		serverPID = srv.cmd.Process.Pid
	}
	var bulkETag string
	for _, name := range names {
		res, etag, err := runScenario(ctx, o, name, t, base, serverPID, bulkETag, tmp, rep, logf)
		if err != nil {
			return err
		}
		if name == "ofrep-bulk" {
			bulkETag = etag
		}
		rep.Results = append(rep.Results, res)
	}
	if srv != nil {
		rep.ServerRSSBytes = peakRSS(srv.cmd.Process.Pid)
	} else if o.serverPID > 0 {
		rep.ServerRSSBytes = peakRSS(o.serverPID)
	}
	rep.Machine.LoadAvg = loadAvg()

	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if o.jsonFile != "" {
		if err := os.WriteFile(o.jsonFile, js, 0o644); err != nil {
			return err
		}
	}
	if o.json {
		_, err := stdout.Write(js)
		return err
	}
	printTable(stdout, rep)
	return nil
}

func selectScenarios(s string) ([]string, error) {
	if s == "" || s == "all" {
		return scenarioNames, nil
	}
	var out []string
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(scenarioNames, n) {
			return nil, fmt.Errorf("unknown scenario %q (known: %s, or all)", n, strings.Join(scenarioNames, ", "))
		}
		out = append(out, n)
	}
	return out, nil
}

// runScenario probes gitflags, starts the baseline with its answer and runs
// the alternating rounds. It returns the ETag of the response (for
// ofrep-bulk-304). A scenario gitflags cannot answer (501, 401, ...) is
// reported as skipped, not as an error.
func runScenario(ctx context.Context, o *options, name string, t target, base string, serverPID int, bulkETag, tmp string, rep *report, logf func(string, ...any)) (scenarioResult, string, error) {
	res := scenarioResult{Name: name}
	skip := func(format string, a ...any) (scenarioResult, string, error) {
		res.Skipped = fmt.Sprintf(format, a...)
		logf("%s: skipped: %s", name, res.Skipped)
		return res, "", nil
	}
	if name == "ofrep-bulk-304" && bulkETag == "" {
		// Not measured in this run (or not selected): fetch the ETag now.
		bl, err := newLoad("ofrep-bulk", t, "")
		if err != nil {
			return skip("%v", err)
		}
		r, err := probe(base, bl, o.load.timeout)
		if err != nil {
			return res, "", fmt.Errorf("%s: %w", name, err)
		}
		bulkETag = r.Header.Get("ETag")
		if r.Status != http.StatusOK {
			return skip("the bulk request gets %d %s", r.Status, excerpt(r.Body))
		}
	}
	l, err := newLoad(name, t, bulkETag)
	if err != nil {
		return skip("%v", err)
	}
	res.Request = l.method + " " + l.path
	resp, err := probe(base, l, o.load.timeout)
	if err != nil {
		return res, "", fmt.Errorf("%s: %w", name, err)
	}
	res.Status, res.ResponseBytes = resp.Status, len(resp.Body)
	if resp.Status != http.StatusOK && resp.Status != http.StatusNotModified {
		return skip("gitflags answers %d %s %s", resp.Status, http.StatusText(resp.Status), excerpt(resp.Body))
	}
	l.expect = resp.Status
	logf("%s: %s -> %d, %d bytes, ETag %q", name, res.Request, resp.Status, len(resp.Body), resp.Header.Get("ETag"))

	var bp *baselineProc
	if o.baseline {
		if bp, err = startBaseline(resp, tmp, o.serverProcs); err != nil {
			return res, "", fmt.Errorf("%s: baseline: %w", name, err)
		}
		defer bp.stop()
	}
	var bRuns, gRuns []runStats
	for r := 1; r <= o.rounds; r++ {
		if bp != nil {
			st, err := runLoad(ctx, bp.url(), l, o.load, bp.cmd.Process.Pid)
			if err != nil {
				return res, "", fmt.Errorf("%s: baseline run: %w", name, err)
			}
			logf("%s round %d/%d baseline: %s", name, r, o.rounds, st.line())
			bRuns = append(bRuns, st)
			res.Rounds = append(res.Rounds, roundRun{Round: r, Target: "baseline", Stats: st})
		}
		st, err := runLoad(ctx, base, l, o.load, serverPID)
		if err != nil {
			return res, "", fmt.Errorf("%s: gitflags run: %w", name, err)
		}
		logf("%s round %d/%d gitflags: %s", name, r, o.rounds, st.line())
		gRuns = append(gRuns, st)
		res.Rounds = append(res.Rounds, roundRun{Round: r, Target: "gitflags", Stats: st})
	}
	g := medianStats(gRuns)
	res.Gitflags = &g
	if bp != nil {
		b := medianStats(bRuns)
		res.Baseline = &b
		if b.RPS > 0 {
			res.RatioPercent = 100 * g.RPS / b.RPS
		}
		rep.BaselineRSSBytes = max(rep.BaselineRSSBytes, bp.peakRSS())
	}
	return res, resp.Header.Get("ETag"), nil
}

func (s runStats) line() string {
	out := fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, max %s", s.RPS, fmtUS(s.P50US), fmtUS(s.P99US), fmtUS(s.MaxUS))
	if f := s.failures(); f > 0 {
		out += fmt.Sprintf(", %d failed (errors %d, unexpected status %v) %s", f, s.Errors, s.Unexpected, s.ErrorSample)
	}
	return out
}

// medianStats takes the median of every figure over the runs separately;
// counts of failures are summed.
func medianStats(runs []runStats) runStats {
	med := func(f func(runStats) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if n := len(v); n%2 == 1 {
			return v[n/2]
		} else {
			return (v[n/2-1] + v[n/2]) / 2
		}
	}
	out := runStats{
		ServerCPUUS:   med(func(r runStats) float64 { return r.ServerCPUUS }),
		RPS:           med(func(r runStats) float64 { return r.RPS }),
		Seconds:       med(func(r runStats) float64 { return r.Seconds }),
		P50US:         med(func(r runStats) float64 { return r.P50US }),
		P90US:         med(func(r runStats) float64 { return r.P90US }),
		P99US:         med(func(r runStats) float64 { return r.P99US }),
		MaxUS:         med(func(r runStats) float64 { return r.MaxUS }),
		ResponseBytes: med(func(r runStats) float64 { return r.ResponseBytes }),
	}
	out.Requests = uint64(med(func(r runStats) float64 { return float64(r.Requests) }))
	for _, r := range runs {
		out.Errors += r.Errors
		for k, c := range r.Unexpected {
			if out.Unexpected == nil {
				out.Unexpected = map[string]uint64{}
			}
			out.Unexpected[k] += c
		}
		if out.ErrorSample == "" {
			out.ErrorSample = r.ErrorSample
		}
	}
	return out
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

func urlHost(base string) (string, error) {
	rest, ok := strings.CutPrefix(base, "http://")
	if !ok {
		return "", fmt.Errorf("--url %q: want http://HOST:PORT", base)
	}
	host, _, _ := strings.Cut(rest, "/")
	return host, nil
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// serverProcsFor resolves --server-procs: -1 gives the servers the CPUs the
// generator (gomaxprocs) leaves, at least one (see the package doc).
func serverProcsFor(flag, ncpu, gomaxprocs int) int {
	if flag >= 0 {
		return flag
	}
	return max(1, ncpu-gomaxprocs)
}

// childEnv is the environment of a server the tool starts: its own, with
// GOMAXPROCS set when procs > 0.
func childEnv(procs int) []string {
	env := os.Environ()
	if procs <= 0 {
		return env
	}
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			out = append(out, kv)
		}
	}
	return append(out, "GOMAXPROCS="+strconv.Itoa(procs))
}

// serverProc is a gitflags server started by --spawn.
type serverProc struct {
	cmd     *exec.Cmd
	url     string
	logPath string
	startup time.Duration
	done    chan struct{}
	// defaultRepo is where the server keeps its default flag repository
	// (DATA/flags), the one it serves without --repo.
	defaultRepo string
}

func spawnServer(ctx context.Context, o *options, tmp string) (*serverProc, error) {
	var args []string
	if o.repo != "" {
		args = append(args, "--repo", o.repo)
	}
	return startServe(ctx, o.serverBin, o.serverProcs, o.readyTimeout, filepath.Join(tmp, "server-data"), filepath.Join(tmp, "server.log"), append(args, o.serverArgs...))
}

// startServe starts `gitflags serve` (bin, else gitflags from PATH) on a
// free loopback port with its data in data and its output in logPath, and
// returns once /readyz answers 200 (or fails after ready).
func startServe(ctx context.Context, bin string, procs int, ready time.Duration, data, logPath string, extra []string) (*serverProc, error) {
	if bin == "" {
		p, err := exec.LookPath("gitflags")
		if err != nil {
			return nil, errors.New("--spawn needs --server-bin (no gitflags in PATH)")
		}
		bin = p
	}
	// A free loopback port: bind, read, release.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	args := append([]string{"serve", "--listen", addr, "--data", data}, extra...)
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv(procs)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProc{cmd: cmd, url: "http://" + addr, logPath: logPath, done: make(chan struct{}), defaultRepo: filepath.Join(data, "flags")}
	go func() { _ = cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(ready)
	c := &http.Client{Timeout: 2 * time.Second}
	defer c.CloseIdleConnections()
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("gitflags serve exited during start-up: %s", tail(logPath))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if resp, err := c.Get(p.url + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.startup = time.Since(start)
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("gitflags serve not ready after %s: %s", ready, tail(logPath))
		}
	}
}

func (p *serverProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}
