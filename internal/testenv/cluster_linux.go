package testenv

import (
	"errors"
	"syscall"
)

// processGone says no process pid exists.
func processGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
