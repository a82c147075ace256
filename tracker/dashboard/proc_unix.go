//go:build unix

package dashboard

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup makes cmd the leader of a new process group and has
// exec.CommandContext kill the whole group when the context ends.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
