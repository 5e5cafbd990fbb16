package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/tokens"
)

// surfaceServer serves the template repository with the admin API enabled.
func surfaceServer(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	files, err := flagrepo.DirFiles(filepath.Join("..", "flags-repo-template"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: "0123456789abcdef"}, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Log = ofrepQuietLog
	s := New(opts)
	if err := s.Publish(snap); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// send sends one request without following redirects.
func send(t *testing.T, method, url string, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// checkErrorShape checks that an answer to path is a JSON error of the
// surface's shape: {"errorCode", "errorDetails", "key"?} under /ofrep/,
// {"detail"} elsewhere.
func checkErrorShape(t *testing.T, what, path string, resp *http.Response, body []byte) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	if resp.Request.Method == http.MethodHead {
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Errorf("%s: body is not a JSON object: %v: %q", what, err, body)
		return
	}
	if strings.HasPrefix(path, "/ofrep/") {
		code, _ := m["errorCode"].(string)
		details, _ := m["errorDetails"].(string)
		delete(m, "key")
		if code == "" || details == "" || len(m) != 2 {
			t.Errorf("%s: not an OFREP error {errorCode, errorDetails}: %s", what, body)
		}
		return
	}
	if d, _ := m["detail"].(string); d == "" || len(m) != 1 {
		t.Errorf("%s: not a {\"detail\"} error: %s", what, body)
	}
}

// routes is every route the handler serves, with its methods.
var routes = []struct {
	path    string
	methods []string
	cors    bool
}{
	{"/healthz", []string{"GET"}, false},
	{"/readyz", []string{"GET"}, false},
	{"/metrics", []string{"GET"}, false},
	{"/schemas/v1/feature.schema.json", []string{"GET"}, false},
	{"/api/v1/flags/", []string{"GET"}, true},
	{"/api/v1/identities/", []string{"GET", "POST"}, true},
	{"/api/v1/traits/", []string{"POST"}, true},
	{"/api/v1/traits/bulk/", []string{"PUT"}, true},
	{"/api/v1/traits/increment-value/", []string{"POST"}, true},
	{"/api/v1/bulk-identities", []string{"POST"}, true},
	{"/api/v1/bulk-identities/", []string{"POST"}, true},
	{"/api/v1/environment-document/", []string{"GET"}, true},
	{"/api/v1/analytics/flags/", []string{"POST"}, true},
	{"/api/v1/status", []string{"GET"}, false},
	{"/api/v1/sync", []string{"POST"}, false},
	{"/api/v1/sync/pause", []string{"POST"}, false},
	{"/api/v1/sync/resume", []string{"POST"}, false},
	{"/api/v1/webhooks/github", []string{"POST"}, false},
	{"/ofrep/v1/evaluate/flags", []string{"POST"}, true},
	{"/ofrep/v1/evaluate/flags/api_rate_limit", []string{"POST"}, true},
}

// TestEveryErrorIsJSON walks every route with the methods it does not
// have, and unknown and almost-known paths: each answer is JSON in the
// surface's error shape, and a 405 lists the route's methods in Allow.
func TestEveryErrorIsJSON(t *testing.T) {
	ts := surfaceServer(t, Options{Tokens: tokens.Admin(adminToken)})
	for _, rt := range routes {
		if !slices.Contains(rt.methods, "GET") {
			resp, _ := send(t, "GET", ts.URL+rt.path, "")
			if resp.StatusCode == http.StatusNotFound {
				t.Errorf("GET %s: 404: the route is not served", rt.path)
			}
		}
		allow := strings.Join(slices.Sorted(slices.Values(append(slices.Clone(rt.methods), "OPTIONS"))), ", ")
		for _, m := range []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"} {
			if slices.Contains(rt.methods, m) {
				continue
			}
			what := m + " " + rt.path
			resp, body := send(t, m, ts.URL+rt.path, "")
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s: status %d, want 405", what, resp.StatusCode)
			}
			if got := resp.Header.Get("Allow"); got != allow {
				t.Errorf("%s: Allow %q, want %q", what, got, allow)
			}
			checkErrorShape(t, what, rt.path, resp, body)
		}
	}
	for _, path := range []string{
		"/", "/nope", "/api/v1/nope", "/api/v1/flags/extra", "/ofrep/v1/nope", "/ofrep/v1/evaluate/flags/a/b", "/ofrep/",
	} {
		for _, m := range []string{"GET", "POST", "OPTIONS"} {
			resp, body := send(t, m, ts.URL+path, "", "Authorization", "Bearer "+prodKey)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s: status %d, want 404", m, path, resp.StatusCode)
			}
			checkErrorShape(t, m+" "+path, path, resp, body)
		}
	}
	// Routes with a parameter answer 404 for a value they do not know.
	for _, tc := range []struct{ method, path string }{
		{"POST", "/api/v1/webhooks/bitbucket"}, {"GET", "/schemas/v1/nope.schema.json"},
	} {
		resp, body := send(t, tc.method, ts.URL+tc.path, "")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s: status %d, want 404", tc.method, tc.path, resp.StatusCode)
		}
		checkErrorShape(t, tc.method+" "+tc.path, tc.path, resp, body)
	}
	// A path one slash away from a route is redirected, with a JSON body.
	for _, tc := range []struct{ method, path, to string }{
		{"GET", "/api/v1/flags", "/api/v1/flags/"},
		{"GET", "/healthz/", "/healthz"},
		{"POST", "/api/v1/traits", "/api/v1/traits/"},
		{"POST", "/api/v1/analytics/flags", "/api/v1/analytics/flags/"},
		{"POST", "/ofrep/v1/evaluate/flags/", "/ofrep/v1/evaluate/flags"},
	} {
		what := tc.method + " " + tc.path
		resp, body := send(t, tc.method, ts.URL+tc.path+"?a=1", "")
		if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != tc.to+"?a=1" {
			t.Errorf("%s: status %d Location %q, want a redirect to %s?a=1", what, resp.StatusCode, resp.Header.Get("Location"), tc.to)
		}
		checkErrorShape(t, what, tc.path, resp, body)
	}
	// OFREP's own errors: 401 (no key, unknown key), 413.
	for _, hdr := range [][]string{nil, {"Authorization", "Bearer nope"}, {"X-API-Key", "nope"}} {
		path := "/ofrep/v1/evaluate/flags/api_rate_limit"
		resp, body := send(t, "POST", ts.URL+path, "{}", hdr...)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("OFREP with %q: status %d, want 401", hdr, resp.StatusCode)
		}
		checkErrorShape(t, "OFREP 401", path, resp, body)
	}
	resp, body := send(t, "POST", ts.URL+"/ofrep/v1/evaluate/flags", strings.Repeat(" ", 2<<20), "X-API-Key", prodKey)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("OFREP large body: status %d, want 413", resp.StatusCode)
	}
	checkErrorShape(t, "OFREP 413", "/ofrep/v1/evaluate/flags", resp, body)
	resp, body = send(t, "POST", ts.URL+"/api/v1/analytics/flags/", strings.Repeat(" ", 2<<20), "X-Environment-Key", prodKey)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("analytics large body: status %d, want 413", resp.StatusCode)
	}
	checkErrorShape(t, "analytics 413", "/api/v1/analytics/flags/", resp, body)
}

// TestCORSOnlyForBrowserSurfaces checks which routes carry CORS headers and
// what their preflights allow.
func TestCORSOnlyForBrowserSurfaces(t *testing.T) {
	ts := surfaceServer(t, Options{Tokens: tokens.Admin(adminToken), WebhookSecret: webhookSecret})
	for _, rt := range routes {
		// A request with the route's first method.
		resp, _ := send(t, rt.methods[0], ts.URL+rt.path, "", "Origin", "http://example.com",
			"X-Environment-Key", prodKey, "Authorization", "Bearer "+adminToken)
		origin := resp.Header.Get("Access-Control-Allow-Origin")
		expose := resp.Header.Get("Access-Control-Expose-Headers")
		if rt.cors && (origin != "*" || !strings.Contains(expose, "ETag")) {
			t.Errorf("%s %s: CORS headers origin %q expose %q, want * and ETag", rt.methods[0], rt.path, origin, expose)
		}
		if !rt.cors && (origin != "" || expose != "") {
			t.Errorf("%s %s: CORS headers on a route browsers do not call: origin %q expose %q", rt.methods[0], rt.path, origin, expose)
		}
		// A method the route does not have: the browser may read the 405.
		resp, _ = send(t, "DELETE", ts.URL+rt.path, "", "Origin", "http://example.com")
		if got := resp.Header.Get("Access-Control-Allow-Origin"); (got == "*") != rt.cors {
			t.Errorf("DELETE %s: Access-Control-Allow-Origin %q (CORS route: %v)", rt.path, got, rt.cors)
		}

		// A preflight lists the route's methods, and only on CORS routes.
		allow := strings.Join(slices.Sorted(slices.Values(append(slices.Clone(rt.methods), "OPTIONS"))), ", ")
		resp, body := send(t, "OPTIONS", ts.URL+rt.path, "", "Origin", "http://example.com",
			"Access-Control-Request-Method", rt.methods[0], "Access-Control-Request-Headers", "x-environment-key, content-type")
		what := "preflight " + rt.path
		if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
			t.Errorf("%s: status %d body %q, want 204 without a body", what, resp.StatusCode, body)
		}
		if got := resp.Header.Get("Allow"); got != allow {
			t.Errorf("%s: Allow %q, want %q", what, got, allow)
		}
		h := resp.Header
		if rt.cors {
			if h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Methods") != allow ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "X-Environment-Key") ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Errorf("%s: CORS headers %v, want origin *, methods %q and the SDK headers", what, h, allow)
			}
		} else {
			for k := range h {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s: %s on a route browsers do not call", what, k)
				}
			}
		}
		// OPTIONS without Access-Control-Request-Method is not a preflight.
		resp, _ = send(t, "OPTIONS", ts.URL+rt.path, "")
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Allow") != allow || resp.Header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("OPTIONS %s: status %d Allow %q Access-Control-Allow-Methods %q", rt.path, resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Access-Control-Allow-Methods"))
		}
	}
	// A browser calling a route without its trailing slash: the preflight
	// is answered as the route's, then the request is redirected with CORS
	// headers (the browser follows it).
	resp, _ := send(t, "OPTIONS", ts.URL+"/api/v1/flags", "", "Origin", "http://example.com", "Access-Control-Request-Method", "GET")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Methods") != "GET, OPTIONS" {
		t.Errorf("preflight without the trailing slash: status %d, Access-Control-Allow-Methods %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Methods"))
	}
	resp, _ = send(t, "GET", ts.URL+"/api/v1/flags", "", "Origin", "http://example.com")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("GET without the trailing slash: status %d, Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// Unknown paths: no CORS headers, a preflight included.
	for _, path := range []string{"/nope", "/api/v1/nope", "/ofrep/v1/nope"} {
		for _, m := range []string{"GET", "OPTIONS"} {
			resp, body := send(t, m, ts.URL+path, "", "Origin", "http://example.com", "Access-Control-Request-Method", "GET")
			if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("%s %s: status %d Access-Control-Allow-Origin %q, want 404 without CORS", m, path, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
			}
			checkErrorShape(t, m+" "+path, path, resp, body)
		}
	}
}

// TestBearerSchemeCaseInsensitive: the Authorization scheme is matched
// without regard to case (RFC 9110, section 11.1) on the admin API and OFREP.
func TestBearerSchemeCaseInsensitive(t *testing.T) {
	ts := surfaceServer(t, Options{Tokens: tokens.Admin(adminToken)})
	for _, tc := range []struct {
		auth string
		ok   bool
	}{
		{"Bearer %s", true},
		{"bearer %s", true},
		{"BEARER %s", true},
		{"bEaReR   %s", true},
		{"Bearer\t%s", false},
		{"Basic %s", false},
		{"Bearer%s", false},
		{"Bearer", false},
		{"Bearer x%s", false},
	} {
		admin := strings.Replace(tc.auth, "%s", adminToken, 1)
		resp, body := send(t, "GET", ts.URL+"/api/v1/status", "", "Authorization", admin)
		if (resp.StatusCode == http.StatusOK) != tc.ok {
			t.Errorf("admin with %q: status %d %s", admin, resp.StatusCode, body)
		}
		if !tc.ok {
			checkErrorShape(t, "admin "+admin, "/api/v1/status", resp, body)
		}
		key := strings.Replace(tc.auth, "%s", prodKey, 1)
		resp, body = send(t, "POST", ts.URL+"/ofrep/v1/evaluate/flags/api_rate_limit", "{}", "Authorization", key)
		if (resp.StatusCode == http.StatusOK) != tc.ok {
			t.Errorf("OFREP with %q: status %d %s", key, resp.StatusCode, body)
		}
	}
}

// TestExtraCollectors: collectors passed in Options appear on /metrics.
func TestExtraCollectors(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "gitflags_test_extra_total", Help: "A collector from outside httpapi."})
	c.Add(3)
	ts := surfaceServer(t, Options{Collectors: []prometheus.Collector{c}})
	_, body := send(t, "GET", ts.URL+"/metrics", "")
	if !strings.Contains(string(body), "\ngitflags_test_extra_total 3\n") {
		t.Errorf("/metrics lacks the extra collector:\n%s", body)
	}
}

// TestPanicIsJSON breaks the served state so that the handlers reading it
// panic: the 500 is in the surface's error shape.
func TestPanicIsJSON(t *testing.T) {
	files, err := flagrepo.DirFiles(filepath.Join("..", "flags-repo-template"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: "0123456789abcdef"}, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Log: ofrepQuietLog})
	if err := s.Publish(snap); err != nil {
		t.Fatal(err)
	}
	broken := *s.current.Load()
	broken.State = nil // every lookup of an environment dereferences it
	s.current.Store(&broken)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for _, tc := range []struct{ path, body string }{
		{"/api/v1/flags/?feature=api_rate_limit", ""},
		{"/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u1"}}`},
	} {
		method := "GET"
		if tc.body != "" {
			method = "POST"
		}
		resp, body := send(t, method, ts.URL+tc.path, tc.body, "X-Environment-Key", prodKey, "X-API-Key", prodKey)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("%s: status %d, want 500: %s", tc.path, resp.StatusCode, body)
		}
		checkErrorShape(t, "panic in "+tc.path, tc.path, resp, body)
	}
}
