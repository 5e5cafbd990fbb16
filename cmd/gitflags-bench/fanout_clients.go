package main

// The subscribers of the fanout mode: one websocket each (fanout_ws.go),
// a read loop that stamps and records every message, and the bookkeeping
// the driver waits on (fanout.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// wireMsg is a server -> client message of the stream (protocol v1).
type wireMsg struct {
	Type     string                     `json:"type"`
	Version  int                        `json:"version"`
	Revision string                     `json:"revision"`
	Flags    map[string]json.RawMessage `json:"flags"`
	Changed  map[string]json.RawMessage `json:"changed"`
	Removed  []string                   `json:"removed"`
	Message  string                     `json:"message"`
}

// gotMsg is one message a subscriber received, reduced to what the checks
// need. The read loop keeps the raw message and its time; it is decoded
// when the checks ask for it (decode), so that reading costs the tool as
// little as possible: with thousands of subscribers, its time per message
// would otherwise add to the latencies it measures.
type gotMsg struct {
	raw      []byte
	decoded  bool
	typ      string
	revision string
	value    string // the watched flag's value (compact JSON), "" when absent
	others   []string
	removed  []string
	message  string
	at       time.Time
}

// decode fills in the fields from raw.
func (g *gotMsg) decode(watch string) {
	if g.decoded || g.raw == nil { // nil: made decoded (tests)
		return
	}
	g.decoded = true
	var m wireMsg
	if err := json.Unmarshal(g.raw, &m); err != nil {
		g.typ = "invalid JSON"
		g.message = string(g.raw)
		return
	}
	g.typ, g.revision, g.removed, g.message = m.Type, m.Revision, m.Removed, m.Message
	set := m.Changed
	if m.Type == "flags" {
		set = m.Flags
	}
	for name, raw := range set {
		if name == watch {
			g.value = flagValue(raw)
		} else {
			g.others = append(g.others, name)
		}
	}
}

var (
	heartbeatMsg = []byte(`{"type":"heartbeat"}`)
	changesMsg   = []byte(`{"type":"changes",`)
)

// quickValue finds, without decoding, the value of flag watch in a
// changes message written compactly ({"type":"changes",...,"watch":{...,"value":V...}); ok is
// false when it cannot tell (the message is then decoded).
func quickValue(data []byte, watch string) (value string, ok bool) {
	if !bytes.HasPrefix(data, changesMsg) {
		return "", false
	}
	i := bytes.Index(data, []byte(`"`+watch+`":{`))
	if i < 0 {
		return "", true // not in this message
	}
	rest := data[i+len(watch)+4:]
	end := bytes.IndexByte(rest, '}')
	j := bytes.Index(rest, []byte(`"value":`))
	if end < 0 || j < 0 || j > end {
		return "", false
	}
	rest = rest[j+len(`"value":`):]
	k := bytes.IndexAny(rest, ",}")
	if k <= 0 || bytes.ContainsAny(rest[:k], " \t\n\"") {
		return "", false
	}
	return string(rest[:k]), true
}

// awaited is the change the driver waits for: every subscriber of a set
// receiving the watched flag with value.
type awaited struct {
	value     string
	remaining atomic.Int64
	done      chan struct{}
}

func newAwaited(value string, n int) *awaited {
	a := &awaited{value: value, done: make(chan struct{})}
	a.remaining.Store(int64(n))
	if n == 0 {
		close(a.done)
	}
	return a
}

func (a *awaited) hit() {
	if a.remaining.Add(-1) == 0 {
		close(a.done)
	}
}

// subscriber is one websocket client.
type subscriber struct {
	id         int
	identifier string
	traits     map[string]any
	watch      string // the flag whose value is extracted
	conn       *wsClient

	mu   sync.Mutex
	msgs []gotMsg
	// hits are the awaited changes this subscriber already counted, so
	// that a duplicate message is not counted twice (the checks report it).
	hits map[*awaited]bool
	err  error
}

// dialSubscriber connects and subscribes; the read loop runs until the
// connection ends.
func dialSubscriber(ctx context.Context, wsURL, key string, s *subscriber, ready func(), cur *atomic.Pointer[awaited], wg *sync.WaitGroup) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := wsDial(dctx, wsURL, http.Header{"X-Environment-Key": {key}})
	if err != nil {
		return fmt.Errorf("subscriber %d: dial: %w", s.id, err)
	}
	s.conn = c
	sub := map[string]any{"type": "subscribe", "version": 1}
	if s.identifier != "" {
		sub["identifier"] = s.identifier
		if len(s.traits) > 0 {
			sub["traits"] = s.traits
		}
	}
	data, err := json.Marshal(sub)
	if err != nil {
		return err
	}
	if err := c.WriteText(data); err != nil {
		c.Close()
		return fmt.Errorf("subscriber %d: subscribe: %w", s.id, err)
	}
	s.hits = map[*awaited]bool{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.readLoop(ready, cur)
	}()
	return nil
}

func (s *subscriber) readLoop(ready func(), cur *atomic.Pointer[awaited]) {
	first := true
	for {
		// The driver ends the reads by closing the connections.
		data, err := s.conn.ReadMessage(4 << 20)
		at := time.Now()
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			if first {
				ready() // do not keep the driver waiting: the checks report it
			}
			return
		}
		g := gotMsg{raw: data, at: at}
		heartbeat := bytes.Equal(data, heartbeatMsg)
		if heartbeat {
			g.typ, g.decoded = "heartbeat", true
		}
		value, quick := "", false
		if !heartbeat && !first {
			value, quick = quickValue(data, s.watch)
		}
		if !heartbeat && !quick {
			g.decode(s.watch)
			if g.typ == "changes" {
				value = g.value
			}
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, g)
		var count *awaited
		if a := cur.Load(); a != nil && value != "" && value == a.value && !s.hits[a] {
			s.hits[a] = true
			count = a
		}
		s.mu.Unlock()
		if count != nil {
			count.hit()
		}
		if first && !heartbeat {
			first = false
			ready()
		}
	}
}

// flagValue is the compact JSON of a flag state's "value" ("null" when it
// has none).
func flagValue(raw json.RawMessage) string {
	var st struct {
		Value json.RawMessage `json:"value"`
	}
	if json.Unmarshal(raw, &st) != nil {
		return "invalid: " + string(raw)
	}
	if len(st.Value) == 0 {
		return "null"
	}
	var b bytes.Buffer
	if json.Compact(&b, st.Value) != nil {
		return string(st.Value)
	}
	return b.String()
}

// snapshot returns the messages received so far, decoded, and the read
// error.
func (s *subscriber) snapshot() ([]gotMsg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.msgs {
		s.msgs[i].decode(s.watch)
	}
	return append([]gotMsg(nil), s.msgs...), s.err
}

// fanoutEvent is one revision the driver made.
type fanoutEvent struct {
	Name     string `json:"name"` // hand, api, noop
	Revision string `json:"revision"`
	Value    string `json:"value,omitempty"` // the watched flag's new value (relevant events)
	start    time.Time
}

// checkSubscriber verifies one subscriber's messages against the events:
// the full state with the initial value, then exactly one changes message
// per relevant event, in order, with its revision and value and nothing else
// changed; nothing for a noop revision; heartbeats are allowed anywhere.
// It returns the failure ("" when fine) and the latency of each relevant
// event (indexed like events; noop events get 0).
func checkSubscriber(s *subscriber, initial string, events []fanoutEvent) (string, []time.Duration) {
	msgs, rerr := s.snapshot()
	lat := make([]time.Duration, len(events))
	var real []gotMsg
	for _, m := range msgs {
		if m.typ != "heartbeat" {
			real = append(real, m)
		}
	}
	fail := func(format string, a ...any) (string, []time.Duration) {
		return fmt.Sprintf("subscriber %d (%s): ", s.id, s.identifier) + fmt.Sprintf(format, a...), lat
	}
	if len(real) == 0 {
		return fail("no message (read error %v)", rerr)
	}
	if real[0].typ != "flags" {
		return fail("first message is %q %s, want flags", real[0].typ, real[0].message)
	}
	if real[0].value != initial {
		return fail("full state has %s = %s, want %s", s.watch, real[0].value, initial)
	}
	i := 1
	for e, ev := range events {
		if ev.Name == "noop" {
			continue
		}
		if i >= len(real) {
			return fail("no changes message for the %s revision %s (got %d messages; read error %v)", ev.Name, short(ev.Revision), len(real), rerr)
		}
		m := real[i]
		i++
		switch {
		case m.typ != "changes":
			return fail("message %d is %q %s, want the changes of %s revision %s", i, m.typ, m.message, ev.Name, short(ev.Revision))
		case m.revision != ev.Revision:
			what := "another revision"
			for _, other := range events {
				if other.Revision == m.revision {
					what = "the " + other.Name + " revision"
				}
			}
			return fail("message %d is the changes of %s %s, want %s revision %s", i, what, short(m.revision), ev.Name, short(ev.Revision))
		case m.value != ev.Value:
			return fail("changes of revision %s set %s = %q, want %s", short(ev.Revision), s.watch, m.value, ev.Value)
		case len(m.others) > 0 || len(m.removed) > 0:
			return fail("changes of revision %s also name %v, removed %v", short(ev.Revision), m.others, m.removed)
		}
		lat[e] = m.at.Sub(ev.start)
	}
	if i < len(real) {
		m := real[i]
		return fail("%d unexpected messages after the last event, first %q revision %s %s", len(real)-i, m.typ, short(m.revision), m.message)
	}
	return "", lat
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// wsURL turns http://host:port into ws://host:port/api/v1/stream.
func wsURL(base string) string {
	return "ws://" + strings.TrimPrefix(base, "http://") + "/api/v1/stream"
}
