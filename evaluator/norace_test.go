//go:build !race

package evaluator

// raceEnabled makes slow tests do less under the race detector.
const raceEnabled = false
