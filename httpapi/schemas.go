package httpapi

import (
	"io/fs"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/schemas"
)

// schema serves GET /schemas/v1/<kind>.schema.json, the URLs of the schemas'
// $ids, so editors can fetch them from a running server.
func (s *Server) schema(w http.ResponseWriter, _ *http.Request, p httprouter.Params) {
	data, err := fs.ReadFile(schemas.FS(), p.ByName("name"))
	if err != nil {
		writeDetail(w, http.StatusNotFound, "no such schema; see /schemas/v1/ for feature, segment, environment, environment-feature and gitflags")
		return
	}
	w.Header().Set("Content-Type", "application/schema+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(data)
}
