package changehooks

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEnvironmentsFilter: each webhook gets only its environments, and a
// revision that changes nothing in them sends it nothing (deliveries arrive
// in order, so the first one a receiver gets shows what it was not sent).
func TestEnvironmentsFilter(t *testing.T) {
	staging, production, all := newReceiver(t), newReceiver(t), newReceiver(t)
	h := newHistory(t)
	s := start(t, Options{Hooks: []Hook{
		hook("staging", staging.URL, "staging"),
		hook("production", production.URL, "production", "development"),
		hook("all", all.URL),
	}})
	n := 0.0
	// The first revision served is no change.
	s.Notify(nil, h.head())
	// r1: production only.
	s.Notify(h.toggle("production", "new_checkout"))
	n++
	eventually(t, "r1 examined", func() bool { return revisions(s) == n })
	// r2: a description, which changes no environment's state.
	s.Notify(h.commit("features/dark_mode.json", func(d map[string]any) { d["description"] = "Darker." }))
	n++
	eventually(t, "r2 examined", func() bool { return revisions(s) == n })
	// r3: staging only.
	s.Notify(h.toggle("staging", "dark_mode"))
	n++
	eventually(t, "r3 examined", func() bool { return revisions(s) == n })

	if r := staging.next(t).payload; r.Revision != "r3" || r.PreviousRevision != "r2" || len(r.Environments) != 1 || r.Environments["staging"] == nil {
		t.Errorf("staging got %s <- %s %v, want r3 <- r2 in staging", r.Revision, r.PreviousRevision, r.Environments)
	}
	if r := production.next(t).payload; r.Revision != "r1" || len(r.Environments) != 1 || r.Environments["production"] == nil {
		t.Errorf("production got %s %v", r.Revision, r.Environments)
	}
	for _, want := range []string{"r1", "r3"} {
		if r := all.next(t).payload; r.Revision != want || len(r.Environments) != 1 {
			t.Errorf("all got %s %v, want %s", r.Revision, r.Environments, want)
		}
	}
	if got := testutilRevisions(s, "unchanged"); got != 1 {
		t.Errorf("revisions unchanged %v, want 1 (r2)", got)
	}
	eventually(t, "all delivered", func() bool {
		return deliveries(s, "staging", "delivered") == 1 && deliveries(s, "production", "delivered") == 1 && deliveries(s, "all", "delivered") == 2
	})
	select {
	case r := <-production.got:
		t.Errorf("production got %s too", r.payload.Revision)
	default:
	}
}

// TestBurstMerged: revisions published faster than they are dispatched are
// merged into one delivery from the oldest to the newest.
func TestBurstMerged(t *testing.T) {
	rc := newReceiver(t)
	h := newHistory(t)
	s := New(Options{Hooks: []Hook{hook("a", rc.URL, "staging")}})
	// Not started yet: the three revisions wait, merged.
	s.Notify(h.toggle("staging", "dark_mode"))
	s.Notify(h.toggle("staging", "new_checkout"))
	s.Notify(h.toggle("staging", "dark_mode"))
	s.Start(t.Context())
	defer s.Close()
	r := rc.next(t).payload
	f := r.Environments["staging"].Features
	if r.Revision != "r3" || r.PreviousRevision != "r0" || len(f) != 1 || f["new_checkout"] == nil {
		t.Errorf("%s <- %s: %v (dark_mode was toggled twice: no change)", r.Revision, r.PreviousRevision, f)
	}
}

// TestShutdownStopsRetries: Close ends a long backoff and a request under
// way (goleak checks that nothing is left).
func TestShutdownStopsRetries(t *testing.T) {
	failing := newReceiver(t, 500)
	stuck := newReceiver(t)
	stuck.block = make(chan struct{})
	h := newHistory(t)
	s := New(Options{Hooks: []Hook{hook("failing", failing.URL), hook("stuck", stuck.URL)}, MinBackoff: time.Hour, Timeout: time.Hour})
	s.Start(t.Context())
	s.Notify(h.toggle("staging", "dark_mode"))
	failing.next(t)
	stuck.next(t)
	eventually(t, "a retry waits", func() bool { return testutilRetries(s, "failing") == 1 })
	s.Close()
	s.Notify(h.toggle("staging", "dark_mode")) // after Close: nothing
	if deliveries(s, "failing", "delivered")+deliveries(s, "stuck", "delivered") != 0 {
		t.Error("delivered")
	}
	select {
	case r := <-failing.got:
		t.Errorf("failing got %s after Close", r.payload.Revision)
	default:
	}
}

// TestRetryAfter: a 429's Retry-After is honoured up to MaxBackoff.
func TestRetryAfter(t *testing.T) {
	for v, want := range map[string]time.Duration{"3": 3 * time.Second, "": 0, "soon": 0, "-1": 0} {
		if got := retryAfter(v); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
	if got := retryAfter(time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)); got < 59*time.Minute || got > time.Hour {
		t.Errorf("Retry-After date in an hour: %v", got)
	}
	if got := retryAfter(time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)); got != 0 {
		t.Errorf("Retry-After date in the past: %v", got)
	}
	// A long Retry-After waits MaxBackoff (here 4 ms), not an hour.
	rc := newReceiver(t)
	rc.Config.Handler = retryAfterHandler(rc.Config.Handler)
	h := newHistory(t)
	s := start(t, Options{Hooks: []Hook{hook("a", rc.URL)}})
	s.Notify(h.toggle("staging", "dark_mode"))
	rc.next(t)
	rc.next(t)
	eventually(t, "delivered", func() bool { return deliveries(s, "a", "delivered") == 1 })
}

// retryAfterHandler answers the first request 429 with Retry-After: 3600.
func retryAfterHandler(next http.Handler) http.Handler {
	var answered atomic.Bool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !answered.Swap(true) {
			w.Header().Set("Retry-After", "3600")
			rw := &statusOverride{ResponseWriter: w, status: http.StatusTooManyRequests}
			next.ServeHTTP(rw, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type statusOverride struct {
	http.ResponseWriter
	status int
}

func (s *statusOverride) WriteHeader(int) { s.ResponseWriter.WriteHeader(s.status) }

// TestLogsNoSecrets: neither the secret nor the URL (which may hold a
// token) is logged, whatever happens to a delivery.
func TestLogsNoSecrets(t *testing.T) {
	rc := newReceiver(t, 500, 400)
	var logs syncBuffer
	h := newHistory(t)
	hk := hook("a", rc.URL+"/hook/T0KEN?key=T0KEN")
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := start(t, Options{Hooks: []Hook{hk, hook("gone", "http://127.0.0.1:1/T0KEN")}, MaxAttempts: 2, Log: log})
	log.Info("hooks", "hook", hk) // a Hook logs its name and environments only
	s.Notify(h.toggle("staging", "dark_mode"))
	eventually(t, "failed", func() bool { return deliveries(s, "a", "failed") == 1 && deliveries(s, "gone", "failed") == 1 })
	out := logs.String()
	if strings.Contains(out, "T0KEN") || strings.Contains(out, "s3cret") {
		t.Errorf("logs hold the URL or the secret:\n%s", out)
	}
	if !strings.Contains(out, "change webhook delivery failed") {
		t.Errorf("no failure logged:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
