package httpapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// Placeholder until the environment document lands.

type documentState struct{}

func buildDocument(_ *state, _ *envState) error { return nil }

func (s *Server) environmentDocument(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	writeDetail(w, http.StatusNotImplemented, "not implemented yet")
}
