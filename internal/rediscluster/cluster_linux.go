package rediscluster

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the kernel kill cmd when the thread that
// started it ends: with spawn's thread, when the program exits.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
