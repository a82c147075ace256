package node

import (
	"cmp"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/tracker/wire"
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

// stateWait is how long a checker waits for the traces of a dispute, and
// then for the state its bisection asks for, before it recomputes every
// inner step instead: the step deadline, within which a disputant trained
// the whole unit once already.
func (n *Node) stateWait() time.Duration { return n.spec.Deadline }

// bisectReady reports whether a checked verification may start as far
// as the bisection goes: every trace its updates name is in the store,
// and the state its engine asked for is too; or it waited stateWait for
// them, and the job falls back to recomputing every inner step. It
// fetches what is missing from the disputants. A job with an update
// that names no trace cannot be bisected and waits for nothing.
func (n *Node) bisectReady(v *pendingVerify) bool {
	if !v.job.Checked || v.job.Full {
		return true
	}
	for _, cl := range v.job.Updates {
		if !cl.Update.Trace.Defined() {
			return true // no bisection: the engine recomputes every inner step
		}
	}
	if v.since.IsZero() {
		v.since = n.now
	}
	missing := false
	var peers []string
	for _, cl := range v.job.Updates {
		peers = append(peers, cl.Peer)
		if t := cl.Update.Trace; t.Defined() && !n.has(t) {
			missing = true
			n.fetch(t, FetchBlob, []string{cl.Peer})
		}
	}
	if v.state.Defined() && !n.has(v.state) {
		missing = true
		n.fetch(v.state, FetchBlob, peers)
	}
	v.waiting = missing
	if !missing {
		return true
	}
	if n.now.Sub(v.since) >= n.stateWait() {
		v.job.Full, v.waiting = true, false
		n.event(wire.EventDispute, v.job.Step, "unit %d: the disputants' traces or state did not come: recomputing every inner step", v.job.Unit)
		return true
	}
	return false
}

// awaitState takes a verification's result that asks for a training
// state instead of a verdict: the job waits for it and runs again. It
// reports whether the result was one.
func (n *Node) awaitState(j VerifyJob, r Result) bool {
	if r.Err != nil || r.Verdict != nil || !r.Need.Defined() {
		return false
	}
	v := n.verifies[verifyKey{j.Step, j.Unit}]
	if v == nil || !v.started {
		return true // abandoned
	}
	v.started, v.state, v.since = false, r.Need, n.now
	n.event(wire.EventDispute, j.Step, "unit %d: bisection asks the disputants for state %s", j.Unit, r.Need)
	var peers []string
	for _, cl := range j.Updates {
		peers = append(peers, cl.Peer)
	}
	n.fetch(r.Need, FetchBlob, peers)
	return true
}

// tickBisect lets a verification that waited too long for a state start
// without it.
func (n *Node) tickBisect() {
	for _, v := range n.verifies {
		if v.waiting && !v.started && n.now.Sub(v.since) >= n.stateWait() {
			n.progress()
			return
		}
	}
}

// serveCheck starts, for a Check of a unit the node computed and whose
// partner's update names a trace, the materialisation of the state the
// checker will ask for. A repeat of the Check asks nothing more.
func (n *Node) serveCheck(c wire.Check) {
	if n.cfg.Role != wire.RoleWorker {
		return
	}
	key := verifyKey{c.Step, c.Unit}
	if n.serving[key] != nil {
		return
	}
	for k := range n.serving {
		if k.step+stepsKept < n.headStep {
			delete(n.serving, k)
		}
	}
	if !slices.Contains(c.Peers, n.cfg.ID) {
		return // not a disputant
	}
	for _, mine := range n.mine[c.Step] {
		if mine.Unit != c.Unit || mine.Attempt != c.Attempt || !mine.Base.Equals(c.Base) || !mine.Trace.Defined() {
			continue
		}
		for _, s := range n.seen[c.Step] {
			// The partner is the other peer the Check names, in its attempt.
			if s.from == n.cfg.ID || !slices.Contains(c.Peers, s.from) || s.u.Unit != c.Unit || s.u.Attempt != c.Attempt ||
				!s.u.Base.Equals(c.Base) || !s.u.Trace.Defined() {
				continue
			}
			if n.serving == nil {
				n.serving = map[verifyKey]*pendingState{}
			}
			n.serving[key] = &pendingState{job: StateJob{Step: c.Step, Base: c.Base, Unit: c.Unit, Own: mine.Trace, Other: s.u.Trace}}
			n.fetch(s.u.Trace, FetchBlob, []string{s.from})
			return
		}
	}
}

// pendingState is a StateJob waiting for its partner's trace, or running.
type pendingState struct {
	job     StateJob
	started bool
}

// progressServing starts the StateJobs whose partner's trace is here.
func (n *Node) progressServing() {
	keys := make([]verifyKey, 0, len(n.serving))
	for k, s := range n.serving {
		if !s.started && n.has(s.job.Other) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b verifyKey) int {
		if a.step != b.step {
			return cmp.Compare(a.step, b.step)
		}
		return cmp.Compare(a.unit, b.unit)
	})
	for _, k := range keys {
		s := n.serving[k]
		s.started = true
		n.ready.Jobs = append(n.ready.Jobs, s.job)
	}
}

// stateDone takes a StateJob's result: the state is in the store, for
// the checker to fetch.
func (n *Node) stateDone(j StateJob, r Result) {
	if r.Err != nil {
		n.event(wire.EventError, j.Step, "materialising the state of disputed unit %d: %v", j.Unit, r.Err)
		return
	}
	if r.Result.Defined() {
		n.keep(r.Result)
		n.event(wire.EventDispute, j.Step, "unit %d: materialised state %s for its checker", j.Unit, r.Result)
	}
}
