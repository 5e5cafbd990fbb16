package httpapi

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// AccessLog returns h with an access log: once a request is answered, one
// line "request" at level Info goes to log with its method, path (without
// the query string, which can carry identifiers), status, bytes of the body
// written, duration and remote address. Headers, keys and tokens are never
// logged.
func AccessLog(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		aw := &accessWriter{ResponseWriter: w}
		h.ServeHTTP(aw, r)
		if aw.status == 0 {
			aw.status = http.StatusOK
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("path", loggedPath(r.URL.Path)),
			slog.Int("status", aw.status),
			slog.Int64("bytes", aw.bytes),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr))
	})
}

// accessWriter records the status and the size of the body written.
type accessWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *accessWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // not an informational 1xx
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *accessWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// loggedPath is the path as the access log writes it: a key in the path
// (the Flagsmith realtime stream's /sse/environments/{key}/stream) is left
// out.
func loggedPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "/sse/environments/"); ok {
		if _, tail, ok := strings.Cut(rest, "/"); ok {
			return "/sse/environments/{key}/" + tail
		}
		return "/sse/environments/{key}"
	}
	return p
}
