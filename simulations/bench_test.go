package simulations

import (
	"fmt"
	"testing"
	"time"

	"github.com/shoal-network/shoal/node"
	"github.com/shoal-network/shoal/simulations/engine"
	"github.com/shoal-network/shoal/tracker/wire"
)

// costCluster is a round of peers with cost-model engines: training takes
// 10 s of virtual time and no real time, so what a run costs is the
// protocol itself (state machines, wire encoding, event queue).
func costCluster(tb testing.TB, peers int, seed uint64) *engine.Cluster {
	tb.Helper()
	spec := testSpec(peers)
	spec.VerificationRate = 0.05
	spec.Deadline = 2 * time.Minute
	genesis, err := (&CostEngine{Store: engine.NewStore(engine.NewPool()), Spec: spec}).Genesis()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := engine.New(engine.Config{Spec: spec, Seed: seed, Genesis: genesis,
		Tick: time.Second,
		JobTime: func(_ string, j node.Job) time.Duration {
			switch j.(type) {
			case node.TrainJob:
				return 10 * time.Second
			case node.ApplyJob:
				return 100 * time.Millisecond
			}
			return time.Second
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range peers {
		id := fmt.Sprintf("peer-%05d", i)
		if err := c.AddNode(id, wire.RoleWorker, func(st *engine.Store) (node.Engine, error) {
			return &CostEngine{Store: st, Spec: spec, Peer: id}, nil
		}); err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

// BenchmarkProtocolStep measures the protocol core's cost per outer step
// per peer, training excluded: one unit per peer per step, every update
// delivered to every peer (v1), commits, finals and heartbeats, all
// through the wire encoding, without a link model.
func BenchmarkProtocolStep(b *testing.B) {
	for _, peers := range []int{10, 1000} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			c := costCluster(b, peers, 1)
			if err := c.RunUntil(func() bool { return finalised(c) >= 1 }, time.Hour); err != nil {
				b.Fatal(err)
			}
			d0, v0 := c.Delivered, c.Elapsed()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if err := c.RunUntil(func() bool { return finalised(c) >= 2+i }, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			wall := time.Since(start)
			b.StopTimer()
			steps := float64(b.N)
			b.ReportMetric(float64(wall.Nanoseconds())/steps/float64(peers)/1e3, "µs/step/peer")
			b.ReportMetric(float64(c.Delivered-d0)/steps, "msgs/step")
			b.ReportMetric((c.Elapsed()-v0).Seconds()/steps, "virtual-s/step")
		})
	}
}

// planetCluster is a large round as planet-10k runs it: planet links,
// updates in batches, lazy ticks, units of 10 minutes for a tenth of the
// peers a step, 256 KiB updates.
func planetCluster(tb testing.TB, peers int, seed uint64) *engine.Cluster {
	tb.Helper()
	spec := testSpec(max(1, peers/10))
	spec.VerificationRate = 0.02
	spec.Deadline = 30 * time.Minute
	genesis, err := (&CostEngine{Store: engine.NewStore(engine.NewPool()), Spec: spec}).Genesis()
	if err != nil {
		tb.Fatal(err)
	}
	c, err := engine.New(engine.Config{Spec: spec, Seed: seed, Genesis: genesis, Storage: volatileStorage{},
		Net: &engine.Network{}, Batch: true, LazyTicks: true,
		Tick:        5 * time.Second,
		UpdateBytes: 256 << 10, ResidualBytes: 100 << 20, CheckpointBytes: 200 << 20,
		JobTime: func(_ string, j node.Job) time.Duration {
			if _, ok := j.(node.TrainJob); ok {
				return 10 * time.Minute
			}
			return 20 * time.Second
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	shared := NewCostShared()
	r := c.Rand()
	for i := range peers {
		id := fmt.Sprintf("peer-%05d", i)
		if err := c.AddNode(id, wire.RoleWorker, func(st *engine.Store) (node.Engine, error) {
			return &CostEngine{Store: st, Spec: spec, Peer: id, Shared: shared}, nil
		}); err != nil {
			tb.Fatal(err)
		}
		l, class := engine.LinkMixes["planet"].Draw(r)
		c.SetLink(id, l, class)
	}
	c.SetLink(c.TrackerID(), engine.DatacenterLink.Draw(r), "datacenter")
	c.DelayTracker(10 * time.Second)
	return c
}

// BenchmarkSimulatedStep measures the engine on large rounds: the wall
// time per simulated outer step, the events per second and the share of
// the wall time spent in the tracker's state machine. peers=10000 takes
// several minutes: run it with -bench 'SimulatedStep/peers=10000'
// -benchtime 3x.
func BenchmarkSimulatedStep(b *testing.B) {
	for _, peers := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			c := planetCluster(b, peers, 1)
			if err := c.RunUntil(func() bool { return finalised(c) >= 1 }, 24*time.Hour); err != nil {
				b.Fatal(err)
			}
			e0, v0, t0 := c.Processed, c.Elapsed(), c.TrackerWall
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if err := c.RunUntil(func() bool { return finalised(c) >= 2+i }, 24*time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			wall := time.Since(start)
			b.StopTimer()
			steps := float64(b.N)
			events := float64(c.Processed - e0)
			b.ReportMetric(wall.Seconds()/steps, "wall-s/step")
			b.ReportMetric(events/wall.Seconds(), "events/s")
			b.ReportMetric(events/steps, "events/step")
			b.ReportMetric((c.Elapsed()-v0).Seconds()/steps, "virtual-s/step")
			b.ReportMetric(100*(c.TrackerWall-t0).Seconds()/wall.Seconds(), "%tracker")
		})
	}
}
