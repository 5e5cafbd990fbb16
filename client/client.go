// Package client is a Go client for gitflags' websocket stream of evaluated
// flags (GET /api/v1/stream, protocol version 1; see the README).
//
// A Client connects with an environment key, subscribes as the environment
// or as an identity with traits, and keeps that subscriber's evaluated flags
// in memory: the full state the server sends on subscribe, then the changes
// it sends for every served revision or trait change. Reads (Enabled, Flag,
// String, Int, Float, Bool, Revision) never touch the network.
//
//	c, err := client.New(ctx, client.Options{URL: "http://127.0.0.1:8080", Key: key, Identifier: "u1"})
//	if err != nil { ... }
//	defer c.Close()
//	c.OnChange(func(ch client.Change) { log.Println(ch.Revision, ch.Changed, ch.Removed) })
//	if err := c.Wait(ctx); err != nil { ... } // the first full state, or a fatal error
//	limit := c.Int("api_rate_limit", 100)
//
// Connection: when the connection breaks (the server restarts or goes away,
// the network drops, no message arrives within Options.ReadTimeout while
// the server sends a heartbeat every 15 s), the client reconnects with
// exponential backoff and full jitter (at least a Retry-After the server
// sends) and resubscribes with the same identifier and traits and the last
// revision it saw, so the server answers with only the changes since (or the
// full state when it no longer knows that revision). Meanwhile the getters
// keep answering with the last state. A 401 (a wrong key, or an environment
// that was removed) or another 4xx refusal of the upgrade, and a protocol
// violation reported in answer to the subscribe (an invalid identifier or
// traits), end the client: they would fail again. Err and Wait report them.
//
// Goroutines: a client runs two, the connection loop and the callback
// dispatcher; both end when Close returns or when the context given to New
// is cancelled.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// StreamPath is the path of the websocket stream on a gitflags server.
const StreamPath = "/api/v1/stream"

// ProtocolVersion is the stream protocol version the client speaks.
const ProtocolVersion = 1

// Defaults of Options.
const (
	DefaultMinBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	DefaultReadTimeout  = 45 * time.Second // three server heartbeats
	DefaultWriteTimeout = 10 * time.Second
	DefaultDialTimeout  = 15 * time.Second
	DefaultReadLimit    = 32 << 20
)

// Options configure a Client.
type Options struct {
	// URL is the server's address: its base URL (http://host:8080, or
	// https://, ws://, wss://), to which StreamPath is added, or the
	// stream's full URL ending in /api/v1/stream.
	URL string
	// Key is the environment key (a client key, or a server key "ser.…"),
	// sent in the X-Environment-Key header.
	Key string
	// Identifier subscribes as that identity (its stored traits merged with
	// Traits). Empty: the environment's flags.
	Identifier string
	// Traits are sent with the subscription (they need an Identifier); the
	// server uses them for evaluation only and does not store them.
	Traits map[string]any
	// OnChange, when set, is registered before connecting (as OnChange
	// does), so it misses no change.
	OnChange func(Change)

	// HTTPClient makes the upgrade request (its Timeout must be zero: the
	// websocket library refuses a client timeout; use DialTimeout).
	// Default: http.DefaultClient.
	HTTPClient *http.Client
	// Header is added to the upgrade request (for a proxy's authentication,
	// say). X-Environment-Key is set from Key.
	Header http.Header
	// Logger logs connections, reconnections and server error messages.
	// Default: nothing is logged.
	Logger *slog.Logger

	// MinBackoff and MaxBackoff bound the delay before a reconnection: the
	// n-th consecutive failure waits a random duration between half of and
	// min(MaxBackoff, MinBackoff·2ⁿ). A connection that received flags
	// resets n.
	MinBackoff, MaxBackoff time.Duration
	// ReadTimeout: a connection where no message (flags, changes or
	// heartbeat) arrived for this long is closed and reconnected.
	ReadTimeout time.Duration
	// WriteTimeout bounds each message the client writes.
	WriteTimeout time.Duration
	// DialTimeout bounds each connection attempt (TCP, TLS and upgrade).
	DialTimeout time.Duration
	// ReadLimit is the largest message accepted from the server, in bytes.
	ReadLimit int64
}

// Flag is a flag's evaluated state for the subscriber.
type Flag struct {
	Enabled bool
	// Value is nil, a bool, a string, an int64 (a whole JSON number that
	// fits), a float64 (another number), or for other JSON the value as
	// encoding/json decodes it with those number rules.
	Value any
	// Variant is the multivariate variant that applied, if any.
	Variant string
}

// Change is what one or more messages from the server changed in the
// client's flags. Changes that arrive while a callback is still running are
// merged into the next Change (a slow callback sees the latest state, not a
// backlog), so a key appears once.
type Change struct {
	// Revision is the served revision (the commit) after the change.
	Revision string
	// Changed are the keys of flags added or whose state changed, sorted.
	Changed []string
	// Removed are the keys of flags that no longer exist for the
	// subscriber, sorted.
	Removed []string
}

// Errors.
var (
	// ErrUnauthorized: the server refused the key (401). Errors from Err and
	// Wait match it with errors.Is.
	ErrUnauthorized = errors.New("the server refused the environment key (401)")
	// ErrClosed: the client was closed (or its context cancelled).
	ErrClosed = errors.New("client closed")
	// ErrNoIdentifier: traits need an identifier.
	ErrNoIdentifier = errors.New("traits need an identifier: set Options.Identifier")
)

// StatusError is a refused upgrade request.
type StatusError struct {
	StatusCode int
	Detail     string        // the server's "detail", or its body
	RetryAfter time.Duration // from a Retry-After header
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("gitflags stream: HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is makes a 401 match ErrUnauthorized.
func (e *StatusError) Is(target error) bool {
	return target == ErrUnauthorized && e.StatusCode == http.StatusUnauthorized
}

// fatal reports whether a refusal would come back on every retry: 4xx
// except timeouts and rate limits.
func (e *StatusError) fatal() bool {
	c := e.StatusCode
	return c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooEarly && c != http.StatusTooManyRequests
}

// CloseError is a connection the server closed with a close code in answer
// to the subscription (an invalid identifier or traits, an unsupported
// version, a key no longer valid). It ends the client.
type CloseError struct {
	Code   websocket.StatusCode
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("gitflags stream: the server refused the subscription (close %d): %s", int(e.Code), e.Reason)
}

// Client keeps one subscriber's evaluated flags up to date. Its methods are
// safe for concurrent use.
type Client struct {
	opts   Options
	url    string
	header http.Header
	log    *slog.Logger

	ctx     context.Context
	cancel  context.CancelFunc
	runDone chan struct{}
	dspDone chan struct{}
	ready   chan struct{} // closed at the first full state or a fatal error

	// writeMu orders the writes on a connection: the subscribe before any
	// traits message. It is never held while mu is waited for by a reader
	// of flags for long: mu is only held for memory operations.
	writeMu sync.Mutex

	mu        sync.Mutex
	conn      *websocket.Conn // the open connection, once subscribed
	flags     map[string]Flag
	revision  string
	haveState bool
	traits    map[string]any
	traitsGen uint64 // incremented by SetTraits
	resumable bool   // revision describes flags evaluated with traits
	fatal     error
	lastErr   error
	callbacks map[uint64]func(Change)
	nextCB    uint64
	pending   map[string]struct{} // keys changed since the last dispatch
	pendRev   string
	notify    chan struct{}
	stats     stats
	closeOnce sync.Once
}

// stats count what the connection loop did (for tests).
type stats struct {
	connects, fullStates, resumes int
}

// New validates opts and starts a client in the background: it returns at
// once, before connecting. ctx is the client's lifetime: cancelling it ends
// the client as Close does. Use Wait for the first state, or Dial.
func New(ctx context.Context, opts Options) (*Client, error) {
	u, err := streamURL(opts.URL)
	if err != nil {
		return nil, err
	}
	if opts.Key == "" {
		return nil, errors.New("client: Options.Key is empty")
	}
	if len(opts.Traits) > 0 && opts.Identifier == "" {
		return nil, ErrNoIdentifier
	}
	if opts.HTTPClient != nil && opts.HTTPClient.Timeout != 0 {
		return nil, errors.New("client: Options.HTTPClient.Timeout must be zero (use DialTimeout)")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.MinBackoff, DefaultMinBackoff)
	def(&opts.MaxBackoff, DefaultMaxBackoff)
	def(&opts.ReadTimeout, DefaultReadTimeout)
	def(&opts.WriteTimeout, DefaultWriteTimeout)
	def(&opts.DialTimeout, DefaultDialTimeout)
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = DefaultReadLimit
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	header := opts.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	header.Set("X-Environment-Key", opts.Key)
	cctx, cancel := context.WithCancel(ctx)
	c := &Client{
		opts: opts, url: u, header: header, log: log,
		ctx: cctx, cancel: cancel,
		runDone: make(chan struct{}), dspDone: make(chan struct{}), ready: make(chan struct{}),
		flags: map[string]Flag{}, traits: maps.Clone(opts.Traits),
		callbacks: map[uint64]func(Change){}, pending: map[string]struct{}{},
		notify: make(chan struct{}, 1),
	}
	if opts.OnChange != nil {
		c.OnChange(opts.OnChange)
	}
	go c.run()
	go c.dispatch()
	return c, nil
}

// Dial is New followed by Wait(ctx): it returns once the client has the
// first full state. ctx is also the client's lifetime (as for New): to bound
// only the wait, use New and Wait with a context of its own. On error the
// client is closed.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	c, err := New(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := c.Wait(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// streamURL is the stream's URL for Options.URL.
func streamURL(s string) (string, error) {
	if s == "" {
		return "", errors.New("client: Options.URL is empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("client: Options.URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return "", fmt.Errorf("client: Options.URL %q: the scheme must be http, https, ws or wss", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("client: Options.URL %q has no host", s)
	}
	if !strings.HasSuffix(u.Path, StreamPath) {
		u.Path = strings.TrimSuffix(u.Path, "/") + StreamPath
	}
	return u.String(), nil
}

// Wait blocks until the client has its first full state (nil), the client
// ends with a fatal error (that error), it is closed (ErrClosed) or ctx is
// done (ctx's error, with the last connection error if there was one).
func (c *Client) Wait(ctx context.Context) error {
	select {
	case <-c.ready:
	case <-c.ctx.Done():
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.haveState:
		return nil
	case c.fatal != nil:
		return c.fatal
	case c.ctx.Err() != nil:
		return ErrClosed
	case c.lastErr != nil:
		return fmt.Errorf("%w (last connection error: %v)", ctx.Err(), c.lastErr)
	}
	return ctx.Err()
}

// Ready is closed when the client has its first full state or ended with a
// fatal error (see Err).
func (c *Client) Ready() <-chan struct{} { return c.ready }

// Done is closed when the client has stopped connecting: after Close, the
// cancellation of New's context, or a fatal error (see Err).
func (c *Client) Done() <-chan struct{} { return c.runDone }

// Err is the fatal error that ended the client (a 401, say), or nil.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatal
}

// Connected reports whether the client has an open, subscribed connection.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// Close ends the client's connection and goroutines and returns when they
// have ended; the getters keep answering with the last state. It must not be
// called from a change callback (it waits for the callback to return);
// cancel New's context there instead.
func (c *Client) Close() error {
	c.closeOnce.Do(c.cancel)
	<-c.runDone
	<-c.dspDone
	return nil
}

// OnChange registers f to be called after each change of the flags (not
// for the first full state: read it after Wait). Callbacks run one at a
// time, in the order registered, on a goroutine of the client, never with
// the client's lock held: they may call the getters and SetTraits. A slow
// callback does not delay the reading of the stream; the changes meanwhile
// are merged into its next call. The returned function unregisters f.
func (c *Client) OnChange(f func(Change)) (remove func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.nextCB
	c.nextCB++
	c.callbacks[id] = f
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.callbacks, id)
	}
}

// SetTraits replaces the traits sent with the subscription ({} or nil
// clears them; stored traits stay) and sends them on the open connection;
// the server answers with the flags that changed, which reach OnChange. The
// traits are kept for every later reconnection. An error means the send
// failed (or there is no Identifier); the traits are still kept and apply
// at the next connection.
func (c *Client) SetTraits(ctx context.Context, traits map[string]any) error {
	if c.opts.Identifier == "" {
		return ErrNoIdentifier
	}
	if traits == nil {
		traits = map[string]any{}
	}
	msg, err := json.Marshal(map[string]any{"type": "traits", "traits": traits})
	if err != nil {
		return fmt.Errorf("client: traits: %w", err)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.Lock()
	c.traits = maps.Clone(traits)
	c.traitsGen++
	// The answer may not arrive before the connection breaks: the next
	// subscription asks for the full state.
	c.resumable = false
	conn := c.conn
	c.mu.Unlock()
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	if conn == nil {
		return nil // sent with the next subscription
	}
	return c.write(ctx, conn, msg)
}

func (c *Client) write(ctx context.Context, conn *websocket.Conn, msg []byte) error {
	wctx, cancel := context.WithTimeout(ctx, c.opts.WriteTimeout)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, msg)
}

// Revision is the served revision of the current flags ("" before the
// first state).
func (c *Client) Revision() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revision
}

// Flags returns a copy of all the flags.
func (c *Client) Flags() map[string]Flag {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.flags)
}

// Flag returns a flag's state and whether the flag exists for the
// subscriber.
func (c *Client) Flag(key string) (Flag, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.flags[key]
	return f, ok
}

// Enabled reports whether the flag exists and is enabled (Flagsmith's
// is_feature_enabled).
func (c *Client) Enabled(key string) bool {
	f, ok := c.Flag(key)
	return ok && f.Enabled
}

// value is an existing, enabled flag's value.
func (c *Client) value(key string) (any, bool) {
	f, ok := c.Flag(key)
	if !ok || !f.Enabled {
		return nil, false
	}
	return f.Value, true
}

// String returns the flag's value when the flag exists, is enabled and its
// value is a string; otherwise def. (The value getters treat a disabled
// flag as absent: a flag switched off falls back to the caller's default.
// Use Flag for the value of a disabled flag.)
func (c *Client) String(key, def string) string {
	if v, ok := c.value(key); ok {
		if s, ok := v.(string); ok {
			return s
		}
	}
	return def
}

// Int returns the flag's value when the flag exists, is enabled and its
// value is a whole number that fits an int64; otherwise def.
func (c *Client) Int(key string, def int64) int64 {
	v, ok := c.value(key)
	if !ok {
		return def
	}
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		if n == math.Trunc(n) && n >= math.MinInt64 && n < math.MaxInt64 {
			return int64(n)
		}
	}
	return def
}

// Float returns the flag's value when the flag exists, is enabled and its
// value is a number; otherwise def.
func (c *Client) Float(key string, def float64) float64 {
	v, ok := c.value(key)
	if !ok {
		return def
	}
	switch n := v.(type) {
	case int64:
		return float64(n)
	case float64:
		return n
	}
	return def
}

// Bool returns the flag's value when the flag exists, is enabled and its
// value is a boolean; otherwise def. For the flag's on/off state use
// Enabled.
func (c *Client) Bool(key string, def bool) bool {
	if v, ok := c.value(key); ok {
		if b, ok := v.(bool); ok {
			return b
		}
	}
	return def
}

// run is the connection loop.
func (c *Client) run() {
	defer close(c.runDone)
	failures := 0
	for {
		got, err := c.session()
		if c.ctx.Err() != nil {
			return
		}
		if got {
			failures = 0
		}
		if isFatal(err) {
			c.log.Error("gitflags stream: giving up", "url", c.url, "err", err)
			c.mu.Lock()
			c.fatal = err
			c.mu.Unlock()
			c.markReady()
			c.cancel() // ends the dispatcher
			return
		}
		c.mu.Lock()
		c.lastErr = err
		c.mu.Unlock()
		delay := c.backoff(failures)
		var se *StatusError
		if errors.As(err, &se) && se.RetryAfter > delay {
			delay = se.RetryAfter
		}
		failures++
		c.log.Info("gitflags stream: disconnected; reconnecting", "url", c.url, "err", err, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the delay before the next attempt after n consecutive
// failures: full jitter in [d/2, d], d = min(MaxBackoff, MinBackoff·2ⁿ).
func (c *Client) backoff(n int) time.Duration {
	d := c.opts.MaxBackoff
	if n < 30 {
		d = min(d, c.opts.MinBackoff<<n)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

func isFatal(err error) bool {
	var se *StatusError
	var ce *CloseError
	return errors.As(err, &se) && se.fatal() || errors.As(err, &ce)
}

func (c *Client) markReady() {
	select {
	case <-c.ready:
	default:
		close(c.ready)
	}
}

// serverMessage is any message the server sends.
type serverMessage struct {
	Type     string                     `json:"type"`
	Version  int                        `json:"version"`
	Revision string                     `json:"revision"`
	Flags    map[string]json.RawMessage `json:"flags"`
	Changed  map[string]json.RawMessage `json:"changed"`
	Removed  []string                   `json:"removed"`
	Message  string                     `json:"message"`
}

type wireFlag struct {
	Enabled bool            `json:"enabled"`
	Value   json.RawMessage `json:"value"`
	Variant string          `json:"variant"`
}

// session connects, subscribes and reads until the connection ends. got
// reports whether flags arrived.
func (c *Client) session() (got bool, err error) {
	dctx, cancel := context.WithTimeout(c.ctx, c.opts.DialTimeout)
	conn, resp, err := websocket.Dial(dctx, c.url, &websocket.DialOptions{HTTPClient: c.opts.HTTPClient, HTTPHeader: c.header})
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return false, statusError(resp)
		}
		return false, err
	}
	defer conn.CloseNow() //nolint:errcheck // the connection is done
	conn.SetReadLimit(c.opts.ReadLimit)

	c.writeMu.Lock()
	c.mu.Lock()
	sub := map[string]any{"type": "subscribe", "version": ProtocolVersion}
	if c.opts.Identifier != "" {
		sub["identifier"] = c.opts.Identifier
	}
	if len(c.traits) > 0 {
		sub["traits"] = c.traits
	}
	resume := c.resumable && c.revision != ""
	if resume {
		sub["revision"] = c.revision
	}
	gen := c.traitsGen
	msg, merr := json.Marshal(sub)
	c.conn = conn
	c.stats.connects++
	c.mu.Unlock()
	if merr == nil {
		err = c.write(c.ctx, conn, msg)
	}
	c.writeMu.Unlock()
	defer func() {
		c.mu.Lock()
		c.conn = nil
		c.mu.Unlock()
	}()
	if merr != nil {
		return false, &CloseError{Code: websocket.StatusInvalidFramePayloadData, Reason: "traits cannot be encoded: " + merr.Error()}
	}
	if err != nil {
		return false, err
	}
	c.log.Info("gitflags stream: connected", "url", c.url, "resume", resume)

	for {
		rctx, cancel := context.WithTimeout(c.ctx, c.opts.ReadTimeout)
		typ, data, err := conn.Read(rctx)
		cancel()
		if err != nil {
			if code := websocket.CloseStatus(err); code != -1 {
				var ce websocket.CloseError
				errors.As(err, &ce)
				if !got && code == websocket.StatusPolicyViolation {
					return false, &CloseError{Code: code, Reason: ce.Reason}
				}
				return got, fmt.Errorf("the server closed the stream (close %d): %s", int(code), ce.Reason)
			}
			return got, err
		}
		if typ != websocket.MessageText {
			continue
		}
		var m serverMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return got, fmt.Errorf("invalid message from the server: %w", err)
		}
		switch m.Type {
		case "flags":
			flags, err := decodeFlags(m.Flags)
			if err != nil {
				return got, err
			}
			c.applyFull(m.Revision, flags, gen)
			got = true
		case "changes":
			changed, err := decodeFlags(m.Changed)
			if err != nil {
				return got, err
			}
			if !c.applyChanges(m.Revision, changed, m.Removed, !got && resume) {
				// Changes without a state to apply them to (the server
				// answered a resume this client did not ask for): start
				// again with the full state.
				return got, errors.New("changes before any state")
			}
			got = true
		case "error":
			c.log.Warn("gitflags stream: the server reports an error", "message", m.Message)
		default: // heartbeat, and types of later protocol versions
		}
	}
}

func statusError(resp *http.Response) *StatusError {
	se := &StatusError{StatusCode: resp.StatusCode}
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var d struct {
			Detail string `json:"detail"`
		}
		if json.Unmarshal(b, &d) == nil && d.Detail != "" {
			se.Detail = d.Detail
		} else {
			se.Detail = strings.TrimSpace(string(b))
		}
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		se.RetryAfter = time.Duration(s) * time.Second
	}
	return se
}

func decodeFlags(raw map[string]json.RawMessage) (map[string]Flag, error) {
	out := make(map[string]Flag, len(raw))
	for k, r := range raw {
		var w wireFlag
		if err := json.Unmarshal(r, &w); err != nil {
			return nil, fmt.Errorf("flag %q from the server: %w", k, err)
		}
		f := Flag{Enabled: w.Enabled, Variant: w.Variant}
		if len(w.Value) > 0 {
			d := json.NewDecoder(bytes.NewReader(w.Value))
			d.UseNumber()
			var v any
			if err := d.Decode(&v); err != nil {
				return nil, fmt.Errorf("flag %q from the server: %w", k, err)
			}
			f.Value = numbers(v)
		}
		out[k] = f
	}
	return out, nil
}

// numbers replaces json.Numbers by int64 (whole numbers that fit) or
// float64.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = numbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = numbers(x[k])
		}
	}
	return v
}

func sameFlag(a, b Flag) bool {
	return a.Enabled == b.Enabled && a.Variant == b.Variant && reflect.DeepEqual(a.Value, b.Value)
}

// applyFull replaces the flags with a full state evaluated with the traits
// of generation gen.
func (c *Client) applyFull(rev string, flags map[string]Flag, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.fullStates++
	if c.haveState {
		for k, f := range flags {
			if old, ok := c.flags[k]; !ok || !sameFlag(old, f) {
				c.pending[k] = struct{}{}
			}
		}
		for k := range c.flags {
			if _, ok := flags[k]; !ok {
				c.pending[k] = struct{}{}
			}
		}
	}
	c.flags, c.revision, c.haveState = flags, rev, true
	c.resumable = c.traitsGen == gen
	c.queue(rev)
	c.markReady()
}

// applyChanges applies a changes message; false when there is no state to
// apply it to.
func (c *Client) applyChanges(rev string, changed map[string]Flag, removed []string, resumed bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.haveState {
		return false
	}
	if resumed {
		c.stats.resumes++
	}
	for k, f := range changed {
		if old, ok := c.flags[k]; !ok || !sameFlag(old, f) {
			c.flags[k] = f
			c.pending[k] = struct{}{}
		}
	}
	for _, k := range removed {
		if _, ok := c.flags[k]; ok {
			delete(c.flags, k)
			c.pending[k] = struct{}{}
		}
	}
	c.revision = rev
	c.queue(rev)
	return true
}

// queue wakes the dispatcher when keys are pending. c.mu is held.
func (c *Client) queue(rev string) {
	if len(c.pending) == 0 {
		return
	}
	c.pendRev = rev
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// dispatch runs the change callbacks.
func (c *Client) dispatch() {
	defer close(c.dspDone)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.notify:
		}
		c.mu.Lock()
		ch := Change{Revision: c.pendRev}
		for k := range c.pending {
			if _, ok := c.flags[k]; ok {
				ch.Changed = append(ch.Changed, k)
			} else {
				ch.Removed = append(ch.Removed, k)
			}
		}
		clear(c.pending)
		ids := slices.Sorted(maps.Keys(c.callbacks))
		cbs := make([]func(Change), 0, len(ids))
		for _, id := range ids {
			cbs = append(cbs, c.callbacks[id])
		}
		c.mu.Unlock()
		if len(ch.Changed)+len(ch.Removed) == 0 {
			continue
		}
		slices.Sort(ch.Changed)
		slices.Sort(ch.Removed)
		for _, f := range cbs {
			if c.ctx.Err() != nil {
				return
			}
			f(ch)
		}
	}
}
