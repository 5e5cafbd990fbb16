// Package condition defines the syntax and the meaning of segment condition
// values as the reference engine (Flagsmith's Python flag engine 10.2) reads
// them: numbers as Python's int() and float() parse them, MODULO's
// "divisor|remainder", PERCENTAGE_SPLIT's percentage, IN lists, ":semver"
// versions and REGEX patterns.
//
// `gitflags validate` (package flagrepo) and the evaluator both use it: a
// value that Check accepts is one the evaluator runs with the engine's
// meaning, and the evaluator reads every value, valid or not, with the
// functions Check uses.
package condition
