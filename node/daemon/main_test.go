package daemon

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no goroutine outlives the daemons and hosts the
// tests start and stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
