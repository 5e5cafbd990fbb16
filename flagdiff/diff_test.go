package flagdiff

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitflags/gitflags/evaluator"
	"github.com/gitflags/gitflags/gitstore"
)

// TestTurnedOnForSegment: the first example, in production.
func TestTurnedOnForSegment(t *testing.T) {
	r := newFlagRepo(t)
	r.edit("environments/production/features/new_checkout.json", func(d map[string]any) {
		d["segment_overrides"].([]any)[0].(map[string]any)["enabled"] = false
	})
	r.commit("beta users off")
	r.branch("change")
	r.edit("environments/production/features/new_checkout.json", func(d map[string]any) {
		d["segment_overrides"].([]any)[0].(map[string]any)["enabled"] = true
	})
	r.edit("environments/staging/features/dark_mode.json", func(d map[string]any) {
		d["segment_overrides"] = append(d["segment_overrides"].([]any), map[string]any{"segment": "beta_users", "priority": 2, "enabled": true, "value": "midnight"})
	})
	r.commit("beta users on")
	rep := r.compare("main", "change", Options{})
	if !rep.Valid() || !rep.Compared {
		t.Fatalf("valid %v compared %v", rep.Valid(), rep.Compared)
	}
	c := one(t, rep, "production", "new_checkout")
	if c.Message != "`new_checkout` turned on for segment `beta_users` (priority 1)" || c.Kind != "segment_override_changed" || c.Field != "beta_users" {
		t.Errorf("change %+v", c)
	}
	hasRisks(t, c, RiskProduction)
	c = one(t, rep, "staging", "dark_mode")
	if c.Message != "`dark_mode` turned on for segment `beta_users` (priority 2), value `\"midnight\"`" || c.Kind != "segment_override_added" {
		t.Errorf("change %+v", c)
	}
	hasRisks(t, c) // staging is not production
	if len(rep.Changes) != 2 {
		t.Errorf("changes:\n%s", dump(rep))
	}
	// Production's group comes first in Markdown: it holds the risky change.
	var md strings.Builder
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	if p, s := strings.Index(out, "#### production"), strings.Index(out, "#### staging"); p < 0 || s < p {
		t.Errorf("Markdown: production group not before staging:\n%s", out)
	}
	if !strings.Contains(out, "- ⚠️ `new_checkout` turned on for segment `beta_users` (priority 1) _(production)_") {
		t.Errorf("Markdown:\n%s", out)
	}
}

// pricingTier adds a multivariate feature to the repository.
func pricingTier(r *flagRepo, weights map[string]any) {
	r.edit("features/pricing_tier.json", func(d map[string]any) {
		d["$schema"] = "../schemas/feature.schema.json"
		d["id"] = 1200
		d["description"] = "Pricing tier experiment."
		d["default"] = map[string]any{"enabled": false, "value": "basic"}
		d["variants"] = []any{
			map[string]any{"id": 1, "key": "standard", "value": "standard", "weight": 0},
			map[string]any{"id": 2, "key": "premium", "value": "premium", "weight": 0},
		}
	})
	r.edit("environments/staging/features/pricing_tier.json", func(d map[string]any) {
		d["$schema"] = "../../../schemas/environment-feature.schema.json"
		d["enabled"] = true
		d["weights"] = weights
	})
}

// TestSplitMoves: the second example; the share of identities that
// move is exact, and the bands are the engine's (checked identity by
// identity against the evaluator).
func TestSplitMoves(t *testing.T) {
	r := newFlagRepo(t)
	pricingTier(r, map[string]any{"standard": 50, "premium": 20})
	r.commit("pricing tier 50/20")
	r.branch("change")
	pricingTier(r, map[string]any{"standard": 30, "premium": 40})
	r.commit("pricing tier 30/40")
	rep := r.compare("main", "change", Options{})
	c := one(t, rep, "staging", "pricing_tier")
	if c.Message != "`pricing_tier` split changed: standard 50% -> 30%, premium 20% -> 40%, 20% of identities move from standard to premium" {
		t.Errorf("message %q", c.Message)
	}
	hasRisks(t, c, RiskMovesIdentities)
	// p in [30, 50): remainders 3000..4998 of 0..9997.
	moved := 1999
	if want := float64(moved) / 9998 * 100; c.MovedPercent == nil || *c.MovedPercent != want || len(c.Moves) != 1 || c.Moves[0] != (Move{"standard", "premium", want}) {
		t.Errorf("moved %v %+v, want %v", c.MovedPercent, c.Moves, want)
	}
	if string(c.Before) != `{"premium":20,"standard":50}` || string(c.After) != `{"premium":40,"standard":30}` {
		t.Errorf("before %s after %s", c.Before, c.After)
	}

	// The bands give each identity the variant the evaluator gives it.
	before := []band{{"standard", 50}, {"premium", 20}}
	after := []band{{"standard", 30}, {"premium", 40}}
	for i, bs := range [][]band{before, after} {
		env := &evaluator.Environment{Key: "stg", Features: []evaluator.Feature{{Key: "1200", Name: "pricing_tier", Value: "basic",
			Variants: []evaluator.Variant{{Key: "standard", Value: "standard", Weight: bs[0].weight, Priority: 1}, {Key: "premium", Value: "premium", Weight: bs[1].weight, Priority: 2}}}}}
		m, err := evaluator.Compile(env)
		if err != nil {
			t.Fatal(err)
		}
		moved = 0
		for n := range 3000 {
			id := &evaluator.Identity{Identifier: fmt.Sprintf("user-%d", n)}
			f, _ := m.Flag("pricing_tier", id)
			p := evaluator.HashedPercentage("1200", "stg_"+id.Identifier)
			if got := variantAt(bs, p); got != f.Variant {
				t.Fatalf("split %d, %s: bands say %s, the evaluator %s", i, id.Identifier, got, f.Variant)
			}
			if variantAt(before, p) != variantAt(after, p) {
				moved++
			}
		}
		if share := float64(moved) / 3000 * 100; math.Abs(share-20) > 3 {
			t.Errorf("%.1f%% of 3000 identities moved, expected about 20%%", share)
		}
	}
}

// TestMoves checks the band arithmetic on its own.
func TestMoves(t *testing.T) {
	total, ms := moves([]band{{"a", 50}, {"b", 50}}, []band{{"a", 50}, {"b", 50}})
	if total != 0 || len(ms) != 0 {
		t.Errorf("same split: %v %v", total, ms)
	}
	// A new variant taking everything from control.
	total, ms = moves(nil, []band{{"a", 100}})
	if total != 100 || len(ms) != 1 || ms[0].From != "control" || ms[0].To != "a" {
		t.Errorf("control to a: %v %v", total, ms)
	}
	// Reordering (variant ids swapped) moves everyone in both bands.
	total, _ = moves([]band{{"a", 50}, {"b", 50}}, []band{{"b", 50}, {"a", 50}})
	if total != 100 {
		t.Errorf("swapped bands: %v", total)
	}
	// Independent hashes: 1 - sum of squared shares.
	if got := rehashed([]band{{"a", 10}, {"b", 10}}, []band{{"a", 10}, {"b", 10}}); math.Abs(got-34) > 0.01 {
		t.Errorf("rehashed 10/10: %v, want 34", got)
	}
	if got, want := pct(1999.0/9998*100), "20%"; got != want {
		t.Errorf("pct %q, want %q", got, want)
	}
	if got, want := pct(0.01), "0.01%"; got != want {
		t.Errorf("pct %q, want %q", got, want)
	}
}

// TestSegmentRules: the third example, with where the segment is
// used; verbs by rule type.
func TestSegmentRules(t *testing.T) {
	r := newFlagRepo(t)
	r.edit("environments/staging/features/dark_mode.json", func(d map[string]any) {
		d["segment_overrides"] = []any{map[string]any{"segment": "beta_users", "priority": 1, "enabled": true}}
	})
	r.edit("segments/new_users.json", func(d map[string]any) {
		d["rules"] = []any{map[string]any{"type": "ALL", "conditions": []any{
			map[string]any{"property": "signup_days", "operator": "LESS_THAN", "value": "30"},
		}}}
	})
	r.commit("beta users in staging")
	r.branch("change")
	r.edit("segments/beta_users.json", func(d map[string]any) {
		rule := d["rules"].([]any)[0].(map[string]any)
		rule["conditions"] = append(rule["conditions"].([]any), map[string]any{"property": "plan", "operator": "IN", "value": "enterprise"})
	})
	r.edit("segments/new_users.json", func(d map[string]any) {
		d["rules"] = []any{map[string]any{"type": "ALL", "conditions": []any{
			map[string]any{"property": "signup_days", "operator": "LESS_THAN", "value": "30"},
			map[string]any{"property": "country", "operator": "IN", "value": []any{"DE", "FR"}},
		}}}
	})
	r.edit("segments/gradual_rollout_10pct.json", func(d map[string]any) {
		d["rules"].([]any)[0].(map[string]any)["conditions"].([]any)[0].(map[string]any)["value"] = "20"
	})
	r.commit("segments")
	rep := r.compare("main", "change", Options{})

	c := one(t, rep, "", "beta_users")
	if c.Message != "segment `beta_users` now also matches `plan IN enterprise` (used by 3 features in 2 environments)" || c.Kind != "segment_rules_changed" {
		t.Errorf("beta_users: %+v", c)
	}
	hasRisks(t, c, RiskProduction)
	c = one(t, rep, "production", "segment `beta_users`")
	if c.Message != "segment `beta_users` changed (see the repository-wide changes); here it decides `beta_features_banner` and `new_checkout`" {
		t.Errorf("production: %q", c.Message)
	}
	one(t, rep, "staging", "segment `beta_users`")

	c = one(t, rep, "", "new_users")
	if c.Message != "segment `new_users` now also requires `country IN DE,FR` (used by 1 feature in 1 environment)" {
		t.Errorf("new_users: %q", c.Message)
	}
	c = one(t, rep, "", "gradual_rollout_10pct")
	if !strings.Contains(c.Message, "percentage split on the identity 10% -> 20%: 10% of identities pass it") {
		t.Errorf("percentage split: %q", c.Message)
	}
	if c.MovedPercent == nil || math.Abs(*c.MovedPercent-10) > 0.02 {
		t.Errorf("percentage split moved %v", c.MovedPercent)
	}
	if !slices.Contains(c.Risks, RiskMovesIdentities) {
		t.Errorf("percentage split risks %v", c.Risks)
	}
}

// TestRuleVerbs: what adding and removing conditions does, by rule type,
// and nested rules.
func TestRuleVerbs(t *testing.T) {
	c := func(p, v string) flagrepoCondition { return flagrepoCondition{p, "EQUAL", v} }
	for _, tc := range []struct {
		name          string
		before, after []flagrepoRule
		want          string
	}{
		{"any add", []flagrepoRule{{"ANY", []flagrepoCondition{c("a", "1")}, nil}}, []flagrepoRule{{"ANY", []flagrepoCondition{c("a", "1"), c("b", "2")}, nil}}, "now also matches `b EQUAL 2`"},
		{"all add", []flagrepoRule{{"ALL", []flagrepoCondition{c("a", "1")}, nil}}, []flagrepoRule{{"ALL", []flagrepoCondition{c("a", "1"), c("b", "2")}, nil}}, "now also requires `b EQUAL 2`"},
		{"none add", []flagrepoRule{{"NONE", []flagrepoCondition{c("a", "1")}, nil}}, []flagrepoRule{{"NONE", []flagrepoCondition{c("a", "1"), c("b", "2")}, nil}}, "now also excludes `b EQUAL 2`"},
		{"all remove", []flagrepoRule{{"ALL", []flagrepoCondition{c("a", "1"), c("b", "2")}, nil}}, []flagrepoRule{{"ALL", []flagrepoCondition{c("a", "1")}, nil}}, "no longer requires `b EQUAL 2`"},
		{"value", []flagrepoRule{{"ALL", []flagrepoCondition{c("a", "1")}, nil}}, []flagrepoRule{{"ALL", []flagrepoCondition{c("a", "2")}, nil}}, "condition `a EQUAL 1` is now `a EQUAL 2`"},
		{"two adds", []flagrepoRule{{"ANY", []flagrepoCondition{c("a", "1")}, nil}}, []flagrepoRule{{"ANY", []flagrepoCondition{c("a", "1"), c("b", "2"), c("c", "3")}, nil}}, "now also matches `b EQUAL 2` and `c EQUAL 3`"},
		{"nested under none", []flagrepoRule{{"ALL", nil, []flagrepoRule{{"NONE", nil, []flagrepoRule{{"ANY", []flagrepoCondition{c("a", "1")}, nil}}}}}},
			[]flagrepoRule{{"ALL", nil, []flagrepoRule{{"NONE", nil, []flagrepoRule{{"ANY", []flagrepoCondition{c("a", "1"), c("b", "2")}, nil}}}}}},
			"rule 1.1.1: inside a NONE rule, now also matches `b EQUAL 2`"},
		{"type", []flagrepoRule{{"ALL", []flagrepoCondition{c("a", "1")}, nil}}, []flagrepoRule{{"ANY", []flagrepoCondition{c("a", "1")}, nil}}, "is now ANY of `a EQUAL 1` instead of ALL"},
		{"rule added", []flagrepoRule{{"ALL", []flagrepoCondition{c("a", "1")}, nil}}, []flagrepoRule{{"ALL", []flagrepoCondition{c("a", "1")}, nil}, {"ANY", []flagrepoCondition{c("b", "2")}, nil}}, "now also requires ANY of `b EQUAL 2`"},
	} {
		d := rulesChanges(toRules(tc.before), toRules(tc.after))
		if got := strings.Join(d.phrases, "; "); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestRemovedStillReferenced: the fourth example. HEAD fails
// validation; the report says so, lists the file set aside, and still shows
// the other changes.
func TestRemovedStillReferenced(t *testing.T) {
	r := newFlagRepo(t)
	r.branch("change")
	r.remove("features/banner_message.json")
	r.remove("segments/beta_users.json")
	r.edit("environments/staging/features/dark_mode.json", func(d map[string]any) { d["enabled"] = true })
	r.commit("remove banner_message and beta_users")
	rep := r.compare("main", "change", Options{})
	if rep.Head.Valid || !rep.Base.Valid || len(rep.Head.Problems) == 0 || !rep.Compared {
		t.Fatalf("head valid %v (%d problems), base valid %v, compared %v", rep.Head.Valid, len(rep.Head.Problems), rep.Base.Valid, rep.Compared)
	}
	c := one(t, rep, "", "removed while still overridden")
	if c.Message != "feature `banner_message` removed while still overridden in development" || c.Kind != "feature_removed_still_referenced" {
		t.Errorf("%+v", c)
	}
	hasRisks(t, c, RiskRemovedStillReferenced)
	c = one(t, rep, "", "removed while still used")
	if c.Message != "segment `beta_users` removed while still used by `beta_features_banner` in production, `new_checkout` in production" {
		t.Errorf("%q", c.Message)
	}
	hasRisks(t, c, RiskRemovedStillReferenced, RiskProduction)
	// The other change of the commit is shown.
	c = one(t, rep, "staging", "dark_mode")
	if c.Message != "`dark_mode` turned on" {
		t.Errorf("%q", c.Message)
	}
	// Every file with a problem is set aside, and said how.
	want := map[string]SetAside{
		"environments/development/features/banner_message.json":      {Base: "left_out", Head: "left_out"},
		"environments/production/features/beta_features_banner.json": {Base: "left_out", Head: "left_out"},
		"environments/production/features/new_checkout.json":         {Base: "left_out", Head: "left_out"},
	}
	if len(rep.NotCompared) != len(want) {
		t.Errorf("not compared: %+v", rep.NotCompared)
	}
	for _, a := range rep.NotCompared {
		if w, ok := want[a.Path]; !ok || a.Base != w.Base || a.Head != w.Head {
			t.Errorf("set aside %+v", a)
		}
	}
	for _, p := range rep.Head.Problems {
		if _, ok := want[p.File]; !ok {
			t.Errorf("problem in a file not set aside: %s", p)
		}
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"HEAD fails validation (3 problems):", "environments/production/features/new_checkout.json: left out of both sides", "! feature `banner_message` removed while still overridden in development  [removed_still_referenced]"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text output lacks %q:\n%s", s, text.String())
		}
	}
}

// TestHeadFileInvalid: a file broken in HEAD takes BASE's version, so no
// change is shown for it, and it is listed.
func TestHeadFileInvalid(t *testing.T) {
	r := newFlagRepo(t)
	r.branch("change")
	r.write("environments/production/features/new_checkout.json", "{ not json")
	r.edit("environments/production/features/dark_mode.json", func(d map[string]any) { d["enabled"] = true })
	r.commit("broken")
	rep := r.compare("main", "change", Options{})
	if rep.Head.Valid || !rep.Compared || len(rep.NotCompared) != 1 || rep.NotCompared[0] != (SetAside{"environments/production/features/new_checkout.json", "own", "other"}) {
		t.Fatalf("head valid %v compared %v not compared %+v", rep.Head.Valid, rep.Compared, rep.NotCompared)
	}
	if len(find(rep, "production", "new_checkout")) != 0 {
		t.Errorf("a change shown for the invalid file:\n%s", dump(rep))
	}
	one(t, rep, "production", "`dark_mode` turned on")
}

// TestBaseInvalid: a change that fixes a broken base is compared, the base
// reported as failing validation.
func TestBaseInvalid(t *testing.T) {
	r := newFlagRepo(t)
	r.edit("features/dark_mode.json", func(d map[string]any) { d["colour"] = "black" })
	r.commit("typo")
	r.branch("fix")
	r.edit("features/dark_mode.json", func(d map[string]any) { delete(d, "colour"); d["description"] = "Fixed." })
	r.edit("environments/staging/features/api_rate_limit.json", func(d map[string]any) { d["value"] = 2000 })
	r.commit("fix")
	rep := r.compare("main", "fix", Options{})
	if rep.Base.Valid || !rep.Head.Valid || !rep.Compared || len(rep.Base.Problems) != 1 || !strings.Contains(rep.Base.Problems[0].Message, "colour") {
		t.Fatalf("base %+v head valid %v compared %v", rep.Base, rep.Head.Valid, rep.Compared)
	}
	c := one(t, rep, "staging", "api_rate_limit")
	if !strings.HasPrefix(c.Message, "`api_rate_limit` value ") || !strings.HasSuffix(c.Message, " -> `2000`") {
		t.Errorf("%q", c.Message)
	}
	if len(rep.NotCompared) != 1 || rep.NotCompared[0] != (SetAside{"features/dark_mode.json", "other", "own"}) {
		t.Errorf("not compared %+v", rep.NotCompared)
	}
}

// TestIDChanges: ids that bucketing hashes.
func TestIDChanges(t *testing.T) {
	r := newFlagRepo(t)
	r.branch("change")
	r.edit("features/new_checkout.json", func(d map[string]any) { d["id"] = 1099 })
	r.edit("segments/gradual_rollout_10pct.json", func(d map[string]any) { d["id"] = 199 })
	r.edit("environments/staging/environment.json", func(d map[string]any) { d["client_key"] = "stg_NewKey123456789" })
	r.commit("ids")
	rep := r.compare("main", "change", Options{})
	c := one(t, rep, "", "feature `new_checkout` id 1002 -> 1099")
	hasRisks(t, c, RiskRebuckets)
	if !strings.Contains(c.Message, "re-bucketed in its splits (development, production, staging)") {
		t.Errorf("%q", c.Message)
	}
	c = one(t, rep, "production", "re-bucketed")
	hasRisks(t, c, RiskProduction, RiskRebuckets)
	if c.MovedPercent == nil || math.Abs(*c.MovedPercent-34) > 0.05 { // 1 - (0.1² + 0.1² + 0.8²)
		t.Errorf("production moved %v: %q", c.MovedPercent, c.Message)
	}
	c = one(t, rep, "", "segment `gradual_rollout_10pct` id 105 -> 199")
	if !slices.Contains(c.Risks, RiskRebuckets) {
		t.Errorf("segment id risks %v", c.Risks)
	}
	c = one(t, rep, "staging", "client key")
	hasRisks(t, c, RiskRebuckets)
}

// TestEnvironmentsAndSettings: environments added and removed, settings.
func TestEnvironmentsAndSettings(t *testing.T) {
	r := newFlagRepo(t)
	r.branch("change")
	if err := os.RemoveAll(filepath.Join(r.dir, "environments/development")); err != nil {
		t.Fatal(err)
	}
	r.edit("environments/qa/environment.json", func(d map[string]any) {
		d["$schema"] = "../../schemas/environment.schema.json"
		d["id"] = 9
		d["name"] = "QA"
		d["client_key"] = "qa_Key1234567890abcd"
	})
	r.edit("environments/production/environment.json", func(d map[string]any) { d["hide_disabled_flags"] = true })
	r.edit("gitflags.json", func(d map[string]any) { d["project"].(map[string]any)["name"] = "Acme Store" })
	r.commit("environments")
	rep := r.compare("main", "change", Options{})
	one(t, rep, "development", "environment `development` removed")
	c := one(t, rep, "qa", "environment `qa` added")
	if !strings.Contains(c.Message, "14 features") {
		t.Errorf("%q", c.Message)
	}
	c = one(t, rep, "production", "disabled flags are now left out")
	hasRisks(t, c, RiskProduction)
	one(t, rep, "", "project name `\"Acme Shop\"` -> `\"Acme Store\"`")
}

// TestFeatureAddedRemoved: definitions and per-environment states.
func TestFeatureAddedRemoved(t *testing.T) {
	r := newFlagRepo(t)
	r.branch("change")
	pricingTier(r, map[string]any{"standard": 50, "premium": 50})
	r.remove("features/maintenance_mode.json")
	r.remove("environments/development/features/maintenance_mode.json")
	r.edit("features/dark_mode.json", func(d map[string]any) { d["tags"] = []any{"ui", "theme"}; d["server_key_only"] = true })
	r.commit("features")
	rep := r.compare("main", "change", Options{})
	if !rep.Valid() {
		t.Fatalf("invalid: %+v", rep.Head.Problems)
	}
	one(t, rep, "", "feature `pricing_tier` added: default off, value `\"basic\"`, variants standard 0%, premium 0%")
	c := one(t, rep, "staging", "`pricing_tier` added")
	if !strings.Contains(c.Message, "split standard 50%, premium 50%") {
		t.Errorf("%q", c.Message)
	}
	if n := len(find(rep, "production", "pricing_tier")); n != 0 {
		t.Errorf("pricing_tier is off by default in production, yet %d changes there:\n%s", n, dump(rep))
	}
	one(t, rep, "", "feature `maintenance_mode` removed")
	one(t, rep, "development", "`maintenance_mode` removed")
	one(t, rep, "", "feature `dark_mode`: tags `ui` -> `ui` and `theme` changed")
	c = one(t, rep, "production", "`dark_mode` is now sent to server keys only")
	hasRisks(t, c, RiskProduction)
}

// TestNoChanges: the same revision, and a reformatted file.
func TestNoChanges(t *testing.T) {
	r := newFlagRepo(t)
	r.branch("change")
	data, _ := os.ReadFile(filepath.Join(r.dir, "features/dark_mode.json"))
	r.write("features/dark_mode.json", strings.ReplaceAll(string(data), "\n", "\n  "))
	r.commit("reformat")
	for _, pair := range [][2]string{{"main", "main"}, {"main", "change"}} {
		rep := r.compare(pair[0], pair[1], Options{})
		if !rep.Valid() || len(rep.Changes) != 0 {
			t.Errorf("%v: changes:\n%s", pair, dump(rep))
		}
		var text strings.Builder
		rep.WriteText(&text)
		if !strings.Contains(text.String(), ": no changes to flags") {
			t.Errorf("%s", text.String())
		}
	}
}

// TestDirectories: a directory on either side; the work tree with
// uncommitted edits.
func TestDirectories(t *testing.T) {
	r := newFlagRepo(t)
	old := filepath.Join(t.TempDir(), "old")
	r.git("worktree", "add", "-q", "--detach", old, "main")
	r.edit("environments/staging/features/dark_mode.json", func(d map[string]any) { d["enabled"] = true })
	t.Chdir(r.dir)
	for _, args := range [][2]string{{"main", ""}, {"main", "."}, {old, "."}, {"HEAD", r.dir}} {
		rep := r.compare(args[0], args[1], Options{})
		if rep.Head.Kind != "directory" || !rep.Valid() {
			t.Errorf("%v: head %+v", args, rep.Head)
		}
		one(t, rep, "staging", "`dark_mode` turned on")
		if len(rep.Changes) != 1 {
			t.Errorf("%v:\n%s", args, dump(rep))
		}
	}
	// Uncommitted edits are not in a revision.
	if rep := r.compare("main", "HEAD", Options{}); len(rep.Changes) != 0 || rep.Head.Kind != "revision" {
		t.Errorf("main HEAD:\n%s", dump(rep))
	}
}

// TestBadArguments: unknown revisions, unrelated histories, ambiguous names,
// directories that are not flag repositories.
func TestBadArguments(t *testing.T) {
	r := newFlagRepo(t)
	t.Chdir(r.dir)
	_, _, _, err := Sources(r.dir, "no-such-branch", "HEAD", false)
	if !errors.Is(err, gitstore.ErrUnknownRevision) || !strings.Contains(err.Error(), `BASE: resolve "no-such-branch"`) {
		t.Errorf("unknown BASE: %v", err)
	}
	_, _, _, err = Sources(r.dir, "main", "v9", false)
	if !errors.Is(err, gitstore.ErrUnknownRevision) || !strings.Contains(err.Error(), "HEAD:") {
		t.Errorf("unknown HEAD: %v", err)
	}

	// An orphan branch: unrelated history, same flags but one.
	r.git("checkout", "-q", "--orphan", "other")
	r.edit("environments/staging/features/dark_mode.json", func(d map[string]any) { d["enabled"] = true })
	r.commit("unrelated")
	_, _, _, err = Sources(r.dir, "main", "other", true)
	if !errors.Is(err, ErrNoMergeBase) || !strings.Contains(err.Error(), "compare the two trees with 'gitflags diff main other'") {
		t.Errorf("merge base of unrelated histories: %v", err)
	}
	rep := r.compare("main", "other", Options{})
	one(t, rep, "staging", "`dark_mode` turned on")

	// A branch named like a directory.
	r.git("branch", "features", "main")
	_, _, _, err = Sources(r.dir, "features", "HEAD", false)
	if !errors.Is(err, ErrAmbiguous) || !strings.Contains(err.Error(), "write ./features for the directory") {
		t.Errorf("ambiguous: %v", err)
	}
	base, head, repo, err := Sources(r.dir, "./features", "HEAD", false)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	if _, err := Compare(base, head, Options{}); !errors.Is(err, ErrNotFlagRepository) {
		t.Errorf("features/ is no flag repository: %v", err)
	}
	if base, head, repo2, err := Sources(t.TempDir(), t.TempDir(), r.dir, false); err != nil || repo2 != nil {
		t.Errorf("two directories without a repository: %v", err)
	} else if _, err := Compare(base, head, Options{}); !errors.Is(err, ErrNotFlagRepository) || !strings.Contains(err.Error(), "no gitflags.json") {
		t.Errorf("not a flag repository: %v", err)
	}
	if _, _, _, err := Sources(t.TempDir(), "main", "HEAD", false); err == nil || !strings.Contains(err.Error(), "not a git repository") {
		t.Errorf("revisions without a repository: %v", err)
	}
	// A revision without gitflags.json.
	r.git("checkout", "-q", "--orphan", "empty")
	r.git("rm", "-rqf", ".")
	r.write("README.md", "nothing\n")
	r.commit("empty")
	base, head, repo3, err := Sources(r.dir, "main", "empty", false)
	if err != nil {
		t.Fatal(err)
	}
	defer repo3.Close()
	if _, err := Compare(base, head, Options{}); !errors.Is(err, ErrNotFlagRepository) || !strings.Contains(err.Error(), "HEAD empty") {
		t.Errorf("revision without gitflags.json: %v", err)
	}
}

// TestMergeBase: BASE...HEAD compares HEAD with where it left BASE, so a
// later change on BASE is not shown as undone.
func TestMergeBase(t *testing.T) {
	r := newFlagRepo(t)
	r.branch("change")
	r.edit("environments/staging/features/dark_mode.json", func(d map[string]any) { d["enabled"] = true })
	r.commit("change")
	r.git("checkout", "-q", "main")
	r.edit("environments/production/features/dark_mode.json", func(d map[string]any) { d["enabled"] = true })
	r.commit("later on main")
	base, head, repo, err := Sources(r.dir, "main", "change", true)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	rep, err := Compare(base, head, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Changes) != 1 || rep.Changes[0].Environment != "staging" || rep.Base.Name != "main" || !rep.Base.MergeBase {
		t.Errorf("base %q:\n%s", rep.Base.Name, dump(rep))
	}
	if two := r.compare("main", "change", Options{}); len(two.Changes) != 2 {
		t.Errorf("main change (trees):\n%s", dump(two))
	}
}

// TestJSONSchema: the JSON output validates against the documented
// schema, and decodes back to the report.
func TestJSONSchema(t *testing.T) {
	r := newFlagRepo(t)
	r.branch("change")
	pricingTier(r, map[string]any{"standard": 40, "premium": 40})
	r.remove("features/banner_message.json")
	r.edit("environments/production/features/new_checkout.json", func(d map[string]any) { d["enabled"] = false })
	r.commit("change")
	rep := r.compare("main", "change", Options{Identities: &IdentitySet{Source: "test", All: []Identity{{Identifier: "alice"}, {Identifier: "bob", Traits: map[string]any{"beta_tester": true}}}}})
	var buf strings.Builder
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	validateSchema(t, buf.String())
	var back Report
	if err := json.Unmarshal([]byte(buf.String()), &back); err != nil {
		t.Fatal(err)
	}
	if back.Head.Valid || len(back.Changes) != len(rep.Changes) || back.Identities == nil || len(back.NotCompared) != 1 {
		t.Errorf("decoded: %+v", back)
	}
	var raw map[string]any
	json.Unmarshal([]byte(buf.String()), &raw)
	for _, k := range []string{"base", "head", "compared", "not_compared", "changes", "identities"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("no %q in the JSON output", k)
		}
	}
}

// TestNotComparable: when setting invalid files aside cannot make both sides
// load (gitflags.json broken on both), the report says why and lists the
// files that differ; nothing is left unsaid.
func TestNotComparable(t *testing.T) {
	r := newFlagRepo(t)
	r.write("gitflags.json", "{ broken")
	r.commit("broken settings")
	r.branch("change")
	r.edit("environments/staging/features/dark_mode.json", func(d map[string]any) { d["enabled"] = true })
	r.remove("features/banner_message.json")
	r.commit("change")
	rep := r.compare("main", "change", Options{})
	if rep.Compared || rep.Base.Valid || rep.Head.Valid || !strings.Contains(rep.Failure, "gitflags.json") {
		t.Fatalf("compared %v, failure %q", rep.Compared, rep.Failure)
	}
	want := []FileChange{{"environments/staging/features/dark_mode.json", "modified"}, {"features/banner_message.json", "removed"}}
	if !slices.Equal(rep.Files, want) {
		t.Errorf("files %+v, want %+v", rep.Files, want)
	}
	c := one(t, rep, "", "banner_message")
	if c.Kind != "feature_removed_still_referenced" {
		t.Errorf("%+v", c)
	}
	var text, md, js strings.Builder
	rep.WriteText(&text)
	rep.WriteMarkdown(&md)
	rep.WriteJSON(&js)
	if !strings.Contains(text.String(), "The sides could not be compared: ") || !strings.Contains(text.String(), "  modified environments/staging/features/dark_mode.json\n") {
		t.Errorf("text:\n%s", text.String())
	}
	if !strings.Contains(md.String(), "**not compared**") || !strings.Contains(md.String(), "- removed `features/banner_message.json`") {
		t.Errorf("markdown:\n%s", md.String())
	}
	validateSchema(t, js.String())
}
