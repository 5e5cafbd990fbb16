package httpapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/julienschmidt/httprouter"
)

// analyticsFlags serves POST /api/v1/analytics/flags/, where Flagsmith SDKs
// with analytics enabled report how often each feature was evaluated:
// {"<feature name>": <count>, ...}. The counts are added to
// gitflags_flag_evaluations_reported_total{environment, feature}. Names of
// features the repository does not have are ignored, so that clients cannot
// create metric series at will. A count that is not a non-negative integer
// rejects the whole request (400 naming the entry); Flagsmith answers 200
// and logs nothing then. A success is 200 without a body, as Flagsmith's.
func (s *Server) analyticsFlags(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	_, es, _ := s.environmentKey(w, r)
	if es == nil {
		return
	}
	data, rerr := readBody(w, r)
	if rerr == nil {
		var counts map[string]json.RawMessage
		if rerr = decodeJSON(data, &counts); rerr == nil {
			rerr = s.metrics.report(es, counts)
		}
	}
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// report adds the evaluation counts an SDK reported for es, after checking
// every one of them.
func (m *metrics) report(es *envState, counts map[string]json.RawMessage) *requestError {
	if counts == nil { // the body is null
		return badRequest("invalid request body: expected an object of feature names and counts, got null")
	}
	add := make(map[string]uint64, len(counts))
	for _, name := range slices.Sorted(maps.Keys(counts)) { // the first bad entry by name
		raw := bytes.TrimSpace(counts[name])
		n, err := strconv.ParseUint(string(raw), 10, 64)
		if err != nil {
			return badRequest("invalid count of %q: %s is not a non-negative integer", name, raw)
		}
		if _, ok := es.FeatureIndex(name); ok {
			add[name] = n
		}
	}
	for name, n := range add {
		m.reported.WithLabelValues(es.Key(), name).Add(float64(n))
	}
	return nil
}
