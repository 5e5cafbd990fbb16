package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// runFanoutJSON runs the fanout mode for real (spawned server, websocket
// clients, git commits) and returns its report.
func runFanoutJSON(t *testing.T, args ...string) fanoutReport {
	t.Helper()
	bin := buildGitflags(t)
	var out, errOut bytes.Buffer
	err := runFanout(context.Background(), append([]string{"--server-bin", bin, "--json", "-q", "--settle", "50ms"}, args...), &out, &errOut)
	var rep fanoutReport
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		t.Fatalf("run: %v; report is not JSON: %v\n%s\n%s", err, jerr, out.String(), errOut.String())
	}
	if err != nil {
		t.Fatalf("run: %v\nfailures: %v", err, rep.Failures)
	}
	return rep
}

func checkFanout(t *testing.T, rep fanoutReport, n, rounds int) {
	t.Helper()
	if !rep.OK || rep.FailedSubscribers != 0 || len(rep.Failures) != 0 {
		t.Errorf("verification: ok %v, %d failed, %v", rep.OK, rep.FailedSubscribers, rep.Failures)
	}
	kinds := map[string]int{}
	for _, e := range rep.Events {
		kinds[e.Name]++
		if e.Revision == "" {
			t.Errorf("%s event without a revision", e.Name)
		}
		if e.Name == "noop" {
			if e.Received != 0 {
				t.Errorf("noop revision %s: %d subscribers received something", e.Revision, e.Received)
			}
			if e.ProbeMS <= 0 {
				t.Errorf("noop revision %s: not seen by the probe (%v ms)", e.Revision, e.ProbeMS)
			}
			continue
		}
		if e.Received != n {
			t.Errorf("%s revision %s: %d of %d subscribers received it", e.Name, e.Revision, e.Received, n)
		}
		if e.MaxMS <= 0 || e.P50MS > e.P99MS || e.P99MS > e.MaxMS {
			t.Errorf("%s revision %s: p50 %v, p99 %v, max %v", e.Name, e.Revision, e.P50MS, e.P99MS, e.MaxMS)
		}
	}
	if kinds["hand"] != rounds+1 || kinds["api"] != rounds || kinds["noop"] != 1 {
		t.Errorf("events %v, want %d hand, %d api, 1 noop", kinds, rounds+1, rounds)
	}
	if rep.ServerRSSBefore <= 0 || rep.ServerRSSAfter <= 0 {
		t.Errorf("server RSS not read: %d, %d", rep.ServerRSSBefore, rep.ServerRSSAfter)
	}
	if rep.Config.Subscribers != n || rep.Config.MaxStream < n {
		t.Errorf("config %+v", rep.Config)
	}
}

// TestFanout: 50 subscribers with distinct identities and traits against a
// real server; every one gets each relevant revision once, in order, with
// its value, and nothing for a revision of another environment.
func TestFanout(t *testing.T) {
	rep := runFanoutJSON(t, "--subscribers", "50", "--rounds", "1")
	checkFanout(t, rep, 50, 1)
	if rep.Config.Contexts != 50 {
		t.Errorf("%d distinct contexts, want 50", rep.Config.Contexts)
	}
}

// TestFanoutShared: subscribers sharing a few contexts.
func TestFanoutShared(t *testing.T) {
	args := []string{"--subscribers", "30", "--shared", "3", "--rounds", "1"}
	if runtime.GOOS == "linux" && runtime.NumCPU() >= 2 {
		args = append(args, "--pin")
		t.Cleanup(func() { // --pin pinned this process: every CPU again
			all := make([]int, runtime.NumCPU())
			for i := range all {
				all[i] = i
			}
			if err := pinThreads(os.Getpid(), all); err != nil {
				t.Error(err)
			}
		})
	}
	rep := runFanoutJSON(t, args...)
	checkFanout(t, rep, 30, 1)
	if runtime.GOOS == "linux" && runtime.NumCPU() >= 2 && !strings.HasPrefix(rep.Config.Pinned, "server CPUs 0-") {
		t.Errorf("--pin: pinned %q", rep.Config.Pinned)
	}
	if rep.Config.Contexts != 3 {
		t.Errorf("%d distinct contexts, want 3", rep.Config.Contexts)
	}
}

// TestCheckSubscriber: the checks catch a message for the noop revision, a
// missing change, a duplicate and a wrong value.
func TestCheckSubscriber(t *testing.T) {
	now := time.Now()
	events := []fanoutEvent{
		{Name: "hand", Revision: "r1", Value: "1", start: now},
		{Name: "noop", Revision: "r2", start: now},
		{Name: "api", Revision: "r3", Value: "3", start: now},
	}
	full := gotMsg{typ: "flags", revision: "r0", value: "0", at: now}
	ch := func(rev, v string) gotMsg {
		return gotMsg{typ: "changes", revision: rev, value: v, at: now.Add(time.Millisecond)}
	}
	hb := gotMsg{typ: "heartbeat", at: now}
	for _, c := range []struct {
		name string
		msgs []gotMsg
		want string // in the failure; "" for none
	}{
		{"fine", []gotMsg{full, ch("r1", "1"), hb, ch("r3", "3")}, ""},
		{"noop sent", []gotMsg{full, ch("r1", "1"), ch("r2", "1"), ch("r3", "3")}, "noop revision"},
		{"missing", []gotMsg{full, ch("r1", "1")}, "no changes message"},
		{"duplicate", []gotMsg{full, ch("r1", "1"), ch("r3", "3"), ch("r3", "3")}, "unexpected messages"},
		{"wrong value", []gotMsg{full, ch("r1", "1"), ch("r3", "4")}, "want 3"},
		{"wrong initial", []gotMsg{{typ: "flags", value: "9"}}, "full state"},
	} {
		s := &subscriber{id: 1, watch: "f", msgs: c.msgs}
		fail, lat := checkSubscriber(s, "0", events)
		switch {
		case c.want == "" && fail != "":
			t.Errorf("%s: %s", c.name, fail)
		case c.want == "" && (lat[0] != time.Millisecond || lat[2] != time.Millisecond):
			t.Errorf("%s: latencies %v", c.name, lat)
		case c.want != "" && !strings.Contains(fail, c.want):
			t.Errorf("%s: failure %q, want one naming %q", c.name, fail, c.want)
		}
	}
}

// TestQuickValue: the read loop's look at a changes message without
// decoding it finds the watched value, says when the flag is not there,
// and gives up (the message is decoded) on what it cannot tell.
func TestQuickValue(t *testing.T) {
	for _, c := range []struct {
		in, value string
		ok        bool
	}{
		{`{"type":"changes","revision":"a","changed":{"api_rate_limit":{"enabled":true,"value":700001}},"removed":[]}`, "700001", true},
		{`{"type":"changes","revision":"a","changed":{"api_rate_limit":{"enabled":false,"value":null,"variant":"v"}},"removed":[]}`, "null", true},
		{`{"type":"changes","revision":"a","changed":{"other":{"enabled":true,"value":1}},"removed":[]}`, "", true},
		{`{"type":"changes","revision":"a","changed":{"api_rate_limit":{"enabled":true,"value":"text"}},"removed":[]}`, "", false},
		{`{"type":"changes","revision":"a","changed":{"api_rate_limit":{"enabled":true}},"removed":[]}`, "", false},
		{`{"type":"flags","version":1,"revision":"a","flags":{"api_rate_limit":{"enabled":true,"value":1}}}`, "", false},
		{`{ "type": "changes" }`, "", false},
	} {
		if v, ok := quickValue([]byte(c.in), "api_rate_limit"); v != c.value || ok != c.ok {
			t.Errorf("%s: %q %v, want %q %v", c.in, v, ok, c.value, c.ok)
		}
	}
}

// TestWSClient: the tool's websocket client against coder/websocket's
// server: the upgrade, a masked message out, a fragmented message, a ping
// answered on the way, and the close code and reason; a refused upgrade
// says its status.
func TestWSClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Environment-Key") != "k" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := context.Background()
		_, got, err := c.Read(ctx)
		if err != nil {
			return
		}
		w2, _ := c.Writer(ctx, websocket.MessageText)
		w2.Write([]byte(`{"echo":`))
		w2.Write(got) // a second frame of the message
		w2.Write([]byte(`}`))
		w2.Close()
		go c.Read(ctx) // reads the pong
		if err := c.Ping(ctx); err != nil {
			return
		}
		c.Close(websocket.StatusGoingAway, "bye")
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/x"
	if _, err := wsDial(context.Background(), url, http.Header{"X-Environment-Key": {"bad"}}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("refused upgrade: %v", err)
	}
	c, err := wsDial(context.Background(), url, http.Header{"X-Environment-Key": {"k"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteText([]byte(strings.Repeat("x", 300))); err != nil {
		t.Fatal(err)
	}
	if m, err := c.ReadMessage(1 << 20); err != nil || string(m) != `{"echo":`+strings.Repeat("x", 300)+`}` {
		t.Fatalf("message %q (%v)", m, err)
	}
	var ce *wsCloseError
	if _, err := c.ReadMessage(1 << 20); !errors.As(err, &ce) || ce.Code != 1001 || ce.Reason != "bye" {
		t.Fatalf("after the ping: %v, want the close 1001 bye", err)
	}
}
