package main

// The fanout mode: `gitflags-bench fanout` connects N websocket subscribers
// (GET /api/v1/stream) with distinct identities and traits (or, with
// --shared K, K shared contexts) to a gitflags server it spawns as a
// separate process, waits until every one has its full state, then makes
// revisions and measures, for each subscriber, the time until its "changes"
// message arrived:
//
//   - hand: a commit made with the git binary in the served repository's
//     work tree (the file written, git add, then git commit; the clock
//     starts just before git commit);
//   - api: an admin API write (update-flag-v1; the clock starts just before
//     the request);
//   - noop: a commit that changes a flag of another environment only: no
//     subscriber may receive anything for it (checked by the order of what
//     they receive before the next relevant revision), and the server's CPU
//     time for it is reported.
//
// Every relevant revision changes the watched flag's value for every
// subscriber. Each subscriber must get exactly one changes message per
// relevant revision, in order, with the revision and the new value and
// nothing else; the tool exits non-zero otherwise. Memory per idle
// connection is the spawned server's VmRSS after connecting minus before,
// divided by N.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitflags/gitflags"
	"github.com/gitflags/gitflags/connlimit"
	"github.com/gitflags/gitflags/gitstore"
)

type fanoutOptions struct {
	serverBin    string
	serverArgs   headerList
	readyTimeout time.Duration
	work         string

	subscribers int
	shared      int
	rounds      int
	concurrency int
	timeout     time.Duration
	settle      time.Duration

	env      string // environment the subscribers follow
	feature  string // its flag that the relevant revisions change
	noopEnv  string // environment the noop revision changes
	noopFlag string

	procs       int
	serverProcs int
	pin         bool
	json        bool
	jsonFile    string
	quiet       bool
}

func parseFanoutOptions(args []string, stderr io.Writer) (*fanoutOptions, error) {
	o := &fanoutOptions{}
	fs := flag.NewFlagSet("gitflags-bench fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: gitflags-bench fanout [flags]

Connects --subscribers websocket subscribers (GET /api/v1/stream) with
distinct identities and traits (--shared K: K shared contexts) to a gitflags
server it starts (separate process, the template repository served in
place), waits until each has its full state, then makes revisions that
change one flag for every subscriber: a commit with the git binary (clock
from just before git commit) and an admin API write (clock from the
request), --rounds times each; then a revision that changes only another
environment (nothing may be sent for it; server CPU reported) followed by
one more commit. Reports, per revision, p50/p99/max over subscribers of the
time until each received its changes message, and the server's memory per
idle connection. Exits non-zero unless every subscriber got exactly one
changes message per relevant revision, with its value, and nothing else.

  go build -o /tmp/gitflags ./cmd/gitflags
  gitflags-bench fanout --server-bin /tmp/gitflags --subscribers 1000
  gitflags-bench fanout --server-bin /tmp/gitflags --subscribers 10000 --shared 10

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.serverBin, "server-bin", "", "gitflags binary to start (default: gitflags in PATH)")
	fs.Var(&o.serverArgs, "server-arg", "extra `ARG` for gitflags serve (repeatable)")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 2*time.Minute, "how long the server may take to become ready")
	fs.StringVar(&o.work, "work", "", "directory for the repository, server data and log (kept); default: a temporary directory, removed")
	fs.IntVar(&o.subscribers, "subscribers", 1000, "websocket subscribers")
	fs.IntVar(&o.shared, "shared", 0, "0: every subscriber has its own identifier and traits; K > 0: subscribers share K contexts (identifier and traits)")
	fs.IntVar(&o.rounds, "rounds", 2, "relevant revisions of each kind (git commit, admin API) before the noop revision")
	fs.IntVar(&o.concurrency, "connect-concurrency", 64, "connections being opened at once")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "how long to wait for every subscriber's full state, and for each revision to reach every subscriber")
	fs.DurationVar(&o.settle, "settle", 250*time.Millisecond, "after a revision reached everyone, time to wait before reading the server's CPU time and making the next")
	fs.StringVar(&o.env, "env", "staging", "environment the subscribers follow (its client key; not one with review_required)")
	fs.StringVar(&o.feature, "feature", "api_rate_limit", "integer flag of --env changed by the relevant revisions (its environment file must set a value with no segment or identity override applying)")
	fs.StringVar(&o.noopEnv, "noop-env", "development", "environment the noop revision changes")
	fs.StringVar(&o.noopFlag, "noop-feature", "banner_message", "flag of --noop-env the noop revision changes (its environment file sets a string value)")
	fs.IntVar(&o.procs, "procs", 1, "GOMAXPROCS of the tool (0: Go's default)")
	fs.BoolVar(&o.pin, "pin", false, "pin the tool to the last CPU and the server to the others (Linux), so that the scheduler does not run both on one CPU while the other idles")
	fs.IntVar(&o.serverProcs, "server-procs", -1, "GOMAXPROCS of the server; -1: the CPUs the tool leaves (NumCPU - --procs, at least 1); 0: Go's default")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of text")
	fs.StringVar(&o.jsonFile, "json-file", "", "also write the JSON report to this file")
	fs.BoolVar(&o.quiet, "q", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q (see --help)", fs.Args())
	case o.subscribers < 1:
		return nil, errors.New("--subscribers must be at least 1")
	case o.shared < 0:
		return nil, errors.New("--shared must be 0 or more")
	case o.rounds < 1:
		return nil, errors.New("--rounds must be at least 1")
	case o.concurrency < 1:
		return nil, errors.New("--connect-concurrency must be at least 1")
	case o.timeout <= 0:
		return nil, errors.New("--timeout must be positive")
	case o.serverProcs < -1:
		return nil, errors.New("--server-procs must be -1 (auto), 0 (Go's default) or a count of CPUs")
	case o.env == o.noopEnv:
		return nil, errors.New("--noop-env must differ from --env")
	}
	return o, nil
}

// fanoutReport is the outcome of a fanout run (the --json output).
type fanoutReport struct {
	Started time.Time    `json:"started"`
	Machine machine      `json:"machine"`
	Config  fanoutConfig `json:"config"`
	Server  string       `json:"server"`
	Repo    string       `json:"repository"`

	ConnectSeconds float64 `json:"connect_seconds"` // until every subscriber had its full state
	FileLimit      uint64  `json:"tool_open_file_limit"`

	ServerRSSBefore  int64   `json:"server_rss_before_bytes"`
	ServerRSSAfter   int64   `json:"server_rss_after_bytes"`
	ServerPerConn    float64 `json:"server_bytes_per_idle_connection"`
	ServerPeakRSS    int64   `json:"server_peak_rss_bytes"`
	ToolRSSBefore    int64   `json:"tool_rss_before_bytes"`
	ToolRSSAfter     int64   `json:"tool_rss_after_bytes"`
	ToolPerConn      float64 `json:"tool_bytes_per_connection"`
	IdleCPUPerSecond float64 `json:"server_idle_cpu_ms_per_second"` // schedstat, all connected, no revision

	Events []fanoutResult `json:"events"`

	OK                bool     `json:"ok"`
	FailedSubscribers int      `json:"failed_subscribers"`
	Failures          []string `json:"failures,omitempty"` // the first ones
}

type fanoutConfig struct {
	Subscribers int    `json:"subscribers"`
	Shared      int    `json:"shared_contexts,omitempty"`
	Contexts    int    `json:"distinct_contexts"`
	Rounds      int    `json:"rounds"`
	Env         string `json:"environment"`
	Key         string `json:"client_key"`
	Feature     string `json:"feature"`
	NoopEnv     string `json:"noop_environment"`
	NoopFeature string `json:"noop_feature"`
	Procs       int    `json:"tool_gomaxprocs"`
	ServerProcs int    `json:"server_gomaxprocs"`
	Pinned      string `json:"pinned,omitempty"` // "server CPUs 0-N, tool CPU M"
	MaxStream   int    `json:"server_max_stream_connections"`
}

// fanoutResult is one revision's figures.
type fanoutResult struct {
	fanoutEvent
	// Received is how many subscribers got a changes message for it (all
	// of them for a relevant revision, none for a noop one).
	Received int     `json:"received"`
	P50MS    float64 `json:"p50_ms,omitempty"`
	P99MS    float64 `json:"p99_ms,omitempty"`
	MaxMS    float64 `json:"max_ms,omitempty"` // the last subscriber
	// ProbeMS (noop): until the probe subscribed to --noop-env got it, i.e.
	// the revision was served.
	ProbeMS float64 `json:"probe_ms,omitempty"`
	// Server CPU time from just before the revision to --settle after it
	// reached everyone (or the probe): utime+stime from /proc/PID/stat
	// (10 ms ticks), the threads' run time from /proc/PID/task/*/schedstat
	// (ns), and that minus the idle rate over the same window.
	WindowMS     float64 `json:"window_ms"`
	CPUStatMS    float64 `json:"server_cpu_stat_ms"`
	CPURunMS     float64 `json:"server_cpu_schedstat_ms"`
	CPURunNetMS  float64 `json:"server_cpu_schedstat_minus_idle_ms"`
	Unmeasurable string  `json:"error,omitempty"`
}

func runFanout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFanoutOptions(args, stderr)
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
	if _, err := exec.LookPath("git"); err != nil {
		return errors.New("the git binary is needed (the commits by hand)")
	}
	// Every subscriber is a descriptor here, and one in the server.
	limit, err := connlimit.RaiseFileLimit()
	if err != nil {
		logf("raising the open-file limit: %v (soft limit %d)", err, limit)
	}
	if need := uint64(o.subscribers) + 64; limit < need {
		return fmt.Errorf("the open-file limit is %d, %d subscribers need about %d (raise the hard limit: ulimit -Hn)", limit, o.subscribers, need)
	}

	work := o.work
	if work == "" {
		if work, err = os.MkdirTemp("", "gitflags-bench-fanout-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	if work, err = filepath.Abs(work); err != nil {
		return err
	}
	if entries, err := os.ReadDir(work); err != nil {
		return err
	} else if len(entries) > 0 {
		return fmt.Errorf("--work %s is not empty", work)
	}

	repo := filepath.Join(work, "flags")
	if _, err := gitstore.Init(repo, gitflags.Template(), gitstore.DefaultAuthor()); err != nil {
		return fmt.Errorf("the template repository: %w", err)
	}
	key, err := envClientKey(repo, o.env)
	if err != nil {
		return err
	}
	noopKey, err := envClientKey(repo, o.noopEnv)
	if err != nil {
		return err
	}
	var tokens []string
	tokensFile, err := writeTokens(filepath.Join(work, "tokens.json"), 1, &tokens)
	if err != nil {
		return err
	}
	maxStream := o.subscribers + 64
	srvArgs := []string{"--repo", repo, "--tokens", tokensFile, "--max-stream-connections", strconv.Itoa(maxStream)}
	if serverHasFlag(o.serverBin, "max-streams-per-key") {
		// Every subscriber uses one key: its cap is raised with the streams'
		// (a server built before the flag had no default cap this low).
		srvArgs = append(srvArgs, "--max-streams-per-key", strconv.Itoa(maxStream))
	}
	srvArgs = append(srvArgs, o.serverArgs...)
	srv, err := spawnWriteServer(ctx, &writesOptions{serverBin: o.serverBin, serverProcs: o.serverProcs, readyTimeout: o.readyTimeout}, filepath.Join(work, "server"), srvArgs)
	if err != nil {
		return err
	}
	defer srv.stop()
	pid := srv.cmd.Process.Pid
	logf("gitflags is ready on %s after %.1f s (log %s)", srv.url, srv.startup.Seconds(), srv.logPath)
	pinned := ""
	if o.pin {
		n := runtime.NumCPU()
		if n < 2 {
			return errors.New("--pin needs at least 2 CPUs")
		}
		var serverCPUs []int
		for c := range n - 1 {
			serverCPUs = append(serverCPUs, c)
		}
		if err := pinThreads(pid, serverCPUs); err != nil {
			return fmt.Errorf("--pin: the server: %w", err)
		}
		if err := pinThreads(os.Getpid(), []int{n - 1}); err != nil {
			return fmt.Errorf("--pin: the tool: %w", err)
		}
		pinned = fmt.Sprintf("server CPUs 0-%d, tool CPU %d", n-2, n-1)
	}

	contexts := o.subscribers
	if o.shared > 0 {
		contexts = min(o.shared, o.subscribers)
	}
	rep := &fanoutReport{
		Started: time.Now().UTC(),
		Machine: machine{NProc: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadAvgBefore: loadAvg()},
		Config: fanoutConfig{Subscribers: o.subscribers, Shared: o.shared, Contexts: contexts, Rounds: o.rounds, Env: o.env, Key: key,
			Feature: o.feature, NoopEnv: o.noopEnv, NoopFeature: o.noopFlag, Procs: runtime.GOMAXPROCS(0), ServerProcs: o.serverProcs, MaxStream: maxStream, Pinned: pinned},
		Server:    srv.url,
		Repo:      repo,
		FileLimit: limit,
	}

	d := &fanoutDriver{o: o, repo: repo, url: srv.url, token: tokens[0], key: key, pid: pid, logf: logf,
		client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}}
	runCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		d.closeAll()
		d.readers.Wait()
	}()
	if err := d.connect(runCtx, rep, noopKey); err != nil {
		return err
	}
	if err := d.events(ctx, rep); err != nil {
		return err
	}
	rep.ServerPeakRSS = peakRSS(pid)
	d.verify(rep)
	rep.Machine.LoadAvg = loadAvg()

	if err := writeReport(stdout, rep, o.jsonFile, o.json, func() { printFanout(stdout, rep) }); err != nil {
		return err
	}
	if !rep.OK {
		return fmt.Errorf("verification failed: %d subscribers: %s", rep.FailedSubscribers, strings.Join(rep.Failures[:min(3, len(rep.Failures))], "; "))
	}
	return nil
}

type fanoutDriver struct {
	o      *fanoutOptions
	repo   string
	url    string
	token  string
	key    string
	pid    int
	logf   func(string, ...any)
	client *http.Client

	subs    []*subscriber
	cur     atomic.Pointer[awaited] // what the subscribers' changes are counted against
	probe   *subscriber             // subscribed to --noop-env
	probeAw atomic.Pointer[awaited]
	readers sync.WaitGroup
	initial string
	revs    []fanoutEvent
	next    int64 // the next value written
}

func (d *fanoutDriver) closeAll() {
	for _, s := range append(slices.Clone(d.subs), d.probe) {
		if s != nil && s.conn != nil {
			s.conn.Close()
		}
	}
}

// connect opens the probe and the subscribers and waits for every full
// state; it measures the memory before and after.
func (d *fanoutDriver) connect(ctx context.Context, rep *fanoutReport, noopKey string) error {
	o := d.o
	ws := wsURL(d.url)
	var probeReady sync.WaitGroup
	probeReady.Add(1)
	d.probe = &subscriber{id: -1, watch: o.noopFlag}
	if err := dialSubscriber(ctx, ws, noopKey, d.probe, probeReady.Done, &d.probeAw, &d.readers); err != nil {
		return fmt.Errorf("the probe on %s: %w", o.noopEnv, err)
	}
	probeReady.Wait()
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	rep.ServerRSSBefore = procStatusBytes(d.pid, "VmRSS")
	rep.ToolRSSBefore = procStatusBytes(os.Getpid(), "VmRSS")

	plans := []string{"free", "pro", "enterprise"}
	d.subs = make([]*subscriber, o.subscribers)
	for i := range d.subs {
		c := i
		if o.shared > 0 {
			c = i % o.shared
		}
		d.subs[i] = &subscriber{id: i, watch: o.feature, identifier: fmt.Sprintf("fanout-%06d", c),
			traits: map[string]any{"seq": c, "plan": plans[c%len(plans)], "region": fmt.Sprintf("r%02d", c%17), "beta": c%2 == 0}}
		if o.shared > 0 {
			d.subs[i].identifier = fmt.Sprintf("fanout-shared-%03d", c)
		}
	}
	d.logf("connecting %d subscribers to %s (%d contexts)", o.subscribers, ws, rep.Config.Contexts)
	start := time.Now()
	var ready sync.WaitGroup
	ready.Add(len(d.subs))
	jobs := make(chan *subscriber)
	errs := make(chan error, o.concurrency)
	var dialers sync.WaitGroup
	for range o.concurrency {
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			for s := range jobs {
				if err := dialSubscriber(ctx, ws, d.key, s, ready.Done, &d.cur, &d.readers); err != nil {
					ready.Done()
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, s := range d.subs {
		jobs <- s
	}
	close(jobs)
	dialers.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	if !waitTimeout(&ready, o.timeout) {
		return fmt.Errorf("not every subscriber had its full state after %s", o.timeout)
	}
	rep.ConnectSeconds = time.Since(start).Seconds()
	msgs, err := d.subs[0].snapshot()
	if err != nil || len(msgs) == 0 || msgs[0].typ != "flags" {
		return fmt.Errorf("subscriber 0: no full state (%v, %d messages)", err, len(msgs))
	}
	d.initial = msgs[0].value
	if _, err := strconv.ParseInt(d.initial, 10, 64); err != nil {
		return fmt.Errorf("%s in %s is %s for subscriber 0, want an integer (--feature)", o.feature, o.env, d.initial)
	}
	d.logf("%d subscribers have their full state after %.2f s (%s = %s)", o.subscribers, rep.ConnectSeconds, o.feature, d.initial)
	time.Sleep(time.Second)
	runtime.GC()
	rep.ServerRSSAfter = procStatusBytes(d.pid, "VmRSS")
	rep.ToolRSSAfter = procStatusBytes(os.Getpid(), "VmRSS")
	rep.ServerPerConn = float64(rep.ServerRSSAfter-rep.ServerRSSBefore) / float64(o.subscribers)
	rep.ToolPerConn = float64(rep.ToolRSSAfter-rep.ToolRSSBefore) / float64(o.subscribers)
	// The idle CPU rate (heartbeats, timers), subtracted from each window.
	c0, t0 := taskRunTime(d.pid), time.Now()
	time.Sleep(time.Second)
	rep.IdleCPUPerSecond = ms(taskRunTime(d.pid)-c0) / time.Since(t0).Seconds()
	d.logf("server RSS %s before, %s after: %.1f KB per idle connection; idle CPU %.2f ms/s",
		mib(rep.ServerRSSBefore), mib(rep.ServerRSSAfter), rep.ServerPerConn/1024, rep.IdleCPUPerSecond)
	return nil
}

// events makes the revisions and measures each.
func (d *fanoutDriver) events(ctx context.Context, rep *fanoutReport) error {
	d.next = 700000
	for r := 0; r < d.o.rounds; r++ {
		for _, kind := range []string{"hand", "api"} {
			res, err := d.relevant(ctx, kind, rep)
			if err != nil {
				return err
			}
			rep.Events = append(rep.Events, res)
		}
	}
	res, err := d.noop(ctx, rep)
	if err != nil {
		return err
	}
	rep.Events = append(rep.Events, res)
	res, err = d.relevant(ctx, "hand", rep)
	if err != nil {
		return err
	}
	rep.Events = append(rep.Events, res)
	return nil
}

func (d *fanoutDriver) relevant(ctx context.Context, kind string, rep *fanoutReport) (fanoutResult, error) {
	d.next++
	value := strconv.FormatInt(d.next, 10)
	a := newAwaited(value, len(d.subs))
	d.cur.Store(a)
	ev := fanoutEvent{Name: kind, Value: value}
	c0, s0 := taskRunTime(d.pid), procCPU(d.pid)
	var err error
	if kind == "hand" {
		ev.Revision, ev.start, err = d.handCommit(path.Join("environments", d.o.env, "features", d.o.feature+".json"), d.next, fmt.Sprintf("fanout: %s = %s", d.o.feature, value))
	} else {
		ev.Revision, ev.start, err = d.apiWrite(ctx, d.next)
	}
	if err != nil {
		return fanoutResult{}, fmt.Errorf("%s revision: %w", kind, err)
	}
	select {
	case <-a.done:
	case <-time.After(d.o.timeout):
		return fanoutResult{}, fmt.Errorf("%s revision %s (%s = %s): %d of %d subscribers still without it after %s",
			kind, short(ev.Revision), d.o.feature, value, a.remaining.Load(), len(d.subs), d.o.timeout)
	case <-ctx.Done():
		return fanoutResult{}, ctx.Err()
	}
	time.Sleep(d.o.settle)
	res := d.cpu(fanoutResult{fanoutEvent: ev}, c0, s0, rep)
	d.revs = append(d.revs, ev)
	d.logf("%s revision %s (%s = %s) reached all %d subscribers", kind, short(ev.Revision), d.o.feature, value, len(d.subs))
	return res, nil
}

// noop commits a change to --noop-env only and waits until the probe has it.
func (d *fanoutDriver) noop(ctx context.Context, rep *fanoutReport) (fanoutResult, error) {
	d.next++
	value := fmt.Sprintf("fanout noop %d", d.next)
	js, _ := json.Marshal(value)
	a := newAwaited(string(js), 1)
	d.probeAw.Store(a)
	ev := fanoutEvent{Name: "noop"}
	c0, s0 := taskRunTime(d.pid), procCPU(d.pid)
	var err error
	ev.Revision, ev.start, err = d.handCommit(path.Join("environments", d.o.noopEnv, "features", d.o.noopFlag+".json"), value, "fanout: a change in "+d.o.noopEnv+" only")
	if err != nil {
		return fanoutResult{}, fmt.Errorf("noop revision: %w", err)
	}
	res := fanoutResult{fanoutEvent: ev}
	select {
	case <-a.done:
		msgs, _ := d.probe.snapshot()
		for _, m := range msgs {
			if m.revision == ev.Revision {
				res.ProbeMS = ms(m.at.Sub(ev.start))
			}
		}
	case <-time.After(d.o.timeout):
		return fanoutResult{}, fmt.Errorf("noop revision %s: the probe on %s did not get it after %s", short(ev.Revision), d.o.noopEnv, d.o.timeout)
	case <-ctx.Done():
		return fanoutResult{}, ctx.Err()
	}
	time.Sleep(d.o.settle)
	res = d.cpu(res, c0, s0, rep)
	d.revs = append(d.revs, ev)
	d.logf("noop revision %s served (the probe had it after %.2f ms)", short(ev.Revision), res.ProbeMS)
	return res, nil
}

func (d *fanoutDriver) cpu(res fanoutResult, c0 time.Duration, s0 time.Duration, rep *fanoutReport) fanoutResult {
	c1, s1 := taskRunTime(d.pid), procCPU(d.pid)
	win := time.Since(res.start)
	res.WindowMS = ms(win)
	res.CPUStatMS = ms(s1 - s0)
	res.CPURunMS = ms(c1 - c0)
	res.CPURunNetMS = res.CPURunMS - rep.IdleCPUPerSecond*win.Seconds()
	return res
}

// handCommit commits the file at p with its "value" set, in the served
// repository's work tree with the git binary (the server keeps that work
// tree in step with its own admin writes): write the file, git add, then
// git commit; the clock starts just before git commit.
func (d *fanoutDriver) handCommit(p string, value any, msg string) (string, time.Time, error) {
	raw, err := git(d.repo, "show", "HEAD:"+p)
	if err != nil {
		return "", time.Time{}, err
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		return "", time.Time{}, fmt.Errorf("%s: %w", p, err)
	}
	doc["value"] = value
	content, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return "", time.Time{}, err
	}
	if err := os.WriteFile(filepath.Join(d.repo, filepath.FromSlash(p)), append(content, '\n'), 0o644); err != nil {
		return "", time.Time{}, err
	}
	if _, err := git(d.repo, "add", "--", p); err != nil {
		return "", time.Time{}, err
	}
	who := []string{"GIT_AUTHOR_NAME=gitflags-bench", "GIT_AUTHOR_EMAIL=bench@example.com", "GIT_COMMITTER_NAME=gitflags-bench", "GIT_COMMITTER_EMAIL=bench@example.com"}
	start := time.Now()
	if _, err := gitWith(d.repo, who, nil, "commit", "-q", "--no-verify", "-m", msg); err != nil {
		return "", time.Time{}, err
	}
	rev, err := git(d.repo, "rev-parse", "HEAD")
	if err != nil {
		return "", time.Time{}, err
	}
	return strings.TrimSpace(rev), start, nil
}

// gitWith runs git in dir with extra environment and standard input.
func gitWith(dir string, env []string, stdin []byte, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(gitEnv(), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s in %s: %v: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// apiWrite sets the flag's value with the admin API; the revision is the
// response's ETag.
func (d *fanoutDriver) apiWrite(ctx context.Context, value int64) (string, time.Time, error) {
	body := fmt.Sprintf(`{"feature": {"name": %q}, "enabled": true, "value": {"type": "integer", "value": "%d"}}`, d.o.feature, value)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url+"/api/experiments/environments/"+d.key+"/update-flag-v1/", strings.NewReader(body))
	if err != nil {
		return "", time.Time{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Api-Key "+d.token)
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		return "", start, err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return "", start, fmt.Errorf("update-flag-v1: %s: %s", resp.Status, excerpt(b))
	}
	rev := strings.Trim(strings.TrimPrefix(resp.Header.Get("ETag"), "W/"), `"`)
	if rev == "" {
		return "", start, errors.New("update-flag-v1: 204 without an ETag")
	}
	return rev, start, nil
}

// verify checks every subscriber and fills in the figures.
func (d *fanoutDriver) verify(rep *fanoutReport) {
	lats := make([][]time.Duration, len(d.revs))
	for _, s := range d.subs {
		fail, lat := checkSubscriber(s, d.initial, d.revs)
		if fail != "" {
			rep.FailedSubscribers++
			if len(rep.Failures) < 20 {
				rep.Failures = append(rep.Failures, fail)
			}
			continue
		}
		for e, l := range lat {
			lats[e] = append(lats[e], l)
		}
	}
	// Received counts, from the messages themselves.
	for e := range rep.Events {
		rev := rep.Events[e].Revision
		n := 0
		for _, s := range d.subs {
			msgs, _ := s.snapshot()
			for _, m := range msgs {
				if m.revision == rev && m.typ != "flags" {
					n++
					break
				}
			}
		}
		rep.Events[e].Received = n
		if rep.Events[e].Name == "noop" {
			if n > 0 {
				rep.Failures = append(rep.Failures, fmt.Sprintf("%d subscribers received a message for the noop revision %s", n, short(rev)))
			}
			continue
		}
		l := lats[e]
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		rep.Events[e].P50MS = ms(l[(len(l)-1)*50/100])
		rep.Events[e].P99MS = ms(l[(len(l)-1)*99/100])
		rep.Events[e].MaxMS = ms(l[len(l)-1])
	}
	rep.OK = len(rep.Failures) == 0
}

func printFanout(w io.Writer, r *fanoutReport) {
	c := r.Config
	fmt.Fprintf(w, "fanout: %d subscribers (%d distinct contexts) on %s, %s of %s (key %s)\n", c.Subscribers, c.Contexts, r.Server, c.Feature, c.Env, c.Key)
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s; load %s -> %s; tool GOMAXPROCS %d, server %d\n",
		r.Machine.NProc, r.Machine.CPUModel, r.Machine.GoVersion, r.Machine.LoadAvgBefore, r.Machine.LoadAvg, c.Procs, c.ServerProcs)
	if c.Pinned != "" {
		fmt.Fprintf(w, "pinned: %s\n", c.Pinned)
	}
	fmt.Fprintf(w, "connect: all full states after %.2f s\n", r.ConnectSeconds)
	fmt.Fprintf(w, "server memory: VmRSS %s before, %s after connecting: %.1f KB per idle connection (peak %s)\n",
		mib(r.ServerRSSBefore), mib(r.ServerRSSAfter), r.ServerPerConn/1024, mib(r.ServerPeakRSS))
	fmt.Fprintf(w, "tool memory: %.1f KB per connection; server idle CPU %.2f ms/s\n", r.ToolPerConn/1024, r.IdleCPUPerSecond)
	fmt.Fprintf(w, "%-5s %-12s %-7s %9s %9s %9s %9s %9s %10s %10s\n", "kind", "revision", "value", "received", "p50 ms", "p99 ms", "max ms", "window", "cpu(stat)", "cpu(sched)")
	for _, e := range r.Events {
		val := e.Value
		if e.Name == "noop" {
			val = "-"
		}
		fmt.Fprintf(w, "%-5s %-12s %-7s %9d %9.2f %9.2f %9.2f %9.1f %10.1f %10.2f", e.Name, short(e.Revision), val, e.Received, e.P50MS, e.P99MS, e.MaxMS, e.WindowMS, e.CPUStatMS, e.CPURunMS)
		if e.Name == "noop" {
			fmt.Fprintf(w, "  (served after %.2f ms; net of idle %.2f ms)", e.ProbeMS, e.CPURunNetMS)
		}
		fmt.Fprintln(w)
	}
	if r.OK {
		fmt.Fprintln(w, "verified: every subscriber got exactly one changes message per relevant revision, with its value, and nothing for the noop revision")
	} else {
		fmt.Fprintf(w, "VERIFICATION FAILED (%d subscribers):\n", r.FailedSubscribers)
		for _, f := range r.Failures {
			fmt.Fprintln(w, "  "+f)
		}
	}
}

// serverHasFlag reports whether gitflags serve --help (bin, or gitflags in
// PATH) lists --name.
func serverHasFlag(bin, name string) bool {
	if bin == "" {
		bin = "gitflags"
	}
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	return bytes.Contains(out, []byte("-"+name+" "))
}

// envClientKey reads an environment's client key at HEAD and refuses one
// with review_required (its admin writes are proposals).
func envClientKey(repo, env string) (string, error) {
	raw, err := git(repo, "show", "HEAD:"+path.Join("environments", env, "environment.json"))
	if err != nil {
		return "", fmt.Errorf("environment %q: %w", env, err)
	}
	var e struct {
		ClientKey      string `json:"client_key"`
		ReviewRequired bool   `json:"review_required"`
	}
	if err := json.Unmarshal([]byte(raw), &e); err != nil || e.ClientKey == "" {
		return "", fmt.Errorf("environments/%s/environment.json: no client_key (%v)", env, err)
	}
	if e.ReviewRequired {
		return "", fmt.Errorf("environment %q has review_required: its admin writes are proposals; choose another", env)
	}
	return e.ClientKey, nil
}

// procStatusBytes reads a "kB" field of /proc/PID/status (VmRSS, VmHWM).
func procStatusBytes(pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			if f := strings.Fields(rest); len(f) >= 1 {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// taskRunTime is the time process pid's threads have run on a CPU, from
// /proc/PID/task/*/schedstat (ns; threads that exited are not counted,
// which Go's threads rarely do).
func taskRunTime(pid int) time.Duration {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(data)); len(f) > 0 {
			if ns, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				total += time.Duration(ns)
			}
		}
	}
	return total
}

// waitTimeout waits for wg, at most d.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
