package node

import (
	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint/content"
)

// Engine does a node's computations: the jobs the core asks for. Package
// node/engine trains the round's model for real; a simulator may model
// the cost instead. Run is called from the driver, one job at a time per
// engine unless the engine says otherwise.
type Engine interface {
	// Genesis returns C_0 and makes sure the driver's store holds it
	// (unless the round names an initial checkpoint, which must be
	// fetched).
	Genesis() (cid.Cid, error)
	// Run does a job and returns its result.
	Run(j Job) Result
}

// Store holds a node's blobs (update payloads, residuals), each under its
// CID: where a driver puts an Update's inline payload before Receive, and
// what a FetchBlob fills. Checkpoints are the engine's business: an
// engine's store holds them besides (package node/engine says how).
// Implementations verify what they are given and must be safe for
// concurrent use.
type Store interface {
	PutBlob(data []byte) (cid.Cid, error)
	Blob(id cid.Cid) ([]byte, error)
	HasBlob(id cid.Cid) bool
}

// ErrNotFound is returned by a Store for content it does not hold:
// content.ErrNotFound.
var ErrNotFound = content.ErrNotFound
