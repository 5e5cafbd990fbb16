package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

var fuzzOFREP struct {
	once sync.Once
	h    http.Handler
}

// FuzzOFREPRequest feeds arbitrary bodies to the request parser, which must
// agree with encoding/json, and to both OFREP endpoints, which must answer
// 200 with JSON or an OFREP error, never a 5xx.
func FuzzOFREPRequest(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"context":{}}`, `{"context":null}`,
		`{"context":{"targetingKey":"u1","email":"a@acme.example"}}`,
		`{"context":{"targetingKey":"qa@acme.example","plan":"pro","lifetime_value":1000.0}}`,
		`{"context":{"targetingKey":"u1","n":[1,-2.5e+3,{"a":null}],"b":true,"s":"\u00e9\n"}}`,
		`{"context":{"targetingKey":5}}`, `{"context":"x"}`, `[1]`, `{"context":{"a":tru}}`,
		`{"context":{"targetingKey":"u\ud800","k":"\xff"}}`, `{"context":{},"context":{"targetingKey":"z"}}`,
		` {"x":[[[]]],"context":{"user_id":42,"app_version":"3.2.0","platform":"ios"}} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ofrepCheckParser(t, body)

		fuzzOFREP.once.Do(func() { fuzzOFREP.h = ofrepServer(t).Handler() })
		for _, path := range []string{ofrepFlagsURL, ofrepFlagsURL + "/new_checkout", ofrepFlagsURL + "/nope"} {
			req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
			req.Header.Set("X-API-Key", prodKey)
			w := httptest.NewRecorder()
			fuzzOFREP.h.ServeHTTP(w, req)
			switch w.Code {
			case 200, 400, 404:
			default:
				t.Fatalf("%s %q: status %d: %s", path, body, w.Code, w.Body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %q: answer is not JSON: %s", path, body, w.Body)
			}
			if w.Code != 200 {
				var e ofrepResult
				if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.ErrorCode == "" || e.ErrorDetails == "" {
					t.Fatalf("%s %q: error answer %s", path, body, w.Body)
				}
			}
		}
	})
}
