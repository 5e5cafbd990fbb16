package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/flagrepo"
)

// flagsmithFlag is a flag as the Flagsmith SDK API returns it.
type flagsmithFlag struct {
	ID                int64            `json:"id"`
	Feature           flagsmithFeature `json:"feature"`
	FeatureStateValue any              `json:"feature_state_value"`
	Environment       int64            `json:"environment"`
	Identity          any              `json:"identity"`
	FeatureSegment    any              `json:"feature_segment"`
	Enabled           bool             `json:"enabled"`
}

type flagsmithFeature struct {
	ID             int64   `json:"id"`
	Name           string  `json:"name"`
	CreatedDate    string  `json:"created_date"`
	Description    *string `json:"description"`
	InitialValue   *string `json:"initial_value"`
	DefaultEnabled bool    `json:"default_enabled"`
	Type           string  `json:"type"`
}

// newFlagsmithFeature is the "feature" object of a flag.
func newFlagsmithFeature(feat *flagrepo.Feature, created string) flagsmithFeature {
	ff := flagsmithFeature{
		ID:             feat.ID,
		Name:           feat.Key,
		CreatedDate:    created,
		DefaultEnabled: feat.Default.Enabled,
		Type:           featureType(feat),
	}
	if feat.Description != "" {
		d := feat.Description
		ff.Description = &d
	}
	if v := feat.Default.Value.Value; v != nil {
		s := fmt.Sprint(v)
		ff.InitialValue = &s
	}
	return ff
}

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
	es, server = st.lookupKey(key)
	if es == nil {
		writeDetail(w, http.StatusUnauthorized, "invalid X-Environment-Key: no environment has this key")
		return nil, nil, false, nil
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
	clientOnly := !server && es.clientFlagsJSON != nil
	body, length := es.flagsJSON, es.flagsLen
	if clientOnly {
		body, length = es.clientFlagsJSON, es.clientFlagsLen
	}
	name, ok, rerr := queryParam(q, "feature")
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	if ok {
		i, ok := es.byName[name]
		if ok {
			f := es.features[i]
			ok = f.visible() && !(clientOnly && f.base.serverOnly)
			body, length = f.flag, []string{strconv.Itoa(len(f.flag))}
		}
		if !ok {
			writeDetail(w, http.StatusNotFound, fmt.Sprintf("no feature %q in this environment", name))
			return
		}
	}
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["X-Flagsmith-Document-Updated-At"] = st.updatedAt
	h["Content-Length"] = length // written at once, not chunked
	_, _ = w.Write(body)
}
