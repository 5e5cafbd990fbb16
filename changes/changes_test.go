package changes

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/flagrepo"
)

// summary renders what changed per environment, in a stable order.
func summary(s Set) string {
	var b strings.Builder
	for _, k := range envKeys(s) {
		e := s.Environments[k]
		fmt.Fprintf(&b, "%s %s settings=%v segments=%v\n", k, e.Kind, e.Settings, e.Segments)
		for _, fk := range slices.Sorted(maps.Keys(e.Features)) {
			f := e.Features[fk]
			fmt.Fprintf(&b, "  %s %s segments=%v before=%v after=%v\n", fk, f.Kind, f.Segments, f.Before != nil, f.After != nil)
		}
	}
	return b.String()
}

// between returns Between(old, new) and checks that it says the same per
// environment when new is loaded without old (no shared documents: every
// document is compared by content).
func between(t *testing.T, r0, r1 repo) (Set, *flagrepo.Snapshot, *flagrepo.Snapshot) {
	t.Helper()
	old := r0.load(t, "a", nil)
	next := r1.load(t, "b", old)
	set := Between(old, next)
	fresh := Between(old, r1.load(t, "b", nil))
	if got, want := summary(fresh), summary(set); got != want {
		t.Errorf("Between with shared documents:\n%s\nwithout:\n%s", want, got)
	}
	if set.From.SHA != "a" || set.To.SHA != "b" {
		t.Errorf("revisions %q -> %q, want a -> b", set.From.SHA, set.To.SHA)
	}
	return set, old, next
}

func TestNothingChanged(t *testing.T) {
	r := template(t)
	old := r.load(t, "a", nil)
	if s := Between(old, r.load(t, "b", old)); !s.Empty() {
		t.Errorf("reload of the same files: %+v", s)
	}
	if s := Between(old, old); !s.Empty() {
		t.Errorf("same snapshot: %+v", s)
	}
	// A reformatted file is a new document with the same content.
	path := "environments/production/features/new_checkout.json"
	s, _, _ := between(t, r, r.with(path, []byte(strings.ReplaceAll(string(r[path]), "\n", "\n  "))))
	if len(s.Environments) != 0 {
		t.Errorf("reformatted feature state: %s", summary(s))
	}
	path = "features/dark_mode.json"
	s, _, _ = between(t, r, r.edit(t, path, func(d map[string]any) { d["description"] = "Darker."; d["tags"] = []string{"ui", "theme"} }))
	if len(s.Environments) != 0 || s.Features["dark_mode"] != Modified {
		t.Errorf("description and tags of a feature: features %v, environments:\n%s", s.Features, summary(s))
	}
}

func TestFeatureStateChanged(t *testing.T) {
	r := template(t)
	s, _, _ := between(t, r, r.edit(t, "environments/production/features/new_checkout.json", func(d map[string]any) {
		d["enabled"] = false
	}))
	if got := envKeys(s); !slices.Equal(got, []string{"production"}) {
		t.Fatalf("environments %v, want [production]", got)
	}
	if got := featureKeys(s, "production"); !slices.Equal(got, []string{"new_checkout"}) {
		t.Fatalf("features %v, want [new_checkout]", got)
	}
	f := s.Environments["production"].Features["new_checkout"]
	if f.Kind != Modified || !f.Before.Enabled || f.After.Enabled || f.Before.Value != "classic" || f.After.Value != "classic" {
		t.Errorf("new_checkout: %s before %+v after %+v", f.Kind, f.Before, f.After)
	}
	if len(s.Features) != 0 || len(s.Segments) != 0 || len(s.Settings) != 0 {
		t.Errorf("documents changed: features %v segments %v settings %v", s.Features, s.Segments, s.Settings)
	}

	// Weights, segment overrides and identity overrides count.
	edits := map[string]func(map[string]any){
		"weights":            func(d map[string]any) { d["weights"] = map[string]any{"one_page": 30, "express": 10} },
		"segment override":   func(d map[string]any) { d["segment_overrides"].([]any)[0].(map[string]any)["value"] = "one-page" },
		"identity overrides": func(d map[string]any) { d["identity_overrides"] = []any{} },
	}
	for name, edit := range edits {
		s, _, _ := between(t, r, r.edit(t, "environments/production/features/new_checkout.json", edit))
		if got := featureKeys(s, "production"); !slices.Equal(got, []string{"new_checkout"}) || len(s.Environments) != 1 {
			t.Errorf("%s: %s", name, summary(s))
		}
	}
}

func TestFeatureDefinitionChanged(t *testing.T) {
	r := template(t)
	// The default value reaches every environment without a value of its
	// own; production's segment override has its own value, but its
	// environment value is the default.
	s, _, _ := between(t, r, r.edit(t, "features/free_shipping_threshold.json", func(d map[string]any) {
		d["default"].(map[string]any)["value"] = "59.99"
	}))
	if got := envKeys(s); !slices.Equal(got, []string{"development", "production", "staging"}) {
		t.Fatalf("environments %v:\n%s", got, summary(s))
	}
	for _, env := range envKeys(s) {
		f := s.Environments[env].Features["free_shipping_threshold"]
		if f == nil || f.Before.Value != "49.99" || f.After.Value != "59.99" {
			t.Errorf("%s: %+v", env, f)
		}
	}
	// Development enables dark_mode itself: a new default changes nothing there.
	s, _, _ = between(t, r, r.edit(t, "features/dark_mode.json", func(d map[string]any) {
		d["default"].(map[string]any)["enabled"] = true
	}))
	if got := envKeys(s); !slices.Equal(got, []string{"production", "staging"}) {
		t.Errorf("environments %v, want [production staging]:\n%s", got, summary(s))
	}
	// A variant's value changes the feature wherever it is served.
	s, _, _ = between(t, r, r.edit(t, "features/new_checkout.json", func(d map[string]any) {
		d["variants"].([]any)[1].(map[string]any)["value"] = "express-2"
	}))
	if got := envKeys(s); !slices.Equal(got, []string{"development", "production", "staging"}) {
		t.Errorf("environments %v after a variant value changed:\n%s", got, summary(s))
	}
	// server_key_only hides the flag from client keys.
	s, _, _ = between(t, r, r.edit(t, "features/dark_mode.json", func(d map[string]any) { d["server_key_only"] = true }))
	if got := envKeys(s); len(got) != 3 {
		t.Errorf("environments %v after server_key_only:\n%s", got, summary(s))
	}
}

func TestFeatureAddedRemoved(t *testing.T) {
	r := template(t)
	added := r.with("features/zz_new.json", []byte(`{"id": 99999, "default": {"enabled": true, "value": "x"}}`))
	s, _, _ := between(t, r, added)
	if s.Features["zz_new"] != Added {
		t.Errorf("features %v", s.Features)
	}
	for _, env := range []string{"development", "staging", "production"} {
		f := s.Environments[env].Features["zz_new"]
		if f == nil || f.Kind != Added || f.Before != nil || f.After == nil || f.After.Value != "x" || len(s.Environments[env].Features) != 1 {
			t.Errorf("%s: %s", env, summary(s))
		}
	}
	s, _, _ = between(t, added, r)
	for _, env := range []string{"development", "staging", "production"} {
		f := s.Environments[env].Features["zz_new"]
		if f == nil || f.Kind != Removed || f.Before == nil || f.After != nil {
			t.Errorf("%s: %s", env, summary(s))
		}
	}
	// Removing a feature removes its states too.
	gone := r.with("features/dark_mode.json", nil)
	for _, env := range []string{"development", "staging", "production"} {
		gone = gone.with("environments/"+env+"/features/dark_mode.json", nil)
	}
	s, _, _ = between(t, r, gone)
	for _, env := range []string{"development", "staging", "production"} {
		if got := featureKeys(s, env); !slices.Equal(got, []string{"dark_mode"}) || s.Environments[env].Features["dark_mode"].Kind != Removed {
			t.Errorf("%s: %v", env, got)
		}
	}
	// A state file added with the default's content changes nothing.
	same := r.with("environments/development/features/max_cart_items.json", []byte(`{}`))
	if s, _, _ = between(t, r, same); len(s.Environments) != 0 {
		t.Errorf("an empty state file: %s", summary(s))
	}
}

func TestSegmentChanged(t *testing.T) {
	r := template(t)
	// power_users is used in production only, by api_rate_limit.
	s, _, _ := between(t, r, r.edit(t, "segments/power_users.json", func(d map[string]any) {
		d["rules"].([]any)[0].(map[string]any)["conditions"].([]any)[0].(map[string]any)["value"] = "30"
	}))
	if s.Segments["power_users"] != Modified {
		t.Errorf("segments %v", s.Segments)
	}
	if got := envKeys(s); !slices.Equal(got, []string{"production"}) {
		t.Fatalf("environments %v:\n%s", got, summary(s))
	}
	e := s.Environments["production"]
	if !slices.Equal(e.Segments, []string{"power_users"}) || !slices.Equal(featureKeys(s, "production"), []string{"api_rate_limit"}) {
		t.Fatalf("production:\n%s", summary(s))
	}
	f := e.Features["api_rate_limit"]
	if f.Kind != Modified || !slices.Equal(f.Segments, []string{"power_users"}) || !ResolvedEqual(f.Before, f.After) {
		t.Errorf("api_rate_limit: %+v", f)
	}
	// internal_staff is used in staging and production.
	s, _, _ = between(t, r, r.edit(t, "segments/internal_staff.json", func(d map[string]any) {
		d["rules"].([]any)[0].(map[string]any)["type"] = "ANY"
	}))
	if got := featureKeys(s, "staging"); !slices.Equal(got, []string{"ai_assistant", "new_checkout"}) {
		t.Errorf("staging %v", got)
	}
	if got := featureKeys(s, "production"); !slices.Equal(got, []string{"ai_assistant", "api_rate_limit"}) {
		t.Errorf("production %v", got)
	}
	if s.Environments["development"] != nil {
		t.Errorf("development:\n%s", summary(s))
	}
	// A description is no change of the segment's rules.
	s, _, _ = between(t, r, r.edit(t, "segments/power_users.json", func(d map[string]any) { d["description"] = "Heavy users." }))
	if s.Segments["power_users"] != Modified || len(s.Environments) != 0 {
		t.Errorf("description only: segments %v\n%s", s.Segments, summary(s))
	}
	// An override of a changed segment dropped in the same commit: the
	// feature changed, and names the segment it used before.
	r2 := r.edit(t, "segments/power_users.json", func(d map[string]any) { d["rules"] = d["rules"].([]any)[:1] })
	r2 = r2.edit(t, "environments/production/features/api_rate_limit.json", func(d map[string]any) {
		d["segment_overrides"] = d["segment_overrides"].([]any)[:1] // drops power_users
	})
	s, _, _ = between(t, r, r2)
	f = s.Environments["production"].Features["api_rate_limit"]
	if f == nil || !slices.Equal(f.Segments, []string{"power_users"}) || len(f.After.SegmentOverrides) != 1 || !slices.Equal(s.Environments["production"].Segments, []string{"power_users"}) {
		t.Errorf("override of a changed segment dropped:\n%s", summary(s))
	}
	// A new segment nobody uses changes no environment.
	s, _, _ = between(t, r, r.with("segments/zz_new.json", []byte(`{"id": 999, "rules": [{"type": "ALL", "conditions": [{"property": "plan", "operator": "EQUAL", "value": "x"}]}]}`)))
	if s.Segments["zz_new"] != Added || len(s.Environments) != 0 {
		t.Errorf("unused new segment: %v\n%s", s.Segments, summary(s))
	}
}

func TestEnvironmentSettings(t *testing.T) {
	r := template(t)
	s, _, _ := between(t, r, r.edit(t, "environments/production/environment.json", func(d map[string]any) {
		d["hide_disabled_flags"] = true
		d["name"] = "Prod"
	}))
	e := s.Environments["production"]
	if got := envKeys(s); !slices.Equal(got, []string{"production"}) || !slices.Equal(e.Settings, []string{"name", "hide_disabled_flags"}) || len(e.Features) != 0 {
		t.Fatalf("%v: %s", got, summary(s))
	}
	if !e.ReevaluateAll() {
		t.Error("a new name ($.environment.name) needs every feature evaluated again")
	}
	// The project's default applies where an environment has none.
	s, _, _ = between(t, r, r.edit(t, "gitflags.json", func(d map[string]any) {
		d["project"].(map[string]any)["hide_disabled_flags"] = true
	}))
	if !slices.Equal(s.Settings, []string{"project"}) {
		t.Errorf("settings %v", s.Settings)
	}
	for _, env := range []string{"development", "staging", "production"} {
		if got := s.Environments[env].Settings; !slices.Equal(got, []string{"hide_disabled_flags", "project"}) {
			t.Errorf("%s settings %v", env, got)
		}
		if s.Environments[env].ReevaluateAll() {
			t.Errorf("%s: hide_disabled_flags needs no evaluation", env)
		}
	}
}

func TestEnvironmentAddedRemoved(t *testing.T) {
	r := template(t)
	qa := r
	for p, data := range r {
		if rest, ok := strings.CutPrefix(p, "environments/staging/"); ok {
			qa = qa.with("environments/qa/"+rest, data)
		}
	}
	qa = qa.edit(t, "environments/qa/environment.json", func(d map[string]any) {
		d["id"] = 77
		d["client_key"] = "qa_key_0123456789abcdef"
	})
	s, _, next := between(t, r, qa)
	e := s.Environments["qa"]
	if got := envKeys(s); !slices.Equal(got, []string{"qa"}) || e.Kind != Added || !e.ReevaluateAll() {
		t.Fatalf("%v\n%s", got, summary(s))
	}
	if len(e.Features) != len(next.Features) || !slices.Equal(e.Segments, nil) {
		t.Errorf("qa: %d features of %d; segments %v", len(e.Features), len(next.Features), e.Segments)
	}
	s, _, _ = between(t, qa, r)
	if e = s.Environments["qa"]; e == nil || e.Kind != Removed || len(e.Features) != len(next.Features) || e.Features["dark_mode"].Before == nil {
		t.Errorf("removed:\n%s", summary(s))
	}
}

func TestNilSnapshots(t *testing.T) {
	r := template(t)
	snap := r.load(t, "a", nil)
	s := Between(nil, snap)
	if got := envKeys(s); len(got) != 3 || len(s.Features) != len(snap.Features) || len(s.Segments) != len(snap.Segments) {
		t.Fatalf("from nothing: %v, %d features, %d segments", got, len(s.Features), len(s.Segments))
	}
	for _, env := range envKeys(s) {
		e := s.Environments[env]
		if e.Kind != Added || len(e.Features) != len(snap.Features) {
			t.Errorf("%s: %s with %d features", env, e.Kind, len(e.Features))
		}
		for k, f := range e.Features {
			if f.Kind != Added || f.Before != nil || f.After == nil || f.After.Feature != snap.Features[k] {
				t.Errorf("%s/%s: %+v", env, k, f)
			}
		}
	}
	s = Between(snap, nil)
	for _, env := range envKeys(s) {
		if e := s.Environments[env]; e.Kind != Removed || len(e.Features) != len(snap.Features) {
			t.Errorf("%s: %s with %d features", env, e.Kind, len(e.Features))
		}
	}
	if s := Between(nil, nil); !s.Empty() {
		t.Errorf("nothing to nothing: %+v", s)
	}
}

func TestKindJSON(t *testing.T) {
	b, err := json.Marshal(map[string]Kind{"a": Added, "m": Modified, "r": Removed})
	if err != nil || string(b) != `{"a":"added","m":"modified","r":"removed"}` {
		t.Errorf("%s %v", b, err)
	}
	var back map[string]Kind
	if err := json.Unmarshal(b, &back); err != nil || back["a"] != Added || back["m"] != Modified || back["r"] != Removed {
		t.Errorf("%v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`"changed"`), new(Kind)); err == nil {
		t.Error("unknown kind accepted")
	}
}
