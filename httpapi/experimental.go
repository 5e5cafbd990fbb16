package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/commits"
	"github.com/gitflags/gitflags/edit"
	"github.com/gitflags/gitflags/flagrepo"
)

// Flagsmith's experimental update-flag endpoints ("Updating Flags
// (Experimental)"): POST /api/experiments/environments/{key}/update-flag-v1/,
// update-flag-v2/ and delete-segment-override/, answering 204. {key} is the
// environment's client key (or its key, the directory name). Each request
// is one commit. gitflags adds multivariate weights to both update
// endpoints ("multivariate_feature_state_values", as update-flag-v2's
// segment overrides have them in Flagsmith).

// featureRef names a feature by name or by id, not both.
type featureRef struct {
	Name *string `json:"name"`
	ID   *int64  `json:"id"`
}

// segmentRef names a segment by id, with an optional priority.
type segmentRef struct {
	ID       *int64 `json:"id"`
	Priority *int   `json:"priority"`
}

// weightRef is one variant's percentage, by the variant's id.
type weightRef struct {
	Option     *int64   `json:"multivariate_feature_option"`
	Percentage *float64 `json:"percentage_allocation"`
}

type updateFlagV1 struct {
	Feature featureRef      `json:"feature"`
	Segment *segmentRef     `json:"segment"`
	Enabled *bool           `json:"enabled"`
	Value   json.RawMessage `json:"value"`
	Weights []weightRef     `json:"multivariate_feature_state_values"`
}

type stateV2 struct {
	Enabled *bool           `json:"enabled"`
	Value   json.RawMessage `json:"value"`
	Weights []weightRef     `json:"multivariate_feature_state_values"`
}

type overrideV2 struct {
	SegmentID *int64 `json:"segment_id"`
	Priority  *int   `json:"priority"`
	stateV2
}

type updateFlagV2 struct {
	Feature          featureRef   `json:"feature"`
	Default          *stateV2     `json:"environment_default"`
	SegmentOverrides []overrideV2 `json:"segment_overrides"`
}

type deleteOverride struct {
	Feature featureRef  `json:"feature"`
	Segment *segmentRef `json:"segment"`
}

// experimentEnvironment resolves the {environment_key} of an experimental
// path and checks the caller may write to it.
func (s *Server) experimentEnvironment(w http.ResponseWriter, r *http.Request, p httprouter.Params) (*flagrepo.Snapshot, string, bool) {
	st := s.current.Load()
	if st == nil {
		writeDetail(w, http.StatusServiceUnavailable, "no valid revision loaded yet")
		return nil, "", false
	}
	key := p.ByName("environment")
	env := ""
	if es := st.ByClientKey(key); es != nil {
		env = es.Key()
	} else if st.snap.Environments[key] != nil {
		env = key
	}
	if env == "" {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("no environment has the client key or key %q", key))
		return nil, "", false
	}
	return st.snap, env, allowEnvironment(w, r, env, true)
}

// resolve finds the feature of ref in snap.
func (ref featureRef) resolve(snap *flagrepo.Snapshot) (string, error) {
	switch {
	case ref.Name != nil && ref.ID != nil:
		return "", &edit.InputError{Field: "feature", Message: "give either name or id, not both"}
	case ref.Name != nil:
		if snap.Features[*ref.Name] == nil {
			return "", &edit.NotFoundError{Kind: "feature", Key: *ref.Name}
		}
		return *ref.Name, nil
	case ref.ID != nil:
		for _, k := range snap.FeatureKeys() {
			if snap.Features[k].ID == *ref.ID {
				return k, nil
			}
		}
		return "", &edit.NotFoundError{Kind: "feature", Key: "id " + strconv.FormatInt(*ref.ID, 10)}
	}
	return "", &edit.InputError{Field: "feature", Message: "either name or id is required"}
}

// segmentKey finds the segment of id in snap.
func segmentKey(snap *flagrepo.Snapshot, field string, id *int64) (string, error) {
	if id == nil {
		return "", &edit.InputError{Field: field, Message: "required"}
	}
	for _, k := range snap.SegmentKeys() {
		if snap.Segments[k].ID == *id {
			return k, nil
		}
	}
	return "", &edit.InputError{Field: field, Message: fmt.Sprintf("there is no segment with id %d", *id)}
}

// requestState turns the enabled, typed value and weights of a request into an
// edit: required says whether enabled and value must be there.
func requestState(snap *flagrepo.Snapshot, feature, field string, enabled *bool, value json.RawMessage, weights []weightRef) (edit.State, error) {
	var st edit.State
	if enabled == nil {
		return st, &edit.InputError{Field: join(field, "enabled"), Message: "required (true or false)"}
	}
	if value == nil {
		return st, &edit.InputError{Field: join(field, "value"), Message: `required: {"type": "string"|"integer"|"boolean", "value": "..."}`}
	}
	v, err := edit.ParseTypedValue(join(field, "value"), value)
	if err != nil {
		return st, err
	}
	st.Enabled, st.Value = enabled, flagrepo.OptionalValue{Set: true, Value: v}
	if weights == nil {
		return st, nil
	}
	f := snap.Features[feature]
	st.Weights = map[string]float64{}
	for i, wr := range weights {
		at := fmt.Sprintf("%s[%d]", join(field, "multivariate_feature_state_values"), i)
		if wr.Option == nil || wr.Percentage == nil {
			return st, &edit.InputError{Field: at, Message: "multivariate_feature_option and percentage_allocation are required"}
		}
		key := ""
		for _, v := range f.Variants {
			if v.ID == *wr.Option {
				key = v.Key
			}
		}
		if key == "" {
			return st, &edit.InputError{Field: at + ".multivariate_feature_option", Message: fmt.Sprintf("feature %q has no variant with id %d", feature, *wr.Option)}
		}
		if _, dup := st.Weights[key]; dup {
			return st, &edit.InputError{Field: at + ".multivariate_feature_option", Message: fmt.Sprintf("variant %d is given twice", *wr.Option)}
		}
		st.Weights[key] = *wr.Percentage
	}
	return st, nil
}

// mergeWeights returns the weights now in force with sent's over them:
// Flagsmith keeps the weight of a variant the request does not name.
func mergeWeights(now, sent map[string]float64) map[string]float64 {
	if sent == nil {
		return nil
	}
	out := map[string]float64{}
	for k, v := range now {
		out[k] = v
	}
	for k, v := range sent {
		out[k] = v
	}
	return out
}

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

// currentState returns a feature's state document in an environment, or nil.
func currentState(snap *flagrepo.Snapshot, env, feature string) *flagrepo.FeatureState {
	return snap.Environments[env].Features[feature]
}

// overrideWeights returns the weights of the override of segment in st.
func overrideWeights(st *flagrepo.FeatureState, segment string) map[string]float64 {
	if st == nil {
		return nil
	}
	for _, o := range st.SegmentOverrides {
		if o.Segment == segment {
			return o.Weights
		}
	}
	return nil
}

func stateWeights(st *flagrepo.FeatureState) map[string]float64 {
	if st == nil {
		return nil
	}
	return st.Weights
}

// setState is the edit of a feature's environment state or of one segment
// override, from a request's parts.
func setState(snap *flagrepo.Snapshot, files edit.Files, env, feature, field string, seg *segmentRef, enabled *bool, value json.RawMessage, weights []weightRef) (edit.Result, error) {
	st, err := requestState(snap, feature, field, enabled, value, weights)
	if err != nil {
		return edit.Result{}, err
	}
	cur := currentState(snap, env, feature)
	if seg == nil {
		st.Weights = mergeWeights(stateWeights(cur), st.Weights)
		return edit.SetFeatureState(snap, files, env, feature, st)
	}
	segKey, err := segmentKey(snap, join(field, "segment.id"), seg.ID)
	if err != nil {
		return edit.Result{}, err
	}
	return edit.SetSegmentOverride(snap, files, env, feature, segKey, edit.Override{
		Priority: seg.Priority, Enabled: st.Enabled, Value: st.Value,
		Weights: mergeWeights(overrideWeights(cur, segKey), st.Weights),
	})
}

func (s *Server) updateFlagV1(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	var body updateFlagV1
	if !readAdminBody(w, r, &body) {
		return
	}
	snap, env, ok := s.experimentEnvironment(w, r, p)
	if !ok {
		return
	}
	s.experimentWrite(w, r, env, snap, body.Feature, func(snap *flagrepo.Snapshot, files edit.Files, feature string) (edit.Result, error) {
		return setState(snap, files, env, feature, "", body.Segment, body.Enabled, body.Value, body.Weights)
	})
}

func (s *Server) updateFlagV2(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	var body updateFlagV2
	if !readAdminBody(w, r, &body) {
		return
	}
	snap, env, ok := s.experimentEnvironment(w, r, p)
	if !ok {
		return
	}
	if body.Default == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "environment_default: required", "field": "environment_default"})
		return
	}
	seen := map[int64]bool{}
	for i, o := range body.SegmentOverrides {
		if o.SegmentID != nil && seen[*o.SegmentID] {
			writeJSON(w, http.StatusBadRequest, map[string]string{
				"detail": fmt.Sprintf("segment_overrides[%d].segment_id: segment %d is given twice", i, *o.SegmentID),
				"field":  fmt.Sprintf("segment_overrides[%d].segment_id", i),
			})
			return
		}
		if o.SegmentID != nil {
			seen[*o.SegmentID] = true
		}
	}
	s.experimentWrite(w, r, env, snap, body.Feature, func(snap *flagrepo.Snapshot, files edit.Files, feature string) (edit.Result, error) {
		d := body.Default
		res, err := setState(snap, files, env, feature, "environment_default", nil, d.Enabled, d.Value, d.Weights)
		if err != nil {
			return edit.Result{}, err
		}
		for i, o := range body.SegmentOverrides {
			field := fmt.Sprintf("segment_overrides[%d]", i)
			if o.SegmentID == nil {
				return edit.Result{}, &edit.InputError{Field: field + ".segment_id", Message: "required"}
			}
			next, err := setState(snap, edit.Overlay(files, res.Changes), env, feature, field, &segmentRef{ID: o.SegmentID, Priority: o.Priority}, o.Enabled, o.Value, o.Weights)
			if err != nil {
				return edit.Result{}, err
			}
			res = res.Then(next)
		}
		return res, nil
	})
}

func (s *Server) deleteSegmentOverride(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	var body deleteOverride
	if !readAdminBody(w, r, &body) {
		return
	}
	snap, env, ok := s.experimentEnvironment(w, r, p)
	if !ok {
		return
	}
	s.experimentWrite(w, r, env, snap, body.Feature, func(snap *flagrepo.Snapshot, files edit.Files, feature string) (edit.Result, error) {
		if body.Segment == nil {
			return edit.Result{}, &edit.InputError{Field: "segment", Message: `required: {"id": <segment id>}`}
		}
		seg, err := segmentKey(snap, "segment.id", body.Segment.ID)
		if err != nil {
			return edit.Result{}, err
		}
		return edit.DeleteSegmentOverride(snap, files, env, feature, seg)
	})
}

// experimentWrite commits the edit of one feature in env and answers 204
// (202 with the branch for a proposal).
func (s *Server) experimentWrite(w http.ResponseWriter, r *http.Request, env string, served *flagrepo.Snapshot, ref featureRef, fn func(*flagrepo.Snapshot, edit.Files, string) (edit.Result, error)) {
	subject, err := ref.resolve(served) // names the proposal; resolved again on the head written
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	res, ok := s.commitWrite(w, r, writeTarget{env: env, subject: subject}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			feature, err := ref.resolve(snap)
			if err != nil {
				return edit.Result{}, err
			}
			return fn(snap, files, feature)
		},
	})
	if !ok {
		return
	}
	if res.Branch != "" {
		writeProposed(w, res)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeProposed answers a write that went to a proposal branch: 202 with
// the branch, its revision, what it changes and, for GitHub and GitLab
// remotes, the URL that opens the pull request.
func writeProposed(w http.ResponseWriter, res commits.Result) {
	body := map[string]string{"branch": res.Branch, "revision": res.Revision, "summary": res.Summary}
	if res.URL != "" {
		body["url"] = res.URL
	}
	if res.Review != "" {
		body["detail"] = fmt.Sprintf("%s requires review: the change is on branch %s, to merge by pull request", res.Review, res.Branch)
	} else {
		body["detail"] = fmt.Sprintf("proposed on branch %s, to merge by pull request", res.Branch)
	}
	writeJSON(w, http.StatusAccepted, body)
}
