package p2p

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// host a test starts must be closed, and Close must wait for its work.
//
// Goroutines blocked inside the in-memory network's streams are the
// exception: mocknet's stream has a delivery goroutine of its own, and a
// stream opened while its hosts shut down can be left with neither end
// reading nor reset (a pubsub writer, its reader and the stream's
// transport, all waiting on mocknet's internal pipe). Real transports
// reset a connection's streams when it closes.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/net/mock.(*stream).transport"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/net/mock.(*stream).Write"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/net/mock.(*stream).Read"))
}
