package engine

import (
	"fmt"

	"github.com/ipfs/go-cid"
)

// Invariants returns a Check for Cluster that enforces, after every event:
//
//   - the tracker's finalised steps are never changed or lost: the list of
//     Finals only grows, across restarts too;
//   - every honest node (one not in dishonest) that holds a checkpoint for
//     a finalised step holds the finalised one: honest peers never end a
//     step on different checkpoints;
//   - nothing unverified is applied: a node starts applying a step only
//     with every included update in its store (where content enters
//     checked against its CID).
//
// The work per event is proportional to what changed: the nodes whose
// head moved, and every node once per newly finalised step. The error
// names the step and the peer; Cluster adds the seed.
func Invariants(dishonest map[string]bool) func(*Cluster) error {
	var seen []cid.Cid // checkpoints finalised so far, by step
	unverified := 0
	check := func(_ *Cluster, h *host, from, to int) error {
		for s, head := range h.history {
			if s == 0 || int(s) > to || int(s) <= from {
				continue
			}
			if want := seen[s-1]; !head.Equals(want) {
				return fmt.Errorf("invariant: honest %s holds C_%d = %s, the round finalised %s", h.id, s, head, want)
			}
		}
		return nil
	}
	return func(c *Cluster) error {
		if len(c.Unverified) > unverified {
			return fmt.Errorf("invariant: %s", c.Unverified[unverified])
		}
		tr := c.Tracker()
		if tr == nil {
			return nil
		}
		finals := tr.Finals()
		if len(finals) < len(seen) {
			return fmt.Errorf("invariant: the tracker lost finalised steps: had %d, has %d", len(seen), len(finals))
		}
		for i, id := range seen {
			if !finals[i].Checkpoint.Equals(id) {
				return fmt.Errorf("invariant: step %d was finalised as %s, now %s", i, id, finals[i].Checkpoint)
			}
		}
		old := len(seen)
		for i := len(seen); i < len(finals); i++ {
			seen = append(seen, finals[i].Checkpoint)
		}
		changed := c.changed
		c.changed = c.changed[:0]
		for _, h := range changed {
			h.changed = false
			if !dishonest[h.id] {
				if err := check(c, h, 0, len(seen)); err != nil {
					return err
				}
			}
		}
		if old < len(seen) {
			for _, id := range c.order {
				if !dishonest[id] {
					if err := check(c, c.hosts[id], old, len(seen)); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
}
