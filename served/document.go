package served

import (
	"bytes"
	"cmp"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

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
// Build encodes each feature's part once (newFeatureDocument) and reuses
// it while the feature is unchanged; the document is written from those
// parts (Document.WriteTo).

// Document is the environment document of an environment, and what the
// identity endpoints precompute per environment and snapshot.
type Document struct {
	head       []byte        // the document up to its segments list
	features   []*featureOut // the environment's features, in key order
	segments   []*segmentOut // in id order
	bySegment  [][]pieceRef  // by segment position: the feature states under it
	ids        []string      // override identifiers, sorted
	idHeads    [][]byte      // by position in ids: the override's opening
	byIdentity map[string][]pieceRef
	size       func() int // the document's length, counted when first asked
	etag       string
	// ordered holds each feature's flag object for the identity endpoints
	// (enabled and value to be filled in per identity), in feature key
	// order, the order evaluator results come in.
	ordered []*IdentityFlag
	// uuids caches the identity_uuid of override identifiers, kept from one
	// state to the next.
	uuids map[string]string
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
// (State.segmentAt). It keeps the answer for the next Build, which
// usually has the same map; Build calls are serialised.
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
	// The segments follow: assembleDocument appends them.
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

// DocumentTimeFormat is RFC 3339 with the microseconds that
// X-Flagsmith-Document-Updated-At carries: the environment document's dates
// (updated_at), and the lastModified of OFREP's events.
const DocumentTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// StableUUID derives a UUID (version 5 layout) from parts, so that the
// uuids of the document (and of the admin objects that name the same
// things) never change for the same object.
func StableUUID(parts ...any) string {
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

// mvValues lists a split; scope tells the uuids of different splits apart.
func mvValues(e *flagrepo.Environment, f *flagrepo.Feature, ws []flagrepo.VariantWeight, scope string) []docMVValue {
	out := make([]docMVValue, 0, len(ws))
	for _, w := range ws {
		out = append(out, docMVValue{
			ID:                   w.Variant.ID,
			UUID:                 StableUUID("mv", e.ID, f.ID, scope, w.Variant.ID),
			PercentageAllocation: w.Weight,
			Option:               docMVOption{ID: w.Variant.ID, Value: w.Variant.Value.Value},
		})
	}
	return out
}

// ConditionValue is a condition's value as SDKs read it (see the top of
// this file for IN lists).
func ConditionValue(c *flagrepo.Condition) string {
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
			dc := docCondition{Operator: c.Operator, Value: ConditionValue(c)}
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
	feat := docFeature{ID: f.ID, Name: f.Key, Type: FeatureType(f)}
	var (
		d   featureDocument
		err error
	)
	d.state, err = json.Marshal(docFeatureState{
		Feature:  feat,
		Enabled:  r.Enabled,
		DjangoID: f.ID,
		UUID:     StableUUID("fs", e.ID, f.ID),
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
			UUID:           StableUUID("fs", e.ID, f.ID, "segment", o.Segment),
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
				UUID:     StableUUID("fs", e.ID, f.ID, "identity", id),
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
func buildSegments(st *State, prev *State) error {
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

// assembleDocument prepares the environment document of es: its head, and
// which features' pieces go under each segment and identity override. The
// document is never encoded as a whole: WriteTo writes the pieces, shared
// with the previous and next states, at request time. When the features
// and segments are the same as in pes (the environment in the previous
// state) but for a few, only the lists those few touch are rebuilt.
func assembleDocument(st *State, es *Env, pes *Env) error {
	snap, e := st.snap, es.env
	created := st.updated.Format(DocumentTimeFormat)
	ds := Document{features: es.features, segments: st.segments, ordered: make([]*IdentityFlag, len(es.features))}

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
	for i, f := range es.features {
		ds.ordered[i] = &f.base
		if f.base.serverOnly {
			project.ServerKeyOnlyFeatureIDs = append(project.ServerKeyOnlyFeatureIDs, f.in.feature.ID)
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
	ds.head = append(append(append(hb[:len(hb)-1:len(hb)-1], docProjectKey...), pb[:len(pb)-1]...), docSegmentsKey...)

	if err := ds.group(st, pes); err != nil {
		return err
	}

	// Identity overrides: the opening of each, up to its feature states.
	var prevUUIDs map[string]string
	if pes != nil && pes.env.ID == e.ID { // the uuids derive from the environment id
		prevUUIDs = pes.document.uuids
	}
	ds.uuids = make(map[string]string, len(ds.ids))
	ds.idHeads = make([][]byte, len(ds.ids))
	for i, id := range ds.ids {
		uuid, ok := prevUUIDs[id]
		if !ok {
			uuid = StableUUID("identity", e.ID, id)
		}
		ds.uuids[id] = uuid
		w := AppendJSONString([]byte(`{"identifier":`), id)
		w = append(w, `,"identity_uuid":"`...)
		w = append(w, uuid...)
		w = append(w, `","environment_api_key":`...)
		w = AppendJSONString(w, e.ClientKey)
		w = append(w, `,"created_date":"`...)
		w = append(w, created...)
		ds.idHeads[i] = append(w, `","identity_features":[`...)
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
	doc := &es.document
	doc.size = sync.OnceValue(func() int {
		n, _ := doc.writeTo(nil, true)
		return n
	})
	return nil
}

// pieceRef names a feature's piece of the document: the k-th segment or
// identity override of the feature at position pos.
type pieceRef struct{ pos, k int32 }

// group fills ds.bySegment, ds.ids and ds.byIdentity from ds.features. It
// starts from pes's lists when the features' positions and the segments'
// positions are unchanged, and rebuilds only the lists that a changed
// feature had or has pieces in.
func (ds *Document) group(st *State, pes *Env) error {
	var changed []int32
	incremental := pes != nil && len(pes.features) == len(ds.features) && sameMap(pes.byName, st.byName) &&
		sameMap(pes.segmentAt, st.segmentAt)
	if incremental {
		for i, f := range ds.features {
			if f != pes.features[i] {
				changed = append(changed, int32(i))
			}
		}
		incremental = len(changed) <= len(ds.features)/8
	}
	if !incremental {
		ds.bySegment = make([][]pieceRef, len(st.segments))
		ds.byIdentity = map[string][]pieceRef{}
		for i, f := range ds.features {
			if err := ds.add(st, int32(i), f); err != nil {
				return err
			}
		}
		ds.sortIDs()
		return nil
	}
	prev := &pes.document
	ds.bySegment, ds.byIdentity, ds.ids = prev.bySegment, prev.byIdentity, prev.ids
	if len(changed) == 0 {
		return nil
	}
	// The lists a changed feature had or has pieces in are copied (the
	// previous state is still being served), without the changed
	// features' pieces; then their new pieces are added.
	dirtySegments := map[int32]bool{}
	dirtyIDs := map[string]bool{}
	for _, pos := range changed {
		for _, f := range []*featureOut{pes.features[pos], ds.features[pos]} {
			at, err := f.doc.segmentPositions(st.segmentAt)
			if err != nil {
				return fmt.Errorf("feature %s: %w", f.in.feature.Key, err)
			}
			for _, j := range at {
				dirtySegments[j] = true
			}
			for _, p := range f.doc.identities {
				dirtyIDs[p.key] = true
			}
		}
	}
	isChanged := func(r pieceRef) bool { _, found := slices.BinarySearch(changed, r.pos); return found }
	ds.bySegment = slices.Clone(prev.bySegment)
	for j := range dirtySegments {
		ds.bySegment[j] = slices.DeleteFunc(slices.Clone(ds.bySegment[j]), isChanged)
	}
	ds.byIdentity = maps.Clone(prev.byIdentity)
	for id := range dirtyIDs {
		ds.byIdentity[id] = slices.DeleteFunc(slices.Clone(ds.byIdentity[id]), isChanged)
	}
	for _, pos := range changed {
		if err := ds.add(st, pos, ds.features[pos]); err != nil {
			return err
		}
	}
	less := func(a, b pieceRef) int { return cmp.Or(cmp.Compare(a.pos, b.pos), cmp.Compare(a.k, b.k)) }
	for j := range dirtySegments {
		slices.SortFunc(ds.bySegment[j], less)
	}
	for id := range dirtyIDs {
		if len(ds.byIdentity[id]) == 0 {
			delete(ds.byIdentity, id)
		} else {
			slices.SortFunc(ds.byIdentity[id], less)
		}
	}
	ds.sortIDs()
	return nil
}

// add appends the pieces of the feature at pos to the lists.
func (ds *Document) add(st *State, pos int32, f *featureOut) error {
	at, err := f.doc.segmentPositions(st.segmentAt)
	if err != nil {
		return fmt.Errorf("feature %s: %w", f.in.feature.Key, err)
	}
	for k, j := range at {
		ds.bySegment[j] = append(ds.bySegment[j], pieceRef{pos, int32(k)})
	}
	for k, p := range f.doc.identities {
		ds.byIdentity[p.key] = append(ds.byIdentity[p.key], pieceRef{pos, int32(k)})
	}
	return nil
}

func (ds *Document) sortIDs() {
	ds.ids = slices.Sorted(maps.Keys(ds.byIdentity))
}

// ETag returns the document's entity tag (quoted): a hash of what decides
// it, updated_at aside.
func (ds *Document) ETag() string { return ds.etag }

// Size returns the document's length in bytes.
func (ds *Document) Size() int { return ds.size() }

// WriteTo writes the document to w, piece by piece, and returns the number
// of bytes written and the first error; it stops writing at that error.
func (ds *Document) WriteTo(w io.Writer) (int64, error) {
	n, err := ds.writeTo(w, false)
	return int64(n), err
}

// writeTo writes the document to w and returns its length (with sizeOnly
// it only counts) or the first write error.
func (ds *Document) writeTo(w io.Writer, sizeOnly bool) (int, error) {
	n := 0
	var err error
	put := func(b []byte) {
		if sizeOnly {
			n += len(b)
			return
		}
		if err == nil {
			var m int
			m, err = w.Write(b)
			n += m
		}
	}
	put(ds.head)
	for i, sg := range ds.segments {
		if i > 0 {
			put(docComma)
		}
		put(sg.head)
		for j, r := range ds.bySegment[i] {
			if j > 0 {
				put(docComma)
			}
			put(ds.features[r.pos].doc.segments[r.k].body)
		}
		put(docEndList)
	}
	put(docFeatureStatesKey)
	for i, f := range ds.features {
		if i > 0 {
			put(docComma)
		}
		put(f.doc.state)
	}
	put(docIdentityOverridesKey)
	for i, id := range ds.ids {
		if i > 0 {
			put(docComma)
		}
		put(ds.idHeads[i])
		for j, r := range ds.byIdentity[id] {
			if j > 0 {
				put(docComma)
			}
			put(ds.features[r.pos].doc.identities[r.k].body)
		}
		put(docEndIdentity)
	}
	put(docEnd)
	return n, err
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
