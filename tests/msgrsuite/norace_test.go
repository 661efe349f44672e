//go:build !race

package msgrsuite

const raceEnabled = false
