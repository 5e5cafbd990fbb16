package httpapi

import (
	"net/http"
	"slices"
	"strings"

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
	// A token limited to environments sees the proposals that change only
	// those environments.
	if tok := callerToken(r); tok != nil && len(tok.Environments) > 0 {
		mine := list[:0]
		for _, p := range list {
			if onlyIn(p.Files, tok.Environments) {
				mine = append(mine, p)
			}
		}
		list = mine
	}
	writeJSON(w, http.StatusOK, map[string]any{"base_branch": writer.Branch(), "revision": st.snap.Revision.SHA, "proposals": list})
}

// onlyIn reports whether every file is under environments/<env>/ for one of
// envs.
func onlyIn(files, envs []string) bool {
	for _, f := range files {
		if !slices.ContainsFunc(envs, func(env string) bool { return strings.HasPrefix(f, "environments/"+env+"/") }) {
			return false
		}
	}
	return true
}
