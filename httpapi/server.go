// Package httpapi serves a flag repository's current snapshot over HTTP: the
// Flagsmith-compatible SDK API, the JSON Schemas, and health endpoints. It
// holds the served state, compiled once per snapshot and swapped atomically,
// so that a request sees one revision from start to end.
package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
)

// Server serves the snapshot most recently given to Publish.
type Server struct {
	log     *slog.Logger
	current atomic.Pointer[state]
}

// New returns a Server with nothing published yet: it answers 503 until the
// first Publish.
func New(log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{log: log}
}

// state is everything a request needs, derived once from one snapshot.
type state struct {
	snap      *flagrepo.Snapshot
	byClient  map[string]*envState // by client key
	updatedAt string               // X-Flagsmith-Document-Updated-At
}

// envState is one environment's evaluation model and precomputed responses.
type envState struct {
	env       *flagrepo.Environment
	model     *evaluator.Model
	flagsJSON []byte            // GET /api/v1/flags/
	flagJSON  map[string][]byte // GET /api/v1/flags/?feature=<name>
}

// Publish compiles snap and makes it the served state. On error the previous
// state keeps serving.
func (s *Server) Publish(snap *flagrepo.Snapshot) error {
	models, err := evaluator.CompileSnapshot(snap)
	if err != nil {
		return fmt.Errorf("compile revision %s: %w", snap.Revision.SHA, err)
	}
	st := &state{
		snap:      snap,
		byClient:  make(map[string]*envState, len(models)),
		updatedAt: fmt.Sprintf("%.6f", float64(snap.Revision.Time.UnixMicro())/1e6),
	}
	for key, m := range models {
		e := snap.Environments[key]
		es := &envState{env: e, model: m, flagJSON: map[string][]byte{}}
		hide := snap.HidesDisabledFlags(e)
		list := make([]flagsmithFlag, 0, m.Len())
		for _, f := range m.EnvironmentFlags() {
			if hide && !f.Enabled {
				continue
			}
			ff := newFlagsmithFlag(snap, e, &f)
			b, err := json.Marshal(ff)
			if err != nil {
				return fmt.Errorf("encode flag %s: %w", f.Name, err)
			}
			es.flagJSON[f.Name] = b
			list = append(list, ff)
		}
		if es.flagsJSON, err = json.Marshal(list); err != nil {
			return fmt.Errorf("encode flags of %s: %w", key, err)
		}
		st.byClient[e.ClientKey] = es
	}
	s.current.Store(st)
	s.log.Info("serving revision", "revision", snap.Revision.SHA, "environments", len(models), "features", len(snap.Features))
	return nil
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
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/schemas/v1/:name", s.schema)
	r.GET("/api/v1/flags/", s.flags)
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

// cors lets browser SDKs call the SDK API from any origin.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, X-Environment-Key, Authorization, X-API-Key, If-None-Match, Flagsmith-Application-Name, Flagsmith-Application-Version")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", "ETag, X-Flagsmith-Document-Updated-At")
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
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// timeFormat is how dates are written in SDK responses.
const timeFormat = time.RFC3339
