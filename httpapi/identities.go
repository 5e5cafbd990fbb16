package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/identities"
	"github.com/gitflags/gitflags/served"
)

// The Flagsmith identity and trait endpoints. Traits persist in the
// identities.Store, keyed by the environment's numeric id (stable across
// renames and client key rotation, see storeEnv).
//
// Rules, as in Flagsmith unless noted:
//   - Sent traits are merged over stored ones for evaluation; non-transient
//     sent traits are stored (null deletes) in one atomic write.
//   - A transient identity reads and stores nothing: it is evaluated with the
//     sent traits only.
//   - With a client key in an environment with allow_client_traits false,
//     the trait endpoints answer 400 (Flagsmith's answer), and
//     POST /api/v1/identities/ ignores the sent traits for storage and for
//     evaluation (Flagsmith answers 400 there too; ignoring them keeps
//     client SDKs working while clients still cannot put themselves into
//     segments by claiming traits).
//   - Traits are left out of responses when the environment hides sensitive
//     data; disabled flags are left out when it hides disabled flags;
//     server-key-only features are left out for client keys.

// maxBodyBytes bounds every request body.
const maxBodyBytes = 1 << 20

// errClientTraits is the answer to a client key setting traits where the
// environment does not allow it.
const errClientTraits = "Setting traits not allowed with client key: this environment has allow_client_traits false; use a server-side key (ser.…)"

// requestError is a client error with its status and message.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

// in names the field of an error made by a check given an empty field name
// (whose message starts where the field name would be), so that the name
// is only formatted on error.
func (e *requestError) in(field string) *requestError {
	return &requestError{status: e.status, msg: field + e.msg}
}

func badRequest(format string, args ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// readJSON decodes a request body of at most maxBodyBytes into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) *requestError {
	data, rerr := readBody(w, r)
	if rerr != nil {
		return rerr
	}
	return decodeJSON(data, v)
}

// readBody reads the request body, at most maxBodyBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *requestError) {
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= maxBodyBytes {
		buf.Grow(int(n) + bytes.MinRead) // one allocation for the whole body
	}
	_, err := buf.ReadFrom(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &requestError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("request body larger than %d bytes", maxBodyBytes)}
		}
		return nil, badRequest("reading the request body: %v", err)
	}
	return buf.Bytes(), nil
}

// decodeJSON decodes exactly one JSON value from data into v, explaining
// what is wrong in terms of the request's fields. Text that is not Unicode
// is refused (see checkText), where encoding/json would replace it.
func decodeJSON(data []byte, v any) *requestError {
	if len(bytes.TrimSpace(data)) == 0 {
		return badRequest("empty request body: a JSON document is required")
	}
	// json.Unmarshal rejects trailing data itself, and unlike a Decoder it
	// does not copy the body into a buffer of its own.
	if err := json.Unmarshal(data, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &typeErr):
			if typeErr.Field == "" {
				return badRequest("invalid request body: expected %s, got %s", jsonKind(typeErr.Type.String()), article(typeErr.Value))
			}
			return badRequest("invalid request body: field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type.String()), article(typeErr.Value))
		case errors.As(err, &syntaxErr) && strings.Contains(syntaxErr.Error(), "after top-level value"):
			return badRequest("malformed JSON: unexpected data after the JSON value (at byte %d)", syntaxErr.Offset-1)
		case errors.As(err, &syntaxErr):
			return badRequest("malformed JSON at byte %d: %v", syntaxErr.Offset, err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("malformed JSON: the body ends early")
		}
		return badRequest("invalid request body: %v", err)
	}
	return checkText(data)
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(goType string) string {
	switch {
	case goType == "string" || goType == "*string":
		return "a string"
	case goType == "bool" || goType == "*bool":
		return "a boolean"
	case len(goType) > 2 && goType[:2] == "[]":
		return "an array"
	case goType == "int64" || goType == "int" || goType == "float64":
		return "a number"
	}
	return "an object"
}

func article(jsonType string) string {
	switch jsonType {
	case "array", "object":
		return "an " + jsonType
	case "number", "string", "bool":
		if jsonType == "bool" {
			jsonType = "boolean"
		}
		return "a " + jsonType
	}
	return jsonType
}

// jsonValue is a JSON value kept as text, remembering whether it was present.
type jsonValue struct {
	set bool
	raw []byte
}

func (j *jsonValue) UnmarshalJSON(b []byte) error {
	j.set, j.raw = true, append([]byte(nil), b...)
	return nil
}

// traitValue converts a trait value: a string, number, boolean or null.
func traitValue(field string, j jsonValue) (any, *requestError) {
	if !j.set {
		return nil, badRequest("%s is required (null deletes the trait)", field)
	}
	raw := bytes.TrimSpace(j.raw)
	var v any
	switch raw[0] {
	case 'n':
		return nil, nil
	case 't', 'f':
		v = raw[0] == 't'
	case '"':
		if plainJSONString(raw) {
			v = string(raw[1 : len(raw)-1])
			break
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badRequest("%s: %v", field, err)
		}
		v = s
	case '{', '[':
		kind := "an object"
		if raw[0] == '[' {
			kind = "an array"
		}
		return nil, badRequest("%s must be a string, number, boolean or null, not %s", field, kind)
	default:
		n, err := identities.ParseNumber(string(raw))
		if err != nil {
			return nil, badRequest("%s: %v", field, err)
		}
		v = n
	}
	v, err := identities.NormalizeValue(v)
	if err != nil {
		return nil, badRequest("%s: %v", field, err)
	}
	return v, nil
}

// plainJSONString reports whether raw is a JSON string whose content is
// its own value: valid UTF-8 without escapes or control characters.
func plainJSONString(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.Valid(body)
}

func checkIdentifier(field string, id *string) (string, *requestError) {
	if id == nil || *id == "" {
		return "", badRequest("%s is required", field)
	}
	if err := identities.CheckIdentifier(*id); err != nil {
		// The store's message begins with "identifier": name the field instead.
		msg, ok := strings.CutPrefix(err.Error(), "identifier ")
		if !ok {
			msg = err.Error()
		}
		return "", badRequest("%s %s", field, msg)
	}
	return *id, nil
}

func checkTraitKey(field string, key *string) (string, *requestError) {
	if key == nil {
		return "", badRequest("%s is required", field)
	}
	if err := identities.CheckKey(*key); err != nil {
		return "", badRequest("%s: %v", field, err)
	}
	return *key, nil
}

// traitInput is a trait in POST /api/v1/identities/ and /bulk-identities.
type traitInput struct {
	Key       *string   `json:"trait_key"`
	Value     jsonValue `json:"trait_value"`
	Transient *bool     `json:"transient"`
}

// sentTrait is a validated traitInput.
type sentTrait struct {
	identities.Trait
	transient bool
}

func checkTraitInputs(field string, in []traitInput) ([]sentTrait, *requestError) {
	if len(in) > identities.MaxTraits {
		return nil, badRequest("%s has %d traits; at most %d are allowed per identity", field, len(in), identities.MaxTraits)
	}
	out := make([]sentTrait, len(in))
	for i, t := range in {
		key, rerr := checkTraitKey("", t.Key)
		if rerr != nil {
			return nil, rerr.in(fmt.Sprintf("%s[%d].trait_key", field, i))
		}
		v, rerr := traitValue("", t.Value)
		if rerr != nil {
			return nil, rerr.in(fmt.Sprintf("%s[%d].trait_value", field, i))
		}
		out[i] = sentTrait{Trait: identities.Trait{Key: key, Value: v}, transient: t.Transient != nil && *t.Transient}
	}
	return out, nil
}

// identityRequest is the body of POST /api/v1/identities/.
type identityRequest struct {
	Identifier *string      `json:"identifier"`
	Traits     []traitInput `json:"traits"`
	Transient  *bool        `json:"transient"`
}

// identifyBuffers are the reusable buffers of one identify call.
type identifyBuffers struct {
	flags []evaluator.Flag
	body  []byte
	keys  []string
	key   []byte
}

var identifyScratch = sync.Pool{New: func() any { return new(identifyBuffers) }}

// clientTraitsRefused reports whether a request may not set traits.
func clientTraitsRefused(es *envState, server bool) bool {
	return !server && !es.Environment().ClientTraitsAllowed()
}

// storeContext is the context of a request's store calls. A request read
// in full is carried out even when its client closes or half-closes the
// connection meanwhile (net/http then cancels the request's context): the
// request was complete, a store call is short and atomic, and a client
// going away is no server error.
func storeContext(r *http.Request) context.Context { return context.WithoutCancel(r.Context()) }

// writeStoreError answers a failed store call.
func (s *Server) writeStoreError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, identities.ErrInvalid):
		writeDetail(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, identities.ErrClosed):
		writeDetail(w, http.StatusServiceUnavailable, "identity store is closed")
	default:
		s.log.Error("identity store", "path", r.URL.Path, "err", err)
		writeDetail(w, http.StatusInternalServerError, "identity store error")
	}
}

// store returns the identity store, answering 503 when there is none.
func (s *Server) store(w http.ResponseWriter) identities.Store {
	if s.identities == nil {
		writeDetail(w, http.StatusServiceUnavailable, "no identity store configured: traits cannot be read or stored")
	}
	return s.identities
}

func (s *Server) getIdentity(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st, es, server, q := s.sdkRequest(w, r)
	if es == nil {
		return
	}
	id, _, rerr := queryParam(q, "identifier")
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	identifier, rerr := checkIdentifier("identifier query parameter", &id)
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	text, ok, rerr := queryParam(q, "transient")
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	transient := false
	if ok {
		b, err := strconv.ParseBool(text)
		if err != nil {
			writeDetail(w, http.StatusBadRequest, fmt.Sprintf("transient query parameter must be true or false, not %q", text))
			return
		}
		transient = b
	}
	s.identify(w, r, st, es, server, identifier, nil, transient)
}

func (s *Server) postIdentity(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	st, es, server := s.environmentKey(w, r)
	if es == nil {
		return
	}
	var req identityRequest
	data, rerr := readBody(w, r)
	if rerr == nil && !decodeIdentityFast(data, &req) {
		rerr = decodeJSON(data, &req)
	}
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	identifier, rerr := checkIdentifier("identifier", req.Identifier)
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	traits, rerr := checkTraitInputs("traits", req.Traits)
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	if clientTraitsRefused(es, server) {
		traits = nil
	}
	s.identify(w, r, st, es, server, identifier, traits, req.Transient != nil && *req.Transient)
}

// identify stores what it should of traits, evaluates and answers.
func (s *Server) identify(w http.ResponseWriter, r *http.Request, st *state, es *envState, server bool, identifier string, traits []sentTrait, transient bool) {
	merged := map[string]any{}
	if !transient && st.preview != "" {
		// A preview reads the stored traits and stores nothing.
		store := s.store(w)
		if store == nil {
			return
		}
		stored, err := store.Traits(storeContext(r), es.StoreEnv(), identifier)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		for _, t := range stored {
			merged[t.Key] = t.Value
		}
	} else if !transient {
		store := s.store(w)
		if store == nil {
			return
		}
		var persist []identities.Trait
		for _, t := range traits {
			if !t.transient {
				persist = append(persist, t.Trait)
			}
		}
		stored, err := store.Update(storeContext(r), es.StoreEnv(), identifier, persist)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		if len(persist) > 0 {
			s.ws.traitsChanged(r, es, identifier) // the websocket stream's subscribers of the identity
		}
		for _, t := range stored {
			merged[t.Key] = t.Value
		}
	}
	for _, t := range traits {
		if t.Value == nil {
			delete(merged, t.Key)
		} else {
			merged[t.Key] = t.Value
		}
	}

	scratch := identifyScratch.Get().(*identifyBuffers)
	defer identifyScratch.Put(scratch)
	keys := scratch.keys[:0]
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	scratch.keys = keys
	// The same identity with the same traits evaluates the same on the same
	// revision: its outcomes are kept (es.Results) and written again.
	ck, cacheable := resultKey(scratch, identifier, keys, merged)
	vec, hit := []uint8(nil), false
	if cacheable {
		vec, hit = es.Results().Get(ck)
	}
	ordered := es.IdentityFlags()
	hide := es.HidesDisabledFlags()
	b := scratch.body[:0]
	defer func() { scratch.body = b }()
	b = append(b, `{"identifier":`...)
	b = served.AppendJSONString(b, identifier)
	b = append(b, `,"flags":[`...)
	first := true
	s.metrics.identityEvaluations.Inc()
	if hit {
		for i, base := range ordered {
			k := int(vec[i])
			if (hide && !base.OutcomeEnabled(k)) || (base.ServerKeyOnly() && !server) {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = base.AppendOutcome(b, k)
		}
	} else {
		flags := es.Model().AppendFlags(scratch.flags[:0], &evaluator.Identity{Identifier: identifier, Traits: evaluator.FloatTraits(merged)})
		scratch.flags = flags
		if cacheable && len(flags) == len(ordered) {
			vec = make([]uint8, len(flags))
		} else {
			vec = nil
		}
		for i := range flags {
			f := &flags[i]
			var base *served.IdentityFlag
			if i < len(ordered) && ordered[i].Name() == f.Name {
				base = ordered[i]
			} else if j, ok := es.FeatureIndex(f.Name); ok {
				base = ordered[j]
			} else {
				vec = nil
				continue
			}
			k := base.Outcome(f)
			if k < 0 || base != ordered[i] {
				vec = nil
			} else if vec != nil {
				vec[i] = uint8(k)
			}
			if (hide && !f.Enabled) || (base.ServerKeyOnly() && !server) {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			if k >= 0 {
				b = base.AppendOutcome(b, k)
			} else {
				b = base.Append(b, f.Enabled, f.Variant, f.Value)
			}
		}
		if vec != nil {
			es.Results().Put(ck, vec)
		}
	}
	b = append(b, `],"traits":[`...)
	if !es.Environment().HideSensitiveData {
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"trait_key":`...)
			b = served.AppendJSONString(b, k)
			b = append(b, `,"trait_value":`...)
			if nb, err := identities.AppendValue(b, merged[k]); err == nil {
				b = nb
			} else {
				b = append(b, "null"...) // not reachable: stored and sent values are checked
			}
			b = append(b, '}')
		}
	}
	b = append(b, "]}"...)
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["X-Flagsmith-Document-Updated-At"] = st.updatedAt
	w.Header().Set("Content-Length", strconv.Itoa(len(b))) // written at once, not chunked
	_, _ = w.Write(b)
}

// traitRequest is the body of POST /api/v1/traits/ and an item of
// PUT /api/v1/traits/bulk/.
type traitRequest struct {
	Identity *struct {
		Identifier *string `json:"identifier"`
	} `json:"identity"`
	Key   *string   `json:"trait_key"`
	Value jsonValue `json:"trait_value"`
}

type traitIdentity struct {
	Identifier string `json:"identifier"`
}

// checkTraitRequest validates one trait request; field prefixes messages.
func checkTraitRequest(field string, t *traitRequest) (identifier string, trait identities.Trait, rerr *requestError) {
	if t.Identity == nil {
		return "", trait, badRequest("%sidentity is required: {\"identifier\": \"...\"}", field)
	}
	if identifier, rerr = checkIdentifier(field+"identity.identifier", t.Identity.Identifier); rerr != nil {
		return "", trait, rerr
	}
	if trait.Key, rerr = checkTraitKey(field+"trait_key", t.Key); rerr != nil {
		return "", trait, rerr
	}
	if trait.Value, rerr = traitValue(field+"trait_value", t.Value); rerr != nil {
		return "", trait, rerr
	}
	return identifier, trait, nil
}

func (s *Server) postTrait(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	_, es, server := s.environmentKey(w, r)
	if es == nil {
		return
	}
	var req traitRequest
	if rerr := readJSON(w, r, &req); rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	identifier, trait, rerr := checkTraitRequest("", &req)
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	if clientTraitsRefused(es, server) {
		writeDetail(w, http.StatusBadRequest, errClientTraits)
		return
	}
	store := s.store(w)
	if store == nil {
		return
	}
	if _, err := store.Update(storeContext(r), es.StoreEnv(), identifier, []identities.Trait{trait}); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.ws.traitsChanged(r, es, identifier)
	writeJSON(w, http.StatusOK, traitEcho(identifier, trait))
}

// traitEcho is the response to a trait write: the trait with its identity.
func traitEcho(identifier string, t identities.Trait) map[string]any {
	return map[string]any{"identity": traitIdentity{Identifier: identifier}, "trait_key": t.Key, "trait_value": traitJSON{t.Value}}
}

// traitJSON writes a trait value as identities.Trait does (floats stay floats).
type traitJSON struct{ v any }

func (t traitJSON) MarshalJSON() ([]byte, error) { return identities.MarshalValue(t.v) }

func (s *Server) putTraitsBulk(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	_, es, server := s.environmentKey(w, r)
	if es == nil {
		return
	}
	var req []traitRequest
	if rerr := readJSON(w, r, &req); rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	changes := make([]identities.Change, 0, len(req))
	byID := map[string]int{}
	echo := make([]map[string]any, 0, len(req))
	for i := range req {
		identifier, trait, rerr := checkTraitRequest(fmt.Sprintf("[%d].", i), &req[i])
		if rerr != nil {
			writeDetail(w, rerr.status, rerr.msg)
			return
		}
		j, ok := byID[identifier]
		if !ok {
			j = len(changes)
			byID[identifier] = j
			changes = append(changes, identities.Change{Identifier: identifier})
		}
		changes[j].Traits = append(changes[j].Traits, trait)
		if len(changes[j].Traits) > identities.MaxTraits {
			writeDetail(w, http.StatusBadRequest, fmt.Sprintf("more than %d traits for identity %q", identities.MaxTraits, identifier))
			return
		}
		echo = append(echo, traitEcho(identifier, trait))
	}
	if clientTraitsRefused(es, server) {
		writeDetail(w, http.StatusBadRequest, errClientTraits)
		return
	}
	store := s.store(w)
	if store == nil {
		return
	}
	if err := store.UpdateMany(storeContext(r), es.StoreEnv(), changes); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	for _, c := range changes {
		s.ws.traitsChanged(r, es, c.Identifier)
	}
	writeJSON(w, http.StatusOK, echo)
}

// incrementRequest is the body of POST /api/v1/traits/increment-value/.
type incrementRequest struct {
	Identifier  *string   `json:"identifier"`
	Key         *string   `json:"trait_key"`
	IncrementBy jsonValue `json:"increment_by"`
}

func (s *Server) incrementTrait(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	_, es, server := s.environmentKey(w, r)
	if es == nil {
		return
	}
	var req incrementRequest
	if rerr := readJSON(w, r, &req); rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	identifier, rerr := checkIdentifier("identifier", req.Identifier)
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	key, rerr := checkTraitKey("trait_key", req.Key)
	if rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	if !req.IncrementBy.set || string(req.IncrementBy.raw) == "null" {
		writeDetail(w, http.StatusBadRequest, "increment_by is required: an integer")
		return
	}
	text := string(req.IncrementBy.raw)
	if strings.HasPrefix(text, `"`) { // "2", as Flagsmith's IntegerField accepts
		_ = json.Unmarshal(req.IncrementBy.raw, &text)
	}
	by, err := parseInteger(text)
	if err != nil {
		writeDetail(w, http.StatusBadRequest, fmt.Sprintf("increment_by must be an integer, not %.40s", req.IncrementBy.raw))
		return
	}
	if clientTraitsRefused(es, server) {
		writeDetail(w, http.StatusBadRequest, errClientTraits)
		return
	}
	store := s.store(w)
	if store == nil {
		return
	}
	v, err := store.Increment(storeContext(r), es.StoreEnv(), identifier, key, by)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	s.ws.traitsChanged(r, es, identifier)
	writeJSON(w, http.StatusOK, map[string]any{"trait_key": key, "trait_value": v, "identifier": identifier})
}

// parseInteger accepts an integral JSON number ("3", "3.0", "3e2").
func parseInteger(s string) (int64, error) {
	v, err := identities.ParseNumber(s)
	if err != nil {
		return 0, err
	}
	switch n := v.(type) {
	case int64:
		return n, nil
	case float64:
		if n == float64(int64(n)) && n >= -(1<<63) && n < 1<<63 {
			return int64(n), nil
		}
	}
	return 0, errors.New("not an integer")
}

// maxBulkIdentities bounds the identities of one bulk-identities request,
// as Flagsmith's Edge API does (docs/static/openapi/edge-api.yaml in
// Flagsmith/flagsmith). Like Flagsmith, any key of the environment may call
// it; a client key only where client traits are allowed.
const maxBulkIdentities = 100

// bulkIdentitiesRequest is the body of POST /api/v1/bulk-identities.
type bulkIdentitiesRequest struct {
	Data *[]struct {
		Identifier *string      `json:"identifier"`
		Traits     []traitInput `json:"traits"`
	} `json:"data"`
}

func (s *Server) bulkIdentities(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	_, es, server := s.environmentKey(w, r)
	if es == nil {
		return
	}
	var req bulkIdentitiesRequest
	if rerr := readJSON(w, r, &req); rerr != nil {
		writeDetail(w, rerr.status, rerr.msg)
		return
	}
	if req.Data == nil {
		writeDetail(w, http.StatusBadRequest, `data is required: {"data": [{"identifier": "...", "traits": [...]}]}`)
		return
	}
	data := *req.Data
	if len(data) > maxBulkIdentities {
		writeDetail(w, http.StatusBadRequest, fmt.Sprintf("data has %d identities; at most %d are allowed in one request (as in Flagsmith)", len(data), maxBulkIdentities))
		return
	}
	changes := make([]identities.Change, len(data))
	for i, d := range data {
		p := fmt.Sprintf("data[%d]", i)
		identifier, rerr := checkIdentifier(p+".identifier", d.Identifier)
		if rerr != nil {
			writeDetail(w, rerr.status, rerr.msg)
			return
		}
		traits, rerr := checkTraitInputs(p+".traits", d.Traits)
		if rerr != nil {
			writeDetail(w, rerr.status, rerr.msg)
			return
		}
		changes[i].Identifier = identifier
		for _, t := range traits {
			changes[i].Traits = append(changes[i].Traits, t.Trait)
		}
	}
	if clientTraitsRefused(es, server) {
		writeDetail(w, http.StatusBadRequest, errClientTraits)
		return
	}
	store := s.store(w)
	if store == nil {
		return
	}
	if err := store.UpdateMany(storeContext(r), es.StoreEnv(), changes); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	for _, c := range changes {
		s.ws.traitsChanged(r, es, c.Identifier)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"detail": fmt.Sprintf("stored the traits of %d identities", len(changes))})
}
