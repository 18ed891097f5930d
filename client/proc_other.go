//go:build !linux

package client

import "os"

// setPipeSize is a no-op where pipes cannot be resized.
func setPipeSize(*os.File, int) {}

// waitExit cannot wait without reaping here; it reports false, and the
// caller then stops signalling the process only once it is reaped.
func waitExit(int) bool { return false }
