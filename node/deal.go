package node

import (
	"slices"

	"github.com/shoal-network/shoal/tracker/round"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Deal is how an Open dealt its step's unit copies: who trains each copy
// of each unit. It never changes once made, so a driver may share it with
// its gossip validator's goroutines (the daemon's validator view holds the
// node's).
type Deal struct {
	step    uint64
	attempt uint32
	copies  []round.Assignment // by unit, then replica (read only: may be shared)
}

// NewDeal returns the deal of an Open of spec's round: the assignment
// the tracker and every node compute alike.
func NewDeal(spec *round.Spec, o *wire.Open) *Deal {
	return &Deal{step: o.Step, attempt: o.Attempt, copies: assign(spec, o)}
}

func assign(spec *round.Spec, o *wire.Open) []round.Assignment {
	return round.Assign(spec.Seed, wire.AssignStep(o.Step, o.Attempt), o.Members, int(o.Units), spec.VerificationRate)
}

// Deals are the deals of the recent Opens a node has held, oldest first.
// A node's Deals never change once made (a new Open makes new ones), so a
// driver may share them with its gossip validator.
type Deals []*Deal

// With returns the deals with d added as the newest, keeping the
// Retention newest; ds itself is not changed (it may be shared).
func (ds Deals) With(d *Deal) Deals {
	return append(slices.Clone(ds[max(0, len(ds)-Retention+1):]), d)
}

// Dealt returns the peer one of the deals gave copy replica of unit of
// the given step and attempt, or "" if none is of that Open or that Open
// has no such copy.
func (ds Deals) Dealt(step uint64, attempt uint32, unit uint32, replica uint8) string {
	for i := len(ds) - 1; i >= 0; i-- {
		if d := ds[i]; d.step == step && d.attempt == attempt {
			return d.peer(unit, replica)
		}
	}
	return ""
}

// Of returns the step and attempt of the Open the deal is of.
func (d *Deal) Of() (step uint64, attempt uint32) { return d.step, d.attempt }

// Dealt returns the peer the deal gave copy replica of unit of the given
// step and attempt, or "" if the deal is of another Open (or nil) or has
// no such copy.
func (d *Deal) Dealt(step uint64, attempt uint32, unit uint32, replica uint8) string {
	if d == nil || d.step != step || d.attempt != attempt {
		return ""
	}
	return d.peer(unit, replica)
}

// peer returns the peer dealt a unit copy, or "". Assign lists the
// copies by unit and replica.
func (d *Deal) peer(unit uint32, replica uint8) string {
	if d == nil {
		return ""
	}
	i, ok := slices.BinarySearchFunc(d.copies, [2]int{int(unit), int(replica)}, func(a round.Assignment, k [2]int) int {
		if a.Unit != k[0] {
			return a.Unit - k[0]
		}
		return a.Replica - k[1]
	})
	if !ok {
		return ""
	}
	return d.copies[i].Peer
}
