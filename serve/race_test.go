//go:build race

package serve

// raceEnabled: the race detector slows every lab down several times.
const raceEnabled = true
