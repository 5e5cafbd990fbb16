package changehooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestSignedDelivery: a receiver verifies the signature with the secret and
// reads what changed, before and after, with the commit.
func TestSignedDelivery(t *testing.T) {
	rc := newReceiver(t)
	h := newHistory(t)
	s := start(t, Options{Hooks: []Hook{hook("audit", rc.URL, "production")}})
	s.Notify(h.toggle("production", "new_checkout"))

	got := rc.next(t)
	sig := got.header.Get(SignatureHeader)
	mac := hmac.New(sha256.New, []byte("s3cret-audit"))
	mac.Write(got.body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); sig != want {
		t.Errorf("signature %q, want %q", sig, want)
	}
	if !Verify([]byte("s3cret-audit"), got.body, sig) || Verify([]byte("other"), got.body, sig) || Verify([]byte("s3cret-audit"), append(got.body, ' '), sig) {
		t.Error("Verify accepts what it should not, or refuses the signature")
	}
	if id := got.header.Get(DeliveryHeader); !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("delivery id %q", id)
	}
	if got.header.Get("Content-Type") != "application/json" || got.header.Get("X-Gitflags-Event") != "change" || got.header.Get("X-Gitflags-Attempt") != "1" {
		t.Errorf("headers %v", got.header)
	}
	p := got.payload
	if p.Revision != "r1" || p.PreviousRevision != "r0" || p.Commit.Author != "Ann Example" || p.Commit.AuthorEmail != "ann@example.com" ||
		p.Commit.Message != "commit r1" || !p.Commit.Time.Equal(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("revision and commit: %+v", p)
	}
	if len(p.Environments) != 1 || p.Environments["production"] == nil {
		t.Fatalf("environments %v", p.Environments)
	}
	e := p.Environments["production"]
	f := e.Features["new_checkout"]
	if e.Change.String() != "modified" || len(e.Features) != 1 || f == nil || f.Before == nil || f.After == nil {
		t.Fatalf("production: %s", got.body)
	}
	if !f.Before.Enabled || f.After.Enabled || f.Before.Value != "classic" || f.After.Weights["express"] != 10 || len(f.After.SegmentOverrides) != 2 || f.After.SegmentOverrides[0].Segment != "beta_users" {
		t.Errorf("new_checkout: %s", got.body)
	}
	eventually(t, "delivered", func() bool { return deliveries(s, "audit", "delivered") == 1 })
	if ts := testutil.ToFloat64(s.metrics.lastSuccess.WithLabelValues("audit")); ts < float64(time.Now().Add(-time.Hour).Unix()) {
		t.Errorf("last success %v", ts)
	}
}

// TestSegmentChange: the features using a changed segment are reported,
// with the segment.
func TestSegmentChange(t *testing.T) {
	rc := newReceiver(t)
	h := newHistory(t)
	s := start(t, Options{Hooks: []Hook{hook("all", rc.URL)}})
	s.Notify(h.commit("segments/power_users.json", func(d map[string]any) { d["rules"] = d["rules"].([]any)[:1] }))
	p := rc.next(t).payload
	e := p.Environments["production"]
	if len(p.Environments) != 1 || e == nil || !slices.Equal(e.SegmentsChanged, []string{"power_users"}) {
		t.Fatalf("%+v", p.Environments)
	}
	if f := e.Features["api_rate_limit"]; f == nil || !slices.Equal(f.Segments, []string{"power_users"}) || f.Before.Value != f.After.Value {
		t.Errorf("api_rate_limit: %+v", f)
	}
}

// TestRetryThenSuccess: a 500 is retried with the same delivery id, then
// the 200 counts as delivered.
func TestRetryThenSuccess(t *testing.T) {
	rc := newReceiver(t, 500, 429)
	h := newHistory(t)
	s := start(t, Options{Hooks: []Hook{hook("a", rc.URL)}})
	s.Notify(h.toggle("staging", "dark_mode"))
	first, second, third := rc.next(t), rc.next(t), rc.next(t)
	id := first.header.Get(DeliveryHeader)
	for i, r := range []request{first, second, third} {
		if r.header.Get(DeliveryHeader) != id || r.header.Get("X-Gitflags-Attempt") != string(rune('1'+i)) || string(r.body) != string(first.body) {
			t.Errorf("attempt %d: id %s attempt %s", i+1, r.header.Get(DeliveryHeader), r.header.Get("X-Gitflags-Attempt"))
		}
	}
	eventually(t, "delivered", func() bool { return deliveries(s, "a", "delivered") == 1 })
	if r := testutil.ToFloat64(s.metrics.retries.WithLabelValues("a")); r != 2 {
		t.Errorf("retries %v, want 2", r)
	}
	if f := deliveries(s, "a", "failed"); f != 0 {
		t.Errorf("failed %v", f)
	}
}

// TestGiveUp: after MaxAttempts failed attempts the delivery fails, and the
// next one is sent; a 4xx is not retried.
func TestGiveUp(t *testing.T) {
	rc := newReceiver(t, 503, 502, 500, 400)
	h := newHistory(t)
	s := start(t, Options{Hooks: []Hook{hook("a", rc.URL)}, MaxAttempts: 3})
	s.Notify(h.toggle("staging", "dark_mode"))
	for range 3 {
		if r := rc.next(t); r.payload.Revision != "r1" {
			t.Fatalf("revision %s", r.payload.Revision)
		}
	}
	eventually(t, "failed", func() bool { return deliveries(s, "a", "failed") == 1 })
	if r := testutil.ToFloat64(s.metrics.retries.WithLabelValues("a")); r != 2 {
		t.Errorf("retries %v, want 2", r)
	}
	s.Notify(h.toggle("staging", "dark_mode")) // answered 400: not retried
	if r := rc.next(t); r.payload.Revision != "r2" {
		t.Fatalf("revision %s", r.payload.Revision)
	}
	eventually(t, "failed", func() bool { return deliveries(s, "a", "failed") == 2 })
	s.Notify(h.toggle("staging", "dark_mode")) // answered 200
	if r := rc.next(t); r.payload.Revision != "r3" || r.header.Get("X-Gitflags-Attempt") != "1" {
		t.Fatalf("revision %s attempt %s: the 400 was retried", r.payload.Revision, r.header.Get("X-Gitflags-Attempt"))
	}
	eventually(t, "delivered", func() bool { return deliveries(s, "a", "delivered") == 1 })
	if r := testutil.ToFloat64(s.metrics.retries.WithLabelValues("a")); r != 2 {
		t.Errorf("retries %v, want 2", r)
	}
}

// TestNetworkError: a receiver that is not there is retried, then given up.
func TestNetworkError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/hook?token=abc"
	ln.Close()
	h := newHistory(t)
	s := start(t, Options{Hooks: []Hook{hook("gone", url)}, MaxAttempts: 2})
	s.Notify(h.toggle("staging", "dark_mode"))
	eventually(t, "failed", func() bool { return deliveries(s, "gone", "failed") == 1 })
	if r := testutil.ToFloat64(s.metrics.retries.WithLabelValues("gone")); r != 1 {
		t.Errorf("retries %v, want 1", r)
	}
}

// TestQueueBound: while the receiver is stuck, deliveries queue up to
// QueueSize and the oldest is dropped; the rest arrive in order.
func TestQueueBound(t *testing.T) {
	rc := newReceiver(t)
	rc.block = make(chan struct{})
	h := newHistory(t)
	s := start(t, Options{Hooks: []Hook{hook("slow", rc.URL)}, QueueSize: 2})
	queued := func() float64 { return testutil.ToFloat64(s.metrics.queued.WithLabelValues("slow")) }

	s.Notify(h.toggle("staging", "dark_mode")) // r1: sent, the receiver holds it
	if r := rc.next(t); r.payload.Revision != "r1" {
		t.Fatalf("revision %s", r.payload.Revision)
	}
	for i, want := range []float64{1, 2, 2} { // r2, r3, r4: r2 is dropped
		s.Notify(h.toggle("staging", "dark_mode"))
		eventually(t, "revision examined", func() bool { return revisions(s) == float64(i+2) })
		if q := queued(); q != want {
			t.Errorf("after r%d: queue length %v, want %v", i+2, q, want)
		}
	}
	if d := deliveries(s, "slow", "dropped"); d != 1 {
		t.Errorf("dropped %v, want 1", d)
	}
	close(rc.block)
	for _, want := range []string{"r3", "r4"} {
		r := rc.next(t)
		if r.payload.Revision != want {
			t.Errorf("revision %s, want %s", r.payload.Revision, want)
		}
		if want == "r3" && r.payload.PreviousRevision != "r2" {
			t.Errorf("r3's previous revision %s, want r2 (dropped, but served)", r.payload.PreviousRevision)
		}
	}
	eventually(t, "delivered", func() bool { return deliveries(s, "slow", "delivered") == 3 })
	if q := queued(); q != 0 {
		t.Errorf("queue length %v", q)
	}
}
