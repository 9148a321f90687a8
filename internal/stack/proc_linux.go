package stack

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// setAttrs puts the process in a session (and so a process group) of its
// own, so that signals to the group reach its children too (nginx's
// workers) and a terminal's Ctrl-C does not. Attached, the kernel kills it
// when the thread that started it ends: with spawn's thread, when this
// program exits, however it exits.
func setAttrs(cmd *exec.Cmd, attached bool) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if attached {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
}

// spawn starts cmd; attached, from one OS thread that lives as long as the
// program, since the parent-death signal follows the thread that started
// the process, not the process.
func spawn(cmd *exec.Cmd, attached bool) error {
	if !attached {
		return cmd.Start()
	}
	spawner.once.Do(func() {
		spawner.req = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread never exits
			for f := range spawner.req {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.req <- func() { errc <- cmd.Start() }
	return <-errc
}

var spawner struct {
	once sync.Once
	req  chan func()
}

// procStat reads a process's state letter, group and start time from
// /proc; ok is false when there is no such process.
func procStat(pid int) (state byte, pgid int, start uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, false
	}
	// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, 0, false
	}
	pgid, _ = strconv.Atoi(f[2])
	start, _ = strconv.ParseUint(f[19], 10, 64)
	return f[0][0], pgid, start, true
}

// alive says the process pid that started at start runs (a zombie does
// not: it has ended and waits for its parent).
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	state, _, st, ok := procStat(pid)
	return ok && state != 'Z' && st == start
}

// startTime is the process's start time, 0 when it is gone.
func startTime(pid int) uint64 {
	_, _, st, _ := procStat(pid)
	return st
}

// groupMembers lists the live processes of group pgid.
func groupMembers(pgid int) []int {
	if pgid <= 0 {
		return nil
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if state, g, _, ok := procStat(pid); ok && g == pgid && state != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// signalGroup sends sig to the group pgid.
func signalGroup(pgid int, sig syscall.Signal) error { return syscall.Kill(-pgid, sig) }
