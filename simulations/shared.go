package simulations

import (
	"sync"

	nodeengine "github.com/shoal-network/shoal/node/engine"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/simulations/engine"
)

// UnitCache shares computations between the simulated peers of a
// real-training run. Training is deterministic, so identical work is
// identical: the pseudo-gradient of a unit, keyed by (base, step, unit),
// is computed by the first peer that needs it and handed to the others
// (a replica, a checker, a free-rider); and the checkpoint a step's Close
// gives, keyed by the base and the Close, is computed once and put in
// every peer's store. What differs between peers (each encodes with its
// own error-feedback residual) is still computed per peer.
type UnitCache struct {
	mu      sync.Mutex
	deltas  map[unitKey]*cachedDelta
	applied map[applyKey]cid.Cid
	newest  uint64

	Computed, Shared int // pseudo-gradients computed and handed out again
}

type unitKey struct {
	base cid.Cid
	step uint64
	unit uint32
}

type cachedDelta struct {
	delta []float32
	loss  float32
}

// NewUnitCache returns an empty cache.
func NewUnitCache() *UnitCache {
	return &UnitCache{deltas: map[unitKey]*cachedDelta{}, applied: map[applyKey]cid.Cid{}}
}

// Delta returns the pseudo-gradient and loss of a unit, computing it with
// e if no peer has yet. The slice is shared: do not modify it.
func (u *UnitCache) Delta(e *nodeengine.ModelEngine, base cid.Cid, step uint64, unit uint32) ([]float32, float32, error) {
	k := unitKey{base, step, unit}
	u.mu.Lock()
	if d := u.deltas[k]; d != nil {
		u.Shared++
		u.mu.Unlock()
		return d.delta, d.loss, nil
	}
	u.mu.Unlock()
	delta, loss, err := e.Delta(base, step, unit)
	if err != nil {
		return nil, 0, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.Computed++
	u.deltas[k] = &cachedDelta{delta: delta, loss: loss}
	if step > u.newest {
		u.newest = step
		for k := range u.deltas {
			if k.step+3 < step {
				delete(u.deltas, k)
			}
		}
	}
	return delta, loss, nil
}

// Apply runs an ApplyJob with e, whose store is store, or hands out the
// checkpoint another peer computed for the same Close (the pool holds it;
// store gets it).
func (u *UnitCache) Apply(e *nodeengine.ModelEngine, store *engine.Store, j node.ApplyJob) (cid.Cid, error) {
	var key applyKey
	if store != nil && len(j.Included) > 0 {
		key = applyKey{base: j.Base, step: j.Step, included: &j.Included[0], n: len(j.Included)}
		u.mu.Lock()
		id, ok := u.applied[key]
		u.mu.Unlock()
		if ok && store.PutPooledCheckpoint(id) == nil {
			return id, nil
		}
	}
	r := e.Run(j)
	if r.Err != nil || store == nil || len(j.Included) == 0 {
		return r.Result, r.Err
	}
	u.mu.Lock()
	for k := range u.applied {
		if k.step+engine.KeepSteps < j.Step {
			delete(u.applied, k)
		}
	}
	u.applied[key] = r.Result
	u.mu.Unlock()
	return r.Result, nil
}

// SharedEngine is an honest peer's engine in a real-training simulation:
// a ModelEngine whose pseudo-gradients and applied checkpoints come from
// the UnitCache when another peer computed them already.
type SharedEngine struct {
	Inner *nodeengine.ModelEngine
	Store *engine.Store // Inner's store
	Units *UnitCache
}

// Genesis is the model engine's.
func (s *SharedEngine) Genesis() (cid.Cid, error) { return s.Inner.Genesis() }

// Run does a job, sharing what it can.
func (s *SharedEngine) Run(j node.Job) node.Result {
	switch j := j.(type) {
	case node.TrainJob:
		delta, loss, err := s.Units.Delta(s.Inner, j.Base, j.Step, j.Unit)
		if err != nil {
			return node.Result{Job: j, Err: err}
		}
		// Encode keeps the delta for checking a partner: it is not
		// modified, so sharing the cache's copy is safe.
		u, err := s.Inner.Encode(delta, loss)
		return node.Result{Job: j, Update: u, Err: err}
	case node.ApplyJob:
		id, err := s.Units.Apply(s.Inner, s.Store, j)
		return node.Result{Job: j, Result: id, Err: err}
	}
	return s.Inner.Run(j)
}
