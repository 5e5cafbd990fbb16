package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/history"
)

// AttachHistory gives GET /api/v1/history the history index of the served
// branch. Without one it answers 404.
func (s *Server) AttachHistory(ix *history.Index) { s.history.Store(ix) }

// historyPage answers GET /api/v1/history?feature=&segment=&environment=
// &limit=&cursor=: the commits of the served branch that changed those
// documents, newest first, with each document before and after.
func (s *Server) historyPage(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ix := s.history.Load()
	st := s.current.Load()
	if ix == nil || st == nil || st.snap.Revision.SHA == "" {
		writeDetail(w, http.StatusNotFound, "no history: this server serves no commit of a branch (a working directory has none)")
		return
	}
	q, qerr := parseQuery(r.URL.RawQuery)
	if qerr != nil {
		writeDetail(w, qerr.status, qerr.msg)
		return
	}
	for name := range q {
		if !slices.Contains([]string{"feature", "segment", "environment", "limit", "cursor"}, name) {
			writeJSON(w, http.StatusBadRequest, map[string]string{"detail": fmt.Sprintf("unknown query parameter %q (known: feature, segment, environment, limit, cursor)", name), "field": name})
			return
		}
	}
	query := history.Query{Feature: q.Get("feature"), Segment: q.Get("segment"), Environment: q.Get("environment"), Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"detail": fmt.Sprintf("query parameter \"limit\": %q is not a number", l), "field": "limit"})
			return
		}
		query.Limit = n
	}
	// A token limited to environments sees the history of those only.
	if tok := callerToken(r); tok != nil && len(tok.Environments) > 0 && query.Environment == "" {
		writeDetail(w, http.StatusForbidden, fmt.Sprintf("token %q is limited to environments %v: ask for the history of one of them (environment=)", tok.Name, tok.Environments))
		return
	}
	if query.Environment != "" && !allowEnvironment(w, r, query.Environment, false) {
		return
	}
	page, err := ix.Query(r.Context(), plumbing.NewHash(st.snap.Revision.SHA), query)
	var qe *history.QueryError
	switch {
	case errors.As(err, &qe):
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": qe.Error(), "field": qe.Param})
		return
	case err != nil && r.Context().Err() != nil:
		return
	case err != nil:
		s.log.Error("history", "error", err)
		writeDetail(w, http.StatusInternalServerError, "reading the history failed: "+err.Error())
		return
	}
	w.Header().Set("ETag", `"`+st.snap.Revision.SHA+`"`)
	writeJSON(w, http.StatusOK, map[string]any{"revision": st.snap.Revision.SHA, "entries": page.Entries, "next": page.Next})
}
