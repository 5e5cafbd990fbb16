// Package httpapi serves a flag repository's current snapshot over HTTP: the
// Flagsmith-compatible SDK API, the JSON Schemas, and health endpoints. It
// holds the served state (package served), built once per snapshot and
// swapped atomically, so that a request sees one revision from start to end.
package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitflags/gitflags/commits"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/history"
	"github.com/gitflags/gitflags/identities"
	"github.com/gitflags/gitflags/previews"
	"github.com/gitflags/gitflags/served"
	"github.com/gitflags/gitflags/stream"
	"github.com/gitflags/gitflags/tokens"
)

// Server serves the snapshot most recently given to Publish.
type Server struct {
	log        *slog.Logger
	identities identities.Store
	opts       Options
	sync       atomic.Pointer[followerBox]    // see AttachSync
	writer     atomic.Pointer[commits.Writer] // see AttachWriter
	previews   atomic.Pointer[previews.Set]   // see AttachPreviews
	prepared   atomic.Pointer[preparedState]  // see Prepare
	preparing  sync.WaitGroup                 // Prepare's builds running
	history    atomic.Pointer[history.Index]  // see AttachHistory
	current    atomic.Pointer[state]
	publishing sync.Mutex // serialises Publish, which updates caches shared with the previous state
	metrics    *metrics
	limiter    *tokens.Limiter // admin API rate limits (admin.go)
	hub        *stream.Hub     // event streams (sse.go, ofrepstream.go)
	ws         *wsStream       // the websocket stream (wsstream.go)
}

// Options configure a Server.
type Options struct {
	Log        *slog.Logger     // defaults to slog.Default()
	Identities identities.Store // where traits persist; required for the identity endpoints
	// Tokens authorise the admin endpoints (see Server.admin); nil disables
	// them. TokenLimits rate-limit them (zero fields: tokens.DefaultLimits).
	Tokens      tokens.Source
	TokenLimits tokens.Limits
	// WebhookSecret verifies push webhooks (GitHub's HMAC signature,
	// GitLab's token); empty disables webhooks.
	WebhookSecret string
	// Collectors are extra Prometheus collectors served on /metrics with the
	// server's own metrics; New panics if one collides with them.
	Collectors []prometheus.Collector
	// Event streams (sse.go, ofrepstream.go); zero values are the defaults.
	// StreamKeepAlive is the interval of keep-alive comments (15 s),
	// StreamWriteTimeout the time a client has to take each write before it
	// is dropped (5 s), StreamRetry the reconnection delay sent to clients
	// (3 s), and OFREPRefetchWait how long a re-fetch announced by an event
	// waits for this server to serve that configuration (2 s).
	StreamKeepAlive    time.Duration
	StreamWriteTimeout time.Duration
	StreamRetry        time.Duration
	OFREPRefetchWait   time.Duration
	// The websocket stream (wsstream.go) also uses StreamKeepAlive (its
	// heartbeat) and StreamWriteTimeout. WebsocketOrigins are the origin
	// host patterns browsers may connect from (path.Match; empty: any, as
	// the SDK API's CORS).
	WebsocketOrigins []string
	// StreamsPerKey bounds the streaming connections open at once with one
	// key: websockets, Flagsmith SSE and OFREP event streams together
	// (0: 5,000). Past it a new stream gets 429 with Retry-After.
	StreamsPerKey int
}

// New returns a Server with nothing published yet: it answers 503 until the
// first Publish.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Server{log: opts.Log, identities: opts.Identities, opts: opts, limiter: tokens.NewLimiter(opts.TokenLimits), hub: stream.NewHub()}
	s.metrics = newMetrics(s)
	s.ws = newWSStream(s)
	return s
}

// state is everything a request needs, derived once from one snapshot:
// the served state (package served, built by Publish) and what only HTTP
// needs of it.
type state struct {
	*served.State
	snap      *flagrepo.Snapshot // State.Snapshot()
	updatedAt []string           // updated as epoch seconds: the X-Flagsmith-Document-Updated-At header's value (read-only)
	preview   string             // the branch previewed (previews.go); "" for the served state
}

func newState(st *served.State) *state {
	return &state{State: st, snap: st.Snapshot(), updatedAt: []string{epochSeconds(st.Updated())}}
}

// envState is one environment of the served state: its evaluation model and
// the answers encoded in advance.
type envState = served.Env

// Snapshot returns the served snapshot, or nil before the first Publish.
func (s *Server) Snapshot() *flagrepo.Snapshot {
	if st := s.current.Load(); st != nil {
		return st.snap
	}
	return nil
}

// Handler returns the HTTP handler of every endpoint.
//
// Every error is JSON: {"detail": ...} (Flagsmith's shape), or OFREP's
// {"errorCode", "errorDetails"} under /ofrep/ (see writeError), including the
// router's own 404, 405 (with Allow) and trailing-slash redirects. Only the
// routes browsers call (the Flagsmith SDK API and OFREP) answer CORS
// requests and preflights.
func (s *Server) Handler() http.Handler {
	r := httprouter.New()
	// The router's redirects write text/html; NotFound below redirects instead.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	handle := func(method, path string, h httprouter.Handle) {
		r.Handle(method, path, s.metrics.instrument(path, h))
	}
	corsMethods := map[string][]string{} // path -> methods of the routes browsers call
	browser := func(method, path string, h httprouter.Handle) {
		handle(method, path, func(w http.ResponseWriter, req *http.Request, p httprouter.Params) {
			setCORS(w.Header())
			h(w, req, p)
		})
		corsMethods[path] = append(corsMethods[path], method)
	}
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", s.metrics.handler())
	r.GET("/schemas/v1/:name", s.schema)
	// Flagsmith SDK API (flagsmith.go, identities.go, environment-document.go, analytics.go).
	browser(http.MethodGet, "/api/v1/flags/", s.flags)
	browser(http.MethodGet, "/api/v1/identities/", s.getIdentity)
	browser(http.MethodPost, "/api/v1/identities/", s.postIdentity)
	browser(http.MethodPost, "/api/v1/traits/", s.postTrait)
	browser(http.MethodPut, "/api/v1/traits/bulk/", s.putTraitsBulk)
	browser(http.MethodPost, "/api/v1/traits/increment-value/", s.incrementTrait)
	browser(http.MethodPost, "/api/v1/bulk-identities", s.bulkIdentities)
	browser(http.MethodPost, "/api/v1/bulk-identities/", s.bulkIdentities)
	browser(http.MethodGet, "/api/v1/environment-document/", s.environmentDocument)
	browser(http.MethodPost, "/api/v1/analytics/flags/", s.analyticsFlags)
	// Flagsmith realtime (sse.go).
	browser(http.MethodGet, "/sse/environments/:key/stream", s.flagsmithStream)
	// The websocket stream of evaluated flags (wsstream.go).
	handle(http.MethodGet, wsStreamPath, s.wsStream)
	// Admin and sync (admin.go).
	handle(http.MethodGet, "/api/v1/status", s.admin(false, s.status))
	handle(http.MethodPost, "/api/v1/sync", s.admin(true, s.syncNow))
	handle(http.MethodPost, "/api/v1/sync/pause", s.admin(true, s.syncPause))
	handle(http.MethodPost, "/api/v1/sync/resume", s.admin(true, s.syncResume))
	handle(http.MethodPost, "/api/v1/webhooks/:provider", s.webhook)
	// gitflags' own admin endpoints: history (history.go), proposals (proposals.go).
	handle(http.MethodGet, "/api/v1/history", s.admin(false, s.historyPage))
	handle(http.MethodGet, "/api/v1/proposals", s.admin(false, s.proposals))
	handle(http.MethodGet, "/api/v1/proposals/*branch", s.admin(false, s.proposal)) // previews.go
	// Flagsmith's experimental update-flag endpoints (experimental.go).
	handle(http.MethodPost, "/api/experiments/environments/:environment/update-flag-v1/", s.admin(true, s.updateFlagV1))
	handle(http.MethodPost, "/api/experiments/environments/:environment/update-flag-v2/", s.admin(true, s.updateFlagV2))
	handle(http.MethodPost, "/api/experiments/environments/:environment/delete-segment-override/", s.admin(true, s.deleteSegmentOverride))
	// Flagsmith Admin API (adminapi.go, adminfeatures.go, adminsegments.go, adminfeaturestates.go).
	handle(http.MethodGet, "/api/v1/organisations/", s.admin(false, s.adminOrganisations))
	handle(http.MethodGet, "/api/v1/organisations/:organisation/", s.admin(false, s.adminOrganisation))
	handle(http.MethodGet, "/api/v1/projects/", s.admin(false, s.adminProjects))
	handle(http.MethodGet, "/api/v1/projects/:project/", s.admin(false, s.adminProjectGet))
	handle(http.MethodGet, "/api/v1/projects/:project/environments/", s.admin(false, s.adminProjectEnvironments))
	handle(http.MethodGet, "/api/v1/environments/", s.admin(false, s.adminEnvironments))
	handle(http.MethodGet, "/api/v1/environments/:environment/", s.admin(false, s.adminEnvironmentGet))
	handle(http.MethodPut, "/api/v1/environments/:environment/", s.admin(true, s.adminEnvironmentUpdate))
	handle(http.MethodPatch, "/api/v1/environments/:environment/", s.admin(true, s.adminEnvironmentUpdate))
	handle(http.MethodGet, "/api/v1/projects/:project/features/", s.admin(false, s.adminFeatures))
	handle(http.MethodPost, "/api/v1/projects/:project/features/", s.admin(true, s.adminFeatureCreate))
	handle(http.MethodGet, "/api/v1/projects/:project/features/:feature/", s.admin(false, s.adminFeatureGet))
	handle(http.MethodPut, "/api/v1/projects/:project/features/:feature/", s.admin(true, s.adminFeatureUpdate))
	handle(http.MethodPatch, "/api/v1/projects/:project/features/:feature/", s.admin(true, s.adminFeatureUpdate))
	handle(http.MethodDelete, "/api/v1/projects/:project/features/:feature/", s.admin(true, s.adminFeatureDelete))
	handle(http.MethodGet, "/api/v1/environments/:environment/featurestates/", s.admin(false, s.adminFeatureStates))
	handle(http.MethodGet, "/api/v1/environments/:environment/featurestates/:id/", s.admin(false, s.adminFeatureStateGet))
	handle(http.MethodPut, "/api/v1/environments/:environment/featurestates/:id/", s.admin(true, s.adminFeatureStateUpdate))
	handle(http.MethodPatch, "/api/v1/environments/:environment/featurestates/:id/", s.admin(true, s.adminFeatureStateUpdate))
	handle(http.MethodGet, "/api/v1/projects/:project/segments/", s.admin(false, s.adminSegments))
	handle(http.MethodPost, "/api/v1/projects/:project/segments/", s.admin(true, s.adminSegmentCreate))
	handle(http.MethodGet, "/api/v1/projects/:project/segments/:segment/", s.admin(false, s.adminSegmentGet))
	handle(http.MethodPut, "/api/v1/projects/:project/segments/:segment/", s.admin(true, s.adminSegmentUpdate))
	handle(http.MethodPatch, "/api/v1/projects/:project/segments/:segment/", s.admin(true, s.adminSegmentUpdate))
	handle(http.MethodDelete, "/api/v1/projects/:project/segments/:segment/", s.admin(true, s.adminSegmentDelete))
	handle(http.MethodGet, "/api/v1/features/feature-segments/", s.admin(false, s.adminFeatureSegments))
	handle(http.MethodPost, "/api/v1/features/feature-segments/", s.admin(true, s.adminFeatureSegmentCreate))
	handle(http.MethodPost, "/api/v1/features/feature-segments/update-priorities/", s.admin(true, s.adminUpdatePriorities))
	handle(http.MethodGet, "/api/v1/features/feature-segments/:id/", s.admin(false, s.adminFeatureSegmentGet))
	handle(http.MethodPut, "/api/v1/features/feature-segments/:id/", s.admin(true, s.adminFeatureSegmentUpdate))
	handle(http.MethodPatch, "/api/v1/features/feature-segments/:id/", s.admin(true, s.adminFeatureSegmentUpdate))
	handle(http.MethodDelete, "/api/v1/features/feature-segments/:id/", s.admin(true, s.adminFeatureSegmentDelete))
	handle(http.MethodPost, "/api/v1/environments/:environment/features/:feature/create-segment-override/", s.admin(true, s.adminCreateSegmentOverride))
	// adminfeaturestates.go.
	handle(http.MethodGet, "/api/v1/features/featurestates/", s.admin(false, s.adminAllFeatureStates))
	handle(http.MethodPost, "/api/v1/features/featurestates/", s.admin(true, s.adminFeatureStateCreate))
	handle(http.MethodPut, "/api/v1/features/featurestates/:id/", s.admin(true, s.adminFeatureStateWrite))
	handle(http.MethodPatch, "/api/v1/features/featurestates/:id/", s.admin(true, s.adminFeatureStateWrite))
	handle(http.MethodPost, "/api/v1/environments/:environment/featurestates/", s.admin(false, s.adminEnvironmentStateMethod))
	handle(http.MethodDelete, "/api/v1/environments/:environment/featurestates/:id/", s.admin(false, s.adminEnvironmentStateMethod))
	// OFREP (ofrep.go).
	browser(http.MethodPost, "/ofrep/v1/evaluate/flags", s.ofrepBulk)
	browser(http.MethodPost, "/ofrep/v1/evaluate/flags/:key", s.ofrepFlag)
	browser(http.MethodGet, ofrepStreamPath, s.ofrepStream) // ofrepstream.go
	for path, methods := range corsMethods {
		r.OPTIONS(path, preflight(methods))
	}
	// Other routes answer OPTIONS with the router's Allow header only.
	r.GlobalOPTIONS = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	// isBrowser reports whether path is a route browsers call.
	isBrowser := func(path string) bool {
		h, _, _ := r.Lookup(http.MethodOptions, path)
		return h != nil
	}
	r.HandleMethodNotAllowed = true
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if isBrowser(req.URL.Path) {
			setCORS(w.Header())
		}
		allow := w.Header().Get("Allow") // set by the router
		writeError(w, req, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", req.Method, req.URL.Path, allow))
	})
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		path := req.URL.Path
		if _, _, tsr := r.Lookup(req.Method, path); tsr && path != "/" {
			// The route exists with or without a trailing slash.
			if strings.HasSuffix(path, "/") {
				path = path[:len(path)-1]
			} else {
				path += "/"
			}
			if req.Method == http.MethodOptions {
				// Browsers do not follow a redirected preflight.
				h, p, _ := r.Lookup(http.MethodOptions, path)
				h(w, req, p)
				return
			}
			if isBrowser(path) {
				setCORS(w.Header())
			}
			u := *req.URL
			u.Path, u.RawPath = path, ""
			w.Header().Set("Location", u.RequestURI())
			code := http.StatusMovedPermanently
			if req.Method != http.MethodGet && req.Method != http.MethodHead {
				code = http.StatusTemporaryRedirect // keeps the method and body
			}
			writeError(w, req, code, "moved to "+path)
			return
		}
		writeError(w, req, http.StatusNotFound, "no endpoint "+req.Method+" "+req.URL.Path)
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		s.log.Error("panic serving request", "path", req.URL.Path, "panic", v)
		writeError(w, req, http.StatusInternalServerError, "internal error")
	}
	return r
}

// Header values every response shares (set without allocating; net/http
// only reads them).
var (
	hdrJSON           = []string{"application/json"}
	corsAnyOrigin     = []string{"*"}
	corsExposeHeaders = []string{"ETag, X-Flagsmith-Document-Updated-At"}
	corsAllowHeaders  = []string{"Content-Type, X-Environment-Key, Authorization, X-API-Key, If-None-Match, Flagsmith-Application-Name, Flagsmith-Application-Version"}
	corsMaxAge        = []string{"86400"}
)

// setCORS lets browsers on any origin read the answer.
func setCORS(h http.Header) {
	h["Access-Control-Allow-Origin"] = corsAnyOrigin
	h["Access-Control-Expose-Headers"] = corsExposeHeaders
}

// preflight answers OPTIONS on a route browsers call, whose methods are
// methods: with Allow, and with CORS headers when it is a CORS preflight
// (it has Access-Control-Request-Method).
func preflight(methods []string) httprouter.Handle {
	allow := []string{strings.Join(slices.Sorted(slices.Values(slices.Concat(methods, []string{http.MethodOptions}))), ", ")}
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		h := w.Header()
		h["Allow"] = allow
		if r.Header.Get("Access-Control-Request-Method") != "" {
			h["Access-Control-Allow-Origin"] = corsAnyOrigin
			h["Access-Control-Allow-Methods"] = allow
			h["Access-Control-Allow-Headers"] = corsAllowHeaders
			h["Access-Control-Max-Age"] = corsMaxAge
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// header.
func bearerToken(r *http.Request) (string, bool) { return authToken(r, "Bearer") }

// authToken returns the token of an "Authorization: <scheme> <token>"
// header whose scheme is one of schemes. The scheme is matched without
// regard to case, and any number of spaces may follow it (RFC 9110,
// sections 11.1 and 11.4).
func authToken(r *http.Request, schemes ...string) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !slices.ContainsFunc(schemes, func(s string) bool { return strings.EqualFold(s, scheme) }) {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	return token, token != ""
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	st := s.current.Load()
	if st == nil {
		writeDetail(w, http.StatusServiceUnavailable, "no valid revision loaded yet")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true, "revision": st.snap.Revision.SHA})
}

// writeError writes an error in the shape of the surface of req's path:
// OFREP's {"errorCode": "GENERAL", "errorDetails": "..."} under /ofrep/,
// {"detail": "..."} elsewhere.
func writeError(w http.ResponseWriter, req *http.Request, status int, detail string) {
	if strings.HasPrefix(req.URL.Path, "/ofrep/") {
		ofrepError(w, status, "", ofrepGeneral, detail)
		return
	}
	writeDetail(w, status, detail)
}

// writeDetail writes a Flagsmith-style error body {"detail": "..."}.
func writeDetail(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, map[string]string{"detail": detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"detail":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// timeFormat is how dates are written in SDK responses.
const timeFormat = time.RFC3339
