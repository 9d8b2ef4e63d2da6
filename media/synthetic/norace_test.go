//go:build !race

package synthetic

const raceEnabled = false
