package realstack

import (
	"fmt"
	"time"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/simulations"
	"github.com/shoal-network/shoal/simulations/engine"
	"github.com/shoal-network/shoal/tracker/wire"
)

// Predict runs the round of cfg in the discrete-event engine, with the
// network model set to what the real-stack run has: every machine one
// hop from the tracker (the workers connect to it, and gossipsub
// publishes to every connected peer), links of cfg.Latency one way and
// cfg.Bandwidth, the daemons' clock periods, and the same job durations.
// Times are virtual, since the start.
func Predict(cfg Config) (*Result, error) {
	spec := *cfg.Spec
	spec.Trackers = []string{predictTracker}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	genesis, err := (&simulations.CostEngine{Store: engine.NewStore(engine.NewPool()), Spec: &spec, PayloadBytes: cfg.PayloadBytes}).Genesis()
	if err != nil {
		return nil, err
	}
	ecfg := engine.Config{Spec: &spec, Seed: cfg.Seed, Genesis: genesis, MinMembers: cfg.Peers,
		Net:  &engine.Network{Hops: 1},
		Tick: cfg.NodeTick, TrackerTick: cfg.TrackerTick,
		JobTime: func(_ string, j node.Job) time.Duration {
			switch j.(type) {
			case node.TrainJob:
				return cfg.Train
			case node.VerifyJob:
				return cfg.Verify
			}
			return cfg.Apply
		},
		Check: engine.Invariants(nil),
	}
	if ecfg.Tick <= 0 {
		ecfg.Tick = 500 * time.Millisecond // the node daemon's default
	}
	if ecfg.TrackerTick <= 0 {
		ecfg.TrackerTick = 250 * time.Millisecond // the tracker daemon's
	}
	c, err := engine.New(ecfg)
	if err != nil {
		return nil, err
	}
	link := engine.Link{Up: cfg.Bandwidth, Down: cfg.Bandwidth, Latency: cfg.Latency / 2}
	c.SetLink(c.TrackerID(), link, "mocknet")
	for i := range cfg.Peers {
		id := fmt.Sprintf("worker-%04d", i)
		if err := c.AddNode(id, wire.RoleWorker, func(st *engine.Store) (node.Engine, error) {
			return &simulations.CostEngine{Store: st, Spec: &spec, Peer: id, PayloadBytes: cfg.PayloadBytes}, nil
		}); err != nil {
			return nil, err
		}
		c.SetLink(id, link, "mocknet")
	}
	// The prediction's tracker starts as a restarted one, once the
	// workers are there (quiet for a while, then announcing its step), as
	// predictions always have.
	c.KillTracker()
	if err := c.RestartTracker(); err != nil {
		return nil, err
	}
	done := func() bool {
		tr := c.Tracker()
		return tr != nil && len(tr.Finals()) >= cfg.Steps
	}
	if err := c.RunUntil(done, time.Duration(cfg.Steps)*(spec.Deadline+time.Minute)); err != nil {
		return nil, fmt.Errorf("realstack: prediction (seed %d): %w", cfg.Seed, err)
	}
	res := &Result{}
	for _, s := range c.Steps {
		if s.Finalised > 0 {
			res.Finalised = append(res.Finalised, s.Finalised)
			res.Opened = append(res.Opened, s.Opened)
			res.Closed = append(res.Closed, s.Closed)
		}
	}
	return res, nil
}

// predictTracker is the tracker's peer ID in predictions (any valid one).
const predictTracker = "12D3KooWFKGGFmcK5J41C1osT1wLyLwNJDhoHPDKhhyQ4BsTr4NY"
