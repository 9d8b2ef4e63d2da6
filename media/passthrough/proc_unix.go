//go:build unix

package passthrough

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup runs cmd in a process group of its own and makes
// cancellation signal the whole group, so that a shell's children (sh -c
// "encoder | filter") stop with it and release the pipe.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// SIGTERM lets an encoder release its device; exec sends SIGKILL
		// to the leader if it is still running after WaitDelay.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
}
