//go:build !linux

package rediscluster

import "os/exec"

// Elsewhere the servers outlive a program that exits without calling Stop
// (a panic, a timeout).
func setParentDeathSignal(*exec.Cmd) {}
