package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/identities"
)

// Server keys of the test fixture (their hashes go into the environments).
const (
	fsProdServerKey    = "ser.test_production_0123456789"
	fsStagingServerKey = "ser.test_staging_0123456789"
	fsStagingKey       = "stg_Kd83nQpZ2xVw7RtL5mYb"
)

var fsFixtureTime = time.Date(2025, 3, 4, 5, 6, 7, 891234000, time.UTC)

func fsSHA256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// fsFixtureFiles is the template repository with a server key per environment
// and, in staging, hide_sensitive_data, hide_disabled_flags and no client
// traits; maintenance_mode is server-key-only.
func fsFixtureFiles(t testing.TB) []flagrepo.File {
	t.Helper()
	files, err := flagrepo.DirFiles(filepath.Join("..", "flags-repo-template"))
	if err != nil {
		t.Fatal(err)
	}
	edits := map[string]func(m map[string]any){
		"environments/production/environment.json": func(m map[string]any) {
			m["server_keys"] = []any{map[string]any{"name": "test", "sha256": fsSHA256Hex(fsProdServerKey)}}
		},
		"environments/staging/environment.json": func(m map[string]any) {
			m["server_keys"] = []any{map[string]any{"name": "test", "sha256": fsSHA256Hex(fsStagingServerKey)}}
			m["hide_sensitive_data"] = true
			m["hide_disabled_flags"] = true
			m["allow_client_traits"] = false
		},
		"features/maintenance_mode.json": func(m map[string]any) { m["server_key_only"] = true },
	}
	for i, f := range files {
		edit, ok := edits[f.Path]
		if !ok {
			continue
		}
		data, err := f.Read()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		out, _ := json.Marshal(m)
		files[i] = flagrepo.File{Path: f.Path, Mode: f.Mode, Size: int64(len(out)), Read: func() ([]byte, error) { return out, nil }}
		delete(edits, f.Path)
	}
	if len(edits) > 0 {
		t.Fatalf("files not found: %v", edits)
	}
	return files
}

type fsFixture struct {
	t     testing.TB
	ts    *httptest.Server
	srv   *Server
	store *identities.BoltStore
	path  string
}

// newFixture serves the fixture repository with a bbolt store at path (a
// new temporary file when empty).
func newFSFixture(t testing.TB, path string) *fsFixture {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "identities.db")
	}
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: "fedcba9876543210", Time: fsFixtureTime}, fsFixtureFiles(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := identities.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	srv := New(Options{Identities: store, Log: slog.New(slog.DiscardHandler)})
	if err := srv.Publish(snap); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &fsFixture{t: t, ts: ts, srv: srv, store: store, path: path}
}

// close stops the server and the store (for reopen tests).
func (f *fsFixture) close() {
	f.ts.Close()
	if err := f.store.Close(); err != nil {
		f.t.Fatal(err)
	}
}

// do sends a request with body (a string, []byte, or a value to encode).
func (f *fsFixture) do(method, path, key string, body any) (int, []byte, http.Header) {
	f.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, f.ts.URL+path, r)
	if err != nil {
		f.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-Environment-Key", key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, data, resp.Header
}

type fsFlag struct {
	ID      int64 `json:"id"`
	Feature struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
		Type string `json:"type"`
	} `json:"feature"`
	Value          any     `json:"feature_state_value"`
	Enabled        bool    `json:"enabled"`
	Environment    int64   `json:"environment"`
	Variant        *string `json:"variant"`
	Identity       any     `json:"identity"`
	FeatureSegment any     `json:"feature_segment"`
}

type fsTrait struct {
	Key   string `json:"trait_key"`
	Value any    `json:"trait_value"`
}

type fsIdentity struct {
	Identifier string    `json:"identifier"`
	Flags      []fsFlag  `json:"flags"`
	Traits     []fsTrait `json:"traits"`
}

func (r fsIdentity) flag(name string) *fsFlag {
	for i := range r.Flags {
		if r.Flags[i].Feature.Name == name {
			return &r.Flags[i]
		}
	}
	return nil
}

// identify posts to /api/v1/identities/ and expects 200.
func (f *fsFixture) identify(key string, body any) fsIdentity {
	f.t.Helper()
	code, data, h := f.do(http.MethodPost, "/api/v1/identities/", key, body)
	if code != http.StatusOK {
		f.t.Fatalf("POST identities: %d %s", code, data)
	}
	if h.Get("X-Flagsmith-Document-Updated-At") == "" {
		f.t.Error("identities response lacks X-Flagsmith-Document-Updated-At")
	}
	return fsDecodeIdentity(f.t, data)
}

func (f *fsFixture) getIdentity(key, query string) fsIdentity {
	f.t.Helper()
	code, data, _ := f.do(http.MethodGet, "/api/v1/identities/?"+query, key, nil)
	if code != http.StatusOK {
		f.t.Fatalf("GET identities?%s: %d %s", query, code, data)
	}
	return fsDecodeIdentity(f.t, data)
}

func fsDecodeIdentity(t testing.TB, data []byte) fsIdentity {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	for _, k := range []string{"identifier", "flags", "traits"} {
		if v, ok := raw[k]; !ok || string(v) == "null" {
			t.Fatalf("response lacks %q: %s", k, data)
		}
	}
	var r fsIdentity
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func fsTraits(kv ...any) []map[string]any {
	var out []map[string]any
	for i := 0; i < len(kv); i += 2 {
		out = append(out, map[string]any{"trait_key": kv[i], "trait_value": kv[i+1]})
	}
	return out
}

func fsTraitMap(ts []fsTrait) map[string]any {
	m := map[string]any{}
	for _, t := range ts {
		m[t.Key] = t.Value
	}
	return m
}

func TestIdentityFlagsAndTraits(t *testing.T) {
	f := newFSFixture(t, "")
	r := f.identify(prodKey, `{"identifier": "carol", "traits": [{"trait_key": "plan", "trait_value": "enterprise"},
		{"trait_key": "lifetime_value", "trait_value": 5000}, {"trait_key": "ratio", "trait_value": 1.0}, {"trait_key": "beta", "trait_value": false}]}`)
	if r.Identifier != "carol" {
		t.Errorf("identifier %q", r.Identifier)
	}
	if want := map[string]any{"plan": "enterprise", "lifetime_value": 5000.0, "ratio": 1.0, "beta": false}; !reflect.DeepEqual(fsTraitMap(r.Traits), want) {
		t.Errorf("traits %v, want %v", r.Traits, want)
	}
	// premium_customers: max_cart_items overridden to 200.
	if fl := r.flag("max_cart_items"); fl == nil || fl.Value != 200.0 || !fl.Enabled || fl.ID != 1009 && fl.ID != fl.Feature.ID {
		t.Errorf("max_cart_items = %+v", fl)
	}
	nc := r.flag("new_checkout")
	if nc == nil || nc.Variant == nil || nc.Feature.Type != "MULTIVARIATE" {
		t.Fatalf("new_checkout = %+v, want a variant", nc)
	}
	if rl := r.flag("api_rate_limit"); rl == nil || rl.Variant != nil {
		t.Errorf("standard flag variant: %+v", rl)
	}

	// Traits persist: a GET sees them; sent traits merge over stored ones,
	// and null deletes.
	g := f.getIdentity(prodKey, "identifier=carol")
	if !reflect.DeepEqual(fsTraitMap(g.Traits), fsTraitMap(r.Traits)) || g.flag("max_cart_items").Value != 200.0 {
		t.Errorf("GET after POST: %+v", g)
	}
	r = f.identify(prodKey, map[string]any{"identifier": "carol", "traits": fsTraits("plan", nil, "country", "DE")})
	if want := map[string]any{"lifetime_value": 5000.0, "ratio": 1.0, "beta": false, "country": "DE"}; !reflect.DeepEqual(fsTraitMap(r.Traits), want) {
		t.Errorf("after null delete %v, want %v", r.Traits, want)
	}
	if r.flag("max_cart_items").Value != 50.0 {
		t.Errorf("premium override still applies after deleting plan: %+v", r.flag("max_cart_items"))
	}
	// The response keeps a float a float.
	_, data, _ := f.do(http.MethodGet, "/api/v1/identities/?identifier=carol", prodKey, nil)
	if !strings.Contains(string(data), `{"trait_key":"ratio","trait_value":1.0}`) {
		t.Errorf("float trait not kept as 1.0: %s", data)
	}
	// Identity overrides apply.
	if fl := f.getIdentity(prodKey, "identifier=partner-bulk-importer").flag("api_rate_limit"); fl.Value != 20000.0 {
		t.Errorf("identity override: %+v", fl)
	}
}

func TestIdentityTransient(t *testing.T) {
	f := newFSFixture(t, "")
	r := f.identify(prodKey, map[string]any{
		"identifier": "dave", "transient": true,
		"traits": fsTraits("plan", "pro", "lifetime_value", 1000),
	})
	if r.flag("max_cart_items").Value != 200.0 || len(r.Traits) != 2 {
		t.Errorf("transient identity evaluation: %+v", r)
	}
	if g := f.getIdentity(prodKey, "identifier=dave"); len(g.Traits) != 0 {
		t.Errorf("transient identity stored %v", g.Traits)
	}
	// Transient traits: used, not stored; the others are stored.
	r = f.identify(prodKey, map[string]any{
		"identifier": "dave",
		"traits": []map[string]any{
			{"trait_key": "plan", "trait_value": "pro", "transient": true},
			{"trait_key": "lifetime_value", "trait_value": 1000, "transient": false},
		},
	})
	if r.flag("max_cart_items").Value != 200.0 {
		t.Errorf("transient trait not used: %+v", r.flag("max_cart_items"))
	}
	g := f.getIdentity(prodKey, "identifier=dave")
	if want := map[string]any{"lifetime_value": 1000.0}; !reflect.DeepEqual(fsTraitMap(g.Traits), want) {
		t.Errorf("stored %v, want %v", g.Traits, want)
	}
	// A transient identity does not see stored traits either.
	if tr := f.getIdentity(prodKey, "identifier=dave&transient=true"); len(tr.Traits) != 0 {
		t.Errorf("transient GET sees %v", tr.Traits)
	}
}

func TestIdentityPersistsAcrossReopen(t *testing.T) {
	f := newFSFixture(t, "")
	f.identify(prodKey, map[string]any{"identifier": "erin", "traits": fsTraits("plan", "pro", "n", 7)})
	code, _, _ := f.do(http.MethodPost, "/api/v1/traits/increment-value/", fsProdServerKey, map[string]any{"identifier": "erin", "trait_key": "n", "increment_by": 3})
	if code != 200 {
		t.Fatalf("increment: %d", code)
	}
	f.close()
	f2 := newFSFixture(t, f.path)
	g := f2.getIdentity(prodKey, "identifier=erin")
	if want := map[string]any{"plan": "pro", "n": 10.0}; !reflect.DeepEqual(fsTraitMap(g.Traits), want) {
		t.Errorf("after reopen %v, want %v", g.Traits, want)
	}
	// Environments are separate.
	if g := f2.getIdentity(fsStagingServerKey, "identifier=erin"); len(g.Traits) != 0 {
		t.Errorf("staging sees production traits: %v", g.Traits)
	}
}

func TestIdentitySensitiveHiddenAndClientTraits(t *testing.T) {
	f := newFSFixture(t, "")
	// Staging: hide_sensitive_data, hide_disabled_flags, allow_client_traits false.
	r := f.identify(fsStagingServerKey, map[string]any{"identifier": "frank", "traits": fsTraits("plan", "pro")})
	if len(r.Traits) != 0 {
		t.Errorf("traits shown despite hide_sensitive_data: %v", r.Traits)
	}
	for _, fl := range r.Flags {
		if !fl.Enabled {
			t.Errorf("disabled flag %s shown despite hide_disabled_flags", fl.Feature.Name)
		}
	}
	if stored, _ := f.store.Traits(t.Context(), "2", "frank"); len(stored) != 1 {
		t.Errorf("server key traits not stored: %v", stored)
	}
	// A client key's traits are ignored (not stored, not evaluated).
	f.identify(fsStagingKey, map[string]any{"identifier": "grace", "traits": fsTraits("plan", "pro")})
	if stored, _ := f.store.Traits(t.Context(), "2", "grace"); len(stored) != 0 {
		t.Errorf("client traits stored although allow_client_traits is false: %v", stored)
	}
	for _, req := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/api/v1/traits/", map[string]any{"identity": map[string]any{"identifier": "grace"}, "trait_key": "a", "trait_value": 1}},
		{http.MethodPut, "/api/v1/traits/bulk/", []any{map[string]any{"identity": map[string]any{"identifier": "grace"}, "trait_key": "a", "trait_value": 1}}},
		{http.MethodPost, "/api/v1/traits/increment-value/", map[string]any{"identifier": "grace", "trait_key": "a", "increment_by": 1}},
		{http.MethodPost, "/api/v1/bulk-identities", map[string]any{"data": []any{map[string]any{"identifier": "grace", "traits": fsTraits("a", 1)}}}},
	} {
		code, data, _ := f.do(req.method, req.path, fsStagingKey, req.body)
		if code != http.StatusBadRequest || !strings.Contains(string(data), "allow_client_traits") {
			t.Errorf("%s %s with client key: %d %s", req.method, req.path, code, data)
		}
		if code, data, _ := f.do(req.method, req.path, fsStagingServerKey, req.body); code >= 300 {
			t.Errorf("%s %s with server key: %d %s", req.method, req.path, code, data)
		}
	}
	// Server-key-only features: hidden from client keys only.
	if f.identify(prodKey, map[string]any{"identifier": "x"}).flag("maintenance_mode") != nil {
		t.Error("server-key-only feature served to a client key (identities)")
	}
	if f.identify(fsProdServerKey, map[string]any{"identifier": "x"}).flag("maintenance_mode") == nil {
		t.Error("server-key-only feature missing for a server key")
	}
	_, data, _ := f.do(http.MethodGet, "/api/v1/flags/", prodKey, nil)
	if strings.Contains(string(data), "maintenance_mode") {
		t.Error("server-key-only feature served to a client key (flags)")
	}
	if code, _, _ := f.do(http.MethodGet, "/api/v1/flags/?feature=maintenance_mode", prodKey, nil); code != 404 {
		t.Errorf("?feature=maintenance_mode with client key: %d", code)
	}
	_, data, _ = f.do(http.MethodGet, "/api/v1/flags/", fsProdServerKey, nil)
	if !strings.Contains(string(data), "maintenance_mode") {
		t.Error("server-key-only feature missing from /flags/ for a server key")
	}
}

func TestTraitEndpoints(t *testing.T) {
	f := newFSFixture(t, "")
	for _, key := range []string{prodKey, fsProdServerKey} {
		id := "henry-" + key[:3]
		code, data, _ := f.do(http.MethodPost, "/api/v1/traits/", key, map[string]any{"identity": map[string]any{"identifier": id}, "trait_key": "plan", "trait_value": "pro"})
		if code != 200 || string(data) != `{"identity":{"identifier":"`+id+`"},"trait_key":"plan","trait_value":"pro"}` {
			t.Errorf("POST traits: %d %s", code, data)
		}
		code, data, _ = f.do(http.MethodPut, "/api/v1/traits/bulk/", key, []any{
			map[string]any{"identity": map[string]any{"identifier": id}, "trait_key": "plan", "trait_value": nil},
			map[string]any{"identity": map[string]any{"identifier": id}, "trait_key": "age", "trait_value": 30},
			map[string]any{"identity": map[string]any{"identifier": id + "-2"}, "trait_key": "score", "trait_value": 2.5},
		})
		if code != 200 || !strings.HasPrefix(string(data), "[") {
			t.Errorf("PUT traits/bulk: %d %s", code, data)
		}
		for i := range 2 {
			code, data, _ = f.do(http.MethodPost, "/api/v1/traits/increment-value/", key, map[string]any{"identifier": id, "trait_key": "age", "increment_by": 5})
			if want := fmt.Sprintf(`{"identifier":%q,"trait_key":"age","trait_value":%d}`, id, 35+5*i); code != 200 || string(data) != want {
				t.Errorf("increment: %d %s, want %s", code, data, want)
			}
		}
		code, data, _ = f.do(http.MethodPost, "/api/v1/bulk-identities", key, map[string]any{"data": []any{
			map[string]any{"identifier": id + "-2", "traits": fsTraits("score", nil, "tier", "gold")},
			map[string]any{"identifier": id + "-3", "traits": fsTraits("tier", "silver")},
		}})
		if code != http.StatusAccepted {
			t.Errorf("bulk-identities: %d %s", code, data)
		}
		for who, want := range map[string]map[string]any{
			id:        {"age": 40.0},
			id + "-2": {"tier": "gold"},
			id + "-3": {"tier": "silver"},
		} {
			if g := f.getIdentity(key, "identifier="+who); !reflect.DeepEqual(fsTraitMap(g.Traits), want) {
				t.Errorf("%s: traits %v, want %v", who, g.Traits, want)
			}
		}
	}
	// Incrementing a string trait is refused.
	f.do(http.MethodPost, "/api/v1/traits/", prodKey, map[string]any{"identity": map[string]any{"identifier": "ivy"}, "trait_key": "s", "trait_value": "x"})
	code, data, _ := f.do(http.MethodPost, "/api/v1/traits/increment-value/", prodKey, map[string]any{"identifier": "ivy", "trait_key": "s", "increment_by": 1})
	if code != 400 || !strings.Contains(string(data), "not an integer") {
		t.Errorf("increment of a string: %d %s", code, data)
	}
}

func TestIdentityErrors(t *testing.T) {
	f := newFSFixture(t, "")
	many := make([]map[string]any, identities.MaxTraits+1)
	for i := range many {
		many[i] = map[string]any{"trait_key": fmt.Sprintf("t%d", i), "trait_value": i}
	}
	bulkMany := make([]any, identities.MaxTraits+1)
	for i := range bulkMany {
		bulkMany[i] = map[string]any{"identity": map[string]any{"identifier": "bulk"}, "trait_key": fmt.Sprintf("t%d", i), "trait_value": i}
	}
	big := `{"identifier":"x","traits":[{"trait_key":"k","trait_value":"` + strings.Repeat("a", maxBodyBytes) + `"}]}`
	cases := []struct {
		method, path, key string
		body              any
		status            int
		want              string // in the detail
	}{
		{"GET", "/api/v1/identities/", prodKey, nil, 400, "identifier"},
		{"GET", "/api/v1/identities/?identifier=", prodKey, nil, 400, "identifier"},
		{"GET", "/api/v1/identities/?identifier=a&transient=maybe", prodKey, nil, 400, "transient"},
		{"GET", "/api/v1/identities/?identifier=a", "", nil, 401, "X-Environment-Key"},
		{"GET", "/api/v1/identities/?identifier=a", "nope", nil, 401, "X-Environment-Key"},
		{"GET", "/api/v1/identities/?identifier=a", "ser.nope", nil, 401, "X-Environment-Key"},
		{"GET", "/api/v1/identities/?identifier=" + strings.Repeat("x", identities.MaxIdentifierLength+1), prodKey, nil, 400, "identifier"},
		{"POST", "/api/v1/identities/", prodKey, `{}`, 400, "identifier is required"},
		{"POST", "/api/v1/identities/", prodKey, `{"identifier": ""}`, 400, "identifier is required"},
		{"POST", "/api/v1/identities/", prodKey, ``, 400, "empty request body"},
		{"POST", "/api/v1/identities/", prodKey, `{"identifier": "a"`, 400, "malformed JSON"},
		{"POST", "/api/v1/identities/", prodKey, `{"identifier": "a"} x`, 400, "after the JSON value"},
		{"POST", "/api/v1/identities/", prodKey, `[]`, 400, "expected an object"},
		{"POST", "/api/v1/identities/", prodKey, `{"identifier": 5}`, 400, `"identifier" must be a string`},
		{"POST", "/api/v1/identities/", prodKey, `{"identifier": "a", "traits": {}}`, 400, `"traits" must be an array`},
		{"POST", "/api/v1/identities/", prodKey, `{"identifier": "a", "traits": [{"trait_key": 1, "trait_value": 1}]}`, 400, `"traits.trait_key" must be a string`},
		{"POST", "/api/v1/identities/", prodKey, `{"identifier": "a", "traits": [{"trait_value": 1}]}`, 400, "traits[0].trait_key is required"},
		{"POST", "/api/v1/identities/", prodKey, `{"identifier": "a", "traits": [{"trait_key": "k"}]}`, 400, "traits[0].trait_value is required"},
		{"POST", "/api/v1/identities/", prodKey, `{"identifier": "a", "traits": [{"trait_key": "k", "trait_value": {"x": 1}}]}`, 400, "traits[0].trait_value must be a string, number, boolean or null, not an object"},
		{"POST", "/api/v1/identities/", prodKey, `{"identifier": "a", "traits": [{"trait_key": "k", "trait_value": 1e999}]}`, 400, "out of range"},
		{"POST", "/api/v1/identities/", prodKey, `{"identifier": "a", "transient": "yes"}`, 400, `"transient" must be a boolean`},
		{"POST", "/api/v1/identities/", prodKey, map[string]any{"identifier": "a", "traits": fsTraits(strings.Repeat("k", 201), 1)}, 400, "at most 200"},
		{"POST", "/api/v1/identities/", prodKey, map[string]any{"identifier": "a", "traits": fsTraits("k", strings.Repeat("é", 2001))}, 400, "at most 2000"},
		{"POST", "/api/v1/identities/", prodKey, map[string]any{"identifier": "a", "traits": many}, 400, "at most 1000"},
		{"POST", "/api/v1/identities/", prodKey, big, 413, "larger than"},
		{"POST", "/api/v1/traits/", prodKey, `{"trait_key": "k", "trait_value": 1}`, 400, "identity is required"},
		{"POST", "/api/v1/traits/", prodKey, `{"identity": {}, "trait_key": "k", "trait_value": 1}`, 400, "identity.identifier is required"},
		{"POST", "/api/v1/traits/", prodKey, `{"identity": {"identifier": "a"}, "trait_key": "k", "trait_value": [1]}`, 400, "not an array"},
		{"PUT", "/api/v1/traits/bulk/", prodKey, `{}`, 400, "expected an array"},
		{"PUT", "/api/v1/traits/bulk/", prodKey, `[{"identity": {"identifier": "a"}, "trait_key": "k", "trait_value": 1}, {"identity": {"identifier": "a"}, "trait_key": ""}]`, 400, "[1].trait_key"},
		{"PUT", "/api/v1/traits/bulk/", prodKey, bulkMany, 400, "more than 1000"},
		{"POST", "/api/v1/traits/increment-value/", prodKey, `{"identifier": "a", "trait_key": "k"}`, 400, "increment_by is required"},
		{"POST", "/api/v1/traits/increment-value/", prodKey, `{"identifier": "a", "trait_key": "k", "increment_by": 1.5}`, 400, "increment_by must be an integer"},
		{"POST", "/api/v1/traits/increment-value/", prodKey, `{"identifier": "a", "trait_key": "k", "increment_by": "two"}`, 400, `increment_by`},
		{"POST", "/api/v1/bulk-identities", prodKey, `{}`, 400, "data is required"},
		{"POST", "/api/v1/bulk-identities", prodKey, `{"data": [{"identifier": "ok", "traits": []}, {"traits": []}]}`, 400, "data[1].identifier is required"},
		{"POST", "/api/v1/bulk-identities", prodKey, `{"data": [{"identifier": "ok", "traits": [{"trait_key": "k", "trait_value": true}]}, {"identifier": "b", "traits": [{"trait_key": "", "trait_value": 1}]}]}`, 400, "data[1].traits[0].trait_key"},
	}
	for _, c := range cases {
		code, data, _ := f.do(c.method, c.path, c.key, c.body)
		var e struct {
			Detail string `json:"detail"`
		}
		if code != c.status || json.Unmarshal(data, &e) != nil || !strings.Contains(e.Detail, c.want) {
			body := fmt.Sprint(c.body)
			if len(body) > 100 {
				body = body[:100] + "..."
			}
			t.Errorf("%s %s %s: %d %.300s; want %d with %q", c.method, c.path, body, code, data, c.status, c.want)
		}
	}
	// Nothing of the failed requests was stored.
	for _, id := range []string{"a", "ok", "b", "bulk", "x"} {
		if got, _ := f.store.Traits(t.Context(), "3", id); len(got) != 0 {
			t.Errorf("failed requests stored traits of %s: %v", id, got)
		}
	}
	// Stored plus sent traits beyond the limit: 400, nothing written.
	half := make([]map[string]any, 600)
	for i := range half {
		half[i] = map[string]any{"trait_key": fmt.Sprintf("a%d", i), "trait_value": i}
	}
	f.identify(fsProdServerKey, map[string]any{"identifier": "full", "traits": half})
	for i := range half {
		half[i]["trait_key"] = fmt.Sprintf("b%d", i)
	}
	code, data, _ := f.do(http.MethodPost, "/api/v1/identities/", fsProdServerKey, map[string]any{"identifier": "full", "traits": half})
	if code != 400 || !strings.Contains(string(data), "at most 1000") {
		t.Errorf("over the limit with stored traits: %d %s", code, data)
	}
	if got, _ := f.store.Traits(t.Context(), "3", "full"); len(got) != 600 {
		t.Errorf("partial write: %d traits stored", len(got))
	}
}

func TestIdentityWithoutStore(t *testing.T) {
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: "1"}, fsFixtureFiles(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{Log: slog.New(slog.DiscardHandler)})
	if err := srv.Publish(snap); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	f := &fsFixture{t: t, ts: ts}
	if code, _, _ := f.do("GET", "/api/v1/identities/?identifier=a", prodKey, nil); code != 503 {
		t.Errorf("without a store: %d", code)
	}
	if code, _, _ := f.do("GET", "/api/v1/identities/?identifier=a&transient=true", prodKey, nil); code != 200 {
		t.Errorf("transient without a store: %d", code)
	}
}

// TestIdentityAgreesWithEvaluator evaluates 200 identities through the API and
// directly with the evaluator.
func TestIdentityAgreesWithEvaluator(t *testing.T) {
	f := newFSFixture(t, "")
	model := f.srv.current.Load().ByClientKey(prodKey).Model()
	for i, tr := range fsSampleIdentities(200) {
		id := fsIdentifierFor(i)
		r := f.identify(fsProdServerKey, map[string]any{"identifier": id, "traits": tr})
		m := map[string]any{}
		for _, t := range tr {
			if t["trait_value"] != nil {
				v, _ := identities.NormalizeValue(t["trait_value"])
				m[t["trait_key"].(string)] = v
			}
		}
		want := model.AppendFlags(nil, &evaluator.Identity{Identifier: id, Traits: m})
		if len(want) != len(r.Flags) {
			t.Fatalf("%s: %d flags, want %d", id, len(r.Flags), len(want))
		}
		for j, w := range want {
			got := r.Flags[j]
			wv, _ := json.Marshal(w.Value)
			gv, _ := json.Marshal(got.Value)
			variant := ""
			if got.Variant != nil {
				variant = *got.Variant
			}
			if got.Feature.Name != w.Name || got.Enabled != w.Enabled || string(gv) != string(wv) || variant != w.Variant {
				t.Errorf("%s %s: got %v %s %q, want %v %s %q", id, w.Name, got.Enabled, gv, variant, w.Enabled, wv, w.Variant)
			}
		}
	}
}

func fsIdentifierFor(i int) string {
	special := []string{"alice@example.com", "bob@example.com", "qa@acme.example", "partner-bulk-importer", "42", "007"}
	if i < len(special) {
		return special[i]
	}
	return fmt.Sprintf("user-%d@example.com", i)
}

// sampleIdentities returns n deterministic trait sets covering the
// template's segments.
func fsSampleIdentities(n int) [][]map[string]any {
	pick := func(i, salt int, vals ...any) any { return vals[(i*7+salt*13+i/3)%len(vals)] }
	out := make([][]map[string]any, n)
	for i := range out {
		var kv []any
		add := func(k string, v any) {
			if v != "<absent>" {
				kv = append(kv, k, v)
			}
		}
		add("plan", pick(i, 1, "free", "pro", "enterprise", "<absent>"))
		add("lifetime_value", pick(i, 2, 0, 999, 1000, 5000, 1500.5, "2000"))
		add("country", pick(i, 3, "DE", "FR", "US", "GB", "NL", "<absent>"))
		add("gdpr_opt_out", pick(i, 4, true, false, "true", "<absent>"))
		add("user_id", pick(i, 5, i, i*3, "17", "<absent>"))
		add("email", pick(i, 6, fmt.Sprintf("u%d@acme.example", i), fmt.Sprintf("u%d@gmail.com", i), fmt.Sprintf("u%d+test@gmail.com", i), "<absent>"))
		add("app_version", pick(i, 7, "1.9.0", "2.0.0", "3.2.0", "3.10.1", "<absent>"))
		add("platform", pick(i, 8, "ios", "android", "web"))
		add("account_age_days", pick(i, 9, 3, 29, 30, 400))
		add("signup_source", pick(i, 10, "ads", "<absent>"))
		add("weekly_sessions", pick(i, 11, 5, 21, 50))
		add("open_tickets", pick(i, 12, 0, 2, 3))
		add("account_status", pick(i, 13, "active", "suspended"))
		add("beta_tester", pick(i, 14, true, "true", false, "<absent>"))
		add("user_agent", pick(i, 15, "Mozilla/5.0 (MSIE 9.0)", "curl/8"))
		out[i] = fsTraits(kv...)
	}
	return out
}

func TestSampleIdentitiesCoverSegments(t *testing.T) {
	// Guard against a sample that matches nothing: several segments must
	// match some identities.
	f := newFSFixture(t, "")
	model := f.srv.current.Load().ByClientKey(prodKey).Model()
	seen := map[string]int{}
	for i, tr := range fsSampleIdentities(200) {
		m := map[string]any{}
		for _, t := range tr {
			m[t["trait_key"].(string)] = t["trait_value"]
		}
		for _, s := range model.Evaluate(&evaluator.Identity{Identifier: fsIdentifierFor(i), Traits: m}).Segments {
			seen[s.Name]++
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) < 6 {
		t.Errorf("sample matches only %v", seen)
	}
}

// TestFloatTraitEvaluatedAsFloat: a trait sent as 1818.0 is a float, as in
// the Python engine: a condition whose value is a decimal ("20.5") casts
// and compares, over POST /api/v1/identities/ and again from the store
// (GET), where an integer trait (25) cannot cast it and does not match.
func TestFloatTraitEvaluatedAsFloat(t *testing.T) {
	files := fsFixtureFiles(t)
	for i, f := range files {
		if f.Path != "segments/power_users.json" {
			continue
		}
		data, err := f.Read()
		if err != nil {
			t.Fatal(err)
		}
		out := bytes.Replace(data, []byte(`"value": "20"`), []byte(`"value": "20.5"`), 1)
		if bytes.Equal(out, data) {
			t.Fatal("power_users has no weekly_sessions > 20 condition to edit")
		}
		files[i] = flagrepo.File{Path: f.Path, Mode: f.Mode, Size: int64(len(out)), Read: func() ([]byte, error) { return out, nil }}
	}
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: "f10a7", Time: fsFixtureTime}, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := identities.Open(filepath.Join(t.TempDir(), "identities.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	srv := New(Options{Identities: store, Log: slog.New(slog.DiscardHandler)})
	if err := srv.Publish(snap); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	limit := func(method, query, body string) any {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+"/api/v1/identities/"+query, strings.NewReader(body))
		req.Header.Set("X-Environment-Key", fsProdServerKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct {
			Flags []struct {
				Feature struct{ Name string }
				Value   any `json:"feature_state_value"`
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %v", method, query, resp.StatusCode, err)
		}
		for _, f := range r.Flags {
			if f.Feature.Name == "api_rate_limit" {
				return f.Value
			}
		}
		t.Fatal("no api_rate_limit")
		return nil
	}
	for _, c := range []struct {
		id, sessions string
		want         float64
	}{{"float-user", "25.0", 2000}, {"int-user", "25", 600}} {
		body := `{"identifier":"` + c.id + `","traits":[{"trait_key":"weekly_sessions","trait_value":` + c.sessions + `},{"trait_key":"open_tickets","trait_value":0}]}`
		if got := limit(http.MethodPost, "", body); got != c.want {
			t.Errorf("%s with weekly_sessions %s: api_rate_limit %v, want %v", c.id, c.sessions, got, c.want)
		}
		if got := limit(http.MethodGet, "?identifier="+c.id, ""); got != c.want {
			t.Errorf("%s from the store: api_rate_limit %v, want %v", c.id, got, c.want)
		}
	}
}
