package p2p

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shoal-network/shoal/p2p/internal/testlog"
)

// TestGossipCountsAgainstCaps floods a line of hosts A - B - C through a
// relay B whose upload and download are capped: what B reads from A and
// relays to C counts on its gossip wire counters and stays within its
// caps (the bucket's rate over the time since B started, plus its burst
// and a piece in flight per stream), and so does what C receives from B.
// Without the caps on gossip, B relays the whole flood at once.
func TestGossipCountsAgainstCaps(t *testing.T) {
	const (
		up, down = 64 << 10, 128 << 10 // B's caps, bytes per second
		msgs     = 48
		size     = 48 << 10 // 2.25 MiB of flood in all
	)
	mn := newMocknet(t)
	start := time.Now()
	hosts := mockHosts(t, mn, 3, func(i int) Options {
		o := loopbackOptions(&testlog.Recorder{})
		if i == 1 {
			o.Blob.UploadRate, o.Blob.DownloadRate = up, down
		}
		return o
	})
	a, b, c := hosts[0], hosts[1], hosts[2]
	if err := mn.UnlinkPeers(a.ID(), c.ID()); err != nil {
		t.Fatal(err) // C hears A only through B
	}
	topics := joinAll(t, hosts, "round/caps/updates", nil)
	if _, err := mn.ConnectPeers(a.ID(), b.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(b.ID(), c.ID()); err != nil {
		t.Fatal(err)
	}
	waitTopicPeers(t, topics[:1], 1)
	waitTopicPeers(t, topics[2:], 1)
	waitTopicPeers(t, topics[1:2], 2)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range msgs {
		payload := make([]byte, size)
		copy(payload, fmt.Sprintf("flood %d", i))
		if _, err := topics[0].Publish(ctx, payload); err != nil {
			t.Fatal(err)
		}
	}
	// Let the relay work for a while: far less than the flood takes
	// through its caps.
	waitFor(t, 20*time.Second, "the relay to read and relay gossip", func() bool {
		st := b.Gossip().Stats()
		return st.WireIn > 4*size && st.WireOut > 2*size
	})
	time.Sleep(2 * time.Second)

	bs, cs := b.Gossip().Stats(), c.Gossip().Stats()
	elapsed := time.Since(start).Seconds()
	const burst, inFlight = 32 << 10, 4 * 32 << 10
	maxOut := int64(up*elapsed) + burst + inFlight
	maxIn := int64(down*elapsed) + burst + inFlight
	t.Logf("after %.1f s the relay read %d and wrote %d gossip bytes (caps allow %d and %d); C received %d", elapsed, bs.WireIn, bs.WireOut, maxIn, maxOut, cs.Bytes)
	if bs.WireOut > maxOut {
		t.Errorf("the relay wrote %d gossip bytes in %.1f s, over its upload cap (%d at most)", bs.WireOut, elapsed, maxOut)
	}
	if bs.WireIn > maxIn {
		t.Errorf("the relay read %d gossip bytes in %.1f s, over its download cap (%d at most)", bs.WireIn, elapsed, maxIn)
	}
	if cs.Bytes > maxOut {
		t.Errorf("C received %d gossip bytes through the relay in %.1f s, over the relay's upload cap (%d at most)", cs.Bytes, elapsed, maxOut)
	}
	if total := int64(msgs * size); bs.WireOut >= total {
		t.Errorf("the relay passed on the whole flood (%d bytes)", bs.WireOut)
	}
}
