package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gitflags/gitflags/served"
)

// bulkStreams posts a bulk request and returns its answer and eventStreams.
func bulkStreams(t *testing.T, base, key, body string, hdr ...string) (*http.Response, []byte, []map[string]any) {
	t.Helper()
	resp, b := send(t, "POST", base+"/ofrep/v1/evaluate/flags", body, append([]string{"Authorization", "Bearer " + key}, hdr...)...)
	if resp.StatusCode != http.StatusOK {
		return resp, b, nil
	}
	var out struct {
		Flags        []map[string]any `json:"flags"`
		EventStreams []map[string]any `json:"eventStreams"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("bulk answer: %v: %s", err, b)
	}
	return resp, b, out.EventStreams
}

// streamURI checks the eventStreams of a bulk answer and returns the
// stream's request URI.
func streamURI(t *testing.T, streams []map[string]any) string {
	t.Helper()
	if len(streams) != 1 || streams[0]["type"] != "sse" || streams[0]["url"] != nil {
		t.Fatalf("eventStreams %v, want one sse endpoint", streams)
	}
	ep, _ := streams[0]["endpoint"].(map[string]any)
	uri, _ := ep["requestUri"].(string)
	if uri == "" || ep["origin"] != nil {
		t.Fatalf("endpoint %v, want a requestUri without origin", ep)
	}
	return uri
}

// refetchData decodes a refetchEvaluation event.
func refetchData(t *testing.T, ev sseEvent) (etag, lastModified string) {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
		t.Fatalf("event data %q: %v", ev.data, err)
	}
	if ev.event != "message" || d["type"] != "refetchEvaluation" || ev.id == "" {
		t.Fatalf("event %+v, want id, event: message, type refetchEvaluation", ev)
	}
	etag, _ = d["etag"].(string)
	lastModified, _ = d["lastModified"].(string)
	if etag != `"`+ev.id+`"` {
		t.Errorf("etag %q, want the id %q quoted", etag, ev.id)
	}
	if _, err := time.Parse(time.RFC3339Nano, lastModified); err != nil {
		t.Errorf("lastModified %q: %v", lastModified, err)
	}
	return etag, lastModified
}

func TestOFREPEventStream(t *testing.T) {
	f := newStreamFixture(t, Options{}, nil)
	const body = `{"context":{"targetingKey":"u1","plan":"pro"}}`
	resp, _, streams := bulkStreams(t, f.url, prodKey, body)
	uri := streamURI(t, streams)
	u, err := url.Parse(uri)
	if err != nil || u.Path != "/ofrep/v1/event-stream" || u.Query().Get("key") != prodKey || u.Query().Get("since") == "" {
		t.Fatalf("requestUri %q", uri)
	}
	since := u.Query().Get("since")
	etag0 := resp.Header.Get("ETag")
	// Without a targeting key (a precomputed answer), and with the server
	// key: the same stream, named by the client key.
	_, _, s2 := bulkStreams(t, f.url, prodKey, `{}`)
	if streamURI(t, s2) != uri {
		t.Errorf("without a targeting key: %q, want %q", streamURI(t, s2), uri)
	}

	// Connected with the configuration it has: nothing but the retry field.
	c := openSSE(t, f.url+uri, "Origin", "http://example.com")
	if c.resp.StatusCode != 200 || c.resp.Header.Get("Content-Type") != "text/event-stream" || c.resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("status %d headers %v", c.resp.StatusCode, c.resp.Header)
	}
	if ev := c.next(t); ev.retry == "" || ev.data != "" {
		t.Fatalf("first %+v, want only retry", ev)
	}
	// Another environment's change sends nothing; a revision that changes
	// nothing sends nothing; production's change is the next event.
	f.commit(setValue(t, "staging", "search_provider", "solr"))
	f.commit(nil)
	f.commit(setValue(t, "production", "max_cart_items", 66))
	ev := c.next(t)
	etag, lm := refetchData(t, ev)
	if ev.id == since {
		t.Errorf("the change kept the id %s", since)
	}
	if want := f.s.current.Load().Updated().Format(served.DocumentTimeFormat); lm != want {
		t.Errorf("lastModified %q, want %q", lm, want)
	}
	// The provider's re-fetch: a new answer with the new since.
	q := "?flagConfigEtag=" + url.QueryEscape(etag) + "&flagConfigLastModified=" + url.QueryEscape(lm)
	resp, b := send(t, "POST", f.url+"/ofrep/v1/evaluate/flags"+q, body, "Authorization", "Bearer "+prodKey, "If-None-Match", etag0)
	var out struct {
		EventStreams []map[string]any `json:"eventStreams"`
	}
	_ = json.Unmarshal(b, &out)
	s3 := out.EventStreams
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"value":66`) {
		t.Fatalf("re-fetch: %d %s", resp.StatusCode, b)
	}
	if u, _ := url.Parse(streamURI(t, s3)); u.Query().Get("since") != ev.id {
		t.Errorf("after the change the stream's since is %q, want the event id %q", u.Query().Get("since"), ev.id)
	}
	// Back to the first configuration: its id again.
	f.commit(setValue(t, "production", "max_cart_items", 50))
	if ev := c.next(t); ev.id != since {
		t.Errorf("reverted configuration has id %q, want the first one %q", ev.id, since)
	}

	// On connect: without since or Last-Event-ID, the current event at
	// once; with an old one, likewise; with the current one, nothing (its
	// first event is the next change).
	cur := served.OFREPConfigID(f.s.current.Load().Env("production").Digest())
	cases := []struct {
		what string
		path string
		hdr  []string
		now  bool
	}{
		{"no since", "/ofrep/v1/event-stream?key=" + prodKey, nil, true},
		{"old since", "/ofrep/v1/event-stream?key=" + prodKey + "&since=" + etag[1:len(etag)-1], nil, true},
		{"Last-Event-ID old, since current", "/ofrep/v1/event-stream?key=" + prodKey + "&since=" + cur, []string{"Last-Event-ID", "0000"}, true},
		{"Last-Event-ID current", "/ofrep/v1/event-stream?key=" + prodKey, []string{"Last-Event-ID", cur}, false},
		{"since current", "/ofrep/v1/event-stream?key=" + prodKey + "&since=" + cur, nil, false},
		{"key in the header", "/ofrep/v1/event-stream", []string{"X-API-Key", prodKey}, true},
	}
	clients := make([]*sseClient, len(cases))
	for i, tc := range cases {
		c := openSSE(t, f.url+tc.path, tc.hdr...)
		if c.resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", tc.what, c.resp.StatusCode)
		}
		if ev := c.next(t); ev.retry == "" {
			t.Errorf("%s: first %+v, want the retry field", tc.what, ev)
		}
		clients[i] = c
	}
	f.commit(setValue(t, "production", "max_cart_items", 51))
	nextID := served.OFREPConfigID(f.s.current.Load().Env("production").Digest())
	for i, tc := range cases {
		c := clients[i]
		if tc.now {
			if ev := c.next(t); ev.id != cur {
				t.Errorf("%s: first event %+v, want the current id %s at once", tc.what, ev, cur)
			}
		}
		if ev := c.next(t); ev.id != nextID {
			t.Errorf("%s: event %+v, want the change's id %s", tc.what, ev, nextID)
		}
		c.close()
	}
	for _, path := range []string{"/ofrep/v1/event-stream", "/ofrep/v1/event-stream?key=nope"} {
		resp, b := send(t, "GET", f.url+path, "")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d %s", path, resp.StatusCode, b)
		}
		checkErrorShape(t, path, path, resp, b)
	}
}

// TestOFREPRefetchBehind: a re-fetch announcing a configuration newer than
// the served one waits for it, and answers 503 with Retry-After when it
// does not come.
func TestOFREPRefetchBehind(t *testing.T) {
	f := newStreamFixture(t, Options{OFREPRefetchWait: 50 * time.Millisecond}, nil)
	cur := f.s.current.Load()
	id := served.OFREPConfigID(cur.Env("production").Digest())
	next := cur.Updated().Add(time.Second).Format(served.DocumentTimeFormat) // the next revision's (see commit)
	post := func(q string) (*http.Response, []byte) {
		return send(t, "POST", f.url+"/ofrep/v1/evaluate/flags?"+q, `{}`, "X-API-Key", prodKey)
	}
	for _, tc := range []struct {
		q    string
		want int
	}{
		{"flagConfigEtag=%22" + id + "%22&flagConfigLastModified=" + url.QueryEscape(next), 200}, // the served configuration
		{"flagConfigEtag=%22other%22", 200}, // no date: cannot tell, served
		{"flagConfigEtag=%22other%22&flagConfigLastModified=" + url.QueryEscape(cur.Updated().Format(served.DocumentTimeFormat)), 200}, // not newer
		{"flagConfigEtag=%22other%22&flagConfigLastModified=" + url.QueryEscape(next), 503},
		{"flagConfigEtag=%22other%22&flagConfigLastModified=4102444800", 503}, // Unix seconds, 2100
		{"flagConfigLastModified=garbage", 200},
	} {
		resp, b := post(tc.q)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.q, resp.StatusCode, tc.want, b)
		}
		if tc.want == 503 {
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s: 503 without Retry-After", tc.q)
			}
			checkErrorShape(t, tc.q, "/ofrep/v1/evaluate/flags", resp, b)
		}
	}

	// The awaited revision arrives while the request waits: 200 with it.
	f.s.opts.OFREPRefetchWait = time.Minute
	type result struct {
		code int
		body []byte
	}
	done := make(chan result, 1)
	go func() {
		resp, b := send(t, "POST", f.url+"/ofrep/v1/evaluate/flags?flagConfigEtag=%22x%22&flagConfigLastModified="+url.QueryEscape(next), `{}`, "X-API-Key", prodKey)
		done <- result{resp.StatusCode, b}
	}()
	eventually(t, "the re-fetch waits", func() bool { return f.s.hub.Subscribers("production") == 1 })
	f.commit(setValue(t, "production", "max_cart_items", 123))
	r := <-done
	if r.code != 200 || !strings.Contains(string(r.body), `"value":123`) {
		t.Errorf("awaited re-fetch: %d %s", r.code, r.body)
	}
}
