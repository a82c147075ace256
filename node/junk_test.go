package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// TestLoopStoresNoJunk: Updates from peers outside the round, or for
// copies not dealt to their sender, leave the Loop's store untouched,
// even when the driver's own Validate lets them through; the payload of
// a dealt copy is stored once.
func TestLoopStoresNoJunk(t *testing.T) {
	for _, lax := range []bool{false, true} {
		t.Run(fmt.Sprintf("lax validate %v", lax), func(t *testing.T) {
			n, s := testNode(t)
			if lax {
				// A driver whose validator asks only the form.
				n.cfg.Validate = func(_ wire.View, _ string, m wire.Msg) (wire.Result, error) {
					if err := wire.WellFormed(m); err != nil {
						return wire.Reject, err
					}
					return wire.Accept, nil
				}
			}
			fx := newRecorder()
			l := NewLoop(n, fx, fx)
			now := time.Unix(1_800_000_000, 0)
			if err := l.Flush(now); err != nil {
				t.Fatal(err)
			}
			members := []string{"me", "peer-b"}
			open := &wire.Open{Round: s.ID(), Step: 0, Base: content.Sum([]byte("C0")), Members: members, Units: 4}
			if _, err := l.Receive(now, trackerID, open); err != nil {
				t.Fatal(err)
			}
			dealt := round.Assign(s.Seed, wire.AssignStep(0, 0), members, 4, s.VerificationRate)
			junk := 0
			send := func(from string, u *wire.Update) {
				t.Helper()
				junk++
				if _, err := l.Receive(now, from, u); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 50 {
				a := dealt[i%len(dealt)]
				unit, replica := uint32(a.Unit), uint8(a.Replica)
				send("junk", junkUpdate(s, 0, 0, unit, replica, fmt.Sprintf("junk %d", i)))
				send("junk", junkUpdate(s, 1, 0, unit, replica, fmt.Sprintf("junk of the next step %d", i)))
				send("junk", junkUpdate(s, 0, 1, unit, replica, fmt.Sprintf("junk of another attempt %d", i)))
				for _, p := range members {
					if p != a.Peer && p != "me" {
						send(p, junkUpdate(s, 0, 0, unit, replica, fmt.Sprintf("%s claims %s's unit %d", p, a.Peer, i)))
					}
				}
			}
			if len(fx.blobs) != 0 {
				t.Fatalf("%d blobs stored after %d junk updates", len(fx.blobs), junk)
			}
			// The dealt copy's payload is stored, once.
			junk = 0
			for _, a := range dealt {
				if a.Peer == "peer-b" {
					u := junkUpdate(s, 0, 0, uint32(a.Unit), uint8(a.Replica), "peer-b's real update")
					send("peer-b", u)
					send("peer-b", u)
					if len(fx.blobs) != 1 || fx.blobs[u.Payload] == nil {
						t.Fatalf("after peer-b's update the store holds %d blobs", len(fx.blobs))
					}
					return
				}
			}
			t.Fatal("peer-b was dealt nothing")
		})
	}
}
