package httpapi

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// reported returns the gitflags_flag_evaluations_reported_total samples on
// /metrics, by "environment/feature".
func reported(t *testing.T, url string) map[string]string {
	t.Helper()
	_, body := send(t, "GET", url+"/metrics", "")
	re := regexp.MustCompile(`(?m)^gitflags_flag_evaluations_reported_total\{environment="([^"]*)",feature="([^"]*)"\} (\S+)$`)
	got := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(body), -1) {
		got[m[1]+"/"+m[2]] = m[3]
	}
	return got
}

func TestAnalyticsFlags(t *testing.T) {
	ts := surfaceServer(t, Options{})
	const path = "/api/v1/analytics/flags/"
	for _, body := range []string{
		`{"api_rate_limit": 3, "new_checkout": 2, "no_such_feature": 5}`,
		`{"api_rate_limit": 4}`,
		`{}`,
	} {
		resp, b := send(t, "POST", ts.URL+path, body, "X-Environment-Key", prodKey, "Content-Type", "application/json")
		if resp.StatusCode != http.StatusOK || len(b) != 0 {
			t.Fatalf("%s: status %d %q, want 200 without a body", body, resp.StatusCode, b)
		}
	}
	resp, b := send(t, "POST", ts.URL+path, `{"api_rate_limit": 1}`, "X-Environment-Key", ofrepStagingKey)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("staging key: status %d %s", resp.StatusCode, b)
	}
	want := map[string]string{"production/api_rate_limit": "7", "production/new_checkout": "2", "staging/api_rate_limit": "1"}
	got := reported(t, ts.URL)
	if len(got) != len(want) {
		t.Errorf("reported %v, want %v (unknown features are not counted)", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: reported %q, want %s", k, got[k], v)
		}
	}

	// Bad requests count nothing, not even their valid entries.
	for _, tc := range []struct {
		key, body, status, mention string
	}{
		{"", `{"api_rate_limit": 1}`, "401", "X-Environment-Key"},
		{"nope", `{"api_rate_limit": 1}`, "401", "X-Environment-Key"},
		{prodKey, ``, "400", "empty"},
		{prodKey, `[1]`, "400", "object"},
		{prodKey, `null`, "400", "null"},
		{prodKey, `{"api_rate_limit": 1`, "400", "JSON"},
		{prodKey, `{"api_rate_limit": 1} {}`, "400", "after"},
		{prodKey, `{"api_rate_limit": 1, "new_checkout": -1}`, "400", `"new_checkout"`},
		{prodKey, `{"api_rate_limit": 1, "new_checkout": 1.5}`, "400", `"new_checkout"`},
		{prodKey, `{"api_rate_limit": 1, "new_checkout": 1e3}`, "400", `"new_checkout"`},
		{prodKey, `{"api_rate_limit": 1, "new_checkout": "2"}`, "400", `"new_checkout"`},
		{prodKey, `{"api_rate_limit": 1, "new_checkout": null}`, "400", `"new_checkout"`},
		{prodKey, `{"api_rate_limit": 1, "new_checkout": true}`, "400", `"new_checkout"`},
		{prodKey, `{"api_rate_limit": 1, "new_checkout": 18446744073709551616}`, "400", `"new_checkout"`},
		{prodKey, `{"api_rate_limit": 1, "no_such_feature": -1}`, "400", `"no_such_feature"`},
	} {
		resp, b := send(t, "POST", ts.URL+path, tc.body, "X-Environment-Key", tc.key)
		what := tc.key + " " + tc.body
		if got := resp.Status[:3]; got != tc.status {
			t.Errorf("%s: status %s, want %s: %s", what, got, tc.status, b)
		}
		checkErrorShape(t, what, path, resp, b)
		if !strings.Contains(string(b), strings.ReplaceAll(tc.mention, `"`, `\"`)) {
			t.Errorf("%s: the error does not mention %s: %s", what, tc.mention, b)
		}
	}
	if got := reported(t, ts.URL); got["production/api_rate_limit"] != "7" || got["production/new_checkout"] != "2" {
		t.Errorf("after rejected requests: %v", got)
	}

	// Before the first revision: 503, as every SDK call.
	w := httptest.NewRecorder()
	req := httptest.NewRequest("POST", path, strings.NewReader(`{}`))
	req.Header.Set("X-Environment-Key", prodKey)
	New(Options{}).Handler().ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("before publish: %d", w.Code)
	}
}
