package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/served"
)

// flagsmithFeature is the "feature" object of a flag in the SDK API, which
// the admin objects share (package served encodes the SDK API's flags).
type flagsmithFeature = served.FlagsmithFeature

// newFlagsmithFeature is the "feature" object of a flag.
func newFlagsmithFeature(feat *flagrepo.Feature, created string) flagsmithFeature {
	return served.NewFlagsmithFeature(feat, created)
}

// featureType is Flagsmith's type of a feature.
func featureType(f *flagrepo.Feature) string { return served.FeatureType(f) }

// stableUUID derives a UUID from parts, the same one for the same object
// (as the environment document's).
func stableUUID(parts ...any) string { return served.StableUUID(parts...) }

// environmentKey resolves the X-Environment-Key header (a client key or a
// server key) and checks the query string (see sdkRequest), writing the
// error answer and returning nil when either is wrong. server reports
// whether the key is a server-side key.
func (s *Server) environmentKey(w http.ResponseWriter, r *http.Request) (st *state, es *envState, server bool) {
	st, es, server, _ = s.sdkRequest(w, r)
	return st, es, server
}

// sdkRequest is environmentKey, returning the query string's parameters
// too (nil without a query). A query that cannot be read (see parseQuery)
// is a 400 on every SDK endpoint, whether or not it reads parameters: a
// request that means something else than it says is refused, not guessed.
func (s *Server) sdkRequest(w http.ResponseWriter, r *http.Request) (st *state, es *envState, server bool, q url.Values) {
	st = s.current.Load()
	if st == nil {
		writeDetail(w, http.StatusServiceUnavailable, "no valid revision loaded yet")
		return nil, nil, false, nil
	}
	key := r.Header.Get("X-Environment-Key")
	if key == "" {
		writeDetail(w, http.StatusUnauthorized, "missing X-Environment-Key header")
		return nil, nil, false, nil
	}
	es, server = st.Lookup(key)
	if es == nil {
		writeDetail(w, http.StatusUnauthorized, "invalid X-Environment-Key: no environment has this key")
		return nil, nil, false, nil
	}
	if pst, pes, perr := s.preview(r, key, es, server); perr != nil {
		writeDetail(w, perr.status, perr.msg)
		return nil, nil, false, nil
	} else if pes != nil {
		st, es = pst, pes
		markPreview(w, st)
	}
	if r.URL.RawQuery != "" {
		var rerr *requestError
		if q, rerr = parseQuery(r.URL.RawQuery); rerr != nil {
			writeDetail(w, rerr.status, rerr.msg)
			return nil, nil, false, nil
		}
	}
	return st, es, server, q
}

// flags serves GET /api/v1/flags/ and GET /api/v1/flags/?feature=<name>.
func (s *Server) flags(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st, es, server, q := s.sdkRequest(w, r)
	if es == nil {
		return
	}
	// Server-key-only features are left out for client keys.
	body, length := es.Flags(server)
	name, ok, rerr := queryParam(q, "feature")
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	if ok {
		flag, ok := es.Flag(name, server)
		if !ok {
			writeDetail(w, http.StatusNotFound, fmt.Sprintf("no feature %q in this environment", name))
			return
		}
		body, length = flag, []string{strconv.Itoa(len(flag))}
	}
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["X-Flagsmith-Document-Updated-At"] = st.updatedAt
	h["Content-Length"] = length // written at once, not chunked
	_, _ = w.Write(body)
}
