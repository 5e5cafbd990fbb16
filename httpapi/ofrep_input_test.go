package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// ofrepPost sends body to path on ts with the production client key and
// returns the status, the ETag and the decoded answer.
func ofrepPost(t *testing.T, ts *httptest.Server, path, body string) (int, string, ofrepResult) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+prodKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var res ofrepResult
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(data, &res); err != nil {
			t.Fatalf("POST %s %q: %d answer is not JSON: %s", path, body, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, resp.Header.Get("ETag"), res
}

// TestOFREPRefusesBadText: text that is not Unicode (bytes that are not
// UTF-8, escaped lone surrogates) is refused wherever it is, as on the
// identity endpoints: encoding/json would turn it into U+FFFD, so that
// "u\xff" and "u\xfe" would be one identity. Control characters are refused
// in the targeting key and the context's keys (the trait keys), not in
// values.
func TestOFREPRefusesBadText(t *testing.T) {
	ts := httptest.NewServer(ofrepServer(t).Handler())
	t.Cleanup(ts.Close)

	for _, tc := range []struct {
		name, body string
		code       string
		detail     string // the whole errorDetails, or with a trailing '…' its start
	}{
		{"targetingKey bytes", "{\"context\":{\"targetingKey\":\"u\xff\"}}",
			ofrepInvalidContext, "context.targetingKey is not valid UTF-8"},
		{"targetingKey surrogate", `{"context":{"targetingKey":"u\ud800"}}`,
			ofrepInvalidContext, `context.targetingKey holds \ud800, a lone surrogate: not a Unicode character`},
		{"targetingKey low surrogate first", `{"context":{"targetingKey":"\udc00\ud800"}}`,
			ofrepInvalidContext, `context.targetingKey holds \udc00, a lone surrogate: not a Unicode character`},
		{"context key bytes", "{\"context\":{\"targetingKey\":\"u1\",\"pl\xc3an\":\"pro\"}}",
			ofrepInvalidContext, "a member name in context is not valid UTF-8"},
		{"context key surrogate", `{"context":{"targetingKey":"u1","plan\udfff":"pro"}}`,
			ofrepInvalidContext, `a member name in context holds \udfff, a lone surrogate: not a Unicode character`},
		{"string value bytes", "{\"context\":{\"targetingKey\":\"u1\",\"plan\":\"pr\xfeo\"}}",
			ofrepInvalidContext, "context.plan is not valid UTF-8"},
		{"nested string value surrogate", `{"context":{"targetingKey":"u1","user":{"tags":["a","\ud83d"]}}}`,
			ofrepInvalidContext, `context.user.tags[1] holds \ud83d, a lone surrogate: not a Unicode character`},
		{"nested key bytes", "{\"context\":{\"user\":{\"n\xe9\":1}}}",
			ofrepInvalidContext, "a member name in context.user is not valid UTF-8"},
		{"outside the context", "{\"note\":\"\xff\",\"context\":{\"targetingKey\":\"u1\"}}",
			ofrepParseError, "note is not valid UTF-8"},
		{"targetingKey NUL", `{"context":{"targetingKey":"u\u0000"}}`,
			ofrepInvalidContext, "context.targetingKey: identifier holds the control character U+0000 at byte 1…"},
		{"targetingKey DEL", "{\"context\":{\"targetingKey\":\"u\x7f1\"}}",
			ofrepInvalidContext, "context.targetingKey: identifier holds the control character U+007F at byte 1…"},
		{"targetingKey newline", `{"context":{"targetingKey":"u1\n"}}`,
			ofrepInvalidContext, "context.targetingKey: identifier holds the control character U+000A at byte 2…"},
		{"targetingKey too long", `{"context":{"targetingKey":"` + strings.Repeat("é", 2001) + `"}}`,
			ofrepInvalidContext, "context.targetingKey: identifier is 2001 characters long; at most 2000 are allowed"},
		{"context key ESC", `{"context":{"targetingKey":"u1","a\u001bb":1}}`,
			ofrepInvalidContext, `context: trait key "a\x1bb" holds the control character U+001B at byte 1…`},
		{"context key empty", `{"context":{"targetingKey":"u1","":1}}`,
			ofrepInvalidContext, "context: trait key is empty"},
		{"first bad context key by name", `{"context":{"z\u0001":1,"b\u0002":2}}`,
			ofrepInvalidContext, `context: trait key "b\x02" holds the control character U+0002 at byte 1…`},
	} {
		for _, path := range []string{ofrepFlagsURL, ofrepFlagsURL + "/new_checkout"} {
			status, etag, res := ofrepPost(t, ts, path, tc.body)
			if status != http.StatusBadRequest || res.ErrorCode != tc.code {
				t.Errorf("%s: POST %s: %d %s (%s), want 400 %s", tc.name, path, status, res.ErrorCode, res.ErrorDetails, tc.code)
				continue
			}
			if prefix, ok := strings.CutSuffix(tc.detail, "…"); ok {
				if !strings.HasPrefix(res.ErrorDetails, prefix) {
					t.Errorf("%s: POST %s: errorDetails %q, want it to start with %q", tc.name, path, res.ErrorDetails, prefix)
				}
			} else if res.ErrorDetails != tc.detail {
				t.Errorf("%s: POST %s: errorDetails %q, want %q", tc.name, path, res.ErrorDetails, tc.detail)
			}
			if etag != "" {
				t.Errorf("%s: POST %s: a refused body got an ETag %s", tc.name, path, etag)
			}
		}
	}
}

// TestOFREPAcceptsText: Unicode text is untouched, control characters in
// string values (data, not names) and in keys below the context's own are
// accepted, and a context member that is not a name (a trait value) may be
// anything.
func TestOFREPAcceptsText(t *testing.T) {
	ts := httptest.NewServer(ofrepServer(t).Handler())
	t.Cleanup(ts.Close)

	for _, body := range []string{
		`{"context":{"targetingKey":"zoë","city":"Zürich"}}`,
		`{"context":{"targetingKey":"u\u00e9\ud83d\ude00","a":"\ud83d\ude00"}}`,
		"{\"context\":{\"targetingKey\":\"\xe2\x82\xac\",\"note\":\"line\\nbreak\\u0000\\u007f\"}}",
		`{"context":{"targetingKey":"u1","user":{"a\u0001":["\t"]}}}`,
		`{"context":{"targetingKey":"","plan":"pro"}}`,
		`{"context":{"targetingKey":null}}`,
		`{"context":{"targetingKey":"` + strings.Repeat("é", 2000) + `"}}`,
		`{"context":{"` + strings.Repeat("k", 200) + `":1}}`,
	} {
		for _, path := range []string{ofrepFlagsURL, ofrepFlagsURL + "/new_checkout"} {
			if status, _, res := ofrepPost(t, ts, path, body); status != http.StatusOK {
				t.Errorf("POST %s %.60q: %d %s (%s), want 200", path, body, status, res.ErrorCode, res.ErrorDetails)
			}
		}
	}
}
