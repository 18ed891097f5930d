package main

import "syscall"

// peakRSS is the most memory this process has held resident, in bytes
// (getrusage's ru_maxrss, which Linux gives in KiB); 0 if unknown.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss << 10
}
