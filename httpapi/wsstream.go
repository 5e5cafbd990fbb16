package httpapi

// The websocket stream of evaluated flags (issue 12):
//
//	GET /api/v1/stream   (websocket; key in X-Environment-Key or ?key=)
//
// A subscriber sends its context, the server answers with its evaluated
// flags and then, for each served revision or trait change, only the flags
// whose evaluated result changed for it. The protocol (JSON text frames,
// version 1):
//
//	client: {"type":"subscribe","version":1,"identifier":"u1","traits":{"plan":"pro"},"revision":"<last seen>"}
//	client: {"type":"traits","traits":{"plan":"free"}}
//	server: {"type":"flags","version":1,"revision":"…","flags":{"dark_mode":{"enabled":true,"value":null}}}
//	server: {"type":"changes","revision":"…","changed":{"dark_mode":{"enabled":false,"value":null}},"removed":["old_flag"]}
//	server: {"type":"heartbeat"}
//	server: {"type":"error","message":"…"}
//
// The evaluation is the SDK API's: an identifier's stored traits (the
// identity store, as POST /api/v1/identities/ reads them) merged with the
// sent ones, which are not stored; with a client key in an environment that
// does not allow client traits the sent traits are ignored (as
// POST /api/v1/identities/ does); disabled flags are left out where the
// environment hides them, server-key-only features for client keys.
//
// The fan-out (package stream, Fanout) evaluates once per distinct context,
// re-evaluates only what a revision changed, and encodes each distinct
// changes message of a revision once, as a websocket frame that every
// subscriber due it shares.
//
// A connection costs one goroutine while idle: the HTTP handler returns
// after the upgrade (so net/http lets go of the request and its buffers)
// and the connection's goroutine reads the client's messages. Writes are
// made by a writer goroutine started when something is due (the fan-out's
// notification, a heartbeat, an error message, a close) and ended when the
// outbox is empty; at most one runs per connection. It writes frames to
// the hijacked connection itself, each within Options.StreamWriteTimeout
// or the connection is dropped, and never after a close frame;
// coder/websocket reads (control frames, limits, the close handshake)
// with buffers of a few hundred bytes instead of net/http's 4 KiB ones.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/connlimit"
	"github.com/gitflags/gitflags/identities"
	"github.com/gitflags/gitflags/stream"
)

// wsStreamPath is the websocket stream's route.
const wsStreamPath = "/api/v1/stream"

// Websocket stream limits.
const (
	wsProtocolVersion   = stream.ProtocolVersion
	wsReadLimit         = 64 << 10 // bytes in a client message
	wsSubscribeTimeout  = 10 * time.Second
	wsMaxPendingErrors  = 4
	wsHistoryRevisions  = 64
	wsCloseReasonLength = 120 // bytes of a close reason (the protocol allows 123)
	// A connection may change its traits wsTraitsPerSecond times a second
	// on average, in bursts of wsTraitsBurst: each change is an evaluation
	// of every flag for a new context.
	wsTraitsPerSecond = 5
	wsTraitsBurst     = 20
	// The buffers coder/websocket reads and writes through: frame headers
	// and control frames (at most 2+125 bytes) fit; bigger payloads are
	// read around the buffer. Data frames are written without it.
	wsReadBuffer  = 256
	wsWriteBuffer = 256
)

// defaultStreamsPerKey is Options.StreamsPerKey's default: the streaming
// connections (websockets, SSE, OFREP event streams) one key may hold.
const defaultStreamsPerKey = 5000

// wsStream is the websocket stream's state in a Server.
type wsStream struct {
	s *Server
	// active counts the connections' goroutines (readers and writers):
	// WaitStreams waits for them.
	active atomic.Int64
	fanout *stream.Fanout
	keys   streamKeys // every kind of stream's connections by key
	// branches are the fan-outs of preview branches with subscribers
	// (previews.go); guarded by mu.
	branches map[string]*branchStream

	mu       sync.Mutex
	conns    map[*wsConn]struct{} // open websockets
	closed   bool                 // CloseStreams was called
	watching bool                 // the watchdog runs
	idle     chan struct{}        // the last connection ended: the watchdog stops

	valid atomic.Pointer[keyCheck] // the last key checked
}

// keyCheck memoises that key was valid for envKey in state st.
type keyCheck struct {
	st          *state
	key, envKey string
}

func newWSStream(s *Server) *wsStream {
	ws := &wsStream{s: s, conns: map[*wsConn]struct{}{}, idle: make(chan struct{}, 1)}
	ws.fanout = ws.newFanout()
	return ws
}

// newFanout returns a fan-out of evaluated flags for websocket subscribers.
func (ws *wsStream) newFanout() *stream.Fanout {
	return stream.NewFanout(ws.s.hub, stream.FanoutOptions{Traits: ws.storedTraits, History: wsHistoryRevisions, Frame: wsFrame})
}

// Fanout returns the websocket stream's fan-out (for tests and metrics).
func (s *Server) Fanout() *stream.Fanout { return s.ws.fanout }

func (ws *wsStream) storedTraits(ctx context.Context, storeEnv, identifier string) (map[string]any, error) {
	if ws.s.identities == nil {
		return nil, nil
	}
	ts, err := ws.s.identities.Traits(ctx, storeEnv, identifier)
	if err != nil {
		return nil, err
	}
	m := make(map[string]any, len(ts))
	for _, t := range ts {
		m[t.Key] = t.Value
	}
	return m, nil
}

// traitsChanged tells the stream that identifier's stored traits in es
// changed.
func (ws *wsStream) traitsChanged(r *http.Request, es *envState, identifier string) {
	ws.fanout.TraitsChanged(storeContext(r), es.Key(), identifier)
	ws.mu.Lock()
	branches := make([]*stream.Fanout, 0, len(ws.branches))
	for _, b := range ws.branches {
		branches = append(branches, b.fanout)
	}
	ws.mu.Unlock()
	for _, f := range branches { // preview branches' subscribers of the identity too
		f.TraitsChanged(storeContext(r), es.Key(), identifier)
	}
}

func (s *Server) streamsPerKey() int {
	if n := s.opts.StreamsPerKey; n > 0 {
		return n
	}
	return defaultStreamsPerKey
}

// streamKeys counts open streaming connections by the key they presented.
type streamKeys struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire counts a connection of key, failing at max.
func (k *streamKeys) acquire(key string, max int) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n[key] >= max {
		return false
	}
	if k.n == nil {
		k.n = map[string]int{}
	}
	k.n[key]++
	return true
}

func (k *streamKeys) release(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.n[key]--; k.n[key] <= 0 {
		delete(k.n, key)
	}
}

// count returns the open connections of key.
func (k *streamKeys) count(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.n[key]
}

// connections returns the open streaming connections of key.
func (ws *wsStream) connections(key string) int { return ws.keys.count(key) }

// acquireStreamKey counts a streaming connection of key; past
// Options.StreamsPerKey it answers 429 through fail and returns false.
func (s *Server) acquireStreamKey(w http.ResponseWriter, key string, fail func(status int, detail string)) bool {
	if max := s.streamsPerKey(); !s.ws.keys.acquire(key, max) {
		w.Header().Set("Retry-After", "5")
		fail(http.StatusTooManyRequests, fmt.Sprintf("too many stream connections with this key (at most %d at once); retry later", max))
		return false
	}
	return true
}

// wsClientMessage is any message a client sends.
type wsClientMessage struct {
	Type       string                     `json:"type"`
	Version    *int                       `json:"version"`
	Identifier *string                    `json:"identifier"`
	Traits     map[string]json.RawMessage `json:"traits"`
	Revision   string                     `json:"revision"`
}

// wsFlag and wsChangesMessage are the stream's JSON as encoding/json
// writes it; stream.AppendMessage writes the same bytes by hand (the tests
// compare them).
type wsFlag struct {
	Enabled bool   `json:"enabled"`
	Value   any    `json:"value"`
	Variant string `json:"variant,omitempty"`
}

type wsChangesMessage struct {
	Type     string            `json:"type"`
	Revision string            `json:"revision"`
	Changed  map[string]wsFlag `json:"changed"`
	Removed  []string          `json:"removed"`
}

var wsHeartbeat = wsFrame([]byte(`{"type":"heartbeat"}`))

// wsFrame is payload as one final, unmasked text frame (server to client).
func wsFrame(payload []byte) []byte {
	n := len(payload)
	var b []byte
	switch {
	case n < 126:
		b = make([]byte, 2, 2+n)
		b[1] = byte(n)
	case n < 1<<16:
		b = make([]byte, 4, 4+n)
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b = make([]byte, 10, 10+n)
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	b[0] = 0x81 // FIN, text
	return append(b, payload...)
}

func wsError(msg string) []byte {
	b, _ := json.Marshal(map[string]string{"type": "error", "message": msg})
	return b
}

// wsProtocolError ends a connection with a close code and reason.
type wsProtocolError struct {
	code   websocket.StatusCode
	reason string
}

func (e *wsProtocolError) Error() string { return e.reason }

func policy(format string, args ...any) *wsProtocolError {
	return &wsProtocolError{code: websocket.StatusPolicyViolation, reason: fmt.Sprintf(format, args...)}
}

func closeReason(s string) string {
	if len(s) > wsCloseReasonLength {
		s = s[:wsCloseReasonLength]
	}
	return s
}

// wsTraits checks and normalises sent traits as the SDK API does.
func wsTraits(raw map[string]json.RawMessage) (map[string]any, error) {
	if len(raw) > identities.MaxTraits {
		return nil, fmt.Errorf("%d traits; at most %d are allowed", len(raw), identities.MaxTraits)
	}
	out := make(map[string]any, len(raw))
	for k, v := range raw {
		if err := identities.CheckKey(k); err != nil {
			return nil, err
		}
		tv, rerr := traitValue("traits."+k, jsonValue{raw: v, set: true})
		if rerr != nil {
			return nil, rerr
		}
		out[k] = tv
	}
	return out, nil
}

// WaitStreams waits, after CloseStreams, until every websocket connection
// has ended (written its close frame), or until ctx is done.
// http.Server's Shutdown does not wait for them: their connections are
// hijacked.
func (s *Server) WaitStreams(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.ws.active.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d websocket stream goroutines still running: %w", s.ws.active.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// wsHijacker gives coder/websocket the hijacked connection with small
// buffers (net/http's are 4 KiB each, and a connection keeps its buffers
// as long as it is open) and keeps the connection for the writer.
type wsHijacker struct {
	http.ResponseWriter
	nc net.Conn
}

func (h *wsHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(nc, wsReadBuffer)
	if n := brw.Reader.Buffered(); n > 0 {
		// What the client sent after the request goes into the new
		// buffer: Accept reads what is buffered, then replaces the
		// reader's source with the connection.
		b, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(b)), nc), max(wsReadBuffer, n))
		if _, err := br.Peek(n); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	h.nc = nc
	return nc, bufio.NewReadWriter(br, bufio.NewWriterSize(nc, wsWriteBuffer)), nil
}

// wsStream serves GET /api/v1/stream: it checks the key, upgrades, and
// leaves the connection to its own goroutine (wsConn.serve).
func (s *Server) wsStream(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	fail := func(status int, detail string) { writeDetail(w, status, detail) }
	st := s.current.Load()
	if st == nil {
		fail(http.StatusServiceUnavailable, "no valid revision loaded yet")
		return
	}
	key := r.Header.Get("X-Environment-Key")
	if key == "" { // browsers cannot set a websocket's headers
		q, qerr := parseQuery(r.URL.RawQuery)
		if qerr != nil {
			fail(qerr.status, qerr.msg)
			return
		}
		key = q.Get("key")
	}
	if key == "" {
		fail(http.StatusUnauthorized, "missing environment key: X-Environment-Key header or key query parameter")
		return
	}
	es, server := st.Lookup(key)
	if es == nil {
		fail(http.StatusUnauthorized, "invalid environment key: no environment has this key")
		return
	}
	select {
	case <-s.hub.Done():
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, "the server is shutting down; retry later")
		return
	default:
	}
	if !s.acquireStreamKey(w, key, fail) {
		return
	}
	released := false
	defer func() {
		if !released {
			s.ws.keys.release(key)
		}
	}()
	if err := connlimit.Stream(r.Context()); err != nil {
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, "too many streaming connections; retry later")
		return
	}
	fanout, branch := s.ws.fanout, ""
	if pst, _, perr := s.preview(r, key, es, server); perr != nil {
		fail(perr.status, perr.msg)
		return
	} else if pst != nil {
		branch = pst.preview
		fanout = s.ws.acquireBranch(branch, pst.State)
		defer func() {
			if !released {
				s.ws.releaseBranch(branch)
			}
		}()
	}
	opts := &websocket.AcceptOptions{OriginPatterns: s.opts.WebsocketOrigins}
	if len(s.opts.WebsocketOrigins) == 0 {
		// Any origin, as the SDK API's CORS: the environment key in the
		// request is the credential, no cookie is ever read.
		opts.InsecureSkipVerify = true
	}
	hj := &wsHijacker{ResponseWriter: w}
	c, err := websocket.Accept(hj, r, opts)
	if err != nil {
		return // Accept answered
	}
	c.SetReadLimit(wsReadLimit)
	conn := &wsConn{s: s, c: c, nc: hj.nc, key: key, envKey: es.Key(), server: server, fanout: fanout, branch: branch}
	if !s.ws.register(conn) {
		c.CloseNow() //nolint:errcheck // shutting down
		return
	}
	released = true // by the connection's goroutine
	s.ws.active.Add(1)
	go conn.serve()
}

func (ws *wsStream) register(c *wsConn) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return false
	}
	ws.conns[c] = struct{}{}
	if !ws.watching {
		ws.watching = true
		ws.active.Add(1)
		go ws.watch()
	}
	return true
}

// watch drops the connections whose write has taken longer than the
// write timeout (a client that does not read), every fifth of it, while
// there are connections. A write deadline per write would cost two
// timer updates per frame.
func (ws *wsStream) watch() {
	defer ws.active.Add(-1)
	timeout := ws.s.streamWriteTimeout()
	t := time.NewTicker(timeout / 5)
	defer t.Stop()
	var stuck []*wsConn
	for {
		select {
		case <-t.C:
		case <-ws.idle:
		}
		now := time.Now().UnixNano()
		ws.mu.Lock()
		if len(ws.conns) == 0 {
			ws.watching = false
			ws.mu.Unlock()
			return
		}
		for c := range ws.conns {
			if start := c.writeStart.Load(); start != 0 && now-start > int64(timeout) {
				stuck = append(stuck, c)
			}
		}
		ws.mu.Unlock()
		for i, c := range stuck {
			// No close frame can reach a client that does not read: the
			// connection is dropped.
			ws.s.log.Debug("websocket stream: dropped a client that did not take a write", "timeout", timeout)
			ws.s.metrics.streamDropped.Inc()
			c.c.CloseNow() //nolint:errcheck // ends the write, then the reader
			stuck[i] = nil
		}
		stuck = stuck[:0]
	}
}

// validKey reports whether key still selects envKey in st.
func (ws *wsStream) validKey(st *state, key, envKey string) bool {
	if v := ws.valid.Load(); v != nil && v.st == st && v.key == key && v.envKey == envKey {
		return true
	}
	if es, _ := st.Lookup(key); es == nil || es.Key() != envKey {
		return false
	}
	ws.valid.Store(&keyCheck{st: st, key: key, envKey: envKey})
	return true
}

func (ws *wsStream) unregister(c *wsConn) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	delete(ws.conns, c)
	if len(ws.conns) == 0 {
		select {
		case ws.idle <- struct{}{}:
		default:
		}
	}
}

// shutdown closes every websocket with 1001 (going away) and refuses new
// ones.
func (ws *wsStream) shutdown() {
	ws.mu.Lock()
	ws.closed = true
	conns := make([]*wsConn, 0, len(ws.conns))
	for c := range ws.conns {
		conns = append(conns, c)
	}
	ws.mu.Unlock()
	for _, c := range conns {
		c.closeWith(&wsProtocolError{code: websocket.StatusGoingAway, reason: "the server is shutting down"})
	}
}

// wsConn is one websocket connection. Its goroutine (serve) reads; a
// writer goroutine (flush) runs while something is due.
type wsConn struct {
	s      *Server
	c      *websocket.Conn
	nc     net.Conn // the hijacked connection: data frames are written to it
	key    string   // as presented
	envKey string
	server bool
	fanout *stream.Fanout // the served branch's, or a preview branch's
	branch string         // the preview branch streamed, "" for the served one

	writing    atomic.Bool  // a writer goroutine runs
	writeStart atomic.Int64 // when the write under way started (Unix ns), 0 when none
	checked    *state       // the state the key was last checked against (writer only)

	mu       sync.Mutex
	sub      *stream.Sub // once subscribed
	notes    [][]byte    // error messages due, framed
	beat     bool        // a heartbeat is due
	bye      *wsProtocolError
	timer    *time.Timer // heartbeats
	finished bool        // the connection is over: nothing more to do

	wmu  sync.Mutex // held while writing a frame or closing
	done bool       // a close frame was sent or the connection dropped (guarded by wmu)
}

// serve is the connection's goroutine: it subscribes, then reads the
// client's messages until the connection ends.
func (w *wsConn) serve() {
	defer w.s.ws.active.Add(-1)
	defer w.finish()
	// The subscribe message must come within wsSubscribeTimeout (a read
	// deadline: a context would stay with the connection's reader).
	_ = w.nc.SetReadDeadline(time.Now().Add(wsSubscribeTimeout))
	data, perr := readClient(w.c)
	_ = w.nc.SetReadDeadline(time.Time{})
	var sub *stream.Sub
	if perr == nil {
		aside(func() { sub, perr = w.s.wsSubscribe(w.fanout, data, w.envKey, w.server, w.kick) })
	}
	if perr != nil {
		w.close(perr)
		return
	}
	w.mu.Lock()
	if w.finished {
		w.mu.Unlock()
		sub.Close()
		return
	}
	w.sub = sub
	ka := w.s.streamKeepAlive()
	w.timer = time.AfterFunc(ka, func() {
		w.mu.Lock()
		if w.finished {
			w.mu.Unlock()
			return
		}
		w.beat = true
		w.timer.Reset(ka)
		w.mu.Unlock()
		w.kick()
	})
	w.mu.Unlock()
	w.kick()
	if perr := w.s.wsRead(w.c, sub, w.note); perr != nil {
		w.close(perr)
	}
}

// finish releases what the connection holds once its reader ended.
func (w *wsConn) finish() {
	w.s.ws.unregister(w)
	w.mu.Lock()
	w.finished = true
	sub, t := w.sub, w.timer
	w.notes = nil
	w.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	if sub != nil {
		sub.Close()
	}
	w.wmu.Lock()
	w.done = true
	w.wmu.Unlock()
	w.c.CloseNow() //nolint:errcheck // it may be closed already
	w.s.ws.keys.release(w.key)
	if w.branch != "" {
		w.s.ws.releaseBranch(w.branch)
	}
}

// kick starts the writer unless it runs. It never blocks (the fan-out
// calls it under its lock).
func (w *wsConn) kick() {
	if w.writing.CompareAndSwap(false, true) {
		w.s.ws.active.Add(1)
		go w.flush()
	}
}

// flush is the writer goroutine: it writes what is due until nothing is.
func (w *wsConn) flush() {
	defer w.s.ws.active.Add(-1)
	for {
		for w.step() {
		}
		w.writing.Store(false)
		// Something made due after the last step, whose kick found the
		// writer still running, is written now.
		if !w.due() || !w.writing.CompareAndSwap(false, true) {
			return
		}
	}
}

// due reports whether the writer has something to do.
func (w *wsConn) due() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.finished && (w.bye != nil || len(w.notes) > 0 || w.beat || (w.sub != nil && w.sub.Due()))
}

// step writes one thing that is due, and reports whether to go on.
func (w *wsConn) step() bool {
	w.mu.Lock()
	if w.finished {
		w.mu.Unlock()
		return false
	}
	sub := w.sub
	var b []byte
	switch {
	case w.bye != nil:
		bye := w.bye
		w.bye = nil
		w.mu.Unlock()
		w.close(bye)
		return false
	case len(w.notes) > 0:
		b = w.notes[0]
		w.notes[0] = nil
		w.notes = w.notes[1:]
	case w.beat:
		w.beat = false
		b = wsHeartbeat
	}
	w.mu.Unlock()
	if b != nil {
		return w.write(b)
	}
	if sub == nil {
		return false
	}
	if cur := w.s.current.Load(); cur != nil && cur != w.checked {
		if !w.s.ws.validKey(cur, w.key, w.envKey) {
			w.close(policy("the environment key is no longer valid"))
			return false
		}
		w.checked = cur
	}
	m, ok := sub.Take()
	if !ok {
		return false
	}
	if m.End != "" {
		w.close(&wsProtocolError{code: websocket.StatusNormalClosure, reason: m.End})
		return false
	}
	if b = m.Data; b == nil {
		b = wsFrame(stream.AppendMessage(nil, &m))
		if m.Full != nil {
			sub.Release() // encoded: its context may update its flags in place again
		}
	}
	return w.write(b)
}

// write writes one frame; a client that does not take it within the write
// timeout is dropped (by the watchdog, wsStream.watch).
func (w *wsConn) write(b []byte) bool {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.done {
		return false
	}
	w.writeStart.Store(time.Now().UnixNano())
	_, err := w.nc.Write(b)
	w.writeStart.Store(0)
	if err != nil {
		w.done = true
		w.c.CloseNow() //nolint:errcheck // the reader ends with it
		return false
	}
	return true
}

// close sends a close frame with perr's code and reason (none when the
// code is 0: the connection is just dropped) and ends the connection.
func (w *wsConn) close(perr *wsProtocolError) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.done {
		return
	}
	w.done = true
	if perr.code == 0 {
		w.c.CloseNow() //nolint:errcheck
		return
	}
	_ = w.c.Close(perr.code, closeReason(perr.reason))
}

// closeWith makes the writer close the connection with perr.
func (w *wsConn) closeWith(perr *wsProtocolError) {
	w.mu.Lock()
	if w.bye == nil {
		w.bye = perr
	}
	w.mu.Unlock()
	w.kick()
}

// note makes an error message due; too many pending end the connection.
func (w *wsConn) note(msg string) *wsProtocolError {
	w.mu.Lock()
	if len(w.notes) >= wsMaxPendingErrors {
		w.mu.Unlock()
		return policy("too many invalid messages")
	}
	w.notes = append(w.notes, wsFrame(wsError(msg)))
	w.mu.Unlock()
	w.kick()
	return nil
}

// aside runs fn on a goroutine of its own and waits for it: a
// connection's long-lived goroutine keeps the stack its deepest call
// needed, so what goes deep (decoding, evaluating) runs aside.
func aside(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// readClient reads one client message.
func readClient(c *websocket.Conn) ([]byte, *wsProtocolError) {
	typ, data, err := c.Read(context.Background())
	if err != nil {
		return nil, &wsProtocolError{} // gone, or closed by the library (a frame too big: 1009)
	}
	if typ != websocket.MessageText {
		return nil, &wsProtocolError{code: websocket.StatusUnsupportedData, reason: "binary messages are not supported: send JSON text"}
	}
	return data, nil
}

// decodeClient decodes a client message.
func decodeClient(data []byte) (*wsClientMessage, *wsProtocolError) {
	var m wsClientMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &wsProtocolError{code: websocket.StatusInvalidFramePayloadData, reason: "invalid JSON message: " + err.Error()}
	}
	return &m, nil
}

// wsSubscribe subscribes as the subscribe message data says.
func (s *Server) wsSubscribe(fanout *stream.Fanout, data []byte, envKey string, server bool, notify func()) (*stream.Sub, *wsProtocolError) {
	m, perr := decodeClient(data)
	if perr != nil {
		return nil, perr
	}
	if m.Type != "subscribe" {
		return nil, policy("the first message must be {\"type\":\"subscribe\",\"version\":1,...}, not type %q", m.Type)
	}
	if m.Version == nil || *m.Version != wsProtocolVersion {
		return nil, policy("unsupported protocol version: this server speaks version %d", wsProtocolVersion)
	}
	spec := stream.Context{Env: envKey, Server: server}
	if m.Identifier != nil {
		if err := identities.CheckIdentifier(*m.Identifier); err != nil || *m.Identifier == "" {
			return nil, policy("invalid identifier")
		}
		spec.Identifier = *m.Identifier
	}
	if len(m.Traits) > 0 {
		if spec.Identifier == "" {
			return nil, policy("traits need an identifier")
		}
		traits, err := wsTraits(m.Traits)
		if err != nil {
			return nil, policy("invalid traits: %v", err)
		}
		// Kept even where client keys may not send traits: the fan-out
		// uses them while the environment allows them.
		spec.Traits = traits
	}
	ctx, cancel := context.WithTimeout(context.Background(), wsSubscribeTimeout)
	defer cancel()
	sub, err := fanout.Subscribe(ctx, spec, m.Revision, notify)
	switch {
	case err == nil:
		return sub, nil
	case errors.Is(err, stream.ErrClosed):
		return nil, &wsProtocolError{code: websocket.StatusGoingAway, reason: "the server is shutting down"}
	case errors.Is(err, stream.ErrUnknownEnvironment):
		return nil, policy("the environment key is no longer valid")
	default:
		s.log.Error("websocket stream: subscribe", "err", err)
		return nil, &wsProtocolError{code: websocket.StatusTryAgainLater, reason: "cannot read the identity's traits"}
	}
}

// wsRead reads the client's messages after the subscription until the
// connection ends or a message breaks the protocol; note makes an error
// message due.
func (s *Server) wsRead(c *websocket.Conn, sub *stream.Sub, note func(string) *wsProtocolError) *wsProtocolError {
	budget, last := float64(wsTraitsBurst), time.Now()
	for {
		data, perr := readClient(c)
		if perr != nil {
			return perr
		}
		aside(func() { perr = s.wsMessage(data, sub, note, &budget, &last) })
		if perr != nil {
			return perr
		}
	}
}

// wsMessage handles a client message after the subscription.
func (s *Server) wsMessage(data []byte, sub *stream.Sub, note func(string) *wsProtocolError, budget *float64, last *time.Time) *wsProtocolError {
	m, perr := decodeClient(data)
	if perr != nil {
		return perr
	}
	switch m.Type {
	case "traits":
		now := time.Now()
		*budget = min(wsTraitsBurst, *budget+now.Sub(*last).Seconds()*wsTraitsPerSecond)
		*last = now
		if *budget < 1 {
			return policy("too many trait updates: at most %d a second (bursts of %d)", wsTraitsPerSecond, wsTraitsBurst)
		}
		*budget--
		if sub.Identifier() == "" {
			return note("traits need an identifier: subscribe with one")
		}
		traits, err := wsTraits(m.Traits)
		if err != nil {
			return note("invalid traits: " + err.Error())
		}
		if err := sub.UpdateTraits(traits); errors.Is(err, stream.ErrClientTraits) {
			return note(errClientTraits)
		}
		return nil
	case "subscribe":
		return policy("already subscribed")
	default:
		return policy("unknown message type %s", strconv.Quote(m.Type))
	}
}
