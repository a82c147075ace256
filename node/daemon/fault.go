//go:build !shoalfault

package daemon

import "github.com/shoal-network/shoal/node"

// faulty returns the engine a node runs. Builds with the shoalfault tag
// (test builds only) can make it lie on purpose; in every other build it
// is the engine itself, and nothing, not a flag, an environment variable
// or a message, can change that.
func faulty(e node.Engine) node.Engine { return e }

// FaultInjection reports whether this build can inject faults.
const FaultInjection = false
