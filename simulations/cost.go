package simulations

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"

	nodeengine "github.com/shoal-network/shoal/node/engine"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/checkpoint/content"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/simulations/engine"
	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// CostEngine is an Engine that trains nothing: it stands for a peer's
// computation when a simulation models compute by its cost rather than
// doing it. Its results are small stand-ins with the properties the
// protocol relies on:
//
//   - two honest CostEngines compute the same raw hash for a unit (a hash
//     of its base, step and unit) and the same checkpoint for a step (a
//     tiny checkpoint naming its base and included updates);
//   - a payload is a hash of the raw hash and the residual the engine used,
//     and each engine's residual changes with every unit it encodes, so
//     replicas send different payloads and a verifier can recompute them.
//
// Behaviour makes it an adversary: every behaviour but payload-lie
// reports a raw hash an honest replica does not compute (a lie, a stale
// result, another unit's result); payload-lie reports the true raw hash
// with a payload that does not follow from it. Shared, if set, lets the
// engines of one simulation compute each step's checkpoint once.
type CostEngine struct {
	Store     nodeengine.Store
	Spec      *round.Spec
	Peer      string
	Behaviour Behaviour
	Shared    *CostShared
	// Replicated tells an adaptive liar whether the Open replicated a
	// unit (nil: it believes none is).
	Replicated func(step uint64, attempt, unit uint32) bool
	// PayloadBytes, if above 32, makes payloads that long (a hash
	// stretched), for a network that must carry real bytes.
	PayloadBytes int
	counter      uint64
	last         cid.Cid // the raw hash of the last unit (for stale replays)
}

// CostShared is what the CostEngines of one simulation share: the
// checkpoint of each applied step, computed once. All nodes apply the
// same decoded Close, so the key is its list of included updates.
type CostShared struct {
	mu      sync.Mutex
	applied map[applyKey]*checkpoint.Chunked
}

type applyKey struct {
	base     cid.Cid
	step     uint64
	included *wire.Included
	n        int
}

// NewCostShared returns an empty CostShared.
func NewCostShared() *CostShared { return &CostShared{applied: map[applyKey]*checkpoint.Chunked{}} }

// Genesis stores the stand-in for C_0.
func (e *CostEngine) Genesis() (cid.Cid, error) {
	return e.Store.PutCheckpoint(costCheckpoint(e.Spec, 0, "genesis"))
}

func costCheckpoint(spec *round.Spec, step uint64, content string) *checkpoint.Checkpoint {
	return &checkpoint.Checkpoint{
		Meta: map[string]string{
			checkpoint.MetaRound: spec.ID().String(),
			checkpoint.MetaStep:  strconv.FormatUint(step, 10),
			"content":            content,
		},
		Tensors: []checkpoint.Tensor{{Name: "w", Shape: []int{1}, Data: []float32{float32(step)}}},
	}
}

func costHash(parts ...[]byte) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// rawOf is the raw hash an honest computation of a unit gives.
func rawOf(base cid.Cid, step uint64, unit uint32) cid.Cid {
	d := costHash([]byte("raw"), base.Bytes(), u64(step), u64(uint64(unit)))
	return content.Sum(d[:])
}

// payloadOf is the payload an encoding of raw with residual gives: a
// hash, stretched to n bytes if n is above its 32.
func payloadOf(raw cid.Cid, residual []byte, n int) []byte {
	d := costHash([]byte("payload"), raw.Bytes(), residual)
	out := d[:]
	for i := uint64(0); len(out) < n; i++ {
		b := costHash(d[:], u64(i))
		out = append(out, b[:]...)
	}
	if n > 32 {
		out = out[:n]
	}
	return out
}

// rawFor is the raw hash the engine reports for a unit.
func (e *CostEngine) rawFor(j node.TrainJob) cid.Cid {
	honest := rawOf(j.Base, j.Step, j.Unit)
	switch e.Behaviour {
	case "", PayloadLie, Withholder:
		return honest
	case AdaptiveLiar:
		if !unchecked(e.Replicated, j) {
			return honest
		}
	case StaleReplay:
		if e.last.Defined() {
			return e.last
		}
		if j.Step > 0 {
			return rawOf(j.Base, j.Step-1, j.Unit)
		}
	case FreeRider:
		return rawOf(j.Base, j.Step, j.Unit+1)
	}
	return content.Sum(append(honest.Bytes(), e.Behaviour...))
}

// Run does a job at no cost.
func (e *CostEngine) Run(j node.Job) node.Result {
	switch j := j.(type) {
	case node.TrainJob:
		raw := e.rawFor(j)
		e.last = raw
		e.counter++
		resid := costHash([]byte("residual"), []byte(e.Peer), u64(e.counter))
		resID, err := e.Store.PutBlob(resid[:])
		if err != nil {
			return node.Result{Job: j, Err: err}
		}
		payload := payloadOf(raw, resid[:], e.PayloadBytes)
		if e.Behaviour == PayloadLie {
			payload = payloadOf(raw, append(resid[:], "lie"...), e.PayloadBytes)
		}
		pid, err := e.Store.PutBlob(payload)
		if err != nil {
			return node.Result{Job: j, Err: err}
		}
		return node.Result{Job: j, Update: &wire.Update{Samples: uint32(e.Spec.UnitSamples()), Loss: 1,
			Raw: raw, Residual: resID, Payload: pid, Size: uint64(len(payload)), Data: payload}}
	case node.ApplyJob:
		id, err := e.apply(j)
		return node.Result{Job: j, Result: id, Err: err}
	case node.VerifyJob:
		raw := rawOf(j.Base, j.Step, j.Unit)
		v := &wire.Verdict{Raw: raw}
		for _, cl := range j.Updates {
			res, err := e.Store.Blob(cl.Update.Residual)
			if err != nil {
				return node.Result{Job: j, Err: err}
			}
			if !cl.Update.Raw.Equals(raw) || !content.Sum(payloadOf(raw, res, e.PayloadBytes)).Equals(cl.Update.Payload) {
				if len(v.Bad) < wire.MaxBad {
					v.Bad = append(v.Bad, cl.Peer)
				}
			}
		}
		return node.Result{Job: j, Verdict: v}
	}
	return node.Result{Job: j, Err: fmt.Errorf("unknown job %T", j)}
}

func (e *CostEngine) apply(j node.ApplyJob) (cid.Cid, error) {
	var key applyKey
	if e.Shared != nil && len(j.Included) > 0 {
		key = applyKey{base: j.Base, step: j.Step, included: &j.Included[0], n: len(j.Included)}
		e.Shared.mu.Lock()
		ch := e.Shared.applied[key]
		e.Shared.mu.Unlock()
		if ch != nil {
			if s, ok := e.Store.(*engine.Store); ok {
				s.PutBuilt(ch)
				return ch.ID, nil
			}
		}
	}
	h := sha256.New()
	h.Write(j.Base.Bytes())
	var line []byte
	for _, in := range j.Included {
		line = line[:0]
		line = append(line, in.Peer...)
		line = append(line, ' ')
		line = strconv.AppendUint(line, uint64(in.Unit), 10)
		line = append(line, ' ')
		line = append(line, in.Payload.String()...)
		line = append(line, ' ')
		line = strconv.AppendUint(line, uint64(in.Weight), 10)
		line = append(line, '\n')
		h.Write(line)
	}
	ck := costCheckpoint(e.Spec, j.Step+1, fmt.Sprintf("%x", h.Sum(nil)))
	if e.Shared == nil || len(j.Included) == 0 {
		return e.Store.PutCheckpoint(ck)
	}
	ch, err := checkpoint.Build(ck)
	if err != nil {
		return cid.Undef, err
	}
	e.Shared.mu.Lock()
	for k := range e.Shared.applied {
		if k.step+engine.KeepSteps < j.Step {
			delete(e.Shared.applied, k)
		}
	}
	e.Shared.applied[key] = ch
	e.Shared.mu.Unlock()
	if s, ok := e.Store.(*engine.Store); ok {
		s.PutBuilt(ch)
		return ch.ID, nil
	}
	return e.Store.PutCheckpoint(ck)
}
