//go:build race

package buf

// raceEnabled: the race detector randomly empties sync.Pools, so
// allocation counts that rely on them are not checked.
const raceEnabled = true
