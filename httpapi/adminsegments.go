package httpapi

// Flagsmith Admin API: segments (/api/v1/projects/:project/segments/) and
// segment overrides (/api/v1/features/feature-segments/ and
// /api/v1/environments/:environment/features/:feature/create-segment-override/).
// See adminapi.go.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"weak"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/commits"
	"github.com/gitflags/gitflags/edit"
	"github.com/gitflags/gitflags/flagrepo"
)

// Segments.

type adminSegment struct {
	ID               int64       `json:"id"`
	UUID             string      `json:"uuid"`
	CreatedAt        string      `json:"created_at"`
	UpdatedAt        string      `json:"updated_at"`
	Name             string      `json:"name"`
	Description      *string     `json:"description"`
	Project          int64       `json:"project"`
	Feature          any         `json:"feature"`
	VersionOf        int64       `json:"version_of"`
	Metadata         []any       `json:"metadata"`
	MembershipCounts []any       `json:"membership_counts"`
	ManagedBy        string      `json:"managed_by"`
	Rules            []adminRule `json:"rules"`
	Revision         string      `json:"revision,omitempty"`
}

// adminRule is a segment rule; its id (like a condition's) is its position
// in the segment, counted depth first from 1: it changes when rules before
// it do.
type adminRule struct {
	ID         int64            `json:"id"`
	Type       string           `json:"type"`
	Rules      *[]adminRule     `json:"rules,omitempty"` // top-level rules only (and deeper ones the repository has)
	Conditions []adminCondition `json:"conditions"`
}

type adminCondition struct {
	ID          int64   `json:"id"`
	Property    *string `json:"property"`
	Operator    string  `json:"operator"`
	Value       *string `json:"value"`
	Description *string `json:"description"`
}

// segmentJSON is segment sg as Flagsmith answers it.
func (st *state) segmentJSON(sg *flagrepo.Segment) adminSegment {
	at := st.snap.Revision.Time.UTC().Format(timeFormat)
	out := adminSegment{
		ID: sg.ID, UUID: stableUUID("segment", sg.ID), CreatedAt: at, UpdatedAt: at, Name: sg.Key,
		Project: st.snap.Settings.Project.ID, VersionOf: sg.ID, Metadata: []any{}, MembershipCounts: []any{},
	}
	if sg.Description != "" {
		d := sg.Description
		out.Description = &d
	}
	var ruleID, condID int64
	var rules func(in []flagrepo.Rule, top bool) []adminRule
	rules = func(in []flagrepo.Rule, top bool) []adminRule {
		out := []adminRule{}
		for _, r := range in {
			ruleID++
			ar := adminRule{ID: ruleID, Type: r.Type, Conditions: []adminCondition{}}
			for i := range r.Conditions {
				c := &r.Conditions[i]
				condID++
				ac := adminCondition{ID: condID, Operator: c.Operator}
				if c.Property != "" {
					p := c.Property
					ac.Property = &p
				}
				if len(c.RawValue) > 0 {
					v := docConditionValue(c)
					ac.Value = &v
				}
				ar.Conditions = append(ar.Conditions, ac)
			}
			if top || len(r.Rules) > 0 {
				sub := rules(r.Rules, false)
				ar.Rules = &sub
			}
			out = append(out, ar)
		}
		return out
	}
	out.Rules = rules(sg.Rules, true)
	return out
}

// adminSegments serves GET /api/v1/projects/:project/segments/.
func (s *Server) adminSegments(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil || !adminProject(w, st, p) {
		return
	}
	q, ok := adminQuery(w, r)
	if !ok {
		return
	}
	search, _, rerr := queryParam(q, "q")
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	search = strings.ToLower(search)
	var list []adminSegment
	for _, k := range st.snap.SegmentKeys() {
		if strings.Contains(strings.ToLower(k), search) {
			list = append(list, st.segmentJSON(st.snap.Segments[k]))
		}
	}
	slices.SortFunc(list, func(a, b adminSegment) int { return int(min(max(a.ID-b.ID, -1), 1)) })
	writePage(w, r, q, list, customPageSize, true)
}

// adminSegmentByPath resolves :segment of a segments path (an id).
func adminSegmentByPath(w http.ResponseWriter, st *state, p httprouter.Params) *flagrepo.Segment {
	id, ok := pathID(w, p, "segment")
	if !ok {
		return nil
	}
	sg := segmentByID(st.snap, id)
	if sg == nil {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("segment %d not found", id))
	}
	return sg
}

func (s *Server) adminSegmentGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil || !adminProject(w, st, p) {
		return
	}
	if sg := adminSegmentByPath(w, st, p); sg != nil {
		writeJSON(w, http.StatusOK, st.segmentJSON(sg))
	}
}

// ruleBody and conditionBody are segment rules as Flagsmith sends them;
// their ids and "delete" are Flagsmith's legacy and ignored.
type ruleBody struct {
	ID         json.RawMessage `json:"id"`
	Delete     json.RawMessage `json:"delete"`
	Type       *string         `json:"type"`
	Rules      []ruleBody      `json:"rules"`
	Conditions []conditionBody `json:"conditions"`
}

type conditionBody struct {
	ID          json.RawMessage  `json:"id"`
	Delete      json.RawMessage  `json:"delete"`
	Operator    *string          `json:"operator"`
	Property    optional[string] `json:"property"`
	Value       json.RawMessage  `json:"value"`
	Description json.RawMessage  `json:"description"` // not stored
}

// segmentBody is the body of POST, PUT and PATCH on segments. The
// read-only fields are accepted and ignored.
type segmentBody struct {
	Name             optional[string] `json:"name"`
	Description      optional[string] `json:"description"`
	Rules            *[]ruleBody      `json:"rules"`
	Feature          optional[int64]  `json:"feature"`
	ID               json.RawMessage  `json:"id"`
	UUID             json.RawMessage  `json:"uuid"`
	Project          json.RawMessage  `json:"project"`
	CreatedAt        json.RawMessage  `json:"created_at"`
	UpdatedAt        json.RawMessage  `json:"updated_at"`
	VersionOf        json.RawMessage  `json:"version_of"`
	Metadata         json.RawMessage  `json:"metadata"`
	MembershipCounts json.RawMessage  `json:"membership_counts"`
	ManagedBy        json.RawMessage  `json:"managed_by"`
	Revision         json.RawMessage  `json:"revision"`
}

// repoRule and repoCondition are rules as the repository writes them.
type repoRule struct {
	Type       string          `json:"type"`
	Conditions []repoCondition `json:"conditions,omitempty"`
	Rules      []repoRule      `json:"rules,omitempty"`
}

type repoCondition struct {
	Property string `json:"property,omitempty"`
	Operator string `json:"operator"`
	Value    any    `json:"value,omitempty"`
}

// repoRules turns Flagsmith rules into the repository's. A condition's
// value is text, as in Flagsmith: a number is its text, a boolean "True" or
// "False" (Python's str()); a null value is left out (Flagsmith stores
// "None").
func repoRules(field string, in []ruleBody) ([]repoRule, error) {
	out := make([]repoRule, 0, len(in))
	for i, r := range in {
		at := fmt.Sprintf("%s[%d]", field, i)
		if r.Type == nil {
			return nil, fieldError(at+".type", "is required: ALL, ANY or NONE")
		}
		rr := repoRule{Type: *r.Type}
		for j, c := range r.Conditions {
			cat := fmt.Sprintf("%s.conditions[%d]", at, j)
			if c.Operator == nil {
				return nil, fieldError(cat+".operator", "is required")
			}
			rc := repoCondition{Property: c.Property.V, Operator: *c.Operator}
			switch raw := bytes.TrimSpace(c.Value); {
			case len(raw) == 0 || string(raw) == "null":
			case raw[0] == '"':
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					return nil, fieldError(cat+".value", "%v", err)
				}
				rc.Value = s
			case string(raw) == "true", string(raw) == "false":
				rc.Value = strings.ToUpper(string(raw[:1])) + string(raw[1:])
			case raw[0] == '{' || raw[0] == '[':
				return nil, fieldError(cat+".value", "must be a string (or a number or boolean, taken as its text)")
			default:
				rc.Value = string(raw)
			}
			rr.Conditions = append(rr.Conditions, rc)
		}
		sub, err := repoRules(at+".rules", r.Rules)
		if err != nil {
			return nil, err
		}
		if len(sub) > 0 {
			rr.Rules = sub
		}
		out = append(out, rr)
	}
	return out, nil
}

// spec checks a segment body and turns it into edit's spec; put requires
// the rules, as Flagsmith's PUT does.
func (b *segmentBody) spec(put bool) (edit.SegmentSpec, error) {
	var spec edit.SegmentSpec
	if b.Feature.Set && !b.Feature.Null {
		return spec, fieldError("feature", "feature-specific segments are not supported: leave feature null")
	}
	if b.Description.Set {
		spec.Description = &b.Description.V
	}
	switch {
	case b.Rules == nil && put:
		return spec, fieldError("rules", "is required")
	case b.Rules == nil:
		return spec, nil
	case len(*b.Rules) == 0:
		return spec, fieldError("rules", "This list may not be empty.")
	}
	rules, err := repoRules("rules", *b.Rules)
	if err != nil {
		return spec, err
	}
	spec.Rules, err = json.Marshal(rules)
	return spec, err
}

var segmentFieldNames = map[string]string{"key": "name"}

// adminSegmentCreate serves POST /api/v1/projects/:project/segments/. The
// name is the segment's key (its file name).
func (s *Server) adminSegmentCreate(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil || !adminProject(w, st, p) || !allowEnvironment(w, r, "", true) {
		return
	}
	var body segmentBody
	if !readAdminBody(w, r, &body) {
		return
	}
	if !body.Name.Set || body.Name.Null {
		s.writeFailed(w, r, fieldError("name", "is required"))
		return
	}
	spec, err := body.spec(true)
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	key := body.Name.V
	res, ok := s.commitWrite(w, r, writeTarget{subject: key}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			res, err := edit.CreateSegment(snap, files, key, spec)
			return res, renameFields(err, segmentFieldNames)
		},
	})
	if ok && !writeProposal(w, res) {
		s.answerSegment(w, http.StatusCreated, key, res.Revision)
	}
}

// answerSegment answers the segment key as served after a write.
func (s *Server) answerSegment(w http.ResponseWriter, status int, key, revision string) {
	st := s.servedAfter()
	sg := st.snap.Segments[key]
	if sg == nil {
		writeDetail(w, http.StatusConflict, fmt.Sprintf("segment %q is not served after the write", key))
		return
	}
	out := st.segmentJSON(sg)
	out.Revision = revision
	writeJSON(w, status, out)
}

// adminSegmentUpdate serves PUT and PATCH
// /api/v1/projects/:project/segments/:segment/.
func (s *Server) adminSegmentUpdate(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil || !adminProject(w, st, p) || !allowEnvironment(w, r, "", true) {
		return
	}
	sg := adminSegmentByPath(w, st, p)
	if sg == nil {
		return
	}
	var body segmentBody
	if !readAdminBody(w, r, &body) {
		return
	}
	put := r.Method == http.MethodPut
	var err error
	switch {
	case body.Name.Null || body.Name.Set && body.Name.V != sg.Key:
		err = fieldError("name", "segments cannot be renamed here: the name is the file name segments/%s.json", sg.Key)
	case put && !body.Name.Set:
		err = fieldError("name", "is required (PATCH changes only the fields it is given)")
	}
	var spec edit.SegmentSpec
	if err == nil {
		spec, err = body.spec(put)
	}
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	key := sg.Key
	res, ok := s.commitWrite(w, r, writeTarget{subject: key}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			return edit.UpdateSegment(snap, files, key, spec)
		},
	})
	if ok && !writeProposal(w, res) {
		s.answerSegment(w, http.StatusOK, key, res.Revision)
	}
}

// adminSegmentDelete serves DELETE
// /api/v1/projects/:project/segments/:segment/: the segment and every
// override for it.
func (s *Server) adminSegmentDelete(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil || !adminProject(w, st, p) || !allowEnvironment(w, r, "", true) {
		return
	}
	sg := adminSegmentByPath(w, st, p)
	if sg == nil {
		return
	}
	key := sg.Key
	res, ok := s.commitWrite(w, r, writeTarget{subject: key}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			return edit.DeleteSegment(snap, files, key)
		},
	})
	if ok && !writeProposal(w, res) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// Segment overrides.

// overrideID is the id of the override of feature f for segment sg in
// environment e (Flagsmith's feature segment id), and with kind "fs" the id
// of the feature state that holds its value: 53 bits of a SHA-256 of the
// kind and the three ids, so that JavaScript reads it exactly. A feature
// state id has bit 52 set (2^52 <= id < 2^53): it is never the id of a
// feature below 2^52, which is the id of the feature's state in an
// environment. Two overrides share an id with a chance of about n²/2⁵³ for n
// overrides.
func overrideID(kind string, e *flagrepo.Environment, f *flagrepo.Feature, sg *flagrepo.Segment) int64 {
	sum := sha256.Sum256(fmt.Appendf(nil, "gitflags/%s/%d/%d/%d", kind, e.ID, f.ID, sg.ID))
	id := int64(binary.BigEndian.Uint64(sum[:8]) >> 11)
	if kind == "fs" {
		return 1<<52 | id>>1
	}
	return max(id, 1)
}

// override is one segment override of the served snapshot.
type override struct {
	env     *flagrepo.Environment
	feature *flagrepo.Feature
	segment *flagrepo.Segment
	o       *flagrepo.SegmentOverride
}

// overridesOf lists the overrides of feature f in environment e by
// priority.
func overridesOf(snap *flagrepo.Snapshot, e *flagrepo.Environment, f *flagrepo.Feature) []override {
	var out []override
	if fs := e.Features[f.Key]; fs != nil {
		for i := range fs.SegmentOverrides {
			o := &fs.SegmentOverrides[i]
			if sg := snap.Segments[o.Segment]; sg != nil {
				out = append(out, override{e, f, sg, o})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b override) int { return a.o.Priority - b.o.Priority })
	return out
}

// overrideKey names an override by the keys of its environment, feature
// and segment.
type overrideKey struct{ env, feature, segment string }

// overrideIndex maps the derived ids of one snapshot's overrides (feature
// segment ids and the ids of their feature states) to them.
type overrideIndex struct {
	snap  weak.Pointer[flagrepo.Snapshot]
	fseg  map[int64]overrideKey
	state map[int64]overrideKey
}

// lastIndex is the index of the snapshot looked up last (the served one, as
// a rule), so that it is built once per revision rather than on every
// request. It holds the snapshot weakly: an old revision is not kept in
// memory for it.
var lastIndex atomic.Pointer[overrideIndex]

// indexOf returns the override index of snap.
func indexOf(snap *flagrepo.Snapshot) *overrideIndex {
	wp := weak.Make(snap)
	if ix := lastIndex.Load(); ix != nil && ix.snap == wp {
		return ix
	}
	ix := &overrideIndex{snap: wp, fseg: map[int64]overrideKey{}, state: map[int64]overrideKey{}}
	for _, e := range snap.Environments {
		for k, fs := range e.Features {
			f := snap.Features[k]
			if f == nil {
				continue
			}
			for _, o := range fs.SegmentOverrides {
				if sg := snap.Segments[o.Segment]; sg != nil {
					key := overrideKey{e.Key, f.Key, sg.Key}
					ix.fseg[overrideID("fseg", e, f, sg)] = key
					ix.state[overrideID("fs", e, f, sg)] = key
				}
			}
		}
	}
	lastIndex.Store(ix)
	return ix
}

// resolve returns the override of snap that key names.
func (key overrideKey) resolve(snap *flagrepo.Snapshot) (override, bool) {
	e, f, sg := snap.Environments[key.env], snap.Features[key.feature], snap.Segments[key.segment]
	if e == nil || f == nil || sg == nil || e.Features[key.feature] == nil {
		return override{}, false
	}
	fs := e.Features[key.feature]
	for i := range fs.SegmentOverrides {
		if fs.SegmentOverrides[i].Segment == key.segment {
			return override{e, f, sg, &fs.SegmentOverrides[i]}, true
		}
	}
	return override{}, false
}

// findOverride returns the override whose feature segment id is id.
func findOverride(snap *flagrepo.Snapshot, id int64) (override, bool) {
	key, ok := indexOf(snap).fseg[id]
	if !ok {
		return override{}, false
	}
	return key.resolve(snap)
}

// findOverrideState returns the override whose feature state id is id.
func findOverrideState(snap *flagrepo.Snapshot, id int64) (override, bool) {
	key, ok := indexOf(snap).state[id]
	if !ok {
		return override{}, false
	}
	return key.resolve(snap)
}

// adminFeatureSegment is Flagsmith's feature segment (list shape).
type adminFeatureSegment struct {
	ID                int64  `json:"id"`
	UUID              string `json:"uuid"`
	Segment           int64  `json:"segment"`
	Priority          int    `json:"priority"`
	Environment       int64  `json:"environment"`
	SegmentName       string `json:"segment_name"`
	IsFeatureSpecific bool   `json:"is_feature_specific"`
	Feature           int64  `json:"feature"`
}

func (o override) featureSegment() adminFeatureSegment {
	id := overrideID("fseg", o.env, o.feature, o.segment)
	return adminFeatureSegment{
		ID: id, UUID: stableUUID("feature-segment", id), Segment: o.segment.ID, Priority: o.o.Priority,
		Environment: o.env.ID, SegmentName: o.segment.Key, Feature: o.feature.ID,
	}
}

// adminFeatureSegments serves GET
// /api/v1/features/feature-segments/?environment=<id>&feature=<id>.
func (s *Server) adminFeatureSegments(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	q, ok := adminQuery(w, r)
	if !ok {
		return
	}
	e, f := queryEnvFeature(w, r, st, q, false)
	if e == nil || f == nil {
		return
	}
	list := []adminFeatureSegment{}
	for _, o := range overridesOf(st.snap, e, f) {
		list = append(list, o.featureSegment())
	}
	writePage(w, r, q, list, defaultPageSize, false)
}

// queryEnvFeature resolves the required environment and feature ids of a
// query, checking the caller may read (or write) the environment.
func queryEnvFeature(w http.ResponseWriter, r *http.Request, st *state, q map[string][]string, write bool) (*flagrepo.Environment, *flagrepo.Feature) {
	var ids [2]int64
	for i, name := range []string{"environment", "feature"} {
		id, set, good := intParam(w, q, name)
		if !good {
			return nil, nil
		}
		if !set {
			writeJSON(w, http.StatusBadRequest, map[string]string{"detail": fmt.Sprintf("query parameter %q is required", name), "field": name})
			return nil, nil
		}
		ids[i] = id
	}
	e, f := environmentByID(st.snap, ids[0]), featureByID(st.snap, ids[1])
	switch {
	case e == nil:
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": fmt.Sprintf("environment: there is no environment with id %d", ids[0]), "field": "environment"})
	case f == nil:
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": fmt.Sprintf("feature: there is no feature with id %d", ids[1]), "field": "feature"})
	case !allowEnvironment(w, r, e.Key, write):
	default:
		return e, f
	}
	return nil, nil
}

// adminOverrideByPath resolves :id of a feature segment path.
func adminOverrideByPath(w http.ResponseWriter, r *http.Request, st *state, p httprouter.Params, write bool) (override, bool) {
	id, ok := pathID(w, p, "id")
	if !ok {
		return override{}, false
	}
	o, ok := findOverride(st.snap, id)
	if !ok {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("feature segment %d not found", id))
		return override{}, false
	}
	return o, allowEnvironment(w, r, o.env.Key, write)
}

func (s *Server) adminFeatureSegmentGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	if o, ok := adminOverrideByPath(w, r, st, p, false); ok {
		writeJSON(w, http.StatusOK, o.featureSegment())
	}
}

// adminFeatureSegmentDelete serves DELETE
// /api/v1/features/feature-segments/:id/: the override and its value.
func (s *Server) adminFeatureSegmentDelete(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	o, ok := adminOverrideByPath(w, r, st, p, true)
	if !ok {
		return
	}
	env, feature, segment := o.env.Key, o.feature.Key, o.segment.Key
	res, ok := s.commitWrite(w, r, writeTarget{env: env, subject: feature}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			return edit.DeleteSegmentOverride(snap, files, env, feature, segment)
		},
	})
	if ok && !writeProposal(w, res) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// featureSegmentBody is the body of POST /api/v1/features/feature-segments/.
type featureSegmentBody struct {
	Feature     optional[int64] `json:"feature"`
	Segment     optional[int64] `json:"segment"`
	Environment optional[int64] `json:"environment"`
	Priority    json.RawMessage `json:"priority"` // read-only: a new override goes last
	ID          json.RawMessage `json:"id"`
	UUID        json.RawMessage `json:"uuid"`
}

// checkNoOverride refuses a second override of feature for segment in env.
func checkNoOverride(snap *flagrepo.Snapshot, env, feature, segment, field string) error {
	if e := snap.Environments[env]; e != nil {
		if fs := e.Features[feature]; fs != nil {
			for _, o := range fs.SegmentOverrides {
				if o.Segment == segment {
					return fieldError(field, "feature %q already has an override for segment %q in environment %q (priority %d)", feature, segment, env, o.Priority)
				}
			}
		}
	}
	return nil
}

// adminFeatureSegmentCreate serves POST /api/v1/features/feature-segments/:
// a new override, last, disabled and with the environment's value until
// its state is set.
func (s *Server) adminFeatureSegmentCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	var body featureSegmentBody
	if !readAdminBody(w, r, &body) {
		return
	}
	for _, f := range []struct {
		name string
		v    optional[int64]
	}{{"feature", body.Feature}, {"segment", body.Segment}, {"environment", body.Environment}} {
		if !f.v.Set || f.v.Null {
			s.writeFailed(w, r, fieldError(f.name, "This field is required."))
			return
		}
	}
	e, f, sg := environmentByID(st.snap, body.Environment.V), featureByID(st.snap, body.Feature.V), segmentByID(st.snap, body.Segment.V)
	switch {
	case e == nil:
		s.writeFailed(w, r, fieldError("environment", "there is no environment with id %d", body.Environment.V))
		return
	case f == nil:
		s.writeFailed(w, r, fieldError("feature", "there is no feature with id %d", body.Feature.V))
		return
	case sg == nil:
		s.writeFailed(w, r, fieldError("segment", "there is no segment with id %d", body.Segment.V))
		return
	case !allowEnvironment(w, r, e.Key, true):
		return
	}
	env, feature, segment := e.Key, f.Key, sg.Key
	disabled := false
	res, ok := s.commitWrite(w, r, writeTarget{env: env, subject: feature}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			if err := checkNoOverride(snap, env, feature, segment, "segment"); err != nil {
				return edit.Result{}, err
			}
			return edit.SetSegmentOverride(snap, files, env, feature, segment, edit.Override{Enabled: &disabled})
		},
	})
	if !ok || writeProposal(w, res) {
		return
	}
	o, ok := servedOverride(w, s.servedAfter(), env, feature, segment)
	if !ok {
		return
	}
	writeJSON(w, http.StatusCreated, o.writtenJSON(res.Revision))
}

// writtenJSON is the feature segment as its create and update answer it
// (Flagsmith's FeatureSegmentCreateSerializer), with the revision written.
func (o override) writtenJSON(revision string) map[string]any {
	fs := o.featureSegment()
	return map[string]any{
		"id": fs.ID, "uuid": fs.UUID, "feature": fs.Feature, "segment": fs.Segment,
		"environment": fs.Environment, "priority": fs.Priority, "revision": revision,
	}
}

// featureSegmentUpdateBody is the body of PUT and PATCH
// /api/v1/features/feature-segments/:id/: the create shape with the
// priority, and the fields of the list shape, accepted so that a client may
// send back what it read.
type featureSegmentUpdateBody struct {
	Feature           optional[int64] `json:"feature"`
	Segment           optional[int64] `json:"segment"`
	Environment       optional[int64] `json:"environment"`
	Priority          optional[int]   `json:"priority"`
	ID                json.RawMessage `json:"id"`
	UUID              json.RawMessage `json:"uuid"`
	SegmentName       json.RawMessage `json:"segment_name"`
	IsFeatureSpecific json.RawMessage `json:"is_feature_specific"`
	Revision          json.RawMessage `json:"revision"`
}

// adminFeatureSegmentUpdate serves PUT and PATCH
// /api/v1/features/feature-segments/:id/. An override is its environment,
// feature and segment (its id derives from them), so those may be sent but
// not changed; priority moves the override as update-priorities does (a
// priority that is taken moves its holder down). Flagsmith ignores priority
// here; PUT requires feature, segment and environment, as Flagsmith's does.
func (s *Server) adminFeatureSegmentUpdate(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	o, ok := adminOverrideByPath(w, r, st, p, true)
	if !ok {
		return
	}
	var body featureSegmentUpdateBody
	if !readAdminBody(w, r, &body) {
		return
	}
	put := r.Method == http.MethodPut
	for _, f := range []struct {
		name string
		v    optional[int64]
		now  int64
	}{{"feature", body.Feature, o.feature.ID}, {"segment", body.Segment, o.segment.ID}, {"environment", body.Environment, o.env.ID}} {
		switch {
		case put && !f.v.Set || f.v.Null:
			s.writeFailed(w, r, fieldError(f.name, "This field is required (PATCH changes only the fields it is given)."))
			return
		case f.v.Set && f.v.V != f.now:
			s.writeFailed(w, r, fieldError(f.name, "an override cannot be moved to another %s (%d, it has %d): its id derives from its environment, feature and segment; create the other override and delete this one", f.name, f.v.V, f.now))
			return
		}
	}
	var set edit.Override
	if pr := body.Priority; pr.Null {
		s.writeFailed(w, r, fieldError("priority", "may not be null"))
		return
	} else if pr.Set {
		set.Priority = &pr.V
	}
	env, feature, segment := o.env.Key, o.feature.Key, o.segment.Key
	res, ok := s.commitWrite(w, r, writeTarget{env: env, subject: feature}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			if err := checkOverride(snap, env, feature, segment); err != nil {
				return edit.Result{}, err
			}
			return edit.SetSegmentOverride(snap, files, env, feature, segment, set)
		},
	})
	if !ok || writeProposal(w, res) {
		return
	}
	if o, ok = servedOverride(w, s.servedAfter(), env, feature, segment); ok {
		writeJSON(w, http.StatusOK, o.writtenJSON(res.Revision))
	}
}

// servedOverride returns an override of the served state, answering 409
// when it is not there (a commit made meanwhile removed it).
func servedOverride(w http.ResponseWriter, st *state, env, feature, segment string) (override, bool) {
	e, f, sg := st.snap.Environments[env], st.snap.Features[feature], st.snap.Segments[segment]
	if e != nil && f != nil && sg != nil {
		for _, o := range overridesOf(st.snap, e, f) {
			if o.segment == sg {
				return o, true
			}
		}
	}
	writeDetail(w, http.StatusConflict, fmt.Sprintf("the override of %s for segment %s in %s is not served after the write", feature, segment, env))
	return override{}, false
}

// priorityBody is one item of update-priorities.
type priorityBody struct {
	ID       optional[int64] `json:"id"`
	Priority optional[int]   `json:"priority"`
}

// adminUpdatePriorities serves POST
// /api/v1/features/feature-segments/update-priorities/: it moves each
// override to its priority, in the order given, in one commit.
func (s *Server) adminUpdatePriorities(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	var body []priorityBody
	if !readAdminBody(w, r, &body) {
		return
	}
	if len(body) == 0 {
		s.writeFailed(w, r, fieldError("[]", "give at least one {\"id\", \"priority\"}"))
		return
	}
	var env, feature string
	segments := make([]string, len(body))
	priorities := make([]int, len(body))
	seen := map[int]int{}
	for i, item := range body {
		at := fmt.Sprintf("[%d]", i)
		switch {
		case !item.ID.Set || item.ID.Null:
			s.writeFailed(w, r, fieldError(at+".id", "This field is required."))
			return
		case !item.Priority.Set || item.Priority.Null:
			s.writeFailed(w, r, fieldError(at+".priority", "This field is required."))
			return
		case item.Priority.V < 0 || item.Priority.V > edit.MaxPriority:
			s.writeFailed(w, r, fieldError(at+".priority", "%d is not a priority from 0 to %d", item.Priority.V, edit.MaxPriority))
			return
		}
		if j, dup := seen[item.Priority.V]; dup {
			s.writeFailed(w, r, fieldError(at+".priority", "priority %d is also given to [%d]: give each override its own", item.Priority.V, j))
			return
		}
		seen[item.Priority.V] = i
		o, ok := findOverride(st.snap, item.ID.V)
		if !ok {
			s.writeFailed(w, r, fieldError(at+".id", "Some of the provided ids were not found: %d", item.ID.V))
			return
		}
		// Each override's environment is checked as soon as it is found:
		// a token limited to some environments gets 403 for an override
		// elsewhere, not a 400 below that says where that override is.
		if !allowEnvironment(w, r, o.env.Key, true) {
			return
		}
		if i == 0 {
			env, feature = o.env.Key, o.feature.Key
		} else if o.env.Key != env || o.feature.Key != feature {
			s.writeFailed(w, r, fieldError(at+".id", "All feature segments must belong to the same feature & environment."))
			return
		}
		segments[i], priorities[i] = o.segment.Key, item.Priority.V
	}
	res, ok := s.commitWrite(w, r, writeTarget{env: env, subject: feature}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			var all edit.Result
			for i, segment := range segments {
				if err := checkOverride(snap, env, feature, segment); err != nil {
					return edit.Result{}, err
				}
				res, err := edit.SetSegmentOverride(snap, edit.Overlay(files, all.Changes), env, feature, segment, edit.Override{Priority: &priorities[i]})
				if err != nil {
					return edit.Result{}, edit.WithField(fmt.Sprintf("[%d]", i), err)
				}
				all = all.Then(res)
			}
			return all, nil
		},
	})
	if !ok || writeProposal(w, res) {
		return
	}
	st = s.servedAfter()
	e, f := st.snap.Environments[env], st.snap.Features[feature]
	list := []adminFeatureSegment{}
	if e != nil && f != nil {
		for _, o := range overridesOf(st.snap, e, f) {
			list = append(list, o.featureSegment())
		}
	}
	writeJSON(w, http.StatusOK, list)
}

// checkOverride reports a segment override that the head no longer has.
func checkOverride(snap *flagrepo.Snapshot, env, feature, segment string) error {
	if checkNoOverride(snap, env, feature, segment, "") == nil {
		return &edit.NotFoundError{Kind: "segment override", Key: env + "/" + feature + "/" + segment}
	}
	return nil
}

// typedValueBody is a value as Flagsmith's nested feature state value:
// {"type": "unicode"|"int"|"bool", "string_value", "integer_value",
// "boolean_value"}.
type typedValueBody struct {
	Type         optional[string] `json:"type"`
	StringValue  optional[string] `json:"string_value"`
	IntegerValue optional[int64]  `json:"integer_value"`
	BooleanValue optional[bool]   `json:"boolean_value"`
}

func (b *typedValueBody) value(field string) (flagrepo.Value, error) {
	typ := "unicode"
	if b.Type.Set && !b.Type.Null {
		typ = b.Type.V
	}
	switch typ {
	case "unicode":
		if b.StringValue.Set && !b.StringValue.Null {
			return b.StringValue.V, nil
		}
		return nil, nil
	case "int":
		if !b.IntegerValue.Set || b.IntegerValue.Null {
			return nil, fieldError(field+".integer_value", "is required for type int")
		}
		return b.IntegerValue.V, nil
	case "bool":
		if !b.BooleanValue.Set || b.BooleanValue.Null {
			return nil, fieldError(field+".boolean_value", "is required for type bool")
		}
		return b.BooleanValue.V, nil
	}
	return nil, fieldError(field+".type", "%q is not a valid choice: unicode, int or bool", typ)
}

// typedValueJSON is v as a nested feature state value.
func typedValueJSON(v flagrepo.Value) map[string]any {
	out := map[string]any{"type": valueType(v), "string_value": nil, "integer_value": nil, "boolean_value": nil}
	switch x := v.(type) {
	case string:
		out["string_value"] = x
	case int64:
		out["integer_value"] = x
	case bool:
		out["boolean_value"] = x
	}
	return out
}

// segmentOverrideBody is the body of create-segment-override.
type segmentOverrideBody struct {
	Enabled           optional[bool]  `json:"enabled"`
	FeatureStateValue *typedValueBody `json:"feature_state_value"`
	FeatureSegment    *struct {
		Segment  optional[int64] `json:"segment"`
		Priority optional[int]   `json:"priority"`
	} `json:"feature_segment"`
	MultivariateFeatureStateValues *[]mvValueBody  `json:"multivariate_feature_state_values"`
	ID                             json.RawMessage `json:"id"`
	UUID                           json.RawMessage `json:"uuid"`
	Feature                        json.RawMessage `json:"feature"`
	Environment                    json.RawMessage `json:"environment"`
	Identity                       json.RawMessage `json:"identity"`
	DeletedAt                      json.RawMessage `json:"deleted_at"`
	CreatedAt                      json.RawMessage `json:"created_at"`
	UpdatedAt                      json.RawMessage `json:"updated_at"`
	LiveFrom                       json.RawMessage `json:"live_from"`
	ChangeRequest                  json.RawMessage `json:"change_request"`
}

// overrideFieldNames are edit's names of an override's inputs as
// create-segment-override names them.
var overrideFieldNames = map[string]string{"value": "feature_state_value", "weights": "multivariate_feature_state_values", "priority": "feature_segment.priority", "enabled": "enabled"}

// adminCreateSegmentOverride serves POST
// /api/v1/environments/:environment/features/:feature/create-segment-override/.
func (s *Server) adminCreateSegmentOverride(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	e := adminEnvironment(w, r, st, p.ByName("environment"), true)
	if e == nil {
		return
	}
	f := adminFeatureByPath(w, st, p)
	if f == nil {
		return
	}
	var body segmentOverrideBody
	if !readAdminBody(w, r, &body) {
		return
	}
	var o edit.Override
	var sg *flagrepo.Segment
	var err error
	switch {
	case body.FeatureSegment == nil || !body.FeatureSegment.Segment.Set || body.FeatureSegment.Segment.Null:
		err = fieldError("feature_segment.segment", "This field is required.")
	case body.FeatureStateValue == nil:
		err = fieldError("feature_state_value", "This field is required.")
	case body.Enabled.Null:
		err = fieldError("enabled", "may not be null")
	}
	if err == nil {
		if sg = segmentByID(st.snap, body.FeatureSegment.Segment.V); sg == nil {
			err = fieldError("feature_segment.segment", "there is no segment with id %d", body.FeatureSegment.Segment.V)
		}
	}
	if err == nil {
		enabled := body.Enabled.Set && body.Enabled.V
		o.Enabled = &enabled
		if pr := body.FeatureSegment.Priority; pr.Set && !pr.Null {
			o.Priority = &pr.V
		}
		o.Value.Set = true
		o.Value.Value, err = body.FeatureStateValue.value("feature_state_value")
	}
	if err == nil && body.MultivariateFeatureStateValues != nil {
		o.Weights, err = weightsOf("multivariate_feature_state_values", f, nil, *body.MultivariateFeatureStateValues)
	}
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	env, feature, segment := e.Key, f.Key, sg.Key
	res, ok := s.commitWrite(w, r, writeTarget{env: env, subject: feature}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			if err := checkNoOverride(snap, env, feature, segment, "feature_segment.segment"); err != nil {
				return edit.Result{}, err
			}
			res, err := edit.SetSegmentOverride(snap, files, env, feature, segment, o)
			return res, renameFields(err, overrideFieldNames)
		},
	})
	if !ok || writeProposal(w, res) {
		return
	}
	st = s.servedAfter()
	ov, ok := servedOverride(w, st, env, feature, segment)
	if !ok {
		return
	}
	writeJSON(w, http.StatusCreated, st.overrideStateJSON(ov, res.Revision))
}

// overrideStateJSON is the feature state of an override, as
// create-segment-override answers it.
func (st *state) overrideStateJSON(o override, revision string) map[string]any {
	value := o.env.Resolve(o.feature).Value
	if o.o.Value.Set {
		value = o.o.Value.Value
	}
	fsID := overrideID("fs", o.env, o.feature, o.segment)
	seg := o.featureSegment()
	at := st.snap.Revision.Time.UTC().Format(timeFormat)
	return map[string]any{
		"id": fsID, "feature": o.feature.ID, "enabled": o.o.Enabled, "feature_state_value": typedValueJSON(value),
		"feature_segment": map[string]any{"id": seg.ID, "segment": seg.Segment, "priority": seg.Priority, "uuid": seg.UUID},
		"deleted_at":      nil, "uuid": stableUUID("fs", o.env.ID, o.feature.ID, "segment", o.segment.Key),
		"created_at": at, "updated_at": at, "live_from": at, "environment": o.env.ID, "identity": nil, "change_request": nil,
		"multivariate_feature_state_values": mvValueList(o.o.OverrideWeights(o.feature)),
		"revision":                          revision,
	}
}
