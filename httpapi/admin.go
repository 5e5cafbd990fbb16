package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitsync"
)

// requireAdmin is the one place admin endpoints are authorised: a bearer
// token (see bearerToken) equal to Options.AdminToken. It writes the error and returns false
// when the caller is not an admin.
func (s *Server) requireAdmin(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.AdminToken == "" {
		writeDetail(w, http.StatusForbidden, "the admin API is disabled: start the server with GITFLAGS_ADMIN_TOKEN set")
		return false
	}
	token, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gitflags admin"`)
		writeDetail(w, http.StatusUnauthorized, "admin endpoints need Authorization: Bearer <admin token>")
		return false
	}
	// Hashes of equal length, compared in constant time: neither the
	// token's bytes nor its length show in the time taken.
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(s.opts.AdminToken))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		writeDetail(w, http.StatusUnauthorized, "invalid admin token")
		return false
	}
	return true
}

// AttachSync gives the admin endpoints the process that follows the flag
// repository (it publishes into this server, so it is made after it).
func (s *Server) AttachSync(sy *gitsync.Syncer) { s.sync.Store(sy) }

// syncer returns the Syncer, writing a 404 when the server follows nothing.
func (s *Server) syncer(w http.ResponseWriter) *gitsync.Syncer {
	sy := s.sync.Load()
	if sy == nil {
		writeDetail(w, http.StatusNotFound, "this server does not follow a repository")
	}
	return sy
}

// statusResponse is GET /api/v1/status.
type statusResponse struct {
	Served *flagrepo.Revision `json:"served"`
	Sync   *gitsync.Status    `json:"sync,omitempty"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !s.requireAdmin(w, r) {
		return
	}
	var resp statusResponse
	if snap := s.Snapshot(); snap != nil {
		rev := snap.Revision
		resp.Served = &rev
	}
	if sy := s.sync.Load(); sy != nil {
		st := sy.Status()
		resp.Sync = &st
	}
	writeJSON(w, http.StatusOK, resp)
}

// syncNow serves POST /api/v1/sync: fetch or check now.
func (s *Server) syncNow(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !s.requireAdmin(w, r) {
		return
	}
	sy := s.syncer(w)
	if sy == nil {
		return
	}
	if sy.Paused() {
		writeDetail(w, http.StatusConflict, "sync is paused: POST /api/v1/sync/resume first")
		return
	}
	sy.Trigger()
	writeJSON(w, http.StatusAccepted, map[string]string{"detail": "sync triggered; GET /api/v1/status shows the outcome"})
}

func (s *Server) syncPause(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !s.requireAdmin(w, r) {
		return
	}
	if sy := s.syncer(w); sy != nil {
		sy.Pause()
		s.log.Warn("sync paused by the admin API: the served revision will not change until resumed")
		writeJSON(w, http.StatusOK, sy.Status())
	}
}

func (s *Server) syncResume(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !s.requireAdmin(w, r) {
		return
	}
	if sy := s.syncer(w); sy != nil {
		sy.Resume()
		s.log.Info("sync resumed by the admin API")
		writeJSON(w, http.StatusOK, sy.Status())
	}
}

// webhook serves POST /api/v1/webhooks/{github,gitlab}: a push notification
// that triggers a sync. Unsigned or wrongly signed requests are refused.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	secret := s.opts.WebhookSecret
	if secret == "" {
		writeDetail(w, http.StatusNotFound, "webhooks are not configured: start the server with GITFLAGS_WEBHOOK_SECRET set")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		writeDetail(w, http.StatusRequestEntityTooLarge, "webhook body too large")
		return
	}
	switch p.ByName("provider") {
	case "github":
		sig, ok := strings.CutPrefix(r.Header.Get("X-Hub-Signature-256"), "sha256=")
		want := hmac.New(sha256.New, []byte(secret))
		want.Write(body)
		got, err := hex.DecodeString(sig)
		if !ok || err != nil || !hmac.Equal(got, want.Sum(nil)) {
			writeDetail(w, http.StatusUnauthorized, "missing or invalid X-Hub-Signature-256 (HMAC-SHA256 of the body with the webhook secret)")
			return
		}
		if r.Header.Get("X-GitHub-Event") == "ping" {
			writeJSON(w, http.StatusOK, map[string]string{"detail": "pong"})
			return
		}
	case "gitlab":
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Gitlab-Token")), []byte(secret)) != 1 {
			writeDetail(w, http.StatusUnauthorized, "missing or invalid X-Gitlab-Token")
			return
		}
	default:
		writeDetail(w, http.StatusNotFound, "unknown webhook provider: use /api/v1/webhooks/github or /api/v1/webhooks/gitlab")
		return
	}
	sy := s.syncer(w)
	if sy == nil {
		return
	}
	if sy.Paused() {
		writeJSON(w, http.StatusAccepted, map[string]string{"detail": "sync is paused: the push is not followed until it is resumed"})
		return
	}
	sy.Trigger()
	writeJSON(w, http.StatusAccepted, map[string]string{"detail": "sync triggered"})
}

// syncMetrics maps gitsync's measurements onto Prometheus metrics.
type syncMetrics struct {
	attempts  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	published prometheus.Counter
	rejected  prometheus.Counter
}

func newSyncMetrics(reg *prometheus.Registry) *syncMetrics {
	m := &syncMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitflags_sync_attempts_total", Help: "Sync attempts (fetch or check), by mode and result.",
		}, []string{"mode", "result"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gitflags_sync_duration_seconds", Help: "Duration of sync attempts, by mode.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"mode"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitflags_sync_published_total", Help: "New revisions published.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitflags_sync_rejected_total", Help: "Revisions not served because they are invalid.",
		}),
	}
	reg.MustRegister(m.attempts, m.durations, m.published, m.rejected)
	return m
}

// SyncDone implements gitsync.Metrics.
func (m *syncMetrics) SyncDone(mode gitsync.Mode, d time.Duration, err error) {
	result := "success"
	if err != nil {
		result = "failure"
	}
	m.attempts.WithLabelValues(string(mode), result).Inc()
	m.durations.WithLabelValues(string(mode)).Observe(d.Seconds())
}

// Published implements gitsync.Metrics.
func (m *syncMetrics) Published(flagrepo.Revision) { m.published.Inc() }

// Rejected implements gitsync.Metrics.
func (m *syncMetrics) Rejected(flagrepo.Revision, error) { m.rejected.Inc() }

// SyncMetrics returns the gitsync.Metrics that record into the server's
// /metrics.
func (s *Server) SyncMetrics() gitsync.Metrics { return s.metrics.sync }
