package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gitflags/gitflags/identities"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// wsMsg is any message of the websocket stream.
type wsMsg struct {
	Type     string            `json:"type"`
	Version  int               `json:"version"`
	Revision string            `json:"revision"`
	Flags    map[string]wsFlag `json:"flags"`
	Changed  map[string]wsFlag `json:"changed"`
	Removed  []string          `json:"removed"`
	Message  string            `json:"message"`
}

type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

// wsURL is the stream's URL of a server at base (http://...).
func wsURL(base string) string { return "ws" + strings.TrimPrefix(base, "http") + wsStreamPath }

// dialWS connects with key in the X-Environment-Key header (or, with a
// "?key=" prefix, in the query).
func dialWS(t *testing.T, base, key string) *wsClient {
	t.Helper()
	c, resp, err := dialWSRaw(base, key)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, c: c}
}

func dialWSRaw(base, key string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, opts := wsURL(base), &websocket.DialOptions{HTTPHeader: http.Header{}}
	if q, ok := strings.CutPrefix(key, "?key="); ok {
		u += "?key=" + q
	} else if key != "" {
		opts.HTTPHeader.Set("X-Environment-Key", key)
	}
	return websocket.Dial(ctx, u, opts)
}

func (w *wsClient) send(v any) {
	w.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsClient) subscribe(identifier string, traits map[string]any, revision string) {
	w.t.Helper()
	m := map[string]any{"type": "subscribe", "version": 1}
	if identifier != "" {
		m["identifier"] = identifier
	}
	if traits != nil {
		m["traits"] = traits
	}
	if revision != "" {
		m["revision"] = revision
	}
	w.send(m)
}

// next returns the next message that is not a heartbeat.
func (w *wsClient) next() wsMsg {
	w.t.Helper()
	for {
		m := w.nextAny()
		if m.Type != "heartbeat" {
			return m
		}
	}
}

func (w *wsClient) nextAny() wsMsg {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, data, err := w.c.Read(ctx)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		w.t.Fatalf("a %v message", typ)
	}
	var m wsMsg
	if err := json.Unmarshal(data, &m); err != nil {
		w.t.Fatalf("%s: %v", data, err)
	}
	return m
}

// closed reads until the server closes and returns the close status and
// reason.
func (w *wsClient) closed() (websocket.StatusCode, string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := w.c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		w.t.Fatalf("read ended without a close frame: %v", err)
	}
}

// sdkFlags is an SDK API answer's flags as the stream writes them.
func sdkFlags(t *testing.T, body []byte) map[string]wsFlag {
	t.Helper()
	var list []struct {
		Feature struct {
			Name string `json:"name"`
		} `json:"feature"`
		Enabled bool `json:"enabled"`
		Value   any  `json:"feature_state_value"`
	}
	var ident struct {
		Flags json.RawMessage `json:"flags"`
	}
	if len(body) > 0 && body[0] == '{' {
		if err := json.Unmarshal(body, &ident); err != nil {
			t.Fatal(err)
		}
		body = ident.Flags
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	out := map[string]wsFlag{}
	for _, f := range list {
		out[f.Feature.Name] = wsFlag{Enabled: f.Enabled, Value: f.Value}
	}
	return out
}

// sameFlags compares flags leaving variants out (the SDK API has none).
func sameFlags(a, b map[string]wsFlag) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.Enabled != w.Enabled || fmt.Sprint(v.Value) != fmt.Sprint(w.Value) {
			return false
		}
	}
	return true
}

// flagDiff is what changed from a to b, as a changes message says it.
func flagDiff(a, b map[string]wsFlag) (changed map[string]wsFlag, removed []string) {
	changed = map[string]wsFlag{}
	for k, v := range b {
		if w, ok := a[k]; !ok || !sameFlags(map[string]wsFlag{k: v}, map[string]wsFlag{k: w}) {
			changed[k] = v
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			removed = append(removed, k)
		}
	}
	slices.Sort(removed)
	return changed, removed
}

type wsFixture struct {
	*streamFixture
	store *identities.BoltStore
}

func newWSFixture(t *testing.T, opts Options) *wsFixture {
	t.Helper()
	store, err := identities.Open(filepath.Join(t.TempDir(), "identities.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	opts.Identities = store
	if opts.StreamKeepAlive == 0 {
		opts.StreamKeepAlive = time.Hour
	}
	return &wsFixture{streamFixture: newStreamFixture(t, opts, nil), store: store}
}

// sdk calls the SDK API with key and returns the status and body.
func (f *wsFixture) sdk(method, path, key string, body any) (int, []byte) {
	f.t.Helper()
	text := ""
	if body != nil {
		b, _ := json.Marshal(body)
		text = string(b)
	}
	resp, b := send(f.t, method, f.url+path, text, "X-Environment-Key", key, "Content-Type", "application/json")
	return resp.StatusCode, b
}

// identify returns the flags POST /api/v1/identities/ answers for
// identifier with transient traits (stored ones merged).
func (f *wsFixture) identify(key, identifier string, traits map[string]any) map[string]wsFlag {
	f.t.Helper()
	var ts []map[string]any
	for k, v := range traits {
		ts = append(ts, map[string]any{"trait_key": k, "trait_value": v, "transient": true})
	}
	code, b := f.sdk(http.MethodPost, "/api/v1/identities/", key, map[string]any{"identifier": identifier, "traits": ts})
	if code != http.StatusOK {
		f.t.Fatalf("identify: %d %s", code, b)
	}
	return sdkFlags(f.t, b)
}

func checkChanges(t *testing.T, m wsMsg, rev string, changed map[string]wsFlag, removed []string) {
	t.Helper()
	if m.Type != "changes" || (rev != "" && m.Revision != rev) || !sameFlags(m.Changed, changed) || !slices.Equal(m.Removed, removed) && (len(m.Removed) != 0 || len(removed) != 0) {
		t.Fatalf("message %+v,\nwant changes at %s: changed %v removed %v", m, rev, changed, removed)
	}
}

func (f *wsFixture) rev() string { return f.s.current.Load().snap.Revision.SHA }

// TestWSFlagsAndChanges: the full state equals the SDK API's answer for
// the same context; a revision sends exactly the flag it changed; a
// revision of another environment sends nothing.
func TestWSFlagsAndChanges(t *testing.T) {
	f := newWSFixture(t, Options{})
	traits := map[string]any{"plan": "pro", "lifetime_value": 5000}
	id := dialWS(t, f.url, prodKey)
	id.subscribe("u1", traits, "")
	env := dialWS(t, f.url, "?key="+prodKey)
	env.subscribe("", nil, "")

	m := id.next()
	if m.Type != "flags" || m.Version != 1 || m.Revision != f.rev() {
		t.Fatalf("first message %+v", m)
	}
	if want := f.identify(prodKey, "u1", traits); !sameFlags(m.Flags, want) {
		t.Fatalf("stream flags %v\nSDK API flags %v", m.Flags, want)
	}
	if m.Flags["max_cart_items"].Value != float64(200) {
		t.Fatalf("max_cart_items %v: the traits were not used", m.Flags["max_cart_items"])
	}
	m = env.next()
	_, body := f.sdk(http.MethodGet, "/api/v1/flags/", prodKey, nil)
	if want := sdkFlags(t, body); m.Type != "flags" || !sameFlags(m.Flags, want) {
		t.Fatalf("environment stream flags %v\nSDK API flags %v", m.Flags, want)
	}

	f.commit(setValue(t, "staging", "api_rate_limit", 1)) // another environment: nothing
	f.commit(setValue(t, "production", "api_rate_limit", 1234))
	want := map[string]wsFlag{"api_rate_limit": {Enabled: true, Value: float64(1234)}}
	checkChanges(t, id.next(), f.rev(), want, nil)
	checkChanges(t, env.next(), f.rev(), want, nil)
}

// TestWSAdminWrite: a write through the admin API (a commit in a real Git
// repository) reaches a subscriber as exactly the flag it changed.
func TestWSAdminWrite(t *testing.T) {
	f := newAdminFixture(t)
	c := dialWS(t, f.ts.URL, stagingKey)
	defer c.c.Close(websocket.StatusNormalClosure, "")
	c.subscribe("someone", nil, "")
	if m := c.next(); m.Type != "flags" || fmt.Sprint(m.Flags["api_rate_limit"].Value) != "5000" {
		t.Fatalf("first message %+v", m)
	}
	code, body := f.do(t, http.MethodPost, "/api/experiments/environments/"+stagingKey+"/update-flag-v1/", adminToken, []byte(`{"feature": {"name": "api_rate_limit"}, "enabled": true, "value": {"type": "integer", "value": "1234"}}`), nil)
	if code != http.StatusNoContent {
		t.Fatalf("update-flag-v1: %d %s", code, body)
	}
	head := f.git(t, "rev-parse", "HEAD")
	checkChanges(t, c.next(), head, map[string]wsFlag{"api_rate_limit": {Enabled: true, Value: float64(1234)}}, nil)
}

// TestWSTraits: traits sent on the socket and traits stored through the
// REST API both send the flags that changed.
func TestWSTraits(t *testing.T) {
	f := newWSFixture(t, Options{})
	c := dialWS(t, f.url, prodKey)
	c.subscribe("u2", map[string]any{"plan": "free"}, "")
	before := c.next().Flags
	pro := map[string]any{"plan": "pro", "lifetime_value": 2000}
	after := f.identify(prodKey, "u2", pro)
	changed, removed := flagDiff(before, after)
	if len(changed) == 0 {
		t.Fatal("the test's traits change nothing")
	}
	c.send(map[string]any{"type": "traits", "traits": pro})
	checkChanges(t, c.next(), f.rev(), changed, removed)
	// Back to no sent traits, then the REST API stores the same traits.
	c.send(map[string]any{"type": "traits", "traits": map[string]any{}})
	m := c.next()
	if m.Type != "changes" || len(m.Changed) == 0 {
		t.Fatalf("after clearing the traits: %+v", m)
	}
	code, body := f.sdk(http.MethodPost, "/api/v1/identities/", prodKey, map[string]any{"identifier": "u2", "traits": []map[string]any{{"trait_key": "plan", "trait_value": "pro"}, {"trait_key": "lifetime_value", "trait_value": 2000}}})
	if code != http.StatusOK {
		t.Fatalf("identify: %d %s", code, body)
	}
	m = c.next()
	if m.Type != "changes" || !sameFlags(m.Changed, changed) {
		t.Fatalf("after the REST API stored the traits: %+v, want %v", m, changed)
	}
	// A single trait through POST /api/v1/traits/.
	stored := f.identify(prodKey, "u2", nil)
	code, body = f.sdk(http.MethodPost, "/api/v1/traits/", prodKey, map[string]any{"identity": map[string]any{"identifier": "u2"}, "trait_key": "lifetime_value", "trait_value": 10})
	if code != http.StatusOK {
		t.Fatalf("traits: %d %s", code, body)
	}
	changed, removed = flagDiff(stored, f.identify(prodKey, "u2", nil))
	if len(changed) == 0 {
		t.Fatal("the test's trait changes nothing")
	}
	checkChanges(t, c.next(), f.rev(), changed, removed)
}

// TestWSTraitsRateLimited: a client that changes its traits faster than
// the limit (each change is an evaluation of every flag) is closed with a
// reason; another client keeps being served.
func TestWSTraitsRateLimited(t *testing.T) {
	f := newWSFixture(t, Options{})
	other := dialWS(t, f.url, prodKey)
	other.subscribe("calm", nil, "")
	other.next()
	c := dialWS(t, f.url, prodKey)
	c.subscribe("busy", nil, "")
	c.next()
	// The burst is allowed; past it the budget refills at a few a second,
	// far slower than these messages go (send errors once the server has
	// closed are expected).
	for i := range wsTraitsBurst {
		c.send(map[string]any{"type": "traits", "traits": map[string]any{"n": i}})
	}
	for i := range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"traits","traits":{"m":%d}}`, i))
		cancel()
		if err != nil {
			break
		}
	}
	if code, reason := c.closed(); code != websocket.StatusPolicyViolation || !strings.Contains(reason, "too many trait updates") {
		t.Fatalf("closed with %v %q, want a policy violation about trait updates", code, reason)
	}
	f.commit(setValue(t, "production", "api_rate_limit", 7))
	checkChanges(t, other.next(), f.rev(), map[string]wsFlag{"api_rate_limit": {Enabled: true, Value: float64(7)}}, nil)
}

// TestWSResume: a known revision gets the changes since, an unknown one
// the full state.
func TestWSResume(t *testing.T) {
	f := newWSFixture(t, Options{})
	c := dialWS(t, f.url, prodKey)
	c.subscribe("u3", nil, "")
	first := c.next()
	c.c.Close(websocket.StatusNormalClosure, "")

	f.commit(setValue(t, "production", "api_rate_limit", 77))
	f.commit(setValue(t, "staging", "api_rate_limit", 78))
	c = dialWS(t, f.url, prodKey)
	c.subscribe("u3", nil, first.Revision)
	checkChanges(t, c.next(), f.rev(), map[string]wsFlag{"api_rate_limit": {Enabled: true, Value: float64(77)}}, nil)

	c = dialWS(t, f.url, prodKey)
	c.subscribe("u3", nil, f.rev())
	checkChanges(t, c.next(), f.rev(), map[string]wsFlag{}, nil) // nothing since

	c = dialWS(t, f.url, prodKey)
	c.subscribe("u3", nil, "0000000000000000000000000000000000000000")
	if m := c.next(); m.Type != "flags" || m.Revision != f.rev() || fmt.Sprint(m.Flags["api_rate_limit"].Value) != "77" {
		t.Fatalf("unknown revision: %+v, want the full state", m)
	}
}

// TestWSSharedEvaluation: a subscriber whose context is already subscribed
// shares its evaluation, on connecting and for each revision. (Two first
// subscribers of a context arriving at the same moment may each evaluate it
// outside the fan-out's lock; one evaluation is then kept: Subscribe. So
// the second subscribes once the first has its state.)
func TestWSSharedEvaluation(t *testing.T) {
	f := newWSFixture(t, Options{})
	fan := f.s.Fanout()
	n0 := fan.Evaluations()
	a, b := dialWS(t, f.url, prodKey), dialWS(t, f.url, prodKey)
	a.subscribe("same", map[string]any{"plan": "pro"}, "")
	a.next()
	b.subscribe("same", map[string]any{"plan": "pro"}, "")
	b.next()
	if got := fan.Evaluations() - n0; got != 1 {
		t.Errorf("%d evaluations for two subscribers of one context, want 1", got)
	}
	if got := fan.Contexts(); got != 1 {
		t.Errorf("%d contexts, want 1", got)
	}
	f.commit(setValue(t, "production", "api_rate_limit", 5))
	a.next()
	b.next()
	if got := fan.Evaluations() - n0; got != 2 {
		t.Errorf("%d evaluations after a revision, want 2", got)
	}
}

// TestWSBadInput: garbage, binary and oversized messages close the
// connection with a reason; others keep being served.
func TestWSBadInput(t *testing.T) {
	f := newWSFixture(t, Options{})
	good := dialWS(t, f.url, prodKey)
	good.subscribe("", nil, "")
	good.next()
	for _, tc := range []struct {
		name string
		send func(c *wsClient)
		code websocket.StatusCode
	}{
		{"not JSON", func(c *wsClient) { c.c.Write(context.Background(), websocket.MessageText, []byte("{nope")) }, websocket.StatusInvalidFramePayloadData},
		{"binary", func(c *wsClient) { c.c.Write(context.Background(), websocket.MessageBinary, []byte("{}")) }, websocket.StatusUnsupportedData},
		{"oversized", func(c *wsClient) {
			c.c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"subscribe","x":"`+strings.Repeat("x", wsReadLimit)+`"}`))
		}, websocket.StatusMessageTooBig},
		{"not a subscribe", func(c *wsClient) { c.send(map[string]any{"type": "traits"}) }, websocket.StatusPolicyViolation},
		{"wrong version", func(c *wsClient) { c.send(map[string]any{"type": "subscribe", "version": 2}) }, websocket.StatusPolicyViolation},
		{"absurd traits", func(c *wsClient) {
			c.subscribe("x", map[string]any{strings.Repeat("k", identities.MaxKeyLength+1): 1}, "")
		}, websocket.StatusPolicyViolation},
		{"unknown type", func(c *wsClient) { c.subscribe("", nil, ""); c.next(); c.send(map[string]any{"type": "what"}) }, websocket.StatusPolicyViolation},
	} {
		c := dialWS(t, f.url, prodKey)
		tc.send(c)
		if code, reason := c.closed(); code != tc.code || reason == "" {
			t.Errorf("%s: closed with %v %q, want %v and a reason", tc.name, code, reason, tc.code)
		}
	}
	// A bad traits message is an error message, not the end.
	c := dialWS(t, f.url, prodKey)
	c.subscribe("u", nil, "")
	c.next()
	c.send(map[string]any{"type": "traits", "traits": map[string]any{"": 1}})
	if m := c.next(); m.Type != "error" || m.Message == "" {
		t.Fatalf("after invalid traits: %+v", m)
	}
	f.commit(setValue(t, "production", "api_rate_limit", 9))
	checkChanges(t, good.next(), f.rev(), map[string]wsFlag{"api_rate_limit": {Enabled: true, Value: float64(9)}}, nil)
	checkChanges(t, c.next(), f.rev(), map[string]wsFlag{"api_rate_limit": {Enabled: true, Value: float64(9)}}, nil)
}

// TestWSRefused: a missing or wrong key is a 401 before the upgrade; past
// the per-key limit a 429.
func TestWSRefused(t *testing.T) {
	f := newWSFixture(t, Options{StreamsPerKey: 1})
	for _, key := range []string{"", "nope", "ser.nope", "?key=nope"} {
		_, resp, err := dialWSRaw(f.url, key)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("key %q: %v, status %v, want 401", key, err, resp)
		}
	}
	c := dialWS(t, f.url, prodKey)
	c.subscribe("", nil, "")
	c.next()
	if _, resp, err := dialWSRaw(f.url, prodKey); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("past the limit: %v, %v, want 429", err, resp)
	}
	dialWS(t, f.url, stagingKey).subscribe("", nil, "") // another key is counted apart
	// A query string that is not valid is refused, naming the parameter.
	if _, resp, err := dialWSRaw(f.url, "?key=%zz"); err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("key=%%zz: %v, %v, want 400", err, resp)
	}
}

// TestWSHeartbeatAndShutdown: heartbeats come; CloseStreams closes with
// going away.
func TestWSHeartbeatAndShutdown(t *testing.T) {
	f := newWSFixture(t, Options{StreamKeepAlive: 5 * time.Millisecond})
	c := dialWS(t, f.url, prodKey)
	c.subscribe("", nil, "")
	if m := c.nextAny(); m.Type != "flags" {
		t.Fatalf("first message %+v", m)
	}
	for c.nextAny().Type != "heartbeat" {
	}
	f.s.CloseStreams()
	if code, _ := c.closed(); code != websocket.StatusGoingAway {
		t.Errorf("closed with %v, want going away", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.s.WaitStreams(ctx); err != nil || f.s.ws.active.Load() != 0 {
		t.Errorf("WaitStreams after CloseStreams: %v (%d handlers running)", err, f.s.ws.active.Load())
	}
	if _, resp, err := dialWSRaw(f.url, prodKey); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after CloseStreams: %v, %v, want 503", err, resp)
	}
}

// TestWSStuckClientDropped: a client that never reads is closed once a
// write outlasts the write timeout, while a client that reads keeps
// getting its changes.
func TestWSStuckClientDropped(t *testing.T) {
	f := newWSFixture(t, Options{StreamKeepAlive: time.Millisecond, StreamWriteTimeout: 100 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.s.Handler()}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(smallBuffers{ln}) }()
	defer func() { f.s.CloseStreams(); _ = srv.Close(); <-done }()
	base := "http://" + ln.Addr().String()

	// The stuck client upgrades and subscribes by hand, then never reads.
	stuck, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	_ = stuck.(*net.TCPConn).SetReadBuffer(1024)
	handshake := "GET " + wsStreamPath + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Environment-Key: " + prodKey + "\r\n\r\n"
	payload := `{"type":"subscribe","version":1,"identifier":"stuck"}`
	frame := append([]byte{0x81, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...) // masked with a zero key
	if _, err := io.WriteString(stuck, handshake+string(frame)); err != nil {
		t.Fatal(err)
	}
	fan := f.s.Fanout()
	eventually(t, "the stuck client subscribed", func() bool { return fan.Contexts() == 1 })
	reader := dialWS(t, base, prodKey)
	reader.subscribe("reader", nil, "")
	reader.next()
	eventually(t, "the stuck client is dropped", func() bool { return fan.Contexts() == 1 && f.s.ws.connections(prodKey) == 1 })
	if got := testutil.ToFloat64(f.s.metrics.streamDropped); got != 1 {
		t.Errorf("gitflags_stream_clients_dropped_total %v, want 1", got)
	}
	f.commit(setValue(t, "production", "api_rate_limit", 3))
	checkChanges(t, reader.next(), f.rev(), map[string]wsFlag{"api_rate_limit": {Enabled: true, Value: float64(3)}}, nil)
}

// TestWSSharedMessages: subscribers with distinct contexts receive the same
// bytes for the same change, and those bytes are what encoding/json writes
// for each one's message (the encoding per subscriber before messages were
// shared).
func TestWSSharedMessages(t *testing.T) {
	f := newWSFixture(t, Options{})
	var clients []*wsClient
	for i, sub := range []struct {
		key, id string
		traits  map[string]any
	}{{prodKey, "a", map[string]any{"plan": "pro"}}, {prodKey, "b", nil}, {prodKey, "", nil}, {"?key=" + prodKey, "c", map[string]any{"n": 3}}} {
		c := dialWS(t, f.url, sub.key)
		c.subscribe(sub.id, sub.traits, "")
		if m := c.next(); m.Type != "flags" {
			t.Fatalf("client %d: first message %+v", i, m)
		}
		clients = append(clients, c)
	}
	f.commit(setValue(t, "production", "api_rate_limit", 4242))
	var first []byte
	for i, c := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, data, err := c.c.Read(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var m wsChangesMessage
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		old, err := json.Marshal(m) // as the stream encoded each message before
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, old) || m.Type != "changes" || len(m.Changed) != 1 || m.Revision != f.rev() {
			t.Fatalf("client %d got %s\nencoding/json writes %s", i, data, old)
		}
		if i == 0 {
			first = data
		} else if !bytes.Equal(data, first) {
			t.Errorf("client %d got %s, client 0 %s", i, data, first)
		}
	}
}

// TestWSClientTraitsTurnedOff: a revision that turns allow_client_traits
// off re-evaluates a client-key subscriber without the traits it sent (as
// the SDK API answers for a new request) and refuses new ones; turned on
// again, they apply again.
func TestWSClientTraitsTurnedOff(t *testing.T) {
	f := newWSFixture(t, Options{})
	pro := map[string]any{"plan": "pro", "lifetime_value": 5000}
	c := dialWS(t, f.url, prodKey)
	c.subscribe("u7", pro, "")
	state := c.next().Flags
	if !sameFlags(state, f.identify(prodKey, "u7", pro)) || state["max_cart_items"].Value != float64(200) {
		t.Fatalf("full state %v, want the flags of the traits sent", state)
	}
	allow := func(v bool) func(memRepo) {
		return func(r memRepo) {
			r.Edit(t, "environments/production/environment.json", func(d map[string]any) { d["allow_client_traits"] = v })
		}
	}
	applyMsg := func(m wsMsg) {
		t.Helper()
		if m.Type != "changes" {
			t.Fatalf("message %+v, want changes", m)
		}
		for k, v := range m.Changed {
			state[k] = v
		}
		for _, k := range m.Removed {
			delete(state, k)
		}
	}
	f.commit(allow(false))
	applyMsg(c.next())
	// The SDK API now ignores the sent traits: the same flags.
	if want := f.identify(prodKey, "u7", pro); !sameFlags(state, want) || state["max_cart_items"].Value == float64(200) {
		t.Fatalf("after allow_client_traits false: %v\nwant (SDK API) %v", state, want)
	}
	c.send(map[string]any{"type": "traits", "traits": map[string]any{"plan": "free"}})
	if m := c.next(); m.Type != "error" || m.Message != errClientTraits {
		t.Fatalf("traits message with client traits off: %+v", m)
	}
	f.commit(allow(true))
	applyMsg(c.next())
	if want := f.identify(prodKey, "u7", pro); !sameFlags(state, want) || state["max_cart_items"].Value != float64(200) {
		t.Fatalf("after allow_client_traits true: %v\nwant %v", state, want)
	}
}

// TestStreamsPerKey: websockets, Flagsmith SSE and OFREP event streams
// with one key count together against Options.StreamsPerKey; past it
// each answers 429 with Retry-After and a reason in its error shape; a
// closed stream frees its place; another key is counted apart.
func TestStreamsPerKey(t *testing.T) {
	f := newWSFixture(t, Options{StreamsPerKey: 2})
	sse := openSSE(t, f.url+"/sse/environments/"+prodKey+"/stream")
	if sse.resp.StatusCode != 200 {
		t.Fatalf("first stream: %d", sse.resp.StatusCode)
	}
	sse.next(t)
	ws := dialWS(t, f.url, prodKey)
	ws.subscribe("", nil, "")
	ws.next()
	for _, path := range []string{"/sse/environments/" + prodKey + "/stream", "/ofrep/v1/event-stream?key=" + prodKey} {
		resp, body := send(t, "GET", f.url+path, "")
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "too many stream connections with this key (at most 2 at once)") {
			t.Errorf("%s past the cap: status %d Retry-After %q %s", path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		checkErrorShape(t, path, path, resp, body)
	}
	if _, resp, err := dialWSRaw(f.url, prodKey); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("websocket past the cap: %v, %v, want 429", err, resp)
	}
	if o := openSSE(t, f.url+"/ofrep/v1/event-stream?key="+stagingKey); o.resp.StatusCode != 200 {
		t.Errorf("another key: %d", o.resp.StatusCode)
	}
	sse.close()
	eventually(t, "the closed stream frees its place", func() bool { return f.s.ws.connections(prodKey) == 1 })
	if o := openSSE(t, f.url+"/ofrep/v1/event-stream?key="+prodKey); o.resp.StatusCode != 200 {
		t.Errorf("after one closed: %d", o.resp.StatusCode)
	}
	ws.c.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the closed websocket frees its place", func() bool { return f.s.ws.connections(prodKey) == 1 })
}

// TestWSOrigins: with Options.WebsocketOrigins, a browser's Origin must
// match a pattern or be the server's own host (403 otherwise); clients that
// send no Origin are not browsers and are let in.
func TestWSOrigins(t *testing.T) {
	f := newWSFixture(t, Options{WebsocketOrigins: []string{"app.example.com", "*.acme.test"}})
	dial := func(origin string) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h := http.Header{"X-Environment-Key": {prodKey}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.Dial(ctx, wsURL(f.url), &websocket.DialOptions{HTTPHeader: h})
		if err == nil {
			c.CloseNow()
			return http.StatusSwitchingProtocols, nil
		}
		if resp == nil {
			return 0, err
		}
		return resp.StatusCode, err
	}
	for origin, want := range map[string]int{
		"https://app.example.com":  http.StatusSwitchingProtocols,
		"https://eu.acme.test":     http.StatusSwitchingProtocols,
		f.url:                      http.StatusSwitchingProtocols,
		"":                         http.StatusSwitchingProtocols,
		"https://evil.example.com": http.StatusForbidden,
		"https://acme.test.evil":   http.StatusForbidden,
	} {
		if got, err := dial(origin); got != want {
			t.Errorf("Origin %q: %d (%v), want %d", origin, got, err, want)
		}
	}
}

// TestWSBurstAndVanish: many connections at once, of which some vanish
// before or while the server writes, some subscribe and never read, and
// some send garbage: the others get their change; every connection's
// goroutines end and its place is given back.
func TestWSBurstAndVanish(t *testing.T) {
	f := newWSFixture(t, Options{StreamWriteTimeout: 200 * time.Millisecond})
	const n = 200
	addr := strings.TrimPrefix(f.url, "http://")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var readers []*rawWS
	var idlers []net.Conn
	for i := range n {
		wg.Go(func() {
			switch i % 4 {
			case 0, 1: // reads
				r, err := dialRawWS(addr, prodKey, fmt.Sprintf("burst-%d", i), map[string]any{"i": i})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				readers = append(readers, r)
				mu.Unlock()
			case 2: // vanishes right after subscribing, before reading anything
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				payload := fmt.Sprintf(`{"type":"subscribe","version":1,"identifier":"gone-%d"}`, i)
				_, _ = io.WriteString(c, "GET "+wsStreamPath+" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Environment-Key: "+prodKey+"\r\n\r\n"+string(clientFrame([]byte(payload))))
				if i%8 == 2 {
					_ = c.(*net.TCPConn).SetLinger(0) // a reset
				}
				c.Close()
			case 3: // garbage after the upgrade, then never reads
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.WriteString(c, "GET "+wsStreamPath+" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Environment-Key: "+prodKey+"\r\n\r\n\xff\xfe garbage")
				mu.Lock()
				idlers = append(idlers, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	f.commit(setValue(t, "production", "api_rate_limit", 31337))
	for _, r := range readers {
		_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, msg, err := r.read(); err != nil || !strings.Contains(string(msg), `"api_rate_limit":{"enabled":true,"value":31337}`) {
			t.Fatalf("a reader got %s (%v)", msg, err)
		}
	}
	for _, r := range readers {
		r.c.Close()
	}
	for _, c := range idlers {
		c.Close()
	}
	eventually(t, "every connection ended", func() bool {
		return f.s.ws.connections(prodKey) == 0 && f.s.Fanout().Contexts() == 0 && f.s.ws.active.Load() == 0
	})
}
