package httpapi

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
)

const stagingKey = "stg_Kd83nQpZ2xVw7RtL5mYb" // the template's staging client key

// git runs the git binary in the fixture's work tree.
func (f *adminFixture) git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = f.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// flag returns a flag of GET /api/v1/flags/ for the client key.
func (f *adminFixture) flag(t *testing.T, key, feature string) (enabled bool, value any) {
	t.Helper()
	code, body := f.do(t, http.MethodGet, "/api/v1/flags/?feature="+feature, "", nil, map[string]string{"X-Environment-Key": key})
	if code != http.StatusOK {
		t.Fatalf("flags: %d %s", code, body)
	}
	var fl struct {
		Enabled bool `json:"enabled"`
		Value   any  `json:"feature_state_value"`
	}
	if err := json.Unmarshal(body, &fl); err != nil {
		t.Fatal(err)
	}
	return fl.Enabled, fl.Value
}

func TestUpdateFlagV1(t *testing.T) {
	f := newAdminFixture(t)
	post := func(body string) (int, []byte) {
		return f.do(t, http.MethodPost, "/api/experiments/environments/"+stagingKey+"/update-flag-v1/", adminToken, []byte(body), nil)
	}
	// The environment default.
	code, body := post(`{"feature": {"name": "api_rate_limit"}, "enabled": true, "value": {"type": "integer", "value": "1234"}}`)
	if code != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("update-flag-v1: %d %s", code, body)
	}
	head := f.git(t, "rev-parse", "HEAD")
	if _, v := f.flag(t, stagingKey, "api_rate_limit"); v != float64(1234) {
		t.Errorf("served value %v right after the answer, want 1234", v)
	}
	if got := f.git(t, "log", "-1", "--format=%an <%ae>|%cn|%s"); got != "admin <admin@gitflags.invalid>|gitflags test server|staging: api_rate_limit value 1234 (was 5000)" {
		t.Errorf("commit: %s", got)
	}
	if got := f.git(t, "show", "--format=", "--stat=200", "HEAD"); !strings.Contains(got, "environments/staging/features/api_rate_limit.json | 2 +-") {
		t.Errorf("the commit changes more than the value:\n%s", got)
	}
	// A segment override, the feature by id, the segment by id, with a
	// priority.
	code, body = post(`{"feature": {"id": 1007}, "segment": {"id": 101, "priority": 1}, "enabled": false, "value": {"type": "integer", "value": "7"}}`)
	if code != http.StatusNoContent {
		t.Fatalf("override: %d %s", code, body)
	}
	if got := f.git(t, "log", "-1", "--format=%s"); !strings.Contains(got, "staging: api_rate_limit segment beta_users (priority 1)") {
		t.Errorf("commit message %q", got)
	}
	if f.git(t, "rev-parse", "HEAD~1") != head {
		t.Error("the override is not one commit on top of the first write")
	}
	f.git(t, "fsck", "--strict")
}

func TestUpdateFlagV2AndDeleteOverride(t *testing.T) {
	f := newAdminFixture(t)
	// new_checkout is multivariate: variants one_page (id 1) and express (id 2).
	code, body := f.do(t, http.MethodPost, "/api/experiments/environments/"+stagingKey+"/update-flag-v2/", adminToken, []byte(`{
		"feature": {"name": "new_checkout"},
		"environment_default": {"enabled": true, "value": {"type": "string", "value": "classic"},
			"multivariate_feature_state_values": [{"multivariate_feature_option": 1, "percentage_allocation": 40}]},
		"segment_overrides": [
			{"segment_id": 101, "priority": 2, "enabled": true, "value": {"type": "string", "value": "express"}},
			{"segment_id": 103, "enabled": true, "value": {"type": "string", "value": "classic"},
			 "multivariate_feature_state_values": [{"multivariate_feature_option": 2, "percentage_allocation": 100}]}]}`), nil)
	if code != http.StatusNoContent {
		t.Fatalf("update-flag-v2: %d %s", code, body)
	}
	state := f.git(t, "show", "HEAD:environments/staging/features/new_checkout.json")
	var doc struct {
		Weights          map[string]float64 `json:"weights"`
		SegmentOverrides []struct {
			Segment  string             `json:"segment"`
			Priority int                `json:"priority"`
			Value    any                `json:"value"`
			Weights  map[string]float64 `json:"weights"`
		} `json:"segment_overrides"`
	}
	if err := json.Unmarshal([]byte(state), &doc); err != nil {
		t.Fatal(err)
	}
	// express keeps its 25: Flagsmith keeps the weights a request does not name.
	if doc.Weights["one_page"] != 40 || doc.Weights["express"] != 25 {
		t.Errorf("weights %v, want one_page 40, express 25", doc.Weights)
	}
	if len(doc.SegmentOverrides) != 3 {
		t.Fatalf("overrides:\n%s", state)
	}
	bySegment := map[string]int{}
	for i, o := range doc.SegmentOverrides {
		bySegment[o.Segment] = i
	}
	if o := doc.SegmentOverrides[bySegment["beta_users"]]; o.Priority != 2 || o.Value != "express" {
		t.Errorf("beta_users override %+v", o)
	}
	if o := doc.SegmentOverrides[bySegment["premium_customers"]]; o.Weights["express"] != 100 {
		t.Errorf("premium_customers override %+v", o)
	}
	if !strings.Contains(f.git(t, "log", "-1", "--format=%s"), "new_checkout") {
		t.Error("commit message does not name the feature")
	}

	del := func() (int, []byte) {
		return f.do(t, http.MethodPost, "/api/experiments/environments/"+stagingKey+"/delete-segment-override/", adminToken, []byte(`{"feature": {"name": "new_checkout"}, "segment": {"id": 101}}`), nil)
	}
	if code, body := del(); code != http.StatusNoContent {
		t.Fatalf("delete-segment-override: %d %s", code, body)
	}
	if strings.Contains(f.git(t, "show", "HEAD:environments/staging/features/new_checkout.json"), "beta_users") {
		t.Error("the override is still there")
	}
	head := f.git(t, "rev-parse", "HEAD")
	if code, body := del(); code != http.StatusNotFound || !strings.Contains(string(body), "segment override") {
		t.Errorf("deleting it again: %d %s, want 404", code, body)
	}
	if f.git(t, "rev-parse", "HEAD") != head {
		t.Error("a failed delete committed")
	}
}

// TestExperimentalProposals: production requires review in the template,
// and ?propose=true sends any write to a branch.
func TestExperimentalProposals(t *testing.T) {
	f := newAdminFixture(t)
	head := f.git(t, "rev-parse", "HEAD")
	for _, c := range []struct{ key, query, want string }{
		{"prd_Vn4sT8wQ1zLk6PjH9rXc", "", "gitflags/production/maintenance_mode-"},
		{stagingKey, "?propose=true", "gitflags/staging/maintenance_mode-"},
	} {
		code, body := f.do(t, http.MethodPost, "/api/experiments/environments/"+c.key+"/update-flag-v1/"+c.query, adminToken,
			[]byte(`{"feature": {"name": "maintenance_mode"}, "enabled": true, "value": {"type": "boolean", "value": "true"}}`), nil)
		var res struct{ Branch, Revision, Summary, Detail string }
		json.Unmarshal(body, &res)
		if code != http.StatusAccepted || !strings.HasPrefix(res.Branch, c.want) || res.Revision == "" || !strings.Contains(res.Summary, "maintenance_mode on") {
			t.Fatalf("%s%s: %d %s", c.key, c.query, code, body)
		}
		if got := f.git(t, "rev-parse", "refs/heads/"+res.Branch); got != res.Revision {
			t.Errorf("branch %s at %s, want %s", res.Branch, got, res.Revision)
		}
	}
	if f.git(t, "rev-parse", "HEAD") != head {
		t.Error("a proposal moved the served branch")
	}
	if on, _ := f.flag(t, "prd_Vn4sT8wQ1zLk6PjH9rXc", "maintenance_mode"); on {
		t.Error("a proposal is served")
	}
}

func TestExperimentalBadInput(t *testing.T) {
	f := newAdminFixture(t)
	head := f.git(t, "rev-parse", "HEAD")
	v1 := "/api/experiments/environments/" + stagingKey + "/update-flag-v1/"
	for _, c := range []struct {
		name, path, token, body string
		headers                 map[string]string
		code                    int
		want                    string
	}{
		{"not JSON", v1, adminToken, `{"feature":`, nil, 400, "malformed JSON"},
		{"unknown field", v1, adminToken, `{"feature": {"name": "dark_mode"}, "enabled": true, "value": {"type": "boolean", "value": "true"}, "colour": 1}`, nil, 400, `unknown field \"colour\"`},
		{"unknown feature", v1, adminToken, `{"feature": {"name": "nope"}, "enabled": true, "value": {"type": "boolean", "value": "true"}}`, nil, 404, `feature \"nope\"`},
		{"name and id", v1, adminToken, `{"feature": {"name": "dark_mode", "id": 1005}, "enabled": true, "value": {"type": "boolean", "value": "true"}}`, nil, 400, "either name or id"},
		{"no enabled", v1, adminToken, `{"feature": {"name": "dark_mode"}, "value": {"type": "boolean", "value": "true"}}`, nil, 400, "enabled"},
		{"bad integer", v1, adminToken, `{"feature": {"name": "api_rate_limit"}, "enabled": true, "value": {"type": "integer", "value": "abc"}}`, nil, 400, "value.value"},
		{"wrong type", v1, adminToken, `{"feature": {"name": "api_rate_limit"}, "enabled": true, "value": {"type": "string", "value": "fast"}}`, nil, 400, "value"},
		{"unknown segment", v1, adminToken, `{"feature": {"name": "dark_mode"}, "segment": {"id": 999}, "enabled": true, "value": {"type": "boolean", "value": "true"}}`, nil, 400, "no segment with id 999"},
		{"weights over 100", v1, adminToken, `{"feature": {"name": "new_checkout"}, "enabled": true, "value": {"type": "string", "value": "classic"}, "multivariate_feature_state_values": [{"multivariate_feature_option": 1, "percentage_allocation": 90}]}`, nil, 400, "100"},
		{"unknown variant", v1, adminToken, `{"feature": {"name": "new_checkout"}, "enabled": true, "value": {"type": "string", "value": "classic"}, "multivariate_feature_state_values": [{"multivariate_feature_option": 9, "percentage_allocation": 10}]}`, nil, 400, "no variant with id 9"},
		{"unknown environment", "/api/experiments/environments/nope/update-flag-v1/", adminToken, `{"feature": {"name": "dark_mode"}, "enabled": true, "value": {"type": "boolean", "value": "true"}}`, nil, 404, "nope"},
		{"read-only token", v1, "staging-reader-secret", `{"feature": {"name": "dark_mode"}, "enabled": true, "value": {"type": "boolean", "value": "true"}}`, nil, 403, ""},
		{"token for another environment", "/api/experiments/environments/dev_7Hq2LmX9pRt4VbN8cK3w/update-flag-v1/", "staging-writer-secret", `{"feature": {"name": "dark_mode"}, "enabled": true, "value": {"type": "boolean", "value": "true"}}`, nil, 403, "development"},
		{"no token", v1, "", `{}`, nil, 401, ""},
		{"stale If-Match", v1, adminToken, `{"feature": {"name": "dark_mode"}, "enabled": true, "value": {"type": "boolean", "value": "true"}}`, map[string]string{"If-Match": `"0123456789abcdef0123456789abcdef01234567"`}, 412, "If-Match"},
		{"duplicate segment", "/api/experiments/environments/" + stagingKey + "/update-flag-v2/", adminToken, `{"feature": {"name": "dark_mode"}, "environment_default": {"enabled": true, "value": {"type": "boolean", "value": "true"}}, "segment_overrides": [{"segment_id": 101, "enabled": true, "value": {"type": "boolean", "value": "true"}}, {"segment_id": 101, "enabled": false, "value": {"type": "boolean", "value": "true"}}]}`, nil, 400, "given twice"},
		{"v2 without default", "/api/experiments/environments/" + stagingKey + "/update-flag-v2/", adminToken, `{"feature": {"name": "dark_mode"}}`, nil, 400, "environment_default"},
	} {
		code, body := f.do(t, http.MethodPost, c.path, c.token, []byte(c.body), c.headers)
		if code != c.code || !strings.Contains(string(body), c.want) || !json.Valid(body) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, code, body, c.code, c.want)
		}
	}
	if f.git(t, "rev-parse", "HEAD") != head {
		t.Error("a refused write committed")
	}
	if branches := f.git(t, "branch", "--list", "gitflags/*"); branches != "" {
		t.Errorf("a refused write made a proposal: %s", branches)
	}
}
