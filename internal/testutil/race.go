//go:build race

package testutil

// raceEnabled builds the binaries under test with the race detector too
// when the tests run with -race.
const raceEnabled = true
