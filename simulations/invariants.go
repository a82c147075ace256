package simulations

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
//     step on different checkpoints.
//
// The error names the step and the peer; Cluster adds the seed.
func Invariants(dishonest map[string]bool) func(*Cluster) error {
	var seen []cid.Cid // checkpoints finalised so far, by step
	return func(c *Cluster) error {
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
		for i := len(seen); i < len(finals); i++ {
			seen = append(seen, finals[i].Checkpoint)
		}
		for _, id := range c.order {
			if dishonest[id] {
				continue
			}
			h := c.hosts[id]
			for s, head := range h.history {
				if s == 0 || int(s) > len(seen) {
					continue
				}
				if want := seen[s-1]; !head.Equals(want) {
					return fmt.Errorf("invariant: honest %s holds C_%d = %s, the round finalised %s", id, s, head, want)
				}
			}
		}
		return nil
	}
}
