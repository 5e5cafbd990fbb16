package httpapi

// OFREP event streams (the protocol's ADR-0008, service/event-streams.yaml).
//
//	GET /ofrep/v1/event-stream?key={client key}&since={event id}
//
// Every bulk answer (POST /ofrep/v1/evaluate/flags) lists the stream of its
// environment:
//
//	"eventStreams": [{"type": "sse", "endpoint": {"requestUri": "/ofrep/v1/event-stream?key=...&since=..."}}]
//
// as an endpoint without origin, so that providers connect through the
// origin they were configured with (a proxy's included). The key is the
// environment's client key even when the bulk request used a server key:
// the URL may be logged by proxies, and the notifications are the same for
// every key of the environment. Clients that can send headers may use
// Authorization: Bearer <key> or X-API-Key instead of key=.
//
// Each change of the environment's answers is one event:
//
//	id: 3f2a...                (the configuration's identity: 32 hex digits)
//	event: message
//	data: {"type":"refetchEvaluation","etag":"\"3f2a...\"","lastModified":"2026-02-20T21:28:18.123456Z"}
//
// The id and the etag name the environment's configuration (a hash of what
// decides its answers: the digest behind the bulk ETags), so a revision
// that changes nothing there has the same id and sends nothing, and a
// configuration that comes back has its old id. lastModified is the
// environment document's updated_at of the revision that made it (RFC 3339
// with microseconds: Unix seconds would not order two commits in the same
// second).
//
// On connect the stream sends the current event at once unless the client
// already has it: Last-Event-ID (sent by EventSource when it reconnects) or
// else the since parameter names the configuration it has. So a change
// between the bulk answer and the connection is never missed, and a
// reconnect that missed nothing costs nothing.
//
// A re-fetch an event triggered carries flagConfigEtag and
// flagConfigLastModified (Unix seconds or RFC 3339). When the etag is not
// the served configuration's and lastModified is newer than the served
// revision, this server is behind the one that sent the event (replicas
// behind a load balancer): the request waits for it up to
// Options.OFREPRefetchWait, then answers 503 with Retry-After rather than
// stale flags.

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/served"
	"github.com/gitflags/gitflags/stream"
)

// ofrepStreamPath is the OFREP event stream's route, which the bulk
// answers encoded in advance announce.
const ofrepStreamPath = served.OFREPEventStreamPath

const defaultOFREPRefetchWait = 2 * time.Second

func (s *Server) ofrepRefetchWait() time.Duration {
	if d := s.opts.OFREPRefetchWait; d > 0 {
		return d
	}
	return defaultOFREPRefetchWait
}

// appendRefetchEvent appends a refetchEvaluation event.
func appendRefetchEvent(b []byte, id string, updated time.Time) []byte {
	b = append(b, "id: "...)
	b = append(b, id...)
	b = append(b, "\nevent: message\ndata: {\"type\":\"refetchEvaluation\",\"etag\":\"\\\""...)
	b = append(b, id...)
	b = append(b, "\\\"\",\"lastModified\":\""...)
	b = updated.UTC().AppendFormat(b, served.DocumentTimeFormat)
	return append(b, "\"}\n\n"...)
}

// ofrepStream serves GET /ofrep/v1/event-stream.
func (s *Server) ofrepStream(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	fail := func(status int, detail string) { ofrepError(w, status, "", ofrepGeneral, detail) }
	st := s.current.Load()
	if st == nil {
		fail(http.StatusServiceUnavailable, "no valid revision loaded yet")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		fail(http.StatusBadRequest, "the query string cannot be read: "+err.Error())
		return
	}
	key := q.Get("key")
	if key == "" {
		if key, _ = bearerToken(r); key == "" {
			key = r.Header.Get("X-API-Key")
		}
	}
	var es *envState
	if key != "" {
		es, _ = st.Lookup(key)
	}
	if es == nil {
		w.Header()["Www-Authenticate"] = ofrepChallenge
		fail(http.StatusUnauthorized, "missing or unknown environment key: pass key=<client key>, or send Authorization: Bearer <key> or X-API-Key: <key>")
		return
	}
	envKey := es.Key()
	c, sub := s.startStream(w, r, key, envKey, fail)
	if c == nil {
		return
	}
	defer s.ws.keys.release(key)
	valid := func(st *state) *envState {
		es, _ := st.Lookup(key)
		if es == nil || es.Key() != envKey {
			return nil
		}
		return es
	}
	st = s.current.Load()
	if es = valid(st); es == nil {
		sub.Close()
		fail(http.StatusUnauthorized, "unknown environment key")
		return
	}
	seen := r.Header.Get("Last-Event-ID")
	if seen == "" {
		seen = q.Get("since")
	}
	first := appendRetry(nil, s.streamRetry())
	if id := served.OFREPConfigID(es.Digest()); id != seen {
		first = appendRefetchEvent(first, id, st.Updated())
		seen = id
	}
	s.runStream(r, c, sub, first, func(ev *stream.Event) ([]byte, bool) {
		if ev.Removed {
			return nil, false
		}
		if cur := s.current.Load(); cur != nil && valid(cur) == nil {
			return nil, false
		}
		id := served.OFREPConfigID(ev.Digest)
		if id == seen {
			return nil, true
		}
		seen = id
		c.buf = appendRefetchEvent(c.buf[:0], id, ev.Updated)
		return c.buf, true
	})
}

// ofrepAwaitConfig handles flagConfigEtag and flagConfigLastModified on a
// bulk request (see the top of this file): it returns the environment to
// answer from, the same as es unless this server was behind and caught up
// while waiting, or nil after writing a 503.
func (s *Server) ofrepAwaitConfig(w http.ResponseWriter, r *http.Request, es *envState) *envState {
	if r.URL.RawQuery == "" {
		return es
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return es // the metadata is advisory: an unreadable query is ignored
	}
	etag, lm := q.Get("flagConfigEtag"), q.Get("flagConfigLastModified")
	if etag == "" && lm == "" {
		return es
	}
	want, ok := parseLastModified(lm)
	etag = strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	envKey := es.Key()
	behind := func(st *state, es *envState) bool {
		return es != nil && etag != served.OFREPConfigID(es.Digest()) && ok && want.After(st.Updated())
	}
	if !behind(s.current.Load(), es) {
		return es
	}
	sub, err := s.hub.Subscribe(envKey)
	if err != nil {
		return es // shutting down
	}
	defer sub.Close()
	timer := time.NewTimer(s.ofrepRefetchWait())
	defer timer.Stop()
	for {
		st := s.current.Load()
		cur := st.Env(envKey)
		if cur == nil {
			return es
		}
		if !behind(st, cur) {
			return cur
		}
		select {
		case <-sub.Notified():
		case <-timer.C:
			w.Header().Set("Retry-After", "1")
			ofrepError(w, http.StatusServiceUnavailable, "", ofrepGeneral, "this server has not loaded the flag configuration the event announced yet; retry")
			return nil
		case <-r.Context().Done():
			return nil
		case <-s.hub.Done():
			return cur
		}
	}
}

// parseLastModified reads flagConfigLastModified: Unix seconds (the
// protocol's recommendation) or an RFC 3339 date-time.
func parseLastModified(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, true
	}
	return time.Time{}, false
}
