package edit

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
)

func TestCreateFeature(t *testing.T) {
	snap, files := template(t)
	res, err := CreateFeature(snap, files, "checkout_v3", FeatureSpec{
		Description: ptr("Checkout, third attempt."),
		Value:       value("classic"),
		Variants:    []Variant{{Key: "fast", Value: "fast", Weight: 10}, {Key: "slow", Value: "slow"}},
		Owners:      []string{"payments"},
		Tags:        []string{"checkout", "<experiment>"},
	})
	checkEdit(t, files, res, err, "feature checkout_v3 created", map[string]string{"features/checkout_v3.json": `{
  "$schema": "../schemas/feature.schema.json",
  "id": 1015,
  "description": "Checkout, third attempt.",
  "default": {
    "enabled": false,
    "value": "classic"
  },
  "variants": [
    {
      "id": 1,
      "key": "fast",
      "value": "fast",
      "weight": 10
    },
    {
      "id": 2,
      "key": "slow",
      "value": "slow",
      "weight": 0
    }
  ],
  "owners": [
    "payments"
  ],
  "tags": [
    "checkout",
    "<experiment>"
  ]
}
`})

	res, err = CreateFeature(snap, files, "kill.switch-2", FeatureSpec{Enabled: ptr(true), ServerKeyOnly: ptr(true), Tags: []string{}})
	checkEdit(t, files, res, err, "feature kill.switch-2 created", map[string]string{"features/kill.switch-2.json": `{
  "$schema": "../schemas/feature.schema.json",
  "id": 1015,
  "default": {
    "enabled": true
  },
  "server_key_only": true
}
`})
}

func TestCreateFeatureErrors(t *testing.T) {
	snap, files := template(t)
	for _, tc := range []struct {
		name, key string
		spec      FeatureSpec
		field     string
	}{
		{"no key", "", FeatureSpec{}, "key"},
		{"escapes the repository", "../gitflags", FeatureSpec{}, "key"},
		{"a path", "features/x", FeatureSpec{}, "key"},
		{"dot", ".", FeatureSpec{}, "key"},
		{"too long", strings.Repeat("k", flagrepo.MaxKeyLength+1), FeatureSpec{}, "key"},
		{"exists", "dark_mode", FeatureSpec{}, "key"},
		{"exists in another case", "Dark_Mode", FeatureSpec{}, "key"},
		{"description too long", "x", FeatureSpec{Description: ptr(strings.Repeat("é", 2001))}, "description"},
		{"decimal value", "x", FeatureSpec{Value: value(json.Number("1.5"))}, "value"},
		{"variant key", "x", FeatureSpec{Variants: []Variant{{Key: "a b", Value: "a"}}}, "variants[0].key"},
		{"variant twice", "x", FeatureSpec{Variants: []Variant{{Key: "a", Value: "a"}, {Key: "a", Value: "b"}}}, "variants[1].key"},
		{"variant of the wrong type", "x", FeatureSpec{Value: value(int64(1)), Variants: []Variant{{Key: "a", Value: int64(2)}, {Key: "b", Value: "2"}}}, "variants[1].value"},
		{"variant weight", "x", FeatureSpec{Variants: []Variant{{Key: "a", Value: "a", Weight: 100.5}}}, "variants[0].weight"},
		{"variant weights over 100", "x", FeatureSpec{Variants: []Variant{{Key: "a", Value: "a", Weight: 60}, {Key: "b", Value: "b", Weight: 41}}}, "variants"},
		{"empty tag", "x", FeatureSpec{Tags: []string{"a", ""}}, "tags[1]"},
		{"owner too long", "x", FeatureSpec{Owners: []string{strings.Repeat("o", 201)}}, "owners[0]"},
		{"too many tags", "x", FeatureSpec{Tags: make([]string, 51)}, "tags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := CreateFeature(snap, files, tc.key, tc.spec)
			checkError(t, res, err, tc.field)
		})
	}
}

func TestUpdateFeature(t *testing.T) {
	snap, files := template(t)
	res, err := UpdateFeature(snap, files, "api_rate_limit", FeatureSpec{
		Description: ptr("Requests per minute."), Enabled: ptr(true), Value: value(int64(1200)), Tags: []string{"limits", "backend"},
	})
	checkEdit(t, files, res, err, "feature api_rate_limit changed: description, default value 1200 (was 1000)", map[string]string{"features/api_rate_limit.json": `{
  "$schema": "../schemas/feature.schema.json",
  "id": 1007,
  "description": "Requests per minute.",
  "default": {
    "enabled": true,
    "value": 1200
  },
  "owners": [
    "platform"
  ],
  "tags": [
    "limits",
    "backend"
  ]
}
`})

	// Variants keep their ids by key; a new one gets the next id.
	res, err = UpdateFeature(snap, files, "new_checkout", FeatureSpec{Variants: []Variant{
		{Key: "two_step", Value: "two-step", Weight: 5}, {Key: "express", Value: "express"}, {Key: "one_page", Value: "one-page", Weight: 20},
	}})
	checkEdit(t, files, res, err, "feature new_checkout changed: variants", map[string]string{"features/new_checkout.json": `{
  "$schema": "../schemas/feature.schema.json",
  "id": 1002,
  "description": "The new checkout flow. Control value: the classic checkout.",
  "default": {
    "enabled": false,
    "value": "classic"
  },
  "variants": [
    {
      "id": 1,
      "key": "one_page",
      "value": "one-page",
      "weight": 20
    },
    {
      "id": 2,
      "key": "express",
      "value": "express",
      "weight": 0
    },
    {
      "id": 3,
      "key": "two_step",
      "value": "two-step",
      "weight": 5
    }
  ],
  "owners": [
    "payments"
  ],
  "tags": [
    "checkout",
    "experiment"
  ]
}
`})

	res, err = UpdateFeature(snap, files, "dark_mode", FeatureSpec{Description: ptr(""), Owners: []string{}, Value: value(false)})
	checkEdit(t, files, res, err, "feature dark_mode changed: description removed, default value false, owners", map[string]string{"features/dark_mode.json": `{
  "$schema": "../schemas/feature.schema.json",
  "id": 1005,
  "default": {
    "enabled": false,
    "value": false
  },
  "tags": [
    "ui"
  ]
}
`})

	res, err = UpdateFeature(snap, files, "search_provider", FeatureSpec{Enabled: ptr(true), Value: value("elastic"), Owners: []string{"search"}, ServerKeyOnly: ptr(false)})
	checkEdit(t, files, res, err, "feature search_provider no change", nil)
}

func TestUpdateFeatureErrors(t *testing.T) {
	snap, files := template(t)
	for _, tc := range []struct {
		name, key string
		spec      FeatureSpec
		field     string
	}{
		{"unknown feature", "darkmode", FeatureSpec{}, "404 feature"},
		// production sets api_rate_limit to 600: the integer type stays.
		{"type change with environment values", "api_rate_limit", FeatureSpec{Value: value("1000")}, "value"},
		{"type change against the variants", "new_checkout", FeatureSpec{Value: value(true)}, "value"},
		{"new variants of the old type", "new_checkout", FeatureSpec{Variants: []Variant{{Key: "a", Value: int64(1)}}}, "variants[0].value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := UpdateFeature(snap, files, tc.key, tc.spec)
			checkError(t, res, err, tc.field)
		})
	}
	_, err := UpdateFeature(snap, files, "api_rate_limit", FeatureSpec{Value: value("1000")})
	if !strings.Contains(err.Error(), "environments/production/features/api_rate_limit.json") {
		t.Errorf("the error %q does not name the environment file", err)
	}
	// An override's value counts too: production gives premium_customers 200.
	res, err := UpdateFeature(snap, files, "max_cart_items", FeatureSpec{Value: value("50")})
	if err == nil {
		t.Errorf("max_cart_items changed type although production overrides it with 200: %s", res.Summary)
	}
	// A feature without values anywhere takes a first type.
	res, err = UpdateFeature(snap, files, "beta_features_banner", FeatureSpec{Value: value("Join the beta")})
	checkEdit(t, files, res, err, `feature beta_features_banner changed: default value "Join the beta"`, map[string]string{"features/beta_features_banner.json": `{
  "$schema": "../schemas/feature.schema.json",
  "id": 1010,
  "description": "Invite to the beta programme, shown to beta users.",
  "default": {
    "enabled": false,
    "value": "Join the beta"
  },
  "owners": [
    "growth"
  ],
  "tags": [
    "ui"
  ]
}
`})
}

func TestDeleteFeature(t *testing.T) {
	snap, files := template(t)
	res, err := DeleteFeature(snap, files, "new_checkout")
	checkEdit(t, files, res, err, "feature new_checkout deleted, with its state in development, production, staging", map[string]string{
		"features/new_checkout.json":                          "",
		"environments/development/features/new_checkout.json": "",
		"environments/production/features/new_checkout.json":  "",
		"environments/staging/features/new_checkout.json":     "",
	})
	res, err = DeleteFeature(snap, files, "maintenance_mode")
	checkEdit(t, files, res, err, "feature maintenance_mode deleted, with its state in development", map[string]string{
		"features/maintenance_mode.json":                          "",
		"environments/development/features/maintenance_mode.json": "",
	})
	res, err = DeleteFeature(snap, files, "no_such_feature")
	checkError(t, res, err, "404 feature")
}

// A new id is one more than the largest: never one the snapshot uses.
func TestNewIDs(t *testing.T) {
	snap, files := template(t)
	res, err := CreateFeature(snap, files, "a", FeatureSpec{})
	if err != nil {
		t.Fatal(err)
	}
	files = files.apply(res.Changes)
	if snap, err = files.load(); err != nil {
		t.Fatal(err)
	}
	res, err = CreateFeature(snap, files, "b", FeatureSpec{})
	if err != nil {
		t.Fatal(err)
	}
	files = files.apply(res.Changes)
	if snap, err = files.load(); err != nil {
		t.Fatal(err)
	}
	if a, b := snap.Features["a"].ID, snap.Features["b"].ID; a != 1015 || b != 1016 {
		t.Errorf("ids %d and %d, want 1015 and 1016", a, b)
	}
	res, err = CreateSegment(snap, files, "s", SegmentSpec{Rules: json.RawMessage(`[{"type": "ALL"}]`)})
	if err != nil {
		t.Fatal(err)
	}
	if snap, err = files.apply(res.Changes).load(); err != nil {
		t.Fatal(err)
	}
	if id := snap.Segments["s"].ID; id != 111 {
		t.Errorf("segment id %d, want 111", id)
	}
}

func TestParseTypedValue(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  flagrepo.Value
		field string // of the error; "" for none
	}{
		{`{"type": "string", "value": "hello"}`, "hello", ""},
		{`{"type": "string", "value": ""}`, "", ""},
		{`{"type": "integer", "value": "42"}`, int64(42), ""},
		{`{"value": "-9223372036854775808", "type": "integer"}`, int64(-9223372036854775808), ""},
		{`{"type": "boolean", "value": "true"}`, true, ""},
		{`{"type": "boolean", "value": "false"}`, false, ""},
		{`{"type": "integer", "value": "abc"}`, nil, "value.value"},
		{`{"type": "integer", "value": "1.0"}`, nil, "value.value"},
		{`{"type": "integer", "value": " 1"}`, nil, "value.value"},
		{`{"type": "integer", "value": "+1"}`, nil, "value.value"},
		{`{"type": "integer", "value": "9223372036854775808"}`, nil, "value.value"},
		{`{"type": "integer", "value": 42}`, nil, "value.value"},
		{`{"type": "boolean", "value": "yes"}`, nil, "value.value"},
		{`{"type": "boolean", "value": true}`, nil, "value.value"},
		{`{"type": "float", "value": "1.5"}`, nil, "value.type"},
		{`{"value": "1"}`, nil, "value.type"},
		{`{"type": "string"}`, nil, "value.value"},
		{`{"type": "string", "value": "a", "extra": 1}`, nil, "value.extra"},
		{`{"type": "string", "value": "a", "value": "b"}`, nil, "value"},
		{`"hello"`, nil, "value"},
		{`{"type": "string", "value": "a"`, nil, "value"},
		{`null`, nil, "value"},
	} {
		got, err := ParseTypedValue("value", []byte(tc.in))
		if tc.field == "" {
			if err != nil || got != tc.want {
				t.Errorf("%s: %#v, %v; want %#v", tc.in, got, err, tc.want)
			}
			continue
		}
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("%s: error %v, want one for %s", tc.in, err, tc.field)
		}
	}
	_, err := ParseTypedValue("environment_default.value", []byte(`{"type": "integer", "value": "abc"}`))
	if got := err.Error(); got != `environment_default.value.value: "abc" is not an integer` {
		t.Errorf("error %q", got)
	}
}

func TestWithField(t *testing.T) {
	snap, files := template(t)
	_, err := SetSegmentOverride(snap, files, "production", "api_rate_limit", "beta_users", Override{Enabled: ptr(true), Value: value("x")})
	err = WithField("segment_overrides[1]", err)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Field != "segment_overrides[1].value" {
		t.Errorf("error %v", err)
	}
	other := errors.New("disk on fire")
	if WithField("x", other) != other {
		t.Error("WithField changed an error that is not an InputError")
	}
	if err := WithField("rules", &InputError{Message: "m"}); err.Error() != "rules: m" {
		t.Errorf("error %q", err)
	}
}
