package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
)

// The Flagsmith Admin API over HTTP against a real repository (the
// template), with real commits.

const projectPath = "/api/v1/projects/1"

func (f *adminFixture) head(t *testing.T) string { return f.git(t, "rev-parse", "HEAD") }

// snap reads the repository at HEAD: what the answers are compared with.
func (f *adminFixture) snap(t *testing.T) *flagrepo.Snapshot {
	t.Helper()
	snap, err := f.repo.Snapshot("HEAD", nil)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// call sends body (a string of JSON, or nil) and decodes the answer into
// out when it is not nil.
func (f *adminFixture) call(t *testing.T, method, path, token string, body string, out any) (int, []byte) {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	code, resp := f.do(t, method, path, token, b, map[string]string{"Content-Type": "application/json"})
	if out != nil && code < 300 {
		if err := json.Unmarshal(resp, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, code, resp, err)
		}
	}
	return code, resp
}

// wantCommit checks that HEAD is rev, one commit after before, made by
// author with a subject containing subject, that it changes exactly files,
// and that the repository is sound.
func (f *adminFixture) wantCommit(t *testing.T, before, rev, author, subject string, files ...string) {
	t.Helper()
	if head := f.head(t); head != rev {
		t.Fatalf("HEAD is %s, the answer's revision %s", head, rev)
	}
	if parent := f.git(t, "rev-parse", rev+"^"); parent != before {
		t.Errorf("the commit's parent is %s, want %s", parent, before)
	}
	if got := f.git(t, "log", "-1", "--format=%an <%ae>", rev); got != author {
		t.Errorf("author %q, want %q", got, author)
	}
	if got := f.git(t, "log", "-1", "--format=%s", rev); !strings.Contains(got, subject) {
		t.Errorf("commit message %q does not say %q", got, subject)
	}
	changed := strings.Fields(f.git(t, "diff", "--name-only", before, rev))
	slices.Sort(files)
	if !slices.Equal(changed, files) {
		t.Errorf("the commit changes %v, want %v", changed, files)
	}
	f.git(t, "fsck", "--no-progress")
}

// wantRefused checks a 4xx answer naming field (in "field" or the detail)
// and that nothing was committed.
func (f *adminFixture) wantRefused(t *testing.T, before string, code int, body []byte, wantCode int, field string) {
	t.Helper()
	var e struct{ Detail, Field string }
	if err := json.Unmarshal(body, &e); err != nil || e.Detail == "" {
		t.Errorf("%d %s: not a {\"detail\"} error", code, body)
	}
	if code != wantCode {
		t.Errorf("%d %s, want %d", code, body, wantCode)
	}
	if field != "" && e.Field != field && !strings.Contains(e.Detail, field) {
		t.Errorf("%s does not name %q", body, field)
	}
	if head := f.head(t); head != before {
		t.Errorf("HEAD moved to %s after a refused write", head)
	}
}

const adminAuthor = "admin <admin@gitflags.invalid>"

func TestAdminAPIRead(t *testing.T) {
	f := newAdminFixture(t)
	snap := f.snap(t)
	var orgs struct {
		Count   int
		Results []struct {
			ID   int64
			Name string
		}
	}
	if code, body := f.call(t, http.MethodGet, "/api/v1/organisations/", adminToken, "", &orgs); code != 200 || orgs.Count != 1 || orgs.Results[0].ID != snap.Settings.Organisation.ID || orgs.Results[0].Name != snap.Settings.Organisation.Name {
		t.Errorf("organisations: %d %s", code, body)
	}
	if code, _ := f.call(t, http.MethodGet, fmt.Sprintf("/api/v1/organisations/%d/", snap.Settings.Organisation.ID), adminToken, "", nil); code != 200 {
		t.Errorf("organisation: %d", code)
	}
	if code, _ := f.call(t, http.MethodGet, "/api/v1/organisations/999/", adminToken, "", nil); code != 404 {
		t.Errorf("unknown organisation: %d, want 404", code)
	}
	var projects []struct {
		ID   int64
		Name string
	}
	if code, body := f.call(t, http.MethodGet, "/api/v1/projects/", adminToken, "", &projects); code != 200 || len(projects) != 1 || projects[0].ID != snap.Settings.Project.ID || projects[0].Name != snap.Settings.Project.Name {
		t.Errorf("projects: %d %s", code, body)
	}
	var proj struct {
		TotalFeatures int `json:"total_features"`
		TotalSegments int `json:"total_segments"`
	}
	if code, body := f.call(t, http.MethodGet, projectPath+"/", adminToken, "", &proj); code != 200 || proj.TotalFeatures != len(snap.Features) || proj.TotalSegments != len(snap.Segments) {
		t.Errorf("project: %d %s", code, body)
	}
	if code, _ := f.call(t, http.MethodGet, "/api/v1/projects/2/features/", adminToken, "", nil); code != 404 {
		t.Errorf("features of an unknown project: %d, want 404", code)
	}

	// Environments: by client key or key; tokens see only theirs.
	type envJSON struct {
		ID                            int64
		Name                          string
		APIKey                        string `json:"api_key"`
		MinimumChangeRequestApprovals *int   `json:"minimum_change_request_approvals"`
		TotalSegmentOverrides         *int   `json:"total_segment_overrides"`
	}
	var envs struct {
		Count   int
		Results []envJSON
	}
	if code, body := f.call(t, http.MethodGet, "/api/v1/environments/?project=1", adminToken, "", &envs); code != 200 || envs.Count != len(snap.Environments) {
		t.Errorf("environments: %d %s", code, body)
	}
	if code, body := f.call(t, http.MethodGet, "/api/v1/environments/?project=1", "staging-reader-secret", "", &envs); code != 200 || envs.Count != 2 {
		t.Errorf("environments of a token for staging and development: %d %s", code, body)
	}
	code, body := f.call(t, http.MethodGet, "/api/v1/environments/", adminToken, "", nil)
	f.wantRefused(t, f.head(t), code, body, 400, "project")
	prod := snap.Environments["production"]
	for _, key := range []string{prod.ClientKey, "production"} {
		var e envJSON
		if code, body := f.call(t, http.MethodGet, "/api/v1/environments/"+key+"/", adminToken, "", &e); code != 200 || e.ID != prod.ID || e.APIKey != prod.ClientKey || e.Name != prod.Name ||
			e.MinimumChangeRequestApprovals == nil || e.TotalSegmentOverrides == nil {
			t.Errorf("environment %s: %d %s", key, code, body)
		}
	}
	if code, _ := f.call(t, http.MethodGet, "/api/v1/environments/nope/", adminToken, "", nil); code != 404 {
		t.Errorf("unknown environment: %d, want 404", code)
	}
	if code, _ := f.call(t, http.MethodGet, "/api/v1/environments/production/", "staging-reader-secret", "", nil); code != 403 {
		t.Errorf("environment outside the token's: %d, want 403", code)
	}

	// Features, with the state in an environment.
	var features struct {
		Count   int
		Results []struct {
			ID                      int64
			Name, Type              string
			MultivariateOptions     []struct{ ID int64 } `json:"multivariate_options"`
			EnvironmentFeatureState *struct {
				Enabled           bool
				FeatureStateValue any `json:"feature_state_value"`
			} `json:"environment_feature_state"`
		}
	}
	staging := snap.Environments["staging"]
	code, body = f.call(t, http.MethodGet, fmt.Sprintf("%s/features/?environment=%d&sort_field=name", projectPath, staging.ID), adminToken, "", &features)
	if code != 200 || features.Count != len(snap.Features) {
		t.Fatalf("features: %d %s", code, body)
	}
	for i, k := range snap.FeatureKeys() {
		got, feat := features.Results[i], snap.Features[k]
		res := staging.Resolve(feat)
		if got.Name != k || got.ID != feat.ID || len(got.MultivariateOptions) != len(feat.Variants) || got.EnvironmentFeatureState == nil ||
			got.EnvironmentFeatureState.Enabled != res.Enabled || fmt.Sprint(got.EnvironmentFeatureState.FeatureStateValue) != fmt.Sprint(res.Value) {
			t.Errorf("feature %d: %+v, want %s in staging %+v", i, got, k, res)
		}
	}
	if code, body = f.call(t, http.MethodGet, projectPath+"/features/?search=CHECKOUT&type=MULTIVARIATE", adminToken, "", &features); code != 200 || features.Count != 1 || features.Results[0].Name != "new_checkout" {
		t.Errorf("search: %d %s", code, body)
	}

	// Feature states, paginated by 10.
	var page struct {
		Count          int
		Next, Previous *string
		Results        []struct {
			ID, Feature, Environment int64
			Enabled                  bool
		}
	}
	if code, body = f.call(t, http.MethodGet, "/api/v1/environments/"+staging.ClientKey+"/featurestates/?page=2", adminToken, "", &page); code != 200 ||
		page.Count != len(snap.Features) || page.Next != nil || page.Previous == nil || !strings.HasPrefix(*page.Previous, "http://") || len(page.Results) != len(snap.Features)-10 {
		t.Errorf("feature states page 2: %d %s", code, body)
	}
	if code, _ = f.call(t, http.MethodGet, "/api/v1/environments/staging/featurestates/?page=3", adminToken, "", nil); code != 404 {
		t.Errorf("a page past the end: %d, want 404", code)
	}
	feat := snap.Features["api_rate_limit"]
	var fs struct {
		ID, Feature       int64
		FeatureStateValue any `json:"feature_state_value"`
	}
	if code, body = f.call(t, http.MethodGet, fmt.Sprintf("/api/v1/environments/staging/featurestates/%d/", feat.ID), adminToken, "", &fs); code != 200 ||
		fs.Feature != feat.ID || fmt.Sprint(fs.FeatureStateValue) != fmt.Sprint(staging.Resolve(feat).Value) {
		t.Errorf("feature state: %d %s", code, body)
	}

	// Segments with their rules.
	var seg struct {
		ID    int64
		Name  string
		Rules []struct {
			Type       string
			Rules      []struct{ Type string }
			Conditions []struct{ Property, Operator, Value string }
		}
	}
	mobile := snap.Segments["mobile_app_users"]
	if code, body = f.call(t, http.MethodGet, fmt.Sprintf("%s/segments/%d/", projectPath, mobile.ID), adminToken, "", &seg); code != 200 || seg.Name != mobile.Key ||
		len(seg.Rules) != len(mobile.Rules) || seg.Rules[0].Conditions[0].Value != mobile.Rules[0].Conditions[0].Value || len(seg.Rules[0].Rules) != len(mobile.Rules[0].Rules) {
		t.Errorf("segment: %d %s", code, body)
	}
	want := 0
	for _, k := range snap.SegmentKeys() {
		if strings.Contains(k, "users") {
			want++
		}
	}
	var segs struct{ Count int }
	if code, _ = f.call(t, http.MethodGet, projectPath+"/segments/?q=USERS", adminToken, "", &segs); code != 200 || segs.Count != want || want == 0 {
		t.Errorf("segments matching \"users\": %d, want %d", segs.Count, want)
	}
}
