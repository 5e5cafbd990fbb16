package edit

import (
	"encoding/json"
	"testing"
)

const stateHead = `{
  "$schema": "../../../schemas/environment-feature.schema.json",
`

func TestSetFeatureState(t *testing.T) {
	snap, files := template(t)
	for _, tc := range []struct {
		name, env, feature string
		state              State
		files              memFiles // replaces template files
		summary            string
		want               map[string]string
	}{
		{
			name: "new file", env: "production", feature: "maintenance_mode",
			state:   State{Enabled: ptr(true)},
			summary: "production: maintenance_mode on",
			want: map[string]string{"environments/production/features/maintenance_mode.json": stateHead + `  "enabled": true
}
`},
		},
		{
			name: "value in place", env: "production", feature: "api_rate_limit",
			state:   State{Value: value(int64(1000)), Enabled: ptr(true)},
			summary: "production: api_rate_limit value 1000 (was 600)",
			want: map[string]string{"environments/production/features/api_rate_limit.json": stateHead + `  "value": 1000,
  "segment_overrides": [
    {
      "segment": "internal_staff",
      "priority": 1,
      "enabled": true,
      "value": 100000
    },
    {
      "segment": "power_users",
      "priority": 2,
      "enabled": true,
      "value": 2000
    }
  ],
  "identity_overrides": [
    {
      "identifiers": [
        "partner-bulk-importer"
      ],
      "enabled": true,
      "value": 20000
    }
  ]
}
`},
		},
		{
			name: "enabled goes before value", env: "development", feature: "search_provider",
			state:   State{Enabled: ptr(false), Value: value("algolia")},
			summary: `development: search_provider off, value "algolia" (was "opensearch")`,
			want: map[string]string{"environments/development/features/search_provider.json": stateHead + `  "enabled": false,
  "value": "algolia"
}
`},
		},
		{
			name: "weights keep their order", env: "staging", feature: "new_checkout",
			state:   State{Weights: map[string]float64{"express": 20, "one_page": 30}},
			summary: "staging: new_checkout weights one_page 30, express 20",
			want: map[string]string{"environments/staging/features/new_checkout.json": stateHead + `  "enabled": true,
  "weights": {
    "one_page": 30,
    "express": 20
  },
  "segment_overrides": [
    {
      "segment": "internal_staff",
      "priority": 1,
      "enabled": true,
      "value": "express"
    }
  ]
}
`},
		},
		{
			name: "new weights in variant order, number text kept", env: "development", feature: "new_checkout",
			files: memFiles{"environments/development/features/new_checkout.json": []byte(stateHead + `  "enabled": true,
  "weights": {
    "express": 50.0
  }
}
`)},
			state:   State{Weights: map[string]float64{"express": 50, "one_page": 12.5}},
			summary: "development: new_checkout weights one_page 12.5, express 50",
			want: map[string]string{"environments/development/features/new_checkout.json": stateHead + `  "enabled": true,
  "weights": {
    "express": 50.0,
    "one_page": 12.5
  }
}
`},
		},
		{
			name: "weights into a new file", env: "production", feature: "onboarding_flow",
			files:   memFiles{"environments/production/features/onboarding_flow.json": nil},
			state:   State{Weights: map[string]float64{"v2": 100}},
			summary: "production: onboarding_flow weights v2 100",
			want: map[string]string{"environments/production/features/onboarding_flow.json": stateHead + `  "weights": {
    "v2": 100
  }
}
`},
		},
		{
			name: "default weights are no change", env: "production", feature: "onboarding_flow",
			files:   memFiles{"environments/production/features/onboarding_flow.json": nil},
			state:   State{Weights: map[string]float64{"v2": 50}},
			summary: "production: onboarding_flow no change",
		},
		{
			name: "what is served already is no change", env: "development", feature: "new_checkout",
			state:   State{Enabled: ptr(true), Value: value("classic"), Weights: map[string]float64{"one_page": 50, "express": 50}},
			summary: "development: new_checkout no change",
		},
		{
			name: "default is no change, no file", env: "production", feature: "maintenance_mode",
			state:   State{Enabled: ptr(false)},
			summary: "production: maintenance_mode no change",
		},
		{
			name: "untyped feature takes any value", env: "staging", feature: "maintenance_mode",
			state:   State{Value: value(true)},
			summary: "staging: maintenance_mode value true (was null)",
			want: map[string]string{"environments/staging/features/maintenance_mode.json": stateHead + `  "value": true
}
`},
		},
		{
			name: "no HTML escaping, one line summary", env: "staging", feature: "banner_message",
			state:   State{Value: value("Sale <b>today</b> & tomorrow\nonly, from 9:00 to 18:00 in every shop")},
			summary: `staging: banner_message value "Sale <b>today</b> & tomorrow\nonly, from…" (was "")`,
			want: map[string]string{"environments/staging/features/banner_message.json": stateHead + `  "value": "Sale <b>today</b> & tomorrow\nonly, from 9:00 to 18:00 in every shop"
}
`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := files.apply(nil)
			for p, data := range tc.files {
				if data == nil {
					delete(f, p)
				} else {
					f[p] = data
				}
			}
			s := snap
			if tc.files != nil {
				var err error
				if s, err = f.load(); err != nil {
					t.Fatal(err)
				}
			}
			res, err := SetFeatureState(s, f, tc.env, tc.feature, tc.state)
			checkEdit(t, f, res, err, tc.summary, tc.want)
		})
	}
}

func TestSetFeatureStateErrors(t *testing.T) {
	snap, files := template(t)
	for _, tc := range []struct {
		name, env, feature string
		state              State
		field              string
	}{
		{"unknown environment", "prod", "new_checkout", State{Enabled: ptr(true)}, "404 environment"},
		{"unknown feature", "production", "new-checkout", State{Enabled: ptr(true)}, "404 feature"},
		{"path in feature", "production", "../features/new_checkout", State{Enabled: ptr(true)}, "404 feature"},
		{"string for an integer feature", "production", "api_rate_limit", State{Value: value("abc")}, "value"},
		{"integer for a string feature", "production", "new_checkout", State{Value: value(int64(1))}, "value"},
		{"null for a typed feature", "production", "new_checkout", State{Value: value(nil)}, "value"},
		{"decimal number", "production", "maintenance_mode", State{Value: value(json.Number("1.5"))}, "value"},
		{"not a flag value", "production", "maintenance_mode", State{Value: value(1.5)}, "value"},
		{"invalid UTF-8", "production", "banner_message", State{Value: value("\xff")}, "value"},
		{"weights without variants", "production", "api_rate_limit", State{Weights: map[string]float64{"a": 1}}, "weights"},
		{"unknown variant", "production", "new_checkout", State{Weights: map[string]float64{"one_page": 10, "nope": 1}}, "weights.nope"},
		{"negative weight", "production", "new_checkout", State{Weights: map[string]float64{"one_page": -1}}, "weights.one_page"},
		{"weight over 100", "production", "new_checkout", State{Weights: map[string]float64{"express": 101}}, "weights.express"},
		{"weights over 100", "production", "new_checkout", State{Weights: map[string]float64{"one_page": 60, "express": 50}}, "weights"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := SetFeatureState(snap, files, tc.env, tc.feature, tc.state)
			checkError(t, res, err, tc.field)
		})
	}
}

func TestSetSegmentOverride(t *testing.T) {
	snap, files := template(t)
	for _, tc := range []struct {
		name, env, feature, segment string
		o                           Override
		summary                     string
		want                        map[string]string
	}{
		{
			name: "added at the lowest priority", env: "staging", feature: "new_checkout", segment: "beta_users",
			o:       Override{Enabled: ptr(true), Value: value("express")},
			summary: `staging: new_checkout segment beta_users (priority 2) added, on, value "express"`,
			want: map[string]string{"environments/staging/features/new_checkout.json": stateHead + `  "enabled": true,
  "weights": {
    "one_page": 25,
    "express": 25
  },
  "segment_overrides": [
    {
      "segment": "internal_staff",
      "priority": 1,
      "enabled": true,
      "value": "express"
    },
    {
      "segment": "beta_users",
      "priority": 2,
      "enabled": true,
      "value": "express"
    }
  ]
}
`},
		},
		{
			name: "a taken priority moves the others down", env: "production", feature: "dark_mode", segment: "beta_users",
			o:       Override{Enabled: ptr(true), Priority: ptr(1)},
			summary: "production: dark_mode segment beta_users (priority 1) added, on, moved down: legacy_clients, mobile_app_users",
			want: map[string]string{"environments/production/features/dark_mode.json": stateHead + `  "segment_overrides": [
    {
      "segment": "beta_users",
      "priority": 1,
      "enabled": true
    },
    {
      "segment": "legacy_clients",
      "priority": 2,
      "enabled": false
    },
    {
      "segment": "mobile_app_users",
      "priority": 3,
      "enabled": true
    }
  ]
}
`},
		},
		{
			name: "a free priority moves nobody", env: "production", feature: "dark_mode", segment: "beta_users",
			o:       Override{Enabled: ptr(false), Priority: ptr(0)},
			summary: "production: dark_mode segment beta_users (priority 0) added, off",
			want: map[string]string{"environments/production/features/dark_mode.json": stateHead + `  "segment_overrides": [
    {
      "segment": "beta_users",
      "priority": 0,
      "enabled": false
    },
    {
      "segment": "legacy_clients",
      "priority": 1,
      "enabled": false
    },
    {
      "segment": "mobile_app_users",
      "priority": 2,
      "enabled": true
    }
  ]
}
`},
		},
		{
			name: "moved up", env: "production", feature: "dark_mode", segment: "mobile_app_users",
			o:       Override{Priority: ptr(1)},
			summary: "production: dark_mode segment mobile_app_users (priority 1) moved from priority 2, moved down: legacy_clients",
			want: map[string]string{"environments/production/features/dark_mode.json": stateHead + `  "segment_overrides": [
    {
      "segment": "mobile_app_users",
      "priority": 1,
      "enabled": true
    },
    {
      "segment": "legacy_clients",
      "priority": 2,
      "enabled": false
    }
  ]
}
`},
		},
		{
			name: "changed in place", env: "production", feature: "new_checkout", segment: "premium_customers",
			o:       Override{Enabled: ptr(false), Value: value("one-page"), Weights: map[string]float64{"one_page": 50, "express": 40}},
			summary: `production: new_checkout segment premium_customers (priority 2) off, value "one-page", weights one_page 50, express 40`,
			want: map[string]string{"environments/production/features/new_checkout.json": stateHead + `  "enabled": true,
  "value": "classic",
  "weights": {
    "one_page": 10,
    "express": 10
  },
  "segment_overrides": [
    {
      "segment": "beta_users",
      "priority": 1,
      "enabled": true,
      "value": "express"
    },
    {
      "segment": "premium_customers",
      "priority": 2,
      "enabled": false,
      "value": "one-page",
      "weights": {
        "one_page": 50,
        "express": 40
      }
    }
  ],
  "identity_overrides": [
    {
      "identifiers": [
        "qa@acme.example"
      ],
      "enabled": true,
      "value": "one-page"
    }
  ]
}
`},
		},
		{
			name: "same state is no change", env: "production", feature: "new_checkout", segment: "premium_customers",
			o:       Override{Enabled: ptr(true), Priority: ptr(2), Weights: map[string]float64{"one_page": 50, "express": 50}},
			summary: "production: new_checkout segment premium_customers (priority 2) no change",
		},
		{
			name: "new file", env: "staging", feature: "max_cart_items", segment: "premium_customers",
			o:       Override{Enabled: ptr(true), Value: value(int64(500))},
			summary: "staging: max_cart_items segment premium_customers (priority 1) added, on, value 500",
			want: map[string]string{"environments/staging/features/max_cart_items.json": stateHead + `  "segment_overrides": [
    {
      "segment": "premium_customers",
      "priority": 1,
      "enabled": true,
      "value": 500
    }
  ]
}
`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := SetSegmentOverride(snap, files, tc.env, tc.feature, tc.segment, tc.o)
			checkEdit(t, files, res, err, tc.summary, tc.want)
		})
	}
}

func TestSetSegmentOverrideErrors(t *testing.T) {
	snap, files := template(t)
	crowded := files.apply(map[string][]byte{"environments/production/features/dark_mode.json": []byte(stateHead + `  "segment_overrides": [
    {"segment": "legacy_clients", "priority": 999999, "enabled": false},
    {"segment": "mobile_app_users", "priority": 1000000, "enabled": true}
  ]
}
`)})
	for _, tc := range []struct {
		name, env, feature, segment string
		o                           Override
		files                       memFiles
		field                       string
	}{
		{"unknown environment", "live", "dark_mode", "beta_users", Override{Enabled: ptr(true)}, files, "404 environment"},
		{"unknown feature", "production", "dark", "beta_users", Override{Enabled: ptr(true)}, files, "404 feature"},
		{"unknown segment", "production", "dark_mode", "beta", Override{Enabled: ptr(true)}, files, "404 segment"},
		{"new without enabled", "production", "dark_mode", "beta_users", Override{Value: value(true)}, files, "enabled"},
		{"negative priority", "production", "dark_mode", "beta_users", Override{Enabled: ptr(true), Priority: ptr(-1)}, files, "priority"},
		{"priority too large", "production", "dark_mode", "beta_users", Override{Enabled: ptr(true), Priority: ptr(MaxPriority + 1)}, files, "priority"},
		{"moving others past the largest priority", "production", "dark_mode", "beta_users", Override{Enabled: ptr(true), Priority: ptr(999999)}, crowded, "priority"},
		{"no lowest priority left", "production", "dark_mode", "beta_users", Override{Enabled: ptr(true)}, crowded, "priority"},
		{"value of the wrong type", "production", "api_rate_limit", "beta_users", Override{Enabled: ptr(true), Value: value("fast")}, files, "value"},
		{"weights for an unknown variant", "production", "new_checkout", "beta_users", Override{Weights: map[string]float64{"two_step": 5}}, files, "weights.two_step"},
		{"weights over 100", "production", "recommendations_algorithm", "even_user_ids", Override{Weights: map[string]float64{"hybrid": 50, "collaborative": 50, "content_based": 0.5}}, files, "weights"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := SetSegmentOverride(snap, tc.files, tc.env, tc.feature, tc.segment, tc.o)
			checkError(t, res, err, tc.field)
		})
	}
}

func TestDeleteSegmentOverride(t *testing.T) {
	snap, files := template(t)
	res, err := DeleteSegmentOverride(snap, files, "production", "dark_mode", "legacy_clients")
	checkEdit(t, files, res, err, "production: dark_mode segment legacy_clients override removed", map[string]string{
		"environments/production/features/dark_mode.json": stateHead + `  "segment_overrides": [
    {
      "segment": "mobile_app_users",
      "priority": 2,
      "enabled": true
    }
  ]
}
`})
	res, err = DeleteSegmentOverride(snap, files, "production", "beta_features_banner", "beta_users")
	checkEdit(t, files, res, err, "production: beta_features_banner segment beta_users override removed", map[string]string{
		"environments/production/features/beta_features_banner.json": ""})

	for _, tc := range []struct{ env, feature, segment, field string }{
		{"production", "dark_mode", "beta_users", "404 segment override"},
		{"production", "maintenance_mode", "beta_users", "404 segment override"},
		{"production", "dark_mode", "nobody", "404 segment"},
		{"production", "light_mode", "beta_users", "404 feature"},
		{"qa", "dark_mode", "beta_users", "404 environment"},
	} {
		res, err := DeleteSegmentOverride(snap, files, tc.env, tc.feature, tc.segment)
		checkError(t, res, err, tc.field)
	}
}

// Flagsmith's update-flag-v2 sets the environment default and several
// segment overrides in one request: one Result, one file, one summary.
func TestThenOverlay(t *testing.T) {
	snap, files := template(t)
	res, err := SetFeatureState(snap, files, "production", "max_cart_items", State{Value: value(int64(60))})
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range []string{"internal_staff", "beta_users"} {
		next, err := SetSegmentOverride(snap, Overlay(files, res.Changes), "production", "max_cart_items", seg, Override{Enabled: ptr(true), Priority: ptr(1), Value: value(int64(1000))})
		if err != nil {
			t.Fatal(err)
		}
		res = res.Then(next)
	}
	noop, err := SetFeatureState(snap, Overlay(files, res.Changes), "production", "max_cart_items", State{Value: value(int64(60))})
	if err != nil || len(noop.Changes) != 0 {
		t.Fatalf("repeating the first edit: %v, %v", noop.Changes, err)
	}
	res = res.Then(noop)
	checkEdit(t, files, res, err, "production: max_cart_items value 60 (was 50); "+
		"production: max_cart_items segment internal_staff (priority 1) added, on, value 1000, moved down: premium_customers; "+
		"production: max_cart_items segment beta_users (priority 1) added, on, value 1000, moved down: internal_staff, premium_customers",
		map[string]string{"environments/production/features/max_cart_items.json": stateHead + `  "value": 60,
  "segment_overrides": [
    {
      "segment": "beta_users",
      "priority": 1,
      "enabled": true,
      "value": 1000
    },
    {
      "segment": "internal_staff",
      "priority": 2,
      "enabled": true,
      "value": 1000
    },
    {
      "segment": "premium_customers",
      "priority": 3,
      "enabled": true,
      "value": 200
    }
  ]
}
`})
	// A deleted file reads as absent through the overlay.
	del, err := DeleteFeature(snap, files, "max_cart_items")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SetSegmentOverride(snap, Overlay(files, del.Changes), "production", "max_cart_items", "beta_users", Override{Enabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := Overlay(files, del.Changes).ReadFile("features/max_cart_items.json"); err == nil {
		t.Error("a deleted file reads")
	}
}

func TestSnapshotReadsThroughFiles(t *testing.T) {
	// The snapshot says which features exist; the files say what they hold.
	snap, files := template(t)
	broken := files.apply(map[string][]byte{"environments/production/features/dark_mode.json": []byte("{")})
	if _, err := SetFeatureState(snap, broken, "production", "dark_mode", State{Enabled: ptr(true)}); err == nil {
		t.Error("no error for an unreadable file")
	}
}

// FuzzEditState: whatever a state file holds, edits of it return an error or
// a result, never panic, and a result's files parse.
func FuzzEditState(f *testing.F) {
	snap, files := template(f)
	const path = "environments/production/features/new_checkout.json"
	f.Add(files[path])
	f.Add([]byte(`{"segment_overrides": [{"priority": "x"}, 1, {"segment": "beta_users"}], "weights": [], "enabled": "no"}`))
	f.Add([]byte(`{"segment_overrides": {}, "value": {"a": 1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := files.apply(map[string][]byte{path: data})
		for _, edit := range []func() (Result, error){
			func() (Result, error) {
				return SetFeatureState(snap, m, "production", "new_checkout", State{Enabled: ptr(false), Value: value("x"), Weights: map[string]float64{"express": 1}})
			},
			func() (Result, error) {
				return SetSegmentOverride(snap, m, "production", "new_checkout", "beta_users", Override{Enabled: ptr(false), Priority: ptr(1), Value: value("x"), Weights: map[string]float64{"one_page": 1}})
			},
			func() (Result, error) {
				return SetSegmentOverride(snap, m, "production", "new_checkout", "internal_staff", Override{Enabled: ptr(true)})
			},
			func() (Result, error) {
				return DeleteSegmentOverride(snap, m, "production", "new_checkout", "beta_users")
			},
			func() (Result, error) { return DeleteSegment(snap, m, "premium_customers") },
		} {
			res, err := edit()
			if err != nil {
				continue
			}
			for p, data := range res.Changes {
				if data == nil {
					continue
				}
				if _, err := parseJSON(data); err != nil {
					t.Fatalf("%s: the edit wrote what does not parse: %v\n%s", p, err, data)
				}
			}
		}
	})
}
