package simulations

import (
	"fmt"
	"math"
	"math/rand/v2"

	nodeengine "github.com/shoal-network/shoal/node/engine"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/simulations/engine"
)

// Behaviour is how an adversarial peer departs from the protocol.
type Behaviour string

const (
	// SignFlip sends −10 times its true pseudo-gradient, consistently:
	// the raw hash and the payload both describe the lie, so only a
	// replica's different raw hash reveals it.
	SignFlip Behaviour = "sign-flip"
	// ScaledNoise sends its pseudo-gradient plus Gaussian noise ten times
	// its root mean square, consistently.
	ScaledNoise Behaviour = "scaled-noise"
	// StaleReplay sends again the pseudo-gradient of its previous unit
	// (of an earlier step, from an older checkpoint) instead of training.
	StaleReplay Behaviour = "stale-replay"
	// FreeRider trains nothing: it sends the pseudo-gradient of another
	// unit of the step, copied from a peer that computed it.
	FreeRider Behaviour = "free-rider"
	// LyingReplica computes its units but reports a perturbed result
	// (the true pseudo-gradient plus a small bias), consistently.
	LyingReplica Behaviour = "lying-replica"
	// PayloadLie reports the true raw hash but sends the payload of −10
	// times the pseudo-gradient: only a check of the payload against the
	// residual reveals it.
	PayloadLie Behaviour = "payload-lie"
)

// Behaviours lists the adversaries the simulator knows.
var Behaviours = []Behaviour{SignFlip, ScaledNoise, StaleReplay, FreeRider, LyingReplica, PayloadLie}

// ParseBehaviour checks a behaviour's name.
func ParseBehaviour(s string) (Behaviour, error) {
	for _, b := range Behaviours {
		if string(b) == s {
			return b, nil
		}
	}
	return "", fmt.Errorf("unknown adversary behaviour %q (want one of %v)", s, Behaviours)
}

// Idle reports whether the behaviour spares its peer the training (its
// jobs take almost no time).
func (b Behaviour) Idle() bool { return b == FreeRider || b == StaleReplay }

// Adversary is an Engine that trains like an honest one and then lies
// about the result as its Behaviour says. It verifies honestly. With
// Units set it takes pseudo-gradients from the simulation's shared cache
// (as an honest SharedEngine does) rather than computing them itself.
type Adversary struct {
	Inner     *nodeengine.ModelEngine
	Behaviour Behaviour
	Units     *UnitCache
	Store     *engine.Store // Inner's store, for sharing checkpoints with Units
	Peer      string
	prev      []float32 // the pseudo-gradient of its previous unit
}

// Genesis is the honest genesis.
func (a *Adversary) Genesis() (cid.Cid, error) { return a.Inner.Genesis() }

func (a *Adversary) delta(tj node.TrainJob) ([]float32, float32, error) {
	if a.Units != nil {
		return a.Units.Delta(a.Inner, tj.Base, tj.Step, tj.Unit)
	}
	return a.Inner.Delta(tj.Base, tj.Step, tj.Unit)
}

// Run does a job, lying about training results.
func (a *Adversary) Run(j node.Job) node.Result {
	tj, ok := j.(node.TrainJob)
	if !ok {
		if a.Units != nil {
			if aj, ok := j.(node.ApplyJob); ok {
				id, err := a.Units.Apply(a.Inner, a.Store, aj)
				return node.Result{Job: j, Result: id, Err: err}
			}
		}
		return a.Inner.Run(j)
	}
	unit := tj.Unit
	if a.Behaviour == FreeRider {
		unit++ // another unit of the step, which someone else computes
	}
	honest, loss, err := a.delta(node.TrainJob{Step: tj.Step, Base: tj.Base, Unit: unit})
	if err != nil {
		return node.Result{Job: j, Err: err}
	}
	delta := append([]float32(nil), honest...) // the cache's copy is shared
	switch a.Behaviour {
	case SignFlip:
		scale(delta, -10)
	case ScaledNoise:
		var ss float64
		for _, v := range delta {
			ss += float64(v) * float64(v)
		}
		rms := math.Sqrt(ss / float64(max(len(delta), 1)))
		r := rand.New(rand.NewPCG(tj.Step, uint64(tj.Unit)^hashString(a.Peer)))
		for i := range delta {
			delta[i] += float32(10 * rms * r.NormFloat64())
		}
	case StaleReplay:
		if a.prev != nil {
			copy(delta, a.prev)
		}
		a.prev = append(a.prev[:0], honest...)
	case FreeRider:
	case LyingReplica:
		for i := range delta {
			delta[i] += 1e-3
		}
	case PayloadLie:
		raw := nodeengine.RawCID(delta)
		scale(delta, -10)
		u, err := a.Inner.Encode(delta, loss)
		if err == nil {
			u.Raw = raw
		}
		return node.Result{Job: j, Update: u, Err: err}
	default:
		return node.Result{Job: j, Err: fmt.Errorf("unknown behaviour %q", a.Behaviour)}
	}
	u, err := a.Inner.Encode(delta, loss)
	return node.Result{Job: j, Update: u, Err: err}
}

func scale(v []float32, s float32) {
	for i := range v {
		v[i] = float32(v[i] * s)
	}
}

// hashString is FNV-1a, for seeding per-peer generators.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
