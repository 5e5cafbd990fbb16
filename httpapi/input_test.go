package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// inputCase is a request that must be refused with a 400 whose detail
// holds want.
type inputCase struct {
	method, path string
	body         string
	want         string
}

func checkRefused(t *testing.T, f *fsFixture, key string, cases []inputCase) {
	t.Helper()
	for _, c := range cases {
		var body any
		if c.body != "" {
			body = c.body
		}
		code, data, _ := f.do(c.method, c.path, key, body)
		var e struct {
			Detail string `json:"detail"`
		}
		if code != http.StatusBadRequest || json.Unmarshal(data, &e) != nil || !strings.Contains(e.Detail, c.want) {
			t.Errorf("%s %s %q: %d %s; want 400 with %q", c.method, c.path, c.body, code, data, c.want)
		}
	}
}

// storedNothing fails if any of the identifiers has stored traits in
// production.
func storedNothing(t *testing.T, f *fsFixture, identifiers ...string) {
	t.Helper()
	for _, id := range identifiers {
		if got, _ := f.store.Traits(t.Context(), "3", id); len(got) != 0 {
			t.Errorf("a refused request stored traits of %q: %v", id, got)
		}
	}
}

// TestInvalidUTF8Refused: text that is not valid UTF-8 (raw bytes, or an
// escaped lone surrogate) is refused with the field named, where
// encoding/json would turn it into U+FFFD and "col\xff" and "col\xfe" would
// be one identity.
func TestInvalidUTF8Refused(t *testing.T) {
	f := newFSFixture(t, "")
	const (
		ident  = "/api/v1/identities/"
		trait  = "/api/v1/traits/"
		bulk   = "/api/v1/traits/bulk/"
		incr   = "/api/v1/traits/increment-value/"
		bulkID = "/api/v1/bulk-identities"
	)
	checkRefused(t, f, fsProdServerKey, []inputCase{
		{"POST", ident, "{\"identifier\": \"col\xff\"}", `identifier is not valid UTF-8`},
		{"POST", ident, "{\"identifier\": \"col\xfe\", \"traits\": []}", `identifier is not valid UTF-8`},
		{"POST", ident, `{"identifier": "col\ud800"}`, `identifier holds \ud800, a lone surrogate`},
		{"POST", ident, `{"identifier": "col\udc00x"}`, `identifier holds \udc00, a lone surrogate`},
		{"POST", ident, "{\"identifier\": \"u\", \"traits\": [{\"trait_key\": \"a\", \"trait_value\": 1}, {\"trait_key\": \"b\", \"trait_value\": 2}, {\"trait_key\": \"k\xc3\", \"trait_value\": 1}]}", `traits[2].trait_key is not valid UTF-8`},
		{"POST", ident, "{\"identifier\": \"u\", \"traits\": [{\"trait_key\": \"k\", \"trait_value\": \"v\xed\xa0\x80\"}]}", `traits[0].trait_value is not valid UTF-8`},
		{"POST", ident, "{\"identifier\": \"u\", \"other\": \"\xff\"}", `other is not valid UTF-8`},
		{"POST", ident, "{\"identifier\": \"u\", \"\xff\": 1}", `a member name in the request body is not valid UTF-8`},
		{"POST", trait, "{\"identity\": {\"identifier\": \"col\xff\"}, \"trait_key\": \"k\", \"trait_value\": 1}", `identity.identifier is not valid UTF-8`},
		{"POST", trait, "{\"identity\": {\"identifier\": \"u\"}, \"trait_key\": \"k\xff\", \"trait_value\": 1}", `trait_key is not valid UTF-8`},
		{"POST", trait, `{"identity": {"identifier": "u"}, "trait_key": "k", "trait_value": "\udfff"}`, `trait_value holds \udfff, a lone surrogate`},
		{"PUT", bulk, "[{\"identity\": {\"identifier\": \"u\"}, \"trait_key\": \"k\", \"trait_value\": 1}, {\"identity\": {\"identifier\": \"u\"}, \"trait_key\": \"k\xff\", \"trait_value\": 1}]", `[1].trait_key is not valid UTF-8`},
		{"POST", incr, "{\"identifier\": \"col\xff\", \"trait_key\": \"n\", \"increment_by\": 1}", `identifier is not valid UTF-8`},
		{"POST", bulkID, "{\"data\": [{\"identifier\": \"u\", \"traits\": []}, {\"identifier\": \"v\", \"traits\": [{\"trait_key\": \"k\xff\", \"trait_value\": 1}]}]}", `data[1].traits[0].trait_key is not valid UTF-8`},
		{"GET", ident + "?identifier=col%FF", "", `query parameter "identifier": not valid UTF-8`},
		{"GET", ident + "?identifier=col%ED%A0%80", "", `query parameter "identifier": not valid UTF-8`},
	})
	storedNothing(t, f, "col\xff", "col\xfe", "col\ufffd", "u", "v")

	// Valid text, escaped or not, and surrogate pairs are taken as they are.
	r := f.identify(fsProdServerKey, `{"identifier": "caf\u00e9 \ud83d\ude00", "traits": [{"trait_key": "ключ", "trait_value": "\ufffd ok"}]}`)
	if r.Identifier != "café 😀" || !reflect.DeepEqual(fsTraitMap(r.Traits), map[string]any{"ключ": "\ufffd ok"}) {
		t.Errorf("valid UTF-8: %+v", r)
	}
}

// TestControlCharacters: identifiers and trait keys are names, and cannot
// hold C0 control characters (NUL included) or DEL; trait string values are
// data, and keep them.
func TestControlCharacters(t *testing.T) {
	f := newFSFixture(t, "")
	checkRefused(t, f, fsProdServerKey, []inputCase{
		{"POST", "/api/v1/identities/", `{"identifier": "a\u0000b"}`, `identifier holds the control character U+0000`},
		{"POST", "/api/v1/identities/", `{"identifier": "a\nb"}`, `U+000A`},
		{"POST", "/api/v1/identities/", `{"identifier": "a\u007f"}`, `U+007F`},
		{"POST", "/api/v1/identities/", `{"identifier": "u", "traits": [{"trait_key": "k\tx", "trait_value": 1}]}`, `traits[0].trait_key: trait key "k\tx" holds the control character U+0009`},
		{"POST", "/api/v1/traits/", `{"identity": {"identifier": "\u001fu"}, "trait_key": "k", "trait_value": 1}`, `identity.identifier holds the control character U+001F`},
		{"POST", "/api/v1/bulk-identities", `{"data": [{"identifier": "u\r", "traits": []}]}`, `data[0].identifier holds the control character U+000D`},
		{"POST", "/api/v1/traits/increment-value/", `{"identifier": "u", "trait_key": "\u0000", "increment_by": 1}`, `trait_key: trait key "\x00" holds the control character U+0000`},
		{"GET", "/api/v1/identities/?identifier=a%00b", "", `identifier query parameter holds the control character U+0000`},
	})
	storedNothing(t, f, "u", "a\x00b", "\x1fu", "u\r")

	r := f.identify(fsProdServerKey, `{"identifier": "u", "traits": [{"trait_key": "note", "trait_value": "line 1\nline 2\u0000\u007f\t"}]}`)
	if got := fsTraitMap(r.Traits)["note"]; got != "line 1\nline 2\x00\x7f\t" {
		t.Errorf("trait value with control characters: %q", got)
	}
	if got := fsTraitMap(f.getIdentity(fsProdServerKey, "identifier=u").Traits)["note"]; got != "line 1\nline 2\x00\x7f\t" {
		t.Errorf("stored trait value with control characters: %q", got)
	}
}

// TestNumbersKeptExact: an integer beyond 64 bits, or a decimal with more
// digits than a 64-bit float holds, is refused (send it as a string), never
// rounded; what fits comes back as it was sent.
func TestNumbersKeptExact(t *testing.T) {
	f := newFSFixture(t, "")
	traitsOf := func(v string) string {
		return `{"identifier": "n", "traits": [{"trait_key": "ok", "trait_value": 1}, {"trait_key": "k", "trait_value": ` + v + `}]}`
	}
	checkRefused(t, f, fsProdServerKey, []inputCase{
		{"POST", "/api/v1/identities/", traitsOf("123456789012345678901234567890"), `traits[1].trait_value: integer 123456789012345678901234567890 does not fit in 64 bits; send it as a string`},
		{"POST", "/api/v1/identities/", traitsOf("9223372036854775808"), `does not fit in 64 bits`},
		{"POST", "/api/v1/identities/", traitsOf("-9223372036854775809"), `does not fit in 64 bits`},
		{"POST", "/api/v1/identities/", traitsOf("3.141592653589793238"), `traits[1].trait_value: number 3.141592653589793238 has more than 17 significant digits`},
		{"POST", "/api/v1/identities/", traitsOf("123456789012345678901234567890.0"), `more than 17 significant digits`},
		{"POST", "/api/v1/identities/", traitsOf("1e-400"), `too small for a 64-bit float`},
		{"POST", "/api/v1/identities/", traitsOf("1e400"), `out of range`},
		{"POST", "/api/v1/traits/", `{"identity": {"identifier": "n"}, "trait_key": "k", "trait_value": 99999999999999999999}`, `trait_value: integer 99999999999999999999 does not fit in 64 bits`},
		{"PUT", "/api/v1/traits/bulk/", `[{"identity": {"identifier": "n"}, "trait_key": "k", "trait_value": 0.30000000000000000001}]`, `[0].trait_value: number 0.30000000000000000001 has more than 17`},
		{"POST", "/api/v1/bulk-identities", `{"data": [{"identifier": "n", "traits": [{"trait_key": "k", "trait_value": -99999999999999999999}]}]}`, `data[0].traits[0].trait_value: integer -99999999999999999999 does not fit`},
		{"POST", "/api/v1/traits/increment-value/", `{"identifier": "n", "trait_key": "k", "increment_by": 99999999999999999999}`, `increment_by`},
	})
	storedNothing(t, f, "n")

	r := f.identify(fsProdServerKey, `{"identifier": "n", "traits": [
		{"trait_key": "max", "trait_value": 9223372036854775807}, {"trait_key": "min", "trait_value": -9223372036854775808},
		{"trait_key": "big", "trait_value": "123456789012345678901234567890"}, {"trait_key": "pi", "trait_value": 3.141592653589793},
		{"trait_key": "tenth", "trait_value": 0.10000000000000000000}, {"trait_key": "e", "trait_value": 1.5e300},
		{"trait_key": "seventeen", "trait_value": 0.12345678901234567}]}`)
	_, data, _ := f.do(http.MethodGet, "/api/v1/identities/?identifier=n", fsProdServerKey, nil)
	for _, want := range []string{
		`"trait_key":"max","trait_value":9223372036854775807}`, `"trait_key":"min","trait_value":-9223372036854775808}`,
		`"trait_key":"big","trait_value":"123456789012345678901234567890"}`, `"trait_key":"pi","trait_value":3.141592653589793}`,
		`"trait_key":"tenth","trait_value":0.1}`, `"trait_key":"e","trait_value":1.5e+300}`,
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("stored numbers: %s lacks %s", data, want)
		}
	}
	if len(r.Traits) != 7 {
		t.Errorf("traits %v", r.Traits)
	}
}

// TestBadQueryRefused: a query that cannot be read is a 400 naming the
// parameter on every SDK endpoint, where it used to be ignored.
func TestBadQueryRefused(t *testing.T) {
	f := newFSFixture(t, "")
	checkRefused(t, f, fsProdServerKey, []inputCase{
		{"GET", "/api/v1/flags/?feature=%zz", "", `query parameter "feature": invalid percent-encoding`},
		{"GET", "/api/v1/flags/?feature=%FF", "", `query parameter "feature": not valid UTF-8`},
		{"GET", "/api/v1/flags/?feature=a&feature=b", "", `query parameter "feature" is given 2 times`},
		{"GET", "/api/v1/identities/?identifier=%zz", "", `query parameter "identifier": invalid percent-encoding`},
		{"GET", "/api/v1/identities/?identifier=a&transient=%", "", `query parameter "transient": invalid percent-encoding`},
		{"GET", "/api/v1/identities/?identifier=a&identifier=b", "", `query parameter "identifier" is given 2 times`},
		{"GET", "/api/v1/identities/?identifier=a&%zz=1", "", `query parameter "%zz": invalid percent-encoding`},
		{"GET", "/api/v1/environment-document/?x=%zz", "", `query parameter "x": invalid percent-encoding`},
		{"POST", "/api/v1/identities/?transient=%zz", `{"identifier": "q"}`, `query parameter "transient": invalid percent-encoding`},
		{"POST", "/api/v1/bulk-identities?x=%g1", `{"data": [{"identifier": "q", "traits": [{"trait_key": "k", "trait_value": 1}]}]}`, `query parameter "x"`},
	})
	storedNothing(t, f, "q")

	// What reads well is read as before: names and values decoded ('+' is
	// a space), a ';' taken as part of a value (as Flagsmith does), empty
	// pairs skipped.
	if r := f.getIdentity(prodKey, "identifier=a+b%2Bc;d&&transient=true"); r.Identifier != "a b+c;d" {
		t.Errorf("identifier %q", r.Identifier)
	}
	code, data, _ := f.do(http.MethodGet, "/api/v1/flags/?feature=new_checkout&unknown=1", prodKey, nil)
	var flag fsFlag
	if code != 200 || json.Unmarshal(data, &flag) != nil || flag.Feature.Name != "new_checkout" {
		t.Errorf("?feature=new_checkout: %d %s", code, data)
	}
}

// TestBulkIdentitiesAsFlagsmith: as in Flagsmith's Edge API, any key of
// the environment may call /bulk-identities (a client key only where the
// environment allows client traits), with at most 100 identities a request.
func TestBulkIdentitiesAsFlagsmith(t *testing.T) {
	f := newFSFixture(t, "")
	body := func(n int) map[string]any {
		data := make([]any, n)
		for i := range data {
			data[i] = map[string]any{"identifier": fmt.Sprintf("b%d", i), "traits": fsTraits("k", i)}
		}
		return map[string]any{"data": data}
	}
	for _, key := range []string{prodKey, fsProdServerKey, fsStagingServerKey} {
		if code, data, _ := f.do(http.MethodPost, "/api/v1/bulk-identities", key, body(100)); code != http.StatusAccepted {
			t.Errorf("100 identities with %s: %d %s", key, code, data)
		}
	}
	if code, data, _ := f.do(http.MethodPost, "/api/v1/bulk-identities", fsStagingKey, body(1)); code != 400 || !strings.Contains(string(data), "allow_client_traits") {
		t.Errorf("client key where client traits are not allowed: %d %s", code, data)
	}
	f.do(http.MethodPost, "/api/v1/traits/", fsProdServerKey, map[string]any{"identity": map[string]any{"identifier": "b100"}, "trait_key": "k", "trait_value": "before"})
	code, data, _ := f.do(http.MethodPost, "/api/v1/bulk-identities", fsProdServerKey, body(101))
	if code != 400 || !strings.Contains(string(data), "data has 101 identities; at most 100 are allowed in one request") {
		t.Errorf("101 identities: %d %s", code, data)
	}
	if got := fsTraitMap(f.getIdentity(fsProdServerKey, "identifier=b100").Traits); got["k"] != "before" {
		t.Errorf("a refused bulk request changed traits: %v", got)
	}
}
