package node

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/shoal-network/shoal/tracker/wire"
)

// Work: which jobs the node starts, and what their results do.

// progress starts whatever work has what it needs.
func (n *Node) progress() {
	if n.stopped {
		return
	}
	// Verifications whose inputs are here go first: they are short,
	// and the round's defence against lying peers waits on them. An
	// audit (a third computation, as long as training a unit, of a unit
	// no one disputes) waits while the node has units of the open step
	// to train (the queue is emptied when the step closes): it can wait
	// a step, the step's deadline cannot.
	training := n.training != nil || len(n.queue) > 0
	for _, k := range n.verifyKeys() {
		v := n.verifies[k]
		if v.started || (v.job.Checked && !n.has(v.job.Base)) || (v.audit && training) || !n.bisectReady(v) {
			continue
		}
		ready := true
		for _, cl := range v.job.Updates {
			if !n.has(cl.Update.Residual) || !n.has(cl.Update.Payload) {
				ready = false
			}
		}
		if ready {
			v.started = true
			n.ready.Jobs = append(n.ready.Jobs, v.job)
		}
	}
	n.progressServing()
	// Train my next unit.
	if n.training == nil && len(n.queue) > 0 && n.canTrain() {
		a := n.queue[0]
		n.queue = n.queue[1:]
		j := TrainJob{Step: n.open.Step, Attempt: n.open.Attempt, Base: n.open.Base, Unit: uint32(a.Unit), Replica: uint8(a.Replica)}
		n.training = &j
		n.ready.Jobs = append(n.ready.Jobs, j)
		n.event(wire.EventTrain, j.Step, "unit %d replica %d", j.Unit, j.Replica)
	}
	// Apply the closed step.
	if c := n.close; c != nil && n.applying == nil && c.Step == n.headStep && c.Base.Equals(n.head) {
		if n.has(c.Base) && n.hasAll(c.Included) {
			j := ApplyJob{Step: c.Step, Base: c.Base, Included: c.Included}
			n.applying = &j
			// The Close belongs to the attempt of the step's Open the
			// node holds (a step dealt again voids the Close before).
			n.applyAttempt = 0
			if o := n.open; o != nil && o.Step == c.Step {
				n.applyAttempt = o.Attempt
			}
			n.ready.Jobs = append(n.ready.Jobs, j)
		}
	}
}

// late reports whether an update of step, finished after the step
// closed, may still join the next step's Close: the round takes late
// updates (round.Spec.LateWeight) and the step is the open one or the
// one before it. The tracker decides whether it does.
func (n *Node) late(step uint64) bool {
	return n.spec.LateWeight > 0 && n.open != nil && step <= n.open.Step && step+1 >= n.open.Step
}

// canTrain reports whether the node can train units of the open step
// now: it holds the step's base and the step has not closed.
func (n *Node) canTrain() bool {
	return n.open != nil && n.open.Step == n.headStep && n.open.Base.Equals(n.head) && n.close == nil && n.has(n.head)
}

// verifyKeys returns the keys of the pending verifications in order.
func (n *Node) verifyKeys() []verifyKey {
	keys := make([]verifyKey, 0, len(n.verifies))
	for k := range n.verifies {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b verifyKey) int {
		return cmp.Or(cmp.Compare(a.step, b.step), cmp.Compare(a.unit, b.unit))
	})
	return keys
}

// Done reports the result of a job.
func (n *Node) Done(now time.Time, r Result) {
	if n.stopped {
		return
	}
	n.now = now
	switch j := r.Job.(type) {
	case TrainJob:
		n.training = nil
		if r.Err != nil {
			n.event(wire.EventError, j.Step, "training unit %d: %v", j.Unit, r.Err)
			break
		}
		u := *r.Update
		u.Round, u.Step, u.Attempt, u.Base, u.Unit, u.Replica = n.round, j.Step, j.Attempt, j.Base, j.Unit, j.Replica
		if len(u.Data) > n.cfg.InlineLimit {
			u.Data = nil
		}
		if err := wire.WellFormed(&u); err != nil {
			n.event(wire.EventError, j.Step, "engine made a malformed update: %v", err)
			break
		}
		n.keep(u.Payload)
		n.keep(u.Residual)
		if u.Trace.Defined() {
			n.keep(u.Trace)
		}
		meta := u
		meta.Data = nil
		n.mine[j.Step] = append(n.mine[j.Step], &meta)
		n.confirm(j.Step)
		n.onUpdate(n.cfg.ID, &meta)
		if n.open != nil && n.open.Step == j.Step && n.open.Attempt == j.Attempt && n.close == nil {
			n.publish(&u)
			n.event(wire.EventUpdate, j.Step, "unit %d: loss %.4f, %d bytes", j.Unit, u.Loss, u.Size)
		} else if n.late(j.Step) {
			n.publish(&u)
			n.event(wire.EventUpdate, j.Step, "unit %d: loss %.4f, %d bytes, late: for the next step's Close", j.Unit, u.Loss, u.Size)
		}
	case ApplyJob:
		if n.applying == nil || n.applying.Step != j.Step || !n.applying.Base.Equals(j.Base) {
			break // abandoned
		}
		n.applying = nil
		if r.Err != nil {
			// Most likely a payload the store no longer holds: forget
			// what the core believed and fetch the step's payloads again
			// (a fetch of content still held answers at once).
			n.event(wire.EventError, j.Step, "applying step: %v", r.Err)
			for _, in := range j.Included {
				delete(n.have, in.Payload)
				delete(n.had, in.Payload)
			}
			n.fetchIncluded(j.Included)
			break
		}
		n.close = nil
		n.keep(r.Result)
		cm := &wire.Commit{Round: n.round, Step: j.Step, Attempt: n.applyAttempt, Base: j.Base, Result: r.Result}
		n.commits[j.Step] = cm
		n.publish(cm)
		if len(r.LeftOut) > 0 {
			n.event(wire.EventCommit, j.Step, "C_%d = %s; the rule left out the updates of %s", j.Step+1, r.Result, strings.Join(r.LeftOut, ", "))
		} else {
			n.event(wire.EventCommit, j.Step, "C_%d = %s", j.Step+1, r.Result)
		}
		n.setHead(j.Step+1, r.Result)
		if f := n.finals[j.Step]; f != nil && f.Base.Equals(j.Base) && !f.Checkpoint.Equals(r.Result) {
			n.onFinal(f) // the round already agreed on something else
		} else if o := n.open; o != nil && o.Step == n.headStep && !o.Base.Equals(n.head) && !n.keepsOwn(o.Step, o.Base, "opened a step from") {
			n.event(wire.EventMismatch, j.Step, "my C_%d is %s, the tracker opened step %d from %s: fetching it", n.headStep, n.head, o.Step, o.Base)
			n.headStep = j.Step
			n.adopt(o.Step, o.Base, nil)
		}
	case VerifyJob:
		if n.awaitState(j, r) {
			break
		}
		pv := n.verifies[verifyKey{j.Step, j.Unit}]
		delete(n.verifies, verifyKey{j.Step, j.Unit})
		if r.Err != nil {
			n.event(wire.EventError, j.Step, "verifying unit %d: %v", j.Unit, r.Err)
			break
		}
		v := *r.Verdict
		v.Round, v.Step, v.Unit, v.Checked = n.round, j.Step, j.Unit, j.Checked
		v.Withheld = nil
		if pv != nil && j.Checked {
			// The peers that withheld what the check needed: the tracker
			// rules against those still in the round.
			for _, p := range pv.withheld {
				if !slices.Contains(v.Bad, p) && !slices.Contains(v.Withheld, p) {
					v.Withheld = append(v.Withheld, p)
				}
			}
			slices.Sort(v.Withheld)
			v.Withheld = v.Withheld[:min(len(v.Withheld), wire.MaxCheckPeers)]
		}
		if !v.Checked && len(v.Bad) == 0 {
			break // the partner checks out: nothing to say
		}
		if err := wire.WellFormed(&v); err != nil {
			n.event(wire.EventError, j.Step, "engine made a malformed verdict: %v", err)
			break
		}
		n.publish(&v)
		n.event(wire.EventVerdict, j.Step, "unit %d: bad %v", j.Unit, v.Bad)
	case StateJob:
		n.stateDone(j, r)
	}
	n.progress()
}
