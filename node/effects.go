package node

import (
	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/wire"
)

// What the core asks its driver to do. The core never waits: it returns
// these from Ready, and the driver reports back through Done and Fetched.

// Job is a computation the driver runs through its Engine, off the core's
// thread, reporting the result with Node.Done.
type Job interface{ isJob() }

// TrainJob trains work unit Unit of step Step from checkpoint Base and
// encodes the result with the node's error-feedback residual. The core
// issues one TrainJob at a time, in unit order, because the residual makes
// each unit's encoding depend on the one before.
type TrainJob struct {
	Step    uint64
	Attempt uint32
	Base    cid.Cid
	Unit    uint32
	Replica uint8
}

// ApplyJob aggregates the included updates of a closed step (all present
// in the store) by the round's rule, applies the outer optimizer to Base
// and stores the resulting checkpoint C_{Step+1}.
type ApplyJob struct {
	Step     uint64
	Base     cid.Cid
	Included []wire.Included
}

// VerifyJob judges the updates of a replicated unit. The engine computes
// the unit's raw pseudo-gradient (or reuses its own, when the node was a
// replica), and for each update re-encodes that pseudo-gradient from the
// update's residual: a payload it cannot reproduce, or a raw hash that is
// not its own, makes the update's sender bad. Checked is true for a third
// computation that settles a dispute: when the updates name traces (in the
// store too), the engine bisects them instead (see bisect.go), unless Full.
type VerifyJob struct {
	Step    uint64
	Base    cid.Cid
	Unit    uint32
	Checked bool
	Full    bool    // recompute every inner step: the training state a bisection needs did not come
	Updates []Claim // the updates to judge, sorted by peer; their residuals and payloads are in the store
}

// Claim is an update to verify and its sender.
type Claim struct {
	Peer   string
	Update *wire.Update // without Data
}

func (TrainJob) isJob()  {}
func (ApplyJob) isJob()  {}
func (VerifyJob) isJob() {}

// Result is what a job gave: exactly one of the fields besides Job and Err
// is set, matching the job's type.
type Result struct {
	Job    Job
	Err    error
	Update *wire.Update // TrainJob: the update to publish (Round left for the core to fill)
	Result cid.Cid      // ApplyJob: C_{Step+1}
	// LeftOut, for an ApplyJob, lists the peers whose included updates
	// the aggregation rule left out (non-finite values, or norm-clip's
	// screen), for the node's commit event.
	LeftOut []string
	Verdict *wire.Verdict // VerifyJob (Round left for the core to fill)
	// Need, for a VerifyJob, instead of a Verdict: the training state
	// (a blob) that bisecting the updates' traces needs, which the
	// disputants serve.
	Need cid.Cid
}

// FetchKind says what a fetch brings.
type FetchKind uint8

const (
	FetchBlob       FetchKind = 1 // one content-addressed blob (an update's payload or residual)
	FetchCheckpoint FetchKind = 2 // a checkpoint: its manifest and every chunk
)

// Fetch asks the driver to get content by CID into the node's store,
// verified, trying the providers first (any other source it knows is
// fine). The driver answers with Node.Fetched, successful or not.
type Fetch struct {
	CID       cid.Cid
	Kind      FetchKind
	Providers []string
}

// Ready is what the core has for its driver since the last call.
type Ready struct {
	Publish []wire.Msg // to gossip on the round's topic, in order
	Jobs    []Job      // to run through the Engine
	Fetches []Fetch    // to fetch into the store
	Events  []Event    // for logs and status
	// Head is the checkpoint the node now holds as C_HeadStep; the driver
	// persists it (pins it in the store) so a restart resumes from it.
	HeadStep    uint64
	Head        cid.Cid
	HeadChanged bool
}

// Empty reports whether there is nothing to do.
func (r *Ready) Empty() bool {
	return len(r.Publish) == 0 && len(r.Jobs) == 0 && len(r.Fetches) == 0 && len(r.Events) == 0 && !r.HeadChanged
}

// Event is something that happened, for logs and status.
type Event struct {
	Kind   wire.EventKind
	Step   uint64
	Detail string
}
