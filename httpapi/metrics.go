package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, in a registry of its own so
// that several servers (tests) do not collide.
type metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	evaluations *prometheus.CounterVec
	reported    *prometheus.CounterVec // evaluations reported by SDKs (analytics.go)
	// evaluations by surface, looked up once
	identityEvaluations, ofrepEvaluations prometheus.Counter
	revision                              *prometheus.GaugeVec
	revisionAt                            prometheus.Gauge
	// websocket stream clients dropped by the watchdog (wsStream.watch)
	streamDropped prometheus.Counter
	sync          *SyncMetrics
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitflags_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gitflags_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"route"}),
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitflags_evaluations_total", Help: "Flag evaluations for an identity or context, by surface.",
		}, []string{"surface"}),
		reported: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitflags_flag_evaluations_reported_total",
			Help: "Flag evaluations reported by Flagsmith SDKs (POST /api/v1/analytics/flags/), by environment and feature.",
		}, []string{"environment", "feature"}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitflags_served_revision_info", Help: "The revision being served (value 1, labelled by commit).",
		}, []string{"revision"}),
		revisionAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitflags_served_revision_timestamp_seconds", Help: "Commit time of the served revision.",
		}),
		streamDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitflags_stream_clients_dropped_total",
			Help: "Websocket stream clients disconnected because a write to them did not complete within the write timeout (a client that does not read).",
		}),
	}
	age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gitflags_served_revision_age_seconds", Help: "Seconds since the served revision was committed.",
	}, func() float64 {
		if st := s.current.Load(); st != nil {
			return time.Since(st.snap.Revision.Time).Seconds()
		}
		return 0
	})
	m.registry.MustRegister(m.requests, m.duration, m.evaluations, m.reported, m.revision, m.revisionAt, m.streamDropped, age,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registry.MustRegister(s.opts.Collectors...)
	m.identityEvaluations = m.evaluations.WithLabelValues("identities")
	m.ofrepEvaluations = m.evaluations.WithLabelValues("ofrep")
	m.sync = newSyncMetrics(m.registry)
	return m
}

// published records a newly served revision.
func (m *metrics) published(sha string, at time.Time) {
	m.revision.Reset()
	m.revision.WithLabelValues(sha).Set(1)
	m.revisionAt.Set(float64(at.Unix()))
}

// handler serves GET /metrics.
func (m *metrics) handler() httprouter.Handle {
	h := promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) { h.ServeHTTP(w, r) }
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts and times requests to one route.
func (m *metrics) instrument(route string, h httprouter.Handle) httprouter.Handle {
	observer := m.duration.WithLabelValues(route)
	codes := map[int]prometheus.Counter{}
	for _, c := range []int{200, 204, 304, 400, 401, 403, 404, 413, 500, 501, 503} {
		codes[c] = m.requests.WithLabelValues(route, strconv.Itoa(c))
	}
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r, p)
		elapsed := time.Since(start)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		// Counted by status before the duration is observed: a reader that
		// sees n durations sees the n statuses too.
		if c, ok := codes[sw.code]; ok { // read-only after construction
			c.Inc()
		} else {
			m.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		}
		observer.Observe(elapsed.Seconds())
	}
}
