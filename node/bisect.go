package node

import (
	"github.com/ipfs/go-cid"
)

// Disputes by bisection. A worker's update names a trace: the hashes of
// its training state after each inner step (package gradient/trace). A
// checker settling a dispute fetches the disputants' traces with their
// residuals and payloads; its engine finds the first inner step on which
// they differ and asks (Result.Need) for the state before it, which every
// disputant committed to; the core fetches that state from the
// disputants and runs the job again, and the engine recomputes one inner
// step instead of all of them. A state that does not come within the
// step deadline makes the job recompute everything (VerifyJob.Full).
//
// A disputant that sees a Check of a unit it computed fetches its
// partner's trace and materialises the state the checker will ask for
// (StateJob): recomputing it is the disputant's cost, not the checker's.

// StateJob materialises the training state a checker will need to
// settle a dispute over a unit the node computed: the engine compares
// the node's trace (Own) with its partner's (Other, in the store),
// recomputes the unit's training up to the step before the first leaf
// on which they differ (or to the end, if none does) and puts that state
// in the store. Result.Result is its CID, undefined when a checker needs
// none (the traces differ on the first step already).
type StateJob struct {
	Step  uint64
	Base  cid.Cid
	Unit  uint32
	Own   cid.Cid
	Other cid.Cid
}

func (StateJob) isJob() {}
