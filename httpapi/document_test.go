package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
)

// The environment document's shape, as SDKs read it.

type docFeature struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
}

type docMVOption struct {
	ID    int64 `json:"id"`
	Value any   `json:"value"`
}

type docMVValue struct {
	ID                   int64       `json:"id"`
	UUID                 string      `json:"mv_fs_value_uuid"`
	PercentageAllocation float64     `json:"percentage_allocation"`
	Option               docMVOption `json:"multivariate_feature_option"`
}

type docFeatureSegment struct {
	Priority int `json:"priority"`
}

type docFeatureState struct {
	Feature        docFeature         `json:"feature"`
	Enabled        bool               `json:"enabled"`
	DjangoID       int64              `json:"django_id"`
	UUID           string             `json:"featurestate_uuid"`
	Value          any                `json:"feature_state_value"`
	FeatureSegment *docFeatureSegment `json:"feature_segment"`
	MV             []docMVValue       `json:"multivariate_feature_state_values"`
}

type docCondition struct {
	Operator string  `json:"operator"`
	Property *string `json:"property_"`
	Value    string  `json:"value"`
}

type docRule struct {
	Type       string         `json:"type"`
	Rules      []docRule      `json:"rules"`
	Conditions []docCondition `json:"conditions"`
}

type docSegment struct {
	ID            int64             `json:"id"`
	Name          string            `json:"name"`
	Rules         []docRule         `json:"rules"`
	FeatureStates []docFeatureState `json:"feature_states"`
}

type docOrganisation struct {
	ID               int64  `json:"id"`
	Name             string `json:"name"`
	FeatureAnalytics bool   `json:"feature_analytics"`
	StopServingFlags bool   `json:"stop_serving_flags"`
	PersistTraitData bool   `json:"persist_trait_data"`
}

type docProject struct {
	ID                      int64           `json:"id"`
	Name                    string          `json:"name"`
	HideDisabledFlags       bool            `json:"hide_disabled_flags"`
	EnableRealtimeUpdates   bool            `json:"enable_realtime_updates"`
	ServerKeyOnlyFeatureIDs []int64         `json:"server_key_only_feature_ids"`
	Organisation            docOrganisation `json:"organisation"`
	Segments                []docSegment    `json:"segments"`
}

type docIdentityOverride struct {
	Identifier        string            `json:"identifier"`
	IdentityUUID      string            `json:"identity_uuid"`
	EnvironmentAPIKey string            `json:"environment_api_key"`
	CreatedDate       string            `json:"created_date"`
	IdentityFeatures  []docFeatureState `json:"identity_features"`
	IdentityTraits    []any             `json:"identity_traits"`
}

// docHead is the environment document's own fields.
type docHead struct {
	ID                                int64  `json:"id"`
	APIKey                            string `json:"api_key"`
	Name                              string `json:"name"`
	UpdatedAt                         string `json:"updated_at"`
	AllowClientTraits                 bool   `json:"allow_client_traits"`
	HideSensitiveData                 bool   `json:"hide_sensitive_data"`
	HideDisabledFlags                 bool   `json:"hide_disabled_flags"`
	UseIdentityCompositeKeyForHashing bool   `json:"use_identity_composite_key_for_hashing"`
	UseIdentityOverridesInLocalEval   bool   `json:"use_identity_overrides_in_local_eval"`
}

// environmentDocument is the whole document, as the tests decode it
// (package served writes it in pieces).
type environmentDocument struct {
	docHead
	Project           docProject            `json:"project"`
	FeatureStates     []docFeatureState     `json:"feature_states"`
	IdentityOverrides []docIdentityOverride `json:"identity_overrides"`
}

func (f *fsFixture) document(key string) (environmentDocument, []byte, http.Header) {
	f.t.Helper()
	code, data, h := f.do(http.MethodGet, "/api/v1/environment-document/", key, nil)
	if code != http.StatusOK {
		f.t.Fatalf("environment document: %d %s", code, data)
	}
	var doc environmentDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		f.t.Fatal(err)
	}
	return doc, data, h
}

func TestEnvironmentDocumentAuth(t *testing.T) {
	f := newFSFixture(t, "")
	for _, c := range []struct {
		key    string
		status int
	}{{"", 401}, {"nope", 401}, {"ser.unknown", 401}, {prodKey, 403}, {fsStagingKey, 403}, {fsProdServerKey, 200}, {fsStagingServerKey, 200}} {
		code, data, _ := f.do(http.MethodGet, "/api/v1/environment-document/", c.key, nil)
		var e struct {
			Detail *string `json:"detail"`
		}
		_ = json.Unmarshal(data, &e)
		if code != c.status || (code != 200 && e.Detail == nil) {
			t.Errorf("key %q: %d %s, want %d", c.key, code, data, c.status)
		}
	}
}

func TestEnvironmentDocumentShape(t *testing.T) {
	f := newFSFixture(t, "")
	doc, data, h := f.document(fsProdServerKey)
	snap := f.srv.Snapshot()

	// Every array is present, even empty.
	var raw map[string]any
	_ = json.Unmarshal(data, &raw)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if e == nil && !nullable[k] {
					t.Errorf("%s.%s is null", path, k)
				}
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range x {
				walk(path+"["+strconv.Itoa(i)+"]", e)
			}
		}
	}
	walk("$", raw)
	for _, k := range []string{"feature_states", "identity_overrides"} {
		if _, ok := raw[k].([]any); !ok {
			t.Errorf("%s is not an array", k)
		}
	}
	proj := raw["project"].(map[string]any)
	for _, k := range []string{"segments", "server_key_only_feature_ids"} {
		if _, ok := proj[k].([]any); !ok {
			t.Errorf("project.%s is not an array", k)
		}
	}
	if !strings.Contains(string(data), `"use_identity_composite_key_for_hashing":true`) {
		t.Error("use_identity_composite_key_for_hashing is not true")
	}
	if doc.APIKey != prodKey || doc.ID != 3 || doc.Name != "Production" || doc.Project.ID != 1 || doc.Project.Organisation.Name != "Acme" {
		t.Errorf("header fields: %+v", doc)
	}
	// updated_at and the header agree.
	at, err := time.Parse(time.RFC3339, doc.UpdatedAt)
	if err != nil || !at.Equal(fsFixtureTime.Truncate(time.Microsecond)) {
		t.Errorf("updated_at %q (%v)", doc.UpdatedAt, err)
	}
	hdr, _ := strconv.ParseFloat(h.Get("X-Flagsmith-Document-Updated-At"), 64)
	if d := hdr - float64(at.UnixMicro())/1e6; d > 1e-6 || d < -1e-6 {
		t.Errorf("header %s vs updated_at %s", h.Get("X-Flagsmith-Document-Updated-At"), doc.UpdatedAt)
	}
	// ETag revalidation.
	req, _ := http.NewRequest(http.MethodGet, f.ts.URL+"/api/v1/environment-document/", nil)
	req.Header.Set("X-Environment-Key", fsProdServerKey)
	req.Header.Set("If-None-Match", h.Get("ETag"))
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}

	// Ids: django_id = feature id everywhere; mv ids = variant ids.
	check := func(where string, fs docFeatureState) {
		feat := snap.Features[fs.Feature.Name]
		if feat == nil || fs.DjangoID != feat.ID || fs.Feature.ID != feat.ID || fs.UUID == "" || fs.MV == nil {
			t.Errorf("%s: feature state %+v", where, fs)
			return
		}
		for _, mv := range fs.MV {
			if v := feat.Variant(variantKeyByID(feat, mv.ID)); v == nil || mv.Option.ID != mv.ID || mv.UUID == "" {
				t.Errorf("%s: mv %+v", where, mv)
			}
		}
	}
	if len(doc.FeatureStates) != len(snap.Features) {
		t.Errorf("%d feature states, want %d", len(doc.FeatureStates), len(snap.Features))
	}
	for _, fs := range doc.FeatureStates {
		check("feature_states", fs)
		if fs.FeatureSegment != nil {
			t.Errorf("environment feature state with feature_segment: %+v", fs)
		}
	}
	if len(doc.Project.ServerKeyOnlyFeatureIDs) != 1 || doc.Project.ServerKeyOnlyFeatureIDs[0] != 1001 {
		t.Errorf("server_key_only_feature_ids %v", doc.Project.ServerKeyOnlyFeatureIDs)
	}
	var inText, sawOverride bool
	for _, s := range doc.Project.Segments {
		if snap.Segments[s.Name] == nil || snap.Segments[s.Name].ID != s.ID || s.Rules == nil || s.FeatureStates == nil {
			t.Errorf("segment %+v", s)
		}
		for _, fs := range s.FeatureStates {
			check("segment "+s.Name, fs)
			if fs.FeatureSegment == nil {
				t.Errorf("segment %s feature state without feature_segment", s.Name)
			}
			sawOverride = true
		}
		if s.Name == "premium_customers" {
			c := s.Rules[0].Conditions[0]
			inText = c.Operator == "IN" && c.Value == "pro,enterprise" && *c.Property == "plan"
		}
		if s.Name == "gradual_rollout_10pct" && s.Rules[0].Conditions[0].Property != nil {
			t.Error("PERCENTAGE_SPLIT without property: property_ should be null")
		}
	}
	if !inText || !sawOverride {
		t.Errorf("IN as comma text: %v; segment overrides: %v", inText, sawOverride)
	}
	found := false
	for _, io := range doc.IdentityOverrides {
		if io.IdentityFeatures == nil || io.EnvironmentAPIKey != prodKey || io.IdentityUUID == "" {
			t.Errorf("identity override %+v", io)
		}
		for _, fs := range io.IdentityFeatures {
			check("identity "+io.Identifier, fs)
			if io.Identifier == "partner-bulk-importer" && fs.Feature.Name == "api_rate_limit" && fs.Value == float64(20000) {
				found = true
			}
		}
	}
	if !found {
		t.Error("identity override of partner-bulk-importer missing")
	}

	// Stable: the same document after a reload.
	snap2, err := flagrepo.Load(flagrepo.Revision{SHA: "fedcba9876543210", Time: fsFixtureTime}, fsFixtureFiles(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Publish(snap2); err != nil {
		t.Fatal(err)
	}
	if _, data2, _ := f.document(fsProdServerKey); string(data2) != string(data) {
		t.Error("document changed across a reload of the same revision")
	}
}

// nullable lists the document fields that may be null.
var nullable = map[string]bool{"feature_state_value": true, "feature_segment": true, "property_": true, "value": true}

func variantKeyByID(f *flagrepo.Feature, id int64) string {
	for _, v := range f.Variants {
		if v.ID == id {
			return v.Key
		}
	}
	return ""
}

// TestDocumentAgreesWithServer maps the environment document to the
// evaluator the way the Node SDK 8.1.2 engine builds its evaluation context
// (flagsmith-engine/evaluation/evaluationContext/mappers.js: feature key =
// django_id, variant priority = mv id, segment key = segment id, override
// key = django_id, identity overrides as a segment of priority -Inf) and
// checks that local evaluation gives what the server answers.
func TestDocumentAgreesWithServer(t *testing.T) {
	f := newFSFixture(t, "")
	for _, key := range []string{fsProdServerKey, fsStagingServerKey} {
		doc, _, _ := f.document(key)
		model, err := evaluator.Compile(envFromDocument(&doc))
		if err != nil {
			t.Fatal(err)
		}
		for i, tr := range fsSampleIdentities(200) {
			id := fsIdentifierFor(i)
			r := f.identify(key, map[string]any{"identifier": id, "traits": tr, "transient": true})
			m := map[string]any{}
			for _, t := range tr {
				m[t["trait_key"].(string)] = t["trait_value"]
			}
			local := map[string]evaluator.Flag{}
			for _, fl := range model.AppendFlags(nil, &evaluator.Identity{Identifier: id, Traits: m}) {
				local[fl.Name] = fl
			}
			for _, got := range r.Flags {
				w, ok := local[got.Feature.Name]
				wv, _ := json.Marshal(w.Value)
				gv, _ := json.Marshal(got.Value)
				if !ok || got.Enabled != w.Enabled || string(gv) != string(wv) {
					t.Errorf("%s %s %s: server %v %s, local %v %s", key[:8], id, got.Feature.Name, got.Enabled, gv, w.Enabled, wv)
				}
			}
		}
	}
}

func envFromDocument(doc *environmentDocument) *evaluator.Environment {
	variants := func(mvs []docMVValue) []evaluator.Variant {
		var out []evaluator.Variant
		for _, mv := range mvs {
			out = append(out, evaluator.Variant{Value: mv.Option.Value, Weight: mv.PercentageAllocation, Priority: float64(mv.ID)})
		}
		return out
	}
	env := &evaluator.Environment{Key: doc.APIKey, Name: doc.Name}
	for _, fs := range doc.FeatureStates {
		env.Features = append(env.Features, evaluator.Feature{
			Key: strconv.FormatInt(fs.DjangoID, 10), Name: fs.Feature.Name, Enabled: fs.Enabled,
			Value: fs.Value, Variants: variants(fs.MV),
		})
	}
	var rules func([]docRule) []evaluator.Rule
	rules = func(rs []docRule) []evaluator.Rule {
		var out []evaluator.Rule
		for _, r := range rs {
			er := evaluator.Rule{Type: r.Type, Rules: rules(r.Rules)}
			for _, c := range r.Conditions {
				p := ""
				if c.Property != nil {
					p = *c.Property
				}
				er.Conditions = append(er.Conditions, evaluator.Condition{Property: p, Operator: c.Operator, Value: c.Value})
			}
			out = append(out, er)
		}
		return out
	}
	for _, s := range doc.Project.Segments {
		seg := evaluator.Segment{Key: strconv.FormatInt(s.ID, 10), Name: s.Name, Rules: rules(s.Rules)}
		for _, fs := range s.FeatureStates {
			p := float64(fs.FeatureSegment.Priority)
			seg.Overrides = append(seg.Overrides, evaluator.Override{
				Key: strconv.FormatInt(fs.DjangoID, 10), Name: fs.Feature.Name, Enabled: fs.Enabled,
				Value: fs.Value, Priority: &p, Variants: variants(fs.MV),
			})
		}
		env.Segments = append(env.Segments, seg)
	}
	for _, io := range doc.IdentityOverrides {
		if env.IdentityOverrides == nil {
			env.IdentityOverrides = map[string][]evaluator.Override{}
		}
		for _, fs := range io.IdentityFeatures {
			env.IdentityOverrides[io.Identifier] = append(env.IdentityOverrides[io.Identifier], evaluator.Override{
				Key: strconv.FormatInt(fs.DjangoID, 10), Name: fs.Feature.Name, Enabled: fs.Enabled, Value: fs.Value,
			})
		}
	}
	return env
}
