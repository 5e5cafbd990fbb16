package httpapi

// Flagsmith Admin API: features (/api/v1/projects/:project/features/) and
// the feature states of an environment
// (/api/v1/environments/:environment/featurestates/). See adminapi.go.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/commits"
	"github.com/gitflags/gitflags/edit"
	"github.com/gitflags/gitflags/flagrepo"
)

// adminFeature is a feature as Flagsmith's admin API answers it. Tags and
// owners are the repository's names (Flagsmith has tag ids and user
// objects).
type adminFeature struct {
	ID                               int64            `json:"id"`
	Name                             string           `json:"name"`
	Type                             string           `json:"type"`
	DefaultEnabled                   bool             `json:"default_enabled"`
	InitialValue                     *string          `json:"initial_value"`
	CreatedDate                      string           `json:"created_date"`
	Description                      *string          `json:"description"`
	Tags                             []string         `json:"tags"`
	MultivariateOptions              []adminMVOption  `json:"multivariate_options"`
	IsArchived                       bool             `json:"is_archived"`
	Owners                           []string         `json:"owners"`
	GroupOwners                      []any            `json:"group_owners"`
	UUID                             string           `json:"uuid"`
	Project                          int64            `json:"project"`
	EnvironmentFeatureState          *adminStateSmall `json:"environment_feature_state"`
	SegmentFeatureState              any              `json:"segment_feature_state"`
	NumSegmentOverrides              *int             `json:"num_segment_overrides"`
	NumIdentityOverrides             *int             `json:"num_identity_overrides"`
	IsNumIdentityOverridesComplete   bool             `json:"is_num_identity_overrides_complete"`
	IsServerKeyOnly                  bool             `json:"is_server_key_only"`
	LastModifiedInAnyEnvironment     any              `json:"last_modified_in_any_environment"`
	LastModifiedInCurrentEnvironment any              `json:"last_modified_in_current_environment"`
	Metadata                         []any            `json:"metadata"`
	CodeReferencesCounts             []any            `json:"code_references_counts"`
	LifecycleStage                   any              `json:"lifecycle_stage"`
	Revision                         string           `json:"revision,omitempty"`
}

// adminMVOption is a variant as a Flagsmith multivariate option; key is the
// variant's key.
type adminMVOption struct {
	ID                          int64   `json:"id"`
	UUID                        string  `json:"uuid"`
	Type                        string  `json:"type"`
	IntegerValue                *int64  `json:"integer_value"`
	StringValue                 *string `json:"string_value"`
	BooleanValue                *bool   `json:"boolean_value"`
	DefaultPercentageAllocation float64 `json:"default_percentage_allocation"`
	Key                         string  `json:"key"`
}

// adminStateSmall is Flagsmith's FeatureStateSerializerSmall.
type adminStateSmall struct {
	ID                int64 `json:"id"`
	FeatureStateValue any   `json:"feature_state_value"`
	Environment       int64 `json:"environment"`
	Identity          any   `json:"identity"`
	FeatureSegment    any   `json:"feature_segment"`
	Enabled           bool  `json:"enabled"`
}

// valueType is Flagsmith's stored type of a flag value.
func valueType(v flagrepo.Value) string {
	switch v.(type) {
	case int64:
		return "int"
	case bool:
		return "bool"
	}
	return "unicode"
}

// featureJSON is feature f as Flagsmith answers it; with e, it carries f's
// state and override counts in environment e.
func (st *state) featureJSON(f *flagrepo.Feature, e *flagrepo.Environment) adminFeature {
	ff := newFlagsmithFeature(f, st.createdDate(f.Key))
	out := adminFeature{
		ID: f.ID, Name: f.Key, Type: ff.Type, DefaultEnabled: f.Default.Enabled, InitialValue: ff.InitialValue,
		CreatedDate: ff.CreatedDate, Description: ff.Description, Tags: nonNil(f.Tags),
		MultivariateOptions: []adminMVOption{}, Owners: nonNil(f.Owners), GroupOwners: []any{},
		UUID: stableUUID("feature", f.ID), Project: st.snap.Settings.Project.ID,
		IsNumIdentityOverridesComplete: true, IsServerKeyOnly: f.ServerKeyOnly,
		Metadata: []any{}, CodeReferencesCounts: []any{},
	}
	for _, v := range f.Variants {
		o := adminMVOption{ID: v.ID, UUID: stableUUID("mv", f.ID, v.ID), Type: valueType(v.Value.Value), DefaultPercentageAllocation: v.Weight, Key: v.Key}
		switch x := v.Value.Value.(type) {
		case string:
			o.StringValue = &x
		case int64:
			o.IntegerValue = &x
		case bool:
			o.BooleanValue = &x
		}
		out.MultivariateOptions = append(out.MultivariateOptions, o)
	}
	if e != nil {
		res := e.Resolve(f)
		out.EnvironmentFeatureState = &adminStateSmall{ID: f.ID, FeatureStateValue: res.Value, Environment: e.ID, Enabled: res.Enabled}
		segs, ids := len(res.SegmentOverrides), 0
		for _, o := range res.IdentityOverrides {
			ids += len(o.Identifiers)
		}
		out.NumSegmentOverrides, out.NumIdentityOverrides = &segs, &ids
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// adminFeatures serves GET /api/v1/projects/:project/features/.
func (s *Server) adminFeatures(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil || !adminProject(w, st, p) {
		return
	}
	q, ok := adminQuery(w, r)
	if !ok {
		return
	}
	var e *flagrepo.Environment
	if id, set, good := intParam(w, q, "environment"); !good {
		return
	} else if set {
		if e = environmentByID(st.snap, id); e == nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"detail": fmt.Sprintf("query parameter \"environment\": there is no environment with id %d", id), "field": "environment"})
			return
		}
		if !allowEnvironment(w, r, e.Key, false) {
			return
		}
	}
	param := func(name string) string {
		v, _, _ := queryParam(q, name)
		return v
	}
	for _, name := range []string{"search", "sort_field", "sort_direction", "type", "is_archived", "tags", "tag_strategy", "is_enabled", "value_search"} {
		if _, _, rerr := queryParam(q, name); rerr != nil {
			writeDetail(w, rerr.status, rerr.msg)
			return
		}
	}
	bad := func(name, why string) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": fmt.Sprintf("query parameter %q: %s", name, why), "field": name})
	}
	sortField, sortDir := cmpOr(param("sort_field"), "created_date"), cmpOr(param("sort_direction"), "ASC")
	if sortField != "created_date" && sortField != "name" {
		bad("sort_field", fmt.Sprintf("%q is not created_date or name", sortField))
		return
	}
	if sortDir != "ASC" && sortDir != "DESC" {
		bad("sort_direction", fmt.Sprintf("%q is not ASC or DESC", sortDir))
		return
	}
	typ := param("type")
	if typ != "" && typ != "STANDARD" && typ != "MULTIVARIATE" {
		bad("type", fmt.Sprintf("%q is not STANDARD or MULTIVARIATE", typ))
		return
	}
	archived, enabled := param("is_archived"), param("is_enabled")
	for name, v := range map[string]string{"is_archived": archived, "is_enabled": enabled} {
		if v != "" && v != "true" && v != "false" {
			bad(name, fmt.Sprintf("%q is not true or false", v))
			return
		}
	}
	valueSearch := param("value_search")
	if e == nil && (enabled != "" || valueSearch != "") {
		bad("environment", "Environment is required in order to filter by state search or by state enabled")
		return
	}
	tags, tagsSet, _ := queryParam(q, "tags")
	union := param("tag_strategy") == "UNION"
	search := strings.ToLower(param("search"))
	var list []adminFeature
	for _, k := range st.snap.FeatureKeys() {
		f := st.snap.Features[k]
		switch {
		case archived == "true",
			search != "" && !strings.Contains(strings.ToLower(k), search),
			typ != "" && featureType(f) != typ,
			tagsSet && !matchTags(f.Tags, tags, union):
			continue
		}
		if e != nil && (enabled != "" || valueSearch != "") {
			res := e.Resolve(f)
			if enabled != "" && strconv.FormatBool(res.Enabled) != enabled ||
				valueSearch != "" && (res.Value == nil || !strings.Contains(strings.ToLower(fmt.Sprint(res.Value)), strings.ToLower(valueSearch))) {
				continue
			}
		}
		list = append(list, st.featureJSON(f, e))
	}
	slices.SortStableFunc(list, func(a, b adminFeature) int {
		c := strings.Compare(a.Name, b.Name)
		if sortField == "created_date" { // ids grow with creation
			c = int(min(max(a.ID-b.ID, -1), 1))
		}
		if sortDir == "DESC" {
			c = -c
		}
		return c
	})
	writePage(w, r, q, list, customPageSize, true)
}

// matchTags reports whether tags has every name of the comma-separated
// list (any, with union); an empty list matches features without tags.
func matchTags(tags []string, list string, union bool) bool {
	if list == "" {
		return len(tags) == 0
	}
	for _, t := range strings.Split(list, ",") {
		has := slices.Contains(tags, strings.TrimSpace(t))
		if has && union {
			return true
		}
		if !has && !union {
			return false
		}
	}
	return !union
}

func cmpOr(v, dflt string) string {
	if v == "" {
		return dflt
	}
	return v
}

// adminFeatureByPath resolves :feature of a features path (an id).
func adminFeatureByPath(w http.ResponseWriter, st *state, p httprouter.Params) *flagrepo.Feature {
	id, ok := pathID(w, p, "feature")
	if !ok {
		return nil
	}
	f := featureByID(st.snap, id)
	if f == nil {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("feature %d not found", id))
	}
	return f
}

func (s *Server) adminFeatureGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil || !adminProject(w, st, p) {
		return
	}
	if f := adminFeatureByPath(w, st, p); f != nil {
		writeJSON(w, http.StatusOK, st.featureJSON(f, nil))
	}
}

// mvOptionBody is a multivariate option of a feature body.
type mvOptionBody struct {
	ID                          optional[int64]   `json:"id"`
	UUID                        json.RawMessage   `json:"uuid"` // ignored
	Key                         optional[string]  `json:"key"`
	Type                        optional[string]  `json:"type"`
	StringValue                 optional[string]  `json:"string_value"`
	IntegerValue                optional[int64]   `json:"integer_value"`
	BooleanValue                optional[bool]    `json:"boolean_value"`
	DefaultPercentageAllocation optional[float64] `json:"default_percentage_allocation"`
}

// featureBody is the body of POST, PUT and PATCH on features. The fields
// Flagsmith answers but does not write are accepted and ignored, so that a
// client may send back what it read.
type featureBody struct {
	Name                optional[string] `json:"name"`
	Description         optional[string] `json:"description"`
	DefaultEnabled      optional[bool]   `json:"default_enabled"`
	InitialValue        json.RawMessage  `json:"initial_value"`
	Type                optional[string] `json:"type"`
	MultivariateOptions *[]mvOptionBody  `json:"multivariate_options"`
	Tags                *[]string        `json:"tags"`
	Owners              *[]string        `json:"owners"`
	IsArchived          optional[bool]   `json:"is_archived"`
	IsServerKeyOnly     optional[bool]   `json:"is_server_key_only"`

	// Read-only: ignored.
	ID                               json.RawMessage `json:"id"`
	UUID                             json.RawMessage `json:"uuid"`
	Project                          json.RawMessage `json:"project"`
	CreatedDate                      json.RawMessage `json:"created_date"`
	GroupOwners                      json.RawMessage `json:"group_owners"`
	EnvironmentFeatureState          json.RawMessage `json:"environment_feature_state"`
	SegmentFeatureState              json.RawMessage `json:"segment_feature_state"`
	NumSegmentOverrides              json.RawMessage `json:"num_segment_overrides"`
	NumIDentityOverrides             json.RawMessage `json:"num_identity_overrides"`
	IsNumIDentityOverridesComplete   json.RawMessage `json:"is_num_identity_overrides_complete"`
	LastModifiedInAnyEnvironment     json.RawMessage `json:"last_modified_in_any_environment"`
	LastModifiedInCurrentEnvironment json.RawMessage `json:"last_modified_in_current_environment"`
	Metadata                         json.RawMessage `json:"metadata"`
	CodeReferencesCounts             json.RawMessage `json:"code_references_counts"`
	LifecycleStage                   json.RawMessage `json:"lifecycle_stage"`
	Revision                         json.RawMessage `json:"revision"`
}

// initialValue types Flagsmith's initial_value as Flagsmith does: its text
// is an integer (32-bit), true or false (any case), or a string.
func initialValue(raw json.RawMessage) (flagrepo.OptionalValue, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return flagrepo.OptionalValue{}, nil
	}
	var text string
	switch raw[0] {
	case '"':
		if err := json.Unmarshal(raw, &text); err != nil {
			return flagrepo.OptionalValue{}, fieldError("initial_value", "%v", err)
		}
	case 't', 'f':
		text = string(raw)
	case '{', '[':
		return flagrepo.OptionalValue{}, fieldError("initial_value", "must be a string, number or boolean")
	default:
		text = string(raw)
	}
	if n, err := strconv.ParseInt(text, 10, 32); err == nil {
		return flagrepo.OptionalValue{Set: true, Value: n}, nil
	}
	if b, err := strconv.ParseBool(strings.ToLower(text)); err == nil && (strings.EqualFold(text, "true") || strings.EqualFold(text, "false")) {
		return flagrepo.OptionalValue{Set: true, Value: b}, nil
	}
	return flagrepo.OptionalValue{Set: true, Value: text}, nil
}

// variants turns multivariate options into variants of feature f (nil for
// a new feature). An option keeps its variant by id; a new one takes its
// key, or its value when that is a valid key, or option_<n>.
func variants(f *flagrepo.Feature, opts []mvOptionBody, create bool) ([]edit.Variant, error) {
	out := make([]edit.Variant, 0, len(opts))
	used := map[string]bool{}
	sum := 0.0
	for i, o := range opts {
		field := fmt.Sprintf("multivariate_options[%d]", i)
		var old *flagrepo.Variant
		if o.ID.Set && !o.ID.Null && !create {
			if f != nil {
				for j := range f.Variants {
					if f.Variants[j].ID == o.ID.V {
						old = &f.Variants[j]
					}
				}
			}
			if old == nil {
				return nil, fieldError(field+".id", "feature has no multivariate option with id %d", o.ID.V)
			}
		}
		typ := "unicode"
		if o.Type.Set && !o.Type.Null {
			typ = o.Type.V
		}
		var v edit.Variant
		switch typ {
		case "unicode":
			if !o.StringValue.Null {
				v.Value = o.StringValue.V
			}
		case "int":
			if !o.IntegerValue.Set || o.IntegerValue.Null {
				return nil, fieldError(field+".integer_value", "is required for type int")
			}
			v.Value = o.IntegerValue.V
		case "bool":
			if !o.BooleanValue.Set || o.BooleanValue.Null {
				return nil, fieldError(field+".boolean_value", "is required for type bool")
			}
			v.Value = o.BooleanValue.V
		default:
			return nil, fieldError(field+".type", "%q is not a valid choice: unicode, int or bool", typ)
		}
		switch {
		case o.DefaultPercentageAllocation.Set && !o.DefaultPercentageAllocation.Null:
			v.Weight = o.DefaultPercentageAllocation.V
		case old != nil:
			v.Weight = old.Weight
		default:
			v.Weight = 100
		}
		if v.Weight < 0 || v.Weight > 100 {
			return nil, fieldError(field+".default_percentage_allocation", "%g is not a percentage from 0 to 100", v.Weight)
		}
		sum += v.Weight
		switch {
		case old != nil:
			v.Key = old.Key
		case o.Key.Set && !o.Key.Null:
			v.Key = o.Key.V
		default:
			text := fmt.Sprint(v.Value)
			if !flagrepo.KeyPattern.MatchString(text) || len(text) > flagrepo.MaxKeyLength || used[text] {
				text = ""
			}
			for n := i + 1; text == ""; n++ {
				if k := "option_" + strconv.Itoa(n); !used[k] && (f == nil || f.Variant(k) == nil) {
					text = k
				}
			}
			v.Key = text
		}
		if used[v.Key] {
			return nil, fieldError(field+".key", "%q is given twice", v.Key)
		}
		used[v.Key] = true
		out = append(out, v)
	}
	if sum > 100 {
		return nil, fieldError("multivariate_options", "Invalid percentage allocation: the default percentages add up to %g, over 100", sum)
	}
	return out, nil
}

// spec checks a feature body and turns it into edit's spec. On create
// (f nil) name, default_enabled and initial_value are written; on update
// they are read-only, as in Flagsmith, and ignored.
func (b *featureBody) spec(f *flagrepo.Feature) (edit.FeatureSpec, error) {
	var spec edit.FeatureSpec
	create := f == nil
	if b.Description.Set {
		spec.Description = &b.Description.V
	}
	if b.Type.Set && !b.Type.Null && b.Type.V != "STANDARD" && b.Type.V != "MULTIVARIATE" {
		return spec, fieldError("type", "%q is not a valid choice: STANDARD or MULTIVARIATE", b.Type.V)
	}
	if b.IsArchived.Set && b.IsArchived.V {
		return spec, fieldError("is_archived", "gitflags has no archived features: delete the feature instead")
	}
	if b.IsServerKeyOnly.Set && !b.IsServerKeyOnly.Null {
		spec.ServerKeyOnly = &b.IsServerKeyOnly.V
	}
	if b.Tags != nil {
		spec.Tags = nonNil(*b.Tags)
	}
	if create {
		if b.Owners != nil {
			spec.Owners = nonNil(*b.Owners)
		}
		if b.DefaultEnabled.Set && !b.DefaultEnabled.Null {
			spec.Enabled = &b.DefaultEnabled.V
		}
		v, err := initialValue(b.InitialValue)
		if err != nil {
			return spec, err
		}
		spec.Value = v
	}
	if b.MultivariateOptions != nil {
		vs, err := variants(f, *b.MultivariateOptions, create)
		if err != nil {
			return spec, err
		}
		spec.Variants = vs
	}
	return spec, nil
}

// featureFieldNames are edit's names of a feature's inputs as this API
// names them.
var featureFieldNames = map[string]string{"key": "name", "variants": "multivariate_options", "value": "initial_value", "owners": "owners", "tags": "tags"}

// adminFeatureCreate serves POST /api/v1/projects/:project/features/.
func (s *Server) adminFeatureCreate(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil || !adminProject(w, st, p) || !allowEnvironment(w, r, "", true) {
		return
	}
	var body featureBody
	if !readAdminBody(w, r, &body) {
		return
	}
	if !body.Name.Set || body.Name.Null {
		s.writeFailed(w, r, fieldError("name", "is required"))
		return
	}
	spec, err := body.spec(nil)
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	key := body.Name.V
	res, ok := s.commitWrite(w, r, writeTarget{subject: key}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			res, err := edit.CreateFeature(snap, files, key, spec)
			return res, renameFields(err, featureFieldNames)
		},
	})
	if ok && !writeProposal(w, res) {
		s.answerFeature(w, http.StatusCreated, key, res.Revision)
	}
}

// answerFeature answers the feature key as served after a write.
func (s *Server) answerFeature(w http.ResponseWriter, status int, key, revision string) {
	st := s.servedAfter()
	f := st.snap.Features[key]
	if f == nil {
		writeDetail(w, http.StatusConflict, fmt.Sprintf("feature %q is not served after the write", key))
		return
	}
	out := st.featureJSON(f, nil)
	out.Revision = revision
	writeJSON(w, status, out)
}

// adminFeatureUpdate serves PUT and PATCH
// /api/v1/projects/:project/features/:feature/.
func (s *Server) adminFeatureUpdate(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil || !adminProject(w, st, p) || !allowEnvironment(w, r, "", true) {
		return
	}
	f := adminFeatureByPath(w, st, p)
	if f == nil {
		return
	}
	var body featureBody
	if !readAdminBody(w, r, &body) {
		return
	}
	spec, err := body.spec(f)
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	key := f.Key
	res, ok := s.commitWrite(w, r, writeTarget{subject: key}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			res, err := edit.UpdateFeature(snap, files, key, spec)
			return res, renameFields(err, featureFieldNames)
		},
	})
	if ok && !writeProposal(w, res) {
		s.answerFeature(w, http.StatusOK, key, res.Revision)
	}
}

// adminFeatureDelete serves DELETE
// /api/v1/projects/:project/features/:feature/: the feature's file and its
// state in every environment.
func (s *Server) adminFeatureDelete(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil || !adminProject(w, st, p) || !allowEnvironment(w, r, "", true) {
		return
	}
	f := adminFeatureByPath(w, st, p)
	if f == nil {
		return
	}
	key := f.Key
	res, ok := s.commitWrite(w, r, writeTarget{subject: key}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			return edit.DeleteFeature(snap, files, key)
		},
	})
	if ok && !writeProposal(w, res) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// Feature states of an environment.

// adminFeatureState is Flagsmith's FeatureStateSerializerBasic.
type adminFeatureState struct {
	ID                             int64          `json:"id"`
	FeatureStateValue              any            `json:"feature_state_value"`
	MultivariateFeatureStateValues []adminMVValue `json:"multivariate_feature_state_values"`
	DeletedAt                      any            `json:"deleted_at"`
	UUID                           string         `json:"uuid"`
	Enabled                        bool           `json:"enabled"`
	CreatedAt                      string         `json:"created_at"`
	UpdatedAt                      string         `json:"updated_at"`
	LiveFrom                       string         `json:"live_from"`
	Version                        int            `json:"version"`
	Feature                        int64          `json:"feature"`
	Environment                    int64          `json:"environment"`
	Identity                       any            `json:"identity"`
	FeatureSegment                 *int64         `json:"feature_segment"`
	ChangeRequest                  any            `json:"change_request"`
	EnvironmentFeatureVersion      any            `json:"environment_feature_version"`
	Revision                       string         `json:"revision,omitempty"`
}

// adminMVValue is one variant's weight in a state; its id is the
// variant's, as in the environment document.
type adminMVValue struct {
	ID                        int64   `json:"id"`
	MultivariateFeatureOption int64   `json:"multivariate_feature_option"`
	PercentageAllocation      float64 `json:"percentage_allocation"`
}

func mvValueList(ws []flagrepo.VariantWeight) []adminMVValue {
	out := []adminMVValue{}
	for _, w := range ws {
		out = append(out, adminMVValue{ID: w.Variant.ID, MultivariateFeatureOption: w.Variant.ID, PercentageAllocation: w.Weight})
	}
	return out
}

// featureStateJSON is f's state in e (the environment's default, not an
// override); its id is f's.
func (st *state) featureStateJSON(e *flagrepo.Environment, f *flagrepo.Feature) adminFeatureState {
	res := e.Resolve(f)
	at := st.snap.Revision.Time.UTC().Format(timeFormat)
	return adminFeatureState{
		ID: f.ID, FeatureStateValue: res.Value, MultivariateFeatureStateValues: mvValueList(res.Weights),
		UUID: stableUUID("fs", e.ID, f.ID), Enabled: res.Enabled,
		CreatedAt: st.createdDate(f.Key), UpdatedAt: at, LiveFrom: st.createdDate(f.Key), Version: 1,
		Feature: f.ID, Environment: e.ID,
	}
}

// adminFeatureStates serves GET /api/v1/environments/:environment/featurestates/.
func (s *Server) adminFeatureStates(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	e := adminEnvironment(w, r, st, p.ByName("environment"), false)
	if e == nil {
		return
	}
	q, ok := adminQuery(w, r)
	if !ok {
		return
	}
	if _, set, _ := queryParam(q, "anyIdentity"); set {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "query parameter \"anyIdentity\": identity overrides are not listed by this endpoint; they are in environments/<env>/features/<feature>.json", "field": "anyIdentity"})
		return
	}
	id, idSet, good := intParam(w, q, "feature")
	if !good {
		return
	}
	name, nameSet, rerr := queryParam(q, "feature_name")
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	var list []adminFeatureState
	for _, k := range st.snap.FeatureKeys() {
		f := st.snap.Features[k]
		if idSet && f.ID != id || nameSet && !strings.EqualFold(k, name) {
			continue
		}
		list = append(list, st.featureStateJSON(e, f))
	}
	slices.SortFunc(list, func(a, b adminFeatureState) int { return int(min(max(a.ID-b.ID, -1), 1)) })
	writePage(w, r, q, list, defaultPageSize, false)
}

// adminFeatureStateGet serves GET
// /api/v1/environments/:environment/featurestates/:id/.
func (s *Server) adminFeatureStateGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	e := adminEnvironment(w, r, st, p.ByName("environment"), false)
	if e == nil {
		return
	}
	if f := stateFeature(w, st, p); f != nil {
		writeJSON(w, http.StatusOK, st.featureStateJSON(e, f))
	}
}

// stateFeature resolves the :id of a feature state path: the feature's id.
func stateFeature(w http.ResponseWriter, st *state, p httprouter.Params) *flagrepo.Feature {
	id, ok := pathID(w, p, "id")
	if !ok {
		return nil
	}
	f := featureByID(st.snap, id)
	if f == nil {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("feature state %d not found: a feature state's id is its feature's id", id))
	}
	return f
}

// mvValueBody is one weight of a feature state body.
type mvValueBody struct {
	ID                        json.RawMessage   `json:"id"` // ignored: the option names the weight
	MultivariateFeatureOption optional[int64]   `json:"multivariate_feature_option"`
	PercentageAllocation      optional[float64] `json:"percentage_allocation"`
}

// featureStateBody is the body of PUT and PATCH on a feature state (both
// partial, as in Flagsmith). The read-only fields are accepted and ignored.
type featureStateBody struct {
	Enabled                        optional[bool]  `json:"enabled"`
	FeatureStateValue              json.RawMessage `json:"feature_state_value"`
	MultivariateFeatureStateValues *[]mvValueBody  `json:"multivariate_feature_state_values"`
	Feature                        optional[int64] `json:"feature"`
	Environment                    optional[int64] `json:"environment"`
	ID                             json.RawMessage `json:"id"`
	UUID                           json.RawMessage `json:"uuid"`
	DeletedAt                      json.RawMessage `json:"deleted_at"`
	CreatedAt                      json.RawMessage `json:"created_at"`
	UpdatedAt                      json.RawMessage `json:"updated_at"`
	LiveFrom                       json.RawMessage `json:"live_from"`
	Version                        json.RawMessage `json:"version"`
	Identity                       json.RawMessage `json:"identity"`
	FeatureSegment                 json.RawMessage `json:"feature_segment"`
	ChangeRequest                  json.RawMessage `json:"change_request"`
	EnvironmentFeatureVersion      json.RawMessage `json:"environment_feature_version"`
	Revision                       json.RawMessage `json:"revision"`
}

// rawValue types a flag value sent as a JSON scalar, as Flagsmith types
// feature_state_value: a string, an integer, a boolean or null; another
// number becomes its text.
func rawValue(field string, raw json.RawMessage) (flagrepo.Value, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case string(raw) == "null":
		return nil, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fieldError(field, "%v", err)
		}
		return s, nil
	case string(raw) == "true" || string(raw) == "false":
		return string(raw) == "true", nil
	case raw[0] == '{' || raw[0] == '[':
		return nil, fieldError(field, "must be a string, integer, boolean or null")
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n, nil
	}
	if _, err := strconv.ParseFloat(string(raw), 64); err != nil {
		return nil, fieldError(field, "%s is not a number", raw)
	}
	return string(raw), nil
}

// weightsOf turns multivariate_feature_state_values into weights by variant
// key over now (the weights in force, which Flagsmith keeps for the options
// a request leaves out).
func weightsOf(field string, f *flagrepo.Feature, now []flagrepo.VariantWeight, in []mvValueBody) (map[string]float64, error) {
	out := map[string]float64{}
	for _, w := range now {
		out[w.Variant.Key] = w.Weight
	}
	seen := map[int64]bool{}
	for i, v := range in {
		at := fmt.Sprintf("%s[%d]", field, i)
		if !v.MultivariateFeatureOption.Set || v.MultivariateFeatureOption.Null {
			return nil, fieldError(at+".multivariate_feature_option", "is required")
		}
		if !v.PercentageAllocation.Set || v.PercentageAllocation.Null {
			return nil, fieldError(at+".percentage_allocation", "is required")
		}
		id := v.MultivariateFeatureOption.V
		var key string
		for _, x := range f.Variants {
			if x.ID == id {
				key = x.Key
			}
		}
		if key == "" {
			return nil, fieldError(at+".multivariate_feature_option", "feature %q has no multivariate option with id %d", f.Key, id)
		}
		if seen[id] {
			return nil, fieldError(at+".multivariate_feature_option", "option %d is given twice", id)
		}
		seen[id] = true
		out[key] = v.PercentageAllocation.V
	}
	return out, nil
}

// stateFieldNames are edit's names of a state's inputs as this API names
// them.
var stateFieldNames = map[string]string{"value": "feature_state_value", "weights": "multivariate_feature_state_values", "enabled": "enabled"}

// adminFeatureStateUpdate serves PUT and PATCH
// /api/v1/environments/:environment/featurestates/:id/.
func (s *Server) adminFeatureStateUpdate(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	e := adminEnvironment(w, r, st, p.ByName("environment"), true)
	if e == nil {
		return
	}
	f := stateFeature(w, st, p)
	if f == nil {
		return
	}
	var body featureStateBody
	if !readAdminBody(w, r, &body) {
		return
	}
	var set edit.State
	var err error
	switch {
	case body.Feature.Set && (body.Feature.Null || body.Feature.V != f.ID):
		err = fieldError("feature", "Cannot change the feature of a feature state")
	case body.Environment.Set && (body.Environment.Null || body.Environment.V != e.ID):
		err = fieldError("environment", "Cannot change the environment of a feature state")
	case body.Enabled.Null:
		err = fieldError("enabled", "may not be null")
	}
	if err == nil && body.Enabled.Set {
		set.Enabled = &body.Enabled.V
	}
	if err == nil && body.FeatureStateValue != nil {
		set.Value.Set = true
		set.Value.Value, err = rawValue("feature_state_value", body.FeatureStateValue)
	}
	if err == nil && body.MultivariateFeatureStateValues != nil {
		set.Weights, err = weightsOf("multivariate_feature_state_values", f, e.Resolve(f).Weights, *body.MultivariateFeatureStateValues)
	}
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	env, key := e.Key, f.Key
	res, ok := s.commitWrite(w, r, writeTarget{env: env, subject: key}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			res, err := edit.SetFeatureState(snap, files, env, key, set)
			return res, renameFields(err, stateFieldNames)
		},
	})
	if !ok || writeProposal(w, res) {
		return
	}
	st = s.servedAfter()
	e, f = st.snap.Environments[env], st.snap.Features[key]
	if e == nil || f == nil {
		writeDetail(w, http.StatusConflict, fmt.Sprintf("feature %q in environment %q is not served after the write", key, env))
		return
	}
	out := st.featureStateJSON(e, f)
	out.Revision = res.Revision
	writeJSON(w, http.StatusOK, out)
}
