package simulations

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/checkpoint"
	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/tracker"
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
// The Lie field makes it an adversary that reports a wrong raw hash.
type CostEngine struct {
	Store   *node.MemStore
	Spec    *tracker.Spec
	Peer    string
	Lie     bool
	counter uint64
}

// Genesis stores the stand-in for C_0.
func (e *CostEngine) Genesis() (cid.Cid, error) {
	return e.Store.PutCheckpoint(costCheckpoint(e.Spec, 0, "genesis"))
}

func costCheckpoint(spec *tracker.Spec, step uint64, content string) *checkpoint.Checkpoint {
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
	return tracker.SumCID(d[:])
}

// payloadOf is the payload an encoding of raw with residual gives.
func payloadOf(raw cid.Cid, residual []byte) []byte {
	d := costHash([]byte("payload"), raw.Bytes(), residual)
	return d[:]
}

// Run does a job at no cost.
func (e *CostEngine) Run(j node.Job) node.Result {
	switch j := j.(type) {
	case node.TrainJob:
		raw := rawOf(j.Base, j.Step, j.Unit)
		if e.Lie {
			raw = tracker.SumCID(append(raw.Bytes(), "lie"...))
		}
		e.counter++
		resid := costHash([]byte("residual"), []byte(e.Peer), u64(e.counter))
		resID, err := e.Store.PutBlob(resid[:])
		if err != nil {
			return node.Result{Job: j, Err: err}
		}
		payload := payloadOf(raw, resid[:])
		pid, err := e.Store.PutBlob(payload)
		if err != nil {
			return node.Result{Job: j, Err: err}
		}
		return node.Result{Job: j, Update: &tracker.Update{Samples: uint32(e.Spec.UnitSamples()), Loss: 1,
			Raw: raw, Residual: resID, Payload: pid, Size: uint64(len(payload)), Data: payload}}
	case node.ApplyJob:
		h := sha256.New()
		h.Write(j.Base.Bytes())
		for _, in := range j.Included {
			fmt.Fprintf(h, "%s %d %s %d\n", in.Peer, in.Unit, in.Payload, in.Weight)
		}
		id, err := e.Store.PutCheckpoint(costCheckpoint(e.Spec, j.Step+1, fmt.Sprintf("%x", h.Sum(nil))))
		return node.Result{Job: j, Result: id, Err: err}
	case node.VerifyJob:
		raw := rawOf(j.Base, j.Step, j.Unit)
		v := &tracker.Verdict{Raw: raw}
		for _, cl := range j.Updates {
			res, err := e.Store.Blob(cl.Update.Residual)
			if err != nil {
				return node.Result{Job: j, Err: err}
			}
			if !cl.Update.Raw.Equals(raw) || !tracker.SumCID(payloadOf(raw, res)).Equals(cl.Update.Payload) {
				if len(v.Bad) < tracker.MaxBad {
					v.Bad = append(v.Bad, cl.Peer)
				}
			}
		}
		return node.Result{Job: j, Verdict: v}
	}
	return node.Result{Job: j, Err: fmt.Errorf("unknown job %T", j)}
}
