// Package engine does the heavy work of the node core's jobs: it trains
// the round's model on a work unit and encodes the pseudo-gradient
// (TrainJob), aggregates a closed step's updates and applies the outer
// optimizer (ApplyJob), and judges a replicated unit's updates
// (VerifyJob). ModelEngine is the node.Engine that does it for real, bit
// for bit the same on every machine.
//
// Training a unit also traces it: the hash of the training state after
// each inner step (package gradient/trace) goes into a blob the update
// names. A checked VerifyJob over traced updates bisects them: it
// recomputes the one inner step on which the traces first differ, from
// the agreed state before it, and asks for that state (Result.Need) when
// the store does not hold it; a StateJob makes that state for a
// disputant. bisect.go holds this part.
//
// The core (package node) knows only the jobs and their results; this
// package holds the models, codecs, aggregation rules and checkpoints.
package engine

import (
	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/node"
)

// Store is an engine's content: the node's blobs and the checkpoints it
// loads and makes, each under its CID. Implementations verify what they
// are given, return an error wrapping node.ErrNotFound for content they
// do not hold, and must be safe for concurrent use.
type Store interface {
	node.Store
	PutCheckpoint(c *checkpoint.Checkpoint) (cid.Cid, error)
	Checkpoint(id cid.Cid) (*checkpoint.Checkpoint, error)
	HasCheckpoint(id cid.Cid) bool
}
