package httpapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// Placeholder until the identity endpoints land: every handler answers 501.

func (s *Server) getIdentity(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	writeDetail(w, http.StatusNotImplemented, "not implemented yet")
}
func (s *Server) postIdentity(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	s.getIdentity(w, r, p)
}
func (s *Server) postTrait(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	s.getIdentity(w, r, p)
}
func (s *Server) putTraitsBulk(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	s.getIdentity(w, r, p)
}
func (s *Server) incrementTrait(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	s.getIdentity(w, r, p)
}
func (s *Server) bulkIdentities(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	s.getIdentity(w, r, p)
}
