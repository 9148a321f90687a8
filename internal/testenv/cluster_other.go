//go:build !linux

package testenv

import "os/exec"

// Elsewhere the servers outlive a test binary that exits without its
// cleanups (a panic, a timeout).
func setParentDeathSignal(*exec.Cmd) {}

// processGone cannot tell here: the folders stay.
func processGone(int) bool { return false }
