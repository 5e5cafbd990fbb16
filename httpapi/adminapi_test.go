package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
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
	// The field is named by "field", in the detail, or by the pointer of a
	// validation problem.
	if field != "" && e.Field != field && !strings.Contains(e.Detail, field) && !strings.Contains(string(body), field+`","message"`) {
		t.Errorf("%s does not name %q", body, field)
	}
	if head := f.head(t); head != before {
		t.Errorf("HEAD moved to %s after a refused write", head)
	}
}

// noReview commits by hand an environment.json of production without
// review_required and waits until it is served, so that writes to every
// environment are committed to the served branch.
func (f *adminFixture) noReview(t *testing.T) {
	t.Helper()
	p := filepath.Join(f.dir, "environments", "production", "environment.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte(strings.Replace(string(data), `"review_required": true`, `"review_required": false`, 1)), 0o644)
	f.git(t, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qam", "production: no review")
	f.do(t, http.MethodPost, "/api/v1/sync", adminToken, nil, nil)
	f.waitServed(t, f.head(t))
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

func TestAdminAPIFeatureWrites(t *testing.T) {
	f := newAdminFixture(t)
	// With review_required in production, a change to every environment
	// is a proposal.
	before := f.head(t)
	var prop struct{ Branch, Revision string }
	if code, body := f.call(t, http.MethodPost, projectPath+"/features/", adminToken, `{"name": "proposed_flag"}`, &prop); code != 202 || !strings.HasPrefix(prop.Branch, "gitflags/proposed_flag-") ||
		f.git(t, "rev-parse", "refs/heads/"+prop.Branch) != prop.Revision || f.head(t) != before {
		t.Fatalf("create with review required: %d %s", code, body)
	}
	f.noReview(t)
	snap := f.snap(t)
	var maxID int64
	for _, feat := range snap.Features {
		maxID = max(maxID, feat.ID)
	}
	before = f.head(t)
	var created struct {
		ID                  int64
		Name                string
		Type                string
		InitialValue        *string `json:"initial_value"`
		DefaultEnabled      bool    `json:"default_enabled"`
		Revision            string
		MultivariateOptions []struct {
			ID                          int64
			Key                         string
			StringValue                 *string `json:"string_value"`
			DefaultPercentageAllocation float64 `json:"default_percentage_allocation"`
		} `json:"multivariate_options"`
	}
	code, body := f.call(t, http.MethodPost, projectPath+"/features/", adminToken, `{"name": "checkout_banner", "description": "Banner on checkout",
		"default_enabled": true, "initial_value": "blue", "tags": ["ui"], "multivariate_options": [
		{"type": "unicode", "string_value": "green", "default_percentage_allocation": 30}, {"type": "unicode", "string_value": "red team", "default_percentage_allocation": 20}]}`, &created)
	if code != 201 || created.ID != maxID+1 || created.Name != "checkout_banner" || created.Type != "MULTIVARIATE" || !created.DefaultEnabled ||
		created.InitialValue == nil || *created.InitialValue != "blue" || len(created.MultivariateOptions) != 2 ||
		created.MultivariateOptions[0].Key != "green" || created.MultivariateOptions[1].Key != "option_2" || created.MultivariateOptions[1].DefaultPercentageAllocation != 20 {
		t.Fatalf("create: %d %s", code, body)
	}
	f.wantCommit(t, before, created.Revision, adminAuthor, "checkout_banner", "features/checkout_banner.json")
	if enabled, v := f.flag(t, stagingKey, "checkout_banner"); !enabled || v != "blue" {
		t.Errorf("served right after the answer: %v %v, want on, blue", enabled, v)
	}

	// Update: the description and options; name and defaults are read-only.
	before = f.head(t)
	var updated struct {
		Description *string
		Revision    string
		Name        string
	}
	code, body = f.call(t, http.MethodPatch, fmt.Sprintf("%s/features/%d/", projectPath, created.ID), adminToken, fmt.Sprintf(`{"name": "ignored", "description": "Checkout banner colour",
		"multivariate_options": [{"id": %d, "type": "unicode", "string_value": "green", "default_percentage_allocation": 50}]}`, created.MultivariateOptions[0].ID), &updated)
	if code != 200 || updated.Description == nil || *updated.Description != "Checkout banner colour" || updated.Name != "checkout_banner" {
		t.Fatalf("update: %d %s", code, body)
	}
	f.wantCommit(t, before, updated.Revision, adminAuthor, "checkout_banner", "features/checkout_banner.json")
	var changed []string
	for _, line := range strings.Split(f.git(t, "show", "--format=", "--unified=0", "HEAD"), "\n")[4:] {
		if !strings.HasPrefix(line, "@@") {
			changed = append(changed, line[:1]+strings.TrimSpace(line[1:]))
		}
	}
	if want := []string{`-"description": "Banner on checkout",`, `+"description": "Checkout banner colour",`,
		`-"weight": 30`, `-},`, `-{`, `-"id": 2,`, `-"key": "option_2",`, `-"value": "red team",`, `-"weight": 20`, `+"weight": 50`}; !slices.Equal(changed, want) {
		t.Errorf("the update changes lines %q, want %q", changed, want)
	}
	if got := f.snap(t).Features["checkout_banner"]; len(got.Variants) != 1 || got.Variants[0].Weight != 50 {
		t.Errorf("variants after the update: %+v", got.Variants)
	}

	// Refused, with nothing committed.
	before = f.head(t)
	for _, c := range []struct {
		method, path, token, body string
		code                      int
		field                     string
	}{
		{"POST", "/features/", adminToken, `{"name": "../x"}`, 400, "name"},
		{"POST", "/features/", adminToken, `{"name": "Checkout_Banner"}`, 400, "name"},
		{"POST", "/features/", adminToken, `{"description": "no name"}`, 400, "name"},
		{"POST", "/features/", adminToken, `not json`, 400, ""},
		{"POST", "/features/", adminToken, `{"name": "x", "multivariate_options": [{"string_value": "a", "default_percentage_allocation": 60}, {"string_value": "b", "default_percentage_allocation": 41}]}`, 400, "multivariate_options"},
		{"POST", "/features/", adminToken, `{"name": "x", "unknown": 1}`, 400, "unknown"},
		{"POST", "/features/", "reader-secret", `{"name": "x"}`, 403, ""},
		{"POST", "/features/", "staging-writer-secret", `{"name": "x"}`, 403, ""},
		{"PATCH", "/features/999999/", adminToken, `{"description": "x"}`, 404, ""},
		{"PATCH", fmt.Sprintf("/features/%d/", created.ID), adminToken, `{"multivariate_options": [{"id": 424242, "string_value": "a"}]}`, 400, "multivariate_options[0].id"},
		{"DELETE", "/features/999999/", adminToken, ``, 404, ""},
	} {
		code, body := f.call(t, c.method, projectPath+c.path, c.token, c.body, nil)
		t.Run(c.method+c.body, func(t *testing.T) { f.wantRefused(t, before, code, body, c.code, c.field) })
	}

	// Delete: the feature and its state in every environment.
	code, body = f.call(t, http.MethodDelete, fmt.Sprintf("%s/features/%d/", projectPath, snap.Features["search_provider"].ID), adminToken, "", nil)
	if code != 204 || len(body) != 0 {
		t.Fatalf("delete: %d %s", code, body)
	}
	f.wantCommit(t, before, f.head(t), adminAuthor, "search_provider",
		"features/search_provider.json", "environments/development/features/search_provider.json", "environments/staging/features/search_provider.json")
	if code, _ := f.call(t, http.MethodGet, fmt.Sprintf("%s/features/%d/", projectPath, snap.Features["search_provider"].ID), adminToken, "", nil); code != 404 {
		t.Errorf("a deleted feature: %d, want 404", code)
	}
}

func TestAdminAPIFeatureStates(t *testing.T) {
	f := newAdminFixture(t)
	snap := f.snap(t)
	limit, checkout := snap.Features["api_rate_limit"], snap.Features["new_checkout"]
	path := func(env string, feat *flagrepo.Feature) string {
		return fmt.Sprintf("/api/v1/environments/%s/featurestates/%d/", env, feat.ID)
	}
	type state struct {
		ID, Feature, Environment int64
		Enabled                  bool
		FeatureStateValue        any `json:"feature_state_value"`
		MV                       []struct {
			Option  int64   `json:"multivariate_feature_option"`
			Percent float64 `json:"percentage_allocation"`
		} `json:"multivariate_feature_state_values"`
		Revision string
	}
	before := f.head(t)
	var fs state
	code, body := f.call(t, http.MethodPatch, path(stagingKey, limit), "staging-writer-secret", `{"feature_state_value": 7000, "enabled": true, "feature": `+fmt.Sprint(limit.ID)+`}`, &fs)
	if code != 200 || fs.FeatureStateValue != float64(7000) || fs.Feature != limit.ID || fs.Environment != snap.Environments["staging"].ID {
		t.Fatalf("update: %d %s", code, body)
	}
	f.wantCommit(t, before, fs.Revision, "staging-writer <sw@acme.example>", "staging: api_rate_limit value 7000", "environments/staging/features/api_rate_limit.json")
	if _, v := f.flag(t, stagingKey, "api_rate_limit"); v != float64(7000) {
		t.Errorf("served right after the answer: %v, want 7000", v)
	}

	// Weights: the options not sent keep theirs.
	before = f.head(t)
	one, express := checkout.Variant("one_page"), checkout.Variant("express")
	code, body = f.call(t, http.MethodPut, path("staging", checkout), adminToken, fmt.Sprintf(`{"multivariate_feature_state_values": [{"multivariate_feature_option": %d, "percentage_allocation": 40}]}`, one.ID), &fs)
	if code != 200 || len(fs.MV) != 2 || fs.MV[0].Option != one.ID || fs.MV[0].Percent != 40 || fs.MV[1].Option != express.ID || fs.MV[1].Percent != snap.Environments["staging"].Features["new_checkout"].Weights["express"] {
		t.Fatalf("weights: %d %s", code, body)
	}
	f.wantCommit(t, before, fs.Revision, adminAuthor, "new_checkout", "environments/staging/features/new_checkout.json")

	// Production requires review: a proposal branch, the served branch unchanged.
	before = f.head(t)
	var prop struct{ Branch, Revision string }
	code, body = f.call(t, http.MethodPatch, path("production", limit), adminToken, `{"feature_state_value": 650}`, &prop)
	if code != 202 || !strings.HasPrefix(prop.Branch, "gitflags/production/") || prop.Revision == "" {
		t.Fatalf("production: %d %s", code, body)
	}
	if f.head(t) != before || f.git(t, "rev-parse", "refs/heads/"+prop.Branch) != prop.Revision {
		t.Error("the proposal moved the served branch, or its branch is not at its revision")
	}

	for _, c := range []struct {
		path, token, body string
		code              int
		field             string
	}{
		{path("staging", limit), adminToken, `{"feature_state_value": "fast"}`, 400, "feature_state_value"},
		{path("staging", limit), adminToken, `{"enabled": "yes"}`, 400, "enabled"},
		{path("staging", limit), adminToken, `{"feature": 1}`, 400, "feature"},
		{path("staging", checkout), adminToken, fmt.Sprintf(`{"multivariate_feature_state_values": [{"multivariate_feature_option": %d, "percentage_allocation": 90}]}`, one.ID), 400, "multivariate_feature_state_values"},
		{path("staging", checkout), adminToken, `{"multivariate_feature_state_values": [{"multivariate_feature_option": 99, "percentage_allocation": 1}]}`, 400, "multivariate_feature_option"},
		{"/api/v1/environments/staging/featurestates/999999/", adminToken, `{"enabled": true}`, 404, ""},
		{"/api/v1/environments/nowhere/featurestates/1/", adminToken, `{"enabled": true}`, 404, ""},
		{path("development", limit), "staging-writer-secret", `{"enabled": false}`, 403, ""},
		{path("staging", limit), "reader-secret", `{"enabled": false}`, 403, ""},
		{path("staging", limit), adminToken, `{"enabled": false`, 400, ""},
	} {
		code, body := f.call(t, http.MethodPatch, c.path, c.token, c.body, nil)
		t.Run(c.path+c.body, func(t *testing.T) { f.wantRefused(t, before, code, body, c.code, c.field) })
	}
}

func TestAdminAPIEnvironmentUpdate(t *testing.T) {
	f := newAdminFixture(t)
	before := f.head(t)
	var env struct {
		Name              string
		HideDisabledFlags *bool `json:"hide_disabled_flags"`
		Revision          string
	}
	code, body := f.call(t, http.MethodPatch, "/api/v1/environments/"+stagingKey+"/", adminToken, `{"hide_disabled_flags": true, "api_key": "ignored", "id": 99}`, &env)
	if code != 200 || env.HideDisabledFlags == nil || !*env.HideDisabledFlags || env.Name != "Staging" {
		t.Fatalf("patch: %d %s", code, body)
	}
	f.wantCommit(t, before, env.Revision, adminAuthor, "staging", "environments/staging/environment.json")
	if !*f.snap(t).Environments["staging"].HideDisabledFlags {
		t.Error("hide_disabled_flags not written")
	}
	before = f.head(t)
	for _, c := range []struct {
		method, body string
		code         int
		field        string
	}{
		{http.MethodPut, `{"description": "no name"}`, 400, "name"},
		{http.MethodPatch, `{"hide_sensitive_data": null}`, 400, "hide_sensitive_data"},
		{http.MethodPatch, `{"minimum_change_request_approvals": 3}`, 400, "minimum_change_request_approvals"},
		{http.MethodPatch, `{"name": ""}`, 400, "name"},
	} {
		code, body := f.call(t, c.method, "/api/v1/environments/staging/", adminToken, c.body, nil)
		f.wantRefused(t, before, code, body, c.code, c.field)
	}
}

func TestAdminAPISegments(t *testing.T) {
	f := newAdminFixture(t)
	f.noReview(t)
	snap := f.snap(t)
	var maxID int64
	for _, sg := range snap.Segments {
		maxID = max(maxID, sg.ID)
	}
	before := f.head(t)
	type segment struct {
		ID          int64
		Name        string
		Description *string
		Revision    string
		Rules       []struct {
			Type       string
			Rules      []struct{ Type string }
			Conditions []struct {
				Property *string
				Value    *string
			}
		}
	}
	var sg segment
	code, body := f.call(t, http.MethodPost, projectPath+"/segments/", adminToken, `{"name": "gold", "project": 1, "rules": [{"type": "ALL", "rules": [
		{"type": "ANY", "conditions": [{"operator": "EQUAL", "property": "tier", "value": "gold", "id": null, "delete": false, "description": null},
		{"operator": "GREATER_THAN", "property": "spend", "value": 90}]}], "conditions": []}]}`, &sg)
	if code != 201 || sg.ID != maxID+1 || sg.Name != "gold" || len(sg.Rules) != 1 || len(sg.Rules[0].Rules) != 1 {
		t.Fatalf("create: %d %s", code, body)
	}
	f.wantCommit(t, before, sg.Revision, adminAuthor, "gold", "segments/gold.json")
	got := f.snap(t).Segments["gold"]
	if c := got.Rules[0].Rules[0].Conditions; len(c) != 2 || c[0].Property != "tier" || c[1].Value != "90" {
		t.Errorf("the segment's file: %+v", got.Rules)
	}
	var seg segment
	if code, body = f.call(t, http.MethodGet, fmt.Sprintf("%s/segments/%d/", projectPath, sg.ID), adminToken, "", &seg); code != 200 || seg.Name != "gold" {
		t.Errorf("served right after the answer: %d %s", code, body)
	}

	before = f.head(t)
	code, body = f.call(t, http.MethodPatch, fmt.Sprintf("%s/segments/%d/", projectPath, sg.ID), adminToken, `{"description": "Gold tier"}`, &sg)
	if code != 200 || sg.Description == nil || *sg.Description != "Gold tier" || len(sg.Rules) != 1 {
		t.Fatalf("patch: %d %s", code, body)
	}
	f.wantCommit(t, before, sg.Revision, adminAuthor, "gold", "segments/gold.json")

	before = f.head(t)
	gold := fmt.Sprintf("/segments/%d/", sg.ID)
	for _, c := range []struct {
		method, path, token, body string
		code                      int
		field                     string
	}{
		{"POST", "/segments/", adminToken, `{"name": "../x", "rules": [{"type": "ALL", "conditions": [{"operator": "IS_SET", "property": "a"}]}]}`, 400, "name"},
		{"POST", "/segments/", adminToken, `{"name": "gold", "rules": [{"type": "ALL", "conditions": [{"operator": "IS_SET", "property": "a"}]}]}`, 400, "name"},
		{"POST", "/segments/", adminToken, `{"name": "y", "rules": []}`, 400, "rules"},
		{"POST", "/segments/", adminToken, `{"name": "y", "rules": [{"type": "ALL", "conditions": [{"operator": "NEARLY", "property": "a", "value": "b"}]}]}`, 400, "conditions/0/operator"},
		{"POST", "/segments/", adminToken, `{"name": "y", "rules": [{"type": "ALL", "conditions": [{"property": "a"}]}]}`, 400, "rules[0].conditions[0].operator"},
		{"POST", "/segments/", "staging-writer-secret", `{"name": "y", "rules": [{"type": "ALL"}]}`, 403, ""},
		{"PUT", gold, adminToken, `{"name": "gold"}`, 400, "rules"},
		{"PATCH", gold, adminToken, `{"name": "platinum"}`, 400, "name"},
		{"PATCH", "/segments/999999/", adminToken, `{"description": "x"}`, 404, ""},
		{"DELETE", "/segments/999999/", adminToken, ``, 404, ""},
	} {
		code, body := f.call(t, c.method, projectPath+c.path, c.token, c.body, nil)
		t.Run(c.method+c.body, func(t *testing.T) { f.wantRefused(t, before, code, body, c.code, c.field) })
	}

	// Deleting a segment removes its overrides (Flagsmith's cascade).
	staff := snap.Segments["internal_staff"]
	code, body = f.call(t, http.MethodDelete, fmt.Sprintf("%s/segments/%d/", projectPath, staff.ID), adminToken, "", nil)
	if code != 204 {
		t.Fatalf("delete: %d %s", code, body)
	}
	var files []string
	for _, e := range snap.Environments {
		for k, fs := range e.Features {
			for _, o := range fs.SegmentOverrides {
				if o.Segment == "internal_staff" {
					files = append(files, "environments/"+e.Key+"/features/"+k+".json")
				}
			}
		}
	}
	if len(files) == 0 {
		t.Fatal("the template has no override for internal_staff")
	}
	f.wantCommit(t, before, f.head(t), adminAuthor, "internal_staff", append(files, "segments/internal_staff.json")...)
}

func TestAdminAPISegmentOverrides(t *testing.T) {
	f := newAdminFixture(t)
	snap := f.snap(t)
	staging, dark, beta := snap.Environments["staging"], snap.Features["dark_mode"], snap.Segments["beta_users"]
	list := func(t *testing.T) []struct {
		ID       int64
		Segment  int64
		Priority int
	} {
		t.Helper()
		var page struct {
			Results []struct {
				ID       int64
				Segment  int64
				Priority int
			}
		}
		if code, body := f.call(t, http.MethodGet, fmt.Sprintf("/api/v1/features/feature-segments/?environment=%d&feature=%d", staging.ID, dark.ID), adminToken, "", &page); code != 200 {
			t.Fatalf("feature segments: %d %s", code, body)
		}
		return page.Results
	}
	first := list(t)
	if want := staging.Features["dark_mode"].SegmentOverrides; len(first) != len(want) || first[0].Segment != snap.Segments[want[0].Segment].ID || first[0].Priority != want[0].Priority {
		t.Fatalf("feature segments: %+v, want %+v", first, want)
	}

	// A new override at the top: the one there moves down.
	before := f.head(t)
	var created struct {
		ID                int64
		Enabled           bool
		FeatureStateValue struct {
			Type        string
			StringValue *string `json:"string_value"`
		} `json:"feature_state_value"`
		FeatureSegment struct {
			ID       int64
			Priority int
		} `json:"feature_segment"`
		Revision string
	}
	code, body := f.call(t, http.MethodPost, fmt.Sprintf("/api/v1/environments/%s/features/%d/create-segment-override/", stagingKey, dark.ID), adminToken,
		fmt.Sprintf(`{"enabled": true, "feature_state_value": {"type": "unicode", "string_value": "beta"}, "feature_segment": {"segment": %d, "priority": %d}}`, beta.ID, first[0].Priority), &created)
	if code != 201 || !created.Enabled || created.FeatureStateValue.StringValue == nil || *created.FeatureStateValue.StringValue != "beta" || created.FeatureSegment.Priority != first[0].Priority {
		t.Fatalf("create-segment-override: %d %s", code, body)
	}
	f.wantCommit(t, before, created.Revision, adminAuthor, "staging: dark_mode segment beta_users", "environments/staging/features/dark_mode.json")
	now := list(t)
	if len(now) != 2 || now[0].ID != created.FeatureSegment.ID || now[1].Segment != first[0].Segment || now[1].Priority != first[0].Priority+1 {
		t.Fatalf("served right after the answer: %+v", now)
	}

	// Swap them back.
	before = f.head(t)
	var swapped []struct {
		ID       int64
		Priority int
	}
	code, body = f.call(t, http.MethodPost, "/api/v1/features/feature-segments/update-priorities/", adminToken,
		fmt.Sprintf(`[{"id": %d, "priority": 5}, {"id": %d, "priority": 1}]`, now[0].ID, now[1].ID), &swapped)
	if code != 200 || len(swapped) != 2 || swapped[0].ID != now[1].ID || swapped[0].Priority != 1 || swapped[1].ID != now[0].ID || swapped[1].Priority != 5 {
		t.Fatalf("update-priorities: %d %s", code, body)
	}
	f.wantCommit(t, before, f.head(t), adminAuthor, "dark_mode", "environments/staging/features/dark_mode.json")

	before = f.head(t)
	mobile := snap.Segments["mobile_app_users"]
	var prod struct{ Results []struct{ ID int64 } }
	if code, body := f.call(t, http.MethodGet, fmt.Sprintf("/api/v1/features/feature-segments/?environment=%d&feature=%d",
		snap.Environments["production"].ID, snap.Features["ai_assistant"].ID), adminToken, "", &prod); code != 200 || len(prod.Results) == 0 {
		t.Fatalf("production feature segments: %d %s", code, body)
	}
	prodOverride := prod.Results[0].ID
	for _, c := range []struct {
		method, path, token, body string
		code                      int
		field                     string
	}{
		{"POST", "/api/v1/features/feature-segments/", adminToken, fmt.Sprintf(`{"feature": %d, "segment": %d, "environment": %d}`, dark.ID, beta.ID, staging.ID), 400, "segment"},
		{"POST", "/api/v1/features/feature-segments/", adminToken, fmt.Sprintf(`{"feature": %d, "segment": 999999, "environment": %d}`, dark.ID, staging.ID), 400, "segment"},
		{"POST", "/api/v1/features/feature-segments/", adminToken, fmt.Sprintf(`{"feature": %d, "segment": %d}`, dark.ID, beta.ID), 400, "environment"},
		{"POST", "/api/v1/features/feature-segments/update-priorities/", adminToken, fmt.Sprintf(`[{"id": %d, "priority": 2}, {"id": %d, "priority": 2}]`, now[0].ID, now[1].ID), 400, "[1].priority"},
		{"POST", "/api/v1/features/feature-segments/update-priorities/", adminToken, `[{"id": 12345, "priority": 2}]`, 400, "[0].id"},
		{"POST", "/api/v1/features/feature-segments/update-priorities/", "reader-secret", fmt.Sprintf(`[{"id": %d, "priority": 2}]`, now[0].ID), 403, ""},
		// A staging token naming a production override is refused for
		// production (403), first or after one of its own.
		{"POST", "/api/v1/features/feature-segments/update-priorities/", "staging-writer-secret", fmt.Sprintf(`[{"id": %d, "priority": 2}]`, prodOverride), 403, ""},
		{"POST", "/api/v1/features/feature-segments/update-priorities/", "staging-writer-secret", fmt.Sprintf(`[{"id": %d, "priority": 2}, {"id": %d, "priority": 3}]`, now[0].ID, prodOverride), 403, ""},
		{"POST", fmt.Sprintf("/api/v1/environments/staging/features/%d/create-segment-override/", snap.Features["api_rate_limit"].ID), adminToken,
			fmt.Sprintf(`{"enabled": true, "feature_state_value": {"type": "unicode", "string_value": "many"}, "feature_segment": {"segment": %d}}`, mobile.ID), 400, "feature_state_value"},
		{"POST", fmt.Sprintf("/api/v1/environments/staging/features/%d/create-segment-override/", dark.ID), adminToken,
			fmt.Sprintf(`{"enabled": true, "feature_state_value": {"type": "unicode"}, "feature_segment": {"segment": %d}}`, beta.ID), 400, "feature_segment.segment"},
		{"POST", "/api/v1/environments/staging/features/999999/create-segment-override/", adminToken, `{}`, 404, ""},
		{"POST", fmt.Sprintf("/api/v1/environments/development/features/%d/create-segment-override/", dark.ID), "staging-writer-secret",
			fmt.Sprintf(`{"enabled": true, "feature_state_value": {"type": "unicode"}, "feature_segment": {"segment": %d}}`, beta.ID), 403, ""},
		{"DELETE", "/api/v1/features/feature-segments/12345/", adminToken, ``, 404, ""},
		{"GET", "/api/v1/features/feature-segments/update-priorities/", adminToken, ``, 404, ""},
	} {
		code, body := f.call(t, c.method, c.path, c.token, c.body, nil)
		t.Run(c.method+c.path+c.body, func(t *testing.T) { f.wantRefused(t, before, code, body, c.code, c.field) })
	}

	// A new feature segment goes last, disabled; then it is deleted.
	var fseg struct {
		ID       int64
		Priority int
		Revision string
	}
	code, body = f.call(t, http.MethodPost, "/api/v1/features/feature-segments/", "staging-writer-secret",
		fmt.Sprintf(`{"feature": %d, "segment": %d, "environment": %d}`, dark.ID, snap.Segments["new_users"].ID, staging.ID), &fseg)
	if code != 201 || fseg.Priority != 6 {
		t.Fatalf("feature segment: %d %s", code, body)
	}
	f.wantCommit(t, before, fseg.Revision, "staging-writer <sw@acme.example>", "new_users", "environments/staging/features/dark_mode.json")
	before = f.head(t)
	if code, body = f.call(t, http.MethodDelete, fmt.Sprintf("/api/v1/features/feature-segments/%d/", fseg.ID), adminToken, "", nil); code != 204 {
		t.Fatalf("delete: %d %s", code, body)
	}
	f.wantCommit(t, before, f.head(t), adminAuthor, "new_users", "environments/staging/features/dark_mode.json")
	if code, _ = f.call(t, http.MethodGet, fmt.Sprintf("/api/v1/features/feature-segments/%d/", fseg.ID), adminToken, "", nil); code != 404 {
		t.Errorf("a deleted feature segment: %d, want 404", code)
	}
	if got := list(t); len(got) != 2 {
		t.Errorf("feature segments after the delete: %+v", got)
	}
}
