package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkPostIdentity measures POST /api/v1/identities/ with 5 traits that
// are already stored (the common SDK call), through the full handler.
func BenchmarkPostIdentity(b *testing.B) {
	f := newFSFixture(b, "")
	h := f.srv.Handler()
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = fmt.Appendf(nil, `{"identifier": "user-%d", "traits": [
			{"trait_key": "email", "trait_value": "user-%d@example.com"}, {"trait_key": "plan", "trait_value": "pro"},
			{"trait_key": "lifetime_value", "trait_value": %d}, {"trait_key": "country", "trait_value": "DE"},
			{"trait_key": "beta_tester", "trait_value": %v}]}`, i, i, i*7, i%3 == 0)
	}
	do := func(body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/identities/", bytes.NewReader(body))
		req.Header.Set("X-Environment-Key", "prd_Vn4sT8wQ1zLk6PjH9rXc")
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	for _, body := range bodies { // store the traits once
		do(body)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		do(bodies[i%len(bodies)])
	}
}
