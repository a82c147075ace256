package simulations

import (
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/shoal-network/shoal/node"
)

// Behaviour is how an adversarial peer departs from the protocol.
type Behaviour string

const (
	// SignFlip sends −10 times its true pseudo-gradient, consistently:
	// the raw hash and the payload both describe the lie, so only a
	// replica's different raw hash reveals it.
	SignFlip Behaviour = "sign-flip"
	// LyingReplica computes its units but reports a perturbed result
	// (the true pseudo-gradient plus a small bias), consistently.
	LyingReplica Behaviour = "lying-replica"
	// PayloadLie reports the true raw hash but sends the payload of −10
	// times the pseudo-gradient: only a check of the payload against the
	// residual reveals it.
	PayloadLie Behaviour = "payload-lie"
)

// Behaviours lists the adversaries the simulator knows.
var Behaviours = []Behaviour{SignFlip, LyingReplica, PayloadLie}

// ParseBehaviour checks a behaviour's name.
func ParseBehaviour(s string) (Behaviour, error) {
	for _, b := range Behaviours {
		if string(b) == s {
			return b, nil
		}
	}
	return "", fmt.Errorf("unknown adversary behaviour %q (want one of %v)", s, Behaviours)
}

// Adversary is an Engine that trains like an honest one and then lies
// about the result as its Behaviour says. It verifies honestly.
type Adversary struct {
	Inner     *node.ModelEngine
	Behaviour Behaviour
}

// Genesis is the honest genesis.
func (a *Adversary) Genesis() (cid.Cid, error) { return a.Inner.Genesis() }

// Run does a job, lying about training results.
func (a *Adversary) Run(j node.Job) node.Result {
	tj, ok := j.(node.TrainJob)
	if !ok {
		return a.Inner.Run(j)
	}
	delta, loss, err := a.Inner.Delta(tj.Base, tj.Step, tj.Unit)
	if err != nil {
		return node.Result{Job: j, Err: err}
	}
	switch a.Behaviour {
	case SignFlip:
		scale(delta, -10)
		u, err := a.Inner.Encode(delta, loss)
		return node.Result{Job: j, Update: u, Err: err}
	case LyingReplica:
		for i := range delta {
			delta[i] += 1e-3
		}
		u, err := a.Inner.Encode(delta, loss)
		return node.Result{Job: j, Update: u, Err: err}
	case PayloadLie:
		raw := node.RawCID(delta)
		scale(delta, -10)
		u, err := a.Inner.Encode(delta, loss)
		if err == nil {
			u.Raw = raw
		}
		return node.Result{Job: j, Update: u, Err: err}
	}
	return node.Result{Job: j, Err: fmt.Errorf("unknown behaviour %q", a.Behaviour)}
}

func scale(v []float32, s float32) {
	for i := range v {
		v[i] = float32(v[i] * s)
	}
}
