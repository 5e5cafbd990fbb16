package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/flagrepo"
	"github.com/gitflags/gitflags/repogen"
)

const (
	ofrepFlagsURL   = "/ofrep/v1/evaluate/flags"
	ofrepStagingKey = "stg_Kd83nQpZ2xVw7RtL5mYb"
	ofrepDevKey     = "dev_7Hq2LmX9pRt4VbN8cK3w"
)

// ofrepResult is a success or failure object of OFREP.
type ofrepResult struct {
	Key          string         `json:"key"`
	Value        any            `json:"value"`
	Reason       string         `json:"reason"`
	Variant      string         `json:"variant"`
	Metadata     map[string]any `json:"metadata"`
	ErrorCode    string         `json:"errorCode"`
	ErrorDetails string         `json:"errorDetails"`
}

var ofrepQuietLog = slog.New(slog.DiscardHandler)

func ofrepTemplateFiles(t testing.TB) []flagrepo.File {
	t.Helper()
	files, err := flagrepo.DirFiles(filepath.Join("..", "flags-repo-template"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func ofrepSnapshot(t testing.TB, sha string, files []flagrepo.File) *flagrepo.Snapshot {
	t.Helper()
	snap, err := flagrepo.Load(flagrepo.Revision{SHA: sha}, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func ofrepServer(t testing.TB) *Server {
	t.Helper()
	s := New(Options{Log: ofrepQuietLog})
	if err := s.Publish(ofrepSnapshot(t, "0123456789abcdef", ofrepTemplateFiles(t))); err != nil {
		t.Fatal(err)
	}
	return s
}

// ofrepDo sends one request through the whole handler.
func ofrepDo(t testing.TB, h http.Handler, path, auth, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func ofrepDecode(t testing.TB, w *httptest.ResponseRecorder) ofrepResult {
	t.Helper()
	var r ofrepResult
	d := json.NewDecoder(w.Body)
	d.UseNumber()
	if err := d.Decode(&r); err != nil {
		t.Fatalf("status %d, body not JSON: %v", w.Code, err)
	}
	return r
}

func ofrepOne(t testing.TB, h http.Handler, auth, name, ctx string) (int, ofrepResult) {
	t.Helper()
	w := ofrepDo(t, h, ofrepFlagsURL+"/"+name, auth, `{"context":`+ctx+`}`)
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", name, ct)
	}
	return w.Code, ofrepDecode(t, w)
}

func ofrepBulkDo(t testing.TB, h http.Handler, auth, body string, hdr ...string) (*httptest.ResponseRecorder, map[string]ofrepResult, []string) {
	t.Helper()
	w := ofrepDo(t, h, ofrepFlagsURL, auth, body, hdr...)
	if w.Code != http.StatusOK {
		return w, nil, nil
	}
	var resp struct{ Flags []ofrepResult }
	d := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	d.UseNumber()
	if err := d.Decode(&resp); err != nil {
		t.Fatalf("bulk body: %v: %s", err, w.Body)
	}
	byKey := map[string]ofrepResult{}
	var order []string
	for _, f := range resp.Flags {
		byKey[f.Key] = f
		order = append(order, f.Key)
	}
	return w, byKey, order
}

func TestOFREPAuth(t *testing.T) {
	h := ofrepServer(t).Handler()
	for _, tc := range []struct {
		name string
		hdr  []string
		want int
	}{
		{"bearer", []string{"Authorization", "Bearer " + prodKey}, 200},
		{"bearer lower case", []string{"Authorization", "bearer " + prodKey}, 200},
		{"x-api-key", []string{"X-API-Key", prodKey}, 200},
		{"basic then x-api-key", []string{"Authorization", "Basic abc", "X-API-Key", ofrepStagingKey}, 200},
		{"none", nil, 401},
		{"unknown bearer", []string{"Authorization", "Bearer nope"}, 401},
		{"unknown x-api-key", []string{"X-API-Key", "nope"}, 401},
		{"unknown server key", []string{"X-API-Key", "ser.nope"}, 401},
		{"empty bearer", []string{"Authorization", "Bearer "}, 401},
		{"x-environment-key is not OFREP", []string{"X-Environment-Key", prodKey}, 401},
	} {
		for _, path := range []string{ofrepFlagsURL, ofrepFlagsURL + "/api_rate_limit"} {
			w := ofrepDo(t, h, path, "", `{"context":{}}`, tc.hdr...)
			if w.Code != tc.want {
				t.Errorf("%s %s: status %d, want %d", tc.name, path, w.Code, tc.want)
			}
			if w.Code == 401 {
				if r := ofrepDecode(t, w); r.ErrorCode != ofrepGeneral || r.ErrorDetails == "" || w.Header().Get("Content-Type") != "application/json" {
					t.Errorf("%s %s: 401 %q, want a JSON OFREP error", tc.name, path, w.Body)
				}
			}
		}
	}
	// Before the first Publish: 503, never 401 or 500.
	w := ofrepDo(t, New(Options{}).Handler(), ofrepFlagsURL, prodKey, `{}`)
	if w.Code != 503 {
		t.Errorf("before publish: %d", w.Code)
	}
}

func TestOFREPSingle(t *testing.T) {
	h := ofrepServer(t).Handler()
	for _, tc := range []struct {
		name, key, ctx string
		want           ofrepResult
	}{
		{"segment by email", "api_rate_limit", `{"targetingKey":"u1","email":"a@acme.example"}`,
			ofrepResult{Value: json.Number("100000"), Reason: "TARGETING_MATCH", Metadata: map[string]any{"segment": "internal_staff"}}},
		{"typed traits", "api_rate_limit", `{"targetingKey":"u1","weekly_sessions":25,"open_tickets":0,"account_status":null}`,
			ofrepResult{Value: json.Number("2000"), Reason: "TARGETING_MATCH", Metadata: map[string]any{"segment": "power_users"}}},
		{"no segment matches", "api_rate_limit", `{"targetingKey":"u1","email":"a@b.example"}`,
			ofrepResult{Value: json.Number("600"), Reason: "DEFAULT"}},
		{"identity override", "new_checkout", `{"targetingKey":"qa@acme.example"}`,
			ofrepResult{Value: "one-page", Reason: "TARGETING_MATCH", Metadata: map[string]any{"segment": "identity_overrides"}}},
		{"identity override by identifier", "api_rate_limit", `{"targetingKey":"partner-bulk-importer"}`,
			ofrepResult{Value: json.Number("20000"), Reason: "TARGETING_MATCH", Metadata: map[string]any{"segment": "identity_overrides"}}},
		{"no targeting key: environment value", "api_rate_limit", `{"email":"a@acme.example"}`,
			ofrepResult{Value: json.Number("600"), Reason: "DEFAULT"}},
		{"empty targeting key: environment value", "api_rate_limit", `{"targetingKey":"","email":"a@acme.example"}`,
			ofrepResult{Value: json.Number("600"), Reason: "DEFAULT"}},
		{"static flag", "search_provider", `{"targetingKey":"u1"}`,
			ofrepResult{Value: "elastic", Reason: "STATIC"}},
		{"static flag without context", "search_provider", `{}`,
			ofrepResult{Value: "elastic", Reason: "STATIC"}},
		{"disabled static flag", "maintenance_mode", `{"targetingKey":"u1"}`,
			ofrepResult{Reason: "DISABLED"}},
		{"disabled by a segment", "dark_mode", `{"targetingKey":"u1","app_version":"1.0.0"}`,
			ofrepResult{Reason: "DISABLED", Metadata: map[string]any{"segment": "legacy_clients"}}},
		{"boolean switch", "dark_mode", `{"targetingKey":"u1","app_version":"3.4.0","platform":"ios"}`,
			ofrepResult{Value: true, Reason: "TARGETING_MATCH", Metadata: map[string]any{"segment": "mobile_app_users"}}},
		{"nested trait values are fine", "free_shipping_threshold", `{"targetingKey":"u1","country":"DE","gdpr_opt_out":false,"prefs":{"a":[1,2.5,{"b":null}]},"n":1e3}`,
			ofrepResult{Value: "39.00", Reason: "TARGETING_MATCH", Metadata: map[string]any{"segment": "eu_customers"}}},
	} {
		code, got := ofrepOne(t, h, prodKey, tc.key, tc.ctx)
		tc.want.Key = tc.key
		if code != 200 || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %d %+v, want %+v", tc.name, code, got, tc.want)
		}
	}
}

func TestOFREPSplit(t *testing.T) {
	h := ofrepServer(t).Handler()
	values := map[string]string{"collaborative": "collaborative", "content_based": "content-based", "hybrid": "hybrid", "control": "popularity"}
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		code, got := ofrepOne(t, h, prodKey, "recommendations_algorithm", fmt.Sprintf(`{"targetingKey":"user-%d"}`, i))
		if code != 200 || got.Reason != "SPLIT" || got.Value != values[got.Variant] || got.Value == nil {
			t.Fatalf("user-%d: %d %+v", i, code, got)
		}
		seen[got.Variant] = true
	}
	if len(seen) != 4 {
		t.Errorf("variants seen in 200 identities: %v", seen)
	}
	// Without a targeting key there is no split.
	if code, got := ofrepOne(t, h, prodKey, "recommendations_algorithm", `{}`); code != 200 || got.Reason != "DEFAULT" || got.Variant != "" || got.Value != "popularity" {
		t.Errorf("no targeting key: %d %+v", code, got)
	}
}

func TestOFREPErrors(t *testing.T) {
	h := ofrepServer(t).Handler()
	for _, tc := range []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"unknown flag", "/nope", `{"context":{}}`, 404, "FLAG_NOT_FOUND"},
		{"unknown flag with context", "/nope", `{"context":{"targetingKey":"u1"}}`, 404, "FLAG_NOT_FOUND"},
		{"bad JSON", "/api_rate_limit", `{"context":`, 400, "PARSE_ERROR"},
		{"bad JSON bulk", "", `{"context":{"a":tru}}`, 400, "PARSE_ERROR"},
		{"trailing garbage", "", `{"context":{}} x`, 400, "PARSE_ERROR"},
		{"not an object", "/api_rate_limit", `[1]`, 400, "PARSE_ERROR"},
		{"parse error wins over invalid context", "", `{"context":5,}`, 400, "PARSE_ERROR"},
		{"context not an object", "/api_rate_limit", `{"context":"x"}`, 400, "INVALID_CONTEXT"},
		{"context an array", "", `{"context":[]}`, 400, "INVALID_CONTEXT"},
		{"targetingKey a number", "/api_rate_limit", `{"context":{"targetingKey":5}}`, 400, "INVALID_CONTEXT"},
		{"targetingKey an object", "", `{"context":{"targetingKey":{}}}`, 400, "INVALID_CONTEXT"},
		{"too deep", "", `{"context":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, 400, "PARSE_ERROR"},
		{"too large", "", `{"context":{"a":"` + strings.Repeat("x", ofrepMaxBody) + `"}}`, 413, "GENERAL"},
	} {
		w := ofrepDo(t, h, ofrepFlagsURL+tc.path, prodKey, tc.body)
		got := ofrepDecode(t, w)
		if w.Code != tc.status || got.ErrorCode != tc.code || got.ErrorDetails == "" {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, w.Code, got, tc.status, tc.code)
		}
		if key := strings.TrimPrefix(tc.path, "/"); got.Key != key {
			t.Errorf("%s: key %q, want %q", tc.name, got.Key, key)
		}
	}
	// These are fine: empty body, null context, null targetingKey, other members.
	for _, body := range []string{``, ` `, `{}`, `{"context":null}`, `{"context":{"targetingKey":null}}`, `{"other":[1,{"x":2}],"context":{}}`} {
		if w := ofrepDo(t, h, ofrepFlagsURL+"/api_rate_limit", prodKey, body); w.Code != 200 {
			t.Errorf("body %q: %d %s", body, w.Code, w.Body)
		}
	}
}

func TestOFREPBulk(t *testing.T) {
	s := ofrepServer(t)
	h := s.Handler()
	ctx := `{"context":{"targetingKey":"u1","email":"a@acme.example"}}`
	w, flags, order := ofrepBulkDo(t, h, prodKey, ctx)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	snap := s.Snapshot()
	if !reflect.DeepEqual(order, snap.FeatureKeys()) {
		t.Errorf("order %v, want %v", order, snap.FeatureKeys())
	}
	if f := flags["api_rate_limit"]; f.Value != json.Number("100000") || f.Reason != "TARGETING_MATCH" {
		t.Errorf("api_rate_limit %+v", f)
	}
	if f := flags["ai_assistant"]; f.Value != true || f.Reason != "TARGETING_MATCH" {
		t.Errorf("ai_assistant %+v", f)
	}
	if f := flags["maintenance_mode"]; f.Value != nil || f.Reason != "DISABLED" {
		t.Errorf("maintenance_mode %+v", f)
	}
	etag := w.Header().Get("ETag")
	if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
		t.Fatalf("ETag %q", etag)
	}
	if w.Header().Get("Content-Length") != fmt.Sprint(w.Body.Len()) {
		t.Errorf("Content-Length %q for %d bytes", w.Header().Get("Content-Length"), w.Body.Len())
	}

	// Same request: same ETag; with If-None-Match: 304 and no body.
	for _, inm := range []string{etag, "W/" + etag, `"x", ` + etag, `"x",` + etag + `, "y"`} {
		w2 := ofrepDo(t, h, ofrepFlagsURL, prodKey, ctx, "If-None-Match", inm)
		if w2.Code != 304 || w2.Body.Len() != 0 || w2.Header().Get("ETag") != etag {
			t.Errorf("If-None-Match %s: %d %q %s", inm, w2.Code, w2.Header().Get("ETag"), w2.Body)
		}
	}
	for _, inm := range []string{`"other"`, "*", etag[1 : len(etag)-1], etag + "x"} {
		if w2 := ofrepDo(t, h, ofrepFlagsURL, prodKey, ctx, "If-None-Match", inm); w2.Code != 200 || w2.Header().Get("ETag") != etag {
			t.Errorf("If-None-Match %s: %d", inm, w2.Code)
		}
	}
	// Another context, key kind or environment: another ETag.
	etags := map[string]string{etag: "first"}
	for name, req := range map[string][2]string{
		"other identity":    {prodKey, `{"context":{"targetingKey":"u2","email":"a@acme.example"}}`},
		"other trait":       {prodKey, `{"context":{"targetingKey":"u1","email":"b@acme.example"}}`},
		"number vs string":  {prodKey, `{"context":{"targetingKey":"u1","email":"a@acme.example","n":1}}`},
		"number vs string2": {prodKey, `{"context":{"targetingKey":"u1","email":"a@acme.example","n":"1"}}`},
		"3.0":               {prodKey, `{"context":{"targetingKey":"u1","email":"a@acme.example","n":3.0}}`},
		"3":                 {prodKey, `{"context":{"targetingKey":"u1","email":"a@acme.example","n":3}}`},
		"staging":           {ofrepStagingKey, ctx},
		"no context":        {prodKey, `{}`},
	} {
		w2 := ofrepDo(t, h, ofrepFlagsURL, req[0], req[1], "If-None-Match", etag)
		e := w2.Header().Get("ETag")
		if w2.Code != 200 || e == "" {
			t.Errorf("%s: %d %q", name, w2.Code, e)
		}
		if other, ok := etags[e]; ok {
			t.Errorf("%s: same ETag as %s", name, other)
		}
		etags[e] = name
	}

	// A new revision that changes production: new ETag, 200 with new values.
	files := ofrepTemplateFiles(t)
	for i, f := range files {
		if f.Path == "environments/production/features/api_rate_limit.json" {
			files[i].Hash = ""
			files[i].Read = func() ([]byte, error) {
				return []byte(`{"value": 700, "segment_overrides": [{"segment": "internal_staff", "priority": 1, "enabled": true, "value": 123}]}`), nil
			}
		}
	}
	if err := s.Publish(ofrepSnapshot(t, "fedcba9876543210", files)); err != nil {
		t.Fatal(err)
	}
	w3, flags3, _ := ofrepBulkDo(t, h, prodKey, ctx, "If-None-Match", etag)
	if w3.Code != 200 || w3.Header().Get("ETag") == etag || flags3["api_rate_limit"].Value != json.Number("123") {
		t.Errorf("after a change: %d %q %+v", w3.Code, w3.Header().Get("ETag"), flags3["api_rate_limit"])
	}
	// That revision changed nothing for staging: its ETags still hold.
	if err := s.Publish(ofrepSnapshot(t, "0123456789abcdef", ofrepTemplateFiles(t))); err != nil {
		t.Fatal(err)
	}
	wst := ofrepDo(t, h, ofrepFlagsURL, ofrepStagingKey, ctx)
	if err := s.Publish(ofrepSnapshot(t, "fedcba9876543210", files)); err != nil {
		t.Fatal(err)
	}
	if w4 := ofrepDo(t, h, ofrepFlagsURL, ofrepStagingKey, ctx, "If-None-Match", wst.Header().Get("ETag")); w4.Code != 304 {
		t.Errorf("staging after a production-only change: %d", w4.Code)
	}
}

// TestOFREPBulkMatchesEvaluator checks every flag of every bulk answer
// against the evaluator for a spread of contexts, in every environment.
func TestOFREPBulkMatchesEvaluator(t *testing.T) {
	s := ofrepServer(t)
	h := s.Handler()
	st := s.current.Load()
	contexts := []map[string]any{
		nil,
		{"email": "x@acme.example"},
		{"targetingKey": "qa@acme.example"},
		{"targetingKey": "alice@example.com", "plan": "pro", "lifetime_value": 5000, "country": "FR"},
		{"targetingKey": "u7", "user_id": 4, "app_version": "3.5.0", "platform": "android", "account_age_days": 3, "signup_source": "ad"},
		{"targetingKey": "u8", "weekly_sessions": 21, "open_tickets": 2, "beta_tester": true},
	}
	for _, key := range []string{ofrepDevKey, ofrepStagingKey, prodKey} {
		es, _ := st.Lookup(key)
		for _, c := range contexts {
			body, _ := json.Marshal(map[string]any{"context": c})
			w, flags, order := ofrepBulkDo(t, h, key, string(body))
			if w.Code != 200 {
				t.Fatalf("%s %s: %d", key, body, w.Code)
			}
			var id *evaluator.Identity
			if tk, _ := c["targetingKey"].(string); tk != "" {
				traits := map[string]any{}
				for k, v := range c {
					if k != "targetingKey" {
						traits[k] = v
					}
				}
				id = &evaluator.Identity{Identifier: tk, Traits: traits}
			}
			want := es.Model().AppendFlags(nil, id)
			if len(order) != len(want) {
				t.Errorf("%s %s: %d flags, want %d", key, body, len(order), len(want))
			}
			for _, f := range want {
				got := flags[f.Name]
				if got.Key != f.Name || (got.Reason == "DISABLED") == f.Enabled {
					t.Errorf("%s %s %s: %+v, want %+v", key, body, f.Name, got, f)
					continue
				}
				if !f.Enabled {
					continue
				}
				wantValue := f.Value
				if wantValue == nil {
					wantValue = true
				}
				if fmt.Sprint(got.Value) != fmt.Sprint(wantValue) || got.Variant != f.Variant {
					t.Errorf("%s %s %s: %+v, want %+v", key, body, f.Name, got, f)
				}
			}
		}
	}
}

func TestOFREPHiddenFlags(t *testing.T) {
	files := ofrepTemplateFiles(t)
	for i, f := range files {
		switch f.Path {
		case "environments/production/environment.json":
			read := f.Read
			files[i].Hash = ""
			files[i].Read = func() ([]byte, error) {
				b, err := read()
				return bytes.Replace(b, []byte(`"review_required": true,`), []byte(`"review_required": true, "hide_disabled_flags": true,`), 1), err
			}
		case "features/search_provider.json":
			read := f.Read
			files[i].Hash = ""
			files[i].Read = func() ([]byte, error) {
				b, err := read()
				return bytes.Replace(b, []byte(`"id": 1003,`), []byte(`"id": 1003, "server_key_only": true,`), 1), err
			}
		}
	}
	snap := ofrepSnapshot(t, "abc", files)
	if !snap.HidesDisabledFlags(snap.Environments["production"]) || !snap.Features["search_provider"].ServerKeyOnly {
		t.Fatal("test setup: the edits did not apply")
	}
	// A server key for production, added to the snapshot directly.
	const serverKey = "ser.test-production-key"
	snap.Environments["production"].ServerKeys = []flagrepo.ServerKey{{Name: "t", SHA256: ofrepSHA256Hex(serverKey)}}
	s := New(Options{Log: ofrepQuietLog})
	if err := s.Publish(snap); err != nil {
		t.Fatal(err)
	}
	h := s.Handler()

	_, flags, _ := ofrepBulkDo(t, h, prodKey, `{}`)
	if _, ok := flags["maintenance_mode"]; ok {
		t.Error("hidden disabled flag in bulk")
	}
	if _, ok := flags["search_provider"]; ok {
		t.Error("server-only flag in a client bulk")
	}
	if _, ok := flags["api_rate_limit"]; !ok {
		t.Error("api_rate_limit missing")
	}
	_, flags, _ = ofrepBulkDo(t, h, serverKey, `{}`)
	if _, ok := flags["search_provider"]; !ok {
		t.Error("server-only flag missing for a server key")
	}
	// Disabled for this identity (legacy client) hides dark_mode; enabled
	// for a mobile user shows it.
	_, flags, _ = ofrepBulkDo(t, h, prodKey, `{"context":{"targetingKey":"u1","app_version":"1.0.0"}}`)
	if _, ok := flags["dark_mode"]; ok {
		t.Error("dark_mode disabled for this identity but listed")
	}
	_, flags, _ = ofrepBulkDo(t, h, prodKey, `{"context":{"targetingKey":"u1","app_version":"3.3.0","platform":"ios"}}`)
	if f := flags["dark_mode"]; f.Value != true {
		t.Errorf("dark_mode %+v", f)
	}

	for _, tc := range []struct {
		auth, key, ctx string
		status         int
	}{
		{prodKey, "maintenance_mode", `{}`, 404},
		{prodKey, "maintenance_mode", `{"targetingKey":"u1"}`, 404},
		{prodKey, "dark_mode", `{"targetingKey":"u1","app_version":"1.0.0"}`, 404},
		{prodKey, "dark_mode", `{"targetingKey":"u1","app_version":"3.3.0","platform":"ios"}`, 200},
		{prodKey, "search_provider", `{}`, 404},
		{serverKey, "search_provider", `{}`, 200},
		{serverKey, "search_provider", `{"targetingKey":"u1"}`, 200},
	} {
		code, got := ofrepOne(t, h, tc.auth, tc.key, tc.ctx)
		if code != tc.status || (code == 404 && got.ErrorCode != "FLAG_NOT_FOUND") {
			t.Errorf("%s %s: %d %+v", tc.key, tc.ctx, code, got)
		}
	}
	// Client and server keys see different flags, so their ETags differ.
	a := ofrepDo(t, h, ofrepFlagsURL, prodKey, `{}`).Header().Get("ETag")
	b := ofrepDo(t, h, ofrepFlagsURL, serverKey, `{}`).Header().Get("ETag")
	if a == b {
		t.Error("client and server key share an ETag")
	}
}

func TestOFREPParserMatchesEncodingJSON(t *testing.T) {
	for _, body := range []string{
		`{"context":{"targetingKey":"u\u00e9","a":"\ud83d\ude00","b":"x\"y\\z\/","c":"caf\xc3\xa9","d":"bad\xff"}}`,
		`{"context":{"n":[-0,1.5e-3,3.0,3,12345678901234567890123],"o":{"k":{}},"t":true,"f":false,"z":null}}`,
		`{"context":{"a":1},"context":{"b":2}}`,
		`{"context":{"targetingKey":5,"targetingKey":"ok"}}`,
		"{\"context\":{\"bad\xffkey\":1}}",
	} {
		ofrepCheckParser(t, []byte(body))
	}
}

// ofrepCheckParser compares the request parser with encoding/json.
func ofrepCheckParser(t *testing.T, body []byte) {
	t.Helper()
	rq := getOFREPRequest()
	defer putOFREPRequest(rq)
	p := ofrepParser{data: body}
	code, detail := p.request(rq)

	valid := json.Valid(body) || len(bytes.TrimLeft(body, " \t\r\n")) == 0
	if !valid {
		if code != ofrepParseError {
			t.Fatalf("%q: invalid JSON accepted (%q)", body, code)
		}
		return
	}
	if p.deep {
		return // beyond our nesting limit
	}
	var top any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if len(bytes.TrimLeft(body, " \t\r\n")) > 0 {
		if err := d.Decode(&top); err != nil {
			t.Fatal(err)
		}
	} else {
		top = map[string]any{}
	}
	obj, ok := top.(map[string]any)
	if !ok {
		if code != ofrepParseError {
			t.Fatalf("%q: a body that is not an object accepted", body)
		}
		return
	}
	if code == ofrepParseError {
		t.Fatalf("%q: valid JSON rejected: %s", body, detail)
	}
	wantCode, wantID, wantTraits := "", "", map[string]any{}
	switch c := obj["context"].(type) {
	case nil:
	case map[string]any:
		for k, v := range c {
			if k != "targetingKey" {
				wantTraits[k] = v
			}
		}
		switch tk := c["targetingKey"].(type) {
		case nil:
		case string:
			wantID = tk
		default:
			wantCode = ofrepInvalidContext
		}
	default:
		wantCode = ofrepInvalidContext
	}
	if code != wantCode {
		t.Fatalf("%q: code %q (%s), want %q", body, code, detail, wantCode)
	}
	if code != "" {
		return
	}
	if rq.id.Identifier != wantID || rq.hasID != (wantID != "") {
		t.Fatalf("%q: identifier %q, want %q", body, rq.id.Identifier, wantID)
	}
	got := rq.traits
	if got == nil {
		got = map[string]any{}
	}
	if !reflect.DeepEqual(got, wantTraits) {
		t.Fatalf("%q: traits %#v, want %#v", body, got, wantTraits)
	}
}

// --- benchmarks ---

// ofrepBody is a request body that can be read again.
type ofrepBody struct{ bytes.Reader }

func (*ofrepBody) Close() error { return nil }

type ofrepBenchSetup struct {
	srv *Server
	h   http.Handler
	key string
	ctx string
}

func ofrepBenchTemplate(b *testing.B) ofrepBenchSetup {
	s := ofrepServer(b)
	return ofrepBenchSetup{
		srv: s,
		h:   s.Handler(),
		key: prodKey,
		ctx: `{"context":{"targetingKey":"user-1234","email":"a@example.com","plan":"pro","lifetime_value":2500,"country":"DE","app_version":"3.4.1","platform":"ios","weekly_sessions":25}}`,
	}
}

// ofrepBenchLarge serves a generated repository of 100 features and 20 segments
// (3-4 conditions each, every fifth feature multivariate, two segment
// overrides and an identity override per feature and environment).
func ofrepBenchLarge(b *testing.B) ofrepBenchSetup {
	dir := b.TempDir()
	opts := repogen.Small()
	opts.Features = 100
	if err := repogen.Write(dir, opts); err != nil {
		b.Fatal(err)
	}
	files, err := flagrepo.DirFiles(dir)
	if err != nil {
		b.Fatal(err)
	}
	snap := ofrepSnapshot(b, "0123456789abcdef", files)
	s := New(Options{Log: ofrepQuietLog})
	if err := s.Publish(snap); err != nil {
		b.Fatal(err)
	}
	return ofrepBenchSetup{
		srv: s,
		h:   s.Handler(),
		key: snap.Environments["production"].ClientKey,
		ctx: `{"context":{"targetingKey":"user42@example.com","plan":"premium","country":"DE","user_id":42,"app_version":"3.1.0","age":30,"orders":12,"email":"user42@example.com","beta_tester":true,"company":"Acme"}}`,
	}
}

func (ob ofrepBenchSetup) run(b *testing.B, path string, inm bool) {
	body := &ofrepBody{}
	req := httptest.NewRequest(http.MethodPost, path, nil)
	req.Header.Set("Authorization", "Bearer "+ob.key)
	req.Header.Set("Content-Type", "application/json")
	req.Body = body
	req.ContentLength = int64(len(ob.ctx))
	body.Reset([]byte(ob.ctx))
	w := httptest.NewRecorder()
	ob.h.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	want := 200
	if inm {
		req.Header.Set("If-None-Match", w.Header().Get("ETag"))
		want = 304
	}
	b.SetBytes(int64(w.Body.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		body.Reset([]byte(ob.ctx))
		w := httptest.NewRecorder()
		ob.h.ServeHTTP(w, req)
		if w.Code != want {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkOFREPBulkTargeted(b *testing.B) {
	b.Run("template", func(b *testing.B) { ofrepBenchTemplate(b).run(b, ofrepFlagsURL, false) })
	b.Run("100features", func(b *testing.B) { ofrepBenchLarge(b).run(b, ofrepFlagsURL, false) })
}

func BenchmarkOFREPBulkNotModified(b *testing.B) {
	b.Run("template", func(b *testing.B) { ofrepBenchTemplate(b).run(b, ofrepFlagsURL, true) })
	b.Run("100features", func(b *testing.B) { ofrepBenchLarge(b).run(b, ofrepFlagsURL, true) })
}

func BenchmarkOFREPSingleTargeted(b *testing.B) {
	b.Run("template", func(b *testing.B) { ofrepBenchTemplate(b).run(b, ofrepFlagsURL+"/api_rate_limit", false) })
	b.Run("100features", func(b *testing.B) {
		ob := ofrepBenchLarge(b)
		// a feature with segment overrides and identity overrides
		ob.run(b, ofrepFlagsURL+"/"+repogen.FeatureKey(1), false)
	})
}

func ofrepSHA256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// BenchmarkOFREPParse decodes a targeted request body.
func BenchmarkOFREPParse(b *testing.B) {
	body := []byte(ofrepBenchTemplate(b).ctx)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rq := getOFREPRequest()
		p := ofrepParser{data: body}
		if code, detail := p.request(rq); code != "" {
			b.Fatal(code, detail)
		}
		putOFREPRequest(rq)
	}
}

// BenchmarkOFREPEncodeBulk encodes the bulk answer of 100 flags evaluated
// for an identity (the evaluation itself excluded).
func BenchmarkOFREPEncodeBulk(b *testing.B) {
	ob := ofrepBenchLarge(b)
	es, _ := ob.srv.current.Load().Lookup(ob.key)
	rq := getOFREPRequest()
	p := ofrepParser{data: []byte(ob.ctx)}
	if code, detail := p.request(rq); code != "" {
		b.Fatal(code, detail)
	}
	rq.id.Traits = rq.traits
	flags := es.Model().AppendFlags(nil, &rq.id)
	out := es.OFREP().AppendBulk(nil, flags, false)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		out = es.OFREP().AppendBulk(out[:0], flags, false)
	}
}
