package httpapi

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/served"
)

// The environment document (GET /api/v1/environment-document/) is what the
// Flagsmith SDKs evaluate locally. Package served builds it, in pieces
// encoded once per feature (see served/document.go for how it makes the
// SDKs' engines compute what the server computes); the handler writes those
// pieces (served.Document.WriteTo).

func (s *Server) environmentDocument(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st, es, server := s.environmentKey(w, r)
	if es == nil {
		return
	}
	if !server {
		writeDetail(w, http.StatusForbidden, "the environment document needs a server-side key (ser.…); this is a client-side key")
		return
	}
	doc := es.Document()
	h := w.Header()
	h["X-Flagsmith-Document-Updated-At"] = st.updatedAt
	h.Set("ETag", doc.ETag())
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, doc.ETag()) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(doc.Size()))
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = doc.WriteTo(bw)
	_ = bw.Flush() // an error means the client went away
}

// etagMatch reports whether an If-None-Match header lists etag.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// docConditionValue is a condition's value as the environment document
// gives it to SDKs (served.ConditionValue), which the admin API shows too.
func docConditionValue(c *flagrepo.Condition) string { return served.ConditionValue(c) }
