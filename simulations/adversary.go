package simulations

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	nodeengine "github.com/shoal-network/shoal/node/engine"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/simulations/engine"
	"github.com/shoal-network/shoal/tracker/wire"
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
	// Withholder trains honestly and publishes its updates, but without
	// their inline data, and never serves its payloads or residuals to
	// anyone.
	Withholder Behaviour = "withholder"
	// AdaptiveLiar lies as sign-flip does, but only on units it believes
	// unchecked: its first copy of a unit the Open did not replicate. As
	// a replica, or on a replicated unit, it is honest.
	AdaptiveLiar Behaviour = "adaptive-liar"
)

// Behaviours lists the adversaries the simulator knows.
var Behaviours = []Behaviour{SignFlip, ScaledNoise, StaleReplay, FreeRider, LyingReplica, PayloadLie, Withholder, AdaptiveLiar}

// The behaviours of Sybil identities (see Sybils): they are counted apart
// from the peers and cost the simulation no node.
const (
	SybilSilent Behaviour = "sybil-silent"
	SybilVoter  Behaviour = "sybil-voter"
	SybilJunk   Behaviour = "sybil-junk"
)

// SybilBehaviours lists the Sybils' behaviours.
var SybilBehaviours = []Behaviour{SybilSilent, SybilVoter, SybilJunk}

// Sybils are fake identities on top of the scenario's peers: IDs that
// cost their owner nothing, with no machine nor training behind them. The
// shares of the kinds sum to 1.
//
//	sybils: {count: 1000, silent: 0.5, voter: 0.3, junk: 0.2, workers: 0.5}
type Sybils struct {
	Count  int     `yaml:"count"`
	Silent float64 `yaml:"silent"` // say Hello and nothing else
	Voter  float64 `yaml:"voter"`  // say Hello as observers, commit the attacker's checkpoint for every closed step
	Junk   float64 `yaml:"junk"`   // say Hello as workers, flood Updates for units not dealt them and naming CIDs no one serves
	// Workers is the share of the silent ones whose Hellos claim the
	// worker role (the others claim observer).
	Workers  float64 `yaml:"workers"`
	JunkSize Size    `yaml:"junk_bytes"` // inline junk per Update (0: 1 KiB)
}

// MaxSybils bounds the Sybils of a scenario.
const MaxSybils = 1_000_000

func (y *Sybils) check() error {
	if y.Count == 0 {
		return nil
	}
	var errs []error
	if y.Count < 0 || y.Count > MaxSybils {
		errs = append(errs, fmt.Errorf("sybils.count: need 0 to %d, got %d", MaxSybils, y.Count))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"silent", y.Silent}, {"voter", y.Voter}, {"junk", y.Junk}, {"workers", y.Workers}} {
		if !(f.v >= 0 && f.v <= 1) {
			errs = append(errs, fmt.Errorf("sybils.%s: need a share from 0 to 1, got %g", f.name, f.v))
		}
	}
	if sum := y.Silent + y.Voter + y.Junk; math.Abs(sum-1) > 1e-6 {
		errs = append(errs, fmt.Errorf("sybils: the shares silent, voter and junk sum to %g, not 1", sum))
	}
	if y.JunkSize < 0 || y.JunkSize > 64<<20 {
		errs = append(errs, fmt.Errorf("sybils.junk_bytes: need 0 to 64MiB"))
	}
	return errors.Join(errs...)
}

// deal returns the Sybil identities, the kinds in the shares asked for.
func (y *Sybils) deal() []engine.Sybil {
	nVoter := int(math.Round(y.Voter * float64(y.Count)))
	nJunk := int(math.Round(y.Junk * float64(y.Count)))
	nSilent := max(y.Count-nVoter-nJunk, 0)
	nWorkers := int(math.Round(y.Workers * float64(nSilent)))
	out := make([]engine.Sybil, 0, y.Count)
	for i := range y.Count {
		s := engine.Sybil{ID: fmt.Sprintf("sybil-%07d", i), Kind: engine.SybilSilent, Role: wire.RoleObserver}
		switch {
		case i < nWorkers:
			s.Role = wire.RoleWorker
		case i < nSilent:
		case i < nSilent+nVoter:
			s.Kind = engine.SybilVoter
		default:
			s.Kind, s.Role = engine.SybilJunk, wire.RoleWorker
		}
		out = append(out, s)
	}
	return out
}

// behaviour names a Sybil's kind.
func sybilBehaviour(k engine.SybilKind) Behaviour {
	switch k {
	case engine.SybilVoter:
		return SybilVoter
	case engine.SybilJunk:
		return SybilJunk
	}
	return SybilSilent
}

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
	// Replicated tells an adaptive liar whether the Open replicated a
	// unit (nil: it believes none is).
	Replicated func(step uint64, attempt, unit uint32) bool
	prev       []float32 // the pseudo-gradient of its previous unit
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
	case AdaptiveLiar:
		if unchecked(a.Replicated, tj) {
			scale(delta, -10)
		}
	case Withholder:
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

// unchecked reports whether an adaptive liar believes no one checks its
// unit: it holds the unit's first copy and the Open dealt no second.
func unchecked(replicated func(step uint64, attempt, unit uint32) bool, tj node.TrainJob) bool {
	return tj.Replica == 0 && (replicated == nil || !replicated(tj.Step, tj.Attempt, tj.Unit))
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
