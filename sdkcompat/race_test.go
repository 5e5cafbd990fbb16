//go:build race

package sdkcompat

// raceEnabled builds the server with -race when the test runs with -race.
const raceEnabled = true
