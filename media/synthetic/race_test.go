//go:build race

package synthetic

// raceEnabled: the race detector slows the drawing code about fifty times.
const raceEnabled = true
