package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitflags/gitflags/commits"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/tokens"
)

// adminSchemes are the Authorization schemes of an admin token: Flagsmith's
// Api-Key, Django REST framework's Token, and Bearer.
var adminSchemes = []string{"Api-Key", "Token", "Bearer"}

// adminChallenge is the WWW-Authenticate header of a 401.
var adminChallenge = []string{`Api-Key realm="gitflags admin", Token realm="gitflags admin", Bearer realm="gitflags admin"`}

// tokenKey is the request context key of the caller's *tokens.Token.
type tokenKey struct{}

// admin wraps an admin endpoint: the one place admin requests are
// authenticated. h runs only for a request with a valid token
// (Authorization: Api-Key|Token|Bearer <token>) that has the write scope if
// write is set; callerToken(r) returns that token in h. Otherwise admin
// answers, as {"detail": ...}:
//   - 403 when the server has no tokens (the admin API is off);
//   - 429 with Retry-After when the client's address made too many failed
//     attempts (it is checked before the token, so that guessing stops),
//     or, for a write, when the token made too many writes;
//   - 401 with WWW-Authenticate without a token or with a wrong one (which
//     counts as a failed attempt of the client's address);
//   - 403 for a read-only token on a write endpoint.
//
// Environments are h's to check, with allowEnvironment, once it knows which
// environment the request is about.
func (s *Server) admin(write bool, h httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		if s.opts.Tokens == nil {
			writeDetail(w, http.StatusForbidden, "the admin API is disabled: start the server with GITFLAGS_ADMIN_TOKEN set or a tokens file (--tokens)")
			return
		}
		client := clientKey(r.RemoteAddr)
		if wait := s.limiter.Blocked(client); wait > 0 {
			tooMany(w, wait, "too many failed admin token attempts from this address")
			return
		}
		secret, ok := authToken(r, adminSchemes...)
		if !ok {
			w.Header()["WWW-Authenticate"] = adminChallenge
			detail := "admin endpoints need a token: Authorization: Api-Key <token> (or Token <token>, Bearer <token>)"
			if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); scheme != "" {
				detail = fmt.Sprintf("the Authorization scheme %q is not accepted: %s", scheme, detail)
			}
			writeDetail(w, http.StatusUnauthorized, detail)
			return
		}
		tok, ok := s.opts.Tokens.Lookup(secret)
		if !ok {
			s.limiter.Failed(client)
			w.Header()["WWW-Authenticate"] = adminChallenge
			writeDetail(w, http.StatusUnauthorized, "invalid admin token")
			return
		}
		if write {
			if !tok.Write {
				writeDetail(w, http.StatusForbidden, fmt.Sprintf("token %q is read-only: %s %s needs a token with scope write", tok.Name, r.Method, r.URL.Path))
				return
			}
			if wait := s.limiter.Write(tok); wait > 0 {
				tooMany(w, wait, fmt.Sprintf("token %q made too many writes", tok.Name))
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok)), p)
	}
}

// callerToken returns the token of a request that admin let through.
func callerToken(r *http.Request) *tokens.Token {
	tok, _ := r.Context().Value(tokenKey{}).(*tokens.Token)
	return tok
}

// allowEnvironment reports whether the request's token may read (write
// false) or write environment env, writing a 403 when it may not. The empty
// env is what belongs to no one environment: every token may read it, only a
// write token for all environments may write it (see tokens.Token).
func allowEnvironment(w http.ResponseWriter, r *http.Request, env string, write bool) bool {
	tok := callerToken(r)
	switch {
	case tok == nil:
		writeDetail(w, http.StatusUnauthorized, "admin endpoints need a token") // not behind admin: a bug, refused
		return false
	case write && tok.CanWrite(env), !write && tok.CanRead(env):
		return true
	case write && !tok.Write:
		writeDetail(w, http.StatusForbidden, fmt.Sprintf("token %q is read-only: %s %s needs a token with scope write", tok.Name, r.Method, r.URL.Path))
	case env == "":
		writeDetail(w, http.StatusForbidden, fmt.Sprintf("token %q is limited to the environments %s: %s %s concerns every environment and needs a token for all of them",
			tok.Name, strings.Join(tok.Environments, ", "), r.Method, r.URL.Path))
	default:
		verb := "read"
		if write {
			verb = "write"
		}
		writeDetail(w, http.StatusForbidden, fmt.Sprintf("token %q may not %s environment %q: it is limited to %s", tok.Name, verb, env, strings.Join(tok.Environments, ", ")))
	}
	return false
}

// tooMany writes a 429 whose Retry-After is wait in whole seconds, rounded up.
func tooMany(w http.ResponseWriter, wait time.Duration, why string) {
	secs := int64(max(1, (wait+time.Second-1)/time.Second))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeDetail(w, http.StatusTooManyRequests, fmt.Sprintf("%s: retry in %ds", why, secs))
}

// clientKey is what failed attempts are counted by: the client's IP
// address, or for IPv6 its /64 network (one host usually has all of it).
// The address is the connection's: X-Forwarded-For is not trusted.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.WithZone("").Prefix(64)
		return p.String()
	}
	return ip.String()
}

// Follower is the process that follows the flag repository (gitsync's
// Syncer, which cmd/gitflags adapts): the admin API shows its state and
// controls it. The server needs nothing else of it.
type Follower interface {
	// SyncStatus is the follower's state as GET /api/v1/status shows it
	// (JSON).
	SyncStatus() any
	Trigger()
	Pause()
	Resume()
	Paused() bool
}

// followerBox holds a Follower in an atomic.Pointer.
type followerBox struct{ Follower }

// AttachSync gives the admin endpoints the process that follows the flag
// repository (it publishes into this server, so it is made after it).
func (s *Server) AttachSync(f Follower) { s.sync.Store(&followerBox{f}) }

// syncer returns the Follower, writing a 404 when the server follows
// nothing.
func (s *Server) syncer(w http.ResponseWriter) Follower {
	if b := s.sync.Load(); b != nil {
		return b.Follower
	}
	writeDetail(w, http.StatusNotFound, "this server does not follow a repository")
	return nil
}

// statusResponse is GET /api/v1/status.
type statusResponse struct {
	Served *flagrepo.Revision `json:"served"`
	Sync   any                `json:"sync,omitempty"`
	// Writes is the state of the admin API's pushes; Warnings says in
	// words what needs attention (commits not pushed, kept branches).
	Writes   *commits.Status `json:"writes,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var resp statusResponse
	if snap := s.Snapshot(); snap != nil {
		rev := snap.Revision
		resp.Served = &rev
	}
	if b := s.sync.Load(); b != nil {
		resp.Sync = b.SyncStatus()
	}
	if wr := s.writer.Load(); wr != nil {
		st := wr.Status()
		resp.Writes = &st
		if st.Unpushed > 0 {
			resp.Warnings = append(resp.Warnings, fmt.Sprintf("%d commits not pushed: the remote could not be reached since %s (%s)", st.Unpushed, st.UnpushedSince.UTC().Format(time.RFC3339), st.LastPushError))
		}
		for _, b := range st.Kept {
			resp.Warnings = append(resp.Warnings, fmt.Sprintf("commits made while the remote was unreachable no longer applied: they are on branch %s, to merge by hand", b))
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// syncNow serves POST /api/v1/sync: fetch or check now.
func (s *Server) syncNow(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !allowEnvironment(w, r, "", true) {
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
	if !allowEnvironment(w, r, "", true) {
		return
	}
	if sy := s.syncer(w); sy != nil {
		sy.Pause()
		s.log.Warn("sync paused by the admin API: the served revision will not change until resumed")
		writeJSON(w, http.StatusOK, sy.SyncStatus())
	}
}

func (s *Server) syncResume(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !allowEnvironment(w, r, "", true) {
		return
	}
	if sy := s.syncer(w); sy != nil {
		sy.Resume()
		s.log.Info("sync resumed by the admin API")
		writeJSON(w, http.StatusOK, sy.SyncStatus())
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

// SyncMetrics records the measurements of the process that follows the
// repository (gitsync.Metrics) into the server's Prometheus metrics.
type SyncMetrics struct {
	attempts  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	published prometheus.Counter
	rejected  prometheus.Counter
}

func newSyncMetrics(reg *prometheus.Registry) *SyncMetrics {
	m := &SyncMetrics{
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

// SyncDone records a sync attempt in mode (local, remote or worktree).
func (m *SyncMetrics) SyncDone(mode string, d time.Duration, err error) {
	result := "success"
	if err != nil {
		result = "failure"
	}
	m.attempts.WithLabelValues(mode, result).Inc()
	m.durations.WithLabelValues(mode).Observe(d.Seconds())
}

// Published records a revision published.
func (m *SyncMetrics) Published(flagrepo.Revision) { m.published.Inc() }

// Rejected records a revision not served because it is invalid.
func (m *SyncMetrics) Rejected(flagrepo.Revision, error) { m.rejected.Inc() }

// SyncMetrics returns the metrics of the process that follows the
// repository, recorded into the server's /metrics.
func (s *Server) SyncMetrics() *SyncMetrics { return s.metrics.sync }
