package edit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gitflags/gitflags/flagrepo"
)

// State changes a feature's state in one environment. A zero field leaves
// that part of the state as it is.
type State struct {
	Enabled *bool
	// Value, when Set, is the new value (nil is null).
	Value flagrepo.OptionalValue
	// Weights, when not nil, is the new split: variant key -> percentage; a
	// variant left out weighs 0.
	Weights map[string]float64
}

// SetFeatureState changes feature's state in environment env, writing
// environments/<env>/features/<feature>.json (created when absent). Only
// fields whose effective value changes are written: asking for what the
// environment already serves changes nothing (a Result without Changes whose
// Summary ends in "no change").
//
// Values have the feature's type: the type (string, integer or boolean) of
// its default value. A feature whose default value is absent or null takes
// any value; a typed feature refuses values of another type and null. The
// same rule holds for segment overrides and variants.
func SetFeatureState(snap *flagrepo.Snapshot, files Files, env, feature string, s State) (Result, error) {
	if _, err := lookupEnvironment(snap, env); err != nil {
		return Result{}, err
	}
	f, err := lookupFeature(snap, feature)
	if err != nil {
		return Result{}, err
	}
	if s.Value.Set {
		if err := checkValue("value", f, &s.Value.Value); err != nil {
			return Result{}, err
		}
	}
	if err := checkWeights("weights", f, s.Weights); err != nil {
		return Result{}, err
	}
	path := statePath(env, feature)
	doc, old, err := readDoc(files, path)
	if err != nil {
		return Result{}, err
	}
	if doc == nil {
		doc = objectNode()
		doc.set("$schema", stringNode(stateSchema), stateOrder)
	}
	var parts []string
	if s.Enabled != nil {
		cur := f.Default.Enabled
		if n := doc.get("enabled"); n != nil {
			cur = n.text == "true"
		}
		if *s.Enabled != cur {
			doc.set("enabled", boolNode(*s.Enabled), stateOrder)
			parts = append(parts, onOff(*s.Enabled))
		}
	}
	if s.Value.Set {
		cur := f.Default.Value.Value
		if n := doc.get("value"); n != nil {
			cur, _ = nodeValue(n)
		}
		if s.Value.Value != cur {
			doc.set("value", valueNode(s.Value.Value), stateOrder)
			parts = append(parts, fmt.Sprintf("value %s (was %s)", formatValue(s.Value.Value), formatValue(cur)))
		}
	}
	if s.Weights != nil {
		old := doc.get("weights")
		if !sameSplit(f, nodeWeights(old), s.Weights) {
			doc.set("weights", weightsNode(f, s.Weights, old), stateOrder)
			parts = append(parts, "weights "+formatWeights(f, s.Weights))
		}
	}
	prefix := env + ": " + feature + " "
	if len(parts) == 0 {
		return Result{Summary: prefix + "no change"}, nil
	}
	return Result{Changes: changes(path, old, doc), Summary: prefix + strings.Join(parts, ", ")}, nil
}

// Override adds or changes the override of a feature's state for one
// segment in one environment. A zero field leaves that part as it is.
type Override struct {
	// Priority places the override: lower wins, 1 is the highest in Flagsmith.
	// A new override without one goes after every existing override. A
	// priority held by another override of the feature pushes that one down by
	// one, and so on down the consecutive priorities after it (Flagsmith's
	// insert semantic); the others keep theirs.
	Priority *int
	// Enabled is required for a new override.
	Enabled *bool
	// Value, when Set, is the value for the segment (nil is null).
	Value flagrepo.OptionalValue
	// Weights, when not nil, splits the segment between variants.
	Weights map[string]float64
}

// MaxPriority is the largest segment override priority (as the schema says).
const MaxPriority = 1_000_000

// SetSegmentOverride adds or changes the override of feature for segment in
// environment env. Overrides in a file sorted by priority stay sorted.
func SetSegmentOverride(snap *flagrepo.Snapshot, files Files, env, feature, segment string, o Override) (Result, error) {
	doc, old, f, err := readState(snap, files, env, feature)
	if err != nil {
		return Result{}, err
	}
	if _, err := lookupSegment(snap, segment); err != nil {
		return Result{}, err
	}
	if o.Priority != nil && (*o.Priority < 0 || *o.Priority > MaxPriority) {
		return Result{}, inputErr("priority", "%d is not a priority from 0 to %d (lower wins)", *o.Priority, MaxPriority)
	}
	if o.Value.Set {
		if err := checkValue("value", f, &o.Value.Value); err != nil {
			return Result{}, err
		}
	}
	if err := checkWeights("weights", f, o.Weights); err != nil {
		return Result{}, err
	}
	path := statePath(env, feature)
	if doc == nil {
		doc = objectNode()
		doc.set("$schema", stringNode(stateSchema), stateOrder)
	}
	list, at, prio, err := overrides(doc, segment, path)
	if err != nil {
		return Result{}, err
	}
	sorted := slices.IsSorted(prio)
	var parts []string
	var item *node
	if at < 0 {
		if o.Enabled == nil {
			return Result{}, inputErr("enabled", "is required for a new segment override")
		}
		p := 1
		if len(prio) > 0 {
			p = slices.Max(prio) + 1
		}
		if o.Priority != nil {
			p = *o.Priority
		} else if p > MaxPriority {
			return Result{}, inputErr("priority", "the lowest priority is taken (%d): give one", MaxPriority)
		}
		item = objectNode()
		item.set("segment", stringNode(segment), overrideOrder)
		item.set("priority", numberNode(strconv.Itoa(p)), overrideOrder)
		item.set("enabled", boolNode(*o.Enabled), overrideOrder)
		list.items = append(list.items, item)
		prio = append(prio, p)
		at = len(list.items) - 1
		parts = append(parts, "added", onOff(*o.Enabled))
		o.Priority = &p
	} else {
		item = list.items[at]
		if o.Enabled != nil && (item.get("enabled") == nil || (item.get("enabled").text == "true") != *o.Enabled) {
			item.set("enabled", boolNode(*o.Enabled), overrideOrder)
			parts = append(parts, onOff(*o.Enabled))
		}
		if o.Priority != nil && *o.Priority != prio[at] {
			parts = append(parts, fmt.Sprintf("moved from priority %d", prio[at]))
		}
	}
	if o.Value.Set {
		cur := item.get("value")
		if v, ok := nodeValue(orNull(cur)); cur == nil || !ok || v != o.Value.Value {
			item.set("value", valueNode(o.Value.Value), overrideOrder)
			parts = append(parts, "value "+formatValue(o.Value.Value))
		}
	}
	if o.Weights != nil {
		cur := item.get("weights")
		if cur == nil || !sameSplit(f, nodeWeights(cur), o.Weights) {
			item.set("weights", weightsNode(f, o.Weights, cur), overrideOrder)
			parts = append(parts, "weights "+formatWeights(f, o.Weights))
		}
	}
	if o.Priority != nil && *o.Priority != prio[at] || len(parts) > 0 && parts[0] == "added" {
		moved, err := place(prio, at, *o.Priority)
		if err != nil {
			return Result{}, err
		}
		item.set("priority", numberNode(strconv.Itoa(prio[at])), overrideOrder)
		var names []string
		for _, j := range moved {
			list.items[j].set("priority", numberNode(strconv.Itoa(prio[j])), overrideOrder)
			names = append(names, orNull(list.items[j].get("segment")).text)
		}
		if len(names) > 0 {
			parts = append(parts, "moved down: "+strings.Join(names, ", "))
		}
		if sorted {
			sortByPriority(list, prio)
		}
	}
	prefix := fmt.Sprintf("%s: %s segment %s (priority %d) ", env, feature, segment, priorityOf(item))
	if len(parts) == 0 {
		return Result{Summary: prefix + "no change"}, nil
	}
	doc.set("segment_overrides", list, stateOrder)
	return Result{Changes: changes(path, old, doc), Summary: prefix + strings.Join(parts, ", ")}, nil
}

// DeleteSegmentOverride removes the override of feature for segment in
// environment env. The other overrides keep their priorities; a file left
// with nothing but "$schema" is deleted.
func DeleteSegmentOverride(snap *flagrepo.Snapshot, files Files, env, feature, segment string) (Result, error) {
	doc, old, _, err := readState(snap, files, env, feature)
	if err != nil {
		return Result{}, err
	}
	if _, err := lookupSegment(snap, segment); err != nil {
		return Result{}, err
	}
	path := statePath(env, feature)
	if doc == nil {
		return Result{}, &NotFoundError{Kind: "segment override", Key: segment}
	}
	list, at, _, err := overrides(doc, segment, path)
	if err != nil {
		return Result{}, err
	}
	if at < 0 {
		return Result{}, &NotFoundError{Kind: "segment override", Key: segment}
	}
	removeOverride(doc, list, at)
	return Result{
		Changes: changes(path, old, pruneState(doc)),
		Summary: fmt.Sprintf("%s: %s segment %s override removed", env, feature, segment),
	}, nil
}

// readState looks up env and feature and reads the feature's state file
// there (doc nil when there is none).
func readState(snap *flagrepo.Snapshot, files Files, env, feature string) (doc *node, old []byte, f *flagrepo.Feature, err error) {
	if _, err := lookupEnvironment(snap, env); err != nil {
		return nil, nil, nil, err
	}
	if f, err = lookupFeature(snap, feature); err != nil {
		return nil, nil, nil, err
	}
	doc, old, err = readDoc(files, statePath(env, feature))
	return doc, old, f, err
}

// overrides returns the segment_overrides array of a state document (a new
// empty one when absent), the index of segment's override (-1 when none) and
// every override's priority.
func overrides(doc *node, segment, path string) (list *node, at int, prio []int, err error) {
	list = doc.get("segment_overrides")
	if list == nil {
		return arrayNode(), -1, nil, nil
	}
	if list.kind != kArray {
		return nil, 0, nil, fmt.Errorf("read %s: /segment_overrides is not an array", path)
	}
	at = -1
	for i, it := range list.items {
		if s := it.get("segment"); s != nil && s.text == segment {
			at = i
		}
		prio = append(prio, priorityOf(it))
	}
	return list, at, prio, nil
}

func priorityOf(item *node) int {
	p := -1
	if n := item.get("priority"); n != nil {
		p, _ = strconv.Atoi(n.text)
	}
	return p
}

func orNull(n *node) *node {
	if n == nil {
		return &node{kind: kNull}
	}
	return n
}

// place gives override at priority p, moving down by one every other override
// in the run of consecutive priorities from p. It returns the moved ones.
func place(prio []int, at, p int) (moved []int, err error) {
	prio[at] = p
	others := make([]int, 0, len(prio))
	for j := range prio {
		if j != at {
			others = append(others, j)
		}
	}
	slices.SortFunc(others, func(a, b int) int { return prio[a] - prio[b] })
	next := p
	for _, j := range others {
		if prio[j] < next {
			continue
		}
		if prio[j] > next {
			break
		}
		next++
		if next > MaxPriority {
			return nil, inputErr("priority", "moving the overrides after priority %d down would take them past %d", p, MaxPriority)
		}
		prio[j] = next
		moved = append(moved, j)
	}
	return moved, nil
}

// sortByPriority sorts the overrides of list (whose priorities are prio) by priority.
func sortByPriority(list *node, prio []int) {
	idx := make([]int, len(prio))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return prio[a] - prio[b] })
	items := make([]*node, len(idx))
	for i, j := range idx {
		items[i] = list.items[j]
	}
	list.items = items
}

// removeOverride removes override at from list in doc, and the list when empty.
func removeOverride(doc, list *node, at int) {
	list.items = slices.Delete(list.items, at, at+1)
	if len(list.items) == 0 {
		doc.remove("segment_overrides")
	}
}

// pruneState returns nil for a state document that holds only "$schema" (the
// feature's default state), doc otherwise.
func pruneState(doc *node) *node {
	for _, f := range doc.fields {
		if f.key != "$schema" {
			return doc
		}
	}
	return nil
}
