package evaluator

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
)

func templateModels(t *testing.T) map[string]*Model {
	t.Helper()
	files, err := flagrepo.DirFiles(filepath.Join("..", "flags-repo-template"))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := flagrepo.Load(flagrepo.WorkingRevision(), files, nil)
	if err != nil {
		t.Fatal(err)
	}
	models, err := CompileSnapshot(snap, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != 3 {
		t.Fatalf("%d models", len(models))
	}
	return models
}

func TestTemplateEvaluation(t *testing.T) {
	models := templateModels(t)
	cases := []struct {
		env, flag string
		id        *Identity
		enabled   bool
		value     any
		reason    string
		variant   string
	}{
		{"production", "api_rate_limit", nil, true, int64(600), "DEFAULT", ""},
		{"staging", "api_rate_limit", nil, true, int64(5000), "DEFAULT", ""},
		{"development", "api_rate_limit", nil, true, int64(1000), "DEFAULT", ""},
		{"production", "api_rate_limit", &Identity{Identifier: "dev1", Traits: map[string]any{"email": "dev1@acme.example"}},
			true, int64(100000), "TARGETING_MATCH; segment=internal_staff", ""},
		{"production", "api_rate_limit", &Identity{Identifier: "p1", Traits: map[string]any{"weekly_sessions": 25, "open_tickets": 1}},
			true, int64(2000), "TARGETING_MATCH; segment=power_users", ""},
		// power_users excludes the Development environment by $.environment.name.
		{"development", "api_rate_limit", &Identity{Identifier: "p1", Traits: map[string]any{"weekly_sessions": 25, "open_tickets": 1}},
			true, int64(1000), "DEFAULT", ""},
		{"production", "api_rate_limit", &Identity{Identifier: "partner-bulk-importer"},
			true, int64(20000), "TARGETING_MATCH; segment=" + IdentityOverridesSegment, ""},
		{"production", "new_checkout", &Identity{Identifier: "qa@acme.example"},
			true, "one-page", "TARGETING_MATCH; segment=" + IdentityOverridesSegment, ""},
		{"production", "new_checkout", &Identity{Identifier: "someone", Traits: map[string]any{"beta_tester": true}},
			true, "express", "TARGETING_MATCH; segment=beta_users", ""},
		{"production", "max_cart_items", &Identity{Identifier: "rich", Traits: map[string]any{"plan": "pro", "lifetime_value": "2500"}},
			true, int64(200), "TARGETING_MATCH; segment=premium_customers", ""},
		{"production", "max_cart_items", &Identity{Identifier: "poor", Traits: map[string]any{"plan": "free", "lifetime_value": 2500}},
			true, int64(50), "DEFAULT", ""},
		{"production", "dark_mode", &Identity{Identifier: "m", Traits: map[string]any{"platform": "ios", "app_version": "3.10.1"}},
			true, nil, "TARGETING_MATCH; segment=mobile_app_users", ""},
		{"production", "dark_mode", &Identity{Identifier: "old", Traits: map[string]any{"platform": "ios", "app_version": "1.9.0"}},
			false, nil, "TARGETING_MATCH; segment=legacy_clients", ""},
		{"production", "free_shipping_threshold", &Identity{Identifier: "eu", Traits: map[string]any{"country": "DE", "gdpr_opt_out": false}},
			true, "39.00", "TARGETING_MATCH; segment=eu_customers", ""},
		{"production", "free_shipping_threshold", &Identity{Identifier: "us", Traits: map[string]any{"country": "US"}},
			true, "49.99", "DEFAULT", ""},
		{"production", "ai_assistant", &Identity{Identifier: "alice@example.com"},
			true, nil, "TARGETING_MATCH; segment=" + IdentityOverridesSegment, ""},
		{"production", "ai_assistant", &Identity{Identifier: "mallory@example.com"}, false, nil, "DEFAULT", ""},
	}
	for _, c := range cases {
		m := models[c.env]
		var f Flag
		var ok bool
		if c.id == nil {
			for _, ef := range m.EnvironmentFlags() {
				if ef.Name == c.flag {
					f, ok = ef, true
				}
			}
		} else {
			f, ok = m.Flag(c.flag, c.id)
		}
		if !ok {
			t.Fatalf("%s/%s: flag not found", c.env, c.flag)
		}
		if f.Enabled != c.enabled || f.Value != c.value || f.Reason != c.reason || f.Variant != c.variant {
			t.Errorf("%s/%s for %+v = {enabled %v, value %#v, reason %q, variant %q}, want {%v, %#v, %q, %q}",
				c.env, c.flag, c.id, f.Enabled, f.Value, f.Reason, f.Variant, c.enabled, c.value, c.reason, c.variant)
		}
	}
}

// TestTemplateSegmentOverrideSplit checks that a segment override with
// weights splits the segment 50/50 between variants, and that the same
// identity always lands in the same variant across recompiles.
func TestTemplateSegmentOverrideSplit(t *testing.T) {
	m := templateModels(t)["production"]
	again := templateModels(t)["production"]
	counts := map[any]int{}
	for i := 0; i < 2000; i++ {
		id := &Identity{Identifier: "user" + strconv.Itoa(i), Traits: map[string]any{"plan": "enterprise", "lifetime_value": 5000}}
		f, _ := m.Flag("new_checkout", id)
		g, _ := again.Flag("new_checkout", id)
		if f.Value != g.Value || f.Variant != g.Variant {
			t.Fatalf("identity %s moved between compiles: %v/%v vs %v/%v", id.Identifier, f.Value, f.Variant, g.Value, g.Variant)
		}
		if f.Reason != "SPLIT; weight=50" {
			t.Fatalf("reason %q", f.Reason)
		}
		counts[f.Value]++
	}
	if len(counts) != 2 || counts["one-page"] < 900 || counts["express"] < 900 {
		t.Errorf("split of 2000 premium identities: %v", counts)
	}
}
