package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gitflags/gitflags"
	"github.com/gitflags/gitflags/gitstore"
	"github.com/gitflags/gitflags/httpapi"
	"github.com/gitflags/gitflags/identities"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const prodKey = "prd_Vn4sT8wQ1zLk6PjH9rXc" // the template's production client key

// fixture is a real gitflags server on loopback serving a real Git
// repository made from the template.
type fixture struct {
	t        *testing.T
	dir      string
	repo     *gitstore.Repo
	store    *identities.BoltStore
	addr     string
	srv      *httpapi.Server
	hs       *http.Server
	ln       *gate
	done     chan struct{}
	hc       *http.Client
	requests atomic.Int64 // stream requests
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("the git binary is needed to commit into the test repository")
	}
	f := &fixture{t: t, dir: filepath.Join(t.TempDir(), "flags")}
	if _, err := gitstore.Init(f.dir, gitflags.Template(), gitstore.DefaultAuthor()); err != nil {
		t.Fatal(err)
	}
	repo, err := gitstore.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	f.repo = repo
	store, err := identities.Open(filepath.Join(t.TempDir(), "identities.db"))
	if err != nil {
		t.Fatal(err)
	}
	f.store = store
	tr := &http.Transport{}
	f.hc = &http.Client{Transport: tr}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.start(ln)
	t.Cleanup(func() {
		f.stop()
		tr.CloseIdleConnections()
		_ = store.Close()
		repo.Close()
	})
	return f
}

// start serves a new server instance (as a restarted process would) with
// the repository's head.
func (f *fixture) start(ln net.Listener) {
	f.t.Helper()
	f.srv = httpapi.New(httpapi.Options{Identities: f.store, Log: slog.New(slog.DiscardHandler)})
	f.publish()
	f.ln = &gate{Listener: ln, conns: map[net.Conn]bool{}}
	h := f.srv.Handler()
	f.hs = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == StreamPath {
			f.requests.Add(1)
		}
		h.ServeHTTP(w, r)
	})}
	f.done = make(chan struct{})
	go func(hs *http.Server, ln net.Listener, done chan struct{}) {
		defer close(done)
		_ = hs.Serve(ln)
	}(f.hs, f.ln, f.done)
}

// stop shuts the server down: its streams close with 1001, it stops
// listening.
func (f *fixture) stop() {
	f.srv.CloseStreams()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.hs.Shutdown(ctx); err != nil {
		f.t.Errorf("shutdown: %v", err)
	}
	<-f.done
	f.ln.drop() // hijacked connections
}

// restart starts a new server instance on the same address.
func (f *fixture) restart() {
	f.t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.start(ln)
}

func (f *fixture) url() string { return "http://" + f.addr }

// publish serves the repository's head.
func (f *fixture) publish() {
	f.t.Helper()
	snap, err := f.repo.Snapshot("HEAD", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.srv.Publish(snap); err != nil {
		f.t.Fatal(err)
	}
}

// commit sets a feature's value in an environment with the git binary and
// returns the commit's hash (not yet served: see publish).
func (f *fixture) commit(env, feature string, value any) string {
	f.t.Helper()
	p := filepath.Join(f.dir, "environments", env, "features", feature+".json")
	m := map[string]any{}
	if data, err := os.ReadFile(p); err == nil {
		if err := json.Unmarshal(data, &m); err != nil {
			f.t.Fatal(err)
		}
	}
	m["value"] = value
	out, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(p, append(out, '\n'), 0o644); err != nil {
		f.t.Fatal(err)
	}
	f.git("add", "-A")
	f.git("commit", "-qm", env+": "+feature)
	return f.git("rev-parse", "HEAD")
}

func (f *fixture) git(args ...string) string {
	f.t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=T", "-c", "user.email=t@example.com"}, args...)...)
	cmd.Dir = f.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("git %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// sdk returns the flags the SDK API evaluates: the environment's, or an
// identity's with transient traits.
func (f *fixture) sdk(identifier string, traits map[string]any) map[string]Flag {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.url()+"/api/v1/flags/", nil)
	if identifier != "" {
		var ts []map[string]any
		for k, v := range traits {
			ts = append(ts, map[string]any{"trait_key": k, "trait_value": v, "transient": true})
		}
		body, _ := json.Marshal(map[string]any{"identifier": identifier, "traits": ts})
		req, _ = http.NewRequest(http.MethodPost, f.url()+"/api/v1/identities/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Environment-Key", prodKey)
	resp, err := f.hc.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []struct {
		Feature struct {
			Name string `json:"name"`
		} `json:"feature"`
		Enabled bool            `json:"enabled"`
		Value   json.RawMessage `json:"feature_state_value"`
	}
	var ident struct {
		Flags json.RawMessage `json:"flags"`
	}
	dec := json.NewDecoder(resp.Body)
	if identifier != "" {
		if err := dec.Decode(&ident); err != nil {
			f.t.Fatal(err)
		}
		err = json.Unmarshal(ident.Flags, &list)
	} else {
		err = dec.Decode(&list)
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		f.t.Fatalf("SDK API: %d %v", resp.StatusCode, err)
	}
	raw := map[string]json.RawMessage{}
	for _, fl := range list {
		raw[fl.Feature.Name], _ = json.Marshal(map[string]any{"enabled": fl.Enabled, "value": fl.Value})
	}
	flags, err := decodeFlags(raw)
	if err != nil {
		f.t.Fatal(err)
	}
	return flags
}

// gate is a listener whose connections can be dropped, and which refuses
// connections while down (it accepts and closes them at once).
type gate struct {
	net.Listener
	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func (g *gate) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		g.mu.Lock()
		if g.down {
			g.mu.Unlock()
			c.Close()
			continue
		}
		g.conns[c] = true
		g.mu.Unlock()
		return c, nil
	}
}

// drop closes every connection and refuses new ones until up.
func (g *gate) drop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = true
	for c := range g.conns {
		c.Close()
	}
	clear(g.conns)
}

func (g *gate) up() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = false
}

// changes collects a client's changes.
func changes(opts *Options) chan Change {
	ch := make(chan Change, 100)
	opts.OnChange = func(c Change) { ch <- c }
	return ch
}

func next(t *testing.T, ch chan Change) Change {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(20 * time.Second):
		t.Fatal("no change arrived")
		return Change{}
	}
}

func dial(t *testing.T, opts Options) *Client {
	t.Helper()
	if opts.Key == "" {
		opts.Key = prodKey
	}
	opts.MinBackoff, opts.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sameFlags(t *testing.T, got, want map[string]Flag) {
	t.Helper()
	for _, m := range []map[string]Flag{got, want} {
		for k, f := range m {
			f.Variant = "" // the SDK API has none
			m[k] = f
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("client flags %v\nserver flags %v", got, want)
	}
}

// TestFirstState: the first state is what the SDK API evaluates for the
// same context, at the served revision; the getters follow Flagsmith's
// enabled/value split.
func TestFirstState(t *testing.T) {
	f := newFixture(t)
	traits := map[string]any{"plan": "pro", "lifetime_value": 5000}
	id := dial(t, Options{URL: f.url(), Identifier: "u1", Traits: traits})
	sameFlags(t, id.Flags(), f.sdk("u1", traits))
	if head := f.git("rev-parse", "HEAD"); id.Revision() != head {
		t.Errorf("revision %q, want %q", id.Revision(), head)
	}
	if got := id.Int("max_cart_items", 0); got != 200 {
		t.Errorf("max_cart_items %d, want 200 (the premium segment's value)", got)
	}
	env := dial(t, Options{URL: f.url() + StreamPath})
	sameFlags(t, env.Flags(), f.sdk("", nil))

	// Getters with the served values.
	for key, fl := range env.Flags() {
		if env.Enabled(key) != fl.Enabled {
			t.Errorf("Enabled(%s) = %v, flag %+v", key, env.Enabled(key), fl)
		}
		s, isString := fl.Value.(string)
		if got := env.String(key, "\x00def"); fl.Enabled && isString && got != s || (!fl.Enabled || !isString) && got != "\x00def" {
			t.Errorf("String(%s) = %q, flag %+v", key, got, fl)
		}
		n, isInt := fl.Value.(int64)
		if got := env.Int(key, -7); fl.Enabled && isInt && got != n || (!fl.Enabled || !isInt) && got != -7 {
			t.Errorf("Int(%s) = %d, flag %+v", key, got, fl)
		}
	}
	if env.Enabled("no_such_flag") || env.Bool("no_such_flag", true) != true || env.Float("no_such_flag", 1.5) != 1.5 {
		t.Error("a missing flag does not give the defaults")
	}
}

// TestCommit: a commit served by the server reaches OnChange as exactly
// the key it changed, and the getters return the new value.
func TestCommit(t *testing.T) {
	f := newFixture(t)
	opts := Options{URL: f.url()}
	ch := changes(&opts)
	c := dial(t, opts)
	f.commit("production", "api_rate_limit", 1234)
	head := f.commit("staging", "api_rate_limit", 1) // another environment: nothing
	f.publish()
	got := next(t, ch)
	if !slices.Equal(got.Changed, []string{"api_rate_limit"}) || len(got.Removed) != 0 || got.Revision != head {
		t.Fatalf("change %+v, want api_rate_limit at %s", got, head)
	}
	if c.Int("api_rate_limit", 0) != 1234 || c.Float("api_rate_limit", 0) != 1234 || c.Revision() != head {
		t.Fatalf("after the change: api_rate_limit %d, revision %s", c.Int("api_rate_limit", 0), c.Revision())
	}
	sameFlags(t, c.Flags(), f.sdk("", nil))
}

// TestSetTraits: new traits sent on the open connection change the
// segment-targeted flag, as the server evaluates it.
func TestSetTraits(t *testing.T) {
	f := newFixture(t)
	opts := Options{URL: f.url(), Identifier: "u2", Traits: map[string]any{"plan": "free"}}
	ch := changes(&opts)
	c := dial(t, opts)
	if c.Int("max_cart_items", -1) == 200 {
		t.Fatal("max_cart_items is already the premium value")
	}
	pro := map[string]any{"plan": "pro", "lifetime_value": 2000}
	if err := c.SetTraits(context.Background(), pro); err != nil {
		t.Fatal(err)
	}
	got := next(t, ch)
	if !slices.Contains(got.Changed, "max_cart_items") {
		t.Fatalf("change %+v, want max_cart_items", got)
	}
	if n := c.Int("max_cart_items", 0); n != 200 {
		t.Fatalf("max_cart_items %d after the traits, want 200", n)
	}
	sameFlags(t, c.Flags(), f.sdk("u2", pro))

	env := dial(t, Options{URL: f.url()})
	if err := env.SetTraits(context.Background(), pro); !errors.Is(err, ErrNoIdentifier) {
		t.Errorf("traits without an identifier: %v", err)
	}
}

// TestResume: the network drops; a commit is served meanwhile; the client
// reconnects with its last revision and gets only the changes since.
func TestResume(t *testing.T) {
	f := newFixture(t)
	opts := Options{URL: f.url(), Identifier: "u3"}
	ch := changes(&opts)
	c := dial(t, opts)
	f.ln.drop()
	head := f.commit("production", "api_rate_limit", 77)
	f.publish()
	f.ln.up()
	got := next(t, ch)
	if !slices.Equal(got.Changed, []string{"api_rate_limit"}) || len(got.Removed) != 0 || got.Revision != head {
		t.Fatalf("change %+v, want api_rate_limit at %s", got, head)
	}
	if c.Int("api_rate_limit", 0) != 77 {
		t.Fatalf("api_rate_limit %d, want 77", c.Int("api_rate_limit", 0))
	}
	c.mu.Lock()
	st := c.stats
	c.mu.Unlock()
	if st.connects != 2 || st.fullStates != 1 || st.resumes != 1 {
		t.Fatalf("%+v: want a second connection that resumed without a full state", st)
	}
}

// TestServerRestart: the server shuts down (close 1001), a commit lands
// while it is down, a new server process starts on the same address: the
// client reconnects, gets the full state (the new server does not know the
// old revision) and reports exactly the key that changed.
func TestServerRestart(t *testing.T) {
	f := newFixture(t)
	opts := Options{URL: f.url(), Identifier: "u4", Traits: map[string]any{"plan": "pro", "lifetime_value": 5000}}
	ch := changes(&opts)
	c := dial(t, opts)
	f.stop()
	head := f.commit("production", "api_rate_limit", 4321)
	f.restart()
	got := next(t, ch)
	if !slices.Equal(got.Changed, []string{"api_rate_limit"}) || len(got.Removed) != 0 || got.Revision != head {
		t.Fatalf("change %+v, want api_rate_limit at %s", got, head)
	}
	eventually(t, "connected", c.Connected)
	sameFlags(t, c.Flags(), f.sdk("u4", opts.Traits))
	c.mu.Lock()
	st := c.stats
	c.mu.Unlock()
	if st.fullStates != 2 {
		t.Fatalf("%+v: want a second full state", st)
	}
	// The traits are sent again: the premium value is kept.
	if c.Int("max_cart_items", 0) != 200 {
		t.Fatalf("max_cart_items %d after the restart", c.Int("max_cart_items", 0))
	}
}

// TestUnauthorized: a wrong key is a 401 before the upgrade; the client
// reports it and does not retry.
func TestUnauthorized(t *testing.T) {
	f := newFixture(t)
	c, err := New(context.Background(), Options{URL: f.url(), Key: "wrong", MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c.Wait(ctx)
	var se *StatusError
	if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &se) || !strings.Contains(se.Detail, "invalid environment key") {
		t.Fatalf("Wait: %v, want a 401 with the server's detail", err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("the connection loop still runs after a 401")
	}
	if n := f.requests.Load(); n != 1 {
		t.Fatalf("%d stream requests, want 1", n)
	}
	if !errors.Is(c.Err(), ErrUnauthorized) {
		t.Fatalf("Err: %v", c.Err())
	}
	if _, err := Dial(ctx, Options{URL: f.url(), Key: "wrong"}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Dial: %v", err)
	}
}

// TestSlowCallback: a callback that blocks does not stop the stream: the
// getters follow the next revisions, and the callback's next call has
// every key changed meanwhile, once.
func TestSlowCallback(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	var calls []Change
	var mu sync.Mutex
	first := make(chan struct{})
	c := dial(t, Options{URL: f.url(), OnChange: func(ch Change) {
		mu.Lock()
		calls = append(calls, ch)
		n := len(calls)
		mu.Unlock()
		if n == 1 {
			close(first)
			<-release
		}
	}})
	f.commit("production", "api_rate_limit", 1)
	f.publish()
	<-first
	f.commit("production", "api_rate_limit", 2)
	f.publish()
	head := f.commit("production", "max_cart_items", 75)
	f.publish()
	eventually(t, "the client reads while the callback blocks", func() bool { return c.Revision() == head })
	if c.Int("api_rate_limit", 0) != 2 || c.Int("max_cart_items", 0) != 75 {
		t.Fatalf("getters: %v", c.Flags())
	}
	close(release)
	eventually(t, "a second call", func() bool { mu.Lock(); defer mu.Unlock(); return len(calls) == 2 })
	mu.Lock()
	got := calls[1]
	mu.Unlock()
	if !slices.Equal(got.Changed, []string{"api_rate_limit", "max_cart_items"}) || got.Revision != head {
		t.Fatalf("merged change %+v", got)
	}
}

// TestCloseAndCancel: Close and cancelling New's context end every
// goroutine of the client.
func TestCloseAndCancel(t *testing.T) {
	f := newFixture(t)
	ignore := goleak.IgnoreCurrent()
	c := dial(t, Options{URL: f.url()})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(context.Background()); err != nil {
		t.Fatalf("Wait after Close with a state: %v", err)
	}
	goleak.VerifyNone(t, ignore)

	ctx, cancel := context.WithCancel(context.Background())
	c, err := New(ctx, Options{URL: f.url(), Key: prodKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-c.runDone
	<-c.dspDone
	goleak.VerifyNone(t, ignore)

	// Closed before any state, while it cannot connect.
	f.ln.drop()
	c, err = New(context.Background(), Options{URL: f.url(), Key: prodKey})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := c.Wait(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	f.ln.up()
	goleak.VerifyNone(t, ignore)
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		err  string
	}{
		{Options{Key: "k"}, "URL is empty"},
		{Options{URL: "ftp://x", Key: "k"}, "scheme"},
		{Options{URL: "http://x"}, "Key is empty"},
		{Options{URL: "http://x", Key: "k", Traits: map[string]any{"a": 1}}, "identifier"},
		{Options{URL: "http://x", Key: "k", HTTPClient: &http.Client{Timeout: time.Second}}, "Timeout"},
	} {
		if _, err := New(context.Background(), tc.opts); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: %v, want %q", tc.opts, err, tc.err)
		}
	}
	for in, want := range map[string]string{
		"http://h:1":                "http://h:1/api/v1/stream",
		"https://h/":                "https://h/api/v1/stream",
		"ws://h/base":               "ws://h/base/api/v1/stream",
		"wss://h/api/v1/stream?x=1": "wss://h/api/v1/stream?x=1",
	} {
		if got, err := streamURL(in); err != nil || got != want {
			t.Errorf("streamURL(%s) = %s, %v, want %s", in, got, err, want)
		}
	}
}
