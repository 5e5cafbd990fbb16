// Package httpapi serves a flag repository's current snapshot over HTTP: the
// Flagsmith-compatible SDK API, the JSON Schemas, and health endpoints. It
// holds the served state, compiled once per snapshot and swapped atomically,
// so that a request sees one revision from start to end.
package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/gitsync"
	"github.com/gitflags/gitflags/identities"
)

// Server serves the snapshot most recently given to Publish.
type Server struct {
	log        *slog.Logger
	identities identities.Store
	opts       Options
	sync       atomic.Pointer[gitsync.Syncer] // see AttachSync
	current    atomic.Pointer[state]
	publishing sync.Mutex // serialises Publish, which updates caches shared with the previous state
	metrics    *metrics
}

// Options configure a Server.
type Options struct {
	Log        *slog.Logger     // defaults to slog.Default()
	Identities identities.Store // where traits persist; required for the identity endpoints
	// AdminToken authorises the admin endpoints (Authorization: Bearer);
	// empty disables them.
	AdminToken string
	// WebhookSecret verifies push webhooks (GitHub's HMAC signature,
	// GitLab's token); empty disables webhooks.
	WebhookSecret string
}

// New returns a Server with nothing published yet: it answers 503 until the
// first Publish.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Server{log: opts.Log, identities: opts.Identities, opts: opts}
	s.metrics = newMetrics(s)
	return s
}

// state is everything a request needs, derived once from one snapshot
// (publish.go).
type state struct {
	snap      *flagrepo.Snapshot
	byEnv     map[string]*envState // by environment key
	byClient  map[string]*envState // by client key
	byServer  map[string]*envState // by hex SHA-256 of a server key
	byName    map[string]int32     // feature key -> position in envState.features
	segments  []*segmentOut        // in segment id order
	segmentAt map[string]int32     // segment key -> position in segments
	updated   time.Time            // the document's updated_at: only ever increases
	updatedAt []string             // updated as epoch seconds: the X-Flagsmith-Document-Updated-At header's value (read-only)
}

// lookupKey resolves an environment key: a client key, or a server key
// ("ser." prefix) whose SHA-256 is listed by an environment. server reports
// which kind matched.
func (st *state) lookupKey(key string) (es *envState, server bool) {
	if strings.HasPrefix(key, "ser.") {
		sum := sha256.Sum256([]byte(key))
		return st.byServer[hex.EncodeToString(sum[:])], true
	}
	return st.byClient[key], false
}

// envState is one environment's evaluation model and precomputed responses.
// Each surface keeps what it precomputes in its own field, assembled by its
// own function (see Publish).
type envState struct {
	env       *flagrepo.Environment
	model     *evaluator.Model
	features  []*featureOut    // in feature key order
	byName    map[string]int32 // feature key -> position in features (shared by the state's environments)
	segmentAt map[string]int32 // the state's segment positions (state.segmentAt)
	// flagsJSON is GET /api/v1/flags/; clientFlagsJSON the same without
	// server-key-only features, nil when there are none.
	flagsJSON, clientFlagsJSON []byte
	flagsLen, clientFlagsLen   []string          // their Content-Length header values
	digest                     [sha256.Size]byte // see environmentDigest
	document                   documentState     // environment-document.go
	ofrep                      ofrepState        // ofrep.go
	results                    *resultCache      // results.go
}

// Snapshot returns the served snapshot, or nil before the first Publish.
func (s *Server) Snapshot() *flagrepo.Snapshot {
	if st := s.current.Load(); st != nil {
		return st.snap
	}
	return nil
}

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler {
	r := httprouter.New()
	handle := func(method, path string, h httprouter.Handle) {
		r.Handle(method, path, s.metrics.instrument(path, h))
	}
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", s.metrics.handler())
	r.GET("/schemas/v1/:name", s.schema)
	// Flagsmith SDK API (flagsmith.go, identities.go, environment-document.go).
	handle(http.MethodGet, "/api/v1/flags/", s.flags)
	handle(http.MethodGet, "/api/v1/identities/", s.getIdentity)
	handle(http.MethodPost, "/api/v1/identities/", s.postIdentity)
	handle(http.MethodPost, "/api/v1/traits/", s.postTrait)
	handle(http.MethodPut, "/api/v1/traits/bulk/", s.putTraitsBulk)
	handle(http.MethodPost, "/api/v1/traits/increment-value/", s.incrementTrait)
	handle(http.MethodPost, "/api/v1/bulk-identities", s.bulkIdentities)
	handle(http.MethodPost, "/api/v1/bulk-identities/", s.bulkIdentities)
	handle(http.MethodGet, "/api/v1/environment-document/", s.environmentDocument)
	// Admin and sync (admin.go).
	handle(http.MethodGet, "/api/v1/status", s.status)
	handle(http.MethodPost, "/api/v1/sync", s.syncNow)
	handle(http.MethodPost, "/api/v1/sync/pause", s.syncPause)
	handle(http.MethodPost, "/api/v1/sync/resume", s.syncResume)
	handle(http.MethodPost, "/api/v1/webhooks/:provider", s.webhook)
	// OFREP (ofrep.go).
	handle(http.MethodPost, "/ofrep/v1/evaluate/flags", s.ofrepBulk)
	handle(http.MethodPost, "/ofrep/v1/evaluate/flags/:key", s.ofrepFlag)
	r.HandleMethodNotAllowed = true
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeDetail(w, http.StatusNotFound, "not found")
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		s.log.Error("panic serving request", "path", req.URL.Path, "panic", v)
		writeDetail(w, http.StatusInternalServerError, "internal error")
	}
	return cors(r)
}

// Header values every response shares (set without allocating; net/http
// only reads them).
var (
	hdrJSON           = []string{"application/json"}
	corsAnyOrigin     = []string{"*"}
	corsExposeHeaders = []string{"ETag, X-Flagsmith-Document-Updated-At"}
)

// cors lets browser SDKs call the SDK API from any origin.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Access-Control-Allow-Origin"] = corsAnyOrigin
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, X-Environment-Key, Authorization, X-API-Key, If-None-Match, Flagsmith-Application-Name, Flagsmith-Application-Version")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h["Access-Control-Expose-Headers"] = corsExposeHeaders
		next.ServeHTTP(w, r)
	})
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
