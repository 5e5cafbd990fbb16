package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/identities"
)

// fuzzHandler serves the fixture repository with a store in a temporary
// directory, for fuzzing request decoding end to end.
func fuzzHandler(f *testing.F) http.Handler {
	f.Helper()
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: "fuzz", Time: fsFixtureTime}, fsFixtureFiles(f), nil)
	if err != nil {
		f.Fatal(err)
	}
	store, err := identities.Open(filepath.Join(f.TempDir(), "identities.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = store.Close() })
	srv := New(Options{Identities: store, Log: slog.New(slog.DiscardHandler)})
	if err := srv.Publish(snap); err != nil {
		f.Fatal(err)
	}
	return srv.Handler()
}

// checkAnswer fails on a 5xx, an error without a {"detail"} body, or
// text that is not UTF-8 accepted (encoding/json would have replaced it).
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder, body []byte) {
	if w.Code >= 500 {
		t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body.Bytes())
	}
	if w.Code < 300 && !utf8.Valid(body) {
		t.Fatalf("status %d for a body that is not UTF-8: %q", w.Code, body)
	}
	if w.Code >= 400 {
		var e struct {
			Detail *string `json:"detail"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Detail == nil || *e.Detail == "" {
			t.Fatalf("status %d without a detail for %q: %s", w.Code, body, w.Body.Bytes())
		}
	} else if !json.Valid(w.Body.Bytes()) {
		t.Fatalf("status %d with invalid JSON for %q: %s", w.Code, body, w.Body.Bytes())
	}
}

func fuzzBody(f *testing.F, method, path string, seeds ...string) {
	h := fuzzHandler(f)
	for _, s := range seeds {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, server bool) {
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		key := prodKey
		if server {
			key = fsProdServerKey
		}
		req.Header.Set("X-Environment-Key", key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		checkAnswer(t, w, body)
	})
}

func FuzzIdentityRequest(f *testing.F) {
	fuzzBody(f, http.MethodPost, "/api/v1/identities/",
		`{"identifier":"a","traits":[{"trait_key":"plan","trait_value":"pro"},{"trait_key":"n","trait_value":1.5,"transient":true}],"transient":false}`,
		`{"identifier":"b","traits":[{"trait_key":"x","trait_value":null}]}`,
		`{"identifier":"c","traits":null,"transient":null}`,
		`{"identifier":"d","traits":[{"trait_key":"k","trait_value":{"a":[1]}}]}`,
		`{"identifier":1}`, `[]`, `null`, `{"identifier":"e","traits":[{"trait_key":"big","trait_value":1e400}]}`,
		`{"identifier":"f","traits":[{"trait_key":"\ud800","trait_value":"\u0000"}]}`,
		"{\"identifier\":\"col\xff\"}", `{"identifier":"a\u0000"}`, `{"identifier":"\ud83d\ude00\\ud800"}`,
		`{"identifier":"g","traits":[{"trait_key":"n","trait_value":123456789012345678901234567890}]}`,
		`{"identifier":"h","traits":[{"trait_key":"n","trait_value":3.141592653589793238}]}`)
}

func FuzzTraitRequest(f *testing.F) {
	fuzzBody(f, http.MethodPost, "/api/v1/traits/",
		`{"identity":{"identifier":"a"},"trait_key":"plan","trait_value":"pro"}`,
		`{"identity":{"identifier":"a"},"trait_key":"plan","trait_value":null}`,
		`{"identity":null,"trait_key":"k","trait_value":true}`, `{"identity":"a"}`)
}

func FuzzBulkTraitsRequest(f *testing.F) {
	fuzzBody(f, http.MethodPut, "/api/v1/traits/bulk/",
		`[{"identity":{"identifier":"a"},"trait_key":"plan","trait_value":"pro"},{"identity":{"identifier":"b"},"trait_key":"n","trait_value":null}]`,
		`[]`, `[null]`, `{}`)
}

func FuzzIncrementRequest(f *testing.F) {
	fuzzBody(f, http.MethodPost, "/api/v1/traits/increment-value/",
		`{"identifier":"a","trait_key":"n","increment_by":1}`,
		`{"identifier":"a","trait_key":"n","increment_by":"9223372036854775807"}`,
		`{"identifier":"a","trait_key":"n","increment_by":-9.2e18}`,
		`{"identifier":"a","trait_key":"n","increment_by":null}`)
}

func FuzzBulkIdentitiesRequest(f *testing.F) {
	fuzzBody(f, http.MethodPost, "/api/v1/bulk-identities",
		`{"data":[{"identifier":"a","traits":[{"trait_key":"k","trait_value":1}]},{"identifier":"b","traits":[{"trait_key":"k","trait_value":null}]}]}`,
		`{"data":null}`, `{"data":[{}]}`, `{"data":[null]}`)
}

// FuzzParseQuery: what parseQuery accepts, url.ParseQuery reads the same
// (parseQuery is the stricter), as UTF-8 text; what it refuses names a
// parameter.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"feature=a", "identifier=a+b%2B&transient=true", "x=%zz", "a;b=c", "&&a=&=b", "n=%ff", "%e2%82=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, rerr := parseQuery(raw)
		if rerr != nil {
			if rerr.status != http.StatusBadRequest || !strings.HasPrefix(rerr.msg, "query parameter ") {
				t.Fatalf("%q: %d %s", raw, rerr.status, rerr.msg)
			}
			return
		}
		if strings.Contains(raw, ";") {
			return // url.ParseQuery refuses what Flagsmith takes as text
		}
		want, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatalf("%q: accepted, but url.ParseQuery says %v", raw, err)
		}
		if len(want) == 0 && len(q) == 0 {
			return
		}
		if !reflect.DeepEqual(q, want) {
			t.Fatalf("%q: %v, url.ParseQuery %v", raw, q, want)
		}
		for k, vs := range q {
			for _, v := range vs {
				if !utf8.ValidString(k) || !utf8.ValidString(v) {
					t.Fatalf("%q: accepted text that is not UTF-8: %q=%q", raw, k, v)
				}
			}
		}
	})
}

func FuzzIdentityQuery(f *testing.F) {
	h := fuzzHandler(f)
	f.Add("a", "true")
	f.Add("", "")
	f.Add("x%00y", "maybe")
	f.Fuzz(func(t *testing.T, identifier, transient string) {
		q := url.Values{"identifier": {identifier}, "transient": {transient}}
		req := httptest.NewRequest(http.MethodGet, "/api/v1/identities/?"+q.Encode(), nil)
		req.Header.Set("X-Environment-Key", prodKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		checkAnswer(t, w, []byte(identifier))
	})
}
