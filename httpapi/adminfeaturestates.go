package httpapi

// Flagsmith Admin API: /api/v1/features/featurestates/ (Flagsmith's
// SimpleFeatureStateViewSet: list, create and update), the feature states
// of an environment's features and of its segment overrides, whose value is
// Flagsmith's nested object {"type": "unicode"|"int"|"bool",
// "string_value", "integer_value", "boolean_value"}. It is how Flagsmith's
// dashboard edits an override's value. Also the methods of
// /api/v1/environments/:environment/featurestates/ that the repository
// cannot hold (405). See adminapi.go.
//
// Feature state ids:
//   - an environment's state of a feature has the feature's id, as in
//     /api/v1/environments/:environment/featurestates/ and the SDK API. The
//     id does not name the environment, so a write of such a state names it
//     by "environment" in the body (PATCH included, where Flagsmith's id
//     alone would do);
//   - the state of a segment override has overrideID("fs", ...): bit 52 set
//     and 52 bits of a SHA-256 of the ids of its environment, feature and
//     segment. It stays the same while the override exists (whatever its
//     priority, value or state), is the same again when the override is made
//     anew, and is never the id of a feature below 2^52. An id is looked up
//     as an override's state first, then as a feature's.
//
// Identity overrides are not listed here, as in
// /api/v1/environments/:environment/featurestates/: they are in the
// environment's feature files.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/commits"
	"github.com/gitflags/gitflags/edit"
	"github.com/gitflags/gitflags/flagrepo"
)

// envStateNested is f's state in e with the value as a nested object.
func (st *state) envStateNested(e *flagrepo.Environment, f *flagrepo.Feature) adminFeatureState {
	out := st.featureStateJSON(e, f)
	out.FeatureStateValue = typedValueJSON(e.Resolve(f).Value)
	return out
}

// overrideStateNested is the feature state of override o: its value (the
// environment's when it has none), state and weights.
func (st *state) overrideStateNested(o override) adminFeatureState {
	value := o.env.Resolve(o.feature).Value
	if o.o.Value.Set {
		value = o.o.Value.Value
	}
	fseg := overrideID("fseg", o.env, o.feature, o.segment)
	created := st.createdDate(o.feature.Key)
	return adminFeatureState{
		ID: overrideID("fs", o.env, o.feature, o.segment), FeatureStateValue: typedValueJSON(value),
		MultivariateFeatureStateValues: mvValueList(o.o.OverrideWeights(o.feature)),
		UUID:                           stableUUID("fs", o.env.ID, o.feature.ID, "segment", o.segment.Key),
		Enabled:                        o.o.Enabled, CreatedAt: created,
		UpdatedAt: st.snap.Revision.Time.UTC().Format(timeFormat), LiveFrom: created, Version: 1,
		Feature: o.feature.ID, Environment: o.env.ID, FeatureSegment: &fseg,
	}
}

// adminAllFeatureStates serves GET
// /api/v1/features/featurestates/?environment=<id>: the states of the
// environment's features, each followed by its overrides' by priority, in
// feature id order; ?feature=<id> and ?feature_segment=<id> filter them.
func (s *Server) adminAllFeatureStates(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	q, ok := adminQuery(w, r)
	if !ok {
		return
	}
	envID, set, good := intParam(w, q, "environment")
	if !good {
		return
	}
	if !set {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "'environment' GET parameter is required.", "field": "environment"})
		return
	}
	e := environmentByID(st.snap, envID)
	if e == nil {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("Environment not found: there is no environment with id %d", envID))
		return
	}
	if !allowEnvironment(w, r, e.Key, false) {
		return
	}
	featureID, featureSet, good := intParam(w, q, "feature")
	if !good {
		return
	}
	fsegID, fsegSet, good := intParam(w, q, "feature_segment")
	if !good {
		return
	}
	var features []*flagrepo.Feature
	for _, f := range st.snap.Features {
		if !featureSet || f.ID == featureID {
			features = append(features, f)
		}
	}
	slices.SortFunc(features, func(a, b *flagrepo.Feature) int { return int(min(max(a.ID-b.ID, -1), 1)) })
	list := []adminFeatureState{}
	for _, f := range features {
		if !fsegSet {
			list = append(list, st.envStateNested(e, f))
		}
		for _, o := range overridesOf(st.snap, e, f) {
			if !fsegSet || overrideID("fseg", e, f, o.segment) == fsegID {
				list = append(list, st.overrideStateNested(o))
			}
		}
	}
	writePage(w, r, q, list, defaultPageSize, false)
}

// stateWriteBody is the body of POST /api/v1/features/featurestates/ and
// of PUT and PATCH /api/v1/features/featurestates/:id/ (Flagsmith's
// WritableNestedFeatureStateSerializer). The read-only fields are accepted
// and ignored, so that a client may send back what it read.
type stateWriteBody struct {
	Feature                        optional[int64]          `json:"feature"`
	Environment                    optional[int64]          `json:"environment"`
	FeatureSegment                 optional[int64]          `json:"feature_segment"`
	Enabled                        optional[bool]           `json:"enabled"`
	FeatureStateValue              optional[typedValueBody] `json:"feature_state_value"`
	MultivariateFeatureStateValues *[]mvValueBody           `json:"multivariate_feature_state_values"`
	Identity                       json.RawMessage          `json:"identity"`
	Identifier                     json.RawMessage          `json:"identifier"`
	EnvironmentFeatureVersion      json.RawMessage          `json:"environment_feature_version"`
	ID                             json.RawMessage          `json:"id"`
	UUID                           json.RawMessage          `json:"uuid"`
	DeletedAt                      json.RawMessage          `json:"deleted_at"`
	CreatedAt                      json.RawMessage          `json:"created_at"`
	UpdatedAt                      json.RawMessage          `json:"updated_at"`
	LiveFrom                       json.RawMessage          `json:"live_from"`
	Version                        json.RawMessage          `json:"version"`
	ChangeRequest                  json.RawMessage          `json:"change_request"`
	Revision                       json.RawMessage          `json:"revision"`
}

// isNull reports whether a raw field is absent or null.
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// check checks the fields every write shares: what is not stored by
// gitflags must be null, and a null may not stand for enabled or the value.
func (b *stateWriteBody) check() error {
	switch {
	case !isNull(b.Identity) || !isNull(b.Identifier):
		field := "identity"
		if isNull(b.Identity) {
			field = "identifier"
		}
		return fieldError(field, "identity overrides are not written by this endpoint: they are in environments/<env>/features/<feature>.json (identity_overrides)")
	case !isNull(b.EnvironmentFeatureVersion):
		return fieldError("environment_feature_version", "gitflags environments have no feature versions (Flagsmith's v2 versioning): leave it null")
	case b.Enabled.Null:
		return fieldError("enabled", "This field may not be null.")
	case b.FeatureStateValue.Null:
		return fieldError("feature_state_value", "This field may not be null.")
	}
	return nil
}

// state turns the body into the enabled, value and weights of a state of
// feature f whose weights are now (those of options not sent are kept).
func (b *stateWriteBody) state(f *flagrepo.Feature, now []flagrepo.VariantWeight) (edit.State, error) {
	var set edit.State
	if b.Enabled.Set {
		set.Enabled = &b.Enabled.V
	}
	if b.FeatureStateValue.Set {
		v, err := b.FeatureStateValue.V.value("feature_state_value")
		if err != nil {
			return set, err
		}
		set.Value = flagrepo.OptionalValue{Set: true, Value: v}
	}
	if b.MultivariateFeatureStateValues != nil {
		w, err := weightsOf("multivariate_feature_state_values", f, now, *b.MultivariateFeatureStateValues)
		if err != nil {
			return set, err
		}
		set.Weights = w
	}
	return set, nil
}

// writeOverrideState changes the state of override o in one commit and
// answers it as served after the write with status.
func (s *Server) writeOverrideState(w http.ResponseWriter, r *http.Request, status int, o override, set edit.State) {
	env, feature, segment := o.env.Key, o.feature.Key, o.segment.Key
	ov := edit.Override{Enabled: set.Enabled, Value: set.Value, Weights: set.Weights}
	res, ok := s.commitWrite(w, r, writeTarget{env: env, subject: feature}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			if err := checkOverride(snap, env, feature, segment); err != nil {
				return edit.Result{}, err
			}
			res, err := edit.SetSegmentOverride(snap, files, env, feature, segment, ov)
			return res, renameFields(err, stateFieldNames)
		},
	})
	if !ok || writeProposal(w, res) {
		return
	}
	st := s.servedAfter()
	if o, ok := servedOverride(w, st, env, feature, segment); ok {
		out := st.overrideStateNested(o)
		out.Revision = res.Revision
		writeJSON(w, status, out)
	}
}

// adminFeatureStateCreate serves POST /api/v1/features/featurestates/: the
// state of the override that "feature_segment" names (made by POST
// /api/v1/features/feature-segments/, disabled and with the environment's
// value until its state is set here). Every feature already has a state in
// every environment, so a body without feature_segment is refused; so is
// an identity override.
func (s *Server) adminFeatureStateCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	var body stateWriteBody
	if !readAdminBody(w, r, &body) {
		return
	}
	err := body.check()
	for _, f := range []struct {
		name string
		v    optional[int64]
	}{{"feature", body.Feature}, {"environment", body.Environment}} {
		if err == nil && (!f.v.Set || f.v.Null) {
			err = fieldError(f.name, "This field is required.")
		}
	}
	var e *flagrepo.Environment
	var f *flagrepo.Feature
	if err == nil {
		e, f = environmentByID(st.snap, body.Environment.V), featureByID(st.snap, body.Feature.V)
		switch {
		case e == nil:
			err = fieldError("environment", "there is no environment with id %d", body.Environment.V)
		case f == nil:
			err = fieldError("feature", "there is no feature with id %d", body.Feature.V)
		case !body.FeatureSegment.Set || body.FeatureSegment.Null:
			err = fieldError("feature_segment", "is required: feature %d already has a state in environment %d (its id is the feature's id); change it with PUT or PATCH /api/v1/features/featurestates/%d/", f.ID, e.ID, f.ID)
		}
	}
	var o override
	if err == nil {
		var found bool
		o, found = findOverride(st.snap, body.FeatureSegment.V)
		switch {
		case !found:
			err = fieldError("feature_segment", "there is no feature segment with id %d", body.FeatureSegment.V)
		case o.env != e:
			err = fieldError("feature_segment", "Feature Segment does not belong to environment: feature segment %d is in environment %d", body.FeatureSegment.V, o.env.ID)
		case o.feature != f:
			err = fieldError("feature", "feature segment %d overrides feature %d", body.FeatureSegment.V, o.feature.ID)
		}
	}
	var set edit.State
	if err == nil {
		set, err = body.state(f, o.o.OverrideWeights(f))
	}
	if err == nil && set.Enabled == nil {
		disabled := false // Flagsmith's default
		set.Enabled = &disabled
	}
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	if !allowEnvironment(w, r, e.Key, true) {
		return
	}
	s.writeOverrideState(w, r, http.StatusCreated, o, set)
}

// adminFeatureStateWrite serves PUT and PATCH
// /api/v1/features/featurestates/:id/: the state of an override (an
// override state's id), or of a feature in the environment the body names
// (a feature's id). Both are partial, but PUT requires feature and
// environment, as Flagsmith's does.
func (s *Server) adminFeatureStateWrite(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	id, ok := pathID(w, p, "id")
	if !ok {
		return
	}
	o, isOverride := findOverrideState(st.snap, id)
	var f *flagrepo.Feature
	if isOverride {
		f = o.feature
	} else if f = featureByID(st.snap, id); f == nil {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("feature state %d not found: it is neither a segment override's feature state nor a feature's id", id))
		return
	}
	var body stateWriteBody
	if !readAdminBody(w, r, &body) {
		return
	}
	err := body.check()
	if err == nil && r.Method == http.MethodPut {
		for _, fl := range []struct {
			name string
			v    optional[int64]
		}{{"feature", body.Feature}, {"environment", body.Environment}} {
			if err == nil && !fl.v.Set {
				err = fieldError(fl.name, "This field is required (PATCH changes only the fields it is given).")
			}
		}
	}
	if err == nil && body.Feature.Set && (body.Feature.Null || body.Feature.V != f.ID) {
		err = fieldError("feature", "Cannot change the feature of a feature state")
	}
	var e *flagrepo.Environment
	if err == nil {
		switch {
		case body.Environment.Null:
			err = fieldError("environment", "Environment may not be null.")
		case isOverride:
			e = o.env
			if body.Environment.Set && body.Environment.V != e.ID {
				err = fieldError("environment", "Cannot change the environment of a feature state")
			}
		case !body.Environment.Set:
			err = fieldError("environment", "is required: %d is feature %q's id, which is the id of its state in every environment", f.ID, f.Key)
		default:
			if e = environmentByID(st.snap, body.Environment.V); e == nil {
				err = fieldError("environment", "there is no environment with id %d", body.Environment.V)
			}
		}
	}
	if err == nil && body.FeatureSegment.Set {
		if !isOverride && !body.FeatureSegment.Null {
			err = fieldError("feature_segment", "Cannot change the feature segment of a feature state: %d is the state of feature %q in the environment (feature_segment null)", id, f.Key)
		}
		if isOverride {
			if fseg := overrideID("fseg", o.env, o.feature, o.segment); body.FeatureSegment.Null || body.FeatureSegment.V != fseg {
				err = fieldError("feature_segment", "Cannot change the feature segment of a feature state: it is the state of feature segment %d", fseg)
			}
		}
	}
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	if !allowEnvironment(w, r, e.Key, true) {
		return
	}
	if isOverride {
		set, err := body.state(f, o.o.OverrideWeights(f))
		if err != nil {
			s.writeFailed(w, r, err)
			return
		}
		s.writeOverrideState(w, r, http.StatusOK, o, set)
		return
	}
	set, err := body.state(f, e.Resolve(f).Weights)
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
	if e, f = st.snap.Environments[env], st.snap.Features[key]; e == nil || f == nil {
		writeDetail(w, http.StatusConflict, fmt.Sprintf("feature %q in environment %q is not served after the write", key, env))
		return
	}
	out := st.envStateNested(e, f)
	out.Revision = res.Revision
	writeJSON(w, http.StatusOK, out)
}

// adminEnvironmentStateMethod answers POST
// /api/v1/environments/:environment/featurestates/ and DELETE
// /api/v1/environments/:environment/featurestates/:id/, which create and
// delete a feature's state in an environment: in the repository every
// feature has a state in every environment (its default until the
// environment's feature file says otherwise), so neither has a meaning
// there. 405 with the reason and the way to do what the caller wants.
func (s *Server) adminEnvironmentStateMethod(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var detail string
	if r.Method == http.MethodDelete {
		w.Header().Set("Allow", "GET, PUT, PATCH")
		detail = fmt.Sprintf("DELETE is not allowed on %s: it removes a feature's state from an environment, and in gitflags every feature has a state in every environment (the feature's default unless environments/<env>/features/<feature>.json says otherwise). Turn the feature off here with PATCH {\"enabled\": false}, or delete the feature with DELETE /api/v1/projects/<project>/features/<feature>/", r.URL.Path)
	} else {
		w.Header().Set("Allow", "GET")
		detail = fmt.Sprintf("%s is not allowed on %s: it creates a feature's state in an environment, and in gitflags every feature already has one (its id is the feature's id). Change it with PUT or PATCH %s<feature id>/, or create a feature with POST /api/v1/projects/<project>/features/", r.Method, r.URL.Path, r.URL.Path)
	}
	writeDetail(w, http.StatusMethodNotAllowed, detail)
}
