package httpapi

// Server-sent events: Flagsmith's realtime stream, and what it shares with
// OFREP's event stream (ofrepstream.go).
//
//	GET /sse/environments/{client key}/stream
//
// Both are notifications ("refetch"): each connection subscribes to its
// environment in the hub (package stream), which Publish notifies for every
// revision that changes the environment's answers (its digest); a revision
// that changes nothing there sends its subscribers nothing. The handler's
// goroutine is the connection's only writer. It holds no queue: when woken
// it writes the newest event, so a slow client skips intermediate revisions,
// and every write has its own deadline (Options.StreamWriteTimeout), after
// which a client that does not read is dropped. Keep-alive comments every
// Options.StreamKeepAlive let clients and proxies see a live connection.
//
// Flagsmith's event is
//
//	event: environment_updated
//	data: {"updated_at": 1712345678.123456}
//
// with updated_at the environment document's updated_at in epoch seconds,
// exactly the X-Flagsmith-Document-Updated-At header's text (the JavaScript
// SDK compares the two as numbers and refetches when the event's is
// greater; the Go SDK parses the data line and compares it with the
// document's updated_at). The current value is sent on connect.

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/connlimit"
	"github.com/gitflags/gitflags/stream"
)

// Stream defaults (see Options).
const (
	defaultStreamKeepAlive    = 15 * time.Second
	defaultStreamWriteTimeout = 5 * time.Second
	defaultStreamRetry        = 3 * time.Second
)

func (s *Server) streamKeepAlive() time.Duration {
	if d := s.opts.StreamKeepAlive; d > 0 {
		return d
	}
	return defaultStreamKeepAlive
}

func (s *Server) streamWriteTimeout() time.Duration {
	if d := s.opts.StreamWriteTimeout; d > 0 {
		return d
	}
	return defaultStreamWriteTimeout
}

func (s *Server) streamRetry() time.Duration {
	if d := s.opts.StreamRetry; d > 0 {
		return d
	}
	return defaultStreamRetry
}

// CloseStreams ends every event stream and websocket (1001, going away)
// and refuses new ones (503). Call it before http.Server.Shutdown, which
// does not wait for long-lived responses to end by themselves; then
// WaitStreams for the websockets.
func (s *Server) CloseStreams() {
	s.hub.Close()
	s.ws.shutdown()
	s.preparing.Wait() // Prepare's builds (publish.go) take milliseconds
}

// epochSeconds formats t as X-Flagsmith-Document-Updated-At does (see
// Publish).
func epochSeconds(t time.Time) string {
	return fmt.Sprintf("%.6f", float64(t.UnixMicro())/1e6)
}

var (
	hdrEventStream = []string{"text/event-stream"}
	hdrNoCache     = []string{"no-cache"}
	hdrNo          = []string{"no"}
	sseKeepAlive   = []byte(": keep-alive\n\n")
)

// sseConn writes one event-stream response.
type sseConn struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
}

// send writes b and flushes it, within the write timeout.
func (c *sseConn) send(b []byte) error {
	if err := c.rc.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	return c.rc.Flush()
}

// startStream counts the stream against key's cap (Options.StreamsPerKey),
// moves the request's connection into the streaming class and subscribes
// to environment env. On failure it writes a 429 or 503 with Retry-After
// through fail and returns nil. Once it returned a connection, the caller
// releases the key (s.ws.keys.release) when the stream ends.
func (s *Server) startStream(w http.ResponseWriter, r *http.Request, key, env string, fail func(status int, detail string)) (*sseConn, *stream.Subscription) {
	if !s.acquireStreamKey(w, key, fail) {
		return nil, nil
	}
	ok := false
	defer func() {
		if !ok {
			s.ws.keys.release(key)
		}
	}()
	if err := connlimit.Stream(r.Context()); err != nil {
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, "too many streaming connections; retry later")
		return nil, nil
	}
	sub, err := s.hub.Subscribe(env)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, "the server is shutting down; retry later")
		return nil, nil
	}
	c := &sseConn{w: w, rc: http.NewResponseController(w), timeout: s.streamWriteTimeout()}
	// The server's read timeout would end the stream (net/http cancels the
	// request when its background read fails); a stream reads nothing more.
	if err := c.rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		sub.Close()
		fail(http.StatusInternalServerError, "cannot start the stream")
		return nil, nil
	}
	ok = true
	h := w.Header()
	h["Content-Type"] = hdrEventStream
	h["Cache-Control"] = hdrNoCache
	h["X-Accel-Buffering"] = hdrNo // nginx: do not buffer the stream
	return c, sub
}

// runStream writes the stream until the client goes, the server closes
// streams, a write fails, or event reports that the stream must end.
// first is written at once (the head: retry and the current state); event
// is called on each notification and returns what to write (nil for
// nothing) and whether the stream goes on.
func (s *Server) runStream(r *http.Request, c *sseConn, sub *stream.Subscription, first []byte, event func(ev *stream.Event) ([]byte, bool)) {
	defer sub.Close()
	c.w.WriteHeader(http.StatusOK)
	if err := c.send(first); err != nil {
		return
	}
	keep := time.NewTicker(s.streamKeepAlive())
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.hub.Done():
			return
		case <-keep.C:
			if err := c.send(sseKeepAlive); err != nil {
				return
			}
		case <-sub.Notified():
			ev := sub.Latest()
			if ev == nil {
				continue
			}
			b, ok := event(ev)
			if b != nil {
				if err := c.send(b); err != nil {
					return
				}
			}
			if !ok {
				return
			}
		}
	}
}

// appendRetry appends the retry field (milliseconds).
func appendRetry(b []byte, d time.Duration) []byte {
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, d.Milliseconds(), 10)
	return append(b, "\n\n"...)
}

// appendEnvironmentUpdated appends Flagsmith's environment_updated event;
// updatedAt is epoch seconds as X-Flagsmith-Document-Updated-At writes them.
func appendEnvironmentUpdated(b []byte, updatedAt string) []byte {
	b = append(b, "event: environment_updated\ndata: {\"updated_at\": "...)
	b = append(b, updatedAt...)
	return append(b, "}\n\n"...)
}

// flagsmithStream serves GET /sse/environments/{key}/stream.
func (s *Server) flagsmithStream(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	fail := func(status int, detail string) { writeDetail(w, status, detail) }
	st := s.current.Load()
	if st == nil {
		fail(http.StatusServiceUnavailable, "no valid revision loaded yet")
		return
	}
	key := p.ByName("key")
	es := st.ByClientKey(key)
	if es == nil {
		// A server key never goes in a URL: only client keys are looked up.
		fail(http.StatusNotFound, "no environment has this client key")
		return
	}
	envKey := es.Key()
	c, sub := s.startStream(w, r, key, envKey, fail)
	if c == nil {
		return
	}
	defer s.ws.keys.release(key)
	// Subscribed first, then read: a revision published in between is
	// either in this state or notified.
	st = s.current.Load()
	if es = st.Env(envKey); es == nil || es.Environment().ClientKey != key {
		sub.Close()
		fail(http.StatusNotFound, "no environment has this client key")
		return
	}
	sent := st.Updated()
	w.Header()["X-Flagsmith-Document-Updated-At"] = st.updatedAt
	first := appendRetry(nil, s.streamRetry())
	first = appendEnvironmentUpdated(first, st.updatedAt[0])
	s.runStream(r, c, sub, first, func(ev *stream.Event) ([]byte, bool) {
		if ev.Removed {
			return nil, false
		}
		if cur := s.current.Load(); cur != nil {
			if es := cur.Env(envKey); es == nil || es.Environment().ClientKey != key {
				return nil, false // the key is no longer valid
			}
		}
		if !ev.Updated.After(sent) {
			return nil, true // already sent (published while connecting)
		}
		sent = ev.Updated
		c.buf = appendEnvironmentUpdated(c.buf[:0], epochSeconds(ev.Updated))
		return c.buf, true
	})
}
