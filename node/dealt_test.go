package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// junkUpdate is a well-formed update of a unit copy with its payload
// inline.
func junkUpdate(s *round.Spec, step uint64, attempt uint32, unit uint32, replica uint8, data string) *wire.Update {
	g := content.Sum([]byte("C0"))
	return &wire.Update{Round: s.ID(), Step: step, Attempt: attempt, Base: g, Unit: unit, Replica: replica, Samples: 20, Raw: g, Residual: g,
		Payload: content.Sum([]byte(data)), Size: uint64(len(data)), Data: []byte(data)}
}

// TestValidatorIgnoresUndealtUpdates: Validate, with a node that holds an
// Open as its View, accepts an Update only from the peer the Open dealt
// that unit copy to; an Update from a peer outside the round, from a
// member for another's copy, or of a step or attempt whose Open the node
// does not hold is ignored (not rejected: no one broke the form).
func TestValidatorIgnoresUndealtUpdates(t *testing.T) {
	n, s := testNode(t)
	now := time.Unix(1_800_000_000, 0)
	members := []string{"me", "peer-b", "peer-c"}
	open := &wire.Open{Round: s.ID(), Step: 0, Base: content.Sum([]byte("C0")), Members: members, Units: 3}
	if err := n.Receive(now, trackerID, open); err != nil {
		t.Fatal(err)
	}
	dealt := round.Assign(s.Seed, wire.AssignStep(0, 0), members, 3, s.VerificationRate)
	if len(dealt) != 3 {
		t.Fatalf("%d copies dealt, want 3", len(dealt))
	}
	check := func(name, from string, u *wire.Update, want wire.Result) {
		t.Helper()
		if r, err := wire.Validate(n, from, u); r != want {
			t.Errorf("%s: %s (%v), want %s", name, r, err, want)
		}
	}
	for _, a := range dealt {
		unit, replica := uint32(a.Unit), uint8(a.Replica)
		u := junkUpdate(s, 0, 0, unit, replica, fmt.Sprintf("unit %d", a.Unit))
		check(fmt.Sprintf("unit %d from its peer", a.Unit), a.Peer, u, wire.Accept)
		check(fmt.Sprintf("unit %d from a peer outside the round", a.Unit), "junk", u, wire.Ignore)
		for _, p := range members {
			if p != a.Peer {
				check(fmt.Sprintf("unit %d from member %s", a.Unit, p), p, u, wire.Ignore)
			}
		}
		check(fmt.Sprintf("unit %d of another attempt", a.Unit), a.Peer, junkUpdate(s, 0, 1, unit, replica, "other attempt"), wire.Ignore)
		check(fmt.Sprintf("unit %d of the next step, not open yet", a.Unit), a.Peer, junkUpdate(s, 1, 0, unit, replica, "next step"), wire.Ignore)
	}
	check("a copy the Open did not deal", dealt[0].Peer, junkUpdate(s, 0, 0, 0, 1, "second replica"), wire.Ignore)
	check("a unit beyond the Open's", dealt[0].Peer, junkUpdate(s, 0, 0, 7, 0, "unit 7"), wire.Ignore)
}
