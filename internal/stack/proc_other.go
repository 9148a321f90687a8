//go:build !linux

package stack

import (
	"errors"
	"os/exec"
	"syscall"
)

// The stack reads /proc and uses Linux's parent-death signal: elsewhere
// Up refuses to start.

var errLinuxOnly = errors.New("the process stack runs on Linux only")

func setAttrs(*exec.Cmd, bool)              {}
func spawn(*exec.Cmd, bool) error           { return errLinuxOnly }
func alive(int, uint64) bool                { return false }
func startTime(int) uint64                  { return 0 }
func groupMembers(int) []int                { return nil }
func signalGroup(int, syscall.Signal) error { return errLinuxOnly }
