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
// The fan-out (package stream, Fanout) evaluates once per distinct context
// and re-evaluates only what a revision changed. This handler's goroutine is
// the connection's only writer of messages: it takes its outbox when woken
// and writes it within Options.StreamWriteTimeout, or the connection is
// closed. A reader goroutine reads the client's messages.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	wsProtocolVersion   = 1
	wsReadLimit         = 64 << 10 // bytes in a client message
	wsSubscribeTimeout  = 10 * time.Second
	defaultWSMaxPerKey  = 20000
	wsMaxPendingErrors  = 4
	wsHistoryRevisions  = 64
	wsCloseReasonLength = 120 // bytes of a close reason (the protocol allows 123)
	// A connection may change its traits wsTraitsPerSecond times a second
	// on average, in bursts of wsTraitsBurst: each change is an evaluation
	// of every flag for a new context, under the fan-out's lock.
	wsTraitsPerSecond = 5
	wsTraitsBurst     = 20
)

// wsStream is the websocket stream's state in a Server.
type wsStream struct {
	s      *Server
	active atomic.Int64 // handlers running: WaitStreams waits for them
	fanout *stream.Fanout
	mu     sync.Mutex
	perKey map[string]int // open connections by the key they presented
}

func newWSStream(s *Server) *wsStream {
	ws := &wsStream{s: s, perKey: map[string]int{}}
	ws.fanout = stream.NewFanout(s.hub, stream.FanoutOptions{Traits: ws.storedTraits, History: wsHistoryRevisions})
	return ws
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
}

func (s *Server) wsMaxPerKey() int {
	if n := s.opts.WebsocketMaxPerKey; n > 0 {
		return n
	}
	return defaultWSMaxPerKey
}

// acquire counts a connection of key, failing past the limit.
func (ws *wsStream) acquire(key string) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.perKey[key] >= ws.s.wsMaxPerKey() {
		return false
	}
	ws.perKey[key]++
	return true
}

// connections returns the open connections of key.
func (ws *wsStream) connections(key string) int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.perKey[key]
}

func (ws *wsStream) release(key string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.perKey[key]--; ws.perKey[key] <= 0 {
		delete(ws.perKey, key)
	}
}

// wsClientMessage is any message a client sends.
type wsClientMessage struct {
	Type       string                     `json:"type"`
	Version    *int                       `json:"version"`
	Identifier *string                    `json:"identifier"`
	Traits     map[string]json.RawMessage `json:"traits"`
	Revision   string                     `json:"revision"`
}

// wsFlag is a flag as the stream writes it.
type wsFlag struct {
	Enabled bool   `json:"enabled"`
	Value   any    `json:"value"`
	Variant string `json:"variant,omitempty"`
}

type wsFlagsMessage struct {
	Type     string            `json:"type"`
	Version  int               `json:"version"`
	Revision string            `json:"revision"`
	Flags    map[string]wsFlag `json:"flags"`
}

type wsChangesMessage struct {
	Type     string            `json:"type"`
	Revision string            `json:"revision"`
	Changed  map[string]wsFlag `json:"changed"`
	Removed  []string          `json:"removed"`
}

var wsHeartbeat = []byte(`{"type":"heartbeat"}`)

func wsFlags(m map[string]stream.Flag) map[string]wsFlag {
	out := make(map[string]wsFlag, len(m))
	for k, f := range m {
		out[k] = wsFlag{Enabled: f.Enabled, Value: f.Value, Variant: f.Variant}
	}
	return out
}

func encodeWSMessage(m *stream.Message) ([]byte, error) {
	if m.Full != nil {
		return json.Marshal(wsFlagsMessage{Type: "flags", Version: wsProtocolVersion, Revision: m.Revision, Flags: wsFlags(m.Full)})
	}
	removed := m.Removed
	if removed == nil {
		removed = []string{}
	}
	return json.Marshal(wsChangesMessage{Type: "changes", Revision: m.Revision, Changed: wsFlags(m.Changed), Removed: removed})
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

// WaitStreams waits, after CloseStreams, until every websocket handler has
// ended (written its close frame), or until ctx is done. http.Server's
// Shutdown does not wait for them: their connections are hijacked.
func (s *Server) WaitStreams(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.ws.active.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d websocket streams still open: %w", s.ws.active.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// wsStream serves GET /api/v1/stream.
func (s *Server) wsStream(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st := s.current.Load()
	if st == nil {
		writeDetail(w, http.StatusServiceUnavailable, "no valid revision loaded yet")
		return
	}
	key := r.Header.Get("X-Environment-Key")
	if key == "" { // browsers cannot set a websocket's headers
		q, qerr := parseQuery(r.URL.RawQuery)
		if qerr != nil {
			writeDetail(w, qerr.status, qerr.msg)
			return
		}
		key = q.Get("key")
	}
	if key == "" {
		writeDetail(w, http.StatusUnauthorized, "missing environment key: X-Environment-Key header or key query parameter")
		return
	}
	es, server := st.Lookup(key)
	if es == nil {
		writeDetail(w, http.StatusUnauthorized, "invalid environment key: no environment has this key")
		return
	}
	select {
	case <-s.hub.Done():
		w.Header().Set("Retry-After", "5")
		writeDetail(w, http.StatusServiceUnavailable, "the server is shutting down; retry later")
		return
	default:
	}
	if !s.ws.acquire(key) {
		w.Header().Set("Retry-After", "5")
		writeDetail(w, http.StatusTooManyRequests, fmt.Sprintf("too many stream connections with this key (at most %d)", s.wsMaxPerKey()))
		return
	}
	defer s.ws.release(key)
	s.ws.active.Add(1)
	defer s.ws.active.Add(-1)
	if err := connlimit.Stream(r.Context()); err != nil {
		w.Header().Set("Retry-After", "5")
		writeDetail(w, http.StatusServiceUnavailable, "too many streaming connections; retry later")
		return
	}
	opts := &websocket.AcceptOptions{OriginPatterns: s.opts.WebsocketOrigins}
	if len(s.opts.WebsocketOrigins) == 0 {
		// Any origin, as the SDK API's CORS: the environment key in the
		// request is the credential, no cookie is ever read.
		opts.InsecureSkipVerify = true
	}
	c, err := websocket.Accept(w, r, opts)
	if err != nil {
		return // Accept answered
	}
	defer c.CloseNow()
	c.SetReadLimit(wsReadLimit)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	envKey := es.Key()
	clientTraits := server || es.Environment().ClientTraitsAllowed()

	// The subscribe message.
	sctx, scancel := context.WithTimeout(ctx, wsSubscribeTimeout)
	sub, perr := s.wsSubscribe(sctx, c, envKey, server, clientTraits)
	scancel()
	if perr != nil {
		if perr.code != 0 {
			_ = c.Close(perr.code, closeReason(perr.reason))
		}
		return
	}
	defer sub.Close()

	// The reader.
	notes := make(chan []byte, wsMaxPendingErrors)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer cancel()
		perr := s.wsRead(ctx, c, sub, clientTraits, notes)
		if perr != nil && perr.code != 0 {
			_ = c.Close(perr.code, closeReason(perr.reason))
		}
	}()
	defer func() { <-readerDone }()
	defer c.CloseNow() //nolint:errcheck // runs before waiting for the reader: ends its Read

	heartbeat := time.NewTicker(s.streamKeepAlive())
	defer heartbeat.Stop()
	write := func(b []byte) bool {
		wctx, wcancel := context.WithTimeout(ctx, s.streamWriteTimeout())
		defer wcancel()
		return c.Write(wctx, websocket.MessageText, b) == nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.hub.Done():
			_ = c.Close(websocket.StatusGoingAway, "the server is shutting down")
			return
		case <-heartbeat.C:
			if !write(wsHeartbeat) {
				return
			}
		case b := <-notes:
			if !write(b) {
				return
			}
		case <-sub.Notified():
			if cur := s.current.Load(); cur != nil {
				if es, _ := cur.Lookup(key); es == nil || es.Key() != envKey {
					_ = c.Close(websocket.StatusPolicyViolation, "the environment key is no longer valid")
					return
				}
			}
			m, ok := sub.Take()
			if !ok {
				continue
			}
			if m.End != "" {
				_ = c.Close(websocket.StatusNormalClosure, closeReason(m.End))
				return
			}
			b, err := encodeWSMessage(&m)
			if err != nil {
				s.log.Error("websocket stream: encode", "err", err)
				_ = c.Close(websocket.StatusInternalError, "cannot encode flags")
				return
			}
			if !write(b) {
				return
			}
		}
	}
}

// readClient reads one client message.
func readClient(ctx context.Context, c *websocket.Conn) (*wsClientMessage, *wsProtocolError) {
	typ, data, err := c.Read(ctx)
	if err != nil {
		return nil, &wsProtocolError{} // gone, or closed by the library (a frame too big: 1009)
	}
	if typ != websocket.MessageText {
		return nil, &wsProtocolError{code: websocket.StatusUnsupportedData, reason: "binary messages are not supported: send JSON text"}
	}
	var m wsClientMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, &wsProtocolError{code: websocket.StatusInvalidFramePayloadData, reason: "invalid JSON message: " + err.Error()}
	}
	return &m, nil
}

func (s *Server) wsSubscribe(ctx context.Context, c *websocket.Conn, envKey string, server, clientTraits bool) (*stream.Sub, *wsProtocolError) {
	m, perr := readClient(ctx, c)
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
		if clientTraits {
			spec.Traits = traits
		}
	}
	sub, err := s.ws.fanout.Subscribe(ctx, spec, m.Revision)
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
// connection ends or a message breaks the protocol.
func (s *Server) wsRead(ctx context.Context, c *websocket.Conn, sub *stream.Sub, clientTraits bool, notes chan<- []byte) *wsProtocolError {
	note := func(msg string) *wsProtocolError {
		select {
		case notes <- wsError(msg):
			return nil
		default:
			return policy("too many invalid messages")
		}
	}
	budget, last := float64(wsTraitsBurst), time.Now()
	for {
		m, perr := readClient(ctx, c)
		if perr != nil {
			return perr
		}
		switch m.Type {
		case "traits":
			now := time.Now()
			budget = min(wsTraitsBurst, budget+now.Sub(last).Seconds()*wsTraitsPerSecond)
			last = now
			if budget < 1 {
				return policy("too many trait updates: at most %d a second (bursts of %d)", wsTraitsPerSecond, wsTraitsBurst)
			}
			budget--
			if sub.Identifier() == "" {
				if perr := note("traits need an identifier: subscribe with one"); perr != nil {
					return perr
				}
				continue
			}
			traits, err := wsTraits(m.Traits)
			if err != nil {
				if perr := note("invalid traits: " + err.Error()); perr != nil {
					return perr
				}
				continue
			}
			if !clientTraits {
				if perr := note(errClientTraits); perr != nil {
					return perr
				}
				continue
			}
			sub.UpdateTraits(traits)
		case "subscribe":
			return policy("already subscribed")
		default:
			return policy("unknown message type %s", strconv.Quote(m.Type))
		}
	}
}
