package engine

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/trace"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Disputes by bisection (package gradient/trace): a unit's update names
// the trace of its inner steps; a checker compares the disputants'
// traces, recomputes the one inner step on which they first differ from
// the state before it (served by a disputant, verified by its hash) and
// convicts the traces that do not match; when the traces agree on every
// step it derives the pseudo-gradient from the agreed final state.

// state returns the training state of r, sharing the memory of the model
// and its optimizer.
func (e *ModelEngine) state(r *unitRun) *trace.State {
	ps := e.model.Params()
	s := &trace.State{Steps: uint64(r.done), Params: make([][]float32, len(ps))}
	for i, p := range ps {
		s.Params[i] = p.Data
	}
	s.M, s.V = r.tr.Optimizer().Moments()
	return s
}

// sizes returns the sizes of the model's parameters, in order.
func (e *ModelEngine) sizes() []int {
	ps := e.model.Params()
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.Size()
	}
	return out
}

// resume sets r's training to the state s.
func (e *ModelEngine) resume(r *unitRun, s *trace.State) {
	for i, p := range e.model.Params() {
		copy(p.Data, s.Params[i])
	}
	r.tr.Optimizer().Restore(s.M, s.V, int(s.Steps))
	r.tr.SetStep(int(r.step)*e.spec.InnerSteps + int(s.Steps))
	r.done = int(s.Steps)
}

// loadState returns the state stored under the CID of leaf, which must
// be the state after steps inner steps; found is false if the store does
// not hold it.
func (e *ModelEngine) loadState(leaf trace.Leaf, steps int) (s *trace.State, found bool, err error) {
	b, err := e.store.Blob(leaf.CID())
	if errors.Is(err, node.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	s, err = trace.UnmarshalState(b, e.sizes())
	if err == nil && s.Steps != uint64(steps) {
		err = fmt.Errorf("%w: the state after %d inner steps, want %d", trace.ErrMalformed, s.Steps, steps)
	}
	return s, true, err
}

// errNoBisect says a dispute cannot be settled by bisection: the checker
// recomputes every inner step.
var errNoBisect = errors.New("no bisection")

// bisect settles a checked dispute from the claims' traces, or returns
// errNoBisect when it cannot (a claim without a trace or whose trace is
// not in the store, or no claim left standing to name the pseudo-gradient),
// or the CID of a state it needs and has not got.
func (e *ModelEngine) bisect(j node.VerifyJob) (*wire.Verdict, cid.Cid, error) {
	h := e.spec.InnerSteps
	if len(j.Updates) == 0 {
		return nil, cid.Undef, errNoBisect
	}
	bad := make([]bool, len(j.Updates))
	var traces []trace.Trace
	var live []int // the claims whose traces are well formed
	for i, cl := range j.Updates {
		if !cl.Update.Trace.Defined() {
			return nil, cid.Undef, errNoBisect
		}
		b, err := e.store.Blob(cl.Update.Trace)
		if err != nil {
			return nil, cid.Undef, errNoBisect
		}
		t, err := trace.Unmarshal(b, h+1)
		if err != nil {
			bad[i] = true // not a trace of one of this round's units
			continue
		}
		traces = append(traces, t)
		live = append(live, i)
	}
	if len(live) == 0 {
		return nil, cid.Undef, errNoBisect
	}
	r, err := e.startUnit(j.Base, j.Step, j.Unit)
	if err != nil {
		return nil, cid.Undef, err
	}
	base := gradient.Flatten(nil, e.model.Params())
	leaf0 := e.hasher.Leaf(e.state(r))
	d := trace.Divergence(leaf0, traces)
	if d > 1 {
		// Every live trace has this leaf: the state after d-1 steps.
		s, found, err := e.loadState(traces[0][d-1], d-1)
		switch {
		case !found && err == nil:
			return nil, traces[0][d-1].CID(), nil
		case errors.Is(err, trace.ErrMalformed):
			// Every live trace committed to something that is no
			// state of this unit: none is honest, and a full
			// recomputation names the pseudo-gradient.
			return nil, cid.Undef, errNoBisect
		case err != nil:
			return nil, cid.Undef, err
		}
		e.resume(r, s)
	}
	v := &wire.Verdict{}
	if d > h {
		// The traces agree on every step: judge the pseudo-gradients
		// and payloads against the one the agreed final state gives.
		delta := gradient.PseudoGradient(nil, base, e.model.Params())
		v.Raw = RawCID(delta)
		for _, i := range live {
			ok, err := e.reproduces(delta, j.Updates[i].Update)
			if err != nil {
				return nil, cid.Undef, err
			}
			bad[i] = !ok
		}
	} else {
		want := leaf0
		if d > 0 {
			if _, err := e.innerStep(r); err != nil {
				return nil, cid.Undef, err
			}
			want = e.hasher.Leaf(e.state(r))
		}
		for k, liar := range trace.Liars(d, want, traces) {
			i := live[k]
			bad[i] = liar
			if !liar && !v.Raw.Defined() {
				// The trace that follows the recomputation names the
				// pseudo-gradient the tracker holds the others to.
				v.Raw = j.Updates[i].Update.Raw
			}
		}
		if !v.Raw.Defined() {
			return nil, cid.Undef, errNoBisect
		}
	}
	for i, cl := range j.Updates {
		if bad[i] && !slices.Contains(v.Bad, cl.Peer) && len(v.Bad) < wire.MaxBad {
			v.Bad = append(v.Bad, cl.Peer)
		}
	}
	slices.Sort(v.Bad)
	return v, cid.Undef, nil
}

// materialise does a StateJob: it recomputes the state a checker of a
// dispute over one of the engine's own units will ask for, and stores it.
func (e *ModelEngine) materialise(j node.StateJob) (cid.Cid, error) {
	h := e.spec.InnerSteps
	ob, err := e.store.Blob(j.Own)
	if err != nil {
		return cid.Undef, fmt.Errorf("my trace of unit %d: %w", j.Unit, err)
	}
	own, err := trace.Unmarshal(ob, h+1)
	if err != nil {
		return cid.Undef, fmt.Errorf("my trace of unit %d: %w", j.Unit, err)
	}
	b, err := e.store.Blob(j.Other)
	if err != nil {
		return cid.Undef, fmt.Errorf("partner's trace of unit %d: %w", j.Unit, err)
	}
	other, err := trace.Unmarshal(b, h+1)
	if err != nil {
		return cid.Undef, nil // a checker convicts it without asking for a state
	}
	d := trace.Divergence(own[0], []trace.Trace{own, other})
	if d < 2 {
		return cid.Undef, nil // the checker starts from the base: no state to serve
	}
	k := d - 1
	if e.store.HasBlob(own[k].CID()) {
		return own[k].CID(), nil
	}
	r, err := e.startUnit(j.Base, j.Step, j.Unit)
	if err != nil {
		return cid.Undef, err
	}
	for r.done < k {
		if _, err := e.innerStep(r); err != nil {
			return cid.Undef, err
		}
	}
	return e.store.PutBlob(e.state(r).Marshal())
}
