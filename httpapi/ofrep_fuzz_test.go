package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

var fuzzOFREP struct {
	once sync.Once
	h    http.Handler
}

// FuzzOFREPRequest feeds arbitrary bodies to the request parser, which must
// agree with encoding/json, and to both OFREP endpoints, which must answer
// 200 with JSON or an OFREP error, never a 5xx, and refuse a body exactly
// when the input rules say so (ofrepInputWant).
func FuzzOFREPRequest(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"context":{}}`, `{"context":null}`,
		`{"context":{"targetingKey":"u1","email":"a@acme.example"}}`,
		`{"context":{"targetingKey":"qa@acme.example","plan":"pro","lifetime_value":1000.0}}`,
		`{"context":{"targetingKey":"u1","n":[1,-2.5e+3,{"a":null}],"b":true,"s":"\u00e9\n"}}`,
		`{"context":{"targetingKey":5}}`, `{"context":"x"}`, `[1]`, `{"context":{"a":tru}}`,
		`{"context":{"targetingKey":"u\ud800","k":"\xff"}}`, `{"context":{},"context":{"targetingKey":"z"}}`,
		` {"x":[[[]]],"context":{"user_id":42,"app_version":"3.2.0","platform":"ios"}} `,
		"{\"context\":{\"targetingKey\":\"u\xff\"}}", "{\"context\":{\"k\xc3\":1}}", "{\"note\":\"\xfe\",\"context\":{}}",
		`{"context":{"targetingKey":"u\ud800"}}`, `{"context":{"a":"\\ud800","b":"\ud83d\ude00"}}`,
		`{"context":{"targetingKey":"u\u0000"}}`, `{"context":{"a\u001fb":1,"o":{"c\u0001":"\u0002"}}}`,
		`{"context":{"":1}}`, "{\"context\":{\"targetingKey\":\"u\x7f\"}}", `{"context":{"t":"\ufffd"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ofrepCheckParser(t, body)
		want := ofrepInputWant(body)

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
			var e ofrepResult
			if w.Code != 200 {
				if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.ErrorCode == "" || e.ErrorDetails == "" {
					t.Fatalf("%s %q: error answer %s", path, body, w.Body)
				}
			}
			if want != nil {
				got := ""
				if w.Code == http.StatusBadRequest {
					got = e.ErrorCode
				}
				if !slices.Contains(want, got) {
					t.Fatalf("%s %q: %d %s, want a 400 error code in %q (\"\": no 400)", path, body, w.Code, w.Body, want)
				}
			}
		}
	})
}

// ofrepInputWant says what the input rules make of body, independently of
// the implementation: the acceptable 400 error codes ("" for no 400), or nil
// when the body is not a request they apply to (not a JSON object, nested
// deeper than the parser takes, a context or targetingKey of the wrong
// type), or when it holds a genuine U+FFFD, which the text check cannot
// tell from a replaced one here. Text that is not Unicode anywhere in the
// body is refused (INVALID_CONTEXT in the context, else PARSE_ERROR; which
// one the unit tests check); else a targetingKey with a control character or
// more than 2,000 characters, or a context key that is empty, has a control
// character or more than 200 characters, is INVALID_CONTEXT.
func ofrepInputWant(body []byte) []string {
	p := ofrepParser{data: body}
	rq := getOFREPRequest()
	p.request(rq)
	putOFREPRequest(rq)
	var top map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if p.deep || !json.Valid(body) || d.Decode(&top) != nil || top == nil {
		return nil
	}
	ctx, isObj := top["context"].(map[string]any)
	if top["context"] != nil && !isObj {
		return nil
	}
	tk, isStr := ctx["targetingKey"].(string)
	if ctx["targetingKey"] != nil && !isStr {
		return nil
	}
	if bytes.Contains(body, []byte("\uFFFD")) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) {
		return nil
	}
	// Every string token, duplicates' included: encoding/json writes
	// U+FFFD for text that is not Unicode.
	d = json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil
		}
		if s, ok := tok.(string); ok && strings.ContainsRune(s, utf8.RuneError) {
			return []string{ofrepParseError, ofrepInvalidContext}
		}
	}
	control := func(s string) bool {
		return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
	}
	if tk != "" && (control(tk) || utf8.RuneCountInString(tk) > 2000) {
		return []string{ofrepInvalidContext}
	}
	for k := range ctx {
		if k == "" || control(k) || utf8.RuneCountInString(k) > 200 {
			return []string{ofrepInvalidContext}
		}
	}
	return []string{""}
}
