package evaluator

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
