package httpapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// proposals answers GET /api/v1/proposals: the open proposal branches
// (gitflags/...), each with its commits, the files it changes and whether
// its head validates.
func (s *Server) proposals(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writer, st := s.writer.Load(), s.current.Load()
	if writer == nil || st == nil || st.snap.Revision.SHA == "" {
		writeDetail(w, http.StatusNotFound, "no proposals: this server serves no branch it can write to")
		return
	}
	list, err := writer.Proposals(r.Context(), st.snap)
	if err != nil {
		if r.Context().Err() == nil {
			s.log.Error("listing proposals", "error", err)
			writeDetail(w, http.StatusInternalServerError, "listing the proposals failed: "+err.Error())
		}
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"base_branch": writer.Branch(), "revision": st.snap.Revision.SHA, "proposals": list})
}
