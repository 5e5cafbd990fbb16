//go:build race

package flagrepo

// raceEnabled makes slow tests do less under the race detector.
const raceEnabled = true
