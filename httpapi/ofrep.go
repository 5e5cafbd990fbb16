package httpapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// Placeholder until OFREP lands.

type ofrepState struct{}

func buildOFREP(_ *state, _ *envState) error { return nil }

func (s *Server) ofrepBulk(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.WriteHeader(http.StatusNotImplemented)
}
func (s *Server) ofrepFlag(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	s.ofrepBulk(w, r, p)
}
