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

	"github.com/gitflags/gitflags/evaluator"
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
	parts [][]byte // the document, in pieces (see assembleDocument)
	size  int      // its length
	etag  string
	// ordered holds each feature's flag object for the identity endpoints
	// (enabled and value to be filled in per identity), in feature key
	// order, the order evaluator results come in.
	ordered []*flagBase
	// uuids caches the identity_uuid of override identifiers, kept from one
	// publish to the next.
	uuids map[string]string
}

// flagBase is a flag object of the identity endpoints, as far as it is the
// same for everyone.
type flagBase struct {
	// prefix is the flag's JSON object up to its feature_state_value, which
	// identify appends with enabled and variant.
	prefix     []byte
	name       string // the feature key
	serverOnly bool
	// outcomes are the whole flag objects of the answers the flag can have,
	// encoded in advance (see identityOutcomes).
	outcomes []identityOutcome
}

// identityOutcome is one possible flag object of the identity endpoints.
type identityOutcome struct {
	enabled bool
	variant string
	value   any    // a scalar
	suffix  []byte // the flag object after flagBase.prefix
}

// identityOutcomes lists the answers a flag with state r can have: its
// default, each split band, each segment and identity override.
func identityOutcomes(r *flagrepo.Resolved) []identityOutcome {
	var out []identityOutcome
	add := func(enabled bool, variant string, value any) {
		if len(out) == ofrepMaxOutcomes || !ofrepIsScalar(value) {
			return
		}
		for _, o := range out {
			if o.enabled == enabled && o.variant == variant && ofrepSameScalar(o.value, value) {
				return
			}
		}
		out = append(out, identityOutcome{enabled: enabled, variant: variant, value: value})
	}
	split := func(enabled bool, value any, ws []flagrepo.VariantWeight) {
		if len(ws) == 0 {
			return
		}
		add(enabled, evaluator.ControlVariant, value)
		for _, w := range ws {
			if w.Weight > 0 {
				add(enabled, w.Variant.Key, w.Variant.Value.Value)
			}
		}
	}
	add(r.Enabled, "", r.Value)
	split(r.Enabled, r.Value, r.Weights)
	for i := range r.SegmentOverrides {
		so := &r.SegmentOverrides[i]
		value := r.Value
		if so.Value.Set {
			value = so.Value.Value
		}
		add(so.Enabled, "", value)
		split(so.Enabled, value, so.OverrideWeights(r.Feature))
	}
	for _, io := range r.IdentityOverrides {
		value := r.Value
		if io.Value.Set {
			value = io.Value.Value
		}
		add(io.Enabled, "", value)
	}
	return out
}

// outcome returns the index of fl, an evaluation of this flag, in
// fb.outcomes, or -1.
func (fb *flagBase) outcome(fl *evaluator.Flag) int {
	for i := range fb.outcomes {
		o := &fb.outcomes[i]
		if o.enabled == fl.Enabled && o.variant == fl.Variant && ofrepSameScalar(o.value, fl.Value) {
			return i
		}
	}
	return -1
}

// encode appends the flag object with enabled, variant and value.
func (fb *flagBase) encode(b []byte, enabled bool, variant string, value any) []byte {
	return appendFlagSuffix(append(b, fb.prefix...), enabled, variant, value)
}

// appendFlagSuffix appends what follows flagBase.prefix in a flag object.
func appendFlagSuffix(b []byte, enabled bool, variant string, value any) []byte {
	b = appendJSONValue(b, value)
	b = append(b, `,"enabled":`...)
	b = strconv.AppendBool(b, enabled)
	b = append(b, `,"variant":`...)
	if variant != "" {
		b = appendJSONString(b, variant)
	} else {
		b = append(b, "null"...)
	}
	return append(b, '}')
}

// featureDocument is one feature's part of the environment document.
type featureDocument struct {
	state      []byte     // its element of feature_states
	segments   []docPiece // its segment overrides, keyed by segment
	identities []docPiece // its identity overrides, keyed by identifier
	// at caches the positions of segments in atMap (see segmentPositions).
	at    []int32
	atMap map[string]int32
}

// segmentPositions returns the positions of d's segments in segmentAt
// (state.segmentAt). It keeps the answer for the next Publish, which
// usually has the same map; Publish calls are serialised.
func (d *featureDocument) segmentPositions(segmentAt map[string]int32) ([]int32, error) {
	if d.at != nil && sameMap(d.atMap, segmentAt) {
		return d.at, nil
	}
	at := make([]int32, len(d.segments))
	for k, p := range d.segments {
		j, ok := segmentAt[p.key]
		if !ok {
			return nil, fmt.Errorf("overrides segment %s, which does not exist", p.key)
		}
		at[k] = j
	}
	d.at, d.atMap = at, segmentAt
	return at, nil
}

// docPiece is an encoded feature state that goes under a segment or an
// identity override.
type docPiece struct {
	key  string
	body []byte
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
	Segments                []docSegment    `json:"segments,omitempty"` // assembleDocument appends them
}

type docIdentityOverride struct {
	Identifier        string            `json:"identifier"`
	IdentityUUID      string            `json:"identity_uuid"`
	EnvironmentAPIKey string            `json:"environment_api_key"`
	CreatedDate       string            `json:"created_date"`
	IdentityFeatures  []docFeatureState `json:"identity_features"`
	IdentityTraits    []any             `json:"identity_traits"`
}

// docHead is the environment document's own fields, before the project.
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

// environmentDocument is the whole document, as tests decode it
// (assembleDocument writes it in pieces).
type environmentDocument struct {
	docHead
	Project           docProject            `json:"project"`
	FeatureStates     []docFeatureState     `json:"feature_states"`
	IdentityOverrides []docIdentityOverride `json:"identity_overrides"`
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

// newFeatureDocument encodes feature r.Feature's parts of the environment
// document of e.
func newFeatureDocument(e *flagrepo.Environment, r *flagrepo.Resolved) (featureDocument, error) {
	f := r.Feature
	feat := docFeature{ID: f.ID, Name: f.Key, Type: featureType(f)}
	var (
		d   featureDocument
		err error
	)
	d.state, err = json.Marshal(docFeatureState{
		Feature:  feat,
		Enabled:  r.Enabled,
		DjangoID: f.ID,
		UUID:     stableUUID("fs", e.ID, f.ID),
		Value:    r.Value,
		MV:       mvValues(e, f, r.Weights, "env"),
	})
	if err != nil {
		return d, fmt.Errorf("encode feature state: %w", err)
	}
	for i := range r.SegmentOverrides {
		o := &r.SegmentOverrides[i]
		value := r.Value
		if o.Value.Set {
			value = o.Value.Value
		}
		b, err := json.Marshal(docFeatureState{
			Feature:        feat,
			Enabled:        o.Enabled,
			DjangoID:       f.ID,
			UUID:           stableUUID("fs", e.ID, f.ID, "segment", o.Segment),
			Value:          value,
			FeatureSegment: &docFeatureSegment{Priority: o.Priority},
			MV:             mvValues(e, f, o.OverrideWeights(f), "segment/"+o.Segment),
		})
		if err != nil {
			return d, fmt.Errorf("encode override of segment %s: %w", o.Segment, err)
		}
		d.segments = append(d.segments, docPiece{key: o.Segment, body: b})
	}
	for _, o := range r.IdentityOverrides {
		value := r.Value
		if o.Value.Set {
			value = o.Value.Value
		}
		for _, id := range o.Identifiers {
			b, err := json.Marshal(docFeatureState{
				Feature:  feat,
				Enabled:  o.Enabled,
				DjangoID: f.ID,
				UUID:     stableUUID("fs", e.ID, f.ID, "identity", id),
				Value:    value,
				MV:       []docMVValue{},
			})
			if err != nil {
				return d, fmt.Errorf("encode identity override: %w", err)
			}
			d.identities = append(d.identities, docPiece{key: id, body: b})
		}
	}
	return d, nil
}

// buildSegments lists st's segments in id order, the order the SDK engines
// iterate them in, reusing prev's encoding of unchanged segments.
func buildSegments(st *state, prev *state) error {
	snap := st.snap
	keys := append([]string(nil), snap.SegmentKeys()...)
	sort.SliceStable(keys, func(i, j int) bool { return snap.Segments[keys[i]].ID < snap.Segments[keys[j]].ID })
	st.segments = make([]*segmentOut, len(keys))
	st.segmentAt = make(map[string]int32, len(keys))
	same := prev != nil && len(prev.segments) == len(keys)
	for i, k := range keys {
		sg := snap.Segments[k]
		st.segmentAt[k] = int32(i)
		if prev != nil {
			j, ok := prev.segmentAt[k]
			same = same && ok && int(j) == i
			if ok && prev.segments[j].segment == sg {
				st.segments[i] = prev.segments[j]
				continue
			}
		}
		head, err := json.Marshal(struct {
			ID    int64     `json:"id"`
			Name  string    `json:"name"`
			Rules []docRule `json:"rules"`
		}{sg.ID, sg.Key, docRules(sg.Rules)})
		if err != nil {
			return fmt.Errorf("encode segment %s: %w", k, err)
		}
		head = append(head[:len(head)-1], `,"feature_states":[`...)
		st.segments[i] = &segmentOut{segment: sg, head: head, digest: sha256.Sum256(head)}
	}
	if same {
		// The same segment keys in the same order: keeping the map lets
		// features keep the segment positions they resolved
		// (featureDocument.segmentAt).
		st.segmentAt = prev.segmentAt
	}
	return nil
}

// assembleDocument concatenates the environment document of es from its
// features' and st's segments' pieces; pes is the environment in the
// previous state, or nil.
func assembleDocument(st *state, es *envState, pes *envState) error {
	snap, e := st.snap, es.env
	created := st.updated.Format(documentTimeFormat)
	ds := documentState{ordered: make([]*flagBase, len(es.features)), uuids: map[string]string{}}

	head := docHead{e.ID, e.ClientKey, e.Name, created, e.ClientTraitsAllowed(), e.HideSensitiveData, snap.HidesDisabledFlags(e), true, true}
	project := docProject{
		ID:                      snap.Settings.Project.ID,
		Name:                    snap.Settings.Project.Name,
		HideDisabledFlags:       snap.Settings.Project.HideDisabledFlags,
		ServerKeyOnlyFeatureIDs: []int64{},
		Organisation:            docOrganisation{PersistTraitData: true},
	}
	if o := snap.Settings.Organisation; o != nil {
		project.Organisation.ID, project.Organisation.Name = o.ID, o.Name
	}
	bySegment := make([][][]byte, len(st.segments))
	byIdentity := map[string][][]byte{}
	pieces := 0
	for i, f := range es.features {
		ds.ordered[i] = &f.base
		if f.base.serverOnly {
			project.ServerKeyOnlyFeatureIDs = append(project.ServerKeyOnlyFeatureIDs, f.in.feature.ID)
		}
		pieces += len(f.doc.segments) + len(f.doc.identities)
		at, err := f.doc.segmentPositions(st.segmentAt)
		if err != nil {
			return fmt.Errorf("feature %s: %w", f.in.feature.Key, err)
		}
		for k, p := range f.doc.segments {
			bySegment[at[k]] = append(bySegment[at[k]], p.body)
		}
		for _, p := range f.doc.identities {
			byIdentity[p.key] = append(byIdentity[p.key], p.body)
		}
	}

	hb, err := json.Marshal(head)
	if err != nil {
		return err
	}
	pb, err := json.Marshal(project)
	if err != nil {
		return err
	}
	// The document is a rope: its pieces are the features' and segments'
	// encodings, shared with the previous and next states, joined by
	// constant separators; nothing is copied.
	parts := make([][]byte, 0, 8+len(es.features)*2+len(st.segments)*3+pieces*2+len(byIdentity)*4)
	add := func(p ...[]byte) { parts = append(parts, p...) }
	add(hb[:len(hb)-1], docProjectKey, pb[:len(pb)-1], docSegmentsKey)
	for i, sg := range st.segments {
		if i > 0 {
			add(docComma)
		}
		add(sg.head)
		for j, p := range bySegment[i] {
			if j > 0 {
				add(docComma)
			}
			add(p)
		}
		add(docEndList)
	}
	add(docFeatureStatesKey)
	for i, f := range es.features {
		if i > 0 {
			add(docComma)
		}
		add(f.doc.state)
	}
	add(docIdentityOverridesKey)
	ids := make([]string, 0, len(byIdentity))
	for id := range byIdentity {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for i, id := range ids {
		uuid, ok := "", false
		if pes != nil {
			uuid, ok = pes.document.uuids[id]
		}
		if !ok {
			uuid = stableUUID("identity", e.ID, id)
		}
		ds.uuids[id] = uuid
		var w []byte
		if i > 0 {
			w = append(w, ',')
		}
		w = append(w, `{"identifier":`...)
		w = appendJSONString(w, id)
		w = append(w, `,"identity_uuid":"`...)
		w = append(w, uuid...)
		w = append(w, `","environment_api_key":`...)
		w = appendJSONString(w, e.ClientKey)
		w = append(w, `,"created_date":"`...)
		w = append(w, created...)
		w = append(w, `","identity_features":[`...)
		add(w)
		for j, p := range byIdentity[id] {
			if j > 0 {
				add(docComma)
			}
			add(p)
		}
		add(docEndIdentity)
	}
	add(docEnd)
	ds.parts = parts
	for _, p := range parts {
		ds.size += len(p)
	}

	// The document is a function of its head, the project and the pieces
	// the environment digest covers, so hashing those stands for hashing
	// the whole body.
	h := sha256.New()
	h.Write(es.digest[:])
	h.Write(hb)
	h.Write(pb)
	sum := h.Sum(nil)
	ds.etag = `"` + hex.EncodeToString(sum[:12]) + `"`
	es.document = ds
	return nil
}

// The environment document's constant separators.
var (
	docComma                = []byte(",")
	docProjectKey           = []byte(`,"project":`)
	docSegmentsKey          = []byte(`,"segments":[`)
	docEndList              = []byte("]}")
	docFeatureStatesKey     = []byte(`]},"feature_states":[`)
	docIdentityOverridesKey = []byte(`],"identity_overrides":[`)
	docEndIdentity          = []byte(`],"identity_traits":[]}`)
	docEnd                  = []byte("]}")
)

// body returns the document as one byte slice.
func (ds *documentState) body() []byte {
	b := make([]byte, 0, ds.size)
	for _, p := range ds.parts {
		b = append(b, p...)
	}
	return b
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
	h.Set("Content-Length", strconv.Itoa(es.document.size))
	for _, p := range es.document.parts {
		if _, err := w.Write(p); err != nil {
			return // the client went away
		}
	}
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
