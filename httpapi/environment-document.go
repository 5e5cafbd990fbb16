package httpapi

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/flagrepo"
)

// The environment document (GET /api/v1/environment-document/) is what the
// Flagsmith SDKs evaluate locally. It is built so that their engine computes
// exactly what the server computes (evaluator/fromrepo.go):
//
//   - Every feature state's django_id is the feature's id: the SDKs hash
//     django_id (the evaluation context's feature key) with the identity key
//     for multivariate buckets, and the server hashes the feature id. This
//     holds for segment and identity overrides too (an override's key is its
//     feature state's django_id; the server's overrides use the feature key).
//   - A multivariate value's id (the SDKs' variant priority) and its option's
//     id are the variant id, which orders variants on the server.
//   - A segment's id is the segment id, hashed by PERCENTAGE_SPLIT.
//   - Condition values are strings. An IN list from a JSON array is sent as
//     comma-separated text when that splits back into the same list (no
//     element has a comma, the text does not read as JSON), which every SDK
//     understands (the Go SDK only knows comma text); otherwise the array's
//     JSON text, which the Node and Python engines parse as an array.
//   - Identity overrides are listed per identifier with their feature states
//     (identity_features), segment overrides as the segment's feature_states
//     with feature_segment.priority.
//   - use_identity_composite_key_for_hashing is true: identity key
//     "<client key>_<identifier>", as on the server.
//
// The document is encoded once per snapshot and environment (buildDocument).

// documentState is what the environment document and the identity
// endpoints precompute per environment and snapshot.
type documentState struct {
	body []byte // the document
	etag string
	// flags holds, by feature key, a feature's flag object (enabled and
	// value to be filled in per identity).
	flags map[string]*flagBase
	// ordered holds the same flag objects in feature key order, the order
	// evaluator results come in, so identify needs no map lookup per flag.
	ordered []*flagBase
	// clientFlagsJSON and clientFlagJSON replace the /flags/ responses for
	// client keys when some features are server-key-only; nil otherwise.
	clientFlagsJSON []byte
	clientFlagJSON  map[string][]byte
}

type flagBase struct {
	flag flagsmithFlag
	// prefix is the flag's JSON object up to its feature_state_value, which
	// identify appends with enabled and variant.
	prefix     []byte
	serverOnly bool
}

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

type environmentDocument struct {
	ID                                int64                 `json:"id"`
	APIKey                            string                `json:"api_key"`
	Name                              string                `json:"name"`
	UpdatedAt                         string                `json:"updated_at"`
	AllowClientTraits                 bool                  `json:"allow_client_traits"`
	HideSensitiveData                 bool                  `json:"hide_sensitive_data"`
	HideDisabledFlags                 bool                  `json:"hide_disabled_flags"`
	UseIdentityCompositeKeyForHashing bool                  `json:"use_identity_composite_key_for_hashing"`
	UseIdentityOverridesInLocalEval   bool                  `json:"use_identity_overrides_in_local_eval"`
	Project                           docProject            `json:"project"`
	FeatureStates                     []docFeatureState     `json:"feature_states"`
	IdentityOverrides                 []docIdentityOverride `json:"identity_overrides"`
}

// documentTimeFormat is RFC 3339 with the microseconds that
// X-Flagsmith-Document-Updated-At carries.
const documentTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// stableUUID derives a UUID (version 5 layout) from parts, so that the
// document's uuids never change for the same object.
func stableUUID(parts ...any) string {
	h := sha1.New()
	fmt.Fprint(h, "gitflags")
	for _, p := range parts {
		fmt.Fprintf(h, "/%v", p)
	}
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func featureType(f *flagrepo.Feature) string {
	if f.Multivariate() {
		return "MULTIVARIATE"
	}
	return "STANDARD"
}

// mvValues lists a split; scope tells the uuids of different splits apart.
func mvValues(e *flagrepo.Environment, f *flagrepo.Feature, ws []flagrepo.VariantWeight, scope string) []docMVValue {
	out := make([]docMVValue, 0, len(ws))
	for _, w := range ws {
		out = append(out, docMVValue{
			ID:                   w.Variant.ID,
			UUID:                 stableUUID("mv", e.ID, f.ID, scope, w.Variant.ID),
			PercentageAllocation: w.Weight,
			Option:               docMVOption{ID: w.Variant.ID, Value: w.Variant.Value.Value},
		})
	}
	return out
}

// docConditionValue is a condition's value as SDKs read it (see the top of
// this file for IN lists).
func docConditionValue(c *flagrepo.Condition) string {
	raw := bytes.TrimSpace(c.RawValue)
	if c.Operator != "IN" || len(raw) == 0 || raw[0] != '[' {
		return c.Value
	}
	var items []string
	if json.Unmarshal([]byte(c.Value), &items) != nil || len(items) == 0 {
		return c.Value
	}
	for _, it := range items {
		if strings.Contains(it, ",") {
			return c.Value
		}
	}
	text := strings.Join(items, ",")
	if strings.HasPrefix(strings.TrimLeft(text, " \t\n\r"), "[") {
		return c.Value // would read as a JSON array
	}
	return text
}

func docRules(rs []flagrepo.Rule) []docRule {
	out := make([]docRule, len(rs))
	for i := range rs {
		r := &rs[i]
		out[i] = docRule{Type: r.Type, Rules: docRules(r.Rules), Conditions: make([]docCondition, len(r.Conditions))}
		for j := range r.Conditions {
			c := &r.Conditions[j]
			dc := docCondition{Operator: c.Operator, Value: docConditionValue(c)}
			if c.Property != "" {
				p := c.Property
				dc.Property = &p
			}
			out[i].Conditions[j] = dc
		}
	}
	return out
}

// buildDocument precomputes the environment document and the identity
// endpoints' flag objects of es.
func buildDocument(st *state, es *envState) error {
	snap, e := st.snap, es.env
	created := st.updated.Format(documentTimeFormat)
	ds := documentState{flags: make(map[string]*flagBase, len(snap.Features))}

	doc := environmentDocument{
		ID:                                e.ID,
		APIKey:                            e.ClientKey,
		Name:                              e.Name,
		UpdatedAt:                         created,
		AllowClientTraits:                 e.ClientTraitsAllowed(),
		HideSensitiveData:                 e.HideSensitiveData,
		HideDisabledFlags:                 snap.HidesDisabledFlags(e),
		UseIdentityCompositeKeyForHashing: true,
		UseIdentityOverridesInLocalEval:   true,
		Project: docProject{
			ID:                      snap.Settings.Project.ID,
			Name:                    snap.Settings.Project.Name,
			HideDisabledFlags:       snap.Settings.Project.HideDisabledFlags,
			ServerKeyOnlyFeatureIDs: []int64{},
			Organisation:            docOrganisation{PersistTraitData: true},
			Segments:                []docSegment{},
		},
		FeatureStates:     make([]docFeatureState, 0, len(snap.Features)),
		IdentityOverrides: []docIdentityOverride{},
	}
	if o := snap.Settings.Organisation; o != nil {
		doc.Project.Organisation.ID, doc.Project.Organisation.Name = o.ID, o.Name
	}

	segmentStates := map[string][]docFeatureState{}
	identityStates := map[string][]docFeatureState{}
	anyServerOnly := false
	for _, key := range snap.FeatureKeys() {
		f := snap.Features[key]
		r := e.Resolve(f)
		feat := docFeature{ID: f.ID, Name: f.Key, Type: featureType(f)}
		doc.FeatureStates = append(doc.FeatureStates, docFeatureState{
			Feature:  feat,
			Enabled:  r.Enabled,
			DjangoID: f.ID,
			UUID:     stableUUID("fs", e.ID, f.ID),
			Value:    r.Value,
			MV:       mvValues(e, f, r.Weights, "env"),
		})
		if f.ServerKeyOnly {
			doc.Project.ServerKeyOnlyFeatureIDs = append(doc.Project.ServerKeyOnlyFeatureIDs, f.ID)
			anyServerOnly = true
		}
		for i := range r.SegmentOverrides {
			o := &r.SegmentOverrides[i]
			value := r.Value
			if o.Value.Set {
				value = o.Value.Value
			}
			segmentStates[o.Segment] = append(segmentStates[o.Segment], docFeatureState{
				Feature:        feat,
				Enabled:        o.Enabled,
				DjangoID:       f.ID,
				UUID:           stableUUID("fs", e.ID, f.ID, "segment", o.Segment),
				Value:          value,
				FeatureSegment: &docFeatureSegment{Priority: o.Priority},
				MV:             mvValues(e, f, o.OverrideWeights(f), "segment/"+o.Segment),
			})
		}
		for _, o := range r.IdentityOverrides {
			value := r.Value
			if o.Value.Set {
				value = o.Value.Value
			}
			for _, id := range o.Identifiers {
				identityStates[id] = append(identityStates[id], docFeatureState{
					Feature:  feat,
					Enabled:  o.Enabled,
					DjangoID: f.ID,
					UUID:     stableUUID("fs", e.ID, f.ID, "identity", id),
					Value:    value,
					MV:       []docMVValue{},
				})
			}
		}

		// The identity endpoints' flag object of this feature.
		ff := flagsmithFlag{ID: f.ID, Environment: e.ID, Feature: newFlagsmithFeature(snap, f)}
		feature, err := json.Marshal(ff.Feature)
		if err != nil {
			return fmt.Errorf("encode feature %s: %w", f.Key, err)
		}
		prefix := fmt.Appendf(nil, `{"id":%d,"feature":%s,"environment":%d,"identity":null,"feature_segment":null,"feature_state_value":`, ff.ID, feature, ff.Environment)
		fb := &flagBase{flag: ff, prefix: prefix, serverOnly: f.ServerKeyOnly}
		ds.flags[f.Key] = fb
		ds.ordered = append(ds.ordered, fb)
	}

	// Segments in id order: the order the SDK engines iterate them in.
	segKeys := append([]string(nil), snap.SegmentKeys()...)
	sort.SliceStable(segKeys, func(i, j int) bool { return snap.Segments[segKeys[i]].ID < snap.Segments[segKeys[j]].ID })
	for _, key := range segKeys {
		s := snap.Segments[key]
		fs := segmentStates[key]
		if fs == nil {
			fs = []docFeatureState{}
		}
		doc.Project.Segments = append(doc.Project.Segments, docSegment{ID: s.ID, Name: s.Key, Rules: docRules(s.Rules), FeatureStates: fs})
	}

	ids := make([]string, 0, len(identityStates))
	for id := range identityStates {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		doc.IdentityOverrides = append(doc.IdentityOverrides, docIdentityOverride{
			Identifier:        id,
			IdentityUUID:      stableUUID("identity", e.ID, id),
			EnvironmentAPIKey: e.ClientKey,
			CreatedDate:       created,
			IdentityFeatures:  identityStates[id],
			IdentityTraits:    []any{},
		})
	}

	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	ds.body, ds.etag = b, `"`+hex.EncodeToString(sum[:12])+`"`

	if anyServerOnly {
		if err := buildClientFlags(st, es, &ds); err != nil {
			return err
		}
	}
	es.document = ds
	return nil
}

// buildClientFlags encodes the /flags/ responses for client keys, without
// the server-key-only features.
func buildClientFlags(st *state, es *envState, ds *documentState) error {
	hide := st.snap.HidesDisabledFlags(es.env)
	ds.clientFlagJSON = map[string][]byte{}
	list := []flagsmithFlag{}
	for _, f := range es.model.EnvironmentFlags() {
		if fb := ds.flags[f.Name]; (hide && !f.Enabled) || (fb != nil && fb.serverOnly) {
			continue
		}
		ff := newFlagsmithFlag(st.snap, es.env, &f)
		b, err := json.Marshal(ff)
		if err != nil {
			return err
		}
		ds.clientFlagJSON[f.Name] = b
		list = append(list, ff)
	}
	var err error
	ds.clientFlagsJSON, err = json.Marshal(list)
	return err
}

func (s *Server) environmentDocument(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st, es, server := s.environmentKey(w, r)
	if es == nil {
		return
	}
	if !server {
		writeDetail(w, http.StatusForbidden, "the environment document needs a server-side key (ser.…); this is a client-side key")
		return
	}
	h := w.Header()
	h.Set("X-Flagsmith-Document-Updated-At", st.updatedAt)
	h.Set("ETag", es.document.etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, es.document.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(es.document.body)))
	_, _ = w.Write(es.document.body)
}

// etagMatch reports whether an If-None-Match header lists etag.
func etagMatch(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
