package p2p

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// host a test starts must be closed, and Close must wait for its work.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
