package httpapi

// The Flagsmith Admin API for the repository's one organisation and one
// project (adminapi.go: organisations, projects, environments and the
// helpers shared by adminfeatures.go and adminsegments.go).
//
// Objects are named as Flagsmith names them, by the repository's stable
// ids: the organisation and project ids of gitflags.json, a feature's,
// segment's and environment's id. Where Flagsmith's path names an
// environment by its API key, gitflags takes the environment's client key
// or its key (the directory name under environments/). Derived ids:
//   - the feature state of a feature in an environment (the environment's
//     default, not an override) has the feature's id, as in the SDK API;
//     its environment is in the path;
//   - a segment override (Flagsmith's feature segment, and the feature state
//     that holds its value) has an id derived from the ids of its
//     environment, feature and segment (see overrideID): the same for as long
//     as the override exists, and again when it is made anew.
//
// Writes are commits (adminwrite.go): the answer is the object as the
// served revision has it after the commit, with a "revision" field, and an
// ETag; a write that goes to review is answered 202 (writeProposal).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/commits"
	"github.com/gitflags/gitflags/edit"
	"github.com/gitflags/gitflags/flagrepo"
)

// Page sizes of Flagsmith's two paginations.
const (
	defaultPageSize = 10  // Django REST framework's PageNumberPagination
	customPageSize  = 999 // Flagsmith's CustomPagination (features, segments)
)

// optional is a request field that may be absent, null or a value.
type optional[T any] struct {
	Set, Null bool
	V         T
}

func (n *optional[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Null = true
		return nil
	}
	return json.Unmarshal(b, &n.V)
}

// fieldError is a bad input of a request, answered 400 with the field by
// writeFailed.
func fieldError(field, format string, args ...any) error {
	return &edit.InputError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// renameFields gives the field of an *edit.InputError the name the request
// uses: a field equal to a key of names, or starting with it and a '.' or
// '[', gets the key replaced by its value. Other errors are returned as
// they are.
func renameFields(err error, names map[string]string) error {
	in, ok := err.(*edit.InputError)
	if !ok {
		return err
	}
	for from, to := range names {
		if rest, ok := strings.CutPrefix(in.Field, from); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			return &edit.InputError{Field: to + rest, Message: in.Message}
		}
	}
	return err
}

// adminState returns the served state, writing a 503 before the first
// revision.
func (s *Server) adminState(w http.ResponseWriter) *state {
	st := s.current.Load()
	if st == nil {
		writeDetail(w, http.StatusServiceUnavailable, "no valid revision loaded yet")
	}
	return st
}

// adminQuery parses the query string, answering the error.
func adminQuery(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	q, rerr := parseQuery(r.URL.RawQuery)
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return nil, false
	}
	return q, true
}

// intParam reads the optional integer query parameter name, answering 400
// {"<name>": ["A valid integer is required."]}-like errors as
// {"detail", "field"}.
func intParam(w http.ResponseWriter, q url.Values, name string) (n int64, ok, good bool) {
	v, ok, rerr := queryParam(q, name)
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return 0, false, false
	}
	if !ok {
		return 0, false, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": fmt.Sprintf("query parameter %q: %q is not an integer", name, v), "field": name})
		return 0, false, false
	}
	return n, true, true
}

// writePage answers items as a Flagsmith page, {"count", "next",
// "previous", "results"}, of size items (or ?page_size=, at most
// customPageSize, when sized): page ?page= (from 1). A page past the end is
// 404 {"detail": "Invalid page."}, as in Flagsmith.
func writePage[T any](w http.ResponseWriter, r *http.Request, q url.Values, items []T, size int, sized bool) {
	if sized {
		if v, ok, _ := queryParam(q, "page_size"); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				size = min(n, customPageSize)
			}
		}
	}
	page := 1
	if v, ok, rerr := queryParam(q, "page"); rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	} else if ok && v != "last" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeDetail(w, http.StatusNotFound, "Invalid page.")
			return
		}
		page = n
	} else if ok {
		page = max(1, (len(items)+size-1)/size)
	}
	from := (page - 1) * size
	if from > 0 && from >= len(items) {
		writeDetail(w, http.StatusNotFound, "Invalid page.")
		return
	}
	to := min(from+size, len(items))
	link := func(p int) *string {
		if p < 1 || (p-1)*size >= len(items) {
			return nil
		}
		u := pageURL(r, q, p)
		return &u
	}
	results := items[from:to]
	if results == nil {
		results = []T{}
	}
	writeJSON(w, http.StatusOK, struct {
		Count    int     `json:"count"`
		Next     *string `json:"next"`
		Previous *string `json:"previous"`
		Results  []T     `json:"results"`
	}{len(items), link(page + 1), link(page - 1), results})
}

// pageURL is the absolute URL of page p of the request's list.
func pageURL(r *http.Request, q url.Values, p int) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	q2 := url.Values{}
	for k, v := range q {
		q2[k] = v
	}
	if p == 1 {
		q2.Del("page")
	} else {
		q2.Set("page", strconv.Itoa(p))
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawQuery: q2.Encode()}
	return u.String()
}

// writeProposal answers a write that went to a proposal branch (review
// required, or ?propose=true) with writeProposed's 202, reporting whether
// res is such a write.
func writeProposal(w http.ResponseWriter, res commits.Result) bool {
	if res.Branch == "" {
		return false
	}
	writeProposed(w, res)
	return true
}

// adminEnvironment resolves the environment of a path: its client key
// (Flagsmith's api_key) or its key. It answers 404 when there is none, and
// 403 when the caller may not read (or, with write, write) it.
func adminEnvironment(w http.ResponseWriter, r *http.Request, st *state, key string, write bool) *flagrepo.Environment {
	e := st.snap.EnvironmentByClientKey(key)
	if e == nil {
		e = st.snap.Environments[key]
	}
	if e == nil {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("environment %q not found: name it by its client key (api_key) or its key", key))
		return nil
	}
	if !allowEnvironment(w, r, e.Key, write) {
		return nil
	}
	return e
}

// environmentByID returns the environment whose id is id, or nil.
func environmentByID(snap *flagrepo.Snapshot, id int64) *flagrepo.Environment {
	for _, e := range snap.Environments {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// featureByID returns the feature whose id is id, or nil.
func featureByID(snap *flagrepo.Snapshot, id int64) *flagrepo.Feature {
	for _, f := range snap.Features {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// segmentByID returns the segment whose id is id, or nil.
func segmentByID(snap *flagrepo.Snapshot, id int64) *flagrepo.Segment {
	for _, sg := range snap.Segments {
		if sg.ID == id {
			return sg
		}
	}
	return nil
}

// pathID reads the integer path parameter name, answering 404 when it is
// not one.
func pathID(w http.ResponseWriter, p httprouter.Params, name string) (int64, bool) {
	v := p.ByName(name)
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("%s %q not found: ids are integers", name, v))
		return 0, false
	}
	return id, true
}

// adminProject checks the project of a path: the repository's project, or
// a 404.
func adminProject(w http.ResponseWriter, st *state, p httprouter.Params) bool {
	id, ok := pathID(w, p, "project")
	if !ok {
		return false
	}
	if id != st.snap.Settings.Project.ID {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("project %d not found: this server has project %d", id, st.snap.Settings.Project.ID))
		return false
	}
	return true
}

// createdDate is the created_date of a feature in the SDK API (see
// Publish), which admin objects share.
func (st *state) createdDate(feature string) string {
	if created, ok := st.CreatedDate(feature); ok {
		return created
	}
	return st.snap.Revision.Time.UTC().Format(timeFormat)
}

// servedAfter returns the served state after a write.
func (s *Server) servedAfter() *state { return s.current.Load() }

// Organisations and projects.

type adminOrganisation struct {
	ID                           int64   `json:"id"`
	UUID                         string  `json:"uuid"`
	Name                         string  `json:"name"`
	CreatedDate                  string  `json:"created_date"`
	WebhookNotificationEmail     *string `json:"webhook_notification_email"`
	NumSeats                     int     `json:"num_seats"`
	Subscription                 any     `json:"subscription"`
	Role                         string  `json:"role"`
	PersistTraitData             bool    `json:"persist_trait_data"`
	BlockAccessToAdmin           bool    `json:"block_access_to_admin"`
	RestrictProjectCreateToAdmin bool    `json:"restrict_project_create_to_admin"`
	Force2FA                     bool    `json:"force_2fa"`
}

// organisation is the repository's organisation: gitflags.json's, or id 0
// without a name when it names none (as in the environment document). The
// role is ADMIN for a token that may write everything, USER otherwise.
func (st *state) organisation(r *http.Request) adminOrganisation {
	id, name := int64(0), ""
	if o := st.snap.Settings.Organisation; o != nil {
		id, name = o.ID, o.Name
	}
	role := "USER"
	if tok := callerToken(r); tok != nil && tok.Write && len(tok.Environments) == 0 {
		role = "ADMIN"
	}
	return adminOrganisation{
		ID: id, UUID: stableUUID("organisation", id), Name: name,
		CreatedDate: st.snap.Revision.Time.UTC().Format(timeFormat),
		NumSeats:    1, Role: role, PersistTraitData: true,
	}
}

func (s *Server) adminOrganisations(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	q, ok := adminQuery(w, r)
	if !ok {
		return
	}
	writePage(w, r, q, []adminOrganisation{st.organisation(r)}, defaultPageSize, false)
}

func (s *Server) adminOrganisation(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	id, ok := pathID(w, p, "organisation")
	if !ok {
		return
	}
	o := st.organisation(r)
	if id != o.ID {
		writeDetail(w, http.StatusNotFound, fmt.Sprintf("organisation %d not found: this server has organisation %d", id, o.ID))
		return
	}
	writeJSON(w, http.StatusOK, o)
}

type adminProjectJSON struct {
	ID                             int64   `json:"id"`
	UUID                           string  `json:"uuid"`
	Name                           string  `json:"name"`
	Organisation                   int64   `json:"organisation"`
	HideDisabledFlags              bool    `json:"hide_disabled_flags"`
	EnableDynamoDB                 bool    `json:"enable_dynamo_db"`
	MigrationStatus                string  `json:"migration_status"`
	UseEdgeIdentities              bool    `json:"use_edge_identities"`
	PreventFlagDefaults            bool    `json:"prevent_flag_defaults"`
	EnableRealtimeUpdates          bool    `json:"enable_realtime_updates"`
	OnlyAllowLowerCaseFeatureNames bool    `json:"only_allow_lower_case_feature_names"`
	FeatureNameRegex               *string `json:"feature_name_regex"`
	ShowEdgeIdentityOverrides      bool    `json:"show_edge_identity_overrides_for_feature"`
	StaleFlagsLimitDays            int     `json:"stale_flags_limit_days"`
	EdgeV2MigrationStatus          string  `json:"edge_v2_migration_status"`
	MinimumChangeRequestApprovals  *int    `json:"minimum_change_request_approvals"`
	EnforceFeatureOwners           bool    `json:"enforce_feature_owners"`
	MaxSegmentsAllowed             *int    `json:"max_segments_allowed,omitempty"`
	MaxFeaturesAllowed             *int    `json:"max_features_allowed,omitempty"`
	MaxSegmentOverridesAllowed     *int    `json:"max_segment_overrides_allowed,omitempty"`
	TotalFeatures                  *int    `json:"total_features,omitempty"`
	TotalSegments                  *int    `json:"total_segments,omitempty"`
}

// project is the repository's project; detail adds the counts of
// Flagsmith's retrieve answer.
func (st *state) project(detail bool) adminProjectJSON {
	s := st.snap.Settings
	regex := strings.TrimSuffix(strings.TrimPrefix(flagrepo.KeyPattern.String(), "^"), "$")
	p := adminProjectJSON{
		ID: s.Project.ID, UUID: stableUUID("project", s.Project.ID), Name: s.Project.Name,
		HideDisabledFlags: s.Project.HideDisabledFlags, MigrationStatus: "NOT_APPLICABLE",
		EnableRealtimeUpdates: true, FeatureNameRegex: &regex, StaleFlagsLimitDays: 30,
		EdgeV2MigrationStatus: "NOT_STARTED",
	}
	if s.Organisation != nil {
		p.Organisation = s.Organisation.ID
	}
	if detail {
		features, segments, limit := len(st.snap.Features), len(st.snap.Segments), flagrepo.MaxFiles
		p.TotalFeatures, p.TotalSegments = &features, &segments
		p.MaxFeaturesAllowed, p.MaxSegmentsAllowed, p.MaxSegmentOverridesAllowed = &limit, &limit, &limit
	}
	return p
}

func (s *Server) adminProjects(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	q, ok := adminQuery(w, r)
	if !ok {
		return
	}
	org, set, good := intParam(w, q, "organisation")
	if !good {
		return
	}
	list := []adminProjectJSON{}
	if o := st.organisation(r); !set || org == o.ID {
		list = append(list, st.project(false))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) adminProjectGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if st := s.adminState(w); st != nil && adminProject(w, st, p) {
		writeJSON(w, http.StatusOK, st.project(true))
	}
}

// Environments.

type adminEnvironmentJSON struct {
	ID                                int64   `json:"id"`
	UUID                              string  `json:"uuid"`
	Name                              string  `json:"name"`
	APIKey                            string  `json:"api_key"`
	Description                       *string `json:"description"`
	Project                           int64   `json:"project"`
	MinimumChangeRequestApprovals     *int    `json:"minimum_change_request_approvals"`
	AllowClientTraits                 bool    `json:"allow_client_traits"`
	BannerText                        *string `json:"banner_text"`
	BannerColour                      *string `json:"banner_colour"`
	HideDisabledFlags                 *bool   `json:"hide_disabled_flags"`
	UseMVV2Evaluation                 bool    `json:"use_mv_v2_evaluation"`
	UseIdentityCompositeKeyForHashing bool    `json:"use_identity_composite_key_for_hashing"`
	HideSensitiveData                 bool    `json:"hide_sensitive_data"`
	UseV2FeatureVersioning            bool    `json:"use_v2_feature_versioning"`
	UseIdentityOverridesInLocalEval   bool    `json:"use_identity_overrides_in_local_eval"`
	IsCreating                        bool    `json:"is_creating"`
	Metadata                          []any   `json:"metadata"`
	TotalSegmentOverrides             *int    `json:"total_segment_overrides,omitempty"`
	Key                               string  `json:"key"` // gitflags: the environment's directory name
	Revision                          string  `json:"revision,omitempty"`
}

// environmentJSON is environment e as Flagsmith answers it; detail adds
// total_segment_overrides. review_required is
// minimum_change_request_approvals 1 (null without review).
func (st *state) environmentJSON(e *flagrepo.Environment, detail bool) adminEnvironmentJSON {
	out := adminEnvironmentJSON{
		ID: e.ID, UUID: stableUUID("environment", e.ID), Name: e.Name, APIKey: e.ClientKey,
		Project: st.snap.Settings.Project.ID, AllowClientTraits: e.ClientTraitsAllowed(),
		HideDisabledFlags: e.HideDisabledFlags, UseMVV2Evaluation: true, UseIdentityCompositeKeyForHashing: true,
		HideSensitiveData: e.HideSensitiveData, UseIdentityOverridesInLocalEval: true, Metadata: []any{}, Key: e.Key,
	}
	if e.Description != "" {
		d := e.Description
		out.Description = &d
	}
	if e.ReviewRequired {
		one := 1
		out.MinimumChangeRequestApprovals = &one
	}
	if detail {
		n := 0
		for _, fs := range e.Features {
			n += len(fs.SegmentOverrides)
		}
		out.TotalSegmentOverrides = &n
	}
	return out
}

// readableEnvironments lists the environments the caller may read, by id.
func (st *state) readableEnvironments(r *http.Request) []*flagrepo.Environment {
	tok := callerToken(r)
	var list []*flagrepo.Environment
	for _, k := range st.snap.EnvironmentKeys() {
		if e := st.snap.Environments[k]; tok != nil && tok.CanRead(k) {
			list = append(list, e)
		}
	}
	slices.SortFunc(list, func(a, b *flagrepo.Environment) int { return int(min(max(a.ID-b.ID, -1), 1)) })
	return list
}

// adminEnvironments serves GET /api/v1/environments/?project=<id>.
func (s *Server) adminEnvironments(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	q, ok := adminQuery(w, r)
	if !ok {
		return
	}
	project, set, _ := intParam(nopWriter{}, q, "project")
	if !set || project != st.snap.Settings.Project.ID {
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "Invalid or missing value for project parameter.", "field": "project"})
		return
	}
	var list []adminEnvironmentJSON
	for _, e := range st.readableEnvironments(r) {
		list = append(list, st.environmentJSON(e, false))
	}
	writePage(w, r, q, list, defaultPageSize, false)
}

// adminProjectEnvironments serves GET /api/v1/projects/:project/environments/.
func (s *Server) adminProjectEnvironments(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil || !adminProject(w, st, p) {
		return
	}
	list := []adminEnvironmentJSON{}
	for _, e := range st.readableEnvironments(r) {
		list = append(list, st.environmentJSON(e, false))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) adminEnvironmentGet(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	if e := adminEnvironment(w, r, st, p.ByName("environment"), false); e != nil {
		writeJSON(w, http.StatusOK, st.environmentJSON(e, true))
	}
}

// environmentBody is the body of PUT and PATCH
// /api/v1/environments/:environment/. Flagsmith's read-only and
// unsupported fields are ignored, as Flagsmith ignores read-only fields.
type environmentBody struct {
	Name                          optional[string] `json:"name"`
	Description                   optional[string] `json:"description"`
	AllowClientTraits             optional[bool]   `json:"allow_client_traits"`
	HideDisabledFlags             optional[bool]   `json:"hide_disabled_flags"`
	HideSensitiveData             optional[bool]   `json:"hide_sensitive_data"`
	MinimumChangeRequestApprovals optional[int]    `json:"minimum_change_request_approvals"`
	// Read-only, or not stored by gitflags: ignored.
	ID                                json.RawMessage `json:"id"`
	UUID                              json.RawMessage `json:"uuid"`
	APIKey                            json.RawMessage `json:"api_key"`
	Project                           json.RawMessage `json:"project"`
	Key                               json.RawMessage `json:"key"`
	UseV2FeatureVersioning            json.RawMessage `json:"use_v2_feature_versioning"`
	IsCreating                        json.RawMessage `json:"is_creating"`
	UseMVV2Evaluation                 json.RawMessage `json:"use_mv_v2_evaluation"`
	BannerText                        json.RawMessage `json:"banner_text"`
	BannerColour                      json.RawMessage `json:"banner_colour"`
	UseIDentityCompositeKeyForHashing json.RawMessage `json:"use_identity_composite_key_for_hashing"`
	UseIDentityOverridesInLocalEval   json.RawMessage `json:"use_identity_overrides_in_local_eval"`
	Metadata                          json.RawMessage `json:"metadata"`
	TotalSegmentOverrides             json.RawMessage `json:"total_segment_overrides"`
	Revision                          json.RawMessage `json:"revision"`
}

// settings checks the body and turns it into edit's settings; put requires
// the name, as Flagsmith's PUT does.
func (b *environmentBody) settings(put bool) (edit.EnvironmentSettings, error) {
	var set edit.EnvironmentSettings
	switch {
	case b.Name.Null:
		return set, fieldError("name", "may not be null")
	case b.Name.Set:
		set.Name = &b.Name.V
	case put:
		return set, fieldError("name", "is required (PATCH changes only the fields it is given)")
	}
	if b.Description.Set {
		set.Description = &b.Description.V // null is "", which removes it
	}
	for _, f := range []struct {
		name string
		in   optional[bool]
		out  **bool
	}{
		{"allow_client_traits", b.AllowClientTraits, &set.AllowClientTraits},
		{"hide_sensitive_data", b.HideSensitiveData, &set.HideSensitiveData},
		{"hide_disabled_flags", b.HideDisabledFlags, &set.HideDisabledFlags},
	} {
		switch {
		case f.in.Null:
			return set, fieldError(f.name, "may not be null: give true or false")
		case f.in.Set:
			v := f.in.V
			*f.out = &v
		}
	}
	if m := b.MinimumChangeRequestApprovals; m.Set {
		if !m.Null && (m.V < 0 || m.V > 1) {
			return set, fieldError("minimum_change_request_approvals", "%d is not supported: give null or 0 (no review) or 1 (every change is a proposal branch)", m.V)
		}
		review := !m.Null && m.V == 1
		set.ReviewRequired = &review
	}
	return set, nil
}

// adminEnvironmentUpdate serves PUT and PATCH
// /api/v1/environments/:environment/.
func (s *Server) adminEnvironmentUpdate(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	st := s.adminState(w)
	if st == nil {
		return
	}
	e := adminEnvironment(w, r, st, p.ByName("environment"), true)
	if e == nil {
		return
	}
	var body environmentBody
	if !readAdminBody(w, r, &body) {
		return
	}
	settings, err := body.settings(r.Method == http.MethodPut)
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	key := e.Key
	res, ok := s.commitWrite(w, r, writeTarget{env: key, subject: "settings"}, commits.Request{
		Edit: func(snap *flagrepo.Snapshot, files edit.Files) (edit.Result, error) {
			return edit.UpdateEnvironment(snap, files, key, settings)
		},
	})
	if !ok || writeProposal(w, res) {
		return
	}
	st = s.servedAfter()
	e = st.snap.Environments[key]
	if e == nil {
		writeDetail(w, http.StatusConflict, fmt.Sprintf("environment %q is no longer served", key))
		return
	}
	out := st.environmentJSON(e, false)
	out.Revision = res.Revision
	writeJSON(w, http.StatusOK, out)
}

// nopWriter discards an answer (for a check whose error is answered
// otherwise).
type nopWriter struct{}

func (nopWriter) Header() http.Header         { return http.Header{} }
func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nopWriter) WriteHeader(int)             {}
