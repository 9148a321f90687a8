package testenv

import (
	"errors"
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the kernel kill cmd when the thread that
// started it ends: with spawn's thread, when the test binary exits.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// processGone says no process pid exists.
func processGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
