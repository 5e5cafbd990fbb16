package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gitflags/gitflags/flagrepo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const prodKey = "prd_Vn4sT8wQ1zLk6PjH9rXc"

func templateServer(t *testing.T) *httptest.Server {
	t.Helper()
	files, err := flagrepo.DirFiles(filepath.Join("..", "flags-repo-template"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: "0123456789abcdef"}, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{})
	if err := s.Publish(snap); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, url, key string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if key != "" {
		req.Header.Set("X-Environment-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestFlags(t *testing.T) {
	ts := templateServer(t)
	resp, body := get(t, ts.URL+"/api/v1/flags/", prodKey)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Flagsmith-Document-Updated-At") == "" {
		t.Error("no X-Flagsmith-Document-Updated-At header")
	}
	var flags []map[string]any
	if err := json.Unmarshal(body, &flags); err != nil {
		t.Fatal(err)
	}
	if len(flags) != 14 {
		t.Errorf("%d flags, want 14", len(flags))
	}
	byName := map[string]map[string]any{}
	for _, f := range flags {
		byName[f["feature"].(map[string]any)["name"].(string)] = f
	}
	rl := byName["api_rate_limit"]
	if rl["feature_state_value"] != float64(600) || rl["enabled"] != true || rl["environment"] != float64(3) ||
		rl["identity"] != nil || rl["feature_segment"] != nil || rl["id"] != float64(1007) {
		t.Errorf("api_rate_limit = %v", rl)
	}
	if typ := byName["new_checkout"]["feature"].(map[string]any)["type"]; typ != "MULTIVARIATE" {
		t.Errorf("new_checkout type %v", typ)
	}

	resp, body = get(t, ts.URL+"/api/v1/flags/?feature=max_cart_items", prodKey)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"feature_state_value":50`) {
		t.Errorf("?feature=: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, ts.URL+"/api/v1/flags/?feature=nope", prodKey)
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"detail"`) {
		t.Errorf("unknown feature: %d %s", resp.StatusCode, body)
	}
}

func TestFlagsAuth(t *testing.T) {
	ts := templateServer(t)
	for _, key := range []string{"", "not-a-key"} {
		resp, body := get(t, ts.URL+"/api/v1/flags/", key)
		var e struct{ Detail string }
		if resp.StatusCode != 401 || json.Unmarshal(body, &e) != nil || e.Detail == "" {
			t.Errorf("key %q: %d %s", key, resp.StatusCode, body)
		}
	}
}

// TestHealthReadySchemas: CORS is tested in TestCORSOnlyForBrowserSurfaces.
func TestHealthReadySchemas(t *testing.T) {
	s := New(Options{})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if resp, _ := get(t, ts.URL+"/readyz", ""); resp.StatusCode != 503 {
		t.Errorf("readyz before publish: %d", resp.StatusCode)
	}
	if resp, _ := get(t, ts.URL+"/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	resp, body := get(t, ts.URL+"/schemas/v1/feature.schema.json", "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"$id": "https://gitflags.dev/schemas/v1/feature.schema.json"`) {
		t.Errorf("schema: %d", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	ts := templateServer(t)
	get(t, ts.URL+"/api/v1/flags/", prodKey)
	get(t, ts.URL+"/api/v1/flags/", "bad")
	resp, body := get(t, ts.URL+"/metrics", "")
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`gitflags_http_requests_total{code="200",route="/api/v1/flags/"} 1`,
		`gitflags_http_requests_total{code="401",route="/api/v1/flags/"} 1`,
		`gitflags_http_request_duration_seconds_count{route="/api/v1/flags/"} 2`,
		`gitflags_served_revision_info{revision="0123456789abcdef"} 1`,
		`gitflags_served_revision_age_seconds`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestUpdatedAtOnlyIncreases publishes a revision dated before the served one:
// the document's updated_at must still grow, or SDKs would never refetch.
func TestUpdatedAtOnlyIncreases(t *testing.T) {
	files, err := flagrepo.DirFiles(filepath.Join("..", "flags-repo-template"))
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{})
	var last time.Time
	for i, at := range []time.Time{time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)} {
		snap, err := flagrepo.Load(flagrepo.Revision{SHA: fmt.Sprint(i), Time: at}, files, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Publish(snap); err != nil {
			t.Fatal(err)
		}
		got := s.current.Load().Updated()
		if !got.After(last) {
			t.Fatalf("revision %d dated %v: updated_at %v does not grow past %v", i, at, got, last)
		}
		last = got
	}
	if want := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC); !last.Equal(want) {
		t.Errorf("a newer commit time is taken as is: %v, want %v", last, want)
	}
	// Working-tree snapshots have no SHA: each one is new, even with an
	// older time.
	for i := 0; i < 2; i++ {
		snap, err := flagrepo.Load(flagrepo.Revision{Time: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, files, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Publish(snap); err != nil {
			t.Fatal(err)
		}
		if got := s.current.Load().Updated(); !got.After(last) {
			t.Fatalf("working-tree publish %d: updated_at %v does not grow past %v", i, got, last)
		} else {
			last = got
		}
	}
}
