// Package changehooks sends change webhooks: for every served revision that
// changes something in a webhook's environments, a signed POST saying what
// changed there (package changes), with the commit and its author.
//
// Deliveries never block publishing: Notify hands the pair of snapshots to a
// dispatcher goroutine (a burst of revisions is merged into one change from
// the oldest to the newest), which queues one delivery per interested
// webhook. Each webhook has its own bounded queue (the oldest delivery is
// dropped when it is full) and its own sender goroutine, so a slow or dead
// receiver delays only itself. A delivery is retried with exponential
// backoff on network errors, 408, 429 and 5xx answers (Retry-After is
// honoured up to the longest backoff), a bounded number of times.
//
// Every delivery carries:
//
//	Content-Type: application/json
//	User-Agent: gitflags-change-webhook
//	X-Gitflags-Event: change
//	X-Gitflags-Delivery: <id, the same for every attempt>
//	X-Gitflags-Attempt: <1, 2, …>
//	X-Gitflags-Signature-256: sha256=<hex HMAC-SHA256 of the body with the webhook's secret>
package changehooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gitflags/gitflags/changes"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/prometheus/client_golang/prometheus"
)

// SignatureHeader carries the body's HMAC-SHA256 as sha256=<hex>.
const SignatureHeader = "X-Gitflags-Signature-256"

// DeliveryHeader carries the delivery's id, the same for every attempt.
const DeliveryHeader = "X-Gitflags-Delivery"

// Sign returns the value of SignatureHeader for body signed with secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether signature (SignatureHeader's value) signs body with
// secret, in constant time: what a receiver checks.
func Verify(secret, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(signature))
}

// Options configure a Sender. Zero values take the defaults.
type Options struct {
	Hooks []Hook
	Log   *slog.Logger // nil discards
	// Client posts the deliveries; default: one that follows no redirects.
	Client *http.Client
	// Timeout bounds one attempt. Default 10 s.
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one delivery. Default 8.
	MaxAttempts int
	// MinBackoff is the wait before the first retry; each retry doubles it
	// (with jitter), up to MaxBackoff. Defaults 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// QueueSize bounds each webhook's queue of deliveries. Default 100.
	QueueSize int
}

// Sender delivers change webhooks. Notify may be called before Start and
// after Close (it then does nothing).
type Sender struct {
	opts    Options
	log     *slog.Logger
	hooks   []*hookQueue
	metrics metrics

	mu      sync.Mutex
	pending *pair // the revisions not yet dispatched, merged
	closed  bool
	wake    chan struct{} // the dispatcher has a pending pair

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type pair struct{ old, new *flagrepo.Snapshot }

// delivery is one body for one webhook.
type delivery struct {
	id       string
	body     []byte
	revision string
}

type hookQueue struct {
	hook  Hook
	mu    sync.Mutex
	queue []*delivery
	wake  chan struct{}
	m     hookMetrics
}

// New returns a Sender for opts.Hooks; Start starts it.
func New(opts Options) *Sender {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	opts.Timeout = cmpOr(opts.Timeout, 10*time.Second)
	opts.MaxAttempts = max(opts.MaxAttempts, 0)
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 8
	}
	opts.MinBackoff = cmpOr(opts.MinBackoff, time.Second)
	opts.MaxBackoff = max(cmpOr(opts.MaxBackoff, 5*time.Minute), opts.MinBackoff)
	if opts.QueueSize <= 0 {
		opts.QueueSize = 100
	}
	s := &Sender{opts: opts, log: opts.Log, wake: make(chan struct{}, 1), metrics: newMetrics()}
	s.metrics.revisions.WithLabelValues("queued")
	s.metrics.revisions.WithLabelValues("unchanged")
	for _, h := range opts.Hooks {
		s.hooks = append(s.hooks, &hookQueue{hook: h, wake: make(chan struct{}, 1), m: s.metrics.forHook(h.Name)})
	}
	return s
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Start starts the dispatcher and one sender per webhook. They stop when
// ctx is done or Close is called.
func (s *Sender) Start(ctx context.Context) {
	for _, q := range s.hooks {
		s.log.Info("change webhook", "webhook", q.hook)
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Go(func() { s.dispatch(ctx) })
	for _, q := range s.hooks {
		s.wg.Go(func() { s.send(ctx, q) })
	}
}

// Close stops the Sender, abandoning the deliveries still queued and the
// retries under way, and waits for its goroutines.
func (s *Sender) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
}

// Notify reports that new is served instead of old. It never blocks: the
// change is computed and delivered in the background. A nil old (the first
// revision a server serves) is no change, and sends nothing.
func (s *Sender) Notify(old, new *flagrepo.Snapshot) {
	if old == nil || new == nil || len(s.hooks) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.pending != nil {
		s.pending.new = new // merged: from the oldest revision not dispatched
		return
	}
	s.pending = &pair{old, new}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// CheckEnvironments logs a warning for each configured environment that snap
// does not have (a typo sends nothing, ever).
func (s *Sender) CheckEnvironments(snap *flagrepo.Snapshot) {
	for _, q := range s.hooks {
		for _, env := range q.hook.Environments {
			if snap.Environments[env] == nil {
				s.log.Warn("a change webhook names an environment the repository does not have", "webhook", q.hook.Name, "environment", env)
			}
		}
	}
}

func (s *Sender) dispatch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		p := s.pending
		s.pending = nil
		s.mu.Unlock()
		if p == nil {
			continue
		}
		set := changes.Between(p.old, p.new)
		sent := false
		for _, q := range s.hooks {
			body := payload(&set, &q.hook)
			if body == nil {
				continue
			}
			data, err := json.Marshal(body)
			if err != nil { // values are strings, numbers, booleans and null
				s.log.Error("change webhook: encoding the delivery failed", "webhook", q.hook.Name, "error", err)
				continue
			}
			s.enqueue(q, &delivery{id: newID(), body: data, revision: set.To.SHA})
			sent = true
		}
		if sent {
			s.metrics.revisions.WithLabelValues("queued").Inc()
		} else {
			s.metrics.revisions.WithLabelValues("unchanged").Inc()
		}
	}
}

func (s *Sender) enqueue(q *hookQueue, d *delivery) {
	q.mu.Lock()
	var dropped *delivery
	if len(q.queue) >= s.opts.QueueSize {
		dropped = q.queue[0]
		q.queue[0] = nil
		q.queue = q.queue[1:]
	}
	q.queue = append(q.queue, d)
	q.m.queued.Set(float64(len(q.queue)))
	q.mu.Unlock()
	if dropped != nil {
		q.m.dropped.Inc()
		s.log.Warn("change webhook queue full: dropped the oldest delivery", "webhook", q.hook.Name,
			"delivery", dropped.id, "revision", short(dropped.revision), "queue_size", s.opts.QueueSize)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// send delivers q's queue in order until ctx is done.
func (s *Sender) send(ctx context.Context, q *hookQueue) {
	for {
		q.mu.Lock()
		var d *delivery
		if len(q.queue) > 0 {
			d = q.queue[0]
			q.queue[0] = nil
			q.queue = q.queue[1:]
			q.m.queued.Set(float64(len(q.queue)))
		}
		q.mu.Unlock()
		if d == nil {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		s.deliver(ctx, q, d)
		if ctx.Err() != nil {
			q.mu.Lock()
			n := len(q.queue)
			q.mu.Unlock()
			s.log.Info("change webhook stopped: deliveries not sent", "webhook", q.hook.Name, "abandoned", n+1)
			return
		}
	}
}

// deliver posts d, retrying, until it succeeds, fails for good or ctx is
// done.
func (s *Sender) deliver(ctx context.Context, q *hookQueue, d *delivery) {
	backoff := s.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := s.post(ctx, q, d, attempt)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			q.m.delivered.Inc()
			q.m.lastSuccess.SetToCurrentTime()
			s.log.Debug("change webhook delivered", "webhook", q.hook.Name, "delivery", d.id, "revision", short(d.revision), "status", status, "attempt", attempt)
			return
		}
		retry := status == 0 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
		if !retry || attempt >= s.opts.MaxAttempts {
			q.m.failed.Inc()
			s.log.Error("change webhook delivery failed", "webhook", q.hook.Name, "delivery", d.id, "revision", short(d.revision),
				"attempts", attempt, "error", err)
			return
		}
		wait := jitter(backoff)
		if retryAfter > 0 {
			wait = min(retryAfter, s.opts.MaxBackoff)
		}
		backoff = min(backoff*2, s.opts.MaxBackoff)
		q.m.retries.Inc()
		s.log.Warn("change webhook delivery failed; retrying", "webhook", q.hook.Name, "delivery", d.id, "attempt", attempt, "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// post makes one attempt. It returns the status (0 without an answer), the
// Retry-After wait if any, and an error unless the status is 2xx.
func (s *Sender) post(ctx context.Context, q *hookQueue, d *delivery, attempt int) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.hook.URL, bytes.NewReader(d.body))
	if err != nil {
		return 0, 0, errors.New("invalid URL") // validated by ParseConfig; never print it
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gitflags-change-webhook")
	req.Header.Set("X-Gitflags-Event", "change")
	req.Header.Set(DeliveryHeader, d.id)
	req.Header.Set("X-Gitflags-Attempt", strconv.Itoa(attempt))
	req.Header.Set(SignatureHeader, Sign(q.hook.Secret, d.body))
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return 0, 0, scrub(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, nil
	}
	return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("answered %s", resp.Status)
}

// scrub removes the URL (which may hold a token) from a client error.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// jitter returns a wait between d/2 and d.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// newID returns a random delivery id shaped like a UUID (version 4).
func newID() string {
	var b [16]byte
	crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func short(sha string) string { return sha[:min(12, len(sha))] }

// metrics are the Sender's Prometheus metrics.
type metrics struct {
	revisions   *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
	retries     *prometheus.CounterVec
	queued      *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
}

type hookMetrics struct {
	delivered, failed, dropped, retries prometheus.Counter
	queued, lastSuccess                 prometheus.Gauge
}

func newMetrics() metrics {
	return metrics{
		revisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitflags_change_webhook_revisions_total",
			Help: "Served revisions examined for change webhooks (a burst merged into one counts once), by outcome: queued (a delivery for at least one webhook) or unchanged (nothing changed in any webhook's environments).",
		}, []string{"outcome"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitflags_change_webhook_deliveries_total",
			Help: "Change webhook deliveries by webhook and result: delivered (2xx), failed (a non-retryable answer or every attempt failed), dropped (the queue was full).",
		}, []string{"webhook", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitflags_change_webhook_retries_total", Help: "Change webhook attempts retried (network error, 408, 429 or 5xx).",
		}, []string{"webhook"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitflags_change_webhook_queue_length", Help: "Change webhook deliveries waiting to be sent (the one being sent excluded).",
		}, []string{"webhook"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitflags_change_webhook_last_success_timestamp_seconds", Help: "When a change webhook delivery last succeeded (0: never).",
		}, []string{"webhook"}),
	}
}

func (m metrics) forHook(name string) hookMetrics {
	return hookMetrics{
		delivered:   m.deliveries.WithLabelValues(name, "delivered"),
		failed:      m.deliveries.WithLabelValues(name, "failed"),
		dropped:     m.deliveries.WithLabelValues(name, "dropped"),
		retries:     m.retries.WithLabelValues(name),
		queued:      m.queued.WithLabelValues(name),
		lastSuccess: m.lastSuccess.WithLabelValues(name),
	}
}

// Collectors returns the Sender's Prometheus metrics (none without webhooks).
func (s *Sender) Collectors() []prometheus.Collector {
	if len(s.hooks) == 0 {
		return nil
	}
	return []prometheus.Collector{s.metrics.revisions, s.metrics.deliveries, s.metrics.retries, s.metrics.queued, s.metrics.lastSuccess}
}
