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
	"github.com/shoal-network/shoal/gradient"
	"github.com/shoal-network/shoal/gradient/codec"
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

// ReferenceFLOPS is the sustained rate, in floating-point operations per
// second, of a machine of speed 1 as ModelCost counts operations: about
// one core of a 2026 x86 server with AVX-512. On one Zen 5 core shoal
// trains gpt-small at 1,518 tokens/s, which is 110 GFLOP/s by this count.
const ReferenceFLOPS = 100e9

// ModelCost is what one work unit of a round costs a peer, derived from
// the round's model, batch, inner steps and codec.
type ModelCost struct {
	Params          int64   // scalar parameters of the model
	TokenFLOPs      float64 // operations of one training token, forward and backward
	UnitFLOPs       float64 // operations of a work unit: its tokens and its AdamW steps
	UnitSeconds     float64 // UnitFLOPs at ReferenceFLOPS: compute.train for the round
	UpdateBytes     int64   // the encoded update, exactly (codec.EncodedLen)
	ResidualBytes   int64   // the error-feedback residual a unit stores: float32 per parameter
	CheckpointBytes int64   // parameters and outer momenta as float32, names and shapes (metadata aside)
}

// adamFLOPs counts AdamW's operations per parameter and step.
const adamFLOPs = 12

// CostOf returns the cost of a work unit of the round spec's model. It
// allocates nothing of the model's size, so a simulation can plan rounds
// of models far larger than it could train.
//
// Operations are counted as matrix products (2 per multiply-add) and
// nothing else: per training token 6 per weight a token passes through
// (forward 2, backward 4; the gpt head is tied to the token embedding,
// whose lookup is free), and for gpt's causal attention per layer 4·T·d
// forward (Q·Kᵀ and P·V, computed dense) and 10·T·d backward (four
// products, and Q·Kᵀ again since the weights are not kept), T the context
// and d the width. Element-wise work (LayerNorm, GELU, softmax) is left
// out.
func CostOf(spec *round.Spec) (ModelCost, error) {
	cfg := nodeengine.ModelConfig(spec)
	shapes, err := gradient.Shapes(cfg)
	if err != nil {
		return ModelCost{}, err
	}
	var c ModelCost
	var matrix int64 // weights a token passes through
	specs := make([]codec.TensorSpec, len(shapes))
	var header int64
	for i, s := range shapes {
		n := int64(1)
		for _, d := range s.Shape {
			n *= int64(d)
		}
		c.Params += n
		specs[i] = codec.TensorSpec{Name: s.Name, Shape: s.Shape}
		// The parameter and its momentum: name length, name, dtype, rank, dims.
		header += int64(4+len(s.Name)+2+8*len(s.Shape)) + int64(4+len(checkpoint.MomentumName(s.Name))+2+8*len(s.Shape))
		if len(s.Shape) == 2 {
			switch s.Name {
			case "transformer.wpe.weight", "embed.weight":
				// looked up, not multiplied
			default:
				matrix += n
			}
		}
	}
	c.TokenFLOPs = 6 * float64(matrix)
	if cfg.Arch == "gpt" {
		c.TokenFLOPs += 14 * float64(cfg.Ctx) * float64(cfg.Dim) * float64(cfg.Layers)
	}
	tokens := float64(spec.UnitSamples()) * float64(cfg.Ctx)
	c.UnitFLOPs = tokens*c.TokenFLOPs + float64(spec.InnerSteps)*adamFLOPs*float64(c.Params)
	c.UnitSeconds = c.UnitFLOPs / ReferenceFLOPS
	cd, err := codec.Parse(spec.Codec)
	if err != nil {
		return ModelCost{}, fmt.Errorf("codec: %w", err)
	}
	if c.UpdateBytes, err = codec.EncodedLen(cd, specs); err != nil {
		return ModelCost{}, err
	}
	c.ResidualBytes = 4 * c.Params
	c.CheckpointBytes = (16+header+7)/8*8 + 8*c.Params // magic and counts, header padded to 8
	return c, nil
}
