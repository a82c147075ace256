package p2p

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestAuthorRateLimit: an author gets its burst at once and then its
// rate; other authors are not held back by it; a table full of busy
// authors refuses a new one, and forgets the idle ones to make room.
func TestAuthorRateLimit(t *testing.T) {
	l := newAuthorLimit(10, 5, 3)
	t0 := time.Unix(1000, 0)
	a, b := peer.ID("a"), peer.ID("b")
	n := 0
	for range 100 {
		if l.allow(a, t0) {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("%d messages at once, want the burst of 5", n)
	}
	if !l.allow(b, t0) {
		t.Fatal("another author was held back by the first one's flood")
	}
	// After 0.5 s at 10 a second: 5 more.
	n = 0
	for range 100 {
		if l.allow(a, t0.Add(500*time.Millisecond)) {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("%d messages after 0.5 s, want 5", n)
	}
	// The table holds 3 authors: a, b and c; d is refused while all are
	// busy, and admitted once they have been idle long enough to be full
	// again (0.5 s at this rate and burst).
	now := t0.Add(500 * time.Millisecond)
	l.allow(b, now)
	l.allow("c", now)
	if l.allow("d", now) {
		t.Fatal("a fourth author got a bucket in a table of 3 busy ones")
	}
	if !l.allow("d", now.Add(time.Second)) {
		t.Fatal("a new author refused although the table's authors are idle")
	}
	if len(l.b) > 3 {
		t.Fatalf("table holds %d authors, cap 3", len(l.b))
	}
}

// TestGossipAuthorRate: on a real topic, one author's flood is cut to its
// burst and rate at the receiver, and neither delivered nor relayed
// beyond it.
func TestGossipAuthorRate(t *testing.T) {
	mn := newMocknet(t)
	hosts := mockHosts(t, mn, 3, func(i int) Options {
		o := loopbackOptions(nil)
		o.Gossip.AuthorRate, o.Gossip.AuthorBurst = 0.001, 10
		return o
	})
	connectAll(t, mn)
	topics := joinAll(t, hosts, "rate", testValidator)
	waitTopicPeers(t, topics, 2)
	for i := range 40 {
		if _, err := topics[0].Publish(t.Context(), fmt.Appendf(nil, "ok:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Each receiver takes the burst (however slowly this machine delivers
	// it), and then nothing more.
	for i, tp := range topics[1:] {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		for got := range 10 {
			if _, err := tp.Next(ctx); err != nil {
				t.Fatalf("receiver %d got %d of its burst of 10: %v", i+1, got, err)
			}
		}
		cancel()
	}
	expectNothing(t, topics[1:], 2*time.Second)
}
