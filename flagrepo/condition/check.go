package condition

import (
	"errors"
	"fmt"
	"math"
	"regexp/syntax"
	"slices"
	"strings"
)

// Operators lists every segment condition operator.
var Operators = []string{
	"EQUAL", "NOT_EQUAL", "GREATER_THAN", "GREATER_THAN_INCLUSIVE", "LESS_THAN", "LESS_THAN_INCLUSIVE",
	"CONTAINS", "NOT_CONTAINS", "IN", "REGEX", "PERCENTAGE_SPLIT", "MODULO", "IS_SET", "IS_NOT_SET",
}

// semverOperators are the operators that may compare semantic versions.
var semverOperators = map[string]bool{
	"EQUAL": true, "NOT_EQUAL": true, "GREATER_THAN": true, "GREATER_THAN_INCLUSIVE": true,
	"LESS_THAN": true, "LESS_THAN_INCLUSIVE": true,
}

// Check reports whether a condition's value, in the engine's string form,
// means something with this operator: the operator is known; a ":semver"
// value is a valid version (ParseVersion) and the operator EQUAL, NOT_EQUAL,
// GREATER_THAN(_INCLUSIVE) or LESS_THAN(_INCLUSIVE); a REGEX compiles
// (Regex); a MODULO value is "divisor|remainder" (Modulo) with a finite
// non-zero divisor and a remainder that is not NaN; a PERCENTAGE_SPLIT
// value is a number (Float) from 0 to 100. Values Check rejects match no one
// in the evaluator (as in the engine, where they match no one or raise).
func Check(operator, value string) error {
	if IsSemver(value) && slices.Contains(Operators, operator) {
		if !semverOperators[operator] {
			return fmt.Errorf("a \":semver\" value only works with EQUAL, NOT_EQUAL, GREATER_THAN(_INCLUSIVE) and LESS_THAN(_INCLUSIVE), not %s", operator)
		}
		v := strings.TrimSuffix(value, SemverSuffix)
		if _, ok := ParseVersion(v); !ok {
			return fmt.Errorf("%q is not a semantic version (MAJOR.MINOR.PATCH[-prerelease][+build])", v)
		}
		return nil
	}
	switch operator {
	case "EQUAL", "NOT_EQUAL", "GREATER_THAN", "GREATER_THAN_INCLUSIVE", "LESS_THAN", "LESS_THAN_INCLUSIVE",
		"CONTAINS", "NOT_CONTAINS", "IN", "IS_SET", "IS_NOT_SET":
	case "REGEX":
		if _, err := Regex(value); err != nil {
			msg := fmt.Sprintf("regular expression %q does not compile: %v", value, err)
			var se *syntax.Error
			if errors.As(err, &se) && (se.Code == syntax.ErrInvalidPerlOp || se.Code == syntax.ErrInvalidEscape || se.Code == syntax.ErrInvalidRepeatOp) {
				msg += " (gitflags runs Go's RE2 syntax: lookahead, lookbehind, backreferences and possessive quantifiers are not supported)"
			}
			return errors.New(msg)
		}
	case "MODULO":
		div, rem, ok := Modulo(value)
		switch {
		case !ok:
			return fmt.Errorf("MODULO takes \"divisor|remainder\" with two numbers, e.g. \"2|0\"; got %q", value)
		case div == 0 || math.IsInf(div, 0) || math.IsNaN(div):
			return fmt.Errorf("MODULO divisor must be a finite non-zero number; got %q", value)
		case math.IsNaN(rem):
			return fmt.Errorf("MODULO remainder is NaN, which no number equals; got %q", value)
		}
	case "PERCENTAGE_SPLIT":
		f, ok := Float(value)
		if !ok || !(f >= 0 && f <= 100) {
			return fmt.Errorf("PERCENTAGE_SPLIT takes a percentage between 0 and 100; got %q", value)
		}
	default:
		return fmt.Errorf("unknown operator %q", operator)
	}
	return nil
}
