package flagdiff

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gitflags/gitflags/flagrepo"
)

// ruleDiff describes how a segment's rules changed, in phrases a reviewer
// reads after the segment's name ("now also matches `plan IN enterprise`").
type ruleDiff struct {
	phrases []string
	moved   int // remainders of the hash space that PERCENTAGE_SPLIT changes move in or out
	split   bool
	many    bool // more than one top-level rule: phrases name their rule

	last    string   // the head of the last phrase made by sayVerb
	objects []string // its objects
}

// rulesChanges compares two versions of a segment's rules. Top-level rules
// combine as ALL.
func rulesChanges(before, after []flagrepo.Rule) ruleDiff {
	d := ruleDiff{many: len(before) > 1 || len(after) > 1}
	d.rules("", "ALL", true, before, after)
	return d
}

// verbs says, for a rule type, what adding or removing a condition (or a
// sub-rule) does to the segment.
func verbs(typ string, wasEmpty bool) (add, remove string) {
	switch typ {
	case "ANY":
		if wasEmpty {
			return "now requires", "no longer requires"
		}
		return "now also matches", "no longer matches"
	case "NONE":
		return "now also excludes", "no longer excludes"
	}
	return "now also requires", "no longer requires"
}

func (d *ruleDiff) say(where string, positive bool, format string, args ...any) {
	d.phrases = append(d.phrases, d.prefix(where, positive)+fmt.Sprintf(format, args...))
	d.last = ""
}

// prefix says where a phrase applies.
func (d *ruleDiff) prefix(where string, positive bool) string {
	p := ""
	if where != "" {
		p = "rule " + where + ": "
	}
	if !positive {
		p += "inside a NONE rule, "
	}
	return p
}

// sayVerb says that verb applies to object ("now also matches `x`"),
// joining objects of the same verb in a row: "now also matches `x` and
// `y`".
func (d *ruleDiff) sayVerb(where string, positive bool, verb, object string) {
	head := d.prefix(where, positive) + verb + " "
	if d.last == head {
		d.objects = append(d.objects, object)
		d.phrases[len(d.phrases)-1] = head + joinAnd(d.objects)
		return
	}
	d.phrases = append(d.phrases, head+object)
	d.last, d.objects = head, []string{object}
}

// joinAnd joins "a", "b" and "c" as "a, b and c".
func joinAnd(items []string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// rules compares the sub-rules of a rule of type typ at location where.
// positive is false when that rule sits under an odd number of NONE rules,
// where widening a condition narrows the segment.
func (d *ruleDiff) rules(where, typ string, positive bool, before, after []flagrepo.Rule) {
	add, remove := verbs(typ, len(before) == 0)
	loc := func(i int) string {
		if where == "" {
			if !d.many {
				return ""
			}
			return strconv.Itoa(i + 1)
		}
		return where + "." + strconv.Itoa(i+1)
	}
	for i := range max(len(before), len(after)) {
		switch {
		case i >= len(before):
			d.sayVerb(where, positive, add, ruleText(after[i]))
		case i >= len(after):
			d.sayVerb(where, positive, remove, ruleText(before[i]))
		default:
			a, b := before[i], after[i]
			here := loc(i)
			if a.Type != b.Type {
				d.say(here, positive != (typ == "NONE"), "is now %s instead of %s", ruleText(b), a.Type)
				continue
			}
			// A NONE rule's sub-rules count against the segment.
			child := positive != (typ == "NONE")
			d.conditions(here, a.Type, child, a.Conditions, b.Conditions)
			d.rules(orNested(here, i), a.Type, child, a.Rules, b.Rules)
		}
	}
}

// orNested is the location of a rule's sub-rules: its own, or "1" for the
// only top-level rule.
func orNested(here string, i int) string {
	if here == "" {
		return strconv.Itoa(i + 1)
	}
	return here
}

// ruleText summarises a rule: "ANY of `a`, `b`", "ALL of `a` (and 2 nested
// rules)".
func ruleText(r flagrepo.Rule) string {
	names := make([]string, len(r.Conditions))
	for i, c := range r.Conditions {
		names[i] = conditionText(c)
	}
	s := r.Type + " of " + list(names, 5)
	if len(names) == 0 {
		s = r.Type + " of its nested rules"
	}
	if len(r.Rules) > 0 && len(names) > 0 {
		s += " (and " + plural(len(r.Rules), "nested rule", "nested rules") + ")"
	}
	return s
}

// conditions compares the conditions of a rule of type typ.
func (d *ruleDiff) conditions(where, typ string, positive bool, before, after []flagrepo.Condition) {
	add, remove := verbs(typ, len(before) == 0)
	same := func(a, b flagrepo.Condition) bool {
		return a.Property == b.Property && a.Operator == b.Operator && a.Value == b.Value
	}
	// Unchanged conditions drop out; the rest pair up by property and
	// operator (a changed value), else are added or removed.
	var olds, news []flagrepo.Condition
	used := make([]bool, len(after))
	for _, a := range before {
		if j := slices.IndexFunc(after, func(b flagrepo.Condition) bool { return same(a, b) }); j >= 0 && !used[j] {
			used[j] = true
			continue
		}
		olds = append(olds, a)
	}
	for j, b := range after {
		if !used[j] {
			news = append(news, b)
		}
	}
	paired := make([]bool, len(news))
	for _, a := range olds {
		j := slices.IndexFunc(news, func(b flagrepo.Condition) bool { return a.Property == b.Property && a.Operator == b.Operator })
		for j >= 0 && paired[j] {
			k := slices.IndexFunc(news[j+1:], func(b flagrepo.Condition) bool { return a.Property == b.Property && a.Operator == b.Operator })
			if k < 0 {
				j = -1
			} else {
				j += 1 + k
			}
		}
		if j < 0 {
			d.sayVerb(where, positive, remove, code(conditionText(a)))
			continue
		}
		paired[j] = true
		d.changed(where, typ, positive, a, news[j])
	}
	for j, b := range news {
		if !paired[j] {
			d.sayVerb(where, positive, add, code(conditionText(b)))
		}
	}
}

// changed describes a condition whose value changed.
func (d *ruleDiff) changed(where, typ string, positive bool, a, b flagrepo.Condition) {
	widen, narrow := "now also matches", "no longer matches"
	if typ == "NONE" {
		widen, narrow = "now also excludes", "no longer excludes"
	}
	switch a.Operator {
	case "IN":
		x, y := inItems(a.Value), inItems(b.Value)
		var added, removed []string
		for _, it := range y {
			if !slices.Contains(x, it) {
				added = append(added, it)
			}
		}
		for _, it := range x {
			if !slices.Contains(y, it) {
				removed = append(removed, it)
			}
		}
		if len(added) > 0 {
			d.sayVerb(where, positive, widen, code(a.Property+" IN "+strings.Join(added, ",")))
		}
		if len(removed) > 0 {
			d.sayVerb(where, positive, narrow, code(a.Property+" IN "+strings.Join(removed, ",")))
		}
		if len(added) == 0 && len(removed) == 0 {
			d.say(where, positive, "condition %s is now written %s", code(conditionText(a)), code(conditionText(b)))
		}
		return
	case "PERCENTAGE_SPLIT":
		x, errA := strconv.ParseFloat(strings.TrimSpace(a.Value), 64)
		y, errB := strconv.ParseFloat(strings.TrimSpace(b.Value), 64)
		if errA == nil && errB == nil && !math.IsNaN(x) && !math.IsNaN(y) {
			n := splitCount(y) - splitCount(x)
			d.split = true
			d.moved += max(n, -n)
			on := "the identity"
			if a.Property != "" {
				on = code(a.Property)
			}
			dir := "pass it"
			if n < 0 {
				dir = "no longer pass it"
			}
			d.say(where, positive, "percentage split on %s %s%% -> %s%%: %s of identities %s", on, num(x), num(y), pct(percentOf(max(n, -n))), dir)
			return
		}
	}
	d.say(where, positive, "condition %s is now %s", code(conditionText(a)), code(conditionText(b)))
}

// hasPercentageSplit reports whether rules hold a PERCENTAGE_SPLIT
// condition, which hashes the segment's id.
func hasPercentageSplit(rs []flagrepo.Rule) bool {
	for _, r := range rs {
		for _, c := range r.Conditions {
			if c.Operator == "PERCENTAGE_SPLIT" {
				return true
			}
		}
		if hasPercentageSplit(r.Rules) {
			return true
		}
	}
	return false
}
