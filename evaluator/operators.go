package evaluator

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Condition operators.
const (
	OpEqual                = "EQUAL"
	OpNotEqual             = "NOT_EQUAL"
	OpGreaterThan          = "GREATER_THAN"
	OpGreaterThanInclusive = "GREATER_THAN_INCLUSIVE"
	OpLessThan             = "LESS_THAN"
	OpLessThanInclusive    = "LESS_THAN_INCLUSIVE"
	OpContains             = "CONTAINS"
	OpNotContains          = "NOT_CONTAINS"
	OpRegex                = "REGEX"
	OpIn                   = "IN"
	OpModulo               = "MODULO"
	OpPercentageSplit      = "PERCENTAGE_SPLIT"
	OpIsSet                = "IS_SET"
	OpIsNotSet             = "IS_NOT_SET"
)

// SemverSuffix marks a comparison value as a semantic version.
const SemverSuffix = ":semver"

type opcode uint8

const (
	opUnknown opcode = iota
	opEqual
	opNotEqual
	opGreaterThan
	opGreaterThanInclusive
	opLessThan
	opLessThanInclusive
	opContains
	opNotContains
	opRegex
	opIn
	opModulo
	opPercentageSplit
	opIsSet
	opIsNotSet
)

var operatorNames = [...]string{
	opEqual:                OpEqual,
	opNotEqual:             OpNotEqual,
	opGreaterThan:          OpGreaterThan,
	opGreaterThanInclusive: OpGreaterThanInclusive,
	opLessThan:             OpLessThan,
	opLessThanInclusive:    OpLessThanInclusive,
	opContains:             OpContains,
	opNotContains:          OpNotContains,
	opRegex:                OpRegex,
	opIn:                   OpIn,
	opModulo:               OpModulo,
	opPercentageSplit:      OpPercentageSplit,
	opIsSet:                OpIsSet,
	opIsNotSet:             OpIsNotSet,
}

// Operators returns the names of all supported operators.
func Operators() []string {
	return append([]string(nil), operatorNames[1:]...)
}

func lookupOp(name string) opcode {
	for i, n := range operatorNames {
		if i > 0 && n == name {
			return opcode(i)
		}
	}
	return opUnknown
}

// isComparison reports operators whose value is cast to the context value's
// type (and which honour the :semver suffix).
func (o opcode) isComparison() bool {
	return o >= opEqual && o <= opContains
}

// compileRegex compiles a REGEX condition value so that it matches at the
// start of the input only, as Python's re.match does.
func compileRegex(pattern string) (*regexp.Regexp, error) {
	return regexp.Compile(`\A(?:` + pattern + `)`)
}

// parseModulo parses a MODULO value "divisor|remainder".
func parseModulo(v string) (div, rem float64, ok bool) {
	a, b, found := strings.Cut(v, "|")
	if !found || strings.IndexByte(b, '|') >= 0 {
		return 0, 0, false
	}
	if div, ok = pyFloat(a); !ok {
		return 0, 0, false
	}
	if rem, ok = pyFloat(b); !ok {
		return 0, 0, false
	}
	return div, rem, true
}

// CheckCondition reports whether a condition with this operator and value
// can ever behave as intended: the operator is known, a REGEX compiles
// (Go RE2 syntax), a ":semver" value holds a valid semantic version (and is
// not used with CONTAINS, which never matches versions), a MODULO value is
// "divisor|remainder" with numbers and a non-zero divisor, and a
// PERCENTAGE_SPLIT value is a finite number. Values that fail these checks
// make the condition false at evaluation time (Compile only rejects regular
// expressions that do not compile).
func CheckCondition(operator, value string) error {
	op := lookupOp(operator)
	switch op {
	case opUnknown:
		return fmt.Errorf("unknown operator %q", operator)
	case opRegex:
		if _, err := compileRegex(value); err != nil {
			return fmt.Errorf("invalid regular expression %q: %w", value, err)
		}
	case opModulo:
		div, _, ok := parseModulo(value)
		if !ok {
			return fmt.Errorf("invalid MODULO value %q: want \"divisor|remainder\"", value)
		}
		if div == 0 {
			return fmt.Errorf("invalid MODULO value %q: divisor is zero", value)
		}
	case opPercentageSplit:
		f, ok := pyFloat(value)
		if !ok || f != f || f > 1e308 || f < -1e308 {
			return fmt.Errorf("invalid PERCENTAGE_SPLIT value %q: want a number", value)
		}
	}
	if op.isComparison() && strings.HasSuffix(value, SemverSuffix) {
		if op == opContains {
			return errors.New("CONTAINS cannot compare semantic versions")
		}
		v := strings.TrimSuffix(value, SemverSuffix)
		if _, ok := parseVersion(v); !ok {
			return fmt.Errorf("invalid semantic version %q", v)
		}
	}
	return nil
}
