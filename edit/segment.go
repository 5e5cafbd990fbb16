package edit

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gitflags/gitflags/flagrepo"
)

// SegmentSpec is a segment's definition for CreateSegment and UpdateSegment.
// A zero field is left as it is.
type SegmentSpec struct {
	Description *string // "" removes it
	// Rules, when not nil, are the new rules: a JSON array as the "rules" of
	// segments/<segment>.json. Known fields are put in the repository's
	// order; what the rules mean is checked when the result is validated.
	Rules json.RawMessage
}

// maxRules is the most top-level rules a segment holds (as the schema says).
const maxRules = 100

// CreateSegment adds segments/<key>.json with the next segment id (one more
// than the largest id of snap). Rules are required.
func CreateSegment(snap *flagrepo.Snapshot, files Files, key string, spec SegmentSpec) (Result, error) {
	if err := checkNewKey("segment", key, snap.SegmentKeys()); err != nil {
		return Result{}, err
	}
	if spec.Rules == nil {
		return Result{}, inputErr("rules", "is required: a segment has at least one rule")
	}
	rules, err := checkSegmentSpec(spec)
	if err != nil {
		return Result{}, err
	}
	path := segmentPath(key)
	if doc, _, err := readDoc(files, path); err != nil || doc != nil {
		if err == nil {
			err = inputErr("key", "%s already exists", path)
		}
		return Result{}, err
	}
	var id int64
	for _, s := range snap.Segments {
		id = max(id, s.ID)
	}
	doc := objectNode()
	doc.set("$schema", stringNode(segmentSchema), segmentOrder)
	doc.set("id", numberNode(strconv.FormatInt(id+1, 10)), segmentOrder)
	if spec.Description != nil && *spec.Description != "" {
		doc.set("description", stringNode(*spec.Description), segmentOrder)
	}
	doc.set("rules", rules, segmentOrder)
	return Result{Changes: changes(path, nil, doc), Summary: "segment " + key + " created"}, nil
}

// UpdateSegment changes segments/<key>.json.
func UpdateSegment(snap *flagrepo.Snapshot, files Files, key string, spec SegmentSpec) (Result, error) {
	if _, err := lookupSegment(snap, key); err != nil {
		return Result{}, err
	}
	rules, err := checkSegmentSpec(spec)
	if err != nil {
		return Result{}, err
	}
	path := segmentPath(key)
	doc, old, err := readDoc(files, path)
	if err != nil {
		return Result{}, err
	}
	if doc == nil {
		return Result{}, &NotFoundError{Kind: "segment", Key: key}
	}
	var parts []string
	if spec.Description != nil {
		cur := doc.get("description")
		switch d := *spec.Description; {
		case d == "" && cur != nil:
			doc.remove("description")
			parts = append(parts, "description")
		case d != "" && (cur == nil || cur.text != d):
			doc.set("description", stringNode(d), segmentOrder)
			parts = append(parts, "description")
		}
	}
	if rules != nil && !equal(rules, doc.get("rules")) {
		doc.set("rules", rules, segmentOrder)
		parts = append(parts, "rules")
	}
	if len(parts) == 0 {
		return Result{Summary: "segment " + key + " no change"}, nil
	}
	return Result{Changes: changes(path, old, doc), Summary: "segment " + key + " " + strings.Join(parts, " and ") + " changed"}, nil
}

// DeleteSegment removes segments/<key>.json and, as Flagsmith does, every
// override of a feature for the segment (a state file left with nothing but
// "$schema" is deleted).
func DeleteSegment(snap *flagrepo.Snapshot, files Files, key string) (Result, error) {
	if _, err := lookupSegment(snap, key); err != nil {
		return Result{}, err
	}
	c := map[string][]byte{segmentPath(key): nil}
	var where []string
	for _, env := range snap.EnvironmentKeys() {
		e := snap.Environments[env]
		for _, feature := range sortedKeys(e.Features) {
			if !slices.ContainsFunc(e.Features[feature].SegmentOverrides, func(o flagrepo.SegmentOverride) bool { return o.Segment == key }) {
				continue
			}
			path := statePath(env, feature)
			doc, old, err := readDoc(files, path)
			if err != nil {
				return Result{}, err
			}
			if doc == nil {
				continue
			}
			list, at, _, err := overrides(doc, key, path)
			if err != nil {
				return Result{}, err
			}
			if at < 0 {
				continue
			}
			removeOverride(doc, list, at)
			for p, data := range changes(path, old, pruneState(doc)) {
				c[p] = data
			}
			where = append(where, env+"/"+feature)
		}
	}
	summary := "segment " + key + " deleted"
	if len(where) > 0 {
		summary += ", with its overrides in " + strings.Join(where, ", ")
	}
	return Result{Changes: c, Summary: summary}, nil
}

// checkSegmentSpec checks spec and returns its rules (nil when not given),
// their fields in the repository's order.
func checkSegmentSpec(spec SegmentSpec) (*node, error) {
	if spec.Description != nil {
		if err := checkText("description", *spec.Description, 0, maxDescription); err != nil {
			return nil, err
		}
	}
	if spec.Rules == nil {
		return nil, nil
	}
	rules, err := parseJSON(spec.Rules)
	if err != nil {
		return nil, inputErr("rules", "not valid JSON: %v", err)
	}
	if rules.kind != kArray || len(rules.items) == 0 {
		return nil, inputErr("rules", "must be an array of at least one rule")
	}
	if len(rules.items) > maxRules {
		return nil, inputErr("rules", "%d rules; at most %d are allowed", len(rules.items), maxRules)
	}
	for i, r := range rules.items {
		if err := orderRule(r, fmt.Sprintf("rules[%d]", i)); err != nil {
			return nil, err
		}
	}
	return rules, nil
}

// orderRule puts the known fields of rule r, its conditions and its
// sub-rules in the repository's order.
func orderRule(r *node, field string) error {
	if r.kind != kObject {
		return inputErr(field, `must be a rule object {"type": "ALL"|"ANY"|"NONE", "conditions": [...], "rules": [...]}`)
	}
	reorder(r, ruleOrder)
	if c := r.get("conditions"); c != nil && c.kind == kArray {
		for i, cond := range c.items {
			if cond.kind != kObject {
				return inputErr(fmt.Sprintf("%s.conditions[%d]", field, i), `must be a condition object {"property": ..., "operator": ..., "value": ...}`)
			}
			reorder(cond, conditionOrder)
		}
	}
	if sub := r.get("rules"); sub != nil && sub.kind == kArray {
		for i, s := range sub.items {
			if err := orderRule(s, fmt.Sprintf("%s.rules[%d]", field, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// reorder sorts the fields of object n by order; fields order does not list
// keep their order, after the others.
func reorder(n *node, order []string) {
	rank := func(k string) int {
		if i := slices.Index(order, k); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortStableFunc(n.fields, func(a, b field) int { return rank(a.key) - rank(b.key) })
}
