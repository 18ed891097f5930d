//go:build race

package nvlist

// The race detector changes what escapes to the heap.
func init() { raceEnabled = true }
