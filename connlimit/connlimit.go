// Package connlimit bounds the connections an HTTP server holds, so that a
// crowd of clients can neither take every file descriptor of the process
// (after which it answers no one and cannot read its own Git repository)
// nor starve the others.
//
// Connections come in two classes with caps of their own: request/response
// connections (HTTP keep-alive) and streaming connections (server-sent
// events and websockets), which a handler moves into the streaming class
// with Stream (a hijacked connection, such as a websocket, moves there by
// itself). When the request class is full, the listener closes the
// connection that has been idle the longest (for at least MinIdle, so that a
// client sending its next request is not cut off) to make room; when none
// is, it waits for one to close or become old enough, leaving new
// connections in the kernel's accept queue. Streams never count against
// requests, so tens of thousands of open streams do not lock out
// request/response clients.
//
// Use it by wrapping the listener and installing the hooks:
//
//	lim := connlimit.New(connlimit.Options{})
//	srv := &http.Server{Handler: h, ConnState: lim.ConnState, ConnContext: lim.ConnContext}
//	srv.Serve(lim.Listener(ln))
package connlimit

import (
	"container/list"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrTooManyStreams is returned by Stream when the streaming class is full.
var ErrTooManyStreams = errors.New("too many streaming connections")

// Options configure a Limiter. A zero cap is derived from the process's
// file descriptor limit (see Defaults).
type Options struct {
	MaxConns   int // request/response connections held at once
	MaxStreams int // streaming connections held at once
	// MinIdle is how long a connection must have been idle before it is
	// closed to make room (default 1 s): a keep-alive client may be sending
	// its next request, which the server does not see yet.
	MinIdle time.Duration
	// FileLimit is the soft RLIMIT_NOFILE the defaults derive from;
	// 0 reads it from the process.
	FileLimit uint64
}

// Limiter counts a server's connections by class and enforces the caps.
// Its methods are safe for concurrent use.
type Limiter struct {
	maxConns, maxStreams int
	minIdle              time.Duration

	mu      sync.Mutex
	conns   int        // open connections in the request class
	streams int        // open connections in the streaming class
	idle    *list.List // *conn of the request class not serving a request, oldest first
	freed   chan struct{}

	idleClosed, waits, rejected prometheus.Counter
}

// New returns a Limiter with the caps of opts.
func New(opts Options) *Limiter {
	if opts.MaxConns <= 0 || opts.MaxStreams <= 0 {
		limit := opts.FileLimit
		if limit == 0 {
			limit = FileLimit()
		}
		conns, streams := Defaults(limit)
		if opts.MaxConns <= 0 {
			opts.MaxConns = conns
		}
		if opts.MaxStreams <= 0 {
			opts.MaxStreams = streams
		}
	}
	if opts.MinIdle <= 0 {
		opts.MinIdle = time.Second
	}
	return &Limiter{
		maxConns: opts.MaxConns, maxStreams: opts.MaxStreams, minIdle: opts.MinIdle,
		idle:  list.New(),
		freed: make(chan struct{}, 1),
		idleClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitflags_connections_idle_closed_total",
			Help: "Idle keep-alive connections closed to make room for a new connection.",
		}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitflags_connections_accept_waits_total",
			Help: "Times the server stopped accepting until a connection closed, every request connection being busy.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitflags_stream_connections_rejected_total",
			Help: "Streaming requests refused because the streaming connections were at their cap.",
		}),
	}
}

// reserve is the number of file descriptors Defaults leaves for everything
// but client connections: Git objects and packs, the identity store, file
// watches, logs.
const reserve = 256

// Defaults returns the caps derived from a soft file descriptor limit: a
// reserve of descriptors stays free for the server's own files, half of the
// rest (at most 8,192) goes to request/response connections and the
// remainder (at most 100,000) to streams.
func Defaults(fileLimit uint64) (conns, streams int) {
	r := uint64(reserve)
	if fileLimit < 4*reserve {
		r = fileLimit / 4
	}
	avail := int(min(fileLimit-r, 1<<30))
	conns = max(1, min(avail/2, 8192))
	streams = max(1, min(avail-conns, 100_000))
	return conns, streams
}

// Limits returns the caps in force.
func (l *Limiter) Limits() (conns, streams int) { return l.maxConns, l.maxStreams }

// Open returns the number of open connections in each class.
func (l *Limiter) Open() (conns, streams int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns, l.streams
}

// Listener wraps ln so that Accept holds at most the request cap of
// connections: at the cap, a new connection closes the longest-idle one, or
// waits (in the server's accept loop, while later ones wait in the
// kernel's queue) until a connection closes or goes idle.
func (l *Limiter) Listener(ln net.Listener) net.Listener {
	return &listener{Listener: ln, l: l, done: make(chan struct{})}
}

type listener struct {
	net.Listener
	l         *Limiter
	closeOnce sync.Once
	done      chan struct{}
}

func (ln *listener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			// Out of descriptors all the same (other files of the
			// process): an idle connection gives one back.
			if (errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)) && ln.l.closeIdle(0) == 0 {
				continue
			}
			return nil, err
		}
		// The slot is taken once a connection is there, so that an idle
		// one is closed only for a client that is waiting.
		if err := ln.l.acquire(ln.done); err != nil {
			c.Close()
			return nil, err
		}
		return ln.l.track(c), nil
	}
}

func (ln *listener) Close() error {
	ln.closeOnce.Do(func() { close(ln.done) })
	return ln.Listener.Close()
}

// acquire takes a request slot, closing the longest-idle connection or
// waiting when there is none free.
func (l *Limiter) acquire(done <-chan struct{}) error {
	waited := false
	for {
		l.mu.Lock()
		if l.conns < l.maxConns {
			l.conns++
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
		wait := l.closeIdle(l.minIdle)
		if wait == 0 {
			continue
		}
		if !waited {
			waited = true
			l.waits.Inc()
		}
		var timeout <-chan time.Time
		var t *time.Timer
		if wait > 0 {
			t = time.NewTimer(wait)
			timeout = t.C
		}
		select {
		case <-l.freed:
		case <-timeout:
		case <-done:
		}
		if t != nil {
			t.Stop()
		}
		select {
		case <-done:
			return net.ErrClosed
		default:
		}
	}
}

// closeIdle closes the request connection that has been idle the longest if
// that is at least minAge, and returns 0. Otherwise it returns how long until
// that connection is old enough, or -1 when no connection is idle.
func (l *Limiter) closeIdle(minAge time.Duration) time.Duration {
	l.mu.Lock()
	e := l.idle.Front()
	if e == nil {
		l.mu.Unlock()
		return -1
	}
	c := e.Value.(*conn)
	if age := time.Since(c.idleSince); age < minAge {
		l.mu.Unlock()
		return minAge - age
	}
	l.idle.Remove(e)
	c.idleAt = nil
	l.releaseLocked(c)
	l.mu.Unlock()
	_ = c.Conn.Close()
	l.idleClosed.Inc()
	return 0
}

type class uint8

const (
	classRequest class = iota
	classStream
)

// conn is a connection the Limiter counts.
type conn struct {
	net.Conn
	l *Limiter
	// Guarded by l.mu:
	class     class
	released  bool          // its slot was given back (closed or evicted)
	idleAt    *list.Element // its place in l.idle while idle
	idleSince time.Time     // when it went idle
}

func (l *Limiter) track(c net.Conn) *conn {
	tc := &conn{Conn: c, l: l}
	l.mu.Lock()
	tc.idleAt, tc.idleSince = l.idle.PushBack(tc), time.Now() // a new connection has sent nothing yet
	l.mu.Unlock()
	return tc
}

func (c *conn) Close() error {
	c.l.mu.Lock()
	if c.idleAt != nil {
		c.l.idle.Remove(c.idleAt)
		c.idleAt = nil
	}
	c.l.releaseLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// releaseLocked gives c's slot back once. The caller holds l.mu.
func (l *Limiter) releaseLocked(c *conn) {
	if c.released {
		return
	}
	c.released = true
	l.releaseSlotLocked(c.class)
}

func (l *Limiter) releaseSlotLocked(cl class) {
	if cl == classStream {
		l.streams--
		return
	}
	l.conns--
	l.signal()
}

// signal wakes a waiting Accept. The caller holds l.mu.
func (l *Limiter) signal() {
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

// ConnState is the http.Server.ConnState hook: it keeps the list of idle
// connections and returns a stream's connection to the request class once
// its request is over.
func (l *Limiter) ConnState(nc net.Conn, state http.ConnState) {
	c, ok := nc.(*conn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.released {
		return
	}
	switch state {
	case http.StateActive, http.StateHijacked:
		if c.idleAt != nil {
			l.idle.Remove(c.idleAt)
			c.idleAt = nil
		}
		if state == http.StateHijacked && c.class == classRequest {
			// A websocket (or any hijacked connection) streams: it must not
			// hold a request slot, nor go over the streams' cap.
			if !l.toStreamLocked(c) {
				l.releaseLocked(c)
				_ = c.Conn.Close()
			}
		}
	case http.StateIdle:
		if c.class == classStream { // the streaming response ended; keep-alive goes on
			if l.conns >= l.maxConns { // no request slot to go back to
				l.releaseLocked(c)
				_ = c.Conn.Close()
				return
			}
			c.class = classRequest
			l.streams--
			l.conns++
		}
		if c.idleAt == nil {
			c.idleAt, c.idleSince = l.idle.PushBack(c), time.Now()
		}
		if l.conns >= l.maxConns {
			l.signal() // a waiting Accept can now close it
		}
	}
}

type connKey struct{}

// ConnContext is the http.Server.ConnContext hook: it lets Stream find the
// connection of a request.
func (l *Limiter) ConnContext(ctx context.Context, nc net.Conn) context.Context {
	if c, ok := nc.(*conn); ok && c.l == l {
		return context.WithValue(ctx, connKey{}, c)
	}
	return ctx
}

// Stream moves the connection serving the request of ctx into the
// streaming class, for a response that stays open (server-sent events, a
// websocket). It returns ErrTooManyStreams when that class is full: answer
// 503 then. The connection returns to the request class when its request
// ends and it goes idle. A request whose connection the Limiter does not
// know (ConnContext not installed) is let through.
func Stream(ctx context.Context) error {
	c, ok := ctx.Value(connKey{}).(*conn)
	if !ok {
		return nil
	}
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.released || c.class == classStream {
		return nil
	}
	if !l.toStreamLocked(c) {
		return ErrTooManyStreams
	}
	return nil
}

// toStreamLocked moves c from the request class to the streaming class and
// reports whether there was room. The caller holds l.mu.
func (l *Limiter) toStreamLocked(c *conn) bool {
	if l.streams >= l.maxStreams {
		l.rejected.Inc()
		return false
	}
	c.class = classStream
	l.streams++
	l.conns--
	l.signal()
	return true
}

// Collectors returns the Limiter's Prometheus metrics: open connections and
// caps by class, idle connections closed, accept waits, streams refused.
func (l *Limiter) Collectors() []prometheus.Collector {
	open := func(cl class) func() float64 {
		return func() float64 {
			c, s := l.Open()
			if cl == classStream {
				return float64(s)
			}
			return float64(c)
		}
	}
	gauge := func(name, help, cl string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{"class": cl}}, f)
	}
	const openHelp = "Open client connections by class (request: request/response; stream: SSE and websockets)."
	const limitHelp = "The cap on open client connections by class."
	return []prometheus.Collector{
		gauge("gitflags_connections_open", openHelp, "request", open(classRequest)),
		gauge("gitflags_connections_open", openHelp, "stream", open(classStream)),
		gauge("gitflags_connections_limit", limitHelp, "request", func() float64 { return float64(l.maxConns) }),
		gauge("gitflags_connections_limit", limitHelp, "stream", func() float64 { return float64(l.maxStreams) }),
		l.idleClosed, l.waits, l.rejected,
	}
}
