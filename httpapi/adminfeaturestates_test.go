package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
)

// The feature states of /api/v1/features/featurestates/ and the writes of
// feature segments, over HTTP against the template repository, with real
// commits.

// nestedState is a feature state with Flagsmith's nested value.
type nestedState struct {
	ID                int64
	Feature           int64
	Environment       int64
	FeatureSegment    *int64 `json:"feature_segment"`
	Enabled           bool
	FeatureStateValue struct {
		Type         string
		StringValue  *string `json:"string_value"`
		IntegerValue *int64  `json:"integer_value"`
		BooleanValue *bool   `json:"boolean_value"`
	} `json:"feature_state_value"`
	MV []struct {
		Option  int64   `json:"multivariate_feature_option"`
		Percent float64 `json:"percentage_allocation"`
	} `json:"multivariate_feature_state_values"`
	Revision string
}

// value is the state's value as a Go value (nil for null).
func (s nestedState) value() any {
	v := s.FeatureStateValue
	switch {
	case v.Type == "unicode" && v.StringValue != nil:
		return *v.StringValue
	case v.Type == "int" && v.IntegerValue != nil:
		return *v.IntegerValue
	case v.Type == "bool" && v.BooleanValue != nil:
		return *v.BooleanValue
	}
	return nil
}

type statePage struct {
	Count   int
	Next    *string
	Results []nestedState
}

// states lists /api/v1/features/featurestates/ with query.
func (f *adminFixture) states(t *testing.T, query string) statePage {
	t.Helper()
	var page statePage
	if code, body := f.call(t, http.MethodGet, "/api/v1/features/featurestates/?"+query, adminToken, "", &page); code != 200 {
		t.Fatalf("feature states ?%s: %d %s", query, code, body)
	}
	return page
}

// featureSegmentID returns the feature segment id of the override of
// feature for segment in environment, as feature-segments lists it.
func (f *adminFixture) featureSegmentID(t *testing.T, e *flagrepo.Environment, feat *flagrepo.Feature, sg *flagrepo.Segment) int64 {
	t.Helper()
	var page struct {
		Results []struct{ ID, Segment int64 }
	}
	if code, body := f.call(t, http.MethodGet, fmt.Sprintf("/api/v1/features/feature-segments/?environment=%d&feature=%d", e.ID, feat.ID), adminToken, "", &page); code != 200 {
		t.Fatalf("feature segments: %d %s", code, body)
	}
	for _, fs := range page.Results {
		if fs.Segment == sg.ID {
			return fs.ID
		}
	}
	t.Fatalf("no feature segment of %s for %s in %s: %+v", feat.Key, sg.Key, e.Key, page.Results)
	return 0
}

// overrideOf returns the override of feature for segment in env of snap.
func overrideOf(t *testing.T, snap *flagrepo.Snapshot, env, feature, segment string) flagrepo.SegmentOverride {
	t.Helper()
	if fs := snap.Environments[env].Features[feature]; fs != nil {
		for _, o := range fs.SegmentOverrides {
			if o.Segment == segment {
				return o
			}
		}
	}
	t.Fatalf("%s has no override of %s for %s", env, feature, segment)
	return flagrepo.SegmentOverride{}
}

func TestAdminAPIAllFeatureStates(t *testing.T) {
	f := newAdminFixture(t)
	snap := f.snap(t)
	staging, checkout, staff := snap.Environments["staging"], snap.Features["new_checkout"], snap.Segments["internal_staff"]
	override := overrideOf(t, snap, "staging", "new_checkout", "internal_staff")
	fseg := f.featureSegmentID(t, staging, checkout, staff)

	page := f.states(t, fmt.Sprintf("environment=%d&feature=%d", staging.ID, checkout.ID))
	if page.Count != 1+len(staging.Features["new_checkout"].SegmentOverrides) || len(page.Results) != page.Count {
		t.Fatalf("new_checkout in staging: %+v", page)
	}
	env, ov := page.Results[0], page.Results[1]
	res := staging.Resolve(checkout)
	if env.ID != checkout.ID || env.FeatureSegment != nil || env.Environment != staging.ID || env.Enabled != res.Enabled || env.value() != res.Value || len(env.MV) != len(res.Weights) {
		t.Errorf("the environment's state: %+v, want %+v", env, res)
	}
	if ov.FeatureSegment == nil || *ov.FeatureSegment != fseg || ov.Feature != checkout.ID || ov.Environment != staging.ID ||
		ov.Enabled != override.Enabled || ov.value() != override.Value.Value || ov.FeatureStateValue.Type != "unicode" {
		t.Errorf("the override's state: %+v, want %+v with feature segment %d", ov, override, fseg)
	}
	if ov.ID < 1<<52 || ov.ID >= 1<<53 {
		t.Errorf("the override state's id %d is not in [2^52, 2^53)", ov.ID)
	}
	for _, feat := range snap.Features {
		if feat.ID == ov.ID {
			t.Errorf("the override state's id is feature %s's", feat.Key)
		}
	}

	// The whole environment: each feature's state, then its overrides', 10 a page.
	want := 0
	for k := range snap.Features {
		want++
		if fs := staging.Features[k]; fs != nil {
			want += len(fs.SegmentOverrides)
		}
	}
	page = f.states(t, fmt.Sprintf("environment=%d", staging.ID))
	if page.Count != want || len(page.Results) != min(want, defaultPageSize) || (want > defaultPageSize) != (page.Next != nil) {
		t.Errorf("staging: count %d, %d results, next %v; want count %d", page.Count, len(page.Results), page.Next, want)
	}
	seen := map[int64]bool{}
	for p := 1; (p-1)*defaultPageSize < want; p++ {
		for _, s := range f.states(t, fmt.Sprintf("environment=%d&page=%d", staging.ID, p)).Results {
			if seen[s.ID] {
				t.Errorf("feature state id %d listed twice", s.ID)
			}
			seen[s.ID] = true
		}
	}
	if len(seen) != want {
		t.Errorf("%d distinct ids over the pages, want %d", len(seen), want)
	}

	// By feature segment: that override's state only.
	if page = f.states(t, fmt.Sprintf("environment=%d&feature_segment=%d", staging.ID, fseg)); page.Count != 1 || page.Results[0].ID != ov.ID {
		t.Errorf("?feature_segment=%d: %+v", fseg, page)
	}

	for _, c := range []struct {
		query, token string
		code         int
		field        string
	}{
		{"", adminToken, 400, "environment"},
		{"environment=abc", adminToken, 400, "environment"},
		{"environment=999999", adminToken, 404, ""},
		{fmt.Sprintf("environment=%d&feature=x", staging.ID), adminToken, 400, "feature"},
		{fmt.Sprintf("environment=%d", snap.Environments["production"].ID), "staging-reader-secret", 403, ""},
		{fmt.Sprintf("environment=%d", staging.ID), "", 401, ""},
	} {
		code, body := f.call(t, http.MethodGet, "/api/v1/features/featurestates/?"+c.query, c.token, "", nil)
		var e struct{ Detail, Field string }
		if json.Unmarshal(body, &e); code != c.code || e.Detail == "" || c.field != "" && e.Field != c.field {
			t.Errorf("?%s: %d %s, want %d naming %q", c.query, code, body, c.code, c.field)
		}
	}
}

func TestAdminAPIFeatureStateWrites(t *testing.T) {
	f := newAdminFixture(t)
	snap := f.snap(t)
	staging, prod := snap.Environments["staging"], snap.Environments["production"]
	checkout, dark, staff := snap.Features["new_checkout"], snap.Features["dark_mode"], snap.Segments["internal_staff"]
	one, express := checkout.Variant("one_page"), checkout.Variant("express")
	fseg := f.featureSegmentID(t, staging, checkout, staff)
	var ovID int64
	for _, s := range f.states(t, fmt.Sprintf("environment=%d&feature_segment=%d", staging.ID, fseg)).Results {
		ovID = s.ID
	}
	path := func(id int64) string { return fmt.Sprintf("/api/v1/features/featurestates/%d/", id) }

	// An override's value and state, by a token limited to staging.
	before := f.head(t)
	var got nestedState
	code, body := f.call(t, http.MethodPatch, path(ovID), "staging-writer-secret", `{"feature_state_value": {"type": "unicode", "string_value": "one-page"}, "enabled": false}`, &got)
	if code != 200 || got.ID != ovID || got.value() != "one-page" || got.Enabled || got.FeatureSegment == nil || *got.FeatureSegment != fseg {
		t.Fatalf("patch the override's state: %d %s", code, body)
	}
	f.wantCommit(t, before, got.Revision, "staging-writer <sw@acme.example>", "staging: new_checkout segment internal_staff", "environments/staging/features/new_checkout.json")
	if o := overrideOf(t, f.snap(t), "staging", "new_checkout", "internal_staff"); o.Enabled || o.Value.Value != "one-page" || o.Priority != overrideOf(t, snap, "staging", "new_checkout", "internal_staff").Priority {
		t.Errorf("the override in the repository: %+v", o)
	}
	if page := f.states(t, fmt.Sprintf("environment=%d&feature_segment=%d", staging.ID, fseg)); page.Count != 1 || page.Results[0].ID != ovID || page.Results[0].value() != "one-page" {
		t.Errorf("served right after the answer: %+v", page)
	}

	// The dashboard's PUT of the whole object it read, with one change.
	var read struct{ Results []map[string]any }
	f.call(t, http.MethodGet, fmt.Sprintf("/api/v1/features/featurestates/?environment=%d&feature_segment=%d", staging.ID, fseg), adminToken, "", &read)
	whole := read.Results[0]
	whole["enabled"] = true
	put, _ := json.Marshal(whole)
	before = f.head(t)
	if code, body = f.call(t, http.MethodPut, path(ovID), adminToken, string(put), &got); code != 200 || !got.Enabled || got.value() != "one-page" {
		t.Fatalf("put the whole state back: %d %s", code, body)
	}
	f.wantCommit(t, before, got.Revision, adminAuthor, "new_checkout segment internal_staff", "environments/staging/features/new_checkout.json")

	// The override's split: options not sent weigh 0 (it had none).
	before = f.head(t)
	code, body = f.call(t, http.MethodPatch, path(ovID), adminToken, fmt.Sprintf(`{"multivariate_feature_state_values": [{"multivariate_feature_option": %d, "percentage_allocation": 30}]}`, one.ID), &got)
	if code != 200 || len(got.MV) != 2 || got.MV[0].Option != one.ID || got.MV[0].Percent != 30 || got.MV[1].Option != express.ID || got.MV[1].Percent != 0 {
		t.Fatalf("the override's weights: %d %s", code, body)
	}
	f.wantCommit(t, before, got.Revision, adminAuthor, "weights", "environments/staging/features/new_checkout.json")
	if o := overrideOf(t, f.snap(t), "staging", "new_checkout", "internal_staff"); o.Weights["one_page"] != 30 {
		t.Errorf("the override's weights in the repository: %v", o.Weights)
	}

	// An environment's state: the feature's id and the environment in the body.
	before = f.head(t)
	code, body = f.call(t, http.MethodPatch, path(checkout.ID), adminToken, fmt.Sprintf(`{"environment": %d, "feature_state_value": {"type": "unicode", "string_value": "express"}, "feature_segment": null}`, staging.ID), &got)
	if code != 200 || got.ID != checkout.ID || got.FeatureSegment != nil || got.value() != "express" || got.Environment != staging.ID {
		t.Fatalf("patch the environment's state: %d %s", code, body)
	}
	f.wantCommit(t, before, got.Revision, adminAuthor, `staging: new_checkout value "express"`, "environments/staging/features/new_checkout.json")
	if v := f.snap(t).Environments["staging"].Resolve(f.snap(t).Features["new_checkout"]).Value; v != "express" {
		t.Errorf("staging's value in the repository: %v", v)
	}

	// The older pair: a feature segment (disabled, last), then its state.
	beta := snap.Segments["beta_users"]
	var created struct{ ID int64 }
	if code, body = f.call(t, http.MethodPost, "/api/v1/features/feature-segments/", adminToken, fmt.Sprintf(`{"feature": %d, "segment": %d, "environment": %d}`, checkout.ID, beta.ID, staging.ID), &created); code != 201 {
		t.Fatalf("feature segment: %d %s", code, body)
	}
	before = f.head(t)
	code, body = f.call(t, http.MethodPost, "/api/v1/features/featurestates/", adminToken, fmt.Sprintf(`{"feature": %d, "environment": %d, "feature_segment": %d, "enabled": true,
		"feature_state_value": {"type": "unicode", "string_value": "express", "integer_value": null, "boolean_value": null}}`, checkout.ID, staging.ID, created.ID), &got)
	if code != 201 || got.FeatureSegment == nil || *got.FeatureSegment != created.ID || !got.Enabled || got.value() != "express" || got.ID < 1<<52 || got.ID == ovID {
		t.Fatalf("create the override's state: %d %s", code, body)
	}
	f.wantCommit(t, before, got.Revision, adminAuthor, "new_checkout segment beta_users", "environments/staging/features/new_checkout.json")
	if o := overrideOf(t, f.snap(t), "staging", "new_checkout", "beta_users"); !o.Enabled || o.Value.Value != "express" {
		t.Errorf("the new override in the repository: %+v", o)
	}

	// Production requires review: a proposal branch, the served branch unchanged.
	prodFseg := f.featureSegmentID(t, prod, dark, snap.Segments["mobile_app_users"])
	prodState := f.states(t, fmt.Sprintf("environment=%d&feature_segment=%d", prod.ID, prodFseg)).Results[0]
	before = f.head(t)
	var prop struct{ Branch, Revision string }
	if code, body = f.call(t, http.MethodPatch, path(prodState.ID), adminToken, `{"enabled": false}`, &prop); code != 202 || !strings.HasPrefix(prop.Branch, "gitflags/production/") {
		t.Fatalf("production: %d %s", code, body)
	}
	if f.head(t) != before || f.git(t, "rev-parse", "refs/heads/"+prop.Branch) != prop.Revision {
		t.Error("the proposal moved the served branch, or its branch is not at its revision")
	}

	before = f.head(t)
	for _, c := range []struct {
		method, path, token, body string
		code                      int
		field                     string
	}{
		{"PATCH", path(ovID), adminToken, `{"feature_state_value": {"type": "int", "integer_value": 5}}`, 400, "feature_state_value"},
		{"PATCH", path(ovID), adminToken, `{"feature_state_value": {"type": "int"}}`, 400, "feature_state_value.integer_value"},
		{"PATCH", path(ovID), adminToken, `{"feature_state_value": {"type": "float", "string_value": "1.5"}}`, 400, "feature_state_value.type"},
		{"PATCH", path(ovID), adminToken, `{"feature_state_value": null}`, 400, "feature_state_value"},
		{"PATCH", path(ovID), adminToken, `{"enabled": null}`, 400, "enabled"},
		{"PATCH", path(ovID), adminToken, fmt.Sprintf(`{"environment": %d}`, snap.Environments["development"].ID), 400, "environment"},
		{"PATCH", path(ovID), adminToken, fmt.Sprintf(`{"feature": %d}`, dark.ID), 400, "feature"},
		{"PATCH", path(ovID), adminToken, `{"feature_segment": null}`, 400, "feature_segment"},
		{"PATCH", path(ovID), adminToken, `{"identity": 4, "enabled": true}`, 400, "identity"},
		{"PATCH", path(ovID), adminToken, `{"multivariate_feature_state_values": [{"multivariate_feature_option": 99, "percentage_allocation": 1}]}`, 400, "multivariate_feature_option"},
		{"PATCH", path(ovID), adminToken, fmt.Sprintf(`{"multivariate_feature_state_values": [{"multivariate_feature_option": %d, "percentage_allocation": 90}, {"multivariate_feature_option": %d, "percentage_allocation": 20}]}`, one.ID, express.ID), 400, "multivariate_feature_state_values"},
		{"PATCH", path(ovID), adminToken, `{"enabled": true, "colour": "red"}`, 400, "colour"},
		{"PATCH", path(ovID), adminToken, `{"enabled": `, 400, ""},
		{"PUT", path(ovID), adminToken, `{"enabled": true}`, 400, "feature"},
		{"PUT", path(ovID), adminToken, fmt.Sprintf(`{"feature": %d, "enabled": true}`, checkout.ID), 400, "environment"},
		{"PATCH", path(checkout.ID), adminToken, `{"enabled": false}`, 400, "environment"},
		{"PATCH", path(checkout.ID), adminToken, `{"environment": 999999, "enabled": false}`, 400, "environment"},
		{"PATCH", path(checkout.ID), adminToken, fmt.Sprintf(`{"environment": %d, "feature_segment": %d}`, staging.ID, fseg), 400, "feature_segment"},
		{"PATCH", path(12345), adminToken, `{"enabled": true}`, 404, ""},
		{"PATCH", "/api/v1/features/featurestates/abc/", adminToken, `{"enabled": true}`, 404, ""},
		{"PATCH", path(prodState.ID), "staging-writer-secret", `{"enabled": true}`, 403, ""},
		{"PATCH", path(checkout.ID), "staging-writer-secret", fmt.Sprintf(`{"environment": %d, "enabled": true}`, prod.ID), 403, ""},
		{"PATCH", path(ovID), "reader-secret", `{"enabled": true}`, 403, ""},
		{"POST", "/api/v1/features/featurestates/", adminToken, fmt.Sprintf(`{"feature": %d, "environment": %d, "enabled": true}`, checkout.ID, staging.ID), 400, "feature_segment"},
		{"POST", "/api/v1/features/featurestates/", adminToken, fmt.Sprintf(`{"feature": %d, "environment": %d, "feature_segment": %d, "enabled": true}`, dark.ID, staging.ID, prodFseg), 400, "feature_segment"},
		{"POST", "/api/v1/features/featurestates/", adminToken, fmt.Sprintf(`{"feature": %d, "environment": %d, "feature_segment": %d}`, dark.ID, staging.ID, fseg), 400, "feature"},
		{"POST", "/api/v1/features/featurestates/", adminToken, fmt.Sprintf(`{"feature": %d, "environment": %d, "feature_segment": 12345}`, checkout.ID, staging.ID), 400, "feature_segment"},
		{"POST", "/api/v1/features/featurestates/", adminToken, fmt.Sprintf(`{"environment": %d, "feature_segment": %d}`, staging.ID, fseg), 400, "feature"},
		{"POST", "/api/v1/features/featurestates/", adminToken, fmt.Sprintf(`{"feature": %d, "feature_segment": %d}`, checkout.ID, fseg), 400, "environment"},
		{"POST", "/api/v1/features/featurestates/", "staging-writer-secret", fmt.Sprintf(`{"feature": %d, "environment": %d, "feature_segment": %d}`, dark.ID, prod.ID, prodFseg), 403, ""},
	} {
		code, body := f.call(t, c.method, c.path, c.token, c.body, nil)
		t.Run(c.method+c.path+c.body, func(t *testing.T) { f.wantRefused(t, before, code, body, c.code, c.field) })
	}
}

func TestAdminAPIFeatureSegmentUpdate(t *testing.T) {
	f := newAdminFixture(t)
	snap := f.snap(t)
	staging, dark := snap.Environments["staging"], snap.Features["dark_mode"]
	mobile, beta := snap.Segments["mobile_app_users"], snap.Segments["beta_users"]
	type fseg struct {
		ID, Feature, Segment, Environment int64
		Priority                          int
		Revision                          string
	}
	var added fseg
	if code, body := f.call(t, http.MethodPost, "/api/v1/features/feature-segments/", adminToken, fmt.Sprintf(`{"feature": %d, "segment": %d, "environment": %d}`, dark.ID, beta.ID, staging.ID), &added); code != 201 {
		t.Fatalf("feature segment: %d %s", code, body)
	}
	first := overrideOf(t, snap, "staging", "dark_mode", "mobile_app_users").Priority
	if added.Priority <= first {
		t.Fatalf("the new override is at %d, not after %d", added.Priority, first)
	}
	path := fmt.Sprintf("/api/v1/features/feature-segments/%d/", added.ID)

	// To the top: the holder moves down.
	before := f.head(t)
	var moved fseg
	code, body := f.call(t, http.MethodPatch, path, adminToken, fmt.Sprintf(`{"priority": %d}`, first), &moved)
	if code != 200 || moved.ID != added.ID || moved.Priority != first || moved.Segment != beta.ID || moved.Feature != dark.ID || moved.Environment != staging.ID {
		t.Fatalf("patch priority: %d %s", code, body)
	}
	f.wantCommit(t, before, moved.Revision, adminAuthor, "staging: dark_mode segment beta_users", "environments/staging/features/dark_mode.json")
	now := f.snap(t)
	if b, m := overrideOf(t, now, "staging", "dark_mode", "beta_users"), overrideOf(t, now, "staging", "dark_mode", "mobile_app_users"); b.Priority != first || m.Priority != first+1 {
		t.Errorf("priorities in the repository: beta_users %d, mobile_app_users %d", b.Priority, m.Priority)
	}
	var list struct{ Results []fseg }
	f.call(t, http.MethodGet, fmt.Sprintf("/api/v1/features/feature-segments/?environment=%d&feature=%d", staging.ID, dark.ID), adminToken, "", &list)
	if len(list.Results) != 2 || list.Results[0].ID != added.ID || list.Results[1].Segment != mobile.ID {
		t.Errorf("served right after the answer: %+v", list.Results)
	}

	// PUT of the item as listed changes nothing: no commit.
	var item map[string]any
	f.call(t, http.MethodGet, path, adminToken, "", &item)
	whole, _ := json.Marshal(item)
	before = f.head(t)
	if code, body = f.call(t, http.MethodPut, path, adminToken, string(whole), &moved); code != 200 || moved.Revision != before || moved.Priority != first {
		t.Fatalf("put unchanged: %d %s", code, body)
	}
	if head := f.head(t); head != before {
		t.Errorf("an unchanged PUT committed %s", head)
	}

	prodFseg := f.featureSegmentID(t, snap.Environments["production"], dark, mobile)
	for _, c := range []struct {
		method, path, token, body string
		code                      int
		field                     string
	}{
		{"PUT", path, adminToken, `{"priority": 3}`, 400, "feature"},
		{"PUT", path, adminToken, fmt.Sprintf(`{"feature": %d, "segment": %d, "priority": 3}`, dark.ID, beta.ID), 400, "environment"},
		{"PATCH", path, adminToken, fmt.Sprintf(`{"segment": %d}`, mobile.ID), 400, "segment"},
		{"PATCH", path, adminToken, fmt.Sprintf(`{"environment": %d}`, snap.Environments["development"].ID), 400, "environment"},
		{"PATCH", path, adminToken, fmt.Sprintf(`{"feature": %d}`, snap.Features["new_checkout"].ID), 400, "feature"},
		{"PATCH", path, adminToken, `{"priority": null}`, 400, "priority"},
		{"PATCH", path, adminToken, `{"priority": -1}`, 400, "priority"},
		{"PATCH", path, adminToken, `{"priority": "top"}`, 400, "priority"},
		{"PATCH", "/api/v1/features/feature-segments/12345/", adminToken, `{"priority": 1}`, 404, ""},
		{"PATCH", fmt.Sprintf("/api/v1/features/feature-segments/%d/", prodFseg), "staging-writer-secret", `{"priority": 1}`, 403, ""},
		{"PATCH", path, "reader-secret", `{"priority": 1}`, 403, ""},
	} {
		code, body := f.call(t, c.method, c.path, c.token, c.body, nil)
		t.Run(c.method+c.body, func(t *testing.T) { f.wantRefused(t, before, code, body, c.code, c.field) })
	}
}

func TestAdminAPIEnvironmentStateMethods(t *testing.T) {
	f := newAdminFixture(t)
	snap := f.snap(t)
	limit := snap.Features["api_rate_limit"]
	before := f.head(t)
	for _, c := range []struct {
		method, path, body, allow, says string
	}{
		{http.MethodPost, "/api/v1/environments/staging/featurestates/", fmt.Sprintf(`{"feature": %d, "enabled": true}`, limit.ID), "GET", "already has one"},
		{http.MethodDelete, fmt.Sprintf("/api/v1/environments/%s/featurestates/%d/", stagingKey, limit.ID), "", "GET, PUT, PATCH", "every feature has a state in every environment"},
	} {
		req, _ := http.NewRequest(c.method, f.ts.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Api-Key "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Detail string }
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != c.allow || !strings.Contains(e.Detail, c.says) {
			t.Errorf("%s %s: %d, Allow %q, %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), e.Detail)
		}
		if code, _ := f.call(t, c.method, c.path, "", c.body, nil); code != 401 {
			t.Errorf("%s %s without a token: %d, want 401", c.method, c.path, code)
		}
	}
	if head := f.head(t); head != before {
		t.Errorf("HEAD moved to %s", head)
	}
	if code, _ := f.call(t, http.MethodGet, fmt.Sprintf("/api/v1/environments/staging/featurestates/%d/", limit.ID), adminToken, "", nil); code != 200 {
		t.Errorf("the state after DELETE: %d, want 200", code)
	}
}
