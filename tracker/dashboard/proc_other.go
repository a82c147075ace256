//go:build !unix

package dashboard

import "os/exec"

// ownProcessGroup does nothing here: exec.CommandContext kills the
// browser's main process only.
func ownProcessGroup(cmd *exec.Cmd) {}
