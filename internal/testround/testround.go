// Package testround makes the small round spec that tests across the
// module share, so that a change to it is made once.
package testround

import (
	"time"

	"github.com/shoal-network/shoal/tracker/round"
)

// Tracker is a valid libp2p peer ID for the tracker of test rounds.
const Tracker = "12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"

// Spec is a small round: an mlp on the built-in task, units units a step
// of 5 inner steps × batch 4, an int8 codec, an outer step with momentum
// (so that a step's result depends on the momenta its base restores), no
// replication, seed 3.
func Spec(units int) *round.Spec {
	s := round.Defaults()
	s.Model = round.Model{Arch: "mlp", Vocab: 256, Ctx: 16, Dim: 16, Layers: 1, Hidden: 64, Window: 4, Seed: 7}
	s.Dataset = round.Dataset{Builtin: true}
	s.InnerSteps = 5
	s.Batch = 4
	s.Inner.LR = 0.01
	s.Outer = round.Nesterov{LR: 0.7, Momentum: 0.5}
	s.Codec = "int8"
	s.TargetSamples = units * s.InnerSteps * s.Batch
	s.Deadline = 30 * time.Second
	s.VerificationRate = 0
	s.Seed = 3
	s.Trackers = []string{Tracker}
	return s
}
